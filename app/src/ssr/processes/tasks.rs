//! Human tasks: workitems for participants people serve, shown in the Inbox of those they
//! are for and answered from it. `params.user` names a user, `params.group` a group (any
//! member may answer); a task naming neither is for whoever may build the project (for a
//! global process, administrators). Either way the person must be able to see the process.

use std::collections::BTreeSet;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::{Value, json};

use super::{participants, views};
use crate::error::AppError;
use crate::ssr::audit::{self, Actor, Event};
use crate::ssr::entities::process_instances;
use crate::ssr::entities::workitems::{Column, Entity as Workitems};
use crate::ssr::policy::{self, Action, Object};
use crate::ssr::{begin_write, db_error, groups, projects};
use crate::types::{CurrentUser, Permission, TaskView};
use crate::workflow::definition::Fields;
use crate::workflow::engine::Outcome;

/// Most open tasks looked at for one Inbox.
pub const MAX_OPEN_TASKS: u64 = 1000;

/// The longest answer to one form field, and to a rejection's comment.
pub const MAX_ANSWER_CHARS: usize = 4096;

fn text(params: &Value, key: &str) -> Option<String> {
    params.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Who a task is for, as its page says it.
fn addressed_to(params: &Value) -> String {
    match (text(params, "user"), text(params, "group")) {
        (Some(user), _) => format!("user {user}"),
        (None, Some(group)) => format!("group {group}"),
        (None, None) => String::new(),
    }
}

/// The fields a task's form asks for (`params.form`).
fn form_fields(params: &Value) -> Vec<String> {
    params
        .get("form")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `user`, in `groups`, may answer a task with `params` of process `process`.
async fn may_answer(
    conn: &impl ConnectionTrait,
    user: &CurrentUser,
    groups: &BTreeSet<String>,
    process: &process_instances::Model,
    params: &Value,
) -> Result<bool, AppError> {
    let named = match (text(params, "user"), text(params, "group")) {
        (Some(name), _) => Some(name.eq_ignore_ascii_case(&user.username)),
        (None, Some(group)) => Some(groups.contains(&group)),
        (None, None) => None,
    };
    if named == Some(false) {
        return Ok(false);
    }
    let Some(project_id) = process.project_id else {
        return Ok(user.is_admin);
    };
    let project = projects::by_id(conn, project_id).await?;
    let facts = projects::facts(conn, &project, Some(user.id)).await?;
    // Named people answer what they can see; the rest of a project's tasks are its builders'.
    let needed = if named.is_some() {
        Permission::View
    } else {
        Permission::Build
    };
    Ok(policy::can(
        Some(user),
        Object::Project(facts),
        Action::Project(needed),
    ))
}

async fn group_names(
    conn: &impl ConnectionTrait,
    user: &CurrentUser,
) -> Result<BTreeSet<String>, AppError> {
    Ok(groups::memberships(conn, user.id)
        .await?
        .into_iter()
        .map(|m| m.name)
        .collect())
}

/// The open tasks `user` may answer, oldest first.
pub async fn inbox(
    conn: &impl ConnectionTrait,
    user: &CurrentUser,
) -> Result<Vec<TaskView>, AppError> {
    let human = participants::human(conn).await?;
    if human.is_empty() {
        return Ok(Vec::new());
    }
    let items = Workitems::find()
        .filter(Column::State.eq("queued"))
        .filter(Column::Participant.is_in(human))
        .order_by_asc(Column::Id)
        .limit(MAX_OPEN_TASKS)
        .all(conn)
        .await
        .map_err(db_error)?;
    let groups = group_names(conn, user).await?;
    let mut tasks = Vec::new();
    for item in items {
        let params: Value = serde_json::from_str(&item.params).unwrap_or_default();
        let row = views::row(conn, item.instance_id).await?;
        if !may_answer(conn, user, &groups, &row, &params).await? {
            continue;
        }
        let project = match row.project_id {
            Some(id) => Some(projects::by_id(conn, id).await?.slug),
            None => None,
        };
        let fields: Value = serde_json::from_str(&item.fields).unwrap_or_default();
        tasks.push(TaskView {
            workitem: item.id,
            attempt: item.attempt,
            process: item.instance_id,
            definition: row.definition_name,
            project,
            participant: item.participant.clone(),
            message: text(&params, "message").unwrap_or_default(),
            form: form_fields(&params),
            fields: serde_json::to_string_pretty(&fields).unwrap_or_default(),
            addressed_to: addressed_to(&params),
            created_at: item.created_at,
        });
    }
    Ok(tasks)
}

/// A person's answer to a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Done, with the form's values (by field name).
    Complete(Vec<(String, String)>),
    /// Refused, with why: the step fails with this reason (`on_error` applies).
    Reject(String),
}

/// Answers attempt `attempt` of task `workitem` as `user`, with its audit row. Returns the
/// process's id. A task the user may not answer is not found.
pub async fn answer(
    db: &DatabaseConnection,
    user: &CurrentUser,
    actor: &Actor,
    workitem: i64,
    attempt: i32,
    answer: Answer,
) -> Result<i64, AppError> {
    let txn = begin_write(db).await?;
    let item = Workitems::find_by_id(workitem)
        .one(&txn)
        .await
        .map_err(db_error)?
        .ok_or(AppError::NotFound)?;
    let human = participants::human(&txn).await?;
    let params: Value = serde_json::from_str(&item.params).unwrap_or_default();
    let groups = group_names(&txn, user).await?;
    let process = views::row(&txn, item.instance_id).await?;
    if !human.contains(&item.participant)
        || !may_answer(&txn, user, &groups, &process, &params).await?
    {
        return Err(AppError::NotFound);
    }
    let (outcome, action, summary) = match answer {
        Answer::Complete(values) => {
            let form: BTreeSet<String> = form_fields(&params).into_iter().collect();
            let mut fields = Fields::new();
            for (name, value) in values {
                if !form.contains(&name) {
                    return Err(AppError::invalid(&name, "this task has no such field"));
                }
                if value.chars().count() > MAX_ANSWER_CHARS {
                    return Err(AppError::invalid(
                        &name,
                        format!("at most {MAX_ANSWER_CHARS} characters"),
                    ));
                }
                fields.insert(name, Value::String(value));
            }
            fields.insert("decided_by".into(), json!(user.username));
            (
                Outcome::Done {
                    fields,
                    command: None,
                },
                "task.complete",
                format!("Completed task {workitem} of process {}", item.instance_id),
            )
        }
        Answer::Reject(comment) => {
            let comment = comment.trim().to_owned();
            if comment.chars().count() > MAX_ANSWER_CHARS {
                return Err(AppError::invalid(
                    "comment",
                    format!("at most {MAX_ANSWER_CHARS} characters"),
                ));
            }
            let message = if comment.is_empty() {
                format!("rejected by {}", user.username)
            } else {
                format!("rejected by {}: {comment}", user.username)
            };
            (
                Outcome::Error { message },
                "task.reject",
                format!("Rejected task {workitem} of process {}", item.instance_id),
            )
        }
    };
    let taken =
        super::instances::reply_in(&txn, workitem, attempt, None, outcome, &user.username).await?;
    let instance = taken.map_err(|refused| {
        AppError::conflict(
            "task",
            format!("This task was already answered or withdrawn ({refused})."),
        )
    })?;
    let event = Event::new(action, "process", Some(instance.to_string()), summary)
        .details(json!({ "workitem": workitem, "attempt": attempt }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(instance)
}
