//! Logging in and out, and turning a session into the current user.

use super::audit::{self, Actor, Event};
use super::request::RequestContext;
use super::session_store::USER_ID_KEY;
use super::state::AuthSettings;
use super::throttle::{self, Scope};
use super::{db_error, password, users};
use crate::domain::Username;
use crate::error::AppError;
use crate::ssr::begin_write;
use crate::types::{CurrentUser, UserId};
use chrono::Utc;
use sea_orm::DatabaseConnection;
use serde_json::json;
use std::net::SocketAddr;
use tower_sessions::Session;

/// Unix time of the login that made the session; bounds its absolute lifetime.
const AUTH_AT_KEY: &str = "auth_at";
/// Unix time the session was last extended; it is re-saved at most once a minute.
const SEEN_AT_KEY: &str = "seen_at";
const SEEN_RESOLUTION_SECS: i64 = 60;

pub const INVALID_LOGIN: &str = "Invalid username or password.";

fn session_error(error: tower_sessions::session::Error) -> AppError {
    tracing::error!(%error, "session store error");
    AppError::Internal
}

/// The client address: the TCP peer, or the last `X-Forwarded-For` hop when Kiln is told
/// it runs behind a reverse proxy.
pub fn client_addr(
    headers: &http::HeaderMap,
    peer: Option<SocketAddr>,
    trust_forwarded_for: bool,
) -> Option<String> {
    let forwarded = || {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|hop| !hop.is_empty())
            .map(|hop| hop.chars().take(64).collect())
    };
    trust_forwarded_for
        .then(forwarded)
        .flatten()
        .or_else(|| peer.map(|p| p.ip().to_string()))
}

/// The user this session belongs to, ending the session if it outlived its absolute
/// lifetime or its user was disabled or deleted.
pub async fn session_user(
    db: &DatabaseConnection,
    settings: &AuthSettings,
    session: &Session,
) -> Result<Option<CurrentUser>, AppError> {
    let Some(user_id) = session
        .get::<i64>(USER_ID_KEY)
        .await
        .map_err(session_error)?
    else {
        return Ok(None);
    };
    let now = Utc::now().timestamp();
    let auth_at = session
        .get::<i64>(AUTH_AT_KEY)
        .await
        .map_err(session_error)?
        .unwrap_or(0);
    let lifetime = i64::try_from(settings.lifetime.as_secs()).unwrap_or(i64::MAX);
    let user = match users::by_id(db, UserId(user_id)).await? {
        Some(user) if !user.is_disabled && now.saturating_sub(auth_at) <= lifetime => user,
        _ => {
            session.flush().await.map_err(session_error)?;
            return Ok(None);
        }
    };
    let seen_at = session
        .get::<i64>(SEEN_AT_KEY)
        .await
        .map_err(session_error)?
        .unwrap_or(0);
    if now.saturating_sub(seen_at) >= SEEN_RESOLUTION_SECS {
        // Marks the session modified, so it is saved with a fresh inactivity expiry.
        session
            .insert(SEEN_AT_KEY, now)
            .await
            .map_err(session_error)?;
    }
    Ok(Some(CurrentUser::from(&user)))
}

/// Checks the credentials, with throttling, and starts a new session for the user.
pub async fn login(
    ctx: &RequestContext,
    username: &str,
    password_text: &str,
) -> Result<CurrentUser, AppError> {
    let db = &ctx.state.db;
    let settings = &ctx.state.auth;
    let address = ctx
        .visitor
        .client_addr
        .clone()
        .unwrap_or_else(|| "unknown".into());
    if username.trim().is_empty() {
        return Err(AppError::invalid("username", "Username is required."));
    }
    if password_text.is_empty() {
        return Err(AppError::invalid("password", "Password is required."));
    }
    throttle::check(
        db,
        settings,
        &[(Scope::Account, username), (Scope::Address, &address)],
    )
    .await?;

    let user = match Username::parse(username) {
        Ok(name) => users::by_username(db, &name).await?,
        Err(_) => None,
    };
    // Over-long input is still verified (against the dummy hash) so it costs the same time.
    let candidate: String = password_text
        .chars()
        .take(crate::domain::PASSWORD_MAX + 1)
        .collect();
    let verified =
        password::verify(&candidate, user.as_ref().map(|u| u.password_hash.as_str())).await?;
    let actor = Actor::anonymous(Some(address.clone()));

    let user = match user {
        Some(user) if verified && !user.is_disabled => user,
        found => {
            let disabled = verified && found.as_ref().is_some_and(|u| u.is_disabled);
            let txn = begin_write(db).await?;
            throttle::record_failure(&txn, settings, Scope::Account, username).await?;
            throttle::record_failure(&txn, settings, Scope::Address, &address).await?;
            let name: String = username.trim().chars().take(64).collect();
            let event = Event::new(
                "login.failure",
                "user",
                found.as_ref().map(|u| u.id.to_string()),
                format!("Failed login for '{name}'"),
            )
            .details(json!({ "username": name, "reason": if disabled { "disabled" } else { "invalid credentials" } }));
            audit::record(&txn, &actor, event).await?;
            txn.commit().await.map_err(db_error)?;
            return Err(AppError::LoginFailed(
                if disabled {
                    "This account is disabled."
                } else {
                    INVALID_LOGIN
                }
                .into(),
            ));
        }
    };

    let current = CurrentUser::from(&user);
    let txn = begin_write(db).await?;
    throttle::clear(&txn, Scope::Account, username).await?;
    users::touch_login(&txn, current.id).await?;
    let event = Event::new(
        "login.success",
        "user",
        Some(current.id.to_string()),
        format!("{} logged in", current.username),
    );
    audit::record(&txn, &Actor::user(&current, Some(address)), event).await?;
    txn.commit().await.map_err(db_error)?;

    let session = ctx.session()?;
    session.cycle_id().await.map_err(session_error)?;
    let now = Utc::now().timestamp();
    session
        .insert(USER_ID_KEY, current.id.0)
        .await
        .map_err(session_error)?;
    session
        .insert(AUTH_AT_KEY, now)
        .await
        .map_err(session_error)?;
    session
        .insert(SEEN_AT_KEY, now)
        .await
        .map_err(session_error)?;
    Ok(current)
}

/// Ends the current session on the server.
pub async fn logout(ctx: &RequestContext) -> Result<(), AppError> {
    if let Some(user) = &ctx.visitor.user {
        let event = Event::new(
            "logout",
            "user",
            Some(user.id.to_string()),
            format!("{} logged out", user.username),
        );
        audit::record(&ctx.state.db, &ctx.actor(), event).await?;
    }
    ctx.session()?.flush().await.map_err(session_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(forwarded: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            forwarded.parse().unwrap_or_else(|e| panic!("{e}")),
        );
        headers
    }

    #[test]
    fn forwarded_for_is_used_only_when_trusted() {
        let peer = Some(SocketAddr::from(([10, 0, 0, 1], 4000)));
        let hdrs = headers("203.0.113.9, 198.51.100.7");
        assert_eq!(client_addr(&hdrs, peer, false).as_deref(), Some("10.0.0.1"));
        assert_eq!(
            client_addr(&hdrs, peer, true).as_deref(),
            Some("198.51.100.7")
        );
        assert_eq!(
            client_addr(&http::HeaderMap::new(), peer, true).as_deref(),
            Some("10.0.0.1")
        );
    }
}
