//! `kiln process`: launch, show and control workflow processes from the command line,
//! audited as "system". A running server picks the queued messages up within half a second.

use crate::config::{ProcessCommand, StoreArgs};
use crate::database;
use anyhow::{Context, anyhow, bail};
use app::ssr::audit::Actor;
use app::ssr::processes::{DefinitionCache, Scope, instances, projects_scope};
use app::workflow::definition::Fields;
use app::workflow::engine::{FlowId, FlowState, Message};
use serde_json::Value;

fn app_error(error: app::error::AppError) -> anyhow::Error {
    anyhow!("{}", error.message())
}

/// `KEY=VALUE` pairs as launch fields.
pub fn parse_fields(pairs: &[String]) -> anyhow::Result<Fields> {
    let mut fields = Fields::new();
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .with_context(|| format!("--field {pair}: write KEY=VALUE"))?;
        if key.is_empty() {
            bail!("--field {pair}: the key is empty");
        }
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
        fields.insert(key.to_owned(), value);
    }
    Ok(fields)
}

pub async fn run(command: ProcessCommand) -> anyhow::Result<()> {
    let store: &StoreArgs = match &command {
        ProcessCommand::Launch { store, .. }
        | ProcessCommand::Show { store, .. }
        | ProcessCommand::Cancel { store, .. }
        | ProcessCommand::Kill { store, .. }
        | ProcessCommand::Pause { store, .. }
        | ProcessCommand::Resume { store, .. }
        | ProcessCommand::Replay { store, .. }
        | ProcessCommand::Reapply { store, .. } => store,
    };
    let db = database::connect(&store.resolve()?).await?;
    database::migrate(&db).await?;
    let actor = Actor::system();
    let (id, message) = match command {
        ProcessCommand::Launch {
            name,
            project,
            fields,
            ..
        } => {
            let fields = parse_fields(&fields)?;
            let scope = match project {
                Some(slug) => projects_scope(&db, &slug)
                    .await
                    .map_err(|_| anyhow!("no project with the slug '{slug}'"))?,
                None => Scope::Global,
            };
            let id = instances::launch(
                &db,
                &DefinitionCache::default(),
                &actor,
                scope,
                &name,
                fields,
            )
            .await
            .map_err(|e| match e {
                app::error::AppError::NotFound => anyhow!("no definition named '{name}' there"),
                other => app_error(other),
            })?;
            println!("{id}");
            return Ok(());
        }
        ProcessCommand::Show { id, .. } => {
            let (row, instance) = instances::load(&db, id).await.map_err(app_error)?;
            println!("process {id}: {} ({})", row.definition_name, row.status);
            println!(
                "launched {} by {}",
                row.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                row.launched_by_name
            );
            if let Some(at) = row.finished_at {
                println!("finished {}", at.format("%Y-%m-%d %H:%M:%S UTC"));
            }
            for (flow, state) in &instance.flows {
                let what = match &state.state {
                    FlowState::Failed { message } => format!("failed: {message}"),
                    FlowState::Workitem {
                        workitem, attempt, ..
                    } => {
                        format!("waiting for workitem {workitem}, attempt {attempt}")
                    }
                    FlowState::Sleeping { until } => format!("waiting until {until}"),
                    _ => "running".to_owned(),
                };
                println!("flow {}: expression {} {what}", flow.0, state.node.node.0);
            }
            println!("fields: {}", serde_json::to_string(&instance.fields)?);
            return Ok(());
        }
        ProcessCommand::Cancel { id, .. } => (id, Message::Cancel),
        ProcessCommand::Kill { id, .. } => (id, Message::Kill),
        ProcessCommand::Pause { id, .. } => (id, Message::Pause),
        ProcessCommand::Resume { id, .. } => (id, Message::Resume),
        ProcessCommand::Replay { id, flow, .. } => (
            id,
            Message::Replay {
                flow: flow.map(FlowId),
            },
        ),
        ProcessCommand::Reapply { id, flow, .. } => (id, Message::Reapply { flow: FlowId(flow) }),
    };
    instances::control(&db, &actor, id, message)
        .await
        .map_err(|e| match e {
            app::error::AppError::NotFound => anyhow!("no process {id}"),
            other => app_error(other),
        })?;
    println!("queued for process {id}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_json_or_text() {
        let fields = parse_fields(&[
            "n=3".into(),
            "branch=main".into(),
            "list=[1,2]".into(),
            "empty=".into(),
        ])
        .unwrap();
        assert_eq!(fields["n"], 3);
        assert_eq!(fields["branch"], "main");
        assert_eq!(fields["list"], serde_json::json!([1, 2]));
        assert_eq!(fields["empty"], "");
        assert!(parse_fields(&["novalue".into()]).is_err());
        assert!(parse_fields(&["=x".into()]).is_err());
    }
}
