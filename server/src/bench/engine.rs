//! `kiln bench engine`: times the engine's transitions on a scratch database.
//!
//! `sequential_step_ms` runs one instance of 40 sequential `noop` steps; `outbox_step_ms` runs
//! 40 sequential steps of a participant outside the engine, each answered as soon as its
//! workitem is written, so every step costs a reply transaction and a transition.
//! `workitems_per_s` runs the real server with four workers connected over the worker
//! protocol, each answering its workitems at once, and counts the steps they get through;
//! `shell_workitems_per_s` does the same with four of Kiln's own workers running `true` for
//! each step, so that it also counts starting a program.
//! `trigger_to_start_p50_ms` and `_p99_ms` time signed webhook calls, one at a time, from
//! sending the call until a worker connected over the protocol receives the workitem of the
//! process it started.

use std::time::Instant;

use anyhow::{Context, anyhow};
use app::ssr::audit::Actor;
use app::ssr::entities::workitems::{Column as WorkitemColumn, Entity as Workitems};
use app::ssr::processes::instances::{self, Handled};
use app::ssr::processes::{DefinitionCache, Scope, definitions, participants};
use app::workflow::definition::Fields;
use app::workflow::engine::Outcome;
use chrono::Utc;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::database;

const STEPS: usize = 40;
const RUNS: usize = 20;

pub async fn run(database_url: Option<String>) -> anyhow::Result<()> {
    let (dir, store) = crate::bench::scratch_store(database_url)?;
    let db = database::connect(&store).await?;
    crate::bench::refuse_unless_empty(&db, &store.database_url).await?;
    database::migrate(&db).await?;
    participants::ensure_standard(&db)
        .await
        .map_err(|e| anyhow!("cannot register participants: {e}"))?;
    let cache = DefinitionCache::default();
    let steps = "    - participant: noop\n".repeat(STEPS);
    save(
        &db,
        &format!("name: noop-chain\nprocess:\n  sequence:\n{steps}"),
    )
    .await?;
    let steps = "    - participant: shell\n".repeat(STEPS);
    save(
        &db,
        &format!("name: shell-chain\nprocess:\n  sequence:\n{steps}"),
    )
    .await?;

    let mut sequential = Vec::new();
    let mut outbox = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let id = launch(&db, &cache, "noop-chain").await?;
        finished(&db, id).await?;
        sequential.push(started.elapsed().as_secs_f64() * 1000.0 / STEPS as f64);

        let started = Instant::now();
        let id = launch(&db, &cache, "shell-chain").await?;
        for _ in 0..STEPS {
            let workitem = Workitems::find()
                .filter(WorkitemColumn::InstanceId.eq(id))
                .filter(WorkitemColumn::State.eq("queued"))
                .one(&db)
                .await?
                .context("a workitem should be out")?;
            instances::reply(&db, workitem.id, workitem.attempt, None, done(), "bench")
                .await
                .map_err(|e| anyhow!("reply: {e}"))?
                .map_err(|e| anyhow!("reply refused: {e}"))?;
            drain(&db, &cache).await?;
        }
        finished(&db, id).await?;
        outbox.push(started.elapsed().as_secs_f64() * 1000.0 / STEPS as f64);
    }
    println!("sequential_step_ms: {:.3}", median(&mut sequential));
    println!("outbox_step_ms: {:.3}", median(&mut outbox));
    let figures = through_server(&db, &store, dir.path()).await?;
    println!("workitems_per_s: {:.1}", figures.workitems_per_s);
    println!(
        "shell_workitems_per_s: {:.1}",
        figures.shell_workitems_per_s
    );
    println!("trigger_to_start_p50_ms: {:.3}", figures.trigger_p50_ms);
    println!("trigger_to_start_p99_ms: {:.3}", figures.trigger_p99_ms);
    db.close().await.context("cannot close the database")?;
    dir.close().context("cannot delete the temporary directory")
}

/// Workers, and the workitems each runs at once, for `workitems_per_s` and
/// `shell_workitems_per_s`. With 128 workitems out at once the server, not the round trip of
/// each workitem, sets the pace: with 16 the figure was a third lower, with 512 no higher.
const WORKERS: u32 = 4;
const CAPACITY: u32 = 32;
/// Instances of `WORKITEM_STEPS` steps each.
const INSTANCES: usize = 1000;
const WORKITEM_STEPS: usize = 10;

