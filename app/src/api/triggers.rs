//! Triggers: listing them per scope and across every scope the reader may see, creating
//! them, turning them on and off, and deleting them.
//!
//! A trigger lives in a project (`project` is its slug) or is global (`project` empty), like
//! the definitions it launches: project triggers are read with `view` and changed with
//! `configure`; global ones are read by everyone and changed by administrators.

// `create_trigger` takes its form's fields one by one, as every server function here does.
#![allow(clippy::too_many_arguments)]

use crate::error::AppError;
use crate::types::{NewTrigger, Page, TriggerList, TriggerView};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::ssr::access;

/// The triggers of one scope.
#[server(prefix = "/api", endpoint = "list_triggers")]
pub async fn list_triggers(#[server(default)] project: String) -> Result<TriggerList, AppError> {
    use crate::ssr::access::scope;
    use crate::ssr::{request::serve, triggers};
    use crate::types::Permission;
    serve(|ctx| async move {
        let rights = scope(&ctx, &project, Permission::View).await?;
        Ok(TriggerList {
            triggers: triggers::list(&ctx.state.db, rights.scope, rights.edit).await?,
            project,
            can_create: rights.edit,
        })
    })
    .await
}

/// One page of every trigger the reader may see.
#[server(prefix = "/api", endpoint = "list_all_triggers")]
pub async fn list_all_triggers(
    #[server(default)] page: u64,
) -> Result<Page<TriggerView>, AppError> {
    use crate::ssr::{policy::Action, request::authorized, triggers};
    authorized(Action::UseKiln, |ctx, user| async move {
        triggers::list_all(&ctx.state.db, &user, page).await
    })
    .await
}

/// Creates a trigger. `kind` is `cron` (with `schedule` and `time_zone`) or `webhook`
/// (with `mapping`, one `field = /json/pointer` per line); `fields` is empty or a JSON
/// object. A webhook's secret is in the answer and never shown again.
#[server(prefix = "/api", endpoint = "create_trigger")]
pub async fn create_trigger(
    #[server(default)] project: String,
    name: String,
    definition: String,
    kind: String,
    #[server(default)] fields: String,
    #[server(default)] schedule: String,
    #[server(default)] time_zone: String,
    #[server(default)] mapping: String,
) -> Result<NewTrigger, AppError> {
    use crate::api::processes::parse_fields;
    use crate::ssr::access::scope;
    use crate::ssr::{request::serve, triggers};
    use crate::types::{Permission, TriggerKind};
    serve(|ctx| async move {
        let rights = scope(&ctx, &project, Permission::Configure).await?;
        if !rights.edit {
            return Err(AppError::Forbidden);
        }
        let kind = match kind.as_str() {
            "cron" => TriggerKind::Cron {
                schedule,
                time_zone,
            },
            "webhook" => TriggerKind::Webhook {
                mapping: triggers::webhook::parse_mapping(&mapping)
                    .map_err(|message| AppError::invalid("mapping", message))?,
            },
            _ => return Err(AppError::invalid("kind", "choose cron or webhook")),
        };
        let input = triggers::TriggerInput {
            name,
            definition,
            fields: parse_fields(&fields)?,
            kind,
        };
        let (row, secret) = triggers::create(
            &ctx.state.db,
            &ctx.state.secrets,
            &ctx.state.engine.cache,
            &ctx.actor(),
            rights.scope,
            input,
        )
        .await?;
        ctx.state.engine.schedule_changed();
        let id = row.id;
        let trigger = triggers::list(&ctx.state.db, rights.scope, true)
            .await?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or(AppError::Internal)?;
        Ok(NewTrigger { trigger, secret })
    })
    .await
}

/// Turns a trigger on or off.
#[server(prefix = "/api", endpoint = "set_trigger_enabled")]
pub async fn set_trigger_enabled(id: i64, enabled: bool) -> Result<(), AppError> {
    use crate::ssr::{request::serve, triggers};
    serve(|ctx| async move {
        let (row, _) = access::editable_trigger(&ctx, id).await?;
        triggers::set_enabled(&ctx.state.db, &ctx.actor(), row, enabled).await?;
        ctx.state.engine.schedule_changed();
        Ok(())
    })
    .await
}

/// Deletes a trigger and its runs.
#[server(prefix = "/api", endpoint = "delete_trigger")]
pub async fn delete_trigger(id: i64) -> Result<(), AppError> {
    use crate::ssr::{request::serve, triggers};
    serve(|ctx| async move {
        let (row, _) = access::editable_trigger(&ctx, id).await?;
        triggers::delete(&ctx.state.db, &ctx.actor(), row).await?;
        ctx.state.engine.schedule_changed();
        Ok(())
    })
    .await
}
