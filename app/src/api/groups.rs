//! Groups: administrators create, rename and delete them and choose maintainers;
//! maintainers add and remove members; members see their groups.

use crate::error::AppError;
use crate::types::{GroupDetail, GroupId, GroupView, Membership, Page, UserId};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::ssr::access;

/// Groups per page on the groups page.
pub const GROUPS_PER_PAGE: u64 = 25;

/// One page of groups whose name contains `search` (administrators).
#[server(prefix = "/api", endpoint = "list_groups")]
pub async fn list_groups(search: String, page: u64) -> Result<Page<GroupView>, AppError> {
    use crate::ssr::{groups, policy::Action, request::authorized};
    authorized(Action::ManageGroups, |ctx, _| async move {
        let search = crate::domain::parse_search(&search)?;
        groups::list(&ctx.state.db, &search, page, GROUPS_PER_PAGE).await
    })
    .await
}

#[server(prefix = "/api", endpoint = "create_group")]
pub async fn create_group(name: String) -> Result<GroupView, AppError> {
    use crate::ssr::{groups, policy::Action, request::authorized};
    authorized(Action::ManageGroups, |ctx, _| async move {
        groups::create(&ctx.state.db, &ctx.actor(), &name).await
    })
    .await
}

#[server(prefix = "/api", endpoint = "rename_group")]
pub async fn rename_group(id: GroupId, name: String) -> Result<GroupView, AppError> {
    use crate::ssr::{groups, policy::Action, request::authorized};
    authorized(Action::ManageGroups, |ctx, _| async move {
        groups::rename(&ctx.state.db, &ctx.actor(), id, &name).await
    })
    .await
}

/// Deletes a group; projects shared with it keep their owner and lose the group.
#[server(prefix = "/api", endpoint = "delete_group")]
pub async fn delete_group(id: GroupId) -> Result<(), AppError> {
    use crate::ssr::{groups, policy::Action, request::authorized};
    authorized(Action::ManageGroups, |ctx, _| async move {
        groups::delete(&ctx.state.db, &ctx.actor(), id).await
    })
    .await
}

/// The groups the logged-in user belongs to.
#[server(prefix = "/api", endpoint = "my_groups")]
pub async fn my_groups() -> Result<Vec<Membership>, AppError> {
    use crate::ssr::{groups, policy::Action, request::authorized};
    authorized(Action::UseKiln, |ctx, user| async move {
        groups::memberships(&ctx.state.db, user.id).await
    })
    .await
}

/// A group and its members, for its members and administrators.
#[server(prefix = "/api", endpoint = "group")]
pub async fn group(id: GroupId) -> Result<GroupDetail, AppError> {
    use crate::ssr::policy::{self, Action, Object};
    use crate::ssr::{groups, request::serve};
    serve(|ctx| async move {
        let user = access::group(&ctx, id, Action::ViewGroup).await?;
        let facts = groups::facts(&ctx.state.db, id, Some(user.id)).await?;
        let can = |object, action| policy::can(Some(&user), object, action);
        let manage = can(Object::Group(facts), Action::ManageGroupMembers);
        let administer = can(Object::Instance, Action::ManageGroups);
        groups::detail(&ctx.state.db, id, manage, administer).await
    })
    .await
}

/// Adds a member. Only administrators may add a maintainer.
#[server(prefix = "/api", endpoint = "add_group_member")]
pub async fn add_group_member(
    id: GroupId,
    username: String,
    #[server(default)] maintainer: bool,
) -> Result<(), AppError> {
    use crate::ssr::{groups, policy::Action, request::serve};
    serve(|ctx| async move {
        access::group(&ctx, id, Action::ManageGroupMembers).await?;
        if maintainer {
            ctx.authorize(Action::ManageGroups).await?;
        }
        groups::add_member(&ctx.state.db, &ctx.actor(), id, &username, maintainer).await
    })
    .await
}

/// Removes a member. Only administrators may remove a maintainer.
#[server(prefix = "/api", endpoint = "remove_group_member")]
pub async fn remove_group_member(id: GroupId, user: UserId) -> Result<(), AppError> {
    use crate::ssr::{groups, policy::Action, request::serve};
    serve(|ctx| async move {
        access::group(&ctx, id, Action::ManageGroupMembers).await?;
        if groups::member(&ctx.state.db, id, user).await?.is_maintainer {
            ctx.authorize(Action::ManageGroups).await?;
        }
        groups::remove_member(&ctx.state.db, &ctx.actor(), id, user).await
    })
    .await
}

/// Makes a member a maintainer, or a plain member again (administrators).
#[server(prefix = "/api", endpoint = "set_group_maintainer")]
pub async fn set_group_maintainer(
    id: GroupId,
    user: UserId,
    #[server(default)] maintainer: bool,
) -> Result<(), AppError> {
    use crate::ssr::{groups, policy::Action, request::authorized};
    authorized(Action::ManageGroups, |ctx, _| async move {
        groups::set_maintainer(&ctx.state.db, &ctx.actor(), id, user, maintainer).await
    })
    .await
}
