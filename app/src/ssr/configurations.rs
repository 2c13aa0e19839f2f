//! Project configurations as revisions: every save stores the whole configuration with
//! who, when and what changed, and commits with its audit row; restoring is a new save.
//! Also the instance's infrastructure variables, the defaults every project builds with.

use super::audit::{self, Actor, Event};
use super::entities::configuration_revisions::{self, Column, Entity as Revisions};
use super::entities::projects::{Column as ProjectColumn, Entity as Projects};
use super::projects::Project;
use super::secrets::Keyring;
use super::{db_error, paginate, settings};
use crate::configuration::{
    Change, Configuration, ConfigurationView, RevisionSummary, Variable, VariableScope,
    bblayers_conf, effective_infrastructure, local_conf,
};
use crate::error::AppError;
use crate::ssr::begin_write;
use crate::types::{CurrentUser, Page};
use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder,
};
use serde_json::json;

type Revision = configuration_revisions::Model;

/// Revisions per page of a project's history.
pub const REVISIONS_PER_PAGE: u64 = 20;

pub(crate) const INFRASTRUCTURE_KEY: &str = "build.infrastructure_variables";

impl From<Revision> for RevisionSummary {
    fn from(row: Revision) -> Self {
        Self {
            number: u32::try_from(row.number).unwrap_or_default(),
            author: row.author,
            created_at: row.created_at,
            summary: row.summary,
        }
    }
}

fn document(row: &Revision) -> Result<Configuration, AppError> {
    serde_json::from_str(&row.document).map_err(|error| {
        tracing::error!(%error, revision = row.id, "unreadable configuration revision");
        AppError::Internal
    })
}

async fn latest_row(
    conn: &impl ConnectionTrait,
    project: &Project,
) -> Result<Option<Revision>, AppError> {
    Revisions::find()
        .filter(Column::ProjectId.eq(project.id))
        .order_by_desc(Column::Number)
        .one(conn)
        .await
        .map_err(db_error)
}

/// The project's configuration (its secrets sealed) and its revision number; empty before the
/// first save.
pub async fn current(
    conn: &impl ConnectionTrait,
    project: &Project,
) -> Result<(Configuration, Option<u32>), AppError> {
    match latest_row(conn, project).await? {
        Some(row) => Ok((
            document(&row)?,
            Some(u32::try_from(row.number).unwrap_or_default()),
        )),
        None => Ok((Configuration::default(), None)),
    }
}

async fn revision_row(
    conn: &impl ConnectionTrait,
    project: &Project,
    number: u32,
) -> Result<Revision, AppError> {
    Revisions::find()
        .filter(Column::ProjectId.eq(project.id))
        .filter(Column::Number.eq(i32::try_from(number).unwrap_or(i32::MAX)))
        .one(conn)
        .await
        .map_err(db_error)?
        .ok_or(AppError::NotFound)
}

/// The instance's infrastructure variables (their secrets sealed).
pub async fn infrastructure_defaults(
    conn: &impl ConnectionTrait,
) -> Result<Vec<Variable>, AppError> {
    match settings::get(conn, INFRASTRUCTURE_KEY).await? {
        Some(text) => serde_json::from_str(&text).map_err(|error| {
            tracing::error!(%error, "unreadable infrastructure variables");
            AppError::Internal
        }),
        None => Ok(Vec::new()),
    }
}

/// Applies `change` to the instance's infrastructure variables (administrators).
pub async fn change_infrastructure_defaults(
    db: &DatabaseConnection,
    keys: &Keyring,
    actor: &Actor,
    change: Change,
) -> Result<Vec<Variable>, AppError> {
    let txn = begin_write(db).await?;
    // The defaults are checked as the build variables of a configuration of their own.
    let holder = Configuration {
        variables: infrastructure_defaults(&txn).await?,
        ..Configuration::default()
    };
    let change = match change {
        Change::SetVariable { variable, .. } => Change::SetVariable {
            scope: VariableScope::Build,
            variable,
        },
        Change::RemoveVariable { name, .. } => Change::RemoveVariable {
            scope: VariableScope::Build,
            name,
        },
        _ => {
            return Err(AppError::invalid(
                "name",
                "Only variables can be changed here.",
            ));
        }
    };
    let (mut next, summary) = holder.apply(change)?;
    keys.seal_variables(&mut next.variables);
    let text = serde_json::to_string(&next.variables).map_err(|_| AppError::Internal)?;
    settings::put(&txn, actor, INFRASTRUCTURE_KEY, Some(text)).await?;
    let event = Event::new(
        "settings.infrastructure",
        "setting",
        Some(INFRASTRUCTURE_KEY.to_owned()),
        format!("Infrastructure variables: {summary}"),
    );
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(next.variables.iter().map(Variable::masked).collect())
}

