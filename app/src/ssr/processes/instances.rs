//! Process instances in the database: launching one, queueing messages for it, and the
//! transition that handles one message and commits the new state with every effect.
//!
//! A transition deletes its message, writes the state (checking the revision it read), the
//! workitems it dispatches or retracts, the messages it schedules and its history, all in one
//! transaction. If the process dies at any point, either all of that happened or none of it,
//! and the message is still queued; so no step completes twice and none is lost.

use crate::ssr::begin_write;
use std::collections::{BTreeSet, VecDeque};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;

use super::definitions::{self, DefinitionCache, Scope};
use crate::error::AppError;
use crate::ssr::audit::{self, Actor, Event as AuditEvent};
use crate::ssr::db_error;
use crate::ssr::entities::engine_messages::{self, Column as MessageColumn, Entity as Messages};
use crate::ssr::entities::process_history;
use crate::ssr::entities::process_instances::{
    self, Column as InstanceColumn, Entity as Instances,
};
use crate::ssr::entities::workitems::{self, Column as WorkitemColumn, Entity as Workitems};
use crate::types::UserId;
use crate::workflow::Definition;
use crate::workflow::definition::Fields;
use crate::workflow::engine::{Effect, Instance, Message, Outcome};

/// Most subprocess definitions one launch pins.
pub const MAX_PINNED_DEFINITIONS: usize = 256;

/// Most bytes of launch fields, as JSON.
pub const MAX_LAUNCH_FIELDS_BYTES: usize = 256 * 1024;

fn internal(what: &str, error: impl std::fmt::Display) -> AppError {
    tracing::error!(%error, "{what}");
    AppError::Internal
}

/// Starts an instance of the definition `name` as seen from `scope`, with `fields` over the
/// definition's defaults. Returns the instance id; the engine takes it from there.
/// The caller has checked the permission (`build` on the project, or an administrator for a
/// global definition).
pub async fn launch(
    db: &DatabaseConnection,
    cache: &DefinitionCache,
    actor: &Actor,
    scope: Scope,
    name: &str,
    fields: Fields,
) -> Result<i64, AppError> {
    let txn = begin_write(db).await?;
    let id = launch_in(&txn, cache, actor, scope, name, fields).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(id)
}

/// [`launch`] inside the caller's transaction.
pub async fn launch_in(
    txn: &impl ConnectionTrait,
    cache: &DefinitionCache,
    actor: &Actor,
    scope: Scope,
    name: &str,
    fields: Fields,
) -> Result<i64, AppError> {
    let size = serde_json::to_string(&fields).map_or(usize::MAX, |text| text.len());
    if size > MAX_LAUNCH_FIELDS_BYTES {
        return Err(AppError::invalid(
            "fields",
            format!(
                "launch fields take at most {} KiB as JSON; these take {} KiB",
                MAX_LAUNCH_FIELDS_BYTES / 1024,
                size.div_ceil(1024)
            ),
        ));
    }
    let (names, version_ids, main, participants) = pin(txn, cache, scope, name).await?;
    if let Some(user) = actor.id {
        super::participants::check_user(txn, &participants, user).await?;
    }
    let mut start = main.fields.clone();
    start.extend(fields);
    let instance = Instance::new(names, start);
    let now = Utc::now();
    let row = process_instances::ActiveModel {
        project_id: Set(match scope {
            Scope::Global => None,
            Scope::Project(id) => Some(id),
        }),
        definition_name: Set(main.name.clone()),
        pinned_versions: Set(json!(version_ids).to_string()),
        status: Set(instance.status.as_str().to_owned()),
        state: Set(serde_json::to_string(&instance).map_err(|e| internal("instance state", e))?),
        revision: Set(0),
        launched_by: Set(actor.id.map(|UserId(id)| id)),
        launched_by_name: Set(actor.name.clone()),
        created_at: Set(now),
        updated_at: Set(now),
        finished_at: Set(None),
        ..Default::default()
    }
    .insert(txn)
    .await
    .map_err(db_error)?;
    enqueue(txn, row.id, &Message::Launch, now).await?;
    let event = AuditEvent::new(
        "process.launch",
        "process",
        Some(row.id.to_string()),
        format!("Launched {} as process {}", main.name, row.id),
    )
    .details(json!({ "definition": main.name, "versions": version_ids }));
    audit::record(txn, actor, event).await?;
    Ok(row.id)
}

