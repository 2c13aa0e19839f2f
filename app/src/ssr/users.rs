//! User repository: queries over the `users` table, on the pool or inside a transaction.

use super::entities::users::{self, Column, Entity as Users};
use super::{db_error, like_escaped, paginate};
use crate::domain::{DisplayName, Email, Username};
use crate::error::AppError;
use crate::types::{CurrentUser, Page, UserId, UserView};
use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, SqlErr,
};

pub use super::entities::users::Model as User;

impl From<&User> for CurrentUser {
    fn from(user: &User) -> Self {
        Self {
            id: UserId(user.id),
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            email: user.email.clone(),
            is_admin: user.is_admin,
        }
    }
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
            id: UserId(user.id),
            username: user.username,
            display_name: user.display_name,
            email: user.email,
            is_admin: user.is_admin,
            is_disabled: user.is_disabled,
            created_at: user.created_at,
            last_login_at: user.last_login_at,
        }
    }
}

/// A validated account to insert.
pub struct NewUser {
    pub username: Username,
    pub display_name: DisplayName,
    pub email: Email,
    pub password_hash: String,
    pub is_admin: bool,
}

pub async fn by_id(conn: &impl ConnectionTrait, id: UserId) -> Result<Option<User>, AppError> {
    Users::find_by_id(id.0).one(conn).await.map_err(db_error)
}

pub async fn by_username(
    conn: &impl ConnectionTrait,
    username: &Username,
) -> Result<Option<User>, AppError> {
    Users::find()
        .filter(Column::Username.eq(username.as_str()))
        .one(conn)
        .await
        .map_err(db_error)
}

pub async fn count(conn: &impl ConnectionTrait) -> Result<u64, AppError> {
    Users::find().count(conn).await.map_err(db_error)
}

/// Inserts a user; a taken username is a conflict on the `username` field.
pub async fn insert(conn: &impl ConnectionTrait, new: NewUser) -> Result<User, AppError> {
    let now = Utc::now();
    let result = users::ActiveModel {
        username: Set(new.username.as_str().to_owned()),
        display_name: Set(new.display_name.as_str().to_owned()),
        email: Set(new.email.into_inner()),
        password_hash: Set(new.password_hash),
        is_admin: Set(new.is_admin),
        is_disabled: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        last_login_at: Set(None),
        ..Default::default()
    }
    .insert(conn)
    .await;
    match result {
        Ok(user) => Ok(user),
        Err(error) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Err(AppError::conflict(
                "username",
                format!("The username '{}' is taken.", new.username),
            ))
        }
        Err(error) => Err(db_error(error)),
    }
}

/// Writes the changed columns of `user`, stamping `updated_at`.
pub async fn update(
    conn: &impl ConnectionTrait,
    mut user: users::ActiveModel,
) -> Result<User, AppError> {
    user.updated_at = Set(Utc::now());
    user.update(conn).await.map_err(db_error)
}

pub async fn touch_login(conn: &impl ConnectionTrait, id: UserId) -> Result<(), AppError> {
    Users::update_many()
        .col_expr(Column::LastLoginAt, Expr::value(Utc::now()))
        .filter(Column::Id.eq(id.0))
        .exec(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// One page of users whose username, display name or email contains `search`
/// (case-insensitive), ordered by username. `page` is 1-based and clamped to the last page.
pub async fn list(
    conn: &impl ConnectionTrait,
    search: &str,
    page: u64,
    per_page: u64,
) -> Result<Page<UserView>, AppError> {
    let mut query = Users::find().order_by_asc(Column::Username);
    if !search.is_empty() {
        let lower = |column: Column| Expr::expr(Func::lower(Expr::col(column)));
        let contains = || like_escaped("%", &search.to_lowercase(), "%");
        query = query.filter(
            lower(Column::Username)
                .like(contains())
                .or(lower(Column::DisplayName).like(contains()))
                .or(lower(Column::Email).like(contains())),
        );
    }
    paginate(conn, query, page, per_page).await
}

/// Active administrators other than `except`.
pub async fn count_other_active_admins(
    conn: &impl ConnectionTrait,
    except: UserId,
) -> Result<u64, AppError> {
    Users::find()
        .filter(Column::IsAdmin.eq(true))
        .filter(Column::IsDisabled.eq(false))
        .filter(Column::Id.ne(except.0))
        .count(conn)
        .await
        .map_err(db_error)
}
