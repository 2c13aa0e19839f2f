//! Builds read back for the pages: their state, which follows their process, their place in
//! the queue, and everything the build page shows but the log.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};

use super::snapshot_of;
use crate::builds::{
    BUILD_FILTER_MAX, BuildFilter, BuildMessage, BuildState, BuildSummary, BuildTask, BuildView,
};
use crate::error::AppError;
use crate::ssr::db_error;
use crate::ssr::entities::build_messages::{Column as MessageColumn, Entity as Messages};
use crate::ssr::entities::build_tasks::{Column as TaskColumn, Entity as Tasks};
use crate::ssr::entities::builds::{self, Entity as Builds};
use crate::ssr::entities::process_history::{Column as HistoryColumn, Entity as History};
use crate::ssr::entities::process_instances::{self, Entity as Instances};
use crate::ssr::entities::workitems::{self, Column as WorkitemColumn, Entity as Workitems};
use crate::ssr::projects::Project;

/// The most tasks the build page lists; the log has them all.
pub const MAX_TASKS_SHOWN: u64 = 20_000;

/// The most errors and warnings the build page lists.
pub const MAX_MESSAGES_SHOWN: u64 = 1_000;

/// `rows` as lists show them; `projects` holds each row's project.
pub async fn summaries(
    conn: &impl ConnectionTrait,
    rows: &[builds::Model],
    projects: &HashMap<i64, Project>,
) -> Result<Vec<BuildSummary>, AppError> {
    let instance_ids: Vec<i64> = rows.iter().filter_map(|b| b.instance_id).collect();
    let instances: HashMap<i64, process_instances::Model> = if instance_ids.is_empty() {
        HashMap::new()
    } else {
        Instances::find()
            .filter(process_instances::Column::Id.is_in(instance_ids))
            .all(conn)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|row| (row.id, row))
            .collect()
    };
    // The newest build step of each process still going.
    let going: Vec<i64> = instances
        .values()
        .filter(|i| {
            !matches!(
                i.status.as_str(),
                "finished" | "cancelled" | "killed" | "error"
            )
        })
        .map(|i| i.id)
        .collect();
    let mut steps: HashMap<i64, workitems::Model> = HashMap::new();
    if !going.is_empty() {
        for row in Workitems::find()
            .filter(WorkitemColumn::InstanceId.is_in(going))
            .filter(WorkitemColumn::Participant.eq("build"))
            .order_by_asc(WorkitemColumn::Seq)
            .all(conn)
            .await
            .map_err(db_error)?
        {
            steps.insert(row.instance_id, row);
        }
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let instance = row.instance_id.and_then(|id| instances.get(&id));
        let step = row
            .instance_id
            .and_then(|id| steps.get(&id))
            .map(|w| (step_name(w), w.state == "queued"));
        let state = match instance {
            Some(instance) => BuildState::of(
                &instance.status,
                step.as_ref().map(|(name, queued)| (name.as_str(), *queued)),
            ),
            // The process was deleted on its own: the build can no longer go on.
            None => BuildState::Cancelled,
        };
        let queue_position = match (state, row.instance_id.and_then(|id| steps.get(&id))) {
            (BuildState::Queued, Some(step)) => Some(queue_position(conn, step.id).await?),
            (BuildState::Queued, None) => Some(0),
            _ => None,
        };
        let waiting_for_directory = match (state, &row.build_directory) {
            (BuildState::Queued, Some(directory)) => directory_holder(conn, row, directory).await?,
            _ => None,
        };
        let project = projects.get(&row.project_id);
        let snapshot = snapshot_of(row)?;
        out.push(BuildSummary {
            id: row.id,
            project: project.map(|p| p.slug.clone()).unwrap_or_default(),
            project_name: project.map(|p| p.name.clone()).unwrap_or_default(),
            number: row.number,
            state,
            queue_position,
            waiting_for_directory,
            targets: row.targets.clone(),
            machine: snapshot.configuration.machine,
            requested_by: row.requested_by_name.clone(),
            created_at: row.created_at,
            finished_at: instance.and_then(|i| i.finished_at),
            parse_percent: u8::try_from(row.parse_percent.clamp(0, 100)).unwrap_or(0),
            setscene_done: u32::try_from(row.setscene_done).unwrap_or(0),
            setscene_total: u32::try_from(row.setscene_total).unwrap_or(0),
            tasks_done: u32::try_from(row.tasks_done).unwrap_or(0),
            tasks_total: u32::try_from(row.tasks_total).unwrap_or(0),
            progress: u8::try_from(row.progress.clamp(0, 100)).unwrap_or(0),
            errors: u32::try_from(row.errors).unwrap_or(0),
            warnings: u32::try_from(row.warnings).unwrap_or(0),
            hidden: row.hidden,
            pinned: row.pinned,
            archived: row.archived,
        });
    }
    Ok(out)
}

