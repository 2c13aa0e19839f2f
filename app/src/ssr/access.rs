//! Lookups that answer only what the visitor may see: a project, a build, a process scope or
//! instance, a trigger or a group, each loaded and checked with the one policy.
//!
//! Every lookup refuses a visitor without a session before it reads anything, so an
//! anonymous caller cannot tell an existing object from a missing one. An object the user
//! may not see answers 404; one they see without the permission asked for answers 403.

use super::builds::views::Rights as BuildRights;
use super::entities::{builds, triggers};
use super::policy::{self, Action, Object};
use super::processes::Scope;
use super::projects::{self, Project};
use super::request::RequestContext;
use crate::error::AppError;
use crate::live::Topic;
use crate::types::{CurrentUser, GroupId, Permission};

/// The signed-in visitor, or 401 (audited as a refusal of `action` on `object_type`
/// `object_id`) before anything is looked up.
async fn signed_in<'a>(
    ctx: &'a RequestContext,
    action: Action,
    object_type: &str,
    object_id: &str,
) -> Result<&'a CurrentUser, AppError> {
    match ctx.visitor.user.as_ref() {
        Some(user) => Ok(user),
        None => {
            ctx.record_denial(action, object_type, object_id).await?;
            Err(AppError::Unauthenticated)
        }
    }
}

/// The user and the project at `slug`, if the policy lets them do `action` to it.
pub async fn project(
    ctx: &RequestContext,
    slug: &str,
    action: Action,
) -> Result<(CurrentUser, Project), AppError> {
    let user = signed_in(ctx, action, "project", slug).await?;
    let project = projects::by_slug(&ctx.state.db, slug).await?;
    let object = Object::Project(projects::facts(&ctx.state.db, &project, Some(user.id)).await?);
    let see = Action::Project(Permission::View);
    let user = ctx
        .authorize_on(object, see, action, "project", &project.id.to_string())
        .await?
        .clone();
    Ok((user, project))
}

/// Build `number` of the project at `slug`, if the user may do `permission` to it.
pub async fn build(
    ctx: &RequestContext,
    slug: &str,
    number: i32,
    permission: Permission,
) -> Result<(CurrentUser, Project, builds::Model), AppError> {
    let (user, project) = project(ctx, slug, Action::Project(permission)).await?;
    let row = super::builds::by_number(&ctx.state.db, &project, number).await?;
    Ok((user, project, row))
}

/// Build `id`, if the user may do `permission` to its project.
pub async fn build_by_id(
    ctx: &RequestContext,
    id: i64,
    permission: Permission,
) -> Result<(CurrentUser, Project, builds::Model), AppError> {
    let action = Action::Project(permission);
    let user = signed_in(ctx, action, "build", &id.to_string()).await?;
    let db = &ctx.state.db;
    let row = super::builds::by_id(db, id).await?;
    let project = projects::by_id(db, row.project_id).await?;
    let facts = projects::facts(db, &project, Some(user.id)).await?;
    let see = Action::Project(Permission::View);
    let user = ctx
        .authorize_on(
            Object::Project(facts),
            see,
            action,
            "build",
            &id.to_string(),
        )
        .await?
        .clone();
    Ok((user, project, row))
}

/// What `user` may do to the builds of `project`.
pub async fn build_rights(
    ctx: &RequestContext,
    user: &CurrentUser,
    project: &Project,
) -> Result<BuildRights, AppError> {
    let facts = projects::facts(&ctx.state.db, project, Some(user.id)).await?;
    let can = |action| policy::can(Some(user), Object::Project(facts), action);
    Ok(BuildRights {
        build: can(Action::Project(Permission::Build)) && project.archived_at.is_none(),
        download: can(Action::Project(Permission::Download)),
        delete: can(Action::AdministerProject),
    })
}

/// What the reader may do in a scope of definitions, processes and triggers.
pub struct ScopeRights {
    pub user: CurrentUser,
    pub scope: Scope,
    pub edit: bool,
    pub launch: bool,
}

