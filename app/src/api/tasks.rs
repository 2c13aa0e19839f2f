//! The Inbox: the human tasks the logged-in user may answer, completed or rejected.

use std::collections::BTreeMap;

use crate::error::AppError;
use crate::types::TaskView;
use leptos::prelude::*;

#[server(prefix = "/api", endpoint = "list_tasks")]
pub async fn list_tasks() -> Result<Vec<TaskView>, AppError> {
    use crate::ssr::processes::tasks;
    use crate::ssr::{policy::Action, request::authorized};
    authorized(Action::UseKiln, |ctx, user| async move {
        tasks::inbox(&ctx.state.db, &user).await
    })
    .await
}

/// Answers attempt `attempt` of task `workitem` as the logged-in user; returns the
/// process's id.
#[cfg(feature = "ssr")]
async fn answer(
    workitem: i64,
    attempt: i32,
    answer: crate::ssr::processes::tasks::Answer,
) -> Result<i64, AppError> {
    use crate::ssr::processes::tasks;
    use crate::ssr::{policy::Action, request::authorized};
    authorized(Action::UseKiln, |ctx, user| async move {
        let id = tasks::answer(
            &ctx.state.db,
            &user,
            &ctx.actor(),
            workitem,
            attempt,
            answer,
        )
        .await?;
        ctx.state.engine.wake();
        Ok(id)
    })
    .await
}

/// Completes a task with the values of its form; returns the process's id.
#[server(prefix = "/api", endpoint = "complete_task")]
pub async fn complete_task(
    workitem: i64,
    attempt: i32,
    #[server(default)] values: BTreeMap<String, String>,
) -> Result<i64, AppError> {
    use crate::ssr::processes::tasks::Answer;
    answer(
        workitem,
        attempt,
        Answer::Complete(values.into_iter().collect()),
    )
    .await
}

/// Rejects a task: its step fails with the comment as the reason.
#[server(prefix = "/api", endpoint = "reject_task")]
pub async fn reject_task(
    workitem: i64,
    attempt: i32,
    #[server(default)] comment: String,
) -> Result<i64, AppError> {
    use crate::ssr::processes::tasks::Answer;
    answer(workitem, attempt, Answer::Reject(comment)).await
}
