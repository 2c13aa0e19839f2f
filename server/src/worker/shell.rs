//! The `shell` participant: runs `params.command`, a program and its arguments (never
//! through a shell), in the process's directory under the worker's workdir, with
//! `params.env`, streaming its output; exit status 0 replies with `outcome: passed`,
//! anything else is an error naming the status and the last lines of output.

use std::collections::VecDeque;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::ssr::workers::protocol::MAX_LOG_LINE_BYTES;
use app::workflow::definition::Fields;
use app::workflow::engine::Outcome;
use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use super::{Job, RunAs};

/// The most arguments a command may have.
pub const MAX_ARGUMENTS: usize = 4096;

/// The most environment variables `params.env` may set.
pub const MAX_ENV: usize = 1024;

/// Lines of output quoted in the error when a command fails.
const TAIL_LINES: usize = 20;

/// How long a command has to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What `params` asks for, checked.
#[derive(Debug, PartialEq)]
struct Request {
    command: Vec<String>,
    cwd: PathBuf,
    env: Vec<(String, String)>,
}

fn parse(params: &Fields) -> Result<Request, String> {
    let command = match params.get("command") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err("params.command: every item must be a string".to_owned()),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(Value::String(_)) => {
            return Err("params.command: give a list (program, then arguments), not a string; it is never run through a shell".into());
        }
        _ => {
            return Err(
                "params.command: a list with the program and its arguments is required".into(),
            );
        }
    };
    if command.len() > MAX_ARGUMENTS {
        return Err(format!("params.command: at most {MAX_ARGUMENTS} items"));
    }
    if command.iter().any(|a| a.contains('\0')) {
        return Err("params.command: items cannot contain NUL".into());
    }
    let cwd = match params.get("cwd") {
        None | Some(Value::Null) => PathBuf::new(),
        Some(Value::String(dir)) => {
            let path = Path::new(dir);
            if !path
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
            {
                return Err(
                    "params.cwd: a relative path inside the process directory, without `..`".into(),
                );
            }
            path.to_path_buf()
        }
        Some(_) => return Err("params.cwd: must be a string".into()),
    };
    let env = match params.get("env") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(vars)) => {
            if vars.len() > MAX_ENV {
                return Err(format!("params.env: at most {MAX_ENV} variables"));
            }
            vars.iter()
                .map(|(name, value)| {
                    let valid = !name.is_empty()
                        && !name.starts_with(|c: char| c.is_ascii_digit())
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if !valid {
                        return Err(format!("params.env: `{name}` is not a variable name"));
                    }
                    let value = match value {
                        Value::String(s) => s.clone(),
                        Value::Number(_) | Value::Bool(_) => value.to_string(),
                        _ => return Err(format!("params.env.{name}: must be a string")),
                    };
                    if value.contains('\0') {
                        return Err(format!("params.env.{name}: cannot contain NUL"));
                    }
                    Ok((name.clone(), value))
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        Some(_) => return Err("params.env: must be a mapping of names to values".into()),
    };
    Ok(Request { command, cwd, env })
}

/// Runs the job's command; returns its outcome. Cancelling the job stops the command.
pub async fn run(job: Job) -> Outcome {
    match execute(&job).await {
        Ok(outcome) => outcome,
        Err(message) => Outcome::Error { message },
    }
}

async fn execute(job: &Job) -> Result<Outcome, String> {
    let request = parse(&job.params)?;
    let dir = job.process_dir.join(&request.cwd);
    make_dir(&job.process_dir, job.run_as.as_ref())?;
    if !dir.is_dir() {
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    run_program(
        job,
        &request.command[0],
        &request.command[1..],
        &dir,
        &request.env,
    )
    .await
}

/// Runs `program` with `args` in `dir` with `env` added, streaming its output as the job's
/// log; exit status 0 is `outcome: passed`, anything else an error naming the status and
/// the last lines of output. Cancelling the job stops the program and what it started.
pub(super) async fn run_program(
    job: &Job,
    program: &str,
    args: &[String],
    dir: &Path,
    env: &[(String, String)],
) -> Result<Outcome, String> {
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("KILN_PROCESS", job.instance.to_string())
        .env("KILN_WORKITEM", job.attempt.workitem.to_string())
        .env("KILN_ATTEMPT", job.attempt.attempt.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Its own process group, so that stopping it stops what it started.
        .process_group(0);
    if let Some(user) = &job.run_as {
        command
            .uid(user.uid)
            .gid(user.gid)
            .env("HOME", &user.home)
            .env("USER", &user.name)
            .env("LOGNAME", &user.name);
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    let group = child.id().and_then(|id| i32::try_from(id).ok());
    let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
    let readers = [
        child
            .stdout
            .take()
            .map(|out| tokio::spawn(forward(out, job.clone(), tail.clone()))),
        child
            .stderr
            .take()
            .map(|err| tokio::spawn(forward(err, job.clone(), tail.clone()))),
    ];
    let status = tokio::select! {
        status = child.wait() => status.map_err(|e| format!("waiting for `{program}` failed: {e}"))?,
        () = job.cancel.cancelled() => {
            stop(group, &mut child).await;
            return Err("stopped: the workitem was retracted".into());
        }
    };
    // Whatever it left running in its group goes too, so that nothing holds the pipes.
    signal_group(group, nix::sys::signal::Signal::SIGKILL);
    for reader in readers.into_iter().flatten() {
        let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
    }
    if status.success() {
        let mut fields = Fields::new();
        fields.insert("exit_status".into(), json!(0));
        fields.insert("outcome".into(), json!("passed"));
        return Ok(Outcome::Done {
            fields,
            command: None,
        });
    }
    use std::os::unix::process::ExitStatusExt;
    let how = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!(
            "was killed by signal {}",
            nix::sys::signal::Signal::try_from(signal)
                .map_or_else(|_| signal.to_string(), |s| s.to_string())
        ),
        (None, None) => "failed".to_owned(),
    };
    let last: Vec<String> = tail
        .lock()
        .map(|t| t.iter().cloned().collect())
        .unwrap_or_default();
    let mut message = format!("`{program}` {how}");
    if !last.is_empty() {
        message.push_str("; last output:\n");
        message.push_str(&last.join("\n"));
    }
    Ok(Outcome::Error { message })
}

/// Creates the process directory, owned by the user commands run as, unless an earlier step
/// of the process made it.
pub(super) fn make_dir(dir: &Path, run_as: Option<&RunAs>) -> Result<(), String> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    if let Some(user) = run_as {
        std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid))
            .map_err(|e| format!("cannot give {} to {}: {e}", dir.display(), user.name))?;
    }
    Ok(())
}

