//! Groups and their members: queries, and the changes administrators and maintainers make,
//! each committed with its audit row.

use super::audit::{self, Actor, Event};
use super::entities::group_members::{self, Column as MemberColumn, Entity as GroupMembers};
use super::entities::groups::{self, Column, Entity as Groups};
use super::entities::projects::{Column as ProjectColumn, Entity as Projects};
use super::policy::GroupFacts;
use super::{db_error, like_escaped, paginate, users};
use crate::domain::{GroupName, Username};
use crate::error::AppError;
use crate::ssr::begin_write;
use crate::types::{GroupDetail, GroupId, GroupMember, GroupView, Membership, Page, UserId};
use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
};
use serde_json::json;
use std::collections::HashMap;

/// Most members one group may have.
pub const GROUP_MEMBERS_MAX: u64 = 1000;

pub type Group = groups::Model;

pub async fn by_id(conn: &impl ConnectionTrait, id: GroupId) -> Result<Group, AppError> {
    Groups::find_by_id(id.0)
        .one(conn)
        .await
        .map_err(db_error)?
        .ok_or(AppError::NotFound)
}

async fn membership(
    conn: &impl ConnectionTrait,
    group: GroupId,
    user: UserId,
) -> Result<Option<group_members::Model>, AppError> {
    GroupMembers::find_by_id((group.0, user.0))
        .one(conn)
        .await
        .map_err(db_error)
}

/// What the policy needs to know about `group` and `user`.
pub async fn facts(
    conn: &impl ConnectionTrait,
    group: GroupId,
    user: Option<UserId>,
) -> Result<GroupFacts, AppError> {
    let row = match user {
        Some(user) => membership(conn, group, user).await?,
        None => None,
    };
    Ok(GroupFacts {
        is_member: row.is_some(),
        is_maintainer: row.is_some_and(|row| row.is_maintainer),
    })
}

/// The groups `user` belongs to, by name.
pub async fn memberships(
    conn: &impl ConnectionTrait,
    user: UserId,
) -> Result<Vec<Membership>, AppError> {
    let rows = GroupMembers::find()
        .filter(MemberColumn::UserId.eq(user.0))
        .all(conn)
        .await
        .map_err(db_error)?;
    let maintains: HashMap<i64, bool> =
        rows.iter().map(|r| (r.group_id, r.is_maintainer)).collect();
    let groups = Groups::find()
        .filter(Column::Id.is_in(maintains.keys().copied()))
        .order_by_asc(Column::Name)
        .all(conn)
        .await
        .map_err(db_error)?;
    Ok(groups
        .into_iter()
        .map(|group| Membership {
            group: GroupId(group.id),
            is_maintainer: maintains.get(&group.id).copied().unwrap_or_default(),
            name: group.name,
        })
        .collect())
}

async fn member_counts(
    conn: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = i64>,
) -> Result<HashMap<i64, u64>, AppError> {
    let counts: Vec<(i64, i64)> = GroupMembers::find()
        .select_only()
        .column(MemberColumn::GroupId)
        .column_as(MemberColumn::UserId.count(), "members")
        .filter(MemberColumn::GroupId.is_in(ids))
        .group_by(MemberColumn::GroupId)
        .into_tuple()
        .all(conn)
        .await
        .map_err(db_error)?;
    Ok(counts
        .into_iter()
        .map(|(id, count)| (id, u64::try_from(count).unwrap_or_default()))
        .collect())
}

fn view(group: Group, member_count: u64) -> GroupView {
    GroupView {
        id: GroupId(group.id),
        name: group.name,
        member_count,
        created_at: group.created_at,
    }
}

impl From<Group> for GroupView {
    fn from(group: Group) -> Self {
        view(group, 0)
    }
}

/// One page of groups whose name contains `search`, by name, with their member counts.
pub async fn list(
    conn: &impl ConnectionTrait,
    search: &str,
    page: u64,
    per_page: u64,
) -> Result<Page<GroupView>, AppError> {
    let mut query = Groups::find().order_by_asc(Column::Name);
    if !search.is_empty() {
        query = query.filter(
            Expr::expr(Func::lower(Expr::col(Column::Name))).like(like_escaped(
                "%",
                &search.to_lowercase(),
                "%",
            )),
        );
    }
    let mut page: Page<GroupView> = paginate(conn, query, page, per_page).await?;
    let counts = member_counts(conn, page.items.iter().map(|g| g.id.0)).await?;
    for group in &mut page.items {
        group.member_count = counts.get(&group.id.0).copied().unwrap_or_default();
    }
    Ok(page)
}

