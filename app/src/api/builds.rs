//! Builds: starting one, starting one again, listing a project's and reading one. Builds
//! are read with the project's `view` and started with `build`.

use crate::builds::{
    BuildFilter, BuildLogMatches, BuildLogTail, BuildStorage, BuildSummary, BuildTask, BuildView,
    BuildWorkflow,
};
use crate::error::AppError;
use crate::types::Page;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::ssr::access;

/// Starts a build of the project at `project` from its current configuration; returns the
/// build's number.
#[server(prefix = "/api", endpoint = "start_build")]
pub async fn start_build(project: String) -> Result<i32, AppError> {
    use crate::ssr::{builds, policy::Action, request::serve};
    use crate::types::Permission;
    serve(|ctx| async move {
        let (_, project) =
            access::project(&ctx, &project, Action::Project(Permission::Build)).await?;
        let engine = &ctx.state.engine;
        let row = builds::start(&ctx.state.db, &engine.cache, &ctx.actor(), &project, None).await?;
        engine.wake();
        ctx.state
            .live
            .publish(crate::live::Topic::Builds, Some(project.id));
        Ok(row.number)
    })
    .await
}

/// Starts build `number` of the project again, from the configuration and layer commits it
/// was built with; returns the new build's number.
#[server(prefix = "/api", endpoint = "rebuild")]
pub async fn rebuild(project: String, number: i32) -> Result<i32, AppError> {
    use crate::ssr::{builds, request::serve};
    use crate::types::Permission;
    serve(|ctx| async move {
        let (_, project, earlier) =
            access::build(&ctx, &project, number, Permission::Build).await?;
        let engine = &ctx.state.engine;
        let row = builds::start(
            &ctx.state.db,
            &engine.cache,
            &ctx.actor(),
            &project,
            Some(&earlier),
        )
        .await?;
        engine.wake();
        ctx.state
            .live
            .publish(crate::live::Topic::Builds, Some(project.id));
        Ok(row.number)
    })
    .await
}

/// One page of the project's builds, newest first.
#[server(prefix = "/api", endpoint = "list_builds")]
pub async fn list_builds(
    project: String,
    #[server(default)] page: u64,
    #[server(default)] show_hidden: bool,
) -> Result<Page<BuildSummary>, AppError> {
    use crate::ssr::{builds::views, policy::Action, request::serve};
    use crate::types::Permission;
    serve(|ctx| async move {
        let (_, project) =
            access::project(&ctx, &project, Action::Project(Permission::View)).await?;
        views::list_project(&ctx.state.db, &project, show_hidden, page).await
    })
    .await
}

/// One page of the builds of every project the user may view, newest first, narrowed by
/// `filter`.
#[server(prefix = "/api", endpoint = "list_all_builds")]
pub async fn list_all_builds(
    #[server(default)] filter: BuildFilter,
    #[server(default)] page: u64,
) -> Result<Page<BuildSummary>, AppError> {
    use crate::ssr::{builds::views, policy::Action, request::authorized};
    authorized(Action::UseKiln, |ctx, user| async move {
        views::list_all(&ctx.state.db, &user, &filter, page).await
    })
    .await
}

/// Build `number` of the project, as its page shows it.
#[server(prefix = "/api", endpoint = "read_build")]
pub async fn read_build(project: String, number: i32) -> Result<BuildView, AppError> {
    use crate::ssr::{builds::views, request::serve};
    use crate::types::Permission;
    serve(|ctx| async move {
        let (user, project, row) = access::build(&ctx, &project, number, Permission::View).await?;
        let rights = access::build_rights(&ctx, &user, &project).await?;
        views::view(&ctx.state.db, &project, &row, rights).await
    })
    .await
}

/// Build `number`'s tasks in the order they started (the first 20,000).
#[server(prefix = "/api", endpoint = "read_build_tasks")]
pub async fn read_build_tasks(project: String, number: i32) -> Result<Vec<BuildTask>, AppError> {
    use crate::ssr::{builds::views, request::serve};
    use crate::types::Permission;
    serve(|ctx| async move {
        let (_, _, row) = access::build(&ctx, &project, number, Permission::View).await?;
        views::tasks_where(&ctx.state.db, row.id, None).await
    })
    .await
}

/// The most bytes of a log's end the build page shows.
pub const LOG_TAIL_BYTES: u64 = 256 * 1024;

