//! A project's configuration: reading it (secrets masked) with its generated files and
//! history, changing it one edit at a time, restoring revisions; and the instance's
//! infrastructure variables.

use crate::configuration::{ConfigurationView, RevisionSummary, Variable, VariableScope};
use crate::error::AppError;
use crate::types::Page;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::ssr::access;

#[cfg(feature = "ssr")]
mod edit {
    use crate::configuration::{Change, VariableScope};
    use crate::error::AppError;
    use crate::ssr::configurations;
    use crate::ssr::policy::Action;
    use crate::ssr::request::RequestContext;
    use crate::types::Permission;

    /// Checks that the user may make `change` to the project at `slug`, then makes it.
    /// Infrastructure variables are for administrators only.
    pub async fn apply(
        ctx: &RequestContext,
        slug: &str,
        change: Change,
    ) -> Result<Option<u32>, AppError> {
        let action = Action::Project(Permission::Configure);
        let (_, project) = crate::ssr::access::project(ctx, slug, action).await?;
        if change.scope() == VariableScope::Infrastructure {
            ctx.authorize(Action::ConfigureInstance).await?;
        }
        configurations::change(
            &ctx.state.db,
            &ctx.state.secrets,
            &ctx.actor(),
            &project,
            change,
        )
        .await
    }
}

/// The configuration, current (`revision` 0) or of an earlier revision, as the viewer may
/// see it, with the `local.conf` and `bblayers.conf` it generates.
#[server(prefix = "/api", endpoint = "project_configuration")]
pub async fn project_configuration(
    slug: String,
    #[server(default)] revision: u32,
) -> Result<ConfigurationView, AppError> {
    use crate::ssr::{configurations, policy, request::serve};
    use crate::types::Permission;
    serve(|ctx| async move {
        let view = policy::Action::Project(Permission::View);
        let (user, project) = access::project(&ctx, &slug, view).await?;
        let db = &ctx.state.db;
        let (config, number) = match revision {
            0 => configurations::current(db, &project).await?,
            number => (
                configurations::revision(db, &project, number).await?,
                Some(number),
            ),
        };
        let facts = crate::ssr::projects::facts(db, &project, Some(user.id)).await?;
        let can_configure = policy::project_access(Some(&user), facts)
            .permissions
            .configure;
        configurations::view(db, &project, &config, number, can_configure, &user).await
    })
    .await
}

/// One page of the configuration's revisions, newest first.
#[server(prefix = "/api", endpoint = "configuration_history")]
pub async fn configuration_history(
    slug: String,
    page: u64,
) -> Result<Page<RevisionSummary>, AppError> {
    use crate::ssr::{configurations, policy::Action, request::serve};
    use crate::types::Permission;
    serve(|ctx| async move {
        let (_, project) = access::project(&ctx, &slug, Action::Project(Permission::View)).await?;
        configurations::history(&ctx.state.db, &project, page).await
    })
    .await
}

/// Sets release, machine, distro, image targets and packages (lists separated by spaces,
/// commas or line breaks). Answers the new revision number.
#[server(prefix = "/api", endpoint = "save_basics")]
pub async fn save_basics(
    slug: String,
    #[server(default)] release: String,
    #[server(default)] machine: String,
    #[server(default)] distro: String,
    #[server(default)] image_targets: String,
    #[server(default)] packages: String,
) -> Result<Option<u32>, AppError> {
    use crate::configuration::Change;
    crate::ssr::request::serve(|ctx| async move {
        let change = Change::Basics {
            release,
            machine,
            distro,
            image_targets,
            packages,
        };
        edit::apply(&ctx, &slug, change).await
    })
    .await
}

/// Appends a layer: `source` is `git` (url, git_ref, subdirectory) or `local` (path).
#[server(prefix = "/api", endpoint = "add_layer")]
pub async fn add_layer(
    slug: String,
    name: String,
    source: String,
    #[server(default)] url: String,
    #[server(default)] git_ref: String,
    #[server(default)] subdirectory: String,
    #[server(default)] path: String,
) -> Result<Option<u32>, AppError> {
    use crate::configuration::{Change, Layer, LayerSource};
    crate::ssr::request::serve(|ctx| async move {
        let source = match source.as_str() {
            "git" => LayerSource::Git {
                url: url.trim().to_owned(),
                git_ref: git_ref.trim().to_owned(),
                subdirectory: subdirectory.trim().trim_end_matches('/').to_owned(),
            },
            "local" => LayerSource::Local {
                path: path.trim().to_owned(),
            },
            _ => return Err(AppError::invalid("source", "Choose git or local.")),
        };
        let layer = Layer {
            name: name.trim().to_owned(),
            source,
        };
        edit::apply(&ctx, &slug, Change::AddLayer(layer)).await
    })
    .await
}

