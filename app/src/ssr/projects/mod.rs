//! Projects: loading one with what the policy needs to know, and showing it.
//!
//! `list` holds the projects page's query; `changes` the mutations, each with its audit row.

pub mod changes;
pub mod list;

use super::entities::group_members::Entity as GroupMembers;
use super::entities::groups::Entity as Groups;
use super::entities::projects::{self, Column, Entity as Projects};
use super::policy::{ProjectFacts, project_access};
use super::{db_error, users};
use crate::domain::Slug;
use crate::error::AppError;
use crate::types::{CurrentUser, GroupId, GroupRef, Permissions, ProjectId, ProjectView, UserId};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

pub type Project = projects::Model;

impl Project {
    pub fn id(&self) -> ProjectId {
        ProjectId(self.id)
    }

    pub fn group_permissions(&self) -> Permissions {
        Permissions::from_bits(self.group_permissions)
    }

    pub fn other_permissions(&self) -> Permissions {
        Permissions::from_bits(self.other_permissions)
    }

    /// Refuses a change to an archived project: `field` is the input the change came
    /// from, `to` what the user meant to do ("build", "change its configuration").
    pub fn refuse_if_archived(&self, field: &str, to: &str) -> Result<(), AppError> {
        match self.archived_at {
            Some(_) => Err(AppError::invalid(
                field,
                format!("The project is archived; restore it to {to}."),
            )),
            None => Ok(()),
        }
    }
}

/// The project at `slug`; a slug that is not well-formed cannot name one, so it is not found.
pub async fn by_slug(conn: &impl ConnectionTrait, slug: &str) -> Result<Project, AppError> {
    let slug = Slug::parse(slug, "slug").map_err(|_| AppError::NotFound)?;
    Projects::find()
        .filter(Column::Slug.eq(slug.as_str()))
        .one(conn)
        .await
        .map_err(db_error)?
        .ok_or(AppError::NotFound)
}

/// The project with id `id`.
pub async fn by_id(conn: &impl ConnectionTrait, id: i64) -> Result<Project, AppError> {
    Projects::find_by_id(id)
        .one(conn)
        .await
        .map_err(db_error)?
        .ok_or(AppError::NotFound)
}

pub async fn is_member(
    conn: &impl ConnectionTrait,
    group: GroupId,
    user: UserId,
) -> Result<bool, AppError> {
    Ok(GroupMembers::find_by_id((group.0, user.0))
        .one(conn)
        .await
        .map_err(db_error)?
        .is_some())
}

/// What the policy needs to know about `project` and `user`.
pub async fn facts(
    conn: &impl ConnectionTrait,
    project: &Project,
    user: Option<UserId>,
) -> Result<ProjectFacts, AppError> {
    let in_group = match (project.group_id, user) {
        (Some(group), Some(user)) => is_member(conn, GroupId(group), user).await?,
        _ => false,
    };
    Ok(ProjectFacts {
        owner: UserId(project.owner_id),
        group_permissions: project.group_permissions(),
        other_permissions: project.other_permissions(),
        in_group,
    })
}

/// `project` as its page shows it to `viewer`.
pub async fn view(
    conn: &impl ConnectionTrait,
    project: Project,
    viewer: &CurrentUser,
) -> Result<ProjectView, AppError> {
    let facts = facts(conn, &project, Some(viewer.id)).await?;
    let owner = users::by_id(conn, UserId(project.owner_id))
        .await?
        .ok_or(AppError::Internal)?;
    let group = match project.group_id {
        Some(id) => Groups::find_by_id(id)
            .one(conn)
            .await
            .map_err(db_error)?
            .map(|group| GroupRef {
                id: GroupId(group.id),
                name: group.name,
            }),
        None => None,
    };
    Ok(ProjectView {
        id: project.id(),
        group_permissions: project.group_permissions(),
        other_permissions: project.other_permissions(),
        slug: project.slug,
        name: project.name,
        description: project.description,
        owner: owner.username,
        owner_display_name: owner.display_name,
        group,
        archived_at: project.archived_at,
        created_at: project.created_at,
        updated_at: project.updated_at,
        access: project_access(Some(viewer), facts),
    })
}
