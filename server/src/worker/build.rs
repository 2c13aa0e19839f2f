//! The `build` participant: runs one step of a build in its build directory: the
//! project's configured one (which the server lends to one build at a time), or one in
//! the process's directory. Layers are checked out beside it, in `../layers`.
//!
//! - `prepare` fetches the layers (git with argument lists, options ended by `--`; local
//!   layers must exist on this host), writes `conf/local.conf` and `conf/bblayers.conf`, and
//!   replies with this worker's name, host and build directory and each git layer's commit;
//! - `bitbake` runs `params.command` (default `bitbake`) with the image targets in the build
//!   directory. A bare program name is looked up next to this program first, so a shipped
//!   tool such as `fake-bitbake` is found without a `PATH` entry. When it fails, the logs
//!   of the failed tasks (named in the cooker log) and the cooker log are uploaded;
//! - `collect` uploads the files `params.patterns` match in the build directory (by
//!   default the machine's deployed images, the SDKs and the cooker logs).
//!
//! In a build directory earlier builds used, files older than this build's
//! `conf/local.conf` (which `prepare` writes) are theirs, and are not uploaded.
//!
//! What the steps need comes in `params.build` (the server adds it to the frame).

use std::path::{Component, Path, PathBuf};
use std::process::Stdio;

use app::workflow::definition::Fields;
use app::workflow::engine::Outcome;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::process::Command;

use super::Job;
use super::shell::{make_dir, run_program};
use super::upload;

/// The most layers a build may fetch.
pub const MAX_LAYERS: usize = 256;

/// The most items a build command may have, targets included.
pub const MAX_COMMAND_ITEMS: usize = 1024;

#[derive(Debug, Deserialize)]
struct BuildSpec {
    id: i64,
    number: i32,
    /// The project's build directory, shared by its builds one at a time; `None`: this
    /// build's own, in its process directory.
    #[serde(default)]
    directory: Option<String>,
    machine: String,
    targets: Vec<String>,
    layers: Vec<LayerSpec>,
    local_conf: String,
    bblayers_conf: String,
}

#[derive(Debug, Deserialize)]
struct LayerSpec {
    name: String,
    url: Option<String>,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    path: Option<String>,
}

#[derive(Debug, PartialEq)]
enum Step {
    Prepare,
    Bitbake { command: Vec<String> },
    Collect { patterns: Vec<String> },
}

/// What `collect` uploads when its params name no patterns.
fn default_patterns(machine: &str) -> Vec<String> {
    let machine = glob::Pattern::escape(machine);
    vec![
        format!("tmp/deploy/images/{machine}/*"),
        "tmp/deploy/sdk/*".to_owned(),
        format!("tmp/log/cooker/{machine}/*.log"),
    ]
}

