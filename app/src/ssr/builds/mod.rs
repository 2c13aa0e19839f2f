//! Builds: starting one from a project's configuration as an instance of its build workflow,
//! and the workflow Kiln ships for it.
//!
//! `artifacts` keeps the files builds produce; `jobs` holds what a worker is given to run
//! a build's steps; `logs` takes in what they print and `log_reader` reads it back by line;
//! `retention` frees their files; `views` reads builds back for the pages.

pub mod artifacts;
pub mod jobs;
pub mod log_reader;
pub mod logs;
pub mod retention;
pub mod views;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QuerySelect,
};
use serde_json::json;

use super::audit::{self, Actor, Event};
use super::entities::builds::{self, Column, Entity as Builds};
use super::entities::process_instances::Entity as Instances;
use super::processes::{DefinitionCache, Scope, definitions, instances};
use super::projects::Project;
use super::{begin_write, configurations, db_error};
use crate::builds::{BUILD_DEFINITION, Snapshot};
use crate::error::AppError;
use crate::workflow::definition::Fields;
use crate::workflow::engine::{Message, Status};

/// The build workflow Kiln ships: prepare the build directory on a worker, run the build
/// command there, upload what it made, then tell whoever asked for the build. Steps after
/// the first run on the worker that prepared the directory.
pub const STANDARD_DEFINITION: &str = r#"name: standard-build
fields:
  project: ""
  build_number: 0
  requested_by: ""
process:
  sequence:
    - participant: build
      params: { step: prepare }
    - participant: build
      params: { step: bitbake, command: [bitbake], on_worker: "${build_worker}" }
    - participant: build
      params: { step: collect, on_worker: "${build_worker}" }
    - participant: notify
      params:
        to: "${requested_by}"
        message: "Build ${build_number} of ${project} succeeded"
"#;

/// Stores the shipped build workflow as the global `standard-build`, unless it is there
/// already: a version an administrator saved is kept, one Kiln saved is brought up to date.
pub async fn ensure_standard_definition(db: &DatabaseConnection) -> Result<(), AppError> {
    if let Some(latest) = definitions::resolve(db, Scope::Global, BUILD_DEFINITION).await?
        && (latest.author != Actor::system().name || latest.source == STANDARD_DEFINITION)
    {
        return Ok(());
    }
    definitions::save(db, &Actor::system(), Scope::Global, STANDARD_DEFINITION)
        .await
        .map_err(|error| match error {
            definitions::SaveError::Other(error) => error,
            definitions::SaveError::Invalid(problems) => {
                tracing::error!(?problems, "the shipped build workflow does not parse");
                AppError::Internal
            }
        })?;
    Ok(())
}

/// The definition `project`'s builds run.
pub fn workflow_of(project: &Project) -> &str {
    project
        .build_definition
        .as_deref()
        .unwrap_or(BUILD_DEFINITION)
}