/// The step a build workitem runs (`params.step`).
fn step_name(row: &workitems::Model) -> String {
    serde_json::from_str::<serde_json::Value>(&row.params)
        .ok()
        .and_then(|p| p.get("step").and_then(|s| s.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

/// The earlier build holding `directory` (see [`super::waits_for_directory`]), which `row`
/// waits for: its number when it is of the same project, 0 when of another (whose number
/// says nothing here).
async fn directory_holder(
    conn: &impl ConnectionTrait,
    row: &builds::Model,
    directory: &str,
) -> Result<Option<i32>, AppError> {
    use process_instances::Column as InstanceColumn;
    use sea_orm::sea_query::{Expr, ExprTrait};
    use sea_orm::{JoinType, QuerySelect, RelationDef};
    let on_instance = RelationDef::from(
        Builds::belongs_to(Instances)
            .from(builds::Column::InstanceId)
            .to(InstanceColumn::Id),
    );
    let holder: Option<(i64, i32)> = Builds::find()
        .select_only()
        .column(builds::Column::ProjectId)
        .column(builds::Column::Number)
        .join(JoinType::InnerJoin, on_instance)
        .filter(builds::Column::BuildDirectory.eq(directory))
        .filter(builds::Column::Id.lt(row.id))
        .filter(
            Expr::col((Instances, InstanceColumn::Status))
                .is_in(super::HOLDS_DIRECTORY.map(|status| status.as_str())),
        )
        .order_by_asc(builds::Column::Id)
        .into_tuple()
        .one(conn)
        .await
        .map_err(db_error)?;
    Ok(holder.map(|(project, number)| if project == row.project_id { number } else { 0 }))
}

/// Where the queued build workitem `workitem` stands among those waiting, from 1.
async fn queue_position(conn: &impl ConnectionTrait, workitem: i64) -> Result<u32, AppError> {
    let ahead = Workitems::find()
        .filter(WorkitemColumn::State.eq("queued"))
        .filter(WorkitemColumn::Participant.eq("build"))
        .filter(WorkitemColumn::Id.lt(workitem))
        .count(conn)
        .await
        .map_err(db_error)?;
    Ok(u32::try_from(ahead + 1).unwrap_or(u32::MAX))
}

/// Build `row` of `project` as its page shows it.
/// What the user may do to a project's builds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rights {
    /// Start and cancel builds.
    pub build: bool,
    pub download: bool,
    /// Delete builds.
    pub delete: bool,
}

pub async fn view(
    conn: &impl ConnectionTrait,
    project: &Project,
    row: &builds::Model,
    rights: Rights,
) -> Result<BuildView, AppError> {
    let projects = HashMap::from([(project.id, project.clone())]);
    let summary = summaries(conn, std::slice::from_ref(row), &projects)
        .await?
        .pop()
        .ok_or(AppError::Internal)?;
    let failure = match (summary.state, row.instance_id) {
        (BuildState::Failed, Some(instance)) => History::find()
            .filter(HistoryColumn::InstanceId.eq(instance))
            .filter(HistoryColumn::Kind.is_in(["failed", "timed_out"]))
            .order_by_desc(HistoryColumn::Id)
            .one(conn)
            .await
            .map_err(db_error)?
            .map(|h| h.message),
        _ => None,
    };
    let task_count = Tasks::find()
        .filter(TaskColumn::BuildId.eq(row.id))
        .count(conn)
        .await
        .map_err(db_error)?;
    let failed_tasks = tasks_where(conn, row.id, Some("failed")).await?;
    let messages = Messages::find()
        .filter(MessageColumn::BuildId.eq(row.id))
        .order_by_asc(MessageColumn::Id)
        .paginate(conn, MAX_MESSAGES_SHOWN)
        .fetch_page(0)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|m| BuildMessage {
            level: m.level,
            text: m.text,
            line: m.line,
        })
        .collect();
    let rebuild_of = match row.rebuild_of {
        Some(id) => Builds::find_by_id(id)
            .one(conn)
            .await
            .map_err(db_error)?
            .map(|b| b.number),
        None => None,
    };
    Ok(BuildView {
        summary,
        process: row.instance_id,
        failure,
        host: row.host.clone(),
        directory: row.directory.clone(),
        snapshot: snapshot_of(row)?,
        rebuild_of,
        task_count,
        failed_tasks,
        messages,
        log_bytes: u64::try_from(row.log_bytes).unwrap_or(0),
        log_lines: u64::try_from(row.log_lines).unwrap_or(0),
        artifacts: super::artifacts::list(conn, row).await?,
        artifacts_expired_at: row.artifacts_expired_at,
        can_download: rights.download,
        can_build: rights.build,
        can_delete: rights.delete,
    })
}

/// The tasks of build `build` in the order they started (those with `outcome` only, when
/// given), at most [`MAX_TASKS_SHOWN`].
pub async fn tasks_where(
    conn: &impl ConnectionTrait,
    build: i64,
    outcome: Option<&str>,
) -> Result<Vec<BuildTask>, AppError> {
    let mut select = Tasks::find().filter(TaskColumn::BuildId.eq(build));
    if let Some(outcome) = outcome {
        select = select.filter(TaskColumn::Outcome.eq(outcome));
    }
    Ok(select
        .order_by_asc(TaskColumn::Id)
        .paginate(conn, MAX_TASKS_SHOWN)
        .fetch_page(0)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|t| BuildTask {
            duration_ms: t
                .ended_at
                .map(|end| (end - t.started_at).num_milliseconds()),
            recipe: t.recipe,
            version: t.version,
            task: t.task,
            outcome: t.outcome,
            started_at: t.started_at,
            failure: t.failure,
        })
        .collect())
}