/// Build `number`'s log, its lines as styled runs of text: up to `count` lines from line
/// `first` (from 1), or with `first` 0 its end (the last 256 KiB).
#[server(prefix = "/api", endpoint = "read_build_log")]
pub async fn read_build_log(
    project: String,
    number: i32,
    #[server(default)] first: u64,
    #[server(default)] count: u64,
) -> Result<BuildLogTail, AppError> {
    use crate::ssr::builds::{log_reader, logs};
    use crate::ssr::request::serve;
    use crate::types::Permission;
    serve(|ctx| async move {
        let (_, project, row) = access::build(&ctx, &project, number, Permission::View).await?;
        let data_dir = &ctx.state.data_dir;
        let total_lines = u64::try_from(row.log_lines).unwrap_or(0);
        let read = if first == 0 {
            logs::tail(data_dir, project.id, row.number, LOG_TAIL_BYTES).await
        } else {
            let path = logs::path(data_dir, project.id, row.number);
            log_reader::lines(&path, first, count).await
        };
        let lines = read.map_err(|error| {
            tracing::error!(%error, build = row.id, "cannot read a build log");
            AppError::Internal
        })?;
        let first_line = if first == 0 {
            total_lines.saturating_sub(lines.len() as u64) + 1
        } else {
            first
        };
        Ok(BuildLogTail {
            first_line,
            lines: lines
                .iter()
                .map(|line| crate::builds::ansi::runs(line))
                .collect(),
            total_lines,
            total_bytes: u64::try_from(row.log_bytes).unwrap_or(0),
            archived: row.archived,
        })
    })
    .await
}

/// The lines of build `number`'s log after line `after` that contain `query`, ignoring
/// case.
#[server(prefix = "/api", endpoint = "search_build_log")]
pub async fn search_build_log(
    project: String,
    number: i32,
    query: String,
    #[server(default)] after: u64,
) -> Result<BuildLogMatches, AppError> {
    use crate::ssr::builds::{log_reader, logs};
    use crate::ssr::request::serve;
    use crate::types::Permission;
    serve(|ctx| async move {
        let query = query.trim();
        if query.is_empty() || query.chars().count() > log_reader::MAX_QUERY_CHARS {
            return Err(AppError::invalid(
                "query",
                format!(
                    "Search for 1 to {} characters.",
                    log_reader::MAX_QUERY_CHARS
                ),
            ));
        }
        let (_, project, row) = access::build(&ctx, &project, number, Permission::View).await?;
        let path = logs::path(&ctx.state.data_dir, project.id, row.number);
        let (found, more_after) =
            log_reader::search(&path, query, after)
                .await
                .map_err(|error| {
                    tracing::error!(%error, build = row.id, "cannot search a build log");
                    AppError::Internal
                })?;
        Ok(BuildLogMatches {
            matches: found
                .into_iter()
                .map(|(line, text)| (line, crate::builds::ansi::runs(&text)))
                .collect(),
            more_after,
        })
    })
    .await
}

/// Cancels build `number` (it needs `build`); the build is cancelled once its worker has
/// stopped.
#[server(prefix = "/api", endpoint = "cancel_build")]
pub async fn cancel_build(project: String, number: i32) -> Result<(), AppError> {
    use crate::ssr::{builds, request::serve};
    use crate::types::Permission;
    serve(|ctx| async move {
        let (_, project, row) = access::build(&ctx, &project, number, Permission::Build).await?;
        builds::cancel(&ctx.state.db, &ctx.actor(), &project, &row).await?;
        ctx.state.engine.wake();
        Ok(())
    })
    .await
}

/// Hides build `number` from lists, or shows it again (it needs `build`).
#[server(prefix = "/api", endpoint = "set_build_hidden")]
pub async fn set_build_hidden(
    project: String,
    number: i32,
    #[server(default)] hidden: bool,
) -> Result<(), AppError> {
    mark(project, number, crate::ssr::builds::Mark::Hidden, hidden).await
}

/// Pins build `number`, so retention keeps it whole, or unpins it (it needs `build`).
#[server(prefix = "/api", endpoint = "set_build_pinned")]
pub async fn set_build_pinned(
    project: String,
    number: i32,
    #[server(default)] pinned: bool,
) -> Result<(), AppError> {
    mark(project, number, crate::ssr::builds::Mark::Pinned, pinned).await
}

