//! User administration (administrators only).

use crate::error::AppError;
use crate::types::{Page, UserChange, UserId, UserView};
use leptos::prelude::*;

/// Users per page on the users page.
pub const USERS_PER_PAGE: u64 = 25;

/// One page of users whose username, display name or email contains `search`.
#[server(prefix = "/api", endpoint = "list_users")]
pub async fn list_users(search: String, page: u64) -> Result<Page<UserView>, AppError> {
    use crate::ssr::{policy::Action, request::authorized, users};
    authorized(Action::ManageUsers, |ctx, _| async move {
        let search = crate::domain::parse_search(&search)?;
        users::list(&ctx.state.db, &search, page, USERS_PER_PAGE).await
    })
    .await
}

#[server(prefix = "/api", endpoint = "create_user")]
pub async fn create_user(
    username: String,
    display_name: String,
    email: String,
    password: String,
    #[server(default)] is_admin: bool,
) -> Result<UserView, AppError> {
    use crate::ssr::{accounts, policy::Action, request::authorized};
    authorized(Action::ManageUsers, |ctx, _| async move {
        let input = accounts::NewAccount {
            username: &username,
            display_name: &display_name,
            email: &email,
            password: &password,
            is_admin,
        };
        accounts::create_user(&ctx.state.db, &ctx.actor(), input).await
    })
    .await
}

/// Disables, enables, promotes or demotes another user.
#[server(prefix = "/api", endpoint = "change_user")]
pub async fn change_user(id: UserId, change: UserChange) -> Result<UserView, AppError> {
    use crate::ssr::{accounts, policy::Action, request::authorized};
    authorized(Action::ManageUsers, |ctx, _| async move {
        accounts::change_user(&ctx.state.db, &ctx.actor(), id, change).await
    })
    .await
}

/// Sets another user's password; their sessions end.
#[server(prefix = "/api", endpoint = "reset_user_password")]
pub async fn reset_user_password(id: UserId, new_password: String) -> Result<(), AppError> {
    use crate::ssr::{accounts, policy::Action, request::authorized};
    authorized(Action::ManageUsers, |ctx, _| async move {
        accounts::reset_password(&ctx.state.db, &ctx.actor(), id, &new_password).await
    })
    .await
}