#[server(prefix = "/api", endpoint = "remove_layer")]
pub async fn remove_layer(slug: String, name: String) -> Result<Option<u32>, AppError> {
    use crate::configuration::Change;
    crate::ssr::request::serve(|ctx| async move {
        edit::apply(&ctx, &slug, Change::RemoveLayer { name }).await
    })
    .await
}

/// Moves a layer one place up (`up`) or down.
#[server(prefix = "/api", endpoint = "move_layer")]
pub async fn move_layer(
    slug: String,
    name: String,
    #[server(default)] up: bool,
) -> Result<Option<u32>, AppError> {
    use crate::configuration::Change;
    crate::ssr::request::serve(|ctx| async move {
        edit::apply(&ctx, &slug, Change::MoveLayer { name, up }).await
    })
    .await
}

/// Adds or replaces a variable. `kind` is string, path, bool, integer or choice (with
/// `choices` separated by commas); a secret sent empty keeps its value.
#[server(prefix = "/api", endpoint = "set_variable")]
pub async fn set_variable(
    slug: String,
    #[server(default)] scope: VariableScope,
    name: String,
    kind: String,
    #[server(default)] choices: String,
    #[server(default)] value: String,
    #[server(default)] secret: bool,
) -> Result<Option<u32>, AppError> {
    use crate::configuration::Change;
    crate::ssr::request::serve(|ctx| async move {
        let variable = Variable::from_form(&name, &kind, &choices, &value, secret)?;
        edit::apply(&ctx, &slug, Change::SetVariable { scope, variable }).await
    })
    .await
}

#[server(prefix = "/api", endpoint = "remove_variable")]
pub async fn remove_variable(
    slug: String,
    #[server(default)] scope: VariableScope,
    name: String,
) -> Result<Option<u32>, AppError> {
    use crate::configuration::Change;
    crate::ssr::request::serve(|ctx| async move {
        edit::apply(&ctx, &slug, Change::RemoveVariable { scope, name }).await
    })
    .await
}

/// Makes an earlier revision current again, as a new revision. Infrastructure overrides
/// are restored only by administrators; others keep the current ones.
#[server(prefix = "/api", endpoint = "restore_configuration")]
pub async fn restore_configuration(slug: String, revision: u32) -> Result<Option<u32>, AppError> {
    use crate::ssr::{configurations, policy::Action, request::serve};
    use crate::types::Permission;
    serve(|ctx| async move {
        let action = Action::Project(Permission::Configure);
        let (user, project) = access::project(&ctx, &slug, action).await?;
        configurations::restore(
            &ctx.state.db,
            &ctx.state.secrets,
            &ctx.actor(),
            &project,
            revision,
            user.is_admin,
        )
        .await
    })
    .await
}

/// The instance's infrastructure variables (secrets masked).
#[server(prefix = "/api", endpoint = "infrastructure_variables")]
pub async fn infrastructure_variables() -> Result<Vec<Variable>, AppError> {
    use crate::ssr::{configurations, policy::Action, request::authorized};
    authorized(Action::UseKiln, |ctx, _| async move {
        let variables = configurations::infrastructure_defaults(&ctx.state.db).await?;
        Ok(variables.iter().map(Variable::masked).collect())
    })
    .await
}

/// Adds or replaces an infrastructure variable for the whole instance (administrators).
#[server(prefix = "/api", endpoint = "set_infrastructure_variable")]
pub async fn set_infrastructure_variable(
    name: String,
    kind: String,
    #[server(default)] choices: String,
    #[server(default)] value: String,
    #[server(default)] secret: bool,
) -> Result<Vec<Variable>, AppError> {
    use crate::configuration::Change;
    use crate::ssr::{configurations, policy::Action, request::authorized};
    authorized(Action::ConfigureInstance, |ctx, _| async move {
        let variable = Variable::from_form(&name, &kind, &choices, &value, secret)?;
        let change = Change::SetVariable {
            scope: VariableScope::Infrastructure,
            variable,
        };
        configurations::change_infrastructure_defaults(
            &ctx.state.db,
            &ctx.state.secrets,
            &ctx.actor(),
            change,
        )
        .await
    })
    .await
}

#[server(prefix = "/api", endpoint = "remove_infrastructure_variable")]
pub async fn remove_infrastructure_variable(name: String) -> Result<Vec<Variable>, AppError> {
    use crate::configuration::Change;
    use crate::ssr::{configurations, policy::Action, request::authorized};
    authorized(Action::ConfigureInstance, |ctx, _| async move {
        let change = Change::RemoveVariable {
            scope: VariableScope::Infrastructure,
            name,
        };
        configurations::change_infrastructure_defaults(
            &ctx.state.db,
            &ctx.state.secrets,
            &ctx.actor(),
            change,
        )
        .await
    })
    .await
}
