//! `kiln worker`, and the embedded workers of `kiln serve`: a websocket client that takes
//! workitems from a Kiln server, runs them with the participant they are for, streams their
//! output and replies, reconnecting with backoff when the connection fails.

mod build;
mod client;
mod shell;
mod upload;

use std::path::PathBuf;

use anyhow::{Context, bail};
use app::ssr::workers::protocol::Attempt;
use app::workflow::definition::Fields;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use client::Worker;

/// The participants this worker program can serve.
pub const SERVABLE: &[&str] = &["shell", "build"];

/// The user participant commands run as.
#[derive(Debug, Clone)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

impl RunAs {
    /// Looks `name` up; only root can run commands as another user.
    pub fn resolve(name: &str) -> anyhow::Result<Self> {
        if !nix::unistd::geteuid().is_root() {
            bail!("--run-as needs the worker to run as root");
        }
        let user = nix::unistd::User::from_name(name)
            .with_context(|| format!("cannot look up user {name}"))?
            .with_context(|| format!("there is no user {name}"))?;
        Ok(Self {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            home: user.dir,
        })
    }
}

/// How a worker connects and what it serves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The server's `/worker` websocket URL.
    pub url: String,
    pub token: String,
    pub name: String,
    pub participants: Vec<String>,
    pub capacity: u32,
    pub workdir: PathBuf,
    pub run_as: Option<RunAs>,
}

impl WorkerConfig {
    /// Checks what this program can serve.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.participants.is_empty() {
            bail!("--participants: name at least one participant");
        }
        for participant in &self.participants {
            if !SERVABLE.contains(&participant.as_str()) {
                bail!(
                    "--participants: this worker cannot serve `{participant}`; it serves {}",
                    SERVABLE.join(", ")
                );
            }
        }
        if self.capacity == 0 {
            bail!("--capacity must be at least 1");
        }
        Ok(())
    }
}

/// `http(s)://host[/prefix]` (or `ws(s)://...`) as the `/worker` websocket URL.
pub fn socket_url(server: &str) -> anyhow::Result<String> {
    let server = server.trim().trim_end_matches('/');
    let (scheme, rest) = server
        .split_once("://")
        .with_context(|| format!("--server: `{server}` is not a URL"))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => bail!("--server: the scheme must be http or https, not {other}"),
    };
    if rest.is_empty() {
        bail!("--server: `{server}` has no host");
    }
    let rest = rest.strip_suffix("/worker").unwrap_or(rest);
    Ok(format!("{scheme}://{rest}/worker"))
}

/// What a running job tells its connection.
#[derive(Debug)]
pub enum JobEvent {
    Log(Attempt, String),
    Done(Attempt, app::workflow::engine::Outcome),
}

/// One attempt being run, and what it needs.
#[derive(Clone)]
pub struct Job {
    pub attempt: Attempt,
    pub instance: i64,
    pub params: Fields,
    pub fields: Fields,
    /// The name of the worker running it.
    pub worker: String,
    /// The directory the process's steps run in on this worker.
    pub process_dir: PathBuf,
    pub run_as: Option<RunAs>,
    pub cancel: CancellationToken,
    /// Where the job's artifacts go.
    pub uploads: std::sync::Arc<upload::Uploads>,
    events: mpsc::Sender<JobEvent>,
}

impl Job {
    /// Sends an output line. When the connection is behind, this waits, and the program
    /// printing waits with it: no line is dropped.
    pub async fn log(&self, line: String) {
        // Closed only when the worker stops, and the job with it.
        let _ = self.events.send(JobEvent::Log(self.attempt, line)).await;
    }
}

/// Runs `job` with the participant it is for. A step that succeeds replies with the fields
/// it was given plus those it sets, so a sequence keeps its fields from step to step.
async fn perform(participant: &str, job: Job) -> app::workflow::engine::Outcome {
    use app::workflow::engine::Outcome;
    let given = job.fields.clone();
    let outcome = match participant {
        "shell" => shell::run(job).await,
        "build" => build::run(job).await,
        other => Outcome::Error {
            message: format!("this worker cannot serve `{other}`"),
        },
    };
    match outcome {
        Outcome::Done { fields, command } => {
            let mut all = given;
            all.extend(fields);
            Outcome::Done {
                fields: all,
                command,
            }
        }
        error => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_become_socket_urls() {
        assert_eq!(
            socket_url("http://127.0.0.1:3000").unwrap(),
            "ws://127.0.0.1:3000/worker"
        );
        assert_eq!(
            socket_url("https://kiln.example.com/").unwrap(),
            "wss://kiln.example.com/worker"
        );
        assert_eq!(
            socket_url("wss://k/ci/worker").unwrap(),
            "wss://k/ci/worker"
        );
        assert!(socket_url("ftp://x").is_err());
        assert!(socket_url("kiln.example.com").is_err());
    }

    #[tokio::test]
    async fn a_job_ahead_of_its_connection_waits_and_loses_no_line() {
        let (events, mut received) = mpsc::channel(2);
        let attempt = Attempt {
            workitem: 7,
            attempt: 1,
        };
        let job = Job {
            attempt,
            instance: 1,
            params: Fields::new(),
            fields: Fields::new(),
            worker: "test".into(),
            process_dir: PathBuf::from("unused"),
            run_as: None,
            cancel: CancellationToken::new(),
            uploads: upload::Uploads::new("ws://127.0.0.1:1/worker", "token"),
            events,
        };
        let printing = tokio::spawn(async move {
            for n in 0..100 {
                job.log(format!("line {n}")).await;
            }
        });
        // Far more lines than the channel holds, read only once the job is well ahead.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!printing.is_finished(), "the job waits for its connection");
        for n in 0..100 {
            match received.recv().await {
                Some(JobEvent::Log(a, line)) => {
                    assert_eq!(a, attempt);
                    assert_eq!(line, format!("line {n}"));
                }
                other => panic!("expected line {n}, got {other:?}"),
            }
        }
        printing.await.unwrap();
    }
}
