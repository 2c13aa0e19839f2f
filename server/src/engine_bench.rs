//! `kiln bench engine`: times the engine's transitions on a scratch database.
//!
//! `sequential_step_ms` runs one instance of 40 sequential `noop` steps; `outbox_step_ms` runs
//! 40 sequential steps of a participant outside the engine, each answered as soon as its
//! workitem is written, so every step costs a reply transaction and a transition.

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
    db.close().await.context("cannot close the database")?;
    dir.close().context("cannot delete the temporary directory")
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