#[cfg(feature = "ssr")]
async fn mark(
    project: String,
    number: i32,
    mark: crate::ssr::builds::Mark,
    on: bool,
) -> Result<(), AppError> {
    use crate::ssr::{builds, request::serve};
    use crate::types::Permission;
    serve(|ctx| async move {
        let (_, project, row) = access::build(&ctx, &project, number, Permission::Build).await?;
        let id = row.id;
        builds::set_mark(&ctx.state.db, &ctx.actor(), &project, row, mark, on).await?;
        ctx.state
            .live
            .publish(crate::live::Topic::Builds, Some(project.id));
        ctx.state
            .live
            .publish(crate::live::Topic::Build(id), Some(project.id));
        Ok(())
    })
    .await
}

/// Archives build `number`: keeps its snapshot, summary, tasks, errors and failed tasks'
/// logs, and removes its log and other artifacts (the project's owner and administrators).
#[server(prefix = "/api", endpoint = "archive_build")]
pub async fn archive_build(project: String, number: i32) -> Result<(), AppError> {
    use crate::ssr::{builds, policy::Action, request::serve};
    serve(|ctx| async move {
        let (_, project) = access::project(&ctx, &project, Action::AdministerProject).await?;
        let row = builds::by_number(&ctx.state.db, &project, number).await?;
        let state = &ctx.state;
        builds::retention::archive(&state.db, &state.data_dir, &ctx.actor(), &row).await?;
        state
            .live
            .publish(crate::live::Topic::Builds, Some(project.id));
        state
            .live
            .publish(crate::live::Topic::Build(row.id), Some(project.id));
        Ok(())
    })
    .await
}

/// Which definition the project's builds run, and which it could.
#[server(prefix = "/api", endpoint = "read_build_workflow")]
pub async fn read_build_workflow(project: String) -> Result<BuildWorkflow, AppError> {
    use crate::ssr::processes::{Scope, definitions};
    use crate::ssr::{builds, policy::Action, request::serve};
    use crate::types::Permission;
    serve(|ctx| async move {
        let (user, project) =
            access::project(&ctx, &project, Action::Project(Permission::View)).await?;
        let db = &ctx.state.db;
        let mut choices: Vec<String> = definitions::list(db, Scope::Project(project.id))
            .await?
            .into_iter()
            .chain(definitions::list(db, Scope::Global).await?)
            .map(|d| d.name)
            .collect();
        choices.sort();
        choices.dedup();
        let facts = crate::ssr::projects::facts(db, &project, Some(user.id)).await?;
        let can_edit = crate::ssr::policy::can(
            Some(&user),
            crate::ssr::policy::Object::Project(facts),
            Action::Project(Permission::Configure),
        ) && project.archived_at.is_none();
        let can_set_directory = crate::ssr::policy::can(
            Some(&user),
            crate::ssr::policy::Object::Instance,
            Action::ConfigureInstance,
        ) && project.archived_at.is_none();
        Ok(BuildWorkflow {
            current: builds::workflow_of(&project).to_owned(),
            choices,
            can_edit,
            build_directory: project.build_directory.clone(),
            can_set_directory,
            line_prefix: project.line_prefix.clone(),
        })
    })
    .await
}

/// Chooses the definition the project's builds run (it needs `configure`); empty or
/// `standard-build` is the standard one.
#[server(prefix = "/api", endpoint = "set_build_workflow")]
pub async fn set_build_workflow(
    project: String,
    #[server(default)] definition: String,
) -> Result<(), AppError> {
    use crate::ssr::{builds, policy::Action, request::serve};
    use crate::types::Permission;
    serve(|ctx| async move {
        let (_, project) =
            access::project(&ctx, &project, Action::Project(Permission::Configure)).await?;
        project.refuse_if_archived("build_definition", "change how it builds")?;
        let name = match definition.trim() {
            "" | crate::builds::BUILD_DEFINITION => None,
            name => Some(name),
        };
        builds::set_workflow(&ctx.state.db, &ctx.actor(), &project, name).await
    })
    .await
}

/// Sets the directory the project's builds share on a worker, one build at a time
/// (administrators: it names a place on the workers' disks); empty gives each build a
/// directory of its own.
#[server(prefix = "/api", endpoint = "set_build_directory")]
pub async fn set_build_directory(
    project: String,
    #[server(default)] directory: String,
) -> Result<(), AppError> {
    use crate::ssr::{builds, policy::Action, request::serve};
    use crate::types::Permission;
    serve(|ctx| async move {
        let (_, project) =
            access::project(&ctx, &project, Action::Project(Permission::View)).await?;
        ctx.authorize(Action::ConfigureInstance).await?;
        project.refuse_if_archived("build_directory", "change how it builds")?;
        let directory = crate::builds::parse_build_directory(&directory)
            .map_err(|message| AppError::invalid("build_directory", message))?;
        builds::set_directory(&ctx.state.db, &ctx.actor(), &project, directory).await
    })
    .await
}

