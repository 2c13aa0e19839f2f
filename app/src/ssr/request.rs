//! What a server function knows about the request it serves: the state, the visitor and the
//! session; and how its result becomes an HTTP status.

use super::audit::{self, Actor, Event};
use super::policy::{self, Action, Object};
use super::state::AppState;
use crate::error::AppError;
use crate::types::CurrentUser;
use leptos::prelude::use_context;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tower_sessions::Session;

/// Who is asking, as resolved by the session middleware and stored in request extensions.
#[derive(Debug, Clone, Default)]
pub struct Visitor {
    pub user: Option<CurrentUser>,
    pub client_addr: Option<String>,
    pub denials: RecordedDenials,
}

/// The refusals already recorded while serving one request. Rendering a page may ask the
/// same question more than once (suspended views are resolved in a dry pass first); one
/// refusal is still one audit row.
#[derive(Debug, Clone, Default)]
pub struct RecordedDenials(Arc<Mutex<HashSet<String>>>);

impl RecordedDenials {
    /// Whether `key` is new for this request, remembering it.
    fn first(&self, key: String) -> bool {
        match self.0.lock() {
            Ok(mut seen) => seen.insert(key),
            Err(_) => true,
        }
    }
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

    /// The user, if the policy lets them do `action` on Kiln as a whole. A denial to a
    /// logged-in user is audited.
    pub async fn authorize(&self, action: Action) -> Result<&CurrentUser, AppError> {
        let Some(user) = self.visitor.user.as_ref() else {
            return Err(AppError::Unauthenticated);
        };
        if policy::can(Some(user), Object::Instance, action) {
            return Ok(user);
        }
        self.record_denial(action, "action", action.name()).await?;
        Err(AppError::Forbidden)
    }

    /// The user, if the policy lets them do `action` to `object` (audited as `object_type`
    /// `object_id`). An object they may not `see` answers 404, as if it did not exist; a
    /// visible one with the permission missing answers 403; no session answers 401. Every
    /// refusal is audited, anonymous ones included.
    pub async fn authorize_on(
        &self,
        object: Object,
        see: Action,
        action: Action,
        object_type: &str,
        object_id: &str,
    ) -> Result<&CurrentUser, AppError> {
        let user = self.visitor.user.as_ref();
        if let Some(user) = user.filter(|user| policy::can(Some(user), object, action)) {
            return Ok(user);
        }
        self.record_denial(action, object_type, object_id).await?;
        Err(match user {
            None => AppError::Unauthenticated,
            Some(_) if !policy::can(user, object, see) => AppError::NotFound,
            Some(_) => AppError::Forbidden,
        })
    }

    /// Records that the visitor was refused `action` on an object.
    pub async fn record_denial(
        &self,
        action: Action,
        object_type: &str,
        object_id: &str,
    ) -> Result<(), AppError> {
        let key = format!("{}:{object_type}:{object_id}", action.name());
        if !self.visitor.denials.first(key) {
            return Ok(());
        }
        let actor = self.actor();
        let mut summary = format!("{} was refused {}", actor.name, action.name());
        if object_type != "action" {
            summary.push_str(&format!(" on {object_type} {object_id}"));
        }
        let event = Event::new(
            "access.denied",
            object_type,
            Some(object_id.to_owned()),
            summary,
        )
        .details(serde_json::json!({ "action": action.name() }));
        audit::record(&self.state.db, &actor, event).await
    }

    /// Records that a visitor without a session was refused the request, naming its path
    /// (nothing it asked for is looked up), and gives the 401 to answer.
    async fn refuse_anonymous(&self) -> AppError {
        let path = use_context::<http::request::Parts>()
            .map(|parts| parts.uri.path().to_owned())
            .unwrap_or_default();
        match self.record_denial(Action::UseKiln, "request", &path).await {
            Ok(()) => AppError::Unauthenticated,
            Err(error) => error,
        }
    }

    pub fn session(&self) -> Result<&Session, AppError> {
        self.session.as_ref().ok_or_else(|| {
            tracing::error!("no session layer in front of a server function");
            AppError::Internal
        })
    }
}

/// Runs a server function's body with the request's context, and gives the response the
/// status of its result. A visitor without a session is refused with 401 before the body
/// runs, so nothing it would look up or check can tell an anonymous caller anything.
pub async fn serve<T, Fut>(body: impl FnOnce(RequestContext) -> Fut) -> Result<T, AppError>
where
    Fut: Future<Output = Result<T, AppError>>,
{
    let result = match RequestContext::current() {
        Ok(ctx) if ctx.visitor.user.is_none() => Err(ctx.refuse_anonymous().await),
        Ok(ctx) => body(ctx).await,
        Err(error) => Err(error),
    };
    respond(result)
}

/// Like [`serve`], for the few server functions meant for visitors without a session too:
/// logging in, logging out and asking who is logged in.
pub async fn serve_anyone<T, Fut>(body: impl FnOnce(RequestContext) -> Fut) -> Result<T, AppError>
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
        error.set_response_status();
    }
    result
}