fn signal_group(group: Option<i32>, signal: nix::sys::signal::Signal) {
    if let Some(pid) = group {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), signal);
    }
}

/// SIGTERM to the command's group, then SIGKILL if it has not stopped in time.
async fn stop(group: Option<i32>, child: &mut tokio::process::Child) {
    signal_group(group, nix::sys::signal::Signal::SIGTERM);
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        signal_group(group, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait().await;
    }
    signal_group(group, nix::sys::signal::Signal::SIGKILL);
}

/// Reads one line of `reader` into `buffer`, keeping at most `max` bytes of it and
/// skipping the rest, so that a line without end cannot fill the worker's memory. Returns
/// the bytes read, 0 at the end.
async fn read_line_bounded(
    reader: &mut (impl AsyncBufRead + Unpin),
    buffer: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<usize> {
    let mut read = 0;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(read);
        }
        let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
            Some(end) => (&available[..=end], true),
            None => (available, false),
        };
        let room = max.saturating_sub(buffer.len());
        buffer.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = chunk.len();
        reader.consume(used);
        read += used;
        if done {
            return Ok(read);
        }
    }
}

/// Sends each line of `output` to the server (invalid UTF-8 becomes U+FFFD; a line longer
/// than the protocol keeps is cut) and keeps the last few for the error message.
async fn forward(output: impl AsyncRead + Unpin, job: Job, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut reader = BufReader::new(output);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match read_line_bounded(&mut reader, &mut buffer, MAX_LOG_LINE_BYTES + 1).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut line = String::from_utf8_lossy(&buffer)
            .trim_end_matches(['\n', '\r'])
            .to_owned();
        if line.len() > MAX_LOG_LINE_BYTES {
            let mut end = MAX_LOG_LINE_BYTES;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line.truncate(end);
            line.push_str(" [kiln: line cut]");
        }
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.chars().take(512).collect());
        }
        job.log(line).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(value: Value) -> Fields {
        value.as_object().cloned().unwrap()
    }

    #[tokio::test]
    async fn lines_are_read_up_to_a_bound_and_the_rest_skipped() {
        let mut input = vec![b'x'; 10 * 1024 * 1024];
        input.extend_from_slice(b"\nbad \xff\xfe bytes\nlast");
        let mut reader = BufReader::new(input.as_slice());
        let mut buffer = Vec::new();
        let read = read_line_bounded(&mut reader, &mut buffer, 100)
            .await
            .unwrap();
        assert_eq!(read, 10 * 1024 * 1024 + 1);
        assert_eq!(buffer, vec![b'x'; 100]);
        buffer.clear();
        read_line_bounded(&mut reader, &mut buffer, 100)
            .await
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&buffer),
            "bad \u{fffd}\u{fffd} bytes\n"
        );
        buffer.clear();
        assert_eq!(
            read_line_bounded(&mut reader, &mut buffer, 100)
                .await
                .unwrap(),
            4
        );
        buffer.clear();
        assert_eq!(
            read_line_bounded(&mut reader, &mut buffer, 100)
                .await
                .unwrap(),
            0
        );
    }

    #[test]
    fn commands_are_lists_and_paths_stay_inside() {
        let ok = parse(&params(json!({"command": ["make", "-j", 4], "cwd": "src/./x", "env": {"CC": "gcc", "JOBS": 4}}))).unwrap();
        assert_eq!(ok.command, ["make", "-j", "4"]);
        assert_eq!(ok.cwd, PathBuf::from("src/./x"));
        assert_eq!(
            ok.env,
            [("CC".into(), "gcc".into()), ("JOBS".into(), "4".into())]
        );
        for (bad, field) in [
            (json!({"command": "make check"}), "params.command"),
            (json!({"command": []}), "params.command"),
            (json!({}), "params.command"),
            (json!({"command": ["a", {"x": 1}]}), "params.command"),
            (json!({"command": ["a"], "cwd": "../etc"}), "params.cwd"),
            (json!({"command": ["a"], "cwd": "/etc"}), "params.cwd"),
            (json!({"command": ["a"], "env": {"A B": "x"}}), "params.env"),
            (
                json!({"command": ["a"], "env": {"A": ["x"]}}),
                "params.env.A",
            ),
        ] {
            let error = parse(&params(bad.clone())).unwrap_err();
            assert!(error.starts_with(field), "{bad}: {error}");
        }
    }
}
