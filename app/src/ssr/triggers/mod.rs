//! Triggers: cron schedules and webhooks that launch a definition of their scope, each with
//! its latest runs.
//!
//! A cron trigger stores when it next fires. Whoever fires it first moves that time on in
//! the same transaction that launches the process, on the condition that it still holds
//! the time it read; so with several servers on one database each firing happens once. A
//! schedule missed while Kiln was down fires once on start-up, not once per missed time.

pub mod cron;
pub mod webhook;

use crate::ssr::secrets::Keyring;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rand::RngCore;
use sea_orm::sea_query::{Expr, ExprTrait, QueryStatementBuilder, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};
use serde_json::json;

use crate::error::AppError;
use crate::ssr::audit::{self, Actor, Event};
use crate::ssr::entities::projects::{Column as ProjectColumn, Entity as Projects};
use crate::ssr::entities::trigger_runs::{self, Column as RunColumn, Entity as Runs};
use crate::ssr::entities::triggers::{self, Column, Entity as Triggers};
use crate::ssr::processes::{DefinitionCache, Scope, definitions, instances};
use crate::ssr::{begin_write, db_error, paginate};
use crate::types::{CurrentUser, Page, TriggerKind, TriggerRunView, TriggerView};
use crate::workflow::definition::Fields;

/// Most triggers in one project, or global.
pub const MAX_TRIGGERS_PER_SCOPE: u64 = 100;

/// Longest trigger name (the launches it makes are recorded as `trigger:NAME`).
pub const MAX_NAME_CHARS: usize = 48;

/// Runs kept per trigger; older ones are deleted as new ones are recorded.
pub const RUNS_KEPT: u64 = 20;

/// Most bytes of a trigger's own fields, as JSON.
pub const MAX_FIELDS_BYTES: usize = 64 * 1024;

/// Triggers per page of the list of every trigger.
pub const TRIGGERS_PER_PAGE: u64 = 50;

/// Most due cron triggers fired in one pass.
const FIRE_BATCH: u64 = 100;

/// A trigger as its form describes it.
pub struct TriggerInput {
    pub name: String,
    pub definition: String,
    pub fields: Fields,
    pub kind: TriggerKind,
}

/// Why a webhook call did not start a process.
#[derive(Debug)]
pub enum CallFailure {
    /// No webhook trigger with that id.
    Unknown,
    Disabled,
    Refused(webhook::Refusal),
    /// The body is not JSON; the message says why.
    BadPayload(String),
    /// The process could not be launched; the message says why.
    NotLaunched(String),
    Internal,
}

impl From<AppError> for CallFailure {
    fn from(_: AppError) -> Self {
        Self::Internal
    }
}

