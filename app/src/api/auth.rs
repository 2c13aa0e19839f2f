//! Logging in and out, and who is logged in.

use crate::error::AppError;
use crate::types::CurrentUser;
use leptos::prelude::*;

/// Logs in; answers where to go next (`next` if it is a path on this site, else `/`).
///
/// The browser navigates with a full page load, so every part of the page sees the new session.
#[server(prefix = "/api", endpoint = "login")]
pub async fn login(username: String, password: String, next: String) -> Result<String, AppError> {
    use crate::ssr::{auth, request::serve_anyone};
    serve_anyone(|ctx| async move {
        auth::login(&ctx, &username, &password).await?;
        Ok(crate::domain::safe_next(&next))
    })
    .await
}

/// Ends the session on the server.
#[server(prefix = "/api", endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    use crate::ssr::{auth, request::serve_anyone};
    serve_anyone(|ctx| async move { auth::logout(&ctx).await }).await
}

/// The logged-in user, or `None` for an anonymous visitor.
#[server(prefix = "/api", endpoint = "whoami")]
pub async fn whoami() -> Result<Option<CurrentUser>, AppError> {
    use crate::ssr::request::serve_anyone;
    serve_anyone(|ctx| async move { Ok(ctx.visitor.user) }).await
}
