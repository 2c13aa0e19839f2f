//! Process instances as pages show them: lists of the ones a user may see, and one instance
//! with its outline marked by state, its fields, history and errors.

use std::collections::BTreeMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait,
};

use super::definitions::DefinitionCache;
use super::instances;
use crate::error::AppError;
use crate::ssr::entities::process_definition_versions::{
    Column as VersionColumn, Entity as Versions,
};
use crate::ssr::entities::process_definitions::Entity as Definitions;
use crate::ssr::entities::process_history::{Column as HistoryColumn, Entity as History};
use crate::ssr::entities::process_instances::{self, Column, Entity as Instances};
use crate::ssr::entities::projects::{Column as ProjectColumn, Entity as Projects};
use crate::ssr::entities::workitems::{Column as WorkitemColumn, Entity as Workitems};
use crate::ssr::workers::logs;
use crate::ssr::{db_error, paginate};
use crate::types::{
    CurrentUser, HISTORY_SHOWN, HistoryRow, OUTPUT_SHOWN_BYTES, OUTPUTS_SHOWN, Page,
    ProcessSummary, ProcessView, WorkitemOutput,
};
use crate::workflow::engine::FlowState;
use crate::workflow::outline::{NodeState, OutlineRow, outline};

/// Processes per page.
pub const PROCESSES_PER_PAGE: u64 = 25;

async fn slugs(
    conn: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = i64>,
) -> Result<BTreeMap<i64, String>, AppError> {
    Ok(Projects::find()
        .filter(ProjectColumn::Id.is_in(ids))
        .all(conn)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|p| (p.id, p.slug))
        .collect())
}

fn summary(row: &process_instances::Model, slugs: &BTreeMap<i64, String>) -> ProcessSummary {
    ProcessSummary {
        id: row.id,
        definition: row.definition_name.clone(),
        project: row.project_id.and_then(|id| slugs.get(&id).cloned()),
        status: row.status.clone(),
        launched_by: row.launched_by_name.clone(),
        created_at: row.created_at,
        finished_at: row.finished_at,
    }
}

/// One page of the processes `user` may see, newest first: those of the projects they may
/// view (of `project` alone when given), and for administrators the global ones too.
pub async fn list(
    conn: &impl ConnectionTrait,
    user: &CurrentUser,
    project: Option<i64>,
    page: u64,
) -> Result<Page<ProcessSummary>, AppError> {
    let mut query = Instances::find().order_by_desc(Column::Id);
    if let Some(project) = project {
        query = query.filter(Column::ProjectId.eq(project));
    } else if !user.is_admin {
        let viewable = Projects::find()
            .select_only()
            .column(ProjectColumn::Id)
            .filter(crate::ssr::projects::list::viewable(user))
            .into_query();
        query = query.filter(Column::ProjectId.in_subquery(viewable));
    }
    let page: Page<process_instances::Model> =
        paginate(conn, query, page, PROCESSES_PER_PAGE).await?;
    let slugs = slugs(conn, page.items.iter().filter_map(|r| r.project_id)).await?;
    Ok(page.map(|row| summary(&row, &slugs)))
}

/// The instance `id`'s row, for the caller to check the permission on its project.
pub async fn row(
    conn: &impl ConnectionTrait,
    id: i64,
) -> Result<process_instances::Model, AppError> {
    Instances::find_by_id(id)
        .one(conn)
        .await
        .map_err(db_error)?
        .ok_or(AppError::NotFound)
}

