//! What a server function knows about the request it serves: the state, the visitor and the
//! session; and how its result becomes an HTTP status.

use super::audit::{self, Actor, Event};
use super::policy::{self, Action};
use super::state::AppState;
use crate::error::AppError;
use crate::types::CurrentUser;
use leptos::prelude::use_context;
use tower_sessions::Session;

/// Who is asking, as resolved by the session middleware and stored in request extensions.
#[derive(Debug, Clone, Default)]
pub struct Visitor {
    pub user: Option<CurrentUser>,
    pub client_addr: Option<String>,
}

pub struct RequestContext {
    pub state: AppState,
    pub visitor: Visitor,
    pub session: Option<Session>,
}

impl RequestContext {
    /// The context of the request being served (a page render or a server function call).
    pub fn current() -> Result<Self, AppError> {
        let state = use_context::<AppState>().ok_or_else(|| {
            tracing::error!("AppState missing from the Leptos context");
            AppError::Internal
        })?;
        let parts = use_context::<http::request::Parts>();
        let extension = |parts: &http::request::Parts| {
            (
                parts.extensions.get::<Visitor>().cloned(),
                parts.extensions.get::<Session>().cloned(),
            )
        };
        let (visitor, session) = parts.as_ref().map(extension).unwrap_or_default();
        Ok(Self {
            state,
            visitor: visitor.unwrap_or_default(),
            session,
        })
    }

    pub fn actor(&self) -> Actor {
        match &self.visitor.user {
            Some(user) => Actor::user(user, self.visitor.client_addr.clone()),
            None => Actor::anonymous(self.visitor.client_addr.clone()),
        }
    }

    /// The user, if the policy lets them do `action`. A denial to a logged-in user is audited.
    pub async fn authorize(&self, action: Action) -> Result<&CurrentUser, AppError> {
        let Some(user) = self.visitor.user.as_ref() else {
            return Err(AppError::Unauthenticated);
        };
        if policy::can(Some(user), action) {
            return Ok(user);
        }
        let event = Event::new(
            "access.denied",
            "action",
            Some(action.name().to_owned()),
            format!("{} was refused {}", user.username, action.name()),
        );
        audit::record(&self.state.db, &self.actor(), event).await?;
        Err(AppError::Forbidden)
    }

    pub fn session(&self) -> Result<&Session, AppError> {
        self.session.as_ref().ok_or_else(|| {
            tracing::error!("no session layer in front of a server function");
            AppError::Internal
        })
    }
}

/// Runs a server function's body with the request's context, and gives the response the
/// status of its result.
pub async fn serve<T, Fut>(body: impl FnOnce(RequestContext) -> Fut) -> Result<T, AppError>
where
    Fut: Future<Output = Result<T, AppError>>,
{
    let result = match RequestContext::current() {
        Ok(ctx) => body(ctx).await,
        Err(error) => Err(error),
    };
    respond(result)
}

/// Like [`serve`], for a body that needs `action`: only a user the policy allows it gets there.
pub async fn authorized<T, Fut>(
    action: Action,
    body: impl FnOnce(RequestContext, CurrentUser) -> Fut,
) -> Result<T, AppError>
where
    Fut: Future<Output = Result<T, AppError>>,
{
    serve(move |ctx| async move {
        let user = ctx.authorize(action).await?.clone();
        body(ctx, user).await
    })
    .await
}

/// Sets the HTTP status of the response from `result` and passes it on: every server
/// function ends with this, so errors reach the client as 4xx/5xx with their message.
pub fn respond<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    if let Err(error) = &result {
        set_error_status(error);
    }
    result
}

/// Gives the response being built the status (and `Retry-After`) that `error` calls for.
pub fn set_error_status(error: &AppError) {
    let Some(options) = use_context::<leptos_axum::ResponseOptions>() else {
        return;
    };
    let status = http::StatusCode::from_u16(error.status())
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    options.set_status(status);
    if let AppError::TooManyRequests { retry_after_secs } = error {
        options.insert_header(
            http::header::RETRY_AFTER,
            http::HeaderValue::from(*retry_after_secs),
        );
    }
}
