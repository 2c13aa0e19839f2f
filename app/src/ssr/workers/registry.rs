//! The worker registry: a row per worker name, updated when it connects, heartbeats and
//! leaves, and the administrators' drain and resume.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder,
};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

use super::protocol::{MAX_CAPACITY, MAX_PARTICIPANTS};
use super::valid_name;
use crate::error::AppError;
use crate::ssr::audit::{self, Actor, Event};
use crate::ssr::entities::participants::{Column as ParticipantColumn, Entity as Participants};
use crate::ssr::entities::worker_tokens::Entity as Tokens;
use crate::ssr::entities::workers::{self, Column, Entity as Workers};
use crate::ssr::entities::workitems::{Column as WorkitemColumn, Entity as Workitems};
use crate::ssr::{begin_write, db_error};
use crate::types::{RunningWorkitem, WorkerState, WorkerView};

/// How a worker introduces itself.
#[derive(Debug, Clone)]
pub struct Introduction {
    pub name: String,
    pub host: String,
    pub version: String,
    pub participants: Vec<String>,
    pub capacity: u32,
    /// The token it connected with; `None` for the server's embedded workers.
    pub token: Option<i64>,
}

/// Checks an introduction and records the worker as connected. Returns its row, whose
/// `draining` says whether it may take work.
pub async fn connect(
    db: &DatabaseConnection,
    hello: Introduction,
    client_addr: Option<String>,
) -> Result<workers::Model, AppError> {
    let name = valid_name("name", &hello.name)?;
    if hello.capacity == 0 || hello.capacity > MAX_CAPACITY {
        return Err(AppError::invalid(
            "capacity",
            format!("capacity must be 1 to {MAX_CAPACITY}"),
        ));
    }
    let served: BTreeSet<String> = hello.participants.iter().cloned().collect();
    if served.is_empty() || served.len() > MAX_PARTICIPANTS {
        return Err(AppError::invalid(
            "participants",
            format!("a worker serves 1 to {MAX_PARTICIPANTS} participants"),
        ));
    }
    let kinds: BTreeMap<String, String> = Participants::find()
        .filter(ParticipantColumn::Name.is_in(served.iter().cloned()))
        .all(db)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|p| (p.name, p.kind))
        .collect();
    for participant in &served {
        match kinds.get(participant).map(String::as_str) {
            Some("worker") => {}
            Some(kind) => {
                return Err(AppError::invalid(
                    "participants",
                    format!(
                        "`{participant}` is a {} participant, not one workers serve",
                        kind.replace('_', "-")
                    ),
                ));
            }
            None => {
                return Err(AppError::invalid(
                    "participants",
                    format!("no participant `{participant}` is registered"),
                ));
            }
        }
    }
    let now = Utc::now();
    let txn = begin_write(db).await?;
    let row = workers::ActiveModel {
        name: Set(name.clone()),
        token_id: Set(hello.token),
        host: Set(hello.host.chars().take(255).collect()),
        version: Set(hello.version.chars().take(32).collect()),
        participants: Set(json!(served).to_string()),
        capacity: Set(i32::try_from(hello.capacity).unwrap_or(i32::MAX)),
        embedded: Set(hello.token.is_none()),
        draining: Set(false),
        connected: Set(true),
        first_seen_at: Set(now),
        last_seen_at: Set(now),
        ..Default::default()
    };
    Workers::insert(row)
        .on_conflict(
            OnConflict::column(Column::Name)
                .update_columns([
                    Column::TokenId,
                    Column::Host,
                    Column::Version,
                    Column::Participants,
                    Column::Capacity,
                    Column::Embedded,
                    Column::Connected,
                    Column::LastSeenAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await
        .map_err(db_error)?;
    let row = Workers::find()
        .filter(Column::Name.eq(&name))
        .one(&txn)
        .await
        .map_err(db_error)?
        .ok_or(AppError::Internal)?;
    let actor = Actor {
        id: None,
        name: format!("worker:{name}"),
        client_addr,
    };
    let event = Event::new(
        "worker.connect",
        "worker",
        Some(row.id.to_string()),
        format!("Worker {name} connected from {}", row.host),
    )
    .details(json!({ "participants": served, "capacity": hello.capacity, "version": row.version, "token": hello.token }));
    audit::record(&txn, &actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(row)
}

/// Notes that worker `id` is alive, and extends to `lease_until` the leases of `running`,
/// the attempts its connection runs. Only those: a workitem the database gives the worker
/// but the worker does not run must not be kept alive by its heartbeats.
pub async fn heartbeat(
    conn: &impl ConnectionTrait,
    id: i64,
    running: &[super::protocol::Attempt],
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<(), AppError> {
    Workers::update_many()
        .col_expr(Column::LastSeenAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .exec(conn)
        .await
        .map_err(db_error)?;
    if running.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = running.iter().map(|a| a.workitem).collect();
    Workitems::update_many()
        .col_expr(WorkitemColumn::LeaseUntil, Expr::value(Some(lease_until)))
        .filter(WorkitemColumn::Id.is_in(ids))
        .filter(WorkitemColumn::WorkerId.eq(id))
        .filter(WorkitemColumn::State.eq("dispatched"))
        .exec(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Notes that worker `id`'s connection has ended. What it held keeps its lease: it may come
/// back for it, or the lease runs out.
pub async fn disconnected(conn: &impl ConnectionTrait, id: i64) -> Result<(), AppError> {
    Workers::update_many()
        .col_expr(Column::Connected, Expr::value(false))
        .col_expr(Column::LastSeenAt, Expr::value(Utc::now()))
        .filter(Column::Id.eq(id))
        .exec(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Drains worker `id` (it finishes what it runs and takes nothing new) or resumes it.
/// The caller has checked that the actor is an administrator, and tells the hub.
pub async fn set_draining(
    db: &DatabaseConnection,
    actor: &Actor,
    id: i64,
    draining: bool,
) -> Result<(), AppError> {
    let txn = begin_write(db).await?;
    let row = Workers::find_by_id(id)
        .one(&txn)
        .await
        .map_err(db_error)?
        .ok_or(AppError::NotFound)?;
    let name = row.name.clone();
    let mut active: workers::ActiveModel = row.into();
    active.draining = Set(draining);
    active.update(&txn).await.map_err(db_error)?;
    let (action, verb) = if draining {
        ("worker.drain", "Drained")
    } else {
        ("worker.resume", "Resumed")
    };
    let event = Event::new(
        action,
        "worker",
        Some(id.to_string()),
        format!("{verb} worker {name}"),
    );
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(())
}

/// Records that an administrator disconnected worker `id`. The caller closes the socket.
pub async fn record_disconnect(
    db: &DatabaseConnection,
    actor: &Actor,
    id: i64,
) -> Result<(), AppError> {
    let txn = begin_write(db).await?;
    let row = Workers::find_by_id(id)
        .one(&txn)
        .await
        .map_err(db_error)?
        .ok_or(AppError::NotFound)?;
    let event = Event::new(
        "worker.disconnect",
        "worker",
        Some(id.to_string()),
        format!("Disconnected worker {}", row.name),
    );
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(())
}

/// The workers connected with token `token`.
pub async fn using_token(conn: &impl ConnectionTrait, token: i64) -> Result<Vec<i64>, AppError> {
    Ok(Workers::find()
        .filter(Column::TokenId.eq(token))
        .filter(Column::Connected.eq(true))
        .all(conn)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|w| w.id)
        .collect())
}

/// Every worker, connected ones first, with what it runs. A worker counts as offline once
/// it has been silent for `silence` (a server that died cannot mark its workers).
pub async fn list(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    silence: chrono::Duration,
) -> Result<Vec<WorkerView>, AppError> {
    let rows = Workers::find()
        .order_by_desc(Column::Connected)
        .order_by_asc(Column::Name)
        .all(conn)
        .await
        .map_err(db_error)?;
    let tokens: BTreeMap<i64, String> = Tokens::find()
        .all(conn)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    let mut running: BTreeMap<i64, Vec<RunningWorkitem>> = BTreeMap::new();
    for item in Workitems::find()
        .filter(WorkitemColumn::State.eq("dispatched"))
        .filter(WorkitemColumn::WorkerId.is_not_null())
        .order_by_asc(WorkitemColumn::Id)
        .all(conn)
        .await
        .map_err(db_error)?
    {
        running
            .entry(item.worker_id.unwrap_or_default())
            .or_default()
            .push(RunningWorkitem {
                workitem: item.id,
                attempt: item.attempt,
                instance: item.instance_id,
                participant: item.participant,
                progress: item.progress,
            });
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let live = row.connected && now - row.last_seen_at <= silence;
            let running = running.remove(&row.id).unwrap_or_default();
            WorkerView {
                state: match (live, row.draining) {
                    (false, _) => WorkerState::Offline,
                    (true, true) => WorkerState::Draining,
                    (true, false) => WorkerState::Online,
                },
                participants: serde_json::from_str(&row.participants).unwrap_or_default(),
                token: row.token_id.and_then(|t| tokens.get(&t).cloned()),
                load: running.len(),
                running,
                id: row.id,
                name: row.name,
                host: row.host,
                version: row.version,
                capacity: row.capacity,
                embedded: row.embedded,
                last_seen_at: row.last_seen_at,
            }
        })
        .collect())
}
