//! Changes to projects: create, edit, share, transfer, archive, clone and delete. Each one
//! commits together with exactly one audit row; callers have asked the policy first.

use super::super::audit::{self, Actor, Event};
use super::super::entities::projects::{self, Entity as Projects};
use super::super::{configurations, db_error, files, groups, users};
use super::{Project, is_member};
use crate::configuration::Configuration;
use crate::domain::{Description, ProjectName, Slug, Username};
use crate::error::AppError;
use crate::ssr::begin_write;
use crate::types::{CurrentUser, GroupId, Permissions, UserId};
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, SqlErr,
};
use serde_json::json;
use std::path::Path;

/// A project as submitted by its creator.
pub struct NewProject<'a> {
    pub name: &'a str,
    pub slug: &'a str,
    pub description: &'a str,
    pub group: Option<GroupId>,
    pub group_permissions: Permissions,
    pub other_permissions: Permissions,
}

fn event<'a>(action: &'a str, project: &Project, summary: String) -> Event<'a> {
    Event::new(action, "project", Some(project.id.to_string()), summary)
}

/// The group a project may be given by `user`: an existing one, and one of theirs unless
/// they are an administrator (as `chgrp` allows only one's own groups).
async fn check_group(
    conn: &impl ConnectionTrait,
    user: &CurrentUser,
    group: Option<GroupId>,
) -> Result<Option<groups::Group>, AppError> {
    let Some(id) = group else {
        return Ok(None);
    };
    let group = groups::by_id(conn, id)
        .await
        .map_err(|_| AppError::invalid("group", "There is no such group."))?;
    if !user.is_admin && !is_member(conn, id, user.id).await? {
        return Err(AppError::invalid(
            "group",
            "You can share a project only with a group you belong to.",
        ));
    }
    Ok(Some(group))
}

async fn insert(
    conn: &impl ConnectionTrait,
    row: projects::ActiveModel,
    slug: &Slug,
    field: &str,
) -> Result<Project, AppError> {
    match row.insert(conn).await {
        Ok(project) => Ok(project),
        Err(error) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Err(AppError::conflict(
                field,
                format!("The slug '{slug}' is taken; choose another."),
            ))
        }
        Err(error) => Err(db_error(error)),
    }
}

