//! The logged-in user's own profile and password.

use crate::error::AppError;
use crate::types::UserView;
use leptos::prelude::*;

#[server(prefix = "/api", endpoint = "my_profile")]
pub async fn my_profile() -> Result<UserView, AppError> {
    use crate::ssr::{
        policy::Action,
        request::{RequestContext, respond},
        users,
    };
    respond(
        async {
            let ctx = RequestContext::current()?;
            let user = ctx.authorize(Action::EditOwnProfile).await?;
            users::by_id(&ctx.state.db, user.id)
                .await?
                .map(UserView::from)
                .ok_or(AppError::NotFound)
        }
        .await,
    )
}

#[server(prefix = "/api", endpoint = "update_profile")]
pub async fn update_profile(display_name: String, email: String) -> Result<UserView, AppError> {
    use crate::ssr::{
        accounts,
        policy::Action,
        request::{RequestContext, respond},
    };
    respond(
        async {
            let ctx = RequestContext::current()?;
            let user = ctx.authorize(Action::EditOwnProfile).await?;
            accounts::update_profile(&ctx.state.db, &ctx.actor(), user, &display_name, &email).await
        }
        .await,
    )
}

/// Changes the user's own password; every session of theirs ends, this one included.
#[server(prefix = "/api", endpoint = "change_password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
    confirm_password: String,
) -> Result<(), AppError> {
    use crate::ssr::{
        accounts,
        policy::Action,
        request::{RequestContext, respond},
    };
    respond(
        async {
            let ctx = RequestContext::current()?;
            let user = ctx.authorize(Action::EditOwnProfile).await?;
            if new_password != confirm_password {
                return Err(AppError::invalid(
                    "confirm_password",
                    "The two new passwords do not match.",
                ));
            }
            accounts::change_own_password(
                &ctx.state.db,
                &ctx.actor(),
                user,
                &current_password,
                &new_password,
            )
            .await
        }
        .await,
    )
}