/// The definitions an instance of `name` runs: it and every subprocess it can reach, each at
/// its latest version now. Returns their names, version ids, the main definition and every
/// participant they hand work to.
async fn pin(
    conn: &impl ConnectionTrait,
    cache: &DefinitionCache,
    scope: Scope,
    name: &str,
) -> Result<
    (
        Vec<String>,
        Vec<i64>,
        std::sync::Arc<Definition>,
        BTreeSet<String>,
    ),
    AppError,
> {
    let mut participants = BTreeSet::new();
    let mut names = Vec::new();
    let mut version_ids = Vec::new();
    let mut trees = Vec::new();
    let mut seen = BTreeSet::new();
    let mut todo = VecDeque::from([name.to_owned()]);
    while let Some(next) = todo.pop_front() {
        if !seen.insert(next.clone()) {
            continue;
        }
        if seen.len() > MAX_PINNED_DEFINITIONS {
            return Err(AppError::invalid(
                "definition",
                format!("a process may use at most {MAX_PINNED_DEFINITIONS} definitions"),
            ));
        }
        let Some(version) = definitions::resolve(conn, scope, &next).await? else {
            return Err(if names.is_empty() {
                AppError::NotFound
            } else {
                AppError::invalid(
                    "definition",
                    format!("subprocess `{next}` no longer exists"),
                )
            });
        };
        let tree = cache.load(conn, &[version.id]).await?.remove(0);
        todo.extend(tree.subprocesses());
        participants.extend(tree.participants());
        names.push(next);
        version_ids.push(version.id);
        trees.push(tree);
    }
    let main = trees.swap_remove(0);
    Ok((names, version_ids, main, participants))
}

/// Every participant a process of `name` would hand work to (its subprocesses' included).
pub async fn participants_of(
    conn: &impl ConnectionTrait,
    cache: &DefinitionCache,
    scope: Scope,
    name: &str,
) -> Result<BTreeSet<String>, AppError> {
    Ok(pin(conn, cache, scope, name).await?.3)
}

