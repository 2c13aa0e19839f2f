//! Workitem logs: the lines workers stream, appended to one file per workitem under the
//! data directory, each attempt headed by a line saying where it ran (written with its first
//! output: a step that prints nothing has no file).

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

use super::protocol::MAX_LOG_LINE_BYTES;

/// The most bytes one workitem's log keeps; lines past it are dropped, with one notice.
pub const MAX_LOG_BYTES: u64 = 64 * 1024 * 1024;

const FULL_NOTICE: &str = "[kiln] the log reached its size limit; later lines are dropped\n";

/// Where workitem `workitem`'s log lives.
pub fn path(data_dir: &Path, workitem: i64) -> PathBuf {
    data_dir
        .join("workitem-logs")
        .join(format!("{workitem}.log"))
}

/// Appends `lines` to workitem `workitem`'s log, cutting long lines and stopping at the limit.
pub async fn append(data_dir: &Path, workitem: i64, lines: &[String]) -> std::io::Result<()> {
    let file_path = path(data_dir, workitem);
    if let Some(dir) = file_path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let size = match tokio::fs::metadata(&file_path).await {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e),
    };
    if size >= MAX_LOG_BYTES {
        return Ok(());
    }
    let mut text = String::new();
    for line in lines {
        push_line(&mut text, line);
    }
    let room = usize::try_from(MAX_LOG_BYTES - size).unwrap_or(usize::MAX);
    if text.len() > room {
        let mut end = room;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let cut = text[..end].rfind('\n').map_or(0, |i| i + 1);
        text.truncate(cut);
        text.push_str(FULL_NOTICE);
    }
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file_path)
        .await?;
    file.write_all(text.as_bytes()).await?;
    file.flush().await
}

/// Appends `line` to `text` with its newline, without the line ending it came with, cut at
/// [`MAX_LOG_LINE_BYTES`] (and marked so) when longer.
pub fn push_line(text: &mut String, line: &str) {
    let line = line.trim_end_matches(['\n', '\r']);
    if line.len() > MAX_LOG_LINE_BYTES {
        let mut end = MAX_LOG_LINE_BYTES;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        text.push_str(&line[..end]);
        text.push_str(" [kiln: line cut]\n");
    } else {
        text.push_str(line);
        text.push('\n');
    }
}

/// The last `max_bytes` of workitem `workitem`'s log (from a line start), or nothing.
pub async fn tail(data_dir: &Path, workitem: i64, max_bytes: usize) -> std::io::Result<String> {
    let bytes = match tokio::fs::read(path(data_dir, workitem)).await {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(e),
    };
    let start = bytes.len().saturating_sub(max_bytes);
    let slice = &bytes[start..];
    let slice = if start > 0 {
        slice
            .iter()
            .position(|b| *b == b'\n')
            .map_or(slice, |i| &slice[i + 1..])
    } else {
        slice
    };
    Ok(String::from_utf8_lossy(slice).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_append_and_long_ones_are_cut() {
        let dir = std::env::temp_dir().join(format!("kiln-log-test-{}", std::process::id()));
        let long = "x".repeat(MAX_LOG_LINE_BYTES + 10);
        append(&dir, 1, &["one".into(), "two\n".into()])
            .await
            .unwrap();
        append(&dir, 1, &[long]).await.unwrap();
        let text = tail(&dir, 1, usize::MAX).await.unwrap();
        assert!(text.starts_with("one\ntwo\nxxx"));
        assert!(text.ends_with(" [kiln: line cut]\n"));
        assert_eq!(tail(&dir, 1, 30).await.unwrap(), "");
        assert_eq!(tail(&dir, 2, 30).await.unwrap(), "");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
