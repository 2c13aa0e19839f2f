//! Workers, their tokens and the participant registry: everyone may look; administrators
//! create and revoke tokens, drain, resume and disconnect workers, and keep the registry.

// `save_participant` takes its form's fields one by one, as every server function here does.
#![allow(clippy::too_many_arguments)]

use crate::error::AppError;
use crate::types::{NewWorkerToken, ParticipantView, WorkerTokenView, WorkersOverview};
use leptos::prelude::*;

/// What a worker's state is judged by: silent this long (a lease), it is offline.
#[cfg(feature = "ssr")]
fn silence(ctx: &crate::ssr::request::RequestContext) -> chrono::Duration {
    chrono::Duration::from_std(ctx.state.workers.lease)
        .unwrap_or_else(|_| chrono::Duration::seconds(30))
}

#[server(prefix = "/api", endpoint = "list_workers")]
pub async fn list_workers() -> Result<WorkersOverview, AppError> {
    use crate::ssr::{policy, policy::Action, request::authorized, workers::registry};
    authorized(Action::ViewWorkers, |ctx, user| async move {
        let manage = policy::can(Some(&user), policy::Object::Instance, Action::ManageWorkers);
        let mut workers = registry::list(&ctx.state.db, chrono::Utc::now(), silence(&ctx)).await?;
        if !manage {
            for worker in &mut workers {
                worker.running.clear();
            }
        }
        Ok(WorkersOverview { workers, manage })
    })
    .await
}

#[server(prefix = "/api", endpoint = "list_participants")]
pub async fn list_participants() -> Result<Vec<ParticipantView>, AppError> {
    use crate::ssr::processes::participants;
    use crate::ssr::{policy::Action, request::authorized, workers::registry};
    use crate::types::WorkerState;
    authorized(Action::ViewWorkers, |ctx, _| async move {
        let workers = registry::list(&ctx.state.db, chrono::Utc::now(), silence(&ctx)).await?;
        let mut served = std::collections::BTreeMap::<String, Vec<String>>::new();
        for worker in workers
            .into_iter()
            .filter(|w| w.state == WorkerState::Online)
        {
            for participant in &worker.participants {
                served
                    .entry(participant.clone())
                    .or_default()
                    .push(worker.name.clone());
            }
        }
        participants::overview(&ctx.state.db, &served).await
    })
    .await
}

#[server(prefix = "/api", endpoint = "list_worker_tokens")]
pub async fn list_worker_tokens() -> Result<Vec<WorkerTokenView>, AppError> {
    use crate::ssr::{policy::Action, request::authorized, workers::tokens};
    authorized(Action::ManageWorkers, |ctx, _| async move {
        tokens::list(&ctx.state.db).await
    })
    .await
}

/// The items of a list typed in a form field, split at `separators`.
#[cfg(feature = "ssr")]
fn list(text: &str, separators: &[char]) -> Vec<String> {
    text.split(separators)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Registers a participant served by workers or by people, or changes one that is not built
/// into Kiln. `projects` lists the project slugs it is kept to (separated by commas or
/// spaces), empty for every project; `users` and `groups` (separated by commas) who may
/// launch processes that use it, both empty for everyone who may run them.
#[server(prefix = "/api", endpoint = "save_participant")]
pub async fn save_participant(
    name: String,
    kind: String,
    #[server(default)] description: String,
    #[server(default)] default_timeout: String,
    #[server(default)] worker_loss_retries: i32,
    #[server(default)] projects: String,
    #[server(default)] users: String,
    #[server(default)] groups: String,
) -> Result<(), AppError> {
    use crate::ssr::processes::participants::{self, ParticipantInput};
    use crate::ssr::{policy::Action, request::authorized};
    authorized(Action::ManageWorkers, |ctx, _| async move {
        let input = ParticipantInput {
            name,
            kind,
            description,
            default_timeout,
            worker_loss_retries,
            projects: list(&projects, &[',', ' ', '\n']),
            users: list(&users, &[',', ' ', '\n']),
            // Group names may hold spaces.
            groups: list(&groups, &[',', '\n']),
        };
        participants::save(&ctx.state.db, &ctx.actor(), input).await?;
        ctx.state.live.publish(crate::live::Topic::Workers, None);
        Ok(())
    })
    .await
}

/// Creates a token; its secret is in the answer and never shown again.
#[server(prefix = "/api", endpoint = "create_worker_token")]
pub async fn create_worker_token(name: String) -> Result<NewWorkerToken, AppError> {
    use crate::ssr::{policy::Action, request::authorized, workers::tokens};
    authorized(Action::ManageWorkers, |ctx, _| async move {
        tokens::create(&ctx.state.db, &ctx.actor(), &name).await
    })
    .await
}

/// Revokes a token and disconnects the workers using it.
#[server(prefix = "/api", endpoint = "revoke_worker_token")]
pub async fn revoke_worker_token(id: i64) -> Result<WorkerTokenView, AppError> {
    use crate::ssr::{policy::Action, request::authorized, workers::registry, workers::tokens};
    authorized(Action::ManageWorkers, |ctx, _| async move {
        let token = tokens::revoke(&ctx.state.db, &ctx.actor(), id).await?;
        for worker in registry::using_token(&ctx.state.db, id).await? {
            ctx.state
                .workers
                .disconnect(worker, "its token was revoked");
        }
        Ok(token)
    })
    .await
}

/// Drains a worker (it finishes what it runs and takes nothing new), or resumes it.
#[server(prefix = "/api", endpoint = "drain_worker")]
pub async fn drain_worker(id: i64, draining: bool) -> Result<(), AppError> {
    use crate::ssr::{policy::Action, request::authorized, workers::registry};
    authorized(Action::ManageWorkers, |ctx, _| async move {
        registry::set_draining(&ctx.state.db, &ctx.actor(), id, draining).await?;
        ctx.state.workers.set_draining(id, draining);
        Ok(())
    })
    .await
}

/// Closes a worker's connection; what it ran follows its participant's worker-loss policy
/// at once. The worker reconnects unless it is stopped.
#[server(prefix = "/api", endpoint = "disconnect_worker")]
pub async fn disconnect_worker(id: i64) -> Result<(), AppError> {
    use crate::ssr::{policy::Action, request::authorized, workers::leases, workers::registry};
    authorized(Action::ManageWorkers, |ctx, _| async move {
        registry::record_disconnect(&ctx.state.db, &ctx.actor(), id).await?;
        ctx.state
            .workers
            .disconnect(id, "disconnected by an administrator");
        leases::release(&ctx.state.db, id).await?;
        ctx.state.workers.wake();
        Ok(())
    })
    .await
}
