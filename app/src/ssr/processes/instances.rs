//! Process instances in the database: launching one, queueing messages for it, and the
//! transition that handles messages and commits the new states with every effect.
//!
//! A transition deletes its messages, writes the states (checking the revisions it read), the
//! workitems they dispatch or retract, the messages they schedule and their history, all in
//! one transaction. If the process dies at any point, either all of that happened or none of
//! it, and the messages are still queued; so no step completes twice and none is lost. The
//! messages due together are handled in one transaction, and one at a time when that fails.

use crate::ssr::begin_write;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::Condition;
use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait, OnConflict};
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
    message_row(instance_id, message, at)?
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

/// A participant's reply to attempt `attempt` of workitem `workitem` (the row id).
#[derive(Debug, Clone)]
pub struct Reply {
    pub workitem: i64,
    pub attempt: i32,
    /// The worker that must hold the attempt, when a worker replies.
    pub holder: Option<i64>,
    pub outcome: Outcome,
    /// Who replied, for the history.
    pub by: String,
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
    let reply = Reply {
        workitem: workitem_id,
        attempt,
        holder,
        outcome,
        by: by.to_owned(),
    };
    take_replies(txn, vec![reply])
        .await?
        .pop()
        .ok_or(AppError::Internal)
}

/// Takes `replies` within the caller's transaction, each as [`reply`] does, with one update
/// and one insert however many there are. Returns what became of each, in order: the
/// instance it was queued for, or why it was refused (a refused reply writes nothing).
pub async fn take_replies(
    txn: &impl ConnectionTrait,
    replies: Vec<Reply>,
) -> Result<Vec<Result<i64, ReplyRefused>>, AppError> {
    if replies.is_empty() {
        return Ok(Vec::new());
    }
    let now = Utc::now();
    let mut named = Condition::any();
    for reply in &replies {
        let mut this = Condition::all()
            .add(WorkitemColumn::Id.eq(reply.workitem))
            .add(WorkitemColumn::Attempt.eq(reply.attempt));
        if let Some(worker) = reply.holder {
            this = this.add(WorkitemColumn::WorkerId.eq(worker));
        }
        named = named.add(this);
    }
    // Only one reply per attempt gets through, however many race here.
    let mut out: BTreeMap<i64, workitems::Model> = Workitems::update_many()
        .col_expr(WorkitemColumn::State, Expr::value("replied"))
        .col_expr(WorkitemColumn::UpdatedAt, Expr::value(now))
        .filter(WorkitemColumn::State.is_in(["queued", "dispatched"]))
        .filter(named)
        .exec_with_returning(txn)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|row| (row.id, row))
        .collect();
    let mut taken = Vec::with_capacity(replies.len());
    let mut messages = Vec::new();
    for reply in replies {
        // The first reply that names a row taken, as it was taken, has it; any other is
        // refused.
        let named = out.get(&reply.workitem).is_some_and(|row| {
            row.attempt == reply.attempt && reply.holder.is_none_or(|h| row.worker_id == Some(h))
        });
        let Some(row) = named.then(|| out.remove(&reply.workitem)).flatten() else {
            taken.push(Err(refusal(
                txn,
                reply.workitem,
                reply.attempt,
                reply.holder,
            )
            .await?));
            continue;
        };
        let message = Message::Workitem {
            workitem: u64::try_from(row.seq).unwrap_or_default(),
            attempt: u32::try_from(reply.attempt).unwrap_or_default(),
            outcome: reply.outcome,
            by: reply.by,
        };
        messages.push(message_row(row.instance_id, &message, now)?);
        taken.push(Ok(row.instance_id));
    }
    insert_all(txn, messages).await?;
    Ok(taken)
}