/// A group with all its members (at most [`GROUP_MEMBERS_MAX`]), maintainers first.
pub async fn detail(
    conn: &impl ConnectionTrait,
    id: GroupId,
    can_manage_members: bool,
    can_administer: bool,
) -> Result<GroupDetail, AppError> {
    let group = by_id(conn, id).await?;
    let rows = GroupMembers::find()
        .filter(MemberColumn::GroupId.eq(id.0))
        .all(conn)
        .await
        .map_err(db_error)?;
    let mut members = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(user) = users::by_id(conn, UserId(row.user_id)).await? {
            members.push(GroupMember {
                user: UserId(user.id),
                username: user.username,
                display_name: user.display_name,
                is_maintainer: row.is_maintainer,
            });
        }
    }
    members.sort_by(|a, b| (!a.is_maintainer, &a.username).cmp(&(!b.is_maintainer, &b.username)));
    let count = members.len() as u64;
    Ok(GroupDetail {
        group: view(group, count),
        members,
        can_manage_members,
        can_administer,
    })
}

fn taken(name: &GroupName) -> AppError {
    AppError::conflict(
        "name",
        format!("A group named '{}' already exists.", name.as_str()),
    )
}

pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    name: &str,
) -> Result<GroupView, AppError> {
    let name = GroupName::parse(name)?;
    let txn = begin_write(db).await?;
    let inserted = groups::ActiveModel {
        name: Set(name.as_str().to_owned()),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(&txn)
    .await;
    let group = match inserted {
        Ok(group) => group,
        Err(error) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            return Err(taken(&name));
        }
        Err(error) => return Err(db_error(error)),
    };
    let event = Event::new(
        "group.create",
        "group",
        Some(group.id.to_string()),
        format!("Created group {}", group.name),
    )
    .details(json!({ "name": group.name }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(group.into())
}

pub async fn rename(
    db: &DatabaseConnection,
    actor: &Actor,
    id: GroupId,
    name: &str,
) -> Result<GroupView, AppError> {
    let name = GroupName::parse(name)?;
    let txn = begin_write(db).await?;
    let group = by_id(&txn, id).await?;
    let old = group.name.clone();
    let mut row: groups::ActiveModel = group.into();
    row.name = Set(name.as_str().to_owned());
    let group = match row.update(&txn).await {
        Ok(group) => group,
        Err(error) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            return Err(taken(&name));
        }
        Err(error) => return Err(db_error(error)),
    };
    let event = Event::new(
        "group.rename",
        "group",
        Some(id.to_string()),
        format!("Renamed group {old} to {}", group.name),
    )
    .details(json!({ "from": old, "to": group.name }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(group.into())
}

/// Deletes a group; its projects keep their owners and lose the group's permissions.
pub async fn delete(db: &DatabaseConnection, actor: &Actor, id: GroupId) -> Result<(), AppError> {
    let txn = begin_write(db).await?;
    let group = by_id(&txn, id).await?;
    let projects = Projects::find()
        .filter(ProjectColumn::GroupId.eq(id.0))
        .count(&txn)
        .await
        .map_err(db_error)?;
    let members = GroupMembers::find()
        .filter(MemberColumn::GroupId.eq(id.0))
        .count(&txn)
        .await
        .map_err(db_error)?;
    // Done here rather than left to the foreign keys, so it holds whatever the database.
    Projects::update_many()
        .col_expr(ProjectColumn::GroupId, Expr::value(Option::<i64>::None))
        .filter(ProjectColumn::GroupId.eq(id.0))
        .exec(&txn)
        .await
        .map_err(db_error)?;
    GroupMembers::delete_many()
        .filter(MemberColumn::GroupId.eq(id.0))
        .exec(&txn)
        .await
        .map_err(db_error)?;
    Groups::delete_by_id(id.0)
        .exec(&txn)
        .await
        .map_err(db_error)?;
    let event = Event::new(
        "group.delete",
        "group",
        Some(id.to_string()),
        format!("Deleted group {}", group.name),
    )
    .details(json!({ "name": group.name, "members": members, "projects_unshared": projects }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(())
}

/// Adds the user named `username` to the group (as a maintainer when `maintainer`).
pub async fn add_member(
    db: &DatabaseConnection,
    actor: &Actor,
    id: GroupId,
    username: &str,
    maintainer: bool,
) -> Result<(), AppError> {
    let username = Username::parse(username)?;
    let txn = begin_write(db).await?;
    let group = by_id(&txn, id).await?;
    let user = users::by_username(&txn, &username)
        .await?
        .ok_or_else(|| AppError::invalid("username", format!("There is no user '{username}'.")))?;
    if membership(&txn, id, UserId(user.id)).await?.is_some() {
        return Err(AppError::conflict(
            "username",
            format!("{username} is already a member of {}.", group.name),
        ));
    }
    let count = GroupMembers::find()
        .filter(MemberColumn::GroupId.eq(id.0))
        .count(&txn)
        .await
        .map_err(db_error)?;
    if count >= GROUP_MEMBERS_MAX {
        return Err(AppError::invalid(
            "username",
            format!("A group has at most {GROUP_MEMBERS_MAX} members."),
        ));
    }
    group_members::ActiveModel {
        group_id: Set(id.0),
        user_id: Set(user.id),
        is_maintainer: Set(maintainer),
        added_at: Set(Utc::now()),
    }
    .insert(&txn)
    .await
    .map_err(db_error)?;
    let role = if maintainer { "maintainer" } else { "member" };
    let event = Event::new(
        "group.add_member",
        "group",
        Some(id.to_string()),
        format!("Added {username} to {} as {role}", group.name),
    )
    .details(
        json!({ "user_id": user.id, "username": username.as_str(), "maintainer": maintainer }),
    );
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(())
}

/// The membership of `user` in the group, which must exist.
pub async fn member(
    conn: &impl ConnectionTrait,
    id: GroupId,
    user: UserId,
) -> Result<group_members::Model, AppError> {
    membership(conn, id, user)
        .await?
        .ok_or_else(|| AppError::invalid("user", "That user is not a member of this group."))
}

/// The group, the membership of `user` in it (which must exist) and the user's name.
async fn member_of(
    conn: &impl ConnectionTrait,
    id: GroupId,
    user: UserId,
) -> Result<(Group, group_members::Model, String), AppError> {
    let group = by_id(conn, id).await?;
    let row = member(conn, id, user).await?;
    let username = users::by_id(conn, user)
        .await?
        .map(|u| u.username)
        .unwrap_or_default();
    Ok((group, row, username))
}

pub async fn remove_member(
    db: &DatabaseConnection,
    actor: &Actor,
    id: GroupId,
    user: UserId,
) -> Result<(), AppError> {
    let txn = begin_write(db).await?;
    let (group, row, username) = member_of(&txn, id, user).await?;
    GroupMembers::delete_by_id((id.0, user.0))
        .exec(&txn)
        .await
        .map_err(db_error)?;
    let event = Event::new(
        "group.remove_member",
        "group",
        Some(id.to_string()),
        format!("Removed {username} from {}", group.name),
    )
    .details(
        json!({ "user_id": user.0, "username": username, "was_maintainer": row.is_maintainer }),
    );
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(())
}

pub async fn set_maintainer(
    db: &DatabaseConnection,
    actor: &Actor,
    id: GroupId,
    user: UserId,
    maintainer: bool,
) -> Result<(), AppError> {
    let txn = begin_write(db).await?;
    let (group, row, username) = member_of(&txn, id, user).await?;
    let mut active: group_members::ActiveModel = row.into();
    active.is_maintainer = Set(maintainer);
    active.update(&txn).await.map_err(db_error)?;
    let (action, summary) = if maintainer {
        (
            "group.grant_maintainer",
            format!("Made {username} a maintainer of {}", group.name),
        )
    } else {
        (
            "group.revoke_maintainer",
            format!("{username} no longer maintains {}", group.name),
        )
    };
    let event = Event::new(action, "group", Some(id.to_string()), summary)
        .details(json!({ "user_id": user.0, "username": username }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(())
}
