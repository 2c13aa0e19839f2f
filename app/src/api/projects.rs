//! Projects: listing, creating, sharing, transferring, archiving, cloning, deleting, and a
//! project's own audit trail. Every call goes through the policy for that project.

use crate::error::AppError;
use crate::types::{AuditEntry, Page, Permissions, ProjectQuery, ProjectSummary, ProjectView};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::ssr::access;

/// Audit records per page on a project's audit trail.
pub const PROJECT_AUDIT_PER_PAGE: u64 = 25;

/// The group id from a form's select: empty means none.
#[cfg(feature = "ssr")]
fn group_field(raw: &str) -> Result<Option<crate::types::GroupId>, AppError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse()
        .map(|id| Some(crate::types::GroupId(id)))
        .map_err(|_| AppError::invalid("group", "Choose a group from the list."))
}

/// One page of the projects the user may see, in the query's tab.
#[server(prefix = "/api", endpoint = "list_projects")]
pub async fn list_projects(
    #[server(default)] query: ProjectQuery,
) -> Result<Page<ProjectSummary>, AppError> {
    use crate::ssr::projects::list::{PROJECTS_PER_PAGE, list};
    use crate::ssr::{policy::Action, request::authorized};
    authorized(Action::UseKiln, |ctx, user| async move {
        let query = ProjectQuery {
            search: crate::domain::parse_search(&query.search)?,
            ..query
        };
        list(&ctx.state.db, &user, &query, PROJECTS_PER_PAGE).await
    })
    .await
}

/// Creates a project owned by the caller. An empty `slug` is made from the name; `group` is
/// a group id or empty; permissions not given are none, so a project is private unless its
/// creator shares it.
#[server(prefix = "/api", endpoint = "create_project")]
pub async fn create_project(
    name: String,
    #[server(default)] slug: String,
    #[server(default)] description: String,
    #[server(default)] group: String,
    #[server(default)] group_permissions: Permissions,
    #[server(default)] other_permissions: Permissions,
) -> Result<ProjectView, AppError> {
    use crate::ssr::projects::{self, changes};
    use crate::ssr::{policy::Action, request::authorized};
    authorized(Action::CreateProject, |ctx, user| async move {
        let input = changes::NewProject {
            name: &name,
            slug: &slug,
            description: &description,
            group: group_field(&group)?,
            group_permissions,
            other_permissions,
        };
        let project = changes::create(&ctx.state.db, &ctx.actor(), &user, input).await?;
        projects::view(&ctx.state.db, project, &user).await
    })
    .await
}

/// A project, with what the caller may do with it.
#[server(prefix = "/api", endpoint = "project")]
pub async fn project(slug: String) -> Result<ProjectView, AppError> {
    use crate::ssr::policy::Action;
    use crate::ssr::{projects, request::serve};
    use crate::types::Permission;
    serve(|ctx| async move {
        let (user, project) =
            access::project(&ctx, &slug, Action::Project(Permission::View)).await?;
        projects::view(&ctx.state.db, project, &user).await
    })
    .await
}

/// Changes the name and description (owner and administrators).
#[server(prefix = "/api", endpoint = "update_project")]
pub async fn update_project(
    slug: String,
    name: String,
    #[server(default)] description: String,
) -> Result<ProjectView, AppError> {
    use crate::ssr::projects::{self, changes};
    use crate::ssr::{policy::Action, request::serve};
    serve(|ctx| async move {
        let (user, project) = access::project(&ctx, &slug, Action::AdministerProject).await?;
        let project =
            changes::update_details(&ctx.state.db, &ctx.actor(), project, &name, &description)
                .await?;
        projects::view(&ctx.state.db, project, &user).await
    })
    .await
}

/// Sets the project's group (a group id, or empty for none) and the permissions of group and
/// others (owner and administrators).
#[server(prefix = "/api", endpoint = "set_project_sharing")]
pub async fn set_project_sharing(
    slug: String,
    #[server(default)] group: String,
    #[server(default)] group_permissions: Permissions,
    #[server(default)] other_permissions: Permissions,
) -> Result<ProjectView, AppError> {
    use crate::ssr::projects::{self, changes};
    use crate::ssr::{policy::Action, request::serve};
    serve(|ctx| async move {
        let (user, project) = access::project(&ctx, &slug, Action::AdministerProject).await?;
        let group = group_field(&group)?;
        let project = changes::set_sharing(
            &ctx.state.db,
            &ctx.actor(),
            &user,
            project,
            group,
            group_permissions,
            other_permissions,
        )
        .await?;
        projects::view(&ctx.state.db, project, &user).await
    })
    .await
}