/// Why a reply to attempt `attempt` of workitem `workitem_id` cannot be taken.
async fn refusal(
    conn: &impl ConnectionTrait,
    workitem_id: i64,
    attempt: i32,
    holder: Option<i64>,
) -> Result<ReplyRefused, AppError> {
    let Some(row) = Workitems::find_by_id(workitem_id)
        .one(conn)
        .await
        .map_err(db_error)?
    else {
        return Ok(ReplyRefused::Unknown);
    };
    Ok(if row.attempt != attempt {
        tracing::warn!(
            workitem = workitem_id,
            attempt,
            current = row.attempt,
            "stale reply refused"
        );
        ReplyRefused::StaleAttempt {
            given: attempt,
            current: row.attempt,
        }
    } else if row.state != "queued" && row.state != "dispatched" {
        ReplyRefused::NotOut(row.state)
    } else if holder.is_some() && row.worker_id != holder {
        ReplyRefused::NotHolder
    } else {
        // Taken by a reply racing this one, between its update and this look.
        ReplyRefused::NotOut("replied".into())
    })
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

/// Handles up to `limit` messages due at `now`, oldest first. They are handled together, in
/// one transaction; when that fails or races another handler, each is handled in its own,
/// so that one bad message holds up no other.
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
    if due.len() > 1 {
        match transition(db, cache, &due, now).await {
            Ok(Transition::Done(touched)) => {
                handled.messages = touched.len();
                handled.touched = touched;
                return Ok(handled);
            }
            Ok(Transition::Gone | Transition::Conflict) => {}
            Err(error) => {
                tracing::debug!(%error, "engine messages handled together failed; handling each alone");
            }
        }
    }
    for message in due {
        let (id, instance) = (message.id, message.instance_id);
        match transition(db, cache, std::slice::from_ref(&message), now).await {
            Ok(Transition::Done(touched)) => {
                handled.messages += touched.len();
                handled.touched.extend(touched);
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
    /// The messages were handled: one entry per message.
    Done(Vec<Touched>),
    /// Another handler changed one of the instances first; the messages stay queued.
    Conflict,
    /// Another handler took one of the messages first.
    Gone,
}

/// An instance a transition moves: its row as read, and its state as it becomes.
struct Moving {
    row: process_instances::Model,
    instance: Instance,
    library: Vec<Arc<Definition>>,
    was_over: bool,
    moved: bool,
}

/// Handles `messages` in one transaction: deletes them, applies each to its instance in
/// order, and writes every moved instance (checking the revision it read) with the effects.
async fn transition(
    db: &DatabaseConnection,
    cache: &DefinitionCache,
    messages: &[engine_messages::Model],
    now: DateTime<Utc>,
) -> Result<Transition, AppError> {
    let txn = begin_write(db).await?;
    let deleted = Messages::delete_many()
        .filter(MessageColumn::Id.is_in(messages.iter().map(|m| m.id)))
        .exec(&txn)
        .await
        .map_err(db_error)?;
    if deleted.rows_affected != messages.len() as u64 {
        txn.rollback().await.map_err(db_error)?;
        return Ok(Transition::Gone);
    }
    let rows = Instances::find()
        .filter(InstanceColumn::Id.is_in(messages.iter().map(|m| m.instance_id)))
        .all(&txn)
        .await
        .map_err(db_error)?;
    let mut moving = BTreeMap::new();
    for row in rows {
        let instance: Instance = serde_json::from_str(&row.state)
            .map_err(|e| internal("unreadable instance state", e))?;
        let version_ids: Vec<i64> = serde_json::from_str(&row.pinned_versions)
            .map_err(|e| internal("unreadable pinned versions", e))?;
        let library = cache.load(&txn, &version_ids).await?;
        let was_over = instance.status.is_over();
        moving.insert(
            row.id,
            Moving {
                row,
                instance,
                library,
                was_over,
                moved: false,
            },
        );
    }

    let mut touched = Vec::with_capacity(messages.len());
    let mut effects = Vec::new();
    for message in messages {
        // The messages of a deleted instance went with it.
        let Some(m) = moving.get_mut(&message.instance_id) else {
            continue;
        };
        let body: Message = match serde_json::from_str(&message.body) {
            Ok(body) => body,
            Err(error) => {
                // An unreadable message can never be handled: drop it, loudly.
                tracing::error!(%error, message = message.id, "unreadable engine message dropped");
                continue;
            }
        };
        let these = m.instance.handle(&m.library, body, now);
        m.moved = true;
        touched.push(Touched {
            instance: m.row.id,
            project: m.row.project_id,
            workitems: these
                .iter()
                .any(|e| matches!(e, Effect::Dispatch(_) | Effect::Retract { .. })),
            retracted: these.iter().any(|e| matches!(e, Effect::Retract { .. })),
        });
        effects.extend(these.into_iter().map(|effect| (m.row.id, effect)));
    }

    // Every moved instance in one statement, each checked against the revision it was read
    // at: if another handler changed one first, fewer rows change and nothing is kept.
    let moved: Vec<&Moving> = moving.values().filter(|m| m.moved).collect();
    if !moved.is_empty() {
        let (mut state, mut status, mut finished_at) = (
            CaseStatement::new(),
            CaseStatement::new(),
            CaseStatement::new(),
        );
        let mut as_read = Condition::any();
        for m in &moved {
            let this = InstanceColumn::Id.eq(m.row.id);
            let text =
                serde_json::to_string(&m.instance).map_err(|e| internal("instance state", e))?;
            let ended = if m.instance.status.is_over() && !m.was_over {
                Some(now)
            } else {
                m.row.finished_at
            };
            state = state.case(this.clone(), Expr::value(text));
            status = status.case(this.clone(), Expr::value(m.instance.status.as_str()));
            finished_at = finished_at.case(this.clone(), Expr::value(ended));
            as_read = as_read.add(this.and(InstanceColumn::Revision.eq(m.row.revision)));
        }
        let updated = Instances::update_many()
            .col_expr(InstanceColumn::State, state.into())
            .col_expr(InstanceColumn::Status, status.into())
            .col_expr(
                InstanceColumn::Revision,
                Expr::col(InstanceColumn::Revision).add(1),
            )
            .col_expr(InstanceColumn::UpdatedAt, Expr::value(now))
            .col_expr(InstanceColumn::FinishedAt, finished_at.into())
            .filter(as_read)
            .exec(&txn)
            .await
            .map_err(db_error)?;
        if updated.rows_affected != moved.len() as u64 {
            txn.rollback().await.map_err(db_error)?;
            return Ok(Transition::Conflict);
        }
    }
    write_effects(&txn, effects, now).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(Transition::Done(touched))
}

/// Rows one `INSERT` writes at most, well under SQLite's and PostgreSQL's limits on bound
/// values.
const ROWS_PER_INSERT: usize = 256;

/// Writes the effects of a transition, in order. Rows of one kind are written together
/// where the order allows: workitems between retractions, messages and history at the end.
async fn write_effects(
    txn: &impl ConnectionTrait,
    effects: Vec<(i64, Effect)>,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let untimed: BTreeSet<&str> = effects
        .iter()
        .filter_map(|(_, effect)| match effect {
            Effect::Dispatch(workitem) if !workitem.timed => Some(workitem.participant.as_str()),
            _ => None,
        })
        .collect();
    let timeouts = super::participants::default_timeouts(txn, untimed).await?;
    let mut dispatches = Dispatches::default();
    let mut messages = Vec::new();
    let mut history = Vec::new();
    for (instance_id, effect) in effects {
        match effect {
            Effect::Dispatch(workitem) => {
                if !workitem.timed
                    && let Some(&ms) = timeouts.get(&workitem.participant)
                {
                    let timeout = Message::Timeout {
                        flow: workitem.flow,
                        attempt: workitem.attempt,
                    };
                    let at = now + chrono::Duration::milliseconds(ms);
                    messages.push(message_row(instance_id, &timeout, at)?);
                }
                dispatches.push(instance_id, &workitem, now)?;
            }
            Effect::Retract { workitem } => {
                // What was dispatched before the retraction is written before it.
                dispatches.write(txn).await?;
                Workitems::update_many()
                    .col_expr(WorkitemColumn::State, Expr::value("retracted"))
                    .col_expr(WorkitemColumn::UpdatedAt, Expr::value(now))
                    .filter(WorkitemColumn::InstanceId.eq(instance_id))
                    .filter(WorkitemColumn::Seq.eq(i64::try_from(workitem).unwrap_or(i64::MAX)))
                    .filter(WorkitemColumn::State.is_in(["queued", "dispatched"]))
                    .exec(txn)
                    .await
                    .map_err(db_error)?;
            }
            Effect::Schedule { at, message } => {
                messages.push(message_row(instance_id, &message, at)?);
            }
            Effect::Enqueue(message) => messages.push(message_row(instance_id, &message, now)?),
            Effect::Record(event) => history.push(history_row(instance_id, event, now)),
        }
    }
    dispatches.write(txn).await?;
    insert_all(txn, messages).await?;
    insert_all(txn, history).await
}

/// Inserts `rows`, [`ROWS_PER_INSERT`] to a statement.
async fn insert_all<A>(conn: &impl ConnectionTrait, rows: Vec<A>) -> Result<(), AppError>
where
    A: ActiveModelTrait + Send,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        A::Entity::insert_many(rows.by_ref().take(ROWS_PER_INSERT))
            .exec_without_returning(conn)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

fn message_row(
    instance_id: i64,
    message: &Message,
    at: DateTime<Utc>,
) -> Result<engine_messages::ActiveModel, AppError> {
    Ok(engine_messages::ActiveModel {
        instance_id: Set(instance_id),
        body: Set(serde_json::to_string(message).map_err(|e| internal("engine message", e))?),
        due_at: Set(at),
        ..Default::default()
    })
}

fn history_row(
    instance_id: i64,
    event: crate::workflow::engine::Event,
    now: DateTime<Utc>,
) -> process_history::ActiveModel {
    process_history::ActiveModel {
        instance_id: Set(instance_id),
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
}

/// The worker a workitem must run on: `params.on_worker`, when it names one (a step of a
/// build names the worker that prepared the build directory, say).
fn on_worker(params: &Fields) -> Option<String> {
    match params.get("on_worker") {
        Some(serde_json::Value::String(name)) if !name.trim().is_empty() => {
            Some(name.trim().chars().take(64).collect())
        }
        _ => None,
    }
}

/// Workitems dispatched and not yet written, keyed by instance and workitem number: a
/// workitem dispatched anew (a retry) replaces its row, keeping its id.
#[derive(Default)]
struct Dispatches(Vec<((i64, i64), workitems::ActiveModel)>);

impl Dispatches {
    fn push(
        &mut self,
        instance_id: i64,
        workitem: &crate::workflow::engine::Workitem,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let seq = i64::try_from(workitem.workitem).unwrap_or(i64::MAX);
        let row = workitems::ActiveModel {
            instance_id: Set(instance_id),
            seq: Set(seq),
            attempt: Set(i32::try_from(workitem.attempt).unwrap_or(i32::MAX)),
            flow_id: Set(i64::try_from(workitem.flow.0).unwrap_or(i64::MAX)),
            participant: Set(workitem.participant.clone()),
            params: Set(serde_json::to_string(&workitem.params).map_err(|e| internal("params", e))?),
            fields: Set(serde_json::to_string(&workitem.fields).map_err(|e| internal("fields", e))?),
            state: Set("queued".to_owned()),
            worker_id: Set(None),
            lease_until: Set(None),
            losses: Set(0),
            progress: Set(None),
            on_worker: Set(on_worker(&workitem.params)),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        // One statement may not change a row twice: the later dispatch wins.
        match self
            .0
            .iter_mut()
            .find(|(key, _)| *key == (instance_id, seq))
        {
            Some((_, earlier)) => *earlier = row,
            None => self.0.push(((instance_id, seq), row)),
        }
        Ok(())
    }

    /// Writes the workitems, new or dispatched anew; a new attempt keeps the row's id, its
    /// creation time and its count of lost workers.
    async fn write(&mut self, conn: &impl ConnectionTrait) -> Result<(), AppError> {
        let mut rows = std::mem::take(&mut self.0)
            .into_iter()
            .map(|(_, row)| row)
            .peekable();
        while rows.peek().is_some() {
            Workitems::insert_many(rows.by_ref().take(ROWS_PER_INSERT))
                .on_conflict(
                    OnConflict::columns([WorkitemColumn::InstanceId, WorkitemColumn::Seq])
                        .update_columns([
                            WorkitemColumn::Attempt,
                            WorkitemColumn::FlowId,
                            WorkitemColumn::Participant,
                            WorkitemColumn::Params,
                            WorkitemColumn::Fields,
                            WorkitemColumn::State,
                            WorkitemColumn::WorkerId,
                            WorkitemColumn::LeaseUntil,
                            WorkitemColumn::Progress,
                            WorkitemColumn::OnWorker,
                            WorkitemColumn::UpdatedAt,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(conn)
                .await
                .map_err(db_error)?;
        }
        Ok(())
    }
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