/// The scope named by `project` (a slug, or empty for global), if the user may use it with
/// `permission`.
pub async fn scope(
    ctx: &RequestContext,
    project: &str,
    permission: Permission,
) -> Result<ScopeRights, AppError> {
    if project.is_empty() {
        let action = match permission {
            Permission::View => Action::UseKiln,
            _ => Action::ConfigureInstance,
        };
        let user = ctx.authorize(action).await?.clone();
        return Ok(ScopeRights {
            edit: user.is_admin,
            launch: user.is_admin,
            user,
            scope: Scope::Global,
        });
    }
    let (user, project) = self::project(ctx, project, Action::Project(permission)).await?;
    let facts = projects::facts(&ctx.state.db, &project, Some(user.id)).await?;
    let access = policy::project_access(Some(&user), facts);
    Ok(ScopeRights {
        edit: access.permissions.configure,
        launch: access.permissions.build,
        user,
        scope: Scope::Project(project.id),
    })
}

/// The reader, if they may see process instance `id` (`control`: and control it); returns
/// whether they may control it too.
pub async fn process(
    ctx: &RequestContext,
    id: i64,
    control: bool,
) -> Result<(CurrentUser, bool), AppError> {
    let see = Action::Project(Permission::View);
    let action = if control {
        Action::Project(Permission::Build)
    } else {
        see
    };
    let user = signed_in(ctx, action, "process", &id.to_string()).await?;
    let db = &ctx.state.db;
    let row = super::processes::views::row(db, id).await?;
    let Some(project_id) = row.project_id else {
        let user = ctx.authorize(Action::ConfigureInstance).await?.clone();
        return Ok((user, true));
    };
    let project = projects::by_id(db, project_id).await?;
    let facts = projects::facts(db, &project, Some(user.id)).await?;
    let user = ctx
        .authorize_on(
            Object::Project(facts),
            see,
            action,
            "process",
            &id.to_string(),
        )
        .await?
        .clone();
    let can_control = policy::can(
        Some(&user),
        Object::Project(facts),
        Action::Project(Permission::Build),
    );
    Ok((user, can_control))
}

/// Trigger `id`, if the reader may change it.
pub async fn editable_trigger(
    ctx: &RequestContext,
    id: i64,
) -> Result<(triggers::Model, ScopeRights), AppError> {
    let action = Action::Project(Permission::Configure);
    signed_in(ctx, action, "trigger", &id.to_string()).await?;
    let row = super::triggers::get(&ctx.state.db, id).await?;
    let slug = match row.project_id {
        Some(project) => projects::by_id(&ctx.state.db, project).await?.slug,
        None => String::new(),
    };
    let rights = scope(ctx, &slug, Permission::Configure).await?;
    if !rights.edit {
        return Err(AppError::Forbidden);
    }
    Ok((row, rights))
}

/// The user, if they may do `action` to the group; a group they are not in is not found.
pub async fn group(
    ctx: &RequestContext,
    id: GroupId,
    action: Action,
) -> Result<CurrentUser, AppError> {
    let user = signed_in(ctx, action, "group", &id.to_string()).await?;
    super::groups::by_id(&ctx.state.db, id).await?;
    let object = Object::Group(super::groups::facts(&ctx.state.db, id, Some(user.id)).await?);
    let user = ctx
        .authorize_on(object, Action::ViewGroup, action, "group", &id.to_string())
        .await?;
    Ok(user.clone())
}

/// Whether the visitor of `ctx` may follow `topic`: the same question the topic's page asks.
pub async fn topic(ctx: &RequestContext, topic: Topic) -> Result<(), AppError> {
    match topic {
        Topic::Process(id) => process(ctx, id, false).await.map(|_| ()),
        Topic::Build(id) => build_by_id(ctx, id, Permission::View).await.map(|_| ()),
        Topic::Processes | Topic::Inbox | Topic::Builds => {
            ctx.authorize(Action::UseKiln).await.map(|_| ())
        }
        Topic::Workers => ctx.authorize(Action::ViewWorkers).await.map(|_| ()),
    }
}