/// `config` as `user` may see it, with the files it generates.
pub async fn view(
    conn: &impl ConnectionTrait,
    project: &Project,
    config: &Configuration,
    revision: Option<u32>,
    can_configure: bool,
    user: &CurrentUser,
) -> Result<ConfigurationView, AppError> {
    let masked = config.masked();
    let defaults: Vec<Variable> = infrastructure_defaults(conn)
        .await?
        .iter()
        .map(Variable::masked)
        .collect();
    let infrastructure = effective_infrastructure(&defaults, &masked.infrastructure);
    let heading = match revision {
        Some(number) => format!(
            "Generated by Kiln for project {}, configuration revision {number}",
            project.slug
        ),
        None => format!("Generated by Kiln for project {}", project.slug),
    };
    let latest = latest_row(conn, project)
        .await?
        .map(|row| u32::try_from(row.number).unwrap_or_default());
    Ok(ConfigurationView {
        revision,
        latest,
        local_conf: local_conf(&masked, &infrastructure, &heading),
        bblayers_conf: bblayers_conf(&masked, &heading),
        configuration: masked,
        infrastructure_defaults: defaults,
        can_configure: can_configure && project.archived_at.is_none(),
        can_override_infrastructure: user.is_admin && project.archived_at.is_none(),
        archived: project.archived_at.is_some(),
    })
}

/// One revision's configuration (its secrets sealed).
pub async fn revision(
    conn: &impl ConnectionTrait,
    project: &Project,
    number: u32,
) -> Result<Configuration, AppError> {
    document(&revision_row(conn, project, number).await?)
}

/// One page of the project's revisions, newest first.
pub async fn history(
    conn: &impl ConnectionTrait,
    project: &Project,
    page: u64,
) -> Result<Page<RevisionSummary>, AppError> {
    let select = Revisions::find()
        .filter(Column::ProjectId.eq(project.id))
        .order_by_desc(Column::Number);
    paginate(conn, select, page, REVISIONS_PER_PAGE).await
}

/// Stores `config` as the project's next revision, with its audit row, in `conn` (a
/// transaction). A configuration equal to the current one stores nothing.
pub async fn store(
    conn: &impl ConnectionTrait,
    keys: &Keyring,
    actor: &Actor,
    project: &Project,
    config: &Configuration,
    summary: &str,
) -> Result<Option<u32>, AppError> {
    let latest = latest_row(conn, project).await?;
    if let Some(row) = &latest
        && document(row)? == *config
    {
        return Ok(Some(u32::try_from(row.number).unwrap_or_default()));
    }
    let number = insert_revision(conn, keys, actor, project, config, summary).await?;
    let event = Event::new(
        "project.configure",
        "project",
        Some(project.id.to_string()),
        format!(
            "Configuration revision {number} of {}: {summary}",
            project.slug
        ),
    )
    .details(json!({ "revision": number, "summary": summary }));
    audit::record(conn, actor, event).await?;
    Ok(Some(number))
}

/// Stores `config` as the project's next revision without an audit row of its own: for
/// changes audited as a whole (a clone, an import). Secret values not sealed yet are
/// sealed with `keys`.
pub async fn insert_revision(
    conn: &impl ConnectionTrait,
    keys: &Keyring,
    actor: &Actor,
    project: &Project,
    config: &Configuration,
    summary: &str,
) -> Result<u32, AppError> {
    config.check()?;
    let latest = latest_row(conn, project).await?;
    let number = latest.map_or(1, |row| row.number + 1);
    let mut sealed = config.clone();
    keys.seal_variables(&mut sealed.variables);
    keys.seal_variables(&mut sealed.infrastructure);
    let text = serde_json::to_string(&sealed).map_err(|_| AppError::Internal)?;
    configuration_revisions::ActiveModel {
        project_id: Set(project.id),
        number: Set(number),
        author_id: Set(actor.id.map(|id| id.0)),
        author: Set(actor.name.chars().take(64).collect()),
        created_at: Set(Utc::now()),
        summary: Set(summary.chars().take(512).collect()),
        document: Set(text),
        ..Default::default()
    }
    .insert(conn)
    .await
    .map_err(db_error)?;
    Projects::update_many()
        .col_expr(ProjectColumn::UpdatedAt, Expr::value(Utc::now()))
        .filter(ProjectColumn::Id.eq(project.id))
        .exec(conn)
        .await
        .map_err(db_error)?;
    Ok(u32::try_from(number).unwrap_or_default())
}

/// Applies one change and saves the result as a new revision. Changes to infrastructure
/// variables need `may_override_infrastructure` (administrators), checked by the caller.
pub async fn change(
    db: &DatabaseConnection,
    keys: &Keyring,
    actor: &Actor,
    project: &Project,
    change: Change,
) -> Result<Option<u32>, AppError> {
    project.refuse_if_archived("project", "change its configuration")?;
    let txn = begin_write(db).await?;
    let (config, _) = current(&txn, project).await?;
    let (next, summary) = config.apply(change)?;
    let number = store(&txn, keys, actor, project, &next, &summary).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(number)
}

/// Makes revision `number` current again, as a new revision. Unless
/// `restore_infrastructure` (administrators), the current infrastructure overrides stay.
pub async fn restore(
    db: &DatabaseConnection,
    keys: &Keyring,
    actor: &Actor,
    project: &Project,
    number: u32,
    restore_infrastructure: bool,
) -> Result<Option<u32>, AppError> {
    project.refuse_if_archived("project", "change its configuration")?;
    let txn = begin_write(db).await?;
    let (current_config, _) = current(&txn, project).await?;
    let mut restored = revision(&txn, project, number).await?;
    if !restore_infrastructure {
        restored.infrastructure = current_config.infrastructure;
    }
    let summary = format!("Restored revision {number}");
    let stored = store(&txn, keys, actor, project, &restored, &summary).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(stored)
}
