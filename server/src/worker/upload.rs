//! Artifacts from the worker's side: finding a build's files by glob patterns inside its
//! build directory, and uploading each over HTTP with its size and SHA-256.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use app::ssr::workers::protocol::Attempt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

/// The most files one collection uploads.
pub const MAX_FILES: usize = 1_000;

/// Where and how a worker uploads: the server's HTTP address and the worker's token.
#[derive(Debug)]
pub struct Uploads {
    /// `http(s)://host[/prefix]/worker/artifacts`.
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Uploads {
    /// For a worker connecting to `socket_url` (`ws(s)://host[/prefix]/worker`).
    pub fn new(socket_url: &str, token: &str) -> Arc<Self> {
        let http = match socket_url.split_once("://") {
            Some(("wss", rest)) => format!("https://{rest}"),
            Some((_, rest)) => format!("http://{rest}"),
            None => socket_url.to_owned(),
        };
        Arc::new(Self {
            base: format!("{}/artifacts", http.trim_end_matches('/')),
            token: token.to_owned(),
            client: reqwest::Client::new(),
        })
    }

    /// Uploads `path` as artifact `name` of the build whose step `attempt` is.
    pub async fn send(&self, attempt: Attempt, name: &str, path: &Path) -> Result<u64, String> {
        let (size, sha256) = digest(path)
            .await
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let url = format!("{}/{}/{}", self.base, attempt.workitem, attempt.attempt);
        let response = self
            .client
            .put(url)
            .bearer_auth(&self.token)
            .query(&[
                ("name", name),
                ("size", &size.to_string()),
                ("sha256", &sha256),
            ])
            .header(reqwest::header::CONTENT_LENGTH, size)
            .body(reqwest::Body::from(file))
            .send()
            .await
            .map_err(|e| format!("cannot upload {name}: {e}"))?;
        if response.status().is_success() {
            return Ok(size);
        }
        let status = response.status();
        let reason = response.text().await.unwrap_or_default();
        Err(format!("the server refused {name} ({status}): {reason}"))
    }
}

/// The size and hex SHA-256 of the file at `path`.
async fn digest(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    let mut size = 0;
    loop {
        let read = file.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        size += read as u64;
        hasher.update(&buffer[..read]);
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// Checks a pattern: relative, without `..`.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    let path = Path::new(pattern);
    let inside = !pattern.is_empty()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !inside {
        return Err(format!(
            "`{pattern}` is not a pattern inside the build directory (relative, without `..`)"
        ));
    }
    glob::Pattern::new(pattern).map_err(|e| format!("`{pattern}`: {e}"))?;
    Ok(())
}

/// The regular files inside `root` that `patterns` match, each once, in pattern order,
/// at most [`MAX_FILES`]. A match that leaves `root` through a link is skipped.
pub fn find(root: &Path, patterns: &[String]) -> Result<Vec<PathBuf>, String> {
    let root = root
        .canonicalize()
        .map_err(|e| format!("cannot open {}: {e}", root.display()))?;
    let mut found: Vec<PathBuf> = Vec::new();
    for pattern in patterns {
        check_pattern(pattern)?;
        let escaped = glob::Pattern::escape(&root.display().to_string());
        let matches =
            glob::glob(&format!("{escaped}/{pattern}")).map_err(|e| format!("`{pattern}`: {e}"))?;
        let mut batch: Vec<PathBuf> = matches.filter_map(Result::ok).collect();
        batch.sort();
        for path in batch {
            let Ok(real) = path.canonicalize() else {
                continue;
            };
            if !real.starts_with(&root) || !real.is_file() || found.contains(&real) {
                continue;
            }
            if found.len() == MAX_FILES {
                return Err(format!(
                    "the patterns match more than {MAX_FILES} files; narrow them"
                ));
            }
            found.push(real);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_urls_give_upload_urls() {
        assert_eq!(
            Uploads::new("ws://127.0.0.1:3000/worker", "t").base,
            "http://127.0.0.1:3000/worker/artifacts"
        );
        assert_eq!(
            Uploads::new("wss://kiln.example.com/ci/worker", "t").base,
            "https://kiln.example.com/ci/worker/artifacts"
        );
    }

    #[test]
    fn patterns_stay_inside_the_build_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let images = root.join("tmp/deploy/images/qemux86-64");
        std::fs::create_dir_all(&images).unwrap();
        std::fs::write(images.join("a.wic"), "a").unwrap();
        std::fs::write(images.join("a.manifest"), "m").unwrap();
        std::fs::create_dir_all(images.join("subdir")).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), images.join("link")).unwrap();

        let found = find(
            root,
            &[
                "tmp/deploy/images/qemux86-64/*.wic".into(),
                "tmp/deploy/images/*/*".into(),
                "tmp/no-such-dir/*".into(),
            ],
        )
        .unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.wic", "a.manifest"]);

        for bad in ["../*", "/etc/*", "tmp/../../*", "", "tmp/["] {
            assert!(find(root, &[bad.into()]).is_err(), "{bad}");
        }
    }
}