fn random_secret() -> String {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn scope_of(row: &triggers::Model) -> Scope {
    match row.project_id {
        Some(id) => Scope::Project(id),
        None => Scope::Global,
    }
}

/// The schedule of a cron trigger's row.
fn schedule_of(row: &triggers::Model) -> Option<cron::Schedule> {
    let schedule = row.schedule.as_deref()?;
    let zone = row.time_zone.as_deref().unwrap_or("UTC");
    cron::Schedule::parse(schedule, zone).ok()
}

/// Creates a trigger in `scope`. Returns its row and, for a webhook, its secret (shown this
/// once). The caller has checked the permission.
pub async fn create(
    db: &DatabaseConnection,
    keys: &Keyring,
    cache: &DefinitionCache,
    actor: &Actor,
    scope: Scope,
    input: TriggerInput,
) -> Result<(triggers::Model, Option<String>), AppError> {
    let name = crate::domain::plain_name("name", &input.name, MAX_NAME_CHARS, &['.', '_', '-'])?;
    let fields = serde_json::to_string(&input.fields).map_err(|_| AppError::Internal)?;
    if fields.len() > MAX_FIELDS_BYTES {
        return Err(AppError::invalid(
            "fields",
            format!(
                "a trigger's fields take at most {} KiB as JSON",
                MAX_FIELDS_BYTES / 1024
            ),
        ));
    }
    let now = Utc::now();
    let (kind, schedule, time_zone, secret, mapping, next_run_at) = match &input.kind {
        TriggerKind::Cron {
            schedule,
            time_zone,
        } => {
            let zone = if time_zone.trim().is_empty() {
                "UTC"
            } else {
                time_zone.trim()
            };
            if zone.parse::<chrono_tz::Tz>().is_err() {
                return Err(AppError::invalid(
                    "time_zone",
                    format!(
                        "`{zone}` is not a known time zone; use a name like Europe/Helsinki or UTC"
                    ),
                ));
            }
            let parsed = cron::Schedule::parse(schedule, zone)
                .map_err(|message| AppError::invalid("schedule", message))?;
            (
                "cron",
                Some(schedule.trim().to_owned()),
                Some(zone.to_owned()),
                None,
                "{}".to_owned(),
                parsed.next_after(now),
            )
        }
        TriggerKind::Webhook { mapping } => {
            if mapping.len() > webhook::MAX_MAPPINGS {
                return Err(AppError::invalid(
                    "mapping",
                    format!("at most {} fields can be mapped", webhook::MAX_MAPPINGS),
                ));
            }
            (
                "webhook",
                None,
                None,
                Some(random_secret()),
                serde_json::to_string(mapping).map_err(|_| AppError::Internal)?,
                None,
            )
        }
    };
    let txn = begin_write(db).await?;
    if definitions::resolve(&txn, scope, &input.definition)
        .await?
        .is_none()
    {
        return Err(AppError::invalid(
            "definition",
            format!("there is no definition named `{}` here", input.definition),
        ));
    }
    // A trigger launches as Kiln itself: its author must be allowed what it will launch.
    if let Some(user) = actor.id {
        let participants =
            instances::participants_of(&txn, cache, scope, &input.definition).await?;
        crate::ssr::processes::participants::check_user(&txn, &participants, user)
            .await
            .map_err(|error| match error {
                AppError::Invalid { message, .. } => AppError::invalid("definition", message),
                other => other,
            })?;
    }
    let in_scope = Triggers::find().filter(Column::ScopeKey.eq(scope.key()));
    if in_scope
        .clone()
        .filter(Column::Name.eq(&name))
        .count(&txn)
        .await
        .map_err(db_error)?
        > 0
    {
        return Err(AppError::conflict(
            "name",
            format!("a trigger named `{name}` already exists here"),
        ));
    }
    if in_scope.count(&txn).await.map_err(db_error)? >= MAX_TRIGGERS_PER_SCOPE {
        return Err(AppError::invalid(
            "name",
            format!(
                "a project (or the global scope) has at most {MAX_TRIGGERS_PER_SCOPE} triggers"
            ),
        ));
    }
    let row = triggers::ActiveModel {
        project_id: Set(match scope {
            Scope::Global => None,
            Scope::Project(id) => Some(id),
        }),
        scope_key: Set(scope.key()),
        name: Set(name.clone()),
        kind: Set(kind.to_owned()),
        definition_name: Set(input.definition.clone()),
        fields: Set(fields),
        schedule: Set(schedule),
        time_zone: Set(time_zone),
        secret: Set(secret.as_deref().map(|secret| keys.seal(secret))),
        mapping: Set(mapping),
        enabled: Set(true),
        created_by: Set(actor.name.clone()),
        created_at: Set(now),
        next_run_at: Set(next_run_at),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(db_error)?;
    let event = Event::new(
        "trigger.create",
        "trigger",
        Some(row.id.to_string()),
        format!("Created {kind} trigger {name} launching {}", input.definition),
    )
    .details(json!({ "kind": kind, "definition": input.definition, "schedule": row.schedule, "time_zone": row.time_zone }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok((row, secret))
}

/// Trigger `id`'s row.
pub async fn get(conn: &impl ConnectionTrait, id: i64) -> Result<triggers::Model, AppError> {
    Triggers::find_by_id(id)
        .one(conn)
        .await
        .map_err(db_error)?
        .ok_or(AppError::NotFound)
}

/// Turns a trigger on or off; a cron trigger turned on fires next at its next time from now.
pub async fn set_enabled(
    db: &DatabaseConnection,
    actor: &Actor,
    row: triggers::Model,
    enabled: bool,
) -> Result<(), AppError> {
    let txn = begin_write(db).await?;
    let next_run_at = if enabled {
        schedule_of(&row).and_then(|s| s.next_after(Utc::now()))
    } else {
        None
    };
    let (id, name) = (row.id, row.name.clone());
    let mut active: triggers::ActiveModel = row.into();
    active.enabled = Set(enabled);
    active.next_run_at = Set(next_run_at);
    active.update(&txn).await.map_err(db_error)?;
    let (action, verb) = if enabled {
        ("trigger.enable", "Enabled")
    } else {
        ("trigger.disable", "Disabled")
    };
    let event = Event::new(
        action,
        "trigger",
        Some(id.to_string()),
        format!("{verb} trigger {name}"),
    );
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)
}

/// Deletes a trigger and its runs.
pub async fn delete(
    db: &DatabaseConnection,
    actor: &Actor,
    row: triggers::Model,
) -> Result<(), AppError> {
    let txn = begin_write(db).await?;
    Runs::delete_many()
        .filter(RunColumn::TriggerId.eq(row.id))
        .exec(&txn)
        .await
        .map_err(db_error)?;
    Triggers::delete_by_id(row.id)
        .exec(&txn)
        .await
        .map_err(db_error)?;
    let event = Event::new(
        "trigger.delete",
        "trigger",
        Some(row.id.to_string()),
        format!("Deleted trigger {}", row.name),
    );
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)
}

/// Records a run of trigger `trigger_id` and drops the ones past [`RUNS_KEPT`].
async fn record_run(
    conn: &impl ConnectionTrait,
    trigger_id: i64,
    outcome: &str,
    process_id: Option<i64>,
    message: &str,
) -> Result<(), AppError> {
    let message: String = message.chars().take(512).collect();
    trigger_runs::ActiveModel {
        trigger_id: Set(trigger_id),
        at: Set(Utc::now()),
        outcome: Set(outcome.to_owned()),
        process_id: Set(process_id),
        message: Set(message),
        ..Default::default()
    }
    .insert(conn)
    .await
    .map_err(db_error)?;
    // One statement: delete what is older than the oldest run kept (none when fewer are
    // kept, as the comparison with no row is never true).
    let oldest_kept = Runs::find()
        .select_only()
        .column(RunColumn::Id)
        .filter(RunColumn::TriggerId.eq(trigger_id))
        .order_by_desc(RunColumn::Id)
        .offset(RUNS_KEPT - 1)
        .limit(1)
        .into_query();
    Runs::delete_many()
        .filter(RunColumn::TriggerId.eq(trigger_id))
        .filter(Expr::col(RunColumn::Id).lt(Expr::expr(SimpleExpr::SubQuery(
            None,
            Box::new(oldest_kept.into_sub_query_statement()),
        ))))
        .exec(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Launches the trigger's definition with its fields over `extra`, recording the run, all in
/// `txn`. A launch that fails is recorded as a failed run; its error is returned.
async fn fire(
    txn: &crate::ssr::WriteTransaction,
    cache: &DefinitionCache,
    row: &triggers::Model,
    extra: Fields,
    client_addr: Option<String>,
) -> Result<Result<i64, String>, AppError> {
    let mut fields: Fields = serde_json::from_str(&row.fields).unwrap_or_default();
    fields.extend(extra);
    let actor = Actor {
        id: None,
        name: format!("trigger:{}", row.name),
        client_addr,
    };
    // A savepoint, so that a launch failing half-way leaves nothing behind but the run.
    let launch = txn.savepoint().await.map_err(db_error)?;
    match instances::launch_in(
        &launch,
        cache,
        &actor,
        scope_of(row),
        &row.definition_name,
        fields,
    )
    .await
    {
        Ok(id) => {
            launch.commit().await.map_err(db_error)?;
            record_run(
                txn,
                row.id,
                "started",
                Some(id),
                &format!("Launched process {id}"),
            )
            .await?;
            Ok(Ok(id))
        }
        Err(AppError::Internal) => Err(AppError::Internal),
        Err(error) => {
            launch.rollback().await.map_err(db_error)?;
            let message = match error {
                AppError::NotFound => {
                    format!("the definition `{}` no longer exists", row.definition_name)
                }
                other => other.to_string(),
            };
            record_run(txn, row.id, "failed", None, &message).await?;
            Ok(Err(message))
        }
    }
}

/// Fires every cron trigger that is due at `now`. Returns the processes launched.
pub async fn fire_due(
    db: &DatabaseConnection,
    cache: &DefinitionCache,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, AppError> {
    let due = Triggers::find()
        .filter(Column::Enabled.eq(true))
        .filter(Column::NextRunAt.lte(now))
        .order_by_asc(Column::NextRunAt)
        .limit(FIRE_BATCH)
        .all(db)
        .await
        .map_err(db_error)?;
    let mut launched = Vec::new();
    for row in due {
        let next = schedule_of(&row).and_then(|s| s.next_after(now));
        let txn = begin_write(db).await?;
        let claimed = Triggers::update_many()
            .col_expr(Column::NextRunAt, Expr::value(next))
            .filter(Column::Id.eq(row.id))
            .filter(Column::NextRunAt.eq(row.next_run_at))
            .exec(&txn)
            .await
            .map_err(db_error)?
            .rows_affected
            == 1;
        if !claimed {
            continue;
        }
        if let Ok(id) = fire(&txn, cache, &row, Fields::new(), None).await? {
            launched.push(id);
        }
        txn.commit().await.map_err(db_error)?;
    }
    Ok(launched)
}

/// When the next cron trigger is due, if any is.
pub async fn next_due(db: &DatabaseConnection) -> Result<Option<DateTime<Utc>>, AppError> {
    Triggers::find()
        .select_only()
        .column(Column::NextRunAt)
        .filter(Column::Enabled.eq(true))
        .filter(Column::NextRunAt.is_not_null())
        .order_by_asc(Column::NextRunAt)
        .into_tuple::<Option<DateTime<Utc>>>()
        .one(db)
        .await
        .map_err(db_error)
        .map(Option::flatten)
}

/// A call of webhook trigger `id`: checks its signature, maps its payload and launches the
/// process. Refusals and failures are recorded as runs; refusals are audited.
pub async fn call(
    state: &crate::ssr::state::AppState,
    id: i64,
    signature: Option<&str>,
    token: Option<&str>,
    body: &[u8],
    client_addr: Option<String>,
) -> Result<i64, CallFailure> {
    let (db, cache) = (&state.db, &state.engine.cache);
    let row = match Triggers::find_by_id(id).one(db).await.map_err(db_error)? {
        Some(row) if row.kind == "webhook" => row,
        _ => return Err(CallFailure::Unknown),
    };
    let secret = state
        .secrets
        .open(row.secret.as_deref().unwrap_or_default())
        .map_err(|error| {
            tracing::error!(%error, trigger = row.id, "cannot open a webhook's secret");
            CallFailure::Internal
        })?;
    if let Err(refusal) = webhook::verify(&secret, signature, token, body) {
        let txn = begin_write(db).await?;
        record_run(&txn, row.id, "refused", None, refusal.message()).await?;
        let event = Event::new(
            "trigger.refused",
            "trigger",
            Some(row.id.to_string()),
            format!(
                "Refused a call of webhook {}: {}",
                row.name,
                refusal.message()
            ),
        );
        audit::record(&txn, &Actor::anonymous(client_addr), event).await?;
        txn.commit().await.map_err(db_error)?;
        return Err(CallFailure::Refused(refusal));
    }
    if !row.enabled {
        return Err(CallFailure::Disabled);
    }
    let payload = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(payload) => payload,
        Err(error) => {
            let message = format!("the payload is not JSON: {error}");
            let txn = begin_write(db).await?;
            record_run(&txn, row.id, "failed", None, &message).await?;
            txn.commit().await.map_err(db_error)?;
            return Err(CallFailure::BadPayload(message));
        }
    };
    let mapping: BTreeMap<String, String> = serde_json::from_str(&row.mapping).unwrap_or_default();
    let fields = webhook::map_fields(&mapping, &payload);
    let txn = begin_write(db).await?;
    let outcome = fire(&txn, cache, &row, fields, client_addr).await?;
    txn.commit().await.map_err(db_error)?;
    outcome.map_err(CallFailure::NotLaunched)
}

fn view(
    row: triggers::Model,
    projects: &BTreeMap<i64, (String, String)>,
    runs: &mut BTreeMap<i64, Vec<TriggerRunView>>,
    can_edit: bool,
) -> TriggerView {
    let (project, project_name) = row
        .project_id
        .and_then(|id| projects.get(&id).cloned())
        .unwrap_or_default();
    let kind = if row.kind == "cron" {
        TriggerKind::Cron {
            schedule: row.schedule.unwrap_or_default(),
            time_zone: row.time_zone.unwrap_or_default(),
        }
    } else {
        TriggerKind::Webhook {
            mapping: serde_json::from_str(&row.mapping).unwrap_or_default(),
        }
    };
    TriggerView {
        id: row.id,
        project,
        project_name,
        name: row.name,
        kind,
        definition: row.definition_name,
        fields: row.fields,
        enabled: row.enabled,
        created_by: row.created_by,
        created_at: row.created_at,
        next_run_at: row.next_run_at,
        runs: runs.remove(&row.id).unwrap_or_default(),
        can_edit,
    }
}

/// The triggers in `rows` as lists show them, with their latest runs.
async fn views(
    conn: &impl ConnectionTrait,
    rows: Vec<triggers::Model>,
    can_edit: impl Fn(&triggers::Model) -> bool,
) -> Result<Vec<TriggerView>, AppError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let projects: BTreeMap<i64, (String, String)> = Projects::find()
        .filter(ProjectColumn::Id.is_in(rows.iter().filter_map(|r| r.project_id)))
        .all(conn)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|p| (p.id, (p.slug, p.name)))
        .collect();
    let mut runs: BTreeMap<i64, Vec<TriggerRunView>> = BTreeMap::new();
    for run in Runs::find()
        .filter(RunColumn::TriggerId.is_in(ids))
        .order_by_desc(RunColumn::Id)
        .all(conn)
        .await
        .map_err(db_error)?
    {
        runs.entry(run.trigger_id)
            .or_default()
            .push(TriggerRunView {
                at: run.at,
                outcome: run.outcome,
                process_id: run.process_id,
                message: run.message,
            });
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let edit = can_edit(&row);
            view(row, &projects, &mut runs, edit)
        })
        .collect())
}