/// Builds per page in lists.
pub const BUILDS_PER_PAGE: u64 = 25;

/// The process statuses of builds in each state of the All builds filter.
fn statuses_of(state: &str) -> Option<&'static [&'static str]> {
    match state {
        "running" => Some(&["running", "paused"]),
        "succeeded" => Some(&["finished"]),
        "failed" => Some(&["error"]),
        "cancelled" => Some(&["cancelled", "cancelling", "killed"]),
        _ => None,
    }
}

/// `filter` checked, as conditions on builds (all but the project, which `list_all` looks
/// up).
fn conditions(filter: &BuildFilter) -> Result<sea_orm::Condition, AppError> {
    use crate::ssr::entities::builds::Column;
    use sea_orm::Condition;
    use sea_orm::sea_query::Query;
    let text = |field: &str, raw: &str| -> Result<Option<String>, AppError> {
        let value = raw.trim();
        if value.chars().count() > BUILD_FILTER_MAX || value.chars().any(char::is_control) {
            return Err(AppError::invalid(
                field,
                format!("At most {BUILD_FILTER_MAX} characters, without control characters."),
            ));
        }
        Ok((!value.is_empty()).then(|| value.to_owned()))
    };
    let mut all = Condition::all();
    if !filter.hidden {
        all = all.add(Column::Hidden.eq(false));
    }
    if let Some(user) = text("user", &filter.user)? {
        all = all.add(Column::RequestedByName.eq(user.to_lowercase()));
    }
    if let Some(target) = text("target", &filter.target)? {
        if !target
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-+.".contains(c))
        {
            return Err(AppError::invalid(
                "target",
                "An image target: letters, digits, `-`, `+` and `.`.",
            ));
        }
        // Targets are stored space-separated: match whole names only.
        all = all.add(
            Condition::any()
                .add(Column::Targets.eq(target.as_str()))
                .add(Column::Targets.like(format!("{target} %")))
                .add(Column::Targets.like(format!("% {target}")))
                .add(Column::Targets.like(format!("% {target} %"))),
        );
    }
    let (from, until) = crate::domain::parse_day_range(&filter.from, &filter.to)?;
    if let Some(from) = from {
        all = all.add(Column::CreatedAt.gte(from));
    }
    if let Some(until) = until {
        all = all.add(Column::CreatedAt.lt(until));
    }
    match filter.state.trim() {
        "" => {}
        state => {
            let Some(statuses) = statuses_of(state) else {
                return Err(AppError::invalid(
                    "state",
                    "Choose in progress, succeeded, failed or cancelled.",
                ));
            };
            let instances = Query::select()
                .column(process_instances::Column::Id)
                .from(Instances)
                .and_where(process_instances::Column::Status.is_in(statuses.iter().copied()))
                .to_owned();
            let mut matching = Condition::any().add(Column::InstanceId.in_subquery(instances));
            if state == "cancelled" {
                matching = matching.add(Column::InstanceId.is_null());
            }
            all = all.add(matching);
        }
    }
    Ok(all)
}