/// Sets the pattern taken off the start of each line of the project's build output before
/// it is read (it needs `configure`), such as [`crate::builds::KAS_LINE_PREFIX`]; empty reads
/// lines as they are. A pattern longer than [`crate::builds::MAX_LINE_PREFIX_BYTES`], or one
/// that is no regular expression, is refused.
#[server(prefix = "/api", endpoint = "set_build_line_prefix")]
pub async fn set_build_line_prefix(
    project: String,
    #[server(default)] prefix: String,
) -> Result<(), AppError> {
    use crate::builds::bitbake_output::LinePrefix;
    use crate::ssr::{builds, policy::Action, request::serve};
    use crate::types::Permission;
    serve(|ctx| async move {
        let (_, project) =
            access::project(&ctx, &project, Action::Project(Permission::Configure)).await?;
        project.refuse_if_archived("line_prefix", "change how it builds")?;
        LinePrefix::parse(&prefix).map_err(|message| AppError::invalid("line_prefix", message))?;
        let prefix = Some(prefix).filter(|p| !p.trim().is_empty());
        builds::set_line_prefix(&ctx.state.db, &ctx.actor(), &project, prefix).await
    })
    .await
}

/// What the project's builds keep on disk, and how long it keeps artifacts.
#[server(prefix = "/api", endpoint = "read_build_storage")]
pub async fn read_build_storage(project: String) -> Result<BuildStorage, AppError> {
    use crate::ssr::{builds::retention, policy::Action, request::serve};
    use crate::types::Permission;
    serve(|ctx| async move {
        let (user, project) =
            access::project(&ctx, &project, Action::Project(Permission::View)).await?;
        let rights = access::build_rights(&ctx, &user, &project).await?;
        retention::storage(&ctx.state.db, &project, rights.delete).await
    })
    .await
}

/// Sets how long the project keeps build artifacts (the project's owner and
/// administrators): the newest `keep_builds` builds, `keep_days` days, `keep_size` (such
/// as `20 GiB`); an empty field is no limit. Returns how many builds' artifacts expired.
#[server(prefix = "/api", endpoint = "set_build_retention")]
pub async fn set_build_retention(
    project: String,
    #[server(default)] keep_builds: String,
    #[server(default)] keep_days: String,
    #[server(default)] keep_size: String,
) -> Result<u64, AppError> {
    use crate::builds::{BuildRetention, parse_size};
    use crate::ssr::{builds::retention, policy::Action, request::serve};
    serve(|ctx| async move {
        let (_, project) = access::project(&ctx, &project, Action::AdministerProject).await?;
        let whole = |text: &str, field: &str| -> Result<Option<u32>, AppError> {
            match text.trim() {
                "" => Ok(None),
                text => text.parse().map(Some).map_err(|_| {
                    AppError::invalid(field, "A whole number, or empty for no limit.")
                }),
            }
        };
        let limits = BuildRetention {
            keep_builds: whole(&keep_builds, "keep_builds")?,
            keep_days: whole(&keep_days, "keep_days")?,
            keep_bytes: match keep_size.trim() {
                "" => None,
                text => Some(parse_size(text).ok_or_else(|| {
                    AppError::invalid(
                        "keep_size",
                        "A size such as 500 MiB or 20 GiB, or empty for no limit.",
                    )
                })?),
            },
        };
        let state = &ctx.state;
        let expired =
            retention::set_limits(&state.db, &state.data_dir, &ctx.actor(), &project, limits)
                .await?;
        if expired > 0 {
            state
                .live
                .publish(crate::live::Topic::Builds, Some(project.id));
        }
        Ok(expired)
    })
    .await
}

/// Deletes build `number` with everything stored for it (the project's owner and
/// administrators).
#[server(prefix = "/api", endpoint = "delete_build")]
pub async fn delete_build(project: String, number: i32) -> Result<(), AppError> {
    use crate::ssr::{builds, policy::Action, request::serve};
    serve(|ctx| async move {
        let (_, project) = access::project(&ctx, &project, Action::AdministerProject).await?;
        let row = builds::by_number(&ctx.state.db, &project, number).await?;
        let state = &ctx.state;
        builds::delete(&state.db, &state.data_dir, &ctx.actor(), &project, &row).await?;
        state.builds.forget(row.id);
        state
            .live
            .publish(crate::live::Topic::Builds, Some(project.id));
        Ok(())
    })
    .await
}
