//! The `/worker` websocket: authenticates a worker by its token, registers it with the hub,
//! and carries its heartbeats, log lines, progress and replies to the services.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use app::live::Topic;
use app::ssr::audit::{self, Actor, Event};
use app::ssr::auth::client_addr;
use app::ssr::entities::workitems::Entity as Workitems;
use app::ssr::processes::instances::Reply;
use app::ssr::state::AppState;
use app::ssr::workers::hub::{Attached, Outgoing};
use app::ssr::workers::protocol::{
    Attempt, MAX_CAPACITY, MAX_FRAME_BYTES, PROTOCOL_VERSION, ServerFrame, WorkerFrame,
};
use app::ssr::workers::registry::{self, Introduction};
use app::ssr::workers::{leases, logs, tokens};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use futures_util::{SinkExt, StreamExt};
use sea_orm::EntityTrait;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// Replies of one connection being written at once; beyond them the connection reads no
/// further frames until one is answered.
const MAX_REPLYING: usize = 2 * MAX_CAPACITY as usize;

/// Frames of log lines and progress one connection holds while they are written; past
/// them it reads no further frames until one is written, and meanwhile keeps the worker's
/// leases itself, since the worker is waiting on the server, not gone.
const NEWS_BUFFER: usize = 16;

/// How long a new connection has to introduce itself.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// The close code telling a worker it was refused for what it said (it should not retry
/// unchanged).
pub const CLOSE_REFUSED: u16 = 4000;

/// The token of an `Authorization: Bearer` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Upgrades a request with a valid worker token; anything else is 401.
pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let addr = client_addr(&headers, Some(peer), state.auth.trust_forwarded_for);
    let token = match bearer(&headers) {
        Some(secret) if state.workers.is_embedded_secret(secret) => Ok(None),
        Some(secret) => match tokens::authenticate(&state.db, secret).await {
            Ok(Some(id)) => Ok(Some(id)),
            Ok(None) => Err("the worker token is not valid or has been revoked"),
            Err(_) => {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Kiln could not check the token.",
                )
                    .into_response();
            }
        },
        None => Err("a worker token is required: Authorization: Bearer TOKEN"),
    };
    let token = match token {
        Ok(token) => token,
        Err(reason) => {
            let event = Event::new("worker.denied", "worker", None, reason.to_owned());
            if let Err(error) = audit::record(&state.db, &Actor::anonymous(addr), event).await {
                tracing::warn!(%error, "cannot audit a refused worker");
            }
            return (StatusCode::UNAUTHORIZED, reason).into_response();
        }
    };
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| serve(state, socket, token, addr))
}

fn text(frame: &ServerFrame) -> Message {
    Message::Text(Utf8Bytes::from(
        serde_json::to_string(frame).unwrap_or_default(),
    ))
}

pub(crate) fn close(code: u16, reason: &str) -> Message {
    // A close reason holds at most 123 bytes.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(&reason[..end]),
    }))
}

/// Reads the worker's introduction.
async fn hello(socket: &mut WebSocket) -> Result<WorkerFrame, String> {
    let first = tokio::time::timeout(HELLO_TIMEOUT, socket.recv())
        .await
        .map_err(|_| "no hello within 10s".to_owned())?;
    match first {
        Some(Ok(Message::Text(text))) => {
            serde_json::from_str::<WorkerFrame>(&text).map_err(|e| format!("unreadable hello: {e}"))
        }
        _ => Err("the first frame must be a hello".into()),
    }
}