/// One page of the builds of every project `user` may view, newest first, narrowed by
/// `filter`.
pub async fn list_all(
    conn: &impl ConnectionTrait,
    user: &crate::types::CurrentUser,
    filter: &BuildFilter,
    page: u64,
) -> Result<crate::types::Page<BuildSummary>, AppError> {
    use crate::ssr::entities::builds::Column;
    use crate::ssr::entities::projects::{Column as ProjectColumn, Entity as Projects};
    use sea_orm::{QuerySelect, QueryTrait};
    let mut select = Builds::find().filter(conditions(filter)?);
    if let Some(slug) = Some(filter.project.trim()).filter(|s| !s.is_empty()) {
        let project: Option<i64> = Projects::find()
            .select_only()
            .column(ProjectColumn::Id)
            .filter(ProjectColumn::Slug.eq(slug.to_lowercase()))
            .into_tuple()
            .one(conn)
            .await
            .map_err(db_error)?;
        // A project that does not exist has no builds, like one the user cannot view.
        select = select.filter(Column::ProjectId.eq(project.unwrap_or(0)));
    }
    if !user.is_admin {
        let viewable = Projects::find()
            .select_only()
            .column(ProjectColumn::Id)
            .filter(crate::ssr::projects::list::viewable(user))
            .into_query();
        select = select.filter(Column::ProjectId.in_subquery(viewable));
    }
    let select = select
        .order_by_desc(Column::CreatedAt)
        .order_by_desc(Column::Id);
    let page: crate::types::Page<builds::Model> =
        crate::ssr::paginate(conn, select, page, BUILDS_PER_PAGE).await?;
    let ids: Vec<i64> = page.items.iter().map(|b| b.project_id).collect();
    let projects: HashMap<i64, Project> = Projects::find()
        .filter(ProjectColumn::Id.is_in(ids))
        .all(conn)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let items = summaries(conn, &page.items, &projects).await?;
    Ok(crate::types::Page {
        items,
        page: page.page,
        per_page: page.per_page,
        total: page.total,
    })
}

/// One page of `project`'s builds, newest first; hidden ones only when `show_hidden`.
pub async fn list_project(
    conn: &impl ConnectionTrait,
    project: &Project,
    show_hidden: bool,
    page: u64,
) -> Result<crate::types::Page<BuildSummary>, AppError> {
    use crate::ssr::entities::builds::Column;
    let mut select = Builds::find().filter(Column::ProjectId.eq(project.id));
    if !show_hidden {
        select = select.filter(Column::Hidden.eq(false));
    }
    let select = select.order_by_desc(Column::Number);
    let page: crate::types::Page<builds::Model> =
        crate::ssr::paginate(conn, select, page, BUILDS_PER_PAGE).await?;
    let projects = HashMap::from([(project.id, project.clone())]);
    let items = summaries(conn, &page.items, &projects).await?;
    Ok(crate::types::Page {
        items,
        page: page.page,
        per_page: page.per_page,
        total: page.total,
    })
}
