//! The participant registry: which names a definition may hand workitems to.

use std::collections::BTreeSet;

use chrono::Utc;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, sea_query::OnConflict};

use crate::error::AppError;
use crate::ssr::db_error;
use crate::ssr::entities::participants::{self, Column, Entity as Participants};

/// The participants every Kiln has: the interpreter's own, `shell` and `build` on workers,
/// and `approve` for people.
const STANDARD: &[(&str, &str, &str)] = &[
    ("noop", "built_in", "Does nothing and replies at once."),
    (
        "log",
        "built_in",
        "Appends params.message to the instance history.",
    ),
    ("set", "built_in", "Sets its params as fields."),
    (
        "notify",
        "built_in",
        "Records params.message for params.to.",
    ),
    (
        "shell",
        "worker",
        "Runs params.command (a list: program and arguments, no shell) on a worker.",
    ),
    (
        "build",
        "worker",
        "Runs params.step of a build on a worker: prepare (fetch layers, write conf/) or bitbake (params.command with the targets).",
    ),
    (
        "approve",
        "human",
        "Asks params.user or a member of params.group (else anyone who may build) in their Inbox; params.message, params.form: the fields to fill in.",
    ),
];

/// Registers the standard participants that are not registered yet.
pub async fn ensure_standard(conn: &impl ConnectionTrait) -> Result<(), AppError> {
    let now = Utc::now();
    for (name, kind, description) in STANDARD {
        Participants::insert(participants::ActiveModel {
            name: Set((*name).to_owned()),
            kind: Set((*kind).to_owned()),
            description: Set((*description).to_owned()),
            default_timeout_ms: Set(None),
            // A build's later steps need the worker that prepared it: they fail with it.
            worker_loss_retries: Set(if *name == "build" { 0 } else { 1 }),
            allowed: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .on_conflict(OnConflict::column(Column::Name).do_nothing().to_owned())
        .exec_without_returning(conn)
        .await
        .map_err(db_error)?;
    }
    Ok(())
}

/// The timeouts steps for `names` get when their definition gives none, in milliseconds,
/// for the participants that have one.
pub async fn default_timeouts(
    conn: &impl ConnectionTrait,
    names: std::collections::BTreeSet<&str>,
) -> Result<std::collections::HashMap<String, i64>, AppError> {
    use sea_orm::{ColumnTrait, QueryFilter, QuerySelect};
    if names.is_empty() {
        return Ok(Default::default());
    }
    Ok(Participants::find()
        .select_only()
        .column(Column::Name)
        .column(Column::DefaultTimeoutMs)
        .filter(Column::Name.is_in(names))
        .filter(Column::DefaultTimeoutMs.is_not_null())
        .into_tuple::<(String, Option<i64>)>()
        .all(conn)
        .await
        .map_err(db_error)?
        .into_iter()
        .filter_map(|(name, ms)| Some((name, ms?)))
        .collect())
}

/// The names of the participants people serve.
pub async fn human(conn: &impl ConnectionTrait) -> Result<Vec<String>, AppError> {
    use sea_orm::{ColumnTrait, QueryFilter};
    Ok(Participants::find()
        .filter(Column::Kind.eq("human"))
        .all(conn)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|row| row.name)
        .collect())
}

/// The participants definitions in `scope` may use: those open to every project, and those
/// whose list of projects holds this one.
pub async fn names(
    conn: &impl ConnectionTrait,
    scope: super::Scope,
) -> Result<BTreeSet<String>, AppError> {
    Ok(Participants::find()
        .all(conn)
        .await
        .map_err(db_error)?
        .into_iter()
        .filter(|row| match (allowed_projects(row), scope) {
            (None, _) => true,
            (Some(projects), super::Scope::Project(id)) => projects.contains(&id),
            (Some(_), super::Scope::Global) => false,
        })
        .map(|row| row.name)
        .collect())
}

/// The ids under `key` in a participant's `allowed`; `None` when the list is absent.
fn allowed_ids(row: &participants::Model, key: &str) -> Option<Vec<i64>> {
    let allowed: serde_json::Value = serde_json::from_str(row.allowed.as_deref()?).ok()?;
    allowed[key]
        .as_array()
        .map(|ids| ids.iter().filter_map(serde_json::Value::as_i64).collect())
}

/// The projects a participant is kept to; `None` when every project may use it.
fn allowed_projects(row: &participants::Model) -> Option<Vec<i64>> {
    allowed_ids(row, "projects")
}

/// The users, and the groups whose members, a participant is kept to; `None` when everyone
/// who may run a process may use it.
fn allowed_people(row: &participants::Model) -> Option<(Vec<i64>, Vec<i64>)> {
    let users = allowed_ids(row, "users").unwrap_or_default();
    let groups = allowed_ids(row, "groups").unwrap_or_default();
    (!users.is_empty() || !groups.is_empty()).then_some((users, groups))
}

/// Checks that `user` may start processes that hand work to `names`: a participant kept to
/// some users and groups needs them to be one of those users or in one of those groups
/// (administrators may use every participant).
pub async fn check_user(
    conn: &impl ConnectionTrait,
    names: &BTreeSet<String>,
    user: crate::types::UserId,
) -> Result<(), AppError> {
    use crate::ssr::entities::group_members::{Column as MemberColumn, Entity as Members};
    use sea_orm::{ColumnTrait, QueryFilter, QuerySelect};
    let kept: Vec<_> = Participants::find()
        .filter(Column::Name.is_in(names.iter().cloned()))
        .filter(Column::Allowed.is_not_null())
        .all(conn)
        .await
        .map_err(db_error)?
        .into_iter()
        .filter_map(|row| allowed_people(&row).map(|people| (row.name, people)))
        .collect();
    if kept.is_empty() {
        return Ok(());
    }
    if crate::ssr::users::by_id(conn, user)
        .await?
        .is_some_and(|u| u.is_admin)
    {
        return Ok(());
    }
    let groups: BTreeSet<i64> = Members::find()
        .select_only()
        .column(MemberColumn::GroupId)
        .filter(MemberColumn::UserId.eq(user.0))
        .into_tuple::<i64>()
        .all(conn)
        .await
        .map_err(db_error)?
        .into_iter()
        .collect();
    for (name, (users, allowed_groups)) in kept {
        if !users.contains(&user.0) && !allowed_groups.iter().any(|g| groups.contains(g)) {
            return Err(AppError::invalid(
                "name",
                format!("this process hands work to `{name}`, which you may not use"),
            ));
        }
    }
    Ok(())
}

/// Most projects, and most users and groups, a participant can be kept to.
pub const MAX_ALLOWED: usize = 100;

/// Most attempts elsewhere after a lost worker.
pub const MAX_LOSS_RETRIES: i32 = 10;

/// A participant as an administrator registers or changes it.
#[derive(Default)]
pub struct ParticipantInput {
    pub name: String,
    /// `worker` or `human`.
    pub kind: String,
    pub description: String,
    /// Empty for none, else a duration such as `30m`.
    pub default_timeout: String,
    pub worker_loss_retries: i32,
    /// Project slugs; empty for every project.
    pub projects: Vec<String>,
    /// Usernames and group names that may launch processes using it; both empty for
    /// everyone who may run them.
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

/// The ids of the rows whose `name` column holds each of `names`, in one query; a name
/// with no row is an error of `field` saying there is no such `noun`.
async fn ids_by_name<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    id: E::Column,
    name: E::Column,
    names: &[String],
    field: &str,
    noun: &str,
) -> Result<Vec<i64>, AppError> {
    use sea_orm::{ColumnTrait, QueryFilter, QuerySelect};
    let found: std::collections::BTreeMap<String, i64> = E::find()
        .select_only()
        .column(name)
        .column(id)
        .filter(name.is_in(names.iter().cloned()))
        .into_tuple::<(String, i64)>()
        .all(conn)
        .await
        .map_err(db_error)?
        .into_iter()
        .collect();
    names
        .iter()
        .map(|n| {
            found
                .get(n)
                .copied()
                .ok_or_else(|| AppError::invalid(field, format!("there is no {noun} `{n}`")))
        })
        .collect()
}

/// Registers a participant, or changes one that is not built in. Audited.
pub async fn save(
    db: &sea_orm::DatabaseConnection,
    actor: &crate::ssr::audit::Actor,
    input: ParticipantInput,
) -> Result<(), AppError> {
    use crate::ssr::audit::{self, Event};
    use sea_orm::{ActiveModelTrait, ColumnTrait, QueryFilter};

    let name = input.name.trim().to_owned();
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !valid {
        return Err(AppError::invalid(
            "name",
            "1 to 64 of a-z, digits, _ and -, starting with a letter",
        ));
    }
    if !matches!(input.kind.as_str(), "worker" | "human") {
        return Err(AppError::invalid(
            "kind",
            "a participant is served by workers or by people",
        ));
    }
    let description = input.description.trim().to_owned();
    if description.chars().count() > 512 || description.contains(['\n', '\r']) {
        return Err(AppError::invalid(
            "description",
            "one line of at most 512 characters",
        ));
    }
    let default_timeout_ms = match input.default_timeout.trim() {
        "" => None,
        text => Some(
            humantime::parse_duration(text)
                .ok()
                .and_then(|d| i64::try_from(d.as_millis()).ok())
                .filter(|&ms| ms > 0 && ms <= 366 * 24 * 3_600_000)
                .ok_or_else(|| {
                    AppError::invalid(
                        "default_timeout",
                        "a duration such as 30s, 10m, 2h or 1h 30m, up to a year; empty for none",
                    )
                })?,
        ),
    };
    if !(0..=MAX_LOSS_RETRIES).contains(&input.worker_loss_retries) {
        return Err(AppError::invalid(
            "worker_loss_retries",
            format!("0 to {MAX_LOSS_RETRIES}"),
        ));
    }
    for (field, list) in [
        ("projects", &input.projects),
        ("users", &input.users),
        ("groups", &input.groups),
    ] {
        if list.len() > MAX_ALLOWED {
            return Err(AppError::invalid(
                field,
                format!("at most {MAX_ALLOWED} {field}"),
            ));
        }
    }
    let txn = crate::ssr::begin_write(db).await?;
    use crate::ssr::entities::{groups, projects, users};
    let project_ids = ids_by_name::<projects::Entity>(
        &txn,
        projects::Column::Id,
        projects::Column::Slug,
        &input.projects,
        "projects",
        "project",
    )
    .await?;
    let usernames: Vec<String> = input.users.iter().map(|u| u.to_lowercase()).collect();
    let user_ids = ids_by_name::<users::Entity>(
        &txn,
        users::Column::Id,
        users::Column::Username,
        &usernames,
        "users",
        "user",
    )
    .await?;
    let group_ids = ids_by_name::<groups::Entity>(
        &txn,
        groups::Column::Id,
        groups::Column::Name,
        &input.groups,
        "groups",
        "group",
    )
    .await?;
    let mut allowed = serde_json::Map::new();
    for (key, ids) in [
        ("projects", project_ids),
        ("users", user_ids),
        ("groups", group_ids),
    ] {
        if !ids.is_empty() {
            allowed.insert(key.to_owned(), serde_json::json!(ids));
        }
    }
    let allowed = (!allowed.is_empty()).then(|| serde_json::Value::Object(allowed).to_string());
    let now = Utc::now();
    let existing = Participants::find()
        .filter(Column::Name.eq(&name))
        .one(&txn)
        .await
        .map_err(db_error)?;
    let created = existing.is_none();
    let mut row: participants::ActiveModel = match existing {
        Some(row) if row.kind == "built_in" => {
            return Err(AppError::invalid(
                "name",
                format!("`{name}` is built into Kiln and cannot be changed"),
            ));
        }
        Some(row) if row.kind != input.kind => {
            return Err(AppError::invalid(
                "kind",
                format!(
                    "`{name}` is served by {}; its kind cannot change",
                    match row.kind.as_str() {
                        "human" => "people",
                        _ => "workers",
                    }
                ),
            ));
        }
        Some(row) => row.into(),
        None => participants::ActiveModel {
            name: Set(name.clone()),
            kind: Set(input.kind.clone()),
            created_at: Set(now),
            ..Default::default()
        },
    };
    row.description = Set(description);
    row.default_timeout_ms = Set(default_timeout_ms);
    row.worker_loss_retries = Set(input.worker_loss_retries);
    row.allowed = Set(allowed);
    row.updated_at = Set(now);
    row.save(&txn).await.map_err(db_error)?;
    let verb = if created { "Registered" } else { "Changed" };
    let event = Event::new(
        "participant.save",
        "participant",
        Some(name.clone()),
        format!("{verb} participant {name}"),
    )
    .details(serde_json::json!({
        "kind": input.kind,
        "default_timeout_ms": default_timeout_ms,
        "worker_loss_retries": input.worker_loss_retries,
        "projects": input.projects,
        "users": input.users,
        "groups": input.groups,
    }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)
}

/// Completed steps the Participants page takes the median latency over.
const LATENCY_SAMPLE: u64 = 20;

/// Every participant with who serves it, what waits for it and how fast it answered lately.
/// `served` maps participant names to the live workers that serve them.
pub async fn overview(
    conn: &impl ConnectionTrait,
    served: &std::collections::BTreeMap<String, Vec<String>>,
) -> Result<Vec<crate::types::ParticipantView>, AppError> {
    use crate::ssr::entities::process_history::{Column as HistoryColumn, Entity as History};
    use crate::ssr::entities::workitems::{Column as WorkitemColumn, Entity as Workitems};
    use sea_orm::sea_query::{Expr, ExprTrait};
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};

    let counts: Vec<(String, String, i64)> = Workitems::find()
        .select_only()
        .column(WorkitemColumn::Participant)
        .column(WorkitemColumn::State)
        .column_as(Expr::col(WorkitemColumn::Id).count(), "n")
        .filter(WorkitemColumn::State.is_in(["queued", "dispatched"]))
        .group_by(WorkitemColumn::Participant)
        .group_by(WorkitemColumn::State)
        .into_tuple()
        .all(conn)
        .await
        .map_err(db_error)?;
    let mut views = Vec::new();
    for row in Participants::find()
        .order_by_asc(Column::Name)
        .all(conn)
        .await
        .map_err(db_error)?
    {
        let count = |state: &str| {
            counts
                .iter()
                .find(|(p, s, _)| *p == row.name && s == state)
                .map_or(0, |c| c.2)
        };
        let mut durations: Vec<i64> = History::find()
            .select_only()
            .column(HistoryColumn::DurationMs)
            .filter(HistoryColumn::Kind.eq("completed"))
            .filter(HistoryColumn::Participant.eq(&row.name))
            .filter(HistoryColumn::DurationMs.is_not_null())
            .order_by_desc(HistoryColumn::Id)
            .limit(LATENCY_SAMPLE)
            .into_tuple::<Option<i64>>()
            .all(conn)
            .await
            .map_err(db_error)?
            .into_iter()
            .flatten()
            .collect();
        durations.sort_unstable();
        let projects = match allowed_projects(&row) {
            Some(ids) => crate::ssr::entities::projects::Entity::find()
                .filter(crate::ssr::entities::projects::Column::Id.is_in(ids))
                .all(conn)
                .await
                .map_err(db_error)?
                .into_iter()
                .map(|p| p.slug)
                .collect(),
            None => Vec::new(),
        };
        let (users, groups) = match allowed_people(&row) {
            Some((user_ids, group_ids)) => {
                use crate::ssr::entities::groups::{Column as GroupColumn, Entity as Groups};
                use crate::ssr::entities::users::{Column as UserColumn, Entity as Users};
                let users = Users::find()
                    .filter(UserColumn::Id.is_in(user_ids))
                    .all(conn)
                    .await
                    .map_err(db_error)?
                    .into_iter()
                    .map(|u| u.username)
                    .collect();
                let groups = Groups::find()
                    .filter(GroupColumn::Id.is_in(group_ids))
                    .all(conn)
                    .await
                    .map_err(db_error)?
                    .into_iter()
                    .map(|g| g.name)
                    .collect();
                (users, groups)
            }
            None => (Vec::new(), Vec::new()),
        };
        views.push(crate::types::ParticipantView {
            users,
            groups,
            queued: count("queued"),
            running: count("dispatched"),
            recent_median_ms: durations.get(durations.len() / 2).copied(),
            workers: served.get(&row.name).cloned().unwrap_or_default(),
            name: row.name,
            kind: row.kind,
            projects,
            description: row.description,
            default_timeout_ms: row.default_timeout_ms,
            worker_loss_retries: row.worker_loss_retries,
        });
    }
    Ok(views)
}