/// Gives the project to the user named `owner` (owner and administrators).
#[server(prefix = "/api", endpoint = "transfer_project")]
pub async fn transfer_project(slug: String, owner: String) -> Result<ProjectView, AppError> {
    use crate::ssr::projects::{self, changes};
    use crate::ssr::{policy::Action, request::serve};
    serve(|ctx| async move {
        let (user, project) = access::project(&ctx, &slug, Action::AdministerProject).await?;
        let project = changes::transfer(&ctx.state.db, &ctx.actor(), project, &owner).await?;
        projects::view(&ctx.state.db, project, &user).await
    })
    .await
}

/// Archives the project, or restores it when `archived` is false (owner and administrators).
#[server(prefix = "/api", endpoint = "archive_project")]
pub async fn archive_project(
    slug: String,
    #[server(default)] archived: bool,
) -> Result<ProjectView, AppError> {
    use crate::ssr::projects::{self, changes};
    use crate::ssr::{policy::Action, request::serve};
    serve(|ctx| async move {
        let (user, project) = access::project(&ctx, &slug, Action::AdministerProject).await?;
        let project = changes::set_archived(&ctx.state.db, &ctx.actor(), project, archived).await?;
        projects::view(&ctx.state.db, project, &user).await
    })
    .await
}

/// Deletes the project and everything Kiln stored for it; `confirm` must repeat the slug.
#[server(prefix = "/api", endpoint = "delete_project")]
pub async fn delete_project(slug: String, confirm: String) -> Result<(), AppError> {
    use crate::ssr::projects::changes;
    use crate::ssr::{policy::Action, request::serve};
    serve(|ctx| async move {
        let (_, project) = access::project(&ctx, &slug, Action::AdministerProject).await?;
        let data_dir = ctx.state.data_dir.clone();
        changes::delete(&ctx.state.db, &data_dir, &ctx.actor(), project, &confirm).await
    })
    .await
}

/// Copies a project the caller can see into a new private project the caller owns.
#[server(prefix = "/api", endpoint = "clone_project")]
pub async fn clone_project(
    slug: String,
    name: String,
    new_slug: String,
) -> Result<ProjectView, AppError> {
    use crate::ssr::projects::{self, changes};
    use crate::ssr::{policy::Action, request::serve};
    use crate::types::Permission;
    serve(|ctx| async move {
        let (user, source) =
            access::project(&ctx, &slug, Action::Project(Permission::View)).await?;
        ctx.authorize(Action::CreateProject).await?;
        let project = changes::clone(
            &ctx.state.db,
            &ctx.state.secrets,
            &ctx.actor(),
            &user,
            &source,
            &name,
            &new_slug,
        )
        .await?;
        projects::view(&ctx.state.db, project, &user).await
    })
    .await
}

/// One page of the project's audit trail, newest first (owner and administrators).
#[server(prefix = "/api", endpoint = "project_audit")]
pub async fn project_audit(slug: String, page: u64) -> Result<Page<AuditEntry>, AppError> {
    use crate::domain::AuditQuery;
    use crate::ssr::{audit, policy::Action, request::serve};
    serve(|ctx| async move {
        let (_, project) = access::project(&ctx, &slug, Action::AdministerProject).await?;
        let query = AuditQuery {
            object_type: Some("project".into()),
            object_id: Some(project.id.to_string()),
            ..AuditQuery::default()
        };
        audit::list(&ctx.state.db, &query, page, PROJECT_AUDIT_PER_PAGE).await
    })
    .await
}

/// The project file (TOML, `schema = 1`) of a project the caller may view.
#[server(prefix = "/api", endpoint = "export_project")]
pub async fn export_project(slug: String) -> Result<String, AppError> {
    use crate::ssr::{policy::Action, project_file, request::serve};
    use crate::types::Permission;
    serve(|ctx| async move {
        let (_, project) = access::project(&ctx, &slug, Action::Project(Permission::View)).await?;
        project_file::export(&ctx.state.db, &project).await
    })
    .await
}

/// Creates a private project of the caller's from a project file; a non-empty `slug`
/// replaces the file's.
#[server(prefix = "/api", endpoint = "import_project")]
pub async fn import_project(
    file: String,
    #[server(default)] slug: String,
) -> Result<ProjectView, AppError> {
    use crate::ssr::{policy::Action, project_file, projects, request::authorized};
    authorized(Action::CreateProject, |ctx, user| async move {
        let project = project_file::import(
            &ctx.state.db,
            &ctx.state.secrets,
            &ctx.actor(),
            &user,
            &file,
            &slug,
        )
        .await?;
        projects::view(&ctx.state.db, project, &user).await
    })
    .await
}