async fn serve(state: AppState, mut socket: WebSocket, token: Option<i64>, addr: Option<String>) {
    let hello = match hello(&mut socket).await {
        Ok(frame) => frame,
        Err(reason) => {
            let _ = socket.send(close(close_code::POLICY, &reason)).await;
            return;
        }
    };
    let WorkerFrame::Hello {
        protocol,
        name,
        host,
        version,
        participants,
        capacity,
        running,
    } = hello
    else {
        let _ = socket
            .send(close(close_code::POLICY, "the first frame must be a hello"))
            .await;
        return;
    };
    if protocol != PROTOCOL_VERSION {
        let reason = format!(
            "this server speaks worker protocol {PROTOCOL_VERSION}, not {protocol}: upgrade the worker"
        );
        let _ = socket.send(close(CLOSE_REFUSED, &reason)).await;
        return;
    }
    let introduction = Introduction {
        name,
        host,
        version,
        participants,
        capacity,
        token,
    };
    let row = match registry::connect(&state.db, introduction, addr).await {
        Ok(row) => row,
        Err(error) => {
            let _ = socket.send(close(CLOSE_REFUSED, &error.to_string())).await;
            return;
        }
    };
    let now = Utc::now();
    let lease_until = now + chrono::Duration::from_std(state.workers.lease).unwrap_or_default();
    let kept = match leases::reclaim(&state.db, row.id, &running, now, lease_until).await {
        Ok(kept) => kept,
        Err(_) => {
            let _ = socket.send(close(close_code::ERROR, "server error")).await;
            return;
        }
    };
    let participants: Vec<String> = serde_json::from_str(&row.participants).unwrap_or_default();
    let Attached { serial, outbox } = state.workers.attach(
        row.id,
        row.name.clone(),
        participants,
        usize::try_from(row.capacity).unwrap_or(1),
        row.draining,
        kept.clone(),
    );
    tracing::info!(worker = %row.name, id = row.id, "worker connected");
    let mut welcome = vec![ServerFrame::Welcome {
        worker_id: row.id,
        heartbeat_ms: u64::try_from(state.workers.heartbeat_interval().as_millis())
            .unwrap_or(10_000),
    }];
    welcome.extend(
        running
            .iter()
            .filter(|a| !kept.contains(a))
            .map(|&attempt| ServerFrame::Retract { attempt }),
    );
    let connection = Arc::new(Connection {
        state: state.clone(),
        worker: row.id,
        name: row.name.clone(),
        instances: Default::default(),
    });
    let reason = connection.run(socket, outbox, welcome).await;
    state.workers.detach(row.id, serial);
    if let Err(error) = registry::disconnected(&state.db, row.id).await {
        tracing::warn!(%error, "cannot record a worker's disconnection");
    }
    tracing::info!(worker = %row.name, id = row.id, %reason, "worker disconnected");
}

struct Connection {
    state: AppState,
    worker: i64,
    name: String,
    /// The process of each workitem this connection reported on.
    instances: std::sync::Mutex<std::collections::HashMap<i64, i64>>,
}

/// What a worker said that is written in the order it was said: log lines and progress.
enum News {
    Log {
        attempt: Attempt,
        lines: Vec<String>,
    },
    Progress {
        attempt: Attempt,
        text: String,
    },
}

impl Connection {
    /// Tells the page of the process running `workitem` that it has news.
    async fn publish_news(&self, workitem: i64) {
        let known = self
            .instances
            .lock()
            .ok()
            .and_then(|map| map.get(&workitem).copied());
        let instance = match known {
            Some(instance) => instance,
            None => match Workitems::find_by_id(workitem).one(&self.state.db).await {
                Ok(Some(row)) => {
                    if let Ok(mut map) = self.instances.lock() {
                        // Only recent workitems report; an old entry costs one query.
                        if map.len() >= 1024 {
                            map.clear();
                        }
                        map.insert(workitem, row.instance_id);
                    }
                    row.instance_id
                }
                _ => return,
            },
        };
        self.state.live.publish(Topic::Process(instance), None);
    }

    /// When `workitem` is a step of a build: keeps on the build what the reply says about
    /// where it ran, and returns the reply with the build's secrets masked.
    async fn build_step_replied(
        &self,
        workitem: i64,
        outcome: app::workflow::engine::Outcome,
    ) -> app::workflow::engine::Outcome {
        let state = &self.state;
        let build = match state.builds.build_of(&state.db, workitem).await {
            Ok(Some(build)) => build,
            Ok(None) => return outcome,
            Err(error) => {
                tracing::warn!(%error, workitem, "cannot look up a workitem's build");
                return outcome;
            }
        };
        let outcome = match state
            .builds
            .mask_outcome(&state.db, &state.data_dir, build, outcome)
            .await
        {
            Ok(masked) => masked,
            Err(error) => {
                // Nothing unmasked may reach the history: the reply says only that it failed.
                tracing::warn!(%error, build, "cannot mask a build step's reply");
                app::workflow::engine::Outcome::Error {
                    message: "the build step's reply could not be checked for secrets".into(),
                }
            }
        };
        if let app::workflow::engine::Outcome::Done { fields, .. } = &outcome {
            match app::ssr::builds::record_step(&state.db, build, fields).await {
                Ok(()) => state.live.publish(Topic::Build(build), None),
                Err(error) => tracing::warn!(%error, build, "cannot record where a build ran"),
            }
        }
        outcome
    }