/// Every trigger of `scope`, by name.
pub async fn list(
    conn: &impl ConnectionTrait,
    scope: Scope,
    can_edit: bool,
) -> Result<Vec<TriggerView>, AppError> {
    let rows = Triggers::find()
        .filter(Column::ScopeKey.eq(scope.key()))
        .order_by_asc(Column::Name)
        .all(conn)
        .await
        .map_err(db_error)?;
    views(conn, rows, |_| can_edit).await
}

/// One page of every trigger `user` may see: the global ones and those of the projects
/// they may view. Changing them happens on their scope's page.
pub async fn list_all(
    conn: &impl ConnectionTrait,
    user: &CurrentUser,
    page: u64,
) -> Result<Page<TriggerView>, AppError> {
    let mut query = Triggers::find()
        .order_by_asc(Column::ScopeKey)
        .order_by_asc(Column::Name);
    if !user.is_admin {
        let viewable = Projects::find()
            .select_only()
            .column(ProjectColumn::Id)
            .filter(crate::ssr::projects::list::viewable(user))
            .into_query();
        query = query.filter(
            sea_orm::Condition::any()
                .add(Column::ProjectId.is_null())
                .add(Column::ProjectId.in_subquery(viewable)),
        );
    }
    let page: Page<triggers::Model> = paginate(conn, query, page, TRIGGERS_PER_PAGE).await?;
    let items = views(conn, page.items, |_| false).await?;
    Ok(Page {
        items,
        total: page.total,
        page: page.page,
        per_page: page.per_page,
    })
}
