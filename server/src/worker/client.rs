//! The worker's connection loop: connect, introduce itself, take workitems, stream what
//! they print, reply, heartbeat; on failure, reconnect with backoff and carry on with the
//! jobs that are still running and the replies not yet answered.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use app::ssr::workers::protocol::{
    Attempt, MAX_FRAME_BYTES, PROTOCOL_VERSION, ServerFrame, WorkerFrame,
};
use app::workflow::engine::Outcome;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

use super::upload::Uploads;
use super::{Job, JobEvent, WorkerConfig, perform};

/// The first pause before reconnecting; it doubles on each failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Events buffered between the jobs and the connection; beyond them a job waits to print.
const EVENT_BUFFER: usize = 4096;

/// Most lines sent in one log frame, and most bytes.
const LINES_PER_FRAME: usize = 500;
const BYTES_PER_FRAME: usize = MAX_FRAME_BYTES / 2;

/// How one connection ended.
enum Ended {
    Shutdown,
    /// Try again after a pause; `welcomed` says whether the server had taken the worker.
    Retry {
        reason: String,
        welcomed: bool,
    },
}

/// A worker: its jobs and unanswered replies outlive its connections.
pub struct Worker {
    config: WorkerConfig,
    jobs: HashMap<Attempt, CancellationToken>,
    unanswered: BTreeMap<Attempt, Outcome>,
    events: mpsc::Receiver<JobEvent>,
    events_tx: mpsc::Sender<JobEvent>,
    /// An event taken from the channel while gathering log lines, to be sent next.
    pending: Option<JobEvent>,
    uploads: Arc<Uploads>,
}

impl Worker {
    pub fn new(config: WorkerConfig) -> Self {
        let (events_tx, events) = mpsc::channel(EVENT_BUFFER);
        Self {
            uploads: Uploads::new(&config.url, &config.token),
            config,
            jobs: HashMap::new(),
            unanswered: BTreeMap::new(),
            events,
            events_tx,
            pending: None,
        }
    }