fn new_row(
    slug: &Slug,
    name: &ProjectName,
    description: &Description,
    owner: UserId,
) -> projects::ActiveModel {
    let now = Utc::now();
    projects::ActiveModel {
        slug: Set(slug.as_str().to_owned()),
        name: Set(name.as_str().to_owned()),
        description: Set(description.as_str().to_owned()),
        owner_id: Set(owner.0),
        group_id: Set(None),
        group_permissions: Set(0),
        other_permissions: Set(0),
        archived_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
}

/// Checks `input` and inserts the project on `conn`, without an audit row: for callers
/// that record the creation their own way.
pub async fn insert_new(
    conn: &impl ConnectionTrait,
    owner: &CurrentUser,
    input: NewProject<'_>,
) -> Result<Project, AppError> {
    let name = ProjectName::parse(input.name)?;
    // An empty slug is made from the name, so a quick create needs only the name.
    let slug = match input.slug.trim() {
        "" => Slug::parse(&Slug::suggest(name.as_str()), "slug")?,
        given => Slug::parse(given, "slug")?,
    };
    let description = Description::parse(input.description)?;
    let group = check_group(conn, owner, input.group).await?;
    let group_permissions = match group {
        Some(_) => input.group_permissions.normalized(),
        None => Permissions::NONE,
    };
    let mut row = new_row(&slug, &name, &description, owner.id);
    row.group_id = Set(group.as_ref().map(|g| g.id));
    row.group_permissions = Set(group_permissions.bits());
    row.other_permissions = Set(input.other_permissions.normalized().bits());
    insert(conn, row, &slug, "slug").await
}

/// Creates a project owned by `owner`; private unless `input` shares it.
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    owner: &CurrentUser,
    input: NewProject<'_>,
) -> Result<Project, AppError> {
    let txn = begin_write(db).await?;
    let project = insert_new(&txn, owner, input).await?;
    let summary = format!("Created project {}", project.slug);
    let group = match project.group_id {
        Some(id) => Some(groups::by_id(&txn, GroupId(id)).await?.name),
        None => None,
    };
    let event = event("project.create", &project, summary).details(json!({
        "slug": project.slug,
        "name": project.name,
        "group": group,
        "group_permissions": project.group_permissions().to_string(),
        "other_permissions": project.other_permissions().to_string(),
    }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(project)
}

async fn save(
    conn: &impl ConnectionTrait,
    mut row: projects::ActiveModel,
) -> Result<Project, AppError> {
    row.updated_at = Set(Utc::now());
    row.update(conn).await.map_err(db_error)
}

/// Changes the name and description.
pub async fn update_details(
    db: &DatabaseConnection,
    actor: &Actor,
    project: Project,
    name: &str,
    description: &str,
) -> Result<Project, AppError> {
    let name = ProjectName::parse(name)?;
    let description = Description::parse(description)?;
    let before = json!({ "name": project.name, "description": project.description });
    let txn = begin_write(db).await?;
    let mut row = project.into_active_model();
    row.name = Set(name.as_str().to_owned());
    row.description = Set(description.as_str().to_owned());
    let project = save(&txn, row).await?;
    let summary = format!("Updated project {}", project.slug);
    let event = event("project.update", &project, summary).details(json!({
        "before": before,
        "after": { "name": project.name, "description": project.description },
    }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(project)
}

/// Sets the group and the permissions of group and others. Without a group, the group's
/// permissions are none.
pub async fn set_sharing(
    db: &DatabaseConnection,
    actor: &Actor,
    user: &CurrentUser,
    project: Project,
    group: Option<GroupId>,
    group_permissions: Permissions,
    other_permissions: Permissions,
) -> Result<Project, AppError> {
    let txn = begin_write(db).await?;
    let new_group = check_group(&txn, user, group).await?;
    let group_permissions = match new_group {
        Some(_) => group_permissions.normalized(),
        None => Permissions::NONE,
    };
    let other_permissions = other_permissions.normalized();
    let before = json!({
        "group_id": project.group_id,
        "group_permissions": project.group_permissions().to_string(),
        "other_permissions": project.other_permissions().to_string(),
    });
    let mut row = project.into_active_model();
    row.group_id = Set(new_group.as_ref().map(|g| g.id));
    row.group_permissions = Set(group_permissions.bits());
    row.other_permissions = Set(other_permissions.bits());
    let project = save(&txn, row).await?;
    let summary = format!(
        "Permissions of {}: group {} ({group_permissions}), others ({other_permissions})",
        project.slug,
        new_group.as_ref().map_or("none", |g| g.name.as_str()),
    );
    let event = event("project.permissions", &project, summary).details(json!({
        "before": before,
        "after": {
            "group_id": project.group_id,
            "group": new_group.map(|g| g.name),
            "group_permissions": group_permissions.to_string(),
            "other_permissions": other_permissions.to_string(),
        },
    }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(project)
}

/// Gives the project to another (enabled) user.
pub async fn transfer(
    db: &DatabaseConnection,
    actor: &Actor,
    project: Project,
    new_owner: &str,
) -> Result<Project, AppError> {
    let username =
        Username::parse(new_owner).map_err(|e| AppError::invalid("owner", e.message()))?;
    let txn = begin_write(db).await?;
    let owner = users::by_username(&txn, &username)
        .await?
        .filter(|user| !user.is_disabled)
        .ok_or_else(|| {
            AppError::invalid("owner", format!("There is no active user '{username}'."))
        })?;
    if owner.id == project.owner_id {
        return Err(AppError::invalid(
            "owner",
            format!("{username} already owns this project."),
        ));
    }
    let previous = project.owner_id;
    let mut row = project.into_active_model();
    row.owner_id = Set(owner.id);
    let project = save(&txn, row).await?;
    let summary = format!("Transferred {} to {username}", project.slug);
    let event = event("project.transfer", &project, summary)
        .details(json!({ "from_user_id": previous, "to_user_id": owner.id, "to": owner.username }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(project)
}

/// Archives (read-only, hidden from lists by default) or restores the project.
pub async fn set_archived(
    db: &DatabaseConnection,
    actor: &Actor,
    project: Project,
    archived: bool,
) -> Result<Project, AppError> {
    if project.archived_at.is_some() == archived {
        let state = if archived {
            "already archived"
        } else {
            "not archived"
        };
        return Err(AppError::invalid(
            "project",
            format!("The project is {state}."),
        ));
    }
    let txn = begin_write(db).await?;
    let mut row = project.into_active_model();
    row.archived_at = Set(archived.then(Utc::now));
    let project = save(&txn, row).await?;
    let (action, verb) = if archived {
        ("project.archive", "Archived")
    } else {
        ("project.unarchive", "Restored")
    };
    let event = event(action, &project, format!("{verb} project {}", project.slug));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(project)
}

/// Deletes the project, its records and its stored files, once `confirm` repeats its slug.
pub async fn delete(
    db: &DatabaseConnection,
    data_dir: &Path,
    actor: &Actor,
    project: Project,
    confirm: &str,
) -> Result<(), AppError> {
    if confirm.trim() != project.slug {
        return Err(AppError::invalid(
            "confirm",
            format!("Type the project's slug, {}, to delete it.", project.slug),
        ));
    }
    let txn = begin_write(db).await?;
    Projects::delete_by_id(project.id)
        .exec(&txn)
        .await
        .map_err(db_error)?;
    let summary = format!("Deleted project {}", project.slug);
    let event = event("project.delete", &project, summary).details(
        json!({ "slug": project.slug, "name": project.name, "owner_id": project.owner_id }),
    );
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    // After the commit: files of a project whose deletion rolled back must stay.
    files::remove_project_files(data_dir, project.id()).await;
    Ok(())
}

/// A new private project owned by `user`, with `source`'s description and configuration
/// (without secret values). `slug` is the `new_slug` field.
pub async fn clone(
    db: &DatabaseConnection,
    keys: &crate::ssr::secrets::Keyring,
    actor: &Actor,
    user: &CurrentUser,
    source: &Project,
    name: &str,
    slug: &str,
) -> Result<Project, AppError> {
    let name = ProjectName::parse(name)?;
    let slug = Slug::parse(slug, "new_slug")?;
    let description = Description::parse(&source.description)?;
    let txn = begin_write(db).await?;
    let row = new_row(&slug, &name, &description, user.id);
    let project = insert(&txn, row, &slug, "new_slug").await?;
    // Secret values stay behind; infrastructure overrides come along for administrators only.
    let (source_config, _) = configurations::current(&txn, source).await?;
    let mut config = source_config.without_secret_values();
    if !user.is_admin {
        config.infrastructure.clear();
    }
    if config != Configuration::default() {
        let summary = format!("Cloned from {}", source.slug);
        configurations::insert_revision(&txn, keys, actor, &project, &config, &summary).await?;
    }
    let summary = format!("Cloned {} as {}", source.slug, project.slug);
    let event = event("project.clone", &project, summary).details(json!({
        "source_id": source.id,
        "source": source.slug,
        "slug": project.slug,
    }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(project)
}
