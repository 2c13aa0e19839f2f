//! `POST /hooks/ID`: a webhook trigger's URL. The call is authenticated by its signature
//! alone (no session, no same-origin check), limited to 1 MiB, and answered with the
//! process it started.

use std::net::SocketAddr;

use app::ssr::auth::client_addr;
use app::ssr::state::AppState;
use app::ssr::triggers::{self, CallFailure, webhook};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn refusal(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

pub async fn call(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return refusal(StatusCode::NOT_FOUND, "There is no such webhook.");
    };
    let addr = client_addr(&headers, Some(peer), state.auth.trust_forwarded_for);
    let outcome = triggers::call(
        &state,
        id,
        header(&headers, webhook::SIGNATURE_HEADER),
        header(&headers, webhook::TOKEN_HEADER),
        &body,
        addr,
    )
    .await;
    match outcome {
        Ok(process) => {
            state.engine.wake();
            (
                StatusCode::ACCEPTED,
                Json(json!({ "process": process, "url": format!("/processes/{process}") })),
            )
                .into_response()
        }
        Err(CallFailure::Unknown) => refusal(StatusCode::NOT_FOUND, "There is no such webhook."),
        Err(CallFailure::Refused(why)) => refusal(StatusCode::UNAUTHORIZED, why.message()),
        Err(CallFailure::Disabled) => refusal(StatusCode::CONFLICT, "This trigger is disabled."),
        Err(CallFailure::BadPayload(message)) => refusal(StatusCode::BAD_REQUEST, &message),
        Err(CallFailure::NotLaunched(message)) => {
            refusal(StatusCode::UNPROCESSABLE_ENTITY, &message)
        }
        Err(CallFailure::Internal) => refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Kiln could not handle the call; the error has been logged.",
        ),
    }
}
