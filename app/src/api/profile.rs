//! The logged-in user's own profile and password.

use crate::error::AppError;
use crate::types::UserView;
use leptos::prelude::*;

#[server(prefix = "/api", endpoint = "my_profile")]
pub async fn my_profile() -> Result<UserView, AppError> {
    use crate::ssr::{policy::Action, request::authorized, users};
    authorized(Action::EditOwnProfile, |ctx, user| async move {
        let found = users::by_id(&ctx.state.db, user.id).await?;
        found.map(UserView::from).ok_or(AppError::NotFound)
    })
    .await
}

#[server(prefix = "/api", endpoint = "update_profile")]
pub async fn update_profile(display_name: String, email: String) -> Result<UserView, AppError> {
    use crate::ssr::{accounts, policy::Action, request::authorized};
    authorized(Action::EditOwnProfile, |ctx, user| async move {
        accounts::update_profile(&ctx.state.db, &ctx.actor(), &user, &display_name, &email).await
    })
    .await
}

/// Changes the user's own password; every session of theirs ends, this one included.
#[server(prefix = "/api", endpoint = "change_password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
    confirm_password: String,
) -> Result<(), AppError> {
    use crate::ssr::{accounts, policy::Action, request::authorized};
    authorized(Action::EditOwnProfile, |ctx, user| async move {
        if new_password != confirm_password {
            return Err(AppError::invalid(
                "confirm_password",
                "The two new passwords do not match.",
            ));
        }
        let actor = ctx.actor();
        accounts::change_own_password(
            &ctx.state.db,
            &actor,
            &user,
            &current_password,
            &new_password,
        )
        .await
    })
    .await
}