/// Webhook calls timed for `trigger_to_start_*`.
const TRIGGER_CALLS: usize = 200;

/// What [`through_server`] measures.
struct ServerFigures {
    workitems_per_s: f64,
    shell_workitems_per_s: f64,
    trigger_p50_ms: f64,
    trigger_p99_ms: f64,
}

/// Starts the server and times `INSTANCES` processes of `WORKITEM_STEPS` worker steps, from
/// the first launch to the last end: first through workers that answer at once, then
/// through Kiln's own workers running `true`; then times webhook calls until their workitem
/// reaches a worker.
async fn through_server(
    db: &DatabaseConnection,
    store: &crate::config::StoreSettings,
    dir: &std::path::Path,
) -> anyhow::Result<ServerFigures> {
    use crate::config::{LogFormat, Settings};
    use crate::startup::Application;
    use crate::worker::{Worker, WorkerConfig};
    use tokio_util::sync::CancellationToken;

    // Made here so that the server does not print its announcement among the figures.
    app::ssr::accounts::ensure_first_admin(db, Some("bench-password"))
        .await
        .map_err(|e| anyhow!("cannot create the first administrator: {e}"))?;
    participants::save(
        db,
        &Actor::system(),
        participants::ParticipantInput {
            name: ECHO.into(),
            kind: "worker".into(),
            description: "Answered at once by the engine bench's own workers.".into(),
            ..Default::default()
        },
    )
    .await
    .map_err(|e| anyhow!("cannot register `{ECHO}`: {e}"))?;
    let steps = format!("    - participant: {ECHO}\n").repeat(WORKITEM_STEPS);
    save(
        db,
        &format!("name: echo-chain\nprocess:\n  sequence:\n{steps}"),
    )
    .await?;
    let steps =
        "    - participant: shell\n      params: { command: [\"true\"] }\n".repeat(WORKITEM_STEPS);
    save(
        db,
        &format!("name: true-chain\nprocess:\n  sequence:\n{steps}"),
    )
    .await?;
    let settings = Settings {
        store: store.clone(),
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        public_origin: None,
        site_root: dir.join("site"),
        auth: Default::default(),
        log_format: LogFormat::Text,
        admin_password: None,
        embedded_workers: 0,
        worker_lease: std::time::Duration::from_secs(30),
    };
    let application = Application::build(settings).await?;
    let address = application.local_addr()?;
    let url = format!("ws://{address}/worker");
    let engine = application.state().engine.clone();
    let keys = application.state().secrets.clone();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(application.run_until_stopped(shutdown.clone()));
    let secret = app::ssr::workers::tokens::create(db, &Actor::system(), "bench")
        .await
        .map_err(|e| anyhow!("token: {e}"))?
        .secret;

    let answering = shutdown.child_token();
    let mut workers = Vec::new();
    for n in 1..=WORKERS {
        let worker =
            ProtocolWorker::connect(&url, &secret, &format!("bench-echo-{n}"), ECHO, CAPACITY)
                .await?;
        workers.push(tokio::spawn(worker.answer_until(answering.clone())));
    }
    let workitems_per_s = run_chains(db, &engine, "echo-chain").await?;
    answering.cancel();
    for worker in workers {
        worker.await.context("a bench worker failed")??;
    }

    let running = shutdown.child_token();
    let workers: Vec<_> = (1..=WORKERS)
        .map(|n| {
            let config = WorkerConfig {
                url: url.clone(),
                token: secret.clone(),
                name: format!("bench-shell-{n}"),
                participants: vec!["shell".into()],
                capacity: CAPACITY,
                workdir: dir.join(format!("work-{n}")),
                run_as: None,
            };
            tokio::spawn(Worker::new(config).run(running.clone()))
        })
        .collect();
    let shell_workitems_per_s = run_chains(db, &engine, "true-chain").await?;
    running.cancel();
    for worker in workers {
        worker.await.context("a worker task failed")??;
    }

    let mut latencies =
        trigger_to_start(db, &keys, &format!("http://{address}"), &url, &secret).await?;
    shutdown.cancel();
    server.await.context("the server task failed")??;
    latencies.sort_by(f64::total_cmp);
    let at = |fraction: f64| {
        latencies[((latencies.len() as f64 * fraction) as usize).min(latencies.len() - 1)]
    };
    Ok(ServerFigures {
        workitems_per_s,
        shell_workitems_per_s,
        trigger_p50_ms: at(0.5),
        trigger_p99_ms: at(0.99),
    })
}