fn parse(params: &Fields) -> Result<(Step, BuildSpec), String> {
    let spec: BuildSpec = match params.get("build") {
        Some(value) => serde_json::from_value(value.clone())
            .map_err(|e| format!("params.build: not a build this worker understands: {e}"))?,
        None => {
            return Err("params.build: missing; a build step runs only as part of a build".into());
        }
    };
    if spec.layers.len() > MAX_LAYERS {
        return Err(format!("params.build.layers: at most {MAX_LAYERS}"));
    }
    for layer in &spec.layers {
        let plain = !layer.name.is_empty()
            && layer
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !layer.name.starts_with('.');
        if !plain {
            return Err(format!(
                "params.build.layers: `{}` is not a layer name",
                layer.name
            ));
        }
    }
    let step = match params.get("step").and_then(Value::as_str) {
        Some("prepare") => Step::Prepare,
        Some("bitbake") => {
            let command = match params.get("command") {
                None | Some(Value::Null) => vec!["bitbake".to_owned()],
                Some(Value::Array(items)) if !items.is_empty() => items
                    .iter()
                    .map(|item| match item {
                        Value::String(s) if !s.is_empty() && !s.contains('\0') => Ok(s.clone()),
                        _ => {
                            Err("params.command: every item must be a non-empty string".to_owned())
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                Some(_) => {
                    return Err("params.command: a list with the program and its arguments (it is never run through a shell)".into());
                }
            };
            if command.len() + spec.targets.len() > MAX_COMMAND_ITEMS {
                return Err(format!(
                    "params.command: at most {MAX_COMMAND_ITEMS} items with the targets"
                ));
            }
            Step::Bitbake { command }
        }
        Some("collect") => {
            let patterns = match params.get("patterns") {
                None | Some(Value::Null) => default_patterns(&spec.machine),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| match item.as_str() {
                        Some(pattern) => upload::check_pattern(pattern)
                            .map(|()| pattern.to_owned())
                            .map_err(|e| format!("params.patterns: {e}")),
                        None => Err("params.patterns: every item must be a string".to_owned()),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                Some(_) => {
                    return Err(
                        "params.patterns: a list of glob patterns inside the build directory"
                            .into(),
                    );
                }
            };
            Step::Collect { patterns }
        }
        Some(other) => {
            return Err(format!(
                "params.step: `{other}` is not a build step; use prepare, bitbake or collect"
            ));
        }
        None => return Err("params.step: prepare, bitbake or collect is required".into()),
    };
    Ok((step, spec))
}

/// Runs the build step the job asks for.
pub async fn run(job: Job) -> Outcome {
    let result = match parse(&job.params) {
        Ok((Step::Prepare, spec)) => prepare(&job, &spec).await,
        Ok((Step::Bitbake { command }, spec)) => bitbake(&job, &spec, &command).await,
        Ok((Step::Collect { patterns }, spec)) => collect(&job, &spec, &patterns).await,
        Err(message) => Err(message),
    };
    result.unwrap_or_else(|message| Outcome::Error { message })
}

/// The build directory: the project's, or one in the job's process directory. Its parent
/// holds the layers (`bblayers.conf` names them as `${TOPDIR}/../layers/NAME`).
fn build_dir(job: &Job, spec: &BuildSpec) -> PathBuf {
    match &spec.directory {
        Some(directory) => PathBuf::from(directory),
        None => job.process_dir.join("build"),
    }
}

/// Where the layers are checked out: beside the build directory.
fn layers_dir(job: &Job, spec: &BuildSpec) -> PathBuf {
    build_dir(job, spec)
        .parent()
        .map_or_else(|| job.process_dir.clone(), Path::to_path_buf)
        .join("layers")
}

async fn prepare(job: &Job, spec: &BuildSpec) -> Result<Outcome, String> {
    let dir = build_dir(job, spec);
    if let Some(parent) = dir.parent() {
        make_dir(parent, job.run_as.as_ref())?;
    }
    make_dir(&dir, job.run_as.as_ref())?;
    make_dir(&dir.join("conf"), job.run_as.as_ref())?;
    job.log(format!(
        "[kiln] preparing build {} in {} on {}",
        spec.number,
        dir.display(),
        host()
    ))
    .await;
    let mut commits = serde_json::Map::new();
    for layer in &spec.layers {
        match (&layer.url, &layer.git_ref, &layer.path) {
            (Some(url), Some(git_ref), _) => {
                let commit = fetch_layer(job, spec, &layer.name, url, git_ref).await?;
                commits.insert(layer.name.clone(), json!(commit));
            }
            (_, _, Some(path)) => {
                if !Path::new(path).is_dir() {
                    return Err(format!(
                        "layer {}: {path} is not a directory on {}",
                        layer.name,
                        host()
                    ));
                }
                job.log(format!("[kiln] layer {} is {path}", layer.name))
                    .await;
            }
            _ => {
                return Err(format!(
                    "layer {}: neither a git URL nor a path",
                    layer.name
                ));
            }
        }
    }
    for (name, text) in [
        ("local.conf", &spec.local_conf),
        ("bblayers.conf", &spec.bblayers_conf),
    ] {
        let path = dir.join("conf").join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        if let Some(user) = &job.run_as {
            std::os::unix::fs::chown(&path, Some(user.uid), Some(user.gid))
                .map_err(|e| format!("cannot give {} to {}: {e}", path.display(), user.name))?;
        }
        job.log(format!("[kiln] wrote conf/{name}")).await;
    }
    let mut fields = Fields::new();
    fields.insert("build_worker".into(), json!(job.worker));
    fields.insert("build_host".into(), json!(host()));
    fields.insert("build_dir".into(), json!(dir.display().to_string()));
    fields.insert("layer_commits".into(), Value::Object(commits));
    Ok(Outcome::Done {
        fields,
        command: None,
    })
}

/// Fetches layer `name` from `url` at `git_ref` into `layers/<name>` beside the build
/// directory; returns the commit it resolved to.
async fn fetch_layer(
    job: &Job,
    spec: &BuildSpec,
    name: &str,
    url: &str,
    git_ref: &str,
) -> Result<String, String> {
    let layers = layers_dir(job, spec);
    make_dir(&layers, job.run_as.as_ref())?;
    let path = layers.join(name);
    let path_text = path.display().to_string();
    job.log(format!(
        "[kiln] fetching layer {name} from {url} at {git_ref}"
    ))
    .await;
    let args = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    if !path.join(".git").is_dir() {
        git(
            job,
            &args(&["clone", "--quiet", "--no-checkout", "--", url, &path_text]),
            &layers,
        )
        .await
        .map_err(|e| format!("layer {name}: cannot clone {url}: {e}"))?;
    }
    git(
        job,
        &args(&["fetch", "--quiet", "--", "origin", git_ref]),
        &path,
    )
    .await
    .map_err(|e| format!("layer {name}: cannot fetch {git_ref}: {e}"))?;
    git(
        job,
        &args(&["checkout", "--quiet", "--detach", "FETCH_HEAD"]),
        &path,
    )
    .await
    .map_err(|e| format!("layer {name}: cannot check out {git_ref}: {e}"))?;
    let commit = capture(job, "git", &["rev-parse", "HEAD"], &path)
        .await
        .map_err(|e| format!("layer {name}: {e}"))?;
    job.log(format!("[kiln] layer {name} is at {commit}")).await;
    Ok(commit)
}

/// Runs git with `args` in `dir`, its output in the job's log.
async fn git(job: &Job, args: &[String], dir: &Path) -> Result<(), String> {
    match run_program(job, "git", args, dir, &[]).await? {
        Outcome::Done { .. } => Ok(()),
        Outcome::Error { message } => Err(message),
    }
}

/// The first line `program args` prints in `dir`, as the job's user.
async fn capture(job: &Job, program: &str, args: &[&str], dir: &Path) -> Result<String, String> {
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(user) = &job.run_as {
        command.uid(user.uid).gid(user.gid).env("HOME", &user.home);
    }
    let output = command
        .output()
        .await
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned())
}

async fn bitbake(job: &Job, spec: &BuildSpec, command: &[String]) -> Result<Outcome, String> {
    let dir = build_dir(job, spec);
    if !dir.join("conf").is_dir() {
        return Err(format!(
            "{} has no prepared build directory {}: the prepare step ran elsewhere or its directory was removed",
            host(),
            dir.display()
        ));
    }
    let program = resolve(&command[0]);
    let mut args: Vec<String> = command[1..].to_vec();
    args.extend(spec.targets.iter().cloned());
    job.log(format!(
        "[kiln] running {} {} in {} (build {} of this project, id {})",
        command[0],
        args.join(" "),
        dir.display(),
        spec.number,
        spec.id
    ))
    .await;
    let env = [("BUILDDIR".to_owned(), dir.display().to_string())];
    let outcome = run_program(job, &program, &args, &dir, &env).await?;
    if matches!(outcome, Outcome::Error { .. })
        && !job.cancel.is_cancelled()
        && let Err(error) = upload_failure_logs(job, &dir, &spec.machine).await
    {
        job.log(format!("[kiln] cannot upload the failure logs: {error}"))
            .await;
    }
    Ok(outcome)
}

/// Where BitBake says a failed task's log is.
const FAILURE_LOG_MARK: &str = "ERROR: Logfile of failure stored in: ";

/// The most of a cooker log read for the failed tasks' logs it names.
const MAX_COOKER_LOG_SCAN: u64 = 64 << 20;

/// Uploads the newest cooker log of `machine` and the failed tasks' logs it names.
async fn upload_failure_logs(job: &Job, dir: &Path, machine: &str) -> Result<(), String> {
    let cooker_logs = upload::find(
        dir,
        &[format!(
            "tmp/log/cooker/{}/*.log",
            glob::Pattern::escape(machine)
        )],
    )?;
    let Some(cooker_log) = this_builds(dir, cooker_logs)
        .into_iter()
        .max_by_key(|path| path.metadata().and_then(|m| m.modified()).ok())
    else {
        return Ok(());
    };
    let mut text = Vec::new();
    {
        use std::io::Read;
        std::fs::File::open(&cooker_log)
            .map_err(|e| format!("cannot read {}: {e}", cooker_log.display()))?
            .take(MAX_COOKER_LOG_SCAN)
            .read_to_end(&mut text)
            .map_err(|e| format!("cannot read {}: {e}", cooker_log.display()))?;
    }
    let root = dir
        .canonicalize()
        .map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
    let mut files = vec![cooker_log];
    for line in String::from_utf8_lossy(&text).lines() {
        let Some(named) = line.split_once(FAILURE_LOG_MARK).map(|(_, p)| p.trim()) else {
            continue;
        };
        match Path::new(named).canonicalize() {
            Ok(real) if real.starts_with(&root) && real.is_file() => {
                if !files.contains(&real) && files.len() < upload::MAX_FILES {
                    files.push(real);
                }
            }
            _ => {
                job.log(format!(
                    "[kiln] not uploading {named}: not a file in the build directory"
                ))
                .await
            }
        }
    }
    send_all(job, &files).await
}

async fn collect(job: &Job, spec: &BuildSpec, patterns: &[String]) -> Result<Outcome, String> {
    let dir = build_dir(job, spec);
    if !dir.is_dir() {
        return Err(format!(
            "{} has no build directory {}: the prepare step ran elsewhere or its directory was removed",
            host(),
            dir.display()
        ));
    }
    job.log(format!("[kiln] collecting {}", patterns.join(" ")))
        .await;
    let found = upload::find(&dir, patterns)?;
    let files = this_builds(&dir, found.clone());
    if files.len() < found.len() {
        job.log(format!(
            "[kiln] leaving {} files of earlier builds in {}",
            found.len() - files.len(),
            dir.display()
        ))
        .await;
    }
    send_all(job, &files).await?;
    let mut fields = Fields::new();
    fields.insert("artifacts".into(), json!(files.len()));
    Ok(Outcome::Done {
        fields,
        command: None,
    })
}

/// `files` without those earlier builds left in build directory `dir`: older than this
/// build's `conf/local.conf`, which its prepare step wrote.
fn this_builds(dir: &Path, files: Vec<PathBuf>) -> Vec<PathBuf> {
    let modified = |path: &Path| path.metadata().and_then(|m| m.modified());
    let Ok(since) = modified(&dir.join("conf").join("local.conf")) else {
        return files;
    };
    files
        .into_iter()
        .filter(|file| modified(file).is_ok_and(|at| at >= since))
        .collect()
}

/// Uploads `files` as artifacts named by their file names, stopping at the first refusal.
async fn send_all(job: &Job, files: &[PathBuf]) -> Result<(), String> {
    for path in files {
        if job.cancel.is_cancelled() {
            return Err("cancelled".into());
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let size = job.uploads.send(job.attempt, &name, path).await?;
        job.log(format!("[kiln] uploaded {name} ({size} bytes)"))
            .await;
    }
    Ok(())
}

/// `program`, or the program of that name next to this one when it is a bare name and
/// such a program exists.
fn resolve(program: &str) -> String {
    let bare = Path::new(program)
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
        && !program.contains('/');
    if bare
        && let Ok(exe) = std::env::current_exe()
        && let Some(beside) = exe.parent().map(|dir| dir.join(program))
        && beside.is_file()
    {
        return beside.display().to_string();
    }
    program.to_owned()
}

fn host() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(value: Value) -> Fields {
        value.as_object().cloned().unwrap_or_default()
    }

    fn build() -> Value {
        json!({
            "id": 1, "number": 3, "project": "p", "machine": "qemux86-64",
            "targets": ["core-image-minimal"],
            "layers": [{"name": "meta-x", "url": "file:///srv/x", "ref": "main", "subdirectory": ""},
                       {"name": "poky", "path": "/srv/poky"}],
            "local_conf": "", "bblayers_conf": ""
        })
    }

    #[test]
    fn steps_are_checked_before_anything_runs() {
        let (step, spec) = parse(&params(json!({"step": "bitbake", "build": build()}))).unwrap();
        assert_eq!(
            step,
            Step::Bitbake {
                command: vec!["bitbake".into()]
            }
        );
        assert_eq!(spec.layers.len(), 2);
        let (step, _) = parse(&params(json!({"step": "collect", "build": build()}))).unwrap();
        assert_eq!(
            step,
            Step::Collect {
                patterns: default_patterns("qemux86-64")
            }
        );
        let (step, _) = parse(&params(
            json!({"step": "bitbake", "command": ["fake-bitbake", "-k"], "build": build()}),
        ))
        .unwrap();
        assert_eq!(
            step,
            Step::Bitbake {
                command: vec!["fake-bitbake".into(), "-k".into()]
            }
        );
        let mut bad_layer = build();
        bad_layer["layers"][0]["name"] = json!("../etc");
        for (bad, field) in [
            (json!({"step": "prepare"}), "params.build"),
            (json!({"step": "deploy", "build": build()}), "params.step"),
            (
                json!({"step": "collect", "patterns": ["../x"], "build": build()}),
                "params.patterns",
            ),
            (
                json!({"step": "collect", "patterns": "*", "build": build()}),
                "params.patterns",
            ),
            (json!({"build": build()}), "params.step"),
            (
                json!({"step": "bitbake", "command": "bitbake x", "build": build()}),
                "params.command",
            ),
            (
                json!({"step": "bitbake", "command": [""], "build": build()}),
                "params.command",
            ),
            (
                json!({"step": "prepare", "build": bad_layer}),
                "params.build.layers",
            ),
        ] {
            let error = parse(&params(bad.clone())).unwrap_err();
            assert!(error.starts_with(field), "{bad}: {error}");
        }
    }

    #[test]
    fn bare_names_are_looked_up_beside_the_worker() {
        assert_eq!(resolve("/usr/bin/env"), "/usr/bin/env");
        assert_eq!(resolve("./bitbake"), "./bitbake");
        assert_eq!(resolve("no-such-program-here"), "no-such-program-here");
    }
}