/// Queues `message` for instance `instance_id`, due at `at`.
pub async fn enqueue(
    conn: &impl ConnectionTrait,
    instance_id: i64,
    message: &Message,
    at: DateTime<Utc>,
) -> Result<(), AppError> {
    engine_messages::ActiveModel {
        instance_id: Set(instance_id),
        body: Set(serde_json::to_string(message).map_err(|e| internal("engine message", e))?),
        due_at: Set(at),
        ..Default::default()
    }
    .insert(conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// A control command for an instance (cancel, kill, pause, resume, replay, re-apply), queued
/// with its audit row. The caller has checked the permission.
pub async fn control(
    db: &DatabaseConnection,
    actor: &Actor,
    instance_id: i64,
    message: Message,
) -> Result<(), AppError> {
    let action = match &message {
        Message::Cancel => "cancel",
        Message::Kill => "kill",
        Message::Pause => "pause",
        Message::Resume => "resume",
        Message::Replay { .. } => "replay",
        Message::Reapply { .. } => "reapply",
        _ => return Err(AppError::invalid("command", "not a control command")),
    };
    let txn = begin_write(db).await?;
    let row = Instances::find_by_id(instance_id)
        .one(&txn)
        .await
        .map_err(db_error)?
        .ok_or(AppError::NotFound)?;
    enqueue(&txn, row.id, &message, Utc::now()).await?;
    let event = AuditEvent::new(
        "process.control",
        "process",
        Some(row.id.to_string()),
        format!("Asked process {} to {action}", row.id),
    )
    .details(json!({ "command": message }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(())
}

/// Why a participant's reply was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyRefused {
    #[error("no such workitem")]
    Unknown,
    #[error("attempt {given} is stale: attempt {current} is current")]
    StaleAttempt { given: i32, current: i32 },
    #[error("the workitem is no longer out (it is {0})")]
    NotOut(String),
    #[error("the workitem is held by another worker")]
    NotHolder,
}

/// Takes a participant's reply to attempt `attempt` of workitem `workitem_id` (the row id):
/// refused unless that attempt is the one out (and, when `holder` names a worker, dispatched
/// to that worker). The reply is queued for the instance.
pub async fn reply(
    db: &DatabaseConnection,
    workitem_id: i64,
    attempt: i32,
    holder: Option<i64>,
    outcome: Outcome,
    by: &str,
) -> Result<Result<i64, ReplyRefused>, AppError> {
    let txn = begin_write(db).await?;
    let taken = reply_in(&txn, workitem_id, attempt, holder, outcome, by).await?;
    if taken.is_ok() {
        txn.commit().await.map_err(db_error)?;
    }
    Ok(taken)
}

/// [`reply`] within the caller's transaction (which commits it, with whatever it records
/// beside it); a refused reply writes nothing.
pub async fn reply_in(
    txn: &impl ConnectionTrait,
    workitem_id: i64,
    attempt: i32,
    holder: Option<i64>,
    outcome: Outcome,
    by: &str,
) -> Result<Result<i64, ReplyRefused>, AppError> {
    let Some(row) = Workitems::find_by_id(workitem_id)
        .one(txn)
        .await
        .map_err(db_error)?
    else {
        return Ok(Err(ReplyRefused::Unknown));
    };
    if row.attempt != attempt {
        tracing::warn!(
            workitem = workitem_id,
            attempt,
            current = row.attempt,
            "stale reply refused"
        );
        return Ok(Err(ReplyRefused::StaleAttempt {
            given: attempt,
            current: row.attempt,
        }));
    }
    if row.state != "queued" && row.state != "dispatched" {
        return Ok(Err(ReplyRefused::NotOut(row.state)));
    }
    if holder.is_some() && row.worker_id != holder {
        return Ok(Err(ReplyRefused::NotHolder));
    }
    // Only one reply per attempt gets through, however many race here.
    let updated = Workitems::update_many()
        .col_expr(WorkitemColumn::State, Expr::value("replied"))
        .col_expr(WorkitemColumn::UpdatedAt, Expr::value(Utc::now()))
        .filter(WorkitemColumn::Id.eq(row.id))
        .filter(WorkitemColumn::Attempt.eq(attempt))
        .filter(WorkitemColumn::State.is_in(["queued", "dispatched"]))
        .exec(txn)
        .await
        .map_err(db_error)?;
    if updated.rows_affected != 1 {
        return Ok(Err(ReplyRefused::NotOut("replied".into())));
    }
    let message = Message::Workitem {
        workitem: u64::try_from(row.seq).unwrap_or_default(),
        attempt: u32::try_from(attempt).unwrap_or_default(),
        outcome,
        by: by.to_owned(),
    };
    enqueue(txn, row.instance_id, &message, Utc::now()).await?;
    Ok(Ok(row.instance_id))
}

/// What handling due messages did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Handled {
    /// Messages handled.
    pub messages: usize,
    /// Transitions that lost a race with another handler and will be retried.
    pub conflicts: usize,
    /// Messages that failed (the cause is logged) and stay queued.
    pub failures: usize,
    /// The instances that moved, one entry per message handled.
    pub touched: Vec<Touched>,
}

/// An instance a transition changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touched {
    pub instance: i64,
    pub project: Option<i64>,
    /// Whether it handed out or took back workitems (people's tasks among them).
    pub workitems: bool,
    /// Whether it took back workitems.
    pub retracted: bool,
}

/// Handles up to `limit` messages due at `now`, oldest first, each in its own transaction.
pub async fn handle_due(
    db: &DatabaseConnection,
    cache: &DefinitionCache,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Handled, AppError> {
    let due = Messages::find()
        .filter(MessageColumn::DueAt.lte(now))
        .order_by_asc(MessageColumn::Id)
        .limit(limit)
        .all(db)
        .await
        .map_err(db_error)?;
    let mut handled = Handled::default();
    for message in due {
        let (id, instance) = (message.id, message.instance_id);
        match transition(db, cache, message, now).await {
            Ok(Transition::Done(touched)) => {
                handled.messages += 1;
                handled.touched.push(touched);
            }
            Ok(Transition::Conflict) => handled.conflicts += 1,
            Ok(Transition::Gone) => {}
            // The message stays queued and is tried again next round; the ones after it
            // are not held up.
            Err(error) => {
                tracing::warn!(%error, message = id, instance, "an engine message could not be handled");
                handled.failures += 1;
            }
        }
    }
    Ok(handled)
}

/// When the next queued message falls due, if any is queued.
pub async fn next_due(db: &DatabaseConnection) -> Result<Option<DateTime<Utc>>, AppError> {
    Ok(Messages::find()
        .order_by_asc(MessageColumn::DueAt)
        .one(db)
        .await
        .map_err(db_error)?
        .map(|m| m.due_at))
}

enum Transition {
    Done(Touched),
    /// Another handler changed the instance first; the message stays queued.
    Conflict,
    /// Another handler took the message first.
    Gone,
}

async fn transition(
    db: &DatabaseConnection,
    cache: &DefinitionCache,
    message: engine_messages::Model,
    now: DateTime<Utc>,
) -> Result<Transition, AppError> {
    let txn = begin_write(db).await?;
    let deleted = Messages::delete_by_id(message.id)
        .exec(&txn)
        .await
        .map_err(db_error)?;
    if deleted.rows_affected != 1 {
        return Ok(Transition::Gone);
    }
    let Some(row) = Instances::find_by_id(message.instance_id)
        .one(&txn)
        .await
        .map_err(db_error)?
    else {
        txn.commit().await.map_err(db_error)?;
        return Ok(Transition::Gone);
    };
    let body: Message = match serde_json::from_str(&message.body) {
        Ok(body) => body,
        Err(error) => {
            // An unreadable message can never be handled: drop it, loudly.
            tracing::error!(%error, message = message.id, "unreadable engine message dropped");
            txn.commit().await.map_err(db_error)?;
            return Ok(Transition::Gone);
        }
    };
    let mut instance: Instance =
        serde_json::from_str(&row.state).map_err(|e| internal("unreadable instance state", e))?;
    let version_ids: Vec<i64> = serde_json::from_str(&row.pinned_versions)
        .map_err(|e| internal("unreadable pinned versions", e))?;
    let library = cache.load(&txn, &version_ids).await?;
    let was_over = instance.status.is_over();
    let effects = instance.handle(&library, body, now);

    let updated = Instances::update_many()
        .col_expr(
            InstanceColumn::State,
            Expr::value(
                serde_json::to_string(&instance).map_err(|e| internal("instance state", e))?,
            ),
        )
        .col_expr(
            InstanceColumn::Status,
            Expr::value(instance.status.as_str()),
        )
        .col_expr(InstanceColumn::Revision, Expr::value(row.revision + 1))
        .col_expr(InstanceColumn::UpdatedAt, Expr::value(now))
        .col_expr(
            InstanceColumn::FinishedAt,
            Expr::value(if instance.status.is_over() && !was_over {
                Some(now)
            } else {
                row.finished_at
            }),
        )
        .filter(InstanceColumn::Id.eq(row.id))
        .filter(InstanceColumn::Revision.eq(row.revision))
        .exec(&txn)
        .await
        .map_err(db_error)?;
    if updated.rows_affected != 1 {
        txn.rollback().await.map_err(db_error)?;
        return Ok(Transition::Conflict);
    }

    let touched = Touched {
        instance: row.id,
        project: row.project_id,
        workitems: effects
            .iter()
            .any(|e| matches!(e, Effect::Dispatch(_) | Effect::Retract { .. })),
        retracted: effects.iter().any(|e| matches!(e, Effect::Retract { .. })),
    };
    for effect in effects {
        match effect {
            Effect::Dispatch(workitem) => {
                write_workitem(&txn, row.id, &workitem, now).await?;
                if !workitem.timed
                    && let Some(ms) =
                        super::participants::default_timeout(&txn, &workitem.participant).await?
                {
                    let timeout = Message::Timeout {
                        flow: workitem.flow,
                        attempt: workitem.attempt,
                    };
                    enqueue(
                        &txn,
                        row.id,
                        &timeout,
                        now + chrono::Duration::milliseconds(ms),
                    )
                    .await?;
                }
            }
            Effect::Retract { workitem } => {
                Workitems::update_many()
                    .col_expr(WorkitemColumn::State, Expr::value("retracted"))
                    .col_expr(WorkitemColumn::UpdatedAt, Expr::value(now))
                    .filter(WorkitemColumn::InstanceId.eq(row.id))
                    .filter(WorkitemColumn::Seq.eq(i64::try_from(workitem).unwrap_or(i64::MAX)))
                    .filter(WorkitemColumn::State.is_in(["queued", "dispatched"]))
                    .exec(&txn)
                    .await
                    .map_err(db_error)?;
            }
            Effect::Schedule { at, message } => enqueue(&txn, row.id, &message, at).await?,
            Effect::Enqueue(message) => enqueue(&txn, row.id, &message, now).await?,
            Effect::Record(event) => {
                process_history::ActiveModel {
                    instance_id: Set(row.id),
                    at: Set(now),
                    kind: Set(event.kind.as_str().to_owned()),
                    flow_id: Set(event.flow.map(|f| i64::try_from(f.0).unwrap_or(i64::MAX))),
                    definition_index: Set(event.node.map(|n| i32::from(n.definition))),
                    node_id: Set(event
                        .node
                        .map(|n| i32::try_from(n.node.0).unwrap_or(i32::MAX))),
                    participant: Set(event.participant),
                    by: Set(event.by.chars().take(128).collect()),
                    message: Set(event.message),
                    duration_ms: Set(event
                        .duration_ms
                        .map(|d| i64::try_from(d).unwrap_or(i64::MAX))),
                    ..Default::default()
                }
                .insert(&txn)
                .await
                .map_err(db_error)?;
            }
        }
    }
    txn.commit().await.map_err(db_error)?;
    Ok(Transition::Done(touched))
}

async fn write_workitem(
    conn: &impl ConnectionTrait,
    instance_id: i64,
    workitem: &crate::workflow::engine::Workitem,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let seq = i64::try_from(workitem.workitem).unwrap_or(i64::MAX);
    let params = serde_json::to_string(&workitem.params).map_err(|e| internal("params", e))?;
    let fields = serde_json::to_string(&workitem.fields).map_err(|e| internal("fields", e))?;
    let attempt = i32::try_from(workitem.attempt).unwrap_or(i32::MAX);
    let existing = Workitems::find()
        .filter(WorkitemColumn::InstanceId.eq(instance_id))
        .filter(WorkitemColumn::Seq.eq(seq))
        .one(conn)
        .await
        .map_err(db_error)?;
    let mut row = match existing {
        Some(row) => row.into(),
        None => workitems::ActiveModel {
            instance_id: Set(instance_id),
            seq: Set(seq),
            created_at: Set(now),
            ..Default::default()
        },
    };
    row.attempt = Set(attempt);
    row.flow_id = Set(i64::try_from(workitem.flow.0).unwrap_or(i64::MAX));
    row.participant = Set(workitem.participant.clone());
    row.params = Set(params);
    row.fields = Set(fields);
    row.state = Set("queued".to_owned());
    row.worker_id = Set(None);
    row.lease_until = Set(None);
    row.progress = Set(None);
    row.updated_at = Set(now);
    row.save(conn).await.map_err(db_error)?;
    Ok(())
}

/// An instance's interpreter state and status, as stored.
pub async fn load(
    conn: &impl ConnectionTrait,
    instance_id: i64,
) -> Result<(process_instances::Model, Instance), AppError> {
    let row = Instances::find_by_id(instance_id)
        .one(conn)
        .await
        .map_err(db_error)?
        .ok_or(AppError::NotFound)?;
    let instance =
        serde_json::from_str(&row.state).map_err(|e| internal("unreadable instance state", e))?;
    Ok((row, instance))
}