    /// Serves the connection until it ends; returns why it ended.
    ///
    /// Reading frames never waits on the disk or the database: log lines and progress are
    /// written by a task of their own, in order, heartbeats by another, and replies each by
    /// a task of its own once the news read before them is written.
    async fn run(
        self: &Arc<Self>,
        socket: WebSocket,
        mut outbox: tokio::sync::mpsc::Receiver<Outgoing>,
        welcome: Vec<ServerFrame>,
    ) -> String {
        let (mut sink, mut stream) = socket.split();
        for frame in &welcome {
            if sink.send(text(frame)).await.is_err() {
                return "the connection failed".into();
            }
        }
        // A worker silent for a whole lease is gone.
        let silence = self.state.workers.lease;
        // Replies being written, each a task of its own: the connection reads on meanwhile,
        // so that a worker's replies are written together with other workers' rather than
        // one after another. Being tasks, they go on while this loop awaits other work: a
        // reply polled only from here would keep the database connection it holds while the
        // loop waits for one, and a few such connections starve the pool.
        let mut replying = JoinSet::new();
        let (news, written) = self.write_news();
        let beat = self.write_heartbeats();
        // The number of the latest news read; a reply waits until it is written.
        let mut said = 0u64;
        // News read while the writer's buffer was full; nothing more is read until it fits.
        let mut waiting: Option<(u64, News)> = None;
        let mut keep_leases = tokio::time::interval(self.state.workers.heartbeat_interval());
        loop {
            tokio::select! {
                incoming = tokio::time::timeout(silence, stream.next()), if replying.len() < MAX_REPLYING && waiting.is_none() => {
                    let message = match incoming {
                        Err(_) => {
                            let _ = sink.send(close(close_code::POLICY, "no heartbeat within the lease")).await;
                            return "no heartbeat within the lease".into();
                        }
                        Ok(None) => return "the worker closed the connection".into(),
                        Ok(Some(Err(error))) => return format!("the connection failed: {error}"),
                        Ok(Some(Ok(message))) => message,
                    };
                    let frame = match message {
                        Message::Text(text) => match serde_json::from_str::<WorkerFrame>(&text) {
                            Ok(frame) => frame,
                            Err(error) => {
                                let reason = format!("unreadable frame: {error}");
                                let _ = sink.send(close(close_code::POLICY, &reason)).await;
                                return reason;
                            }
                        },
                        Message::Binary(_) => {
                            let _ = sink.send(close(close_code::UNSUPPORTED, "frames are JSON text")).await;
                            return "a binary frame".into();
                        }
                        Message::Close(_) => return "the worker closed the connection".into(),
                        Message::Ping(_) | Message::Pong(_) => continue,
                    };
                    let told = match frame {
                        WorkerFrame::Hello { .. } => {
                            let reason = "hello was already said";
                            let _ = sink.send(close(close_code::POLICY, reason)).await;
                            return reason.into();
                        }
                        WorkerFrame::Heartbeat => {
                            beat.send_replace(());
                            continue;
                        }
                        WorkerFrame::Reply { attempt, outcome } => {
                            let connection = Arc::clone(self);
                            let mut written = written.clone();
                            replying.spawn(async move {
                                // The lines a step printed are in its log before its reply counts.
                                let _ = written.wait_for(|&done| done >= said).await;
                                connection.reply(attempt, outcome).await
                            });
                            continue;
                        }
                        WorkerFrame::Log { attempt, lines } => News::Log { attempt, lines },
                        WorkerFrame::Progress { attempt, text } => News::Progress { attempt, text },
                    };
                    said += 1;
                    match news.try_send((said, told)) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(item)) => waiting = Some(item),
                        Err(mpsc::error::TrySendError::Closed(_)) => return "the log writer stopped".into(),
                    }
                }
                room = news.reserve(), if waiting.is_some() => match (room, waiting.take()) {
                    (Ok(room), Some(item)) => room.send(item),
                    _ => return "the log writer stopped".into(),
                },
                _ = keep_leases.tick(), if waiting.is_some() => {
                    // The worker waits for the server to write what it sent: it is not gone.
                    beat.send_replace(());
                }
                Some(answer) = replying.join_next(), if !replying.is_empty() => {
                    if let Ok(Some(answer)) = answer
                        && sink.send(text(&answer)).await.is_err()
                    {
                        return "the connection failed".into();
                    }
                }
                outgoing = outbox.recv() => match outgoing {
                    Some(Outgoing::Frame(frame)) => {
                        if sink.send(text(&frame)).await.is_err() {
                            return "the connection failed".into();
                        }
                    }
                    Some(Outgoing::Close(reason)) => {
                        let _ = sink.send(close(close_code::AWAY, &reason)).await;
                        return reason;
                    }
                    None => return "the hub let go of the connection".into(),
                },
            }
        }
    }

    /// Starts the task that writes this connection's news in the order it was read, and
    /// returns where to send it and the number of the latest news written. The task ends
    /// once the connection has let go of the sender and everything sent is written.
    fn write_news(self: &Arc<Self>) -> (mpsc::Sender<(u64, News)>, watch::Receiver<u64>) {
        let (sender, mut receiver) = mpsc::channel::<(u64, News)>(NEWS_BUFFER);
        let (written, latest) = watch::channel(0u64);
        let connection = Arc::clone(self);
        tokio::spawn(async move {
            while let Some((number, news)) = receiver.recv().await {
                connection.take_news(news).await;
                written.send_replace(number);
            }
        });
        (sender, latest)
    }

    /// Starts the task that records the worker's heartbeats: each signal renews its leases,
    /// and signals sent while one is being written make one more write, not many.
    fn write_heartbeats(self: &Arc<Self>) -> watch::Sender<()> {
        let (beat, mut beats) = watch::channel(());
        let connection = Arc::clone(self);
        tokio::spawn(async move {
            while beats.changed().await.is_ok() {
                connection.heartbeat().await;
            }
        });
        beat
    }

    /// Renews the leases of what the worker runs.
    async fn heartbeat(&self) {
        let hub = &self.state.workers;
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(hub.lease).unwrap_or_default();
        let running = hub.running(self.worker);
        if let Err(error) =
            registry::heartbeat(&self.state.db, self.worker, &running, now, until).await
        {
            tracing::warn!(%error, worker = %self.name, "cannot record a heartbeat");
        }
    }

    /// Writes what the worker said about a workitem it runs.
    async fn take_news(&self, news: News) {
        let hub = &self.state.workers;
        match news {
            News::Log { attempt, mut lines } => {
                if !hub.runs(self.worker, attempt) {
                    return;
                }
                if let Some(header) = hub.take_header(self.worker, attempt) {
                    lines.insert(0, header);
                }
                let (state, data_dir) = (&self.state, &self.state.data_dir);
                // A build's steps write the build's log; other workitems their own.
                match state
                    .builds
                    .ingest(&state.db, data_dir, attempt.workitem, &lines)
                    .await
                {
                    // Viewers are told when what it said is written.
                    Ok(Some(_)) => return,
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(%error, workitem = attempt.workitem, "cannot take in a build log");
                        return;
                    }
                }
                if let Err(error) = logs::append(data_dir, attempt.workitem, &lines).await {
                    tracing::warn!(%error, workitem = attempt.workitem, "cannot write a workitem log");
                }
                self.publish_news(attempt.workitem).await;
            }
            News::Progress { attempt, text } => {
                if let Err(error) =
                    leases::progress(&self.state.db, self.worker, attempt, &text).await
                {
                    tracing::warn!(%error, "cannot record progress");
                }
                self.publish_news(attempt.workitem).await;
            }
        }
    }

    /// Writes a reply; returns the frame that answers it, or nothing when it could not be
    /// written (the worker sends it again when it reconnects).
    async fn reply(
        &self,
        attempt: Attempt,
        outcome: app::workflow::engine::Outcome,
    ) -> Option<ServerFrame> {
        let hub = &self.state.workers;
        let outcome = if hub.runs(self.worker, attempt) {
            self.build_step_replied(attempt.workitem, outcome).await
        } else {
            outcome
        };
        let reply = Reply {
            workitem: attempt.workitem,
            attempt: attempt.attempt,
            holder: Some(self.worker),
            outcome,
            by: self.name.clone(),
        };
        let taken = self.state.replies.take(reply).await;
        match taken {
            Ok(Ok(_)) => {
                hub.finished(self.worker, attempt);
                self.state.engine.wake();
                Some(ServerFrame::Replied { attempt })
            }
            Ok(Err(refused)) => {
                hub.finished(self.worker, attempt);
                tracing::warn!(worker = %self.name, workitem = attempt.workitem, attempt = attempt.attempt, %refused, "reply refused");
                Some(ServerFrame::Refused {
                    attempt,
                    reason: refused.to_string(),
                })
            }
            Err(_) => None,
        }
    }
}
