//! The projects page's query: one tab of the projects a user may see, searched, sorted and
//! paginated in the database.

use super::super::entities::group_members::{Column as MemberColumn, Entity as GroupMembers};
use super::super::entities::groups::{Column as GroupColumn, Entity as Groups};
use super::super::entities::projects::{Column, Entity as Projects};
use super::super::entities::users::{Column as UserColumn, Entity as Users};
use super::super::{db_error, like_escaped, paginate};
use super::Project;
use crate::error::AppError;
use crate::types::{
    CurrentUser, Page, Permission, ProjectQuery, ProjectSort, ProjectSummary, ProjectTab,
};
use sea_orm::sea_query::{Condition, Expr, ExprTrait, Func, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait,
};
use std::collections::HashMap;

/// Projects per page on the projects page.
pub const PROJECTS_PER_PAGE: u64 = 25;

/// The stored bit set in `column` has `permission`.
fn grants(column: Column, permission: Permission) -> SimpleExpr {
    Expr::col(column).bit_and(permission.bit()).ne(0)
}

/// The project's group is one of `user`'s and lets its members view it.
fn shared_with(user: &CurrentUser) -> Condition {
    let my_groups = GroupMembers::find()
        .select_only()
        .column(MemberColumn::GroupId)
        .filter(MemberColumn::UserId.eq(user.id.0))
        .into_query();
    Condition::all()
        .add(Column::GroupId.in_subquery(my_groups))
        .add(grants(Column::GroupPermissions, Permission::View))
}

/// The projects of `tab` that `user` may view; the same rule as the policy, as SQL.
fn visible(user: &CurrentUser, tab: ProjectTab) -> Condition {
    let mine = Column::OwnerId.eq(user.id.0);
    match tab {
        ProjectTab::Mine => Condition::all().add(mine),
        ProjectTab::Shared => shared_with(user).add(Column::OwnerId.ne(user.id.0)),
        ProjectTab::All if user.is_admin => Condition::all(),
        ProjectTab::All => Condition::any()
            .add(mine)
            .add(grants(Column::OtherPermissions, Permission::View))
            .add(shared_with(user)),
    }
}

/// The projects `user` may view, as a condition on the projects table.
pub fn viewable(user: &CurrentUser) -> Condition {
    visible(user, ProjectTab::All)
}

/// One page of the projects `user` may see in `query.tab`. `query.search` must be parsed.
pub async fn list(
    conn: &impl ConnectionTrait,
    user: &CurrentUser,
    query: &ProjectQuery,
    per_page: u64,
) -> Result<Page<ProjectSummary>, AppError> {
    let mut select = Projects::find().filter(visible(user, query.tab));
    if !query.archived {
        select = select.filter(Column::ArchivedAt.is_null());
    }
    if !query.search.is_empty() {
        let contains = || like_escaped("%", &query.search.to_lowercase(), "%");
        select = select.filter(
            Condition::any()
                .add(Expr::expr(Func::lower(Expr::col(Column::Name))).like(contains()))
                .add(Expr::col(Column::Slug).like(contains())),
        );
    }
    select = match query.sort {
        ProjectSort::Name => select
            .order_by(Expr::expr(Func::lower(Expr::col(Column::Name))), Order::Asc)
            .order_by_asc(Column::Id),
        ProjectSort::Updated => select
            .order_by_desc(Column::UpdatedAt)
            .order_by_desc(Column::Id),
        ProjectSort::Created => select.order_by_desc(Column::Id),
    };
    let page: Page<Project> = paginate(conn, select, query.page, per_page).await?;
    summaries(conn, page).await
}

/// Adds owner and group names to a page of projects, with one query each.
async fn summaries(
    conn: &impl ConnectionTrait,
    page: Page<Project>,
) -> Result<Page<ProjectSummary>, AppError> {
    let owner_ids: Vec<i64> = page.items.iter().map(|p| p.owner_id).collect();
    let group_ids: Vec<i64> = page.items.iter().filter_map(|p| p.group_id).collect();
    let owners: HashMap<i64, String> = Users::find()
        .select_only()
        .columns([UserColumn::Id, UserColumn::Username])
        .filter(UserColumn::Id.is_in(owner_ids))
        .into_tuple::<(i64, String)>()
        .all(conn)
        .await
        .map_err(db_error)?
        .into_iter()
        .collect();
    let groups: HashMap<i64, String> = Groups::find()
        .select_only()
        .columns([GroupColumn::Id, GroupColumn::Name])
        .filter(GroupColumn::Id.is_in(group_ids))
        .into_tuple::<(i64, String)>()
        .all(conn)
        .await
        .map_err(db_error)?
        .into_iter()
        .collect();
    let items = page
        .items
        .into_iter()
        .map(|project| ProjectSummary {
            group_permissions: project.group_permissions(),
            other_permissions: project.other_permissions(),
            owner: owners.get(&project.owner_id).cloned().unwrap_or_default(),
            group: project.group_id.and_then(|id| groups.get(&id).cloned()),
            archived: project.archived_at.is_some(),
            slug: project.slug,
            name: project.name,
            description: project.description,
            updated_at: project.updated_at,
        })
        .collect();
    Ok(Page {
        items,
        page: page.page,
        per_page: page.per_page,
        total: page.total,
    })
}