/// The worker participant the bench's own workers serve.
const ECHO: &str = "bench-echo";

/// Launches `INSTANCES` processes of definition `name` and waits for all of them to finish;
/// returns the steps they took per second, from the first launch to the last end.
async fn run_chains(
    db: &DatabaseConnection,
    engine: &app::ssr::processes::EngineHandle,
    name: &str,
) -> anyhow::Result<f64> {
    use app::ssr::entities::process_instances::{Column as InstanceColumn, Entity as Instances};
    use sea_orm::PaginatorTrait;

    let started = Instant::now();
    for _ in 0..INSTANCES {
        instances::launch(
            db,
            &engine.cache,
            &Actor::system(),
            Scope::Global,
            name,
            Fields::new(),
        )
        .await
        .map_err(|e| anyhow!("launch: {e}"))?;
        engine.wake();
    }
    loop {
        let finished = Instances::find()
            .filter(InstanceColumn::DefinitionName.eq(name))
            .filter(InstanceColumn::Status.eq("finished"))
            .count(db)
            .await?;
        if finished == INSTANCES as u64 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < std::time::Duration::from_secs(600),
            "only {finished} of {INSTANCES} `{name}` processes finished in ten minutes"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Ok((INSTANCES * WORKITEM_STEPS) as f64 / started.elapsed().as_secs_f64())
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A worker written for the bench: it speaks the protocol itself, so that the bench sees
/// each workitem as it arrives and what a step costs is the server's part alone.
pub(crate) struct ProtocolWorker {
    socket: Socket,
    heartbeat: std::time::Duration,
}

impl ProtocolWorker {
    /// Connects, introduces itself as serving `participant`, and waits for the welcome.
    pub(crate) async fn connect(
        url: &str,
        token: &str,
        name: &str,
        participant: &str,
        capacity: u32,
    ) -> anyhow::Result<Self> {
        use app::ssr::workers::protocol::{PROTOCOL_VERSION, ServerFrame, WorkerFrame};
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        use tokio_tungstenite::tungstenite::http::HeaderValue;

        let mut request = url.into_client_request()?;
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}"))?,
        );
        let (socket, _) = tokio_tungstenite::connect_async_with_config(request, None, true).await?;
        let mut worker = Self {
            socket,
            heartbeat: std::time::Duration::from_secs(10),
        };
        worker
            .send(&WorkerFrame::Hello {
                protocol: PROTOCOL_VERSION,
                name: name.into(),
                host: "bench".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                participants: vec![participant.into()],
                capacity,
                running: Vec::new(),
            })
            .await?;
        match worker.next_frame().await? {
            ServerFrame::Welcome { heartbeat_ms, .. } => {
                worker.heartbeat = std::time::Duration::from_millis(heartbeat_ms.max(1));
                Ok(worker)
            }
            other => anyhow::bail!("the server did not welcome the worker: {other:?}"),
        }
    }

    pub(crate) async fn send(
        &mut self,
        frame: &app::ssr::workers::protocol::WorkerFrame,
    ) -> anyhow::Result<()> {
        use futures_util::SinkExt;
        use tokio_tungstenite::tungstenite::Message;
        self.socket
            .send(Message::text(serde_json::to_string(frame)?))
            .await?;
        Ok(())
    }

    /// The next frame the server sends (cancel-safe: it only waits on the socket).
    pub(crate) async fn next_frame(
        &mut self,
    ) -> anyhow::Result<app::ssr::workers::protocol::ServerFrame> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            match self
                .socket
                .next()
                .await
                .context("the server closed the socket")??
            {
                Message::Text(text) => return Ok(serde_json::from_str(&text)?),
                Message::Close(frame) => anyhow::bail!("the server closed the socket: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// Replies to each workitem as soon as it arrives, heartbeating, until `stop`.
    async fn answer_until(
        mut self,
        stop: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<()> {
        use app::ssr::workers::protocol::{ServerFrame, WorkerFrame};

        let mut beat = tokio::time::interval(self.heartbeat);
        loop {
            tokio::select! {
                () = stop.cancelled() => {
                    self.socket.close(None).await?;
                    return Ok(());
                }
                _ = beat.tick() => self.send(&WorkerFrame::Heartbeat).await?,
                frame = self.next_frame() => {
                    if let ServerFrame::Workitem { attempt, .. } = frame? {
                        self.send(&WorkerFrame::Reply { attempt, outcome: done() }).await?;
                    }
                }
            }
        }
    }
}

fn done() -> Outcome {
    Outcome::Done {
        fields: Fields::new(),
        command: None,
    }
}

/// Times `TRIGGER_CALLS` signed webhook calls, each from sending it until a worker (this
/// function, speaking the worker protocol) receives the workitem of the process it started.
async fn trigger_to_start(
    db: &DatabaseConnection,
    keys: &app::ssr::secrets::Keyring,
    base: &str,
    socket_url: &str,
    worker_token: &str,
) -> anyhow::Result<Vec<f64>> {
    use app::ssr::triggers::{self, TriggerInput, webhook};
    use app::ssr::workers::protocol::{ServerFrame, WorkerFrame};
    use app::types::TriggerKind;

    save(
        db,
        "name: on-call\nprocess:\n  sequence:\n    - participant: shell\n      params: { command: [\"true\"] }\n",
    )
    .await?;
    let input = TriggerInput {
        name: "bench-hook".into(),
        definition: "on-call".into(),
        fields: Fields::new(),
        kind: TriggerKind::Webhook {
            mapping: Default::default(),
        },
    };
    let cache = DefinitionCache::default();
    let (trigger, secret) =
        triggers::create(db, keys, &cache, &Actor::system(), Scope::Global, input)
            .await
            .map_err(|e| anyhow!("trigger: {e}"))?;
    let secret = secret.context("a webhook has a secret")?;
    let hook = format!("{base}/hooks/{}", trigger.id);
    let mut worker =
        ProtocolWorker::connect(socket_url, worker_token, "bench-probe", "shell", 1).await?;

    let http = reqwest::Client::new();
    let body = b"{}".to_vec();
    let signature = webhook::sign(&secret, &body);
    let mut latencies = Vec::with_capacity(TRIGGER_CALLS);
    for _ in 0..TRIGGER_CALLS {
        let started = Instant::now();
        let response = http
            .post(&hook)
            .header(webhook::SIGNATURE_HEADER, &signature)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == reqwest::StatusCode::ACCEPTED,
            "the webhook answered {}",
            response.status()
        );
        let attempt = loop {
            if let ServerFrame::Workitem { attempt, .. } = worker.next_frame().await? {
                break attempt;
            }
        };
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        worker
            .send(&WorkerFrame::Reply {
                attempt,
                outcome: done(),
            })
            .await?;
    }
    worker.socket.close(None).await?;
    Ok(latencies)
}

async fn save(db: &DatabaseConnection, source: &str) -> anyhow::Result<()> {
    definitions::save(db, &Actor::system(), Scope::Global, source)
        .await
        .map_err(|e| anyhow!("definition: {:?}", app::error::AppError::from(e)))?;
    Ok(())
}

/// Launches `name` and handles messages until none is due.
async fn launch(
    db: &DatabaseConnection,
    cache: &DefinitionCache,
    name: &str,
) -> anyhow::Result<i64> {
    let actor = Actor::system();
    let id = instances::launch(db, cache, &actor, Scope::Global, name, Fields::new())
        .await
        .map_err(|e| anyhow!("launch: {e}"))?;
    drain(db, cache).await?;
    Ok(id)
}

/// Handles messages until none is due.
async fn drain(db: &DatabaseConnection, cache: &DefinitionCache) -> anyhow::Result<()> {
    loop {
        let Handled { messages, .. } = instances::handle_due(db, cache, Utc::now(), 256)
            .await
            .map_err(|e| anyhow!("engine: {e}"))?;
        if messages == 0 {
            return Ok(());
        }
    }
}

async fn finished(db: &DatabaseConnection, id: i64) -> anyhow::Result<()> {
    let (row, _) = instances::load(db, id)
        .await
        .map_err(|e| anyhow!("load: {e}"))?;
    anyhow::ensure!(row.status == "finished", "instance {id} is {}", row.status);
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}
