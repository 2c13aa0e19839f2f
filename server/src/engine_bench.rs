//! `kiln bench engine`: times the engine's transitions on a scratch database.
//!
//! `sequential_step_ms` runs one instance of 40 sequential `noop` steps; `outbox_step_ms` runs
//! 40 sequential steps of a participant outside the engine, each answered as soon as its
//! workitem is written, so every step costs a reply transaction and a transition.
//! `workitems_per_s` runs the real server with four workers connected over the worker
//! protocol and counts the `shell` steps (each running `true`) they get through.

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
            let done = Outcome::Done {
                fields: Fields::new(),
                command: None,
            };
            instances::reply(&db, workitem.id, workitem.attempt, None, done, "bench")
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
    let rate = through_workers(&db, &store, dir.path()).await?;
    println!("workitems_per_s: {rate:.1}");
    db.close().await.context("cannot close the database")?;
    dir.close().context("cannot delete the temporary directory")
}

/// Workers and their capacity for `workitems_per_s`.
const WORKERS: u32 = 4;
const CAPACITY: u32 = 4;
/// Instances of `WORKITEM_STEPS` steps each.
const INSTANCES: usize = 1000;
const WORKITEM_STEPS: usize = 10;

/// Starts the server, connects the workers and times `INSTANCES` processes of
/// `WORKITEM_STEPS` `shell` steps from the first launch to the last end.
async fn through_workers(
    db: &DatabaseConnection,
    store: &crate::config::StoreSettings,
    dir: &std::path::Path,
) -> anyhow::Result<f64> {
    use crate::config::{LogFormat, Settings};
    use crate::startup::Application;
    use crate::worker::{Worker, WorkerConfig};
    use app::ssr::entities::process_instances::{Column as InstanceColumn, Entity as Instances};
    use sea_orm::PaginatorTrait;
    use tokio_util::sync::CancellationToken;

    // Made here so that the server does not print its announcement among the figures.
    app::ssr::accounts::ensure_first_admin(db, Some("bench-password"))
        .await
        .map_err(|e| anyhow!("cannot create the first administrator: {e}"))?;
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
    let url = format!("ws://{}/worker", application.local_addr()?);
    let engine = application.state().engine.clone();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(application.run_until_stopped(shutdown.clone()));
    let secret = app::ssr::workers::tokens::create(db, &Actor::system(), "bench")
        .await
        .map_err(|e| anyhow!("token: {e}"))?
        .secret;
    let workers: Vec<_> = (1..=WORKERS)
        .map(|n| {
            let config = WorkerConfig {
                url: url.clone(),
                token: secret.clone(),
                name: format!("bench-{n}"),
                participants: vec!["shell".into()],
                capacity: CAPACITY,
                workdir: dir.join(format!("work-{n}")),
                run_as: None,
            };
            tokio::spawn(Worker::new(config).run(shutdown.clone()))
        })
        .collect();

    let started = Instant::now();
    for _ in 0..INSTANCES {
        instances::launch(
            db,
            &engine.cache,
            &Actor::system(),
            Scope::Global,
            "true-chain",
            Fields::new(),
        )
        .await
        .map_err(|e| anyhow!("launch: {e}"))?;
        engine.wake();
    }
    loop {
        let finished = Instances::find()
            .filter(InstanceColumn::DefinitionName.eq("true-chain"))
            .filter(InstanceColumn::Status.eq("finished"))
            .count(db)
            .await?;
        if finished == INSTANCES as u64 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < std::time::Duration::from_secs(600),
            "only {finished} of {INSTANCES} processes finished in ten minutes"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let rate = (INSTANCES * WORKITEM_STEPS) as f64 / started.elapsed().as_secs_f64();
    shutdown.cancel();
    for worker in workers {
        worker.await.context("a worker task failed")??;
    }
    server.await.context("the server task failed")??;
    Ok(rate)
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