/// Chooses the definition `project`'s builds run (`None`: `standard-build`), which must
/// exist for the project. The caller has checked the `configure` permission.
pub async fn set_workflow(
    db: &DatabaseConnection,
    actor: &Actor,
    project: &Project,
    name: Option<&str>,
) -> Result<(), AppError> {
    use crate::ssr::entities::projects;
    let txn = begin_write(db).await?;
    if let Some(name) = name
        && definitions::resolve(&txn, Scope::Project(project.id), name)
            .await?
            .is_none()
    {
        return Err(AppError::invalid(
            "build_definition",
            format!(
                "There is no definition named `{name}` for this project; save it under Definitions first."
            ),
        ));
    }
    let before = workflow_of(project).to_owned();
    let mut active: projects::ActiveModel = project.clone().into();
    active.build_definition = Set(name.map(str::to_owned));
    active.updated_at = Set(Utc::now());
    active.update(&txn).await.map_err(db_error)?;
    let after = name.unwrap_or(BUILD_DEFINITION);
    let event = Event::new(
        "project.build_workflow",
        "project",
        Some(project.id.to_string()),
        format!("{} now builds with `{after}`", project.slug),
    )
    .details(json!({ "before": before, "after": after }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(())
}

/// The process statuses in which a build holds the build directory it shares: it may still
/// run a step there. A build stopped on an error lets it go, like one that ended.
pub const HOLDS_DIRECTORY: [Status; 3] = [Status::Running, Status::Paused, Status::Cancelling];

/// SQL for whether a `workitems` row is of a build that must wait for its shared build
/// directory: an earlier build using the same directory holds it. The oldest such build
/// therefore runs and the others follow in order; nothing is ever released, since a build
/// holds the directory only while its process is in one of [`HOLDS_DIRECTORY`].
pub fn waits_for_directory() -> String {
    let holding = HOLDS_DIRECTORY
        .map(|status| format!("'{}'", status.as_str()))
        .join(", ");
    format!(
        "EXISTS (SELECT 1 FROM builds b \
         JOIN builds o ON o.build_directory = b.build_directory AND o.id < b.id \
         JOIN process_instances i ON i.id = o.instance_id \
         WHERE b.instance_id = workitems.instance_id AND i.status IN ({holding}))"
    )
}

/// Sets the directory `project`'s builds share on a worker (`None`: each its own). The
/// caller has checked that the user may configure the instance (administrators): it names
/// a place on the workers' disks.
pub async fn set_directory(
    db: &DatabaseConnection,
    actor: &Actor,
    project: &Project,
    directory: Option<String>,
) -> Result<(), AppError> {
    use crate::ssr::entities::projects;
    let txn = begin_write(db).await?;
    let before = project.build_directory.clone();
    let mut active: projects::ActiveModel = project.clone().into();
    active.build_directory = Set(directory.clone());
    active.updated_at = Set(Utc::now());
    active.update(&txn).await.map_err(db_error)?;
    let summary = match &directory {
        Some(path) => format!("{} now builds in {path}, one build at a time", project.slug),
        None => format!(
            "{} now builds each build in a directory of its own",
            project.slug
        ),
    };
    let event = Event::new(
        "project.build_directory",
        "project",
        Some(project.id.to_string()),
        summary,
    )
    .details(json!({ "before": before, "after": directory }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(())
}

/// Sets the pattern taken off the start of each line of `project`'s build output before it
/// is read (`None`: lines are read as they are), checked by the caller. The caller has
/// checked the `configure` permission. Builds whose log has begun keep the prefix they
/// began with.
pub async fn set_line_prefix(
    db: &DatabaseConnection,
    actor: &Actor,
    project: &Project,
    prefix: Option<String>,
) -> Result<(), AppError> {
    use crate::ssr::entities::projects;
    let txn = begin_write(db).await?;
    let before = project.line_prefix.clone();
    let mut active: projects::ActiveModel = project.clone().into();
    active.line_prefix = Set(prefix.clone());
    active.updated_at = Set(Utc::now());
    active.update(&txn).await.map_err(db_error)?;
    let summary = match &prefix {
        Some(pattern) => format!(
            "{} now reads its build output without the line prefix `{pattern}`",
            project.slug
        ),
        None => format!(
            "{} now reads its build output lines as they are",
            project.slug
        ),
    };
    let event = Event::new(
        "project.build_line_prefix",
        "project",
        Some(project.id.to_string()),
        summary,
    )
    .details(json!({ "before": before, "after": prefix }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(())
}

/// Starts a build of `project` from its current configuration, or, for a rebuild, from
/// the configuration and layer commits `rebuild_of` was built with. The caller has checked
/// the `build` permission.
pub async fn start(
    db: &DatabaseConnection,
    cache: &DefinitionCache,
    actor: &Actor,
    project: &Project,
    rebuild_of: Option<&builds::Model>,
) -> Result<builds::Model, AppError> {
    project.refuse_if_archived("project", "build")?;
    let txn = begin_write(db).await?;
    let snapshot = match rebuild_of {
        Some(earlier) => {
            let earlier_snapshot = snapshot_of(earlier)?;
            let revision = u32::try_from(earlier.configuration_revision).unwrap_or_default();
            Snapshot {
                revision,
                configuration: configurations::revision(&txn, project, revision)
                    .await?
                    .masked(),
                layer_commits: earlier_snapshot.layer_commits,
            }
        }
        None => {
            let (configuration, revision) = configurations::current(&txn, project).await?;
            let Some(revision) = revision else {
                return Err(AppError::invalid(
                    "configuration",
                    "Save the project's configuration before building.",
                ));
            };
            Snapshot {
                revision,
                configuration: configuration.masked(),
                layer_commits: Default::default(),
            }
        }
    };
    if snapshot.configuration.image_targets.is_empty() {
        return Err(AppError::invalid(
            "image_targets",
            "Name at least one image target on the configuration page before building.",
        ));
    }
    let number = next_number(&txn, project).await?;
    let now = Utc::now();
    let row = builds::ActiveModel {
        project_id: Set(project.id),
        number: Set(number),
        instance_id: Set(None),
        configuration_revision: Set(i32::try_from(snapshot.revision).unwrap_or(i32::MAX)),
        snapshot: Set(serde_json::to_string(&snapshot).map_err(|_| AppError::Internal)?),
        targets: Set(snapshot
            .configuration
            .image_targets
            .join(" ")
            .chars()
            .take(1024)
            .collect()),
        requested_by: Set(actor.id.map(|id| id.0)),
        requested_by_name: Set(actor.name.chars().take(64).collect()),
        rebuild_of: Set(rebuild_of.map(|b| b.id)),
        host: Set(None),
        directory: Set(None),
        build_directory: Set(project.build_directory.clone()),
        parse_percent: Set(0),
        setscene_done: Set(0),
        setscene_total: Set(0),
        tasks_done: Set(0),
        tasks_total: Set(0),
        progress: Set(0),
        errors: Set(0),
        warnings: Set(0),
        log_bytes: Set(0),
        log_lines: Set(0),
        hidden: Set(false),
        pinned: Set(false),
        archived: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(db_error)?;
    let mut fields = Fields::new();
    fields.insert("project".into(), json!(project.slug));
    fields.insert("build_number".into(), json!(number));
    fields.insert("requested_by".into(), json!(actor.name));
    let definition = workflow_of(project);
    let instance = instances::launch_in(
        &txn,
        cache,
        actor,
        Scope::Project(project.id),
        definition,
        fields,
    )
    .await
    .map_err(|error| match error {
        AppError::NotFound => AppError::invalid(
            "definition",
            format!("There is no `{definition}` definition to build with; choose the build workflow on the configuration page."),
        ),
        other => other,
    })?;
    let mut active: builds::ActiveModel = row.into();
    active.instance_id = Set(Some(instance));
    let row = active.update(&txn).await.map_err(db_error)?;
    let summary = match rebuild_of {
        Some(earlier) => format!(
            "Started build {number} of {} again from build {}",
            project.slug, earlier.number
        ),
        None => format!("Started build {number} of {}", project.slug),
    };
    let event = Event::new("build.start", "build", Some(row.id.to_string()), summary).details(
        json!({ "project_id": project.id, "number": number, "process": instance, "revision": snapshot.revision }),
    );
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(row)
}

/// Takes the next number of `project`'s builds from its counter, which only grows. The
/// update locks the project's row until the transaction ends, so two builds started at
/// once get two numbers.
async fn next_number(conn: &impl ConnectionTrait, project: &Project) -> Result<i32, AppError> {
    use super::entities::projects::{Column as ProjectColumn, Entity as Projects};
    use sea_orm::sea_query::{Expr, ExprTrait};
    Projects::update_many()
        .col_expr(
            ProjectColumn::LastBuildNumber,
            Expr::col(ProjectColumn::LastBuildNumber).add(1),
        )
        .filter(ProjectColumn::Id.eq(project.id))
        .exec(conn)
        .await
        .map_err(db_error)?;
    let number: Option<i32> = Projects::find_by_id(project.id)
        .select_only()
        .column(ProjectColumn::LastBuildNumber)
        .into_tuple()
        .one(conn)
        .await
        .map_err(db_error)?;
    number.ok_or(AppError::NotFound)
}

/// The build of `project` numbered `number`.
pub async fn by_number(
    conn: &impl ConnectionTrait,
    project: &Project,
    number: i32,
) -> Result<builds::Model, AppError> {
    Builds::find()
        .filter(Column::ProjectId.eq(project.id))
        .filter(Column::Number.eq(number))
        .one(conn)
        .await
        .map_err(db_error)?
        .ok_or(AppError::NotFound)
}

/// The build with id `id`.
pub async fn by_id(conn: &impl ConnectionTrait, id: i64) -> Result<builds::Model, AppError> {
    Builds::find_by_id(id)
        .one(conn)
        .await
        .map_err(db_error)?
        .ok_or(AppError::NotFound)
}

/// A build's snapshot as stored.
pub fn snapshot_of(row: &builds::Model) -> Result<Snapshot, AppError> {
    serde_json::from_str(&row.snapshot).map_err(|error| {
        tracing::error!(%error, build = row.id, "unreadable build snapshot");
        AppError::Internal
    })
}

/// Keeps on build `build` what a step's reply says about where it ran: `build_host`,
/// `build_dir`, and `layer_commits` (layer name to commit), each when given.
pub async fn record_step(
    db: &DatabaseConnection,
    build: i64,
    fields: &Fields,
) -> Result<(), AppError> {
    let host = fields.get("build_host").and_then(|v| v.as_str());
    let dir = fields.get("build_dir").and_then(|v| v.as_str());
    let commits = fields.get("layer_commits").and_then(|v| v.as_object());
    if host.is_none() && dir.is_none() && commits.is_none() {
        return Ok(());
    }
    let txn = begin_write(db).await?;
    let Some(row) = Builds::find_by_id(build)
        .one(&txn)
        .await
        .map_err(db_error)?
    else {
        return Ok(());
    };
    let mut snapshot = snapshot_of(&row)?;
    let mut active: builds::ActiveModel = row.into();
    if let Some(host) = host {
        active.host = Set(Some(host.chars().take(255).collect()));
    }
    if let Some(dir) = dir {
        active.directory = Set(Some(dir.chars().take(1024).collect()));
    }
    if let Some(commits) = commits {
        for (layer, commit) in commits {
            let known = snapshot
                .configuration
                .layers
                .iter()
                .any(|l| &l.name == layer);
            if let (true, Some(commit)) = (known, commit.as_str()) {
                snapshot
                    .layer_commits
                    .insert(layer.clone(), commit.chars().take(64).collect());
            }
        }
        active.snapshot = Set(serde_json::to_string(&snapshot).map_err(|_| AppError::Internal)?);
    }
    active.updated_at = Set(Utc::now());
    active.update(&txn).await.map_err(db_error)?;
    txn.commit().await.map_err(db_error)?;
    Ok(())
}

/// Whether build `row` is over, as its process says.
pub(super) async fn is_over(
    conn: &impl ConnectionTrait,
    row: &builds::Model,
) -> Result<bool, AppError> {
    let Some(instance) = row.instance_id else {
        return Ok(true);
    };
    let status = Instances::find_by_id(instance)
        .one(conn)
        .await
        .map_err(db_error)?
        .map(|i| i.status);
    Ok(status.is_none_or(|s| matches!(s.as_str(), "finished" | "error" | "cancelled" | "killed")))
}

/// Asks the process of build `row` to cancel: the worker stops the step it runs, and the
/// build is cancelled once it has. The caller has checked the `build` permission.
pub async fn cancel(
    db: &DatabaseConnection,
    actor: &Actor,
    project: &Project,
    row: &builds::Model,
) -> Result<(), AppError> {
    let txn = begin_write(db).await?;
    if is_over(&txn, row).await? {
        return Err(AppError::invalid(
            "build",
            format!("Build {} has already ended.", row.number),
        ));
    }
    let instance = row.instance_id.ok_or(AppError::Internal)?;
    instances::enqueue(&txn, instance, &Message::Cancel, Utc::now()).await?;
    let event = Event::new(
        "build.cancel",
        "build",
        Some(row.id.to_string()),
        format!("Cancelled build {} of {}", row.number, project.slug),
    )
    .details(json!({ "project_id": project.id, "number": row.number, "process": instance }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(())
}

/// A yes-or-no mark users with `build` put on a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Left out of lists unless they show hidden builds.
    Hidden,
    /// Kept whole whatever the project's retention says.
    Pinned,
}

impl Mark {
    /// The audit action and the verb of its summary, for setting it `on` or off.
    fn words(self, on: bool) -> (&'static str, &'static str) {
        match (self, on) {
            (Self::Hidden, true) => ("build.hide", "Hid"),
            (Self::Hidden, false) => ("build.unhide", "Showed again"),
            (Self::Pinned, true) => ("build.pin", "Pinned"),
            (Self::Pinned, false) => ("build.unpin", "Unpinned"),
        }
    }
}

/// Puts `mark` on build `row`, or takes it off. The caller has checked the `build`
/// permission.
pub async fn set_mark(
    db: &DatabaseConnection,
    actor: &Actor,
    project: &Project,
    row: builds::Model,
    mark: Mark,
    on: bool,
) -> Result<(), AppError> {
    let txn = begin_write(db).await?;
    let (id, number) = (row.id, row.number);
    let mut active: builds::ActiveModel = row.into();
    match mark {
        Mark::Hidden => active.hidden = Set(on),
        Mark::Pinned => active.pinned = Set(on),
    }
    active.updated_at = Set(Utc::now());
    active.update(&txn).await.map_err(db_error)?;
    let (action, verb) = mark.words(on);
    let event = Event::new(
        action,
        "build",
        Some(id.to_string()),
        format!("{verb} build {number} of {}", project.slug),
    )
    .details(json!({ "project_id": project.id, "number": number }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(())
}

/// Deletes build `row`: its record, tasks, messages, process and stored files. A build that
/// has not ended must be cancelled first. The caller has checked that the user administers
/// the project.
pub async fn delete(
    db: &DatabaseConnection,
    data_dir: &std::path::Path,
    actor: &Actor,
    project: &Project,
    row: &builds::Model,
) -> Result<(), AppError> {
    let txn = begin_write(db).await?;
    if !is_over(&txn, row).await? {
        return Err(AppError::invalid(
            "build",
            format!(
                "Build {} is still running; cancel it before deleting it.",
                row.number
            ),
        ));
    }
    Builds::delete_by_id(row.id)
        .exec(&txn)
        .await
        .map_err(db_error)?;
    if let Some(instance) = row.instance_id {
        Instances::delete_by_id(instance)
            .exec(&txn)
            .await
            .map_err(db_error)?;
    }
    let event = Event::new(
        "build.delete",
        "build",
        Some(row.id.to_string()),
        format!("Deleted build {} of {}", row.number, project.slug),
    )
    .details(json!({ "project_id": project.id, "number": row.number, "process": row.instance_id }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    let dir = logs::build_dir(data_dir, project.id, row.number);
    match tokio::fs::remove_dir_all(&dir).await {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        // The records are gone; an operator can remove the files by hand.
        Err(error) => {
            tracing::error!(%error, dir = %dir.display(), "cannot remove a build's files")
        }
    }
    Ok(())
}