    /// Serves until `shutdown`; fails only when the server refuses the worker for good
    /// (a bad token, a participant it does not know, another protocol version).
    pub async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.config.check()?;
        let mut backoff = MIN_BACKOFF;
        loop {
            match self.session(&shutdown).await? {
                Ended::Shutdown => {
                    for cancel in self.jobs.values() {
                        cancel.cancel();
                    }
                    return Ok(());
                }
                Ended::Retry { reason, welcomed } => {
                    if welcomed {
                        backoff = MIN_BACKOFF;
                    }
                    tracing::warn!(worker = %self.config.name, %reason, retry_in = ?backoff, "worker connection ended");
                }
            }
            // Up to a quarter more, so that many workers do not come back at once.
            let jitter = backoff.mul_f64(rand::random::<f64>() / 4.0);
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(backoff + jitter) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn session(&mut self, shutdown: &CancellationToken) -> anyhow::Result<Ended> {
        let mut request = self
            .config
            .url
            .as_str()
            .into_client_request()
            .context("invalid server URL")?;
        request.headers_mut().insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {}", self.config.token))
                .context("the token holds characters a header cannot")?,
        );
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_FRAME_BYTES))
            .max_frame_size(Some(MAX_FRAME_BYTES));
        let connected = tokio::select! {
            () = shutdown.cancelled() => return Ok(Ended::Shutdown),
            connected = tokio_tungstenite::connect_async_with_config(request, Some(config), true) => connected,
        };
        let socket = match connected {
            Ok((socket, _)) => socket,
            Err(WsError::Http(response)) if response.status() == StatusCode::UNAUTHORIZED => {
                let body = response
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default()
                    .into_owned();
                bail!("the server refused the worker: {body}");
            }
            Err(error) => {
                return Ok(Ended::Retry {
                    reason: format!("cannot connect to {}: {error}", self.config.url),
                    welcomed: false,
                });
            }
        };
        let (mut sink, mut stream) = socket.split();
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default();
        let hello = WorkerFrame::Hello {
            protocol: PROTOCOL_VERSION,
            name: self.config.name.clone(),
            host,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            participants: self.config.participants.clone(),
            capacity: self.config.capacity,
            running: self
                .jobs
                .keys()
                .chain(self.unanswered.keys())
                .copied()
                .collect(),
        };
        let mut welcomed = false;
        let mut heartbeat = tokio::time::interval(Duration::from_secs(10));
        let outgoing =
            std::iter::once(hello).chain(self.unanswered.iter().map(|(&attempt, outcome)| {
                WorkerFrame::Reply {
                    attempt,
                    outcome: outcome.clone(),
                }
            }));
        for frame in outgoing.collect::<Vec<_>>() {
            if let Err(error) = sink.send(encode(&frame)).await {
                return Ok(Ended::Retry {
                    reason: format!("cannot send: {error}"),
                    welcomed,
                });
            }
        }
        loop {
            if let Some(event) = self.pending.take() {
                let frame = self.on_event(event);
                let frame = self.with_more_lines(frame);
                if let Err(error) = sink.send(encode(&frame)).await {
                    return Ok(Ended::Retry {
                        reason: format!("cannot send: {error}"),
                        welcomed,
                    });
                }
                continue;
            }
            let frame = tokio::select! {
                () = shutdown.cancelled() => {
                    let _ = sink.send(Message::Close(None)).await;
                    return Ok(Ended::Shutdown);
                }
                _ = heartbeat.tick(), if welcomed => Some(WorkerFrame::Heartbeat),
                event = self.events.recv() => event.map(|event| self.on_event(event)),
                incoming = stream.next() => {
                    let message = match incoming {
                        None => return Ok(Ended::Retry { reason: "the server closed the connection".into(), welcomed }),
                        Some(Err(error)) => return Ok(Ended::Retry { reason: error.to_string(), welcomed }),
                        Some(Ok(message)) => message,
                    };
                    match message {
                        Message::Text(text) => match serde_json::from_str::<ServerFrame>(&text) {
                            Ok(ServerFrame::Welcome { heartbeat_ms, .. }) => {
                                welcomed = true;
                                heartbeat = tokio::time::interval(Duration::from_millis(heartbeat_ms.max(100)));
                                tracing::info!(worker = %self.config.name, url = %self.config.url, "worker connected");
                            }
                            Ok(frame) => self.on_frame(frame),
                            Err(error) => tracing::warn!(%error, "unreadable frame from the server ignored"),
                        },
                        Message::Close(frame) => {
                            let reason = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                            if let Some((crate::http::worker_socket::CLOSE_REFUSED, reason)) = &reason {
                                bail!("the server refused the worker: {reason}");
                            }
                            return Ok(Ended::Retry {
                                reason: reason.map_or_else(|| "closed by the server".into(), |(_, r)| format!("closed by the server: {r}")),
                                welcomed,
                            });
                        }
                        _ => {}
                    }
                    None
                }
            };
            let Some(frame) = frame else { continue };
            let frame = self.with_more_lines(frame);
            if let Err(error) = sink.send(encode(&frame)).await {
                return Ok(Ended::Retry {
                    reason: format!("cannot send: {error}"),
                    welcomed,
                });
            }
        }
    }

    /// Turns a job's event into a frame.
    fn on_event(&mut self, event: JobEvent) -> WorkerFrame {
        match event {
            JobEvent::Log(attempt, line) => WorkerFrame::Log {
                attempt,
                lines: vec![line],
            },
            JobEvent::Done(attempt, outcome) => {
                self.jobs.remove(&attempt);
                self.unanswered.insert(attempt, outcome.clone());
                WorkerFrame::Reply { attempt, outcome }
            }
        }
    }

    /// Adds the log lines already waiting for the same attempt to a log frame.
    fn with_more_lines(&mut self, frame: WorkerFrame) -> WorkerFrame {
        let WorkerFrame::Log { attempt, mut lines } = frame else {
            return frame;
        };
        let mut bytes: usize = lines.iter().map(String::len).sum();
        while lines.len() < LINES_PER_FRAME && bytes < BYTES_PER_FRAME {
            match self.events.try_recv() {
                Ok(JobEvent::Log(a, line)) if a == attempt => {
                    bytes += line.len();
                    lines.push(line);
                }
                Ok(other) => {
                    // Sent right after this frame, keeping the order.
                    self.pending = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        WorkerFrame::Log { attempt, lines }
    }

    fn on_frame(&mut self, frame: ServerFrame) {
        match frame {
            ServerFrame::Welcome { .. } => {}
            ServerFrame::Workitem {
                attempt,
                instance,
                participant,
                params,
                fields,
            } => {
                if self.jobs.contains_key(&attempt) || self.unanswered.contains_key(&attempt) {
                    return;
                }
                let cancel = CancellationToken::new();
                let job = Job {
                    attempt,
                    instance,
                    params,
                    fields,
                    worker: self.config.name.clone(),
                    process_dir: self.config.workdir.join(format!("process-{instance}")),
                    run_as: self.config.run_as.clone(),
                    cancel: cancel.clone(),
                    uploads: self.uploads.clone(),
                    events: self.events_tx.clone(),
                };
                self.jobs.insert(attempt, cancel);
                tracing::info!(workitem = attempt.workitem, attempt = attempt.attempt, %participant, "workitem started");
                let events = self.events_tx.clone();
                tokio::spawn(async move {
                    let outcome = perform(&participant, job).await;
                    let _ = events.send(JobEvent::Done(attempt, outcome)).await;
                });
            }
            ServerFrame::Retract { attempt } => {
                if let Some(cancel) = self.jobs.remove(&attempt) {
                    tracing::info!(
                        workitem = attempt.workitem,
                        attempt = attempt.attempt,
                        "workitem retracted"
                    );
                    cancel.cancel();
                }
                self.unanswered.remove(&attempt);
            }
            ServerFrame::Replied { attempt } => {
                self.unanswered.remove(&attempt);
            }
            ServerFrame::Refused { attempt, reason } => {
                tracing::warn!(workitem = attempt.workitem, attempt = attempt.attempt, %reason, "the server refused a reply");
                self.unanswered.remove(&attempt);
            }
        }
    }
}

fn encode(frame: &WorkerFrame) -> Message {
    Message::text(serde_json::to_string(frame).unwrap_or_default())
}
