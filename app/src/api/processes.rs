//! Process definitions and instances: listing, checking as you type, saving, launching,
//! reading an instance and controlling it.
//!
//! A definition lives in a project (`project` is its slug) or is global (`project` empty).
//! Project definitions are read with `view`, saved with `configure` and launched with
//! `build`, and a project's processes are controlled with `build`; global definitions are
//! read by everyone and saved, launched and controlled by administrators.

use crate::error::AppError;
use crate::types::{
    DefinitionCheck, DefinitionDetail, DefinitionList, DefinitionSummary, Page, ProcessSummary,
    ProcessView,
};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::ssr::access;

/// The definitions stored in a scope.
#[server(prefix = "/api", endpoint = "list_definitions")]
pub async fn list_definitions(
    #[server(default)] project: String,
) -> Result<DefinitionList, AppError> {
    use crate::ssr::{processes::definitions, request::serve};
    use crate::types::Permission;
    serve(|ctx| async move {
        let rights = access::scope(&ctx, &project, Permission::View).await?;
        Ok(DefinitionList {
            definitions: definitions::list(&ctx.state.db, rights.scope).await?,
            project,
            can_edit: rights.edit,
            can_launch: rights.launch,
        })
    })
    .await
}

/// A definition's latest version, its tree and its versions.
#[server(prefix = "/api", endpoint = "read_definition")]
pub async fn read_definition(
    #[server(default)] project: String,
    name: String,
) -> Result<DefinitionDetail, AppError> {
    use crate::ssr::{processes::definitions, request::serve};
    use crate::types::Permission;
    serve(|ctx| async move {
        let rights = access::scope(&ctx, &project, Permission::View).await?;
        let (latest, tree, versions) =
            definitions::detail(&ctx.state.db, &ctx.state.engine.cache, rights.scope, &name)
                .await?;
        Ok(DefinitionDetail {
            summary: versions.first().cloned().ok_or(AppError::NotFound)?,
            source: latest.source,
            fields: serde_json::to_string_pretty(&tree.fields).unwrap_or_default(),
            outline: crate::workflow::outline::outline(&tree),
            versions,
            can_edit: rights.edit,
            can_launch: rights.launch,
        })
    })
    .await
}

/// Checks a definition's text without saving it: its problems with line and column, or
/// its tree.
#[server(prefix = "/api", endpoint = "check_definition")]
pub async fn check_definition(
    #[server(default)] project: String,
    source: String,
) -> Result<DefinitionCheck, AppError> {
    use crate::ssr::{processes::definitions, request::serve};
    use crate::types::Permission;
    serve(|ctx| async move {
        let rights = access::scope(&ctx, &project, Permission::View).await?;
        definitions::check(&ctx.state.db, rights.scope, &source).await
    })
    .await
}

/// Saves a definition's text as its next version (nothing when it is unchanged).
#[server(prefix = "/api", endpoint = "save_definition")]
pub async fn save_definition(
    #[server(default)] project: String,
    source: String,
) -> Result<DefinitionSummary, AppError> {
    use crate::ssr::{processes::definitions, request::serve};
    use crate::types::Permission;
    serve(|ctx| async move {
        let rights = access::scope(&ctx, &project, Permission::Configure).await?;
        let saved = definitions::save(&ctx.state.db, &ctx.actor(), rights.scope, &source).await?;
        let list = definitions::list(&ctx.state.db, rights.scope).await?;
        list.into_iter()
            .find(|d| d.name == saved.name)
            .ok_or(AppError::Internal)
    })
    .await
}

/// Launches the definition `name` with `fields`, a JSON object over its default fields.
/// Returns the new process's id.
#[server(prefix = "/api", endpoint = "launch_process")]
pub async fn launch_process(
    #[server(default)] project: String,
    name: String,
    #[server(default)] fields: String,
) -> Result<i64, AppError> {
    use crate::ssr::{processes::instances, request::serve};
    use crate::types::Permission;
    serve(|ctx| async move {
        let rights = access::scope(&ctx, &project, Permission::Build).await?;
        let fields = parse_fields(&fields)?;
        let engine = &ctx.state.engine;
        let id = instances::launch(
            &ctx.state.db,
            &engine.cache,
            &ctx.actor(),
            rights.scope,
            &name,
            fields,
        )
        .await?;
        engine.wake();
        Ok(id)
    })
    .await
}

/// Launch fields as typed in a form: empty, or a JSON object.
pub fn parse_fields(text: &str) -> Result<crate::workflow::definition::Fields, AppError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Default::default());
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(AppError::invalid(
            "fields",
            "fields must be a JSON object, like {\"branch\": \"main\"}",
        )),
        Err(error) => Err(AppError::invalid(
            "fields",
            format!("not valid JSON: {error}"),
        )),
    }
}

/// One page of the processes the reader may see (of one project when `project` is given).
#[server(prefix = "/api", endpoint = "list_processes")]
pub async fn list_processes(
    #[server(default)] project: String,
    #[server(default)] page: u64,
) -> Result<Page<ProcessSummary>, AppError> {
    use crate::ssr::processes::{Scope, views};
    use crate::ssr::{policy::Action, request::serve};
    use crate::types::Permission;
    serve(|ctx| async move {
        let (user, project) = if project.is_empty() {
            (ctx.authorize(Action::UseKiln).await?.clone(), None)
        } else {
            let rights = access::scope(&ctx, &project, Permission::View).await?;
            let Scope::Project(id) = rights.scope else {
                return Err(AppError::NotFound);
            };
            (rights.user, Some(id))
        };
        views::list(&ctx.state.db, &user, project, page).await
    })
    .await
}

/// A process with its tree, fields, history and errors.
#[server(prefix = "/api", endpoint = "process_detail")]
pub async fn process_detail(id: i64) -> Result<ProcessView, AppError> {
    use crate::ssr::{processes::views, request::serve};
    serve(|ctx| async move {
        let (_, can_control) = access::process(&ctx, id, false).await?;
        let state = &ctx.state;
        views::view(
            &state.db,
            &state.engine.cache,
            &state.data_dir,
            id,
            can_control,
        )
        .await
    })
    .await
}

/// A control command: `cancel`, `kill`, `pause`, `resume`, `replay` (`flow` 0 for every
/// failed expression) or `reapply` (of running expression `flow`).
#[server(prefix = "/api", endpoint = "control_process")]
pub async fn control_process(
    id: i64,
    command: String,
    #[server(default)] flow: u64,
) -> Result<(), AppError> {
    use crate::ssr::{processes::instances, request::serve};
    use crate::workflow::engine::{FlowId, Message};
    serve(|ctx| async move {
        access::process(&ctx, id, true).await?;
        let message = match command.as_str() {
            "cancel" => Message::Cancel,
            "kill" => Message::Kill,
            "pause" => Message::Pause,
            "resume" => Message::Resume,
            "replay" => Message::Replay {
                flow: (flow != 0).then_some(FlowId(flow)),
            },
            "reapply" if flow != 0 => Message::Reapply { flow: FlowId(flow) },
            "reapply" => return Err(AppError::invalid("flow", "choose the expression to re-apply")),
            other => {
                return Err(AppError::invalid(
                    "command",
                    format!("`{other}` is not a command: use cancel, kill, pause, resume, replay or reapply"),
                ));
            }
        };
        instances::control(&ctx.state.db, &ctx.actor(), id, message).await?;
        ctx.state.engine.wake();
        Ok(())
    })
    .await
}
