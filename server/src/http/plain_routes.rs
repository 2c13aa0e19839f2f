//! What the routes served outside Leptos (downloads, exports, uploads) share: a request
//! context without a session, and an error as the response that names it.

use app::error::AppError;
use app::ssr::request::{RequestContext, Visitor};
use app::ssr::state::AppState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// The context of a plain request: its visitor, from the session layer, and no session
/// of its own to change.
pub(crate) fn context(state: AppState, visitor: Visitor) -> RequestContext {
    RequestContext {
        state,
        visitor,
        session: None,
    }
}

/// `error` as a response: its status, and its message as plain text.
pub(crate) fn error_response(error: &AppError) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, error.to_string()).into_response()
}