/// Instance `id` as its page shows it.
pub async fn view(
    conn: &impl ConnectionTrait,
    cache: &DefinitionCache,
    data_dir: &std::path::Path,
    id: i64,
    can_control: bool,
) -> Result<ProcessView, AppError> {
    let (row, instance) = instances::load(conn, id).await?;
    let version_ids: Vec<i64> = serde_json::from_str(&row.pinned_versions).unwrap_or_default();
    let library = cache.load(conn, &version_ids).await?;
    let mut versions = Vec::new();
    for version in Versions::find()
        .filter(VersionColumn::Id.is_in(version_ids.clone()))
        .all(conn)
        .await
        .map_err(db_error)?
    {
        let name = Definitions::find_by_id(version.definition_id)
            .one(conn)
            .await
            .map_err(db_error)?
            .map(|d| d.name)
            .unwrap_or_default();
        versions.push(format!("{name} v{}", version.version));
    }
    let main = library.first().ok_or(AppError::Internal)?;
    let mut rows = outline(main);
    let labels: BTreeMap<u32, String> = rows.iter().map(|r| (r.node, r.label.clone())).collect();

    let total = History::find()
        .filter(HistoryColumn::InstanceId.eq(id))
        .count(conn)
        .await
        .map_err(db_error)?;
    let mut history = History::find()
        .filter(HistoryColumn::InstanceId.eq(id))
        .order_by_desc(HistoryColumn::Id)
        .limit(HISTORY_SHOWN)
        .all(conn)
        .await
        .map_err(db_error)?;
    history.reverse();

    // What happened to each expression of the main definition, latest last.
    let mut states: BTreeMap<u32, NodeState> = BTreeMap::new();
    for event in history.iter().filter(|e| e.definition_index == Some(0)) {
        let Some(node) = event.node_id.and_then(|n| u32::try_from(n).ok()) else {
            continue;
        };
        let state = match event.kind.as_str() {
            "completed" => NodeState::Done,
            "skipped" => NodeState::Skipped,
            "failed" => NodeState::Failed,
            _ => continue,
        };
        states.insert(node, state);
    }
    let mut errors = Vec::new();
    let mut reapplicable = Vec::new();
    for (flow_id, flow) in &instance.flows {
        let label = labels.get(&flow.node.node.0).cloned().unwrap_or_default();
        if let FlowState::Failed { message } = &flow.state {
            errors.push(format!("{label}: {message}"));
        }
        if flow.node.definition != 0 {
            continue;
        }
        // The children a sequence or cursor has gone past are done.
        if let FlowState::Step { index } = flow.state
            && let Some(node) = main.node(flow.node.node)
        {
            for child in node.children().into_iter().take(index) {
                states.entry(child.id.0).or_insert(NodeState::Done);
            }
        }
        let state = match flow.state {
            FlowState::Workitem { .. } => NodeState::Waiting,
            FlowState::Failed { .. } => NodeState::Failed,
            _ => NodeState::Running,
        };
        states.insert(flow.node.node.0, state);
        reapplicable.push((flow_id.0, label));
    }
    mark(&mut rows, &states, instance.status.is_over());

    let history = history
        .into_iter()
        .map(|event| HistoryRow {
            at: event.at,
            node: match event.definition_index {
                Some(0) => event
                    .node_id
                    .and_then(|n| u32::try_from(n).ok())
                    .and_then(|n| labels.get(&n).cloned()),
                _ => None,
            },
            kind: event.kind,
            participant: event.participant,
            by: event.by,
            message: event.message,
            duration_ms: event.duration_ms,
        })
        .collect();
    let slugs = slugs(conn, row.project_id).await?;
    let outputs = outputs(conn, data_dir, id).await?;
    Ok(ProcessView {
        outputs,
        summary: summary(&row, &slugs),
        versions,
        fields: serde_json::to_string_pretty(&instance.fields).unwrap_or_default(),
        outline: rows,
        earlier_steps: total.saturating_sub(HISTORY_SHOWN),
        history,
        errors,
        reapplicable: if can_control {
            reapplicable
        } else {
            Vec::new()
        },
        can_control,
    })
}

/// The ends of the logs of the instance's latest workitems that printed anything.
async fn outputs(
    conn: &impl ConnectionTrait,
    data_dir: &std::path::Path,
    id: i64,
) -> Result<Vec<WorkitemOutput>, AppError> {
    let items = Workitems::find()
        .filter(WorkitemColumn::InstanceId.eq(id))
        .order_by_desc(WorkitemColumn::Id)
        .limit(OUTPUTS_SHOWN)
        .all(conn)
        .await
        .map_err(db_error)?;
    let mut outputs = Vec::new();
    for item in items {
        let size = tokio::fs::metadata(logs::path(data_dir, item.id))
            .await
            .map_or(0, |m| m.len());
        if size == 0 {
            continue;
        }
        let text = logs::tail(data_dir, item.id, OUTPUT_SHOWN_BYTES)
            .await
            .map_err(|error| {
                tracing::error!(%error, workitem = item.id, "cannot read a workitem log");
                AppError::Internal
            })?;
        outputs.push(WorkitemOutput {
            workitem: item.id,
            attempt: item.attempt,
            participant: item.participant,
            state: item.state,
            cut: size > text.len() as u64,
            text,
        });
    }
    Ok(outputs)
}

/// Gives each row its state: its own when known; else a composite expression is done when
/// something below it is done and nothing below it still runs; once the process is over,
/// nothing counts as running.
fn mark(rows: &mut [OutlineRow], states: &BTreeMap<u32, NodeState>, over: bool) {
    for row in rows.iter_mut() {
        if let Some(state) = states.get(&row.node) {
            row.state = *state;
        }
    }
    for i in (0..rows.len()).rev() {
        if rows[i].state != NodeState::Pending {
            continue;
        }
        let depth = rows[i].depth;
        let below = rows[i + 1..].iter().take_while(|r| r.depth > depth);
        let (mut done, mut active) = (false, false);
        for r in below {
            match r.state {
                NodeState::Done | NodeState::Skipped => done = true,
                NodeState::Running | NodeState::Waiting | NodeState::Failed => active = true,
                NodeState::Pending => {}
            }
        }
        if done && !active {
            rows[i].state = NodeState::Done;
        }
    }
    if over {
        for row in rows.iter_mut() {
            if matches!(row.state, NodeState::Running | NodeState::Waiting) {
                row.state = NodeState::Skipped;
            }
        }
    }
}
