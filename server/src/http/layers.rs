//! HTTP layers in front of every route: the visitor's session, same-origin checks for
//! state changes, security headers, and request logging.

use app::domain::safe_next;
use app::ssr::auth::{client_addr, session_user};
use app::ssr::csp::STRICT_POLICY;
use app::ssr::request::Visitor;
use app::ssr::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use std::net::SocketAddr;
use std::sync::Arc;
use tower_sessions::Session;

/// Paths a visitor may see without logging in (static files and health checks are routed
/// outside these layers altogether; server functions check for themselves).
fn is_public(path: &str) -> bool {
    path == "/login" || path == "/ws" || path.starts_with("/api/")
}

/// Resolves the session into a [`Visitor`] for the handlers, and sends anonymous page
/// visits to the login page (and logged-in visits of the login page onwards).
pub async fn resolve_visitor(
    State(state): State<AppState>,
    session: Session,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let addr = client_addr(request.headers(), peer, state.auth.trust_forwarded_for);
    let user = match session_user(&state.db, &state.auth, &session).await {
        Ok(user) => user,
        Err(_) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Kiln could not read the session.",
            )
                .into_response();
        }
    };
    let path = request.uri().path().to_owned();
    let is_page_view = request.method() == Method::GET || request.method() == Method::HEAD;
    if is_page_view && user.is_none() && !is_public(&path) {
        let target = request
            .uri()
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or("/");
        let location = if target == "/" {
            "/login".to_owned()
        } else {
            format!("/login?next={}", app::url::encode_component(target))
        };
        return Redirect::to(&location).into_response();
    }
    if is_page_view && user.is_some() && path == "/login" {
        let next = request
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("next=")))
            .map(app::url::decode_component)
            .unwrap_or_default();
        return Redirect::to(&safe_next(&next)).into_response();
    }
    request.extensions_mut().insert(Visitor {
        user,
        client_addr: addr,
        denials: Default::default(),
    });
    next.run(request).await
}

/// Which origins may change state.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    /// The configured public origin; without one, a request's origin must match its Host.
    pub public_origin: Option<String>,
}

impl OriginPolicy {
    pub fn allows(&self, origin: &str, headers: &HeaderMap) -> bool {
        let Some(origin) = crate::config::origin_of(origin) else {
            return false;
        };
        match &self.public_origin {
            Some(own) => &origin == own,
            None => {
                let host = headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let authority = origin.split_once("://").map(|(_, a)| a).unwrap_or_default();
                let host = host.strip_suffix(":80").unwrap_or(&host);
                !host.is_empty() && authority == host
            }
        }
    }
}

/// Refuses (403) any state-changing request whose `Origin`, or failing that `Referer`, is
/// not Kiln's own. A request with neither is refused too: browsers always send one.
pub async fn same_origin(
    State(policy): State<Arc<OriginPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if safe {
        return next.run(request).await;
    }
    let headers = request.headers();
    let claimed = headers
        .get(header::ORIGIN)
        .filter(|o| o.as_bytes() != b"null")
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    match claimed {
        Some(origin) if policy.allows(origin, headers) => next.run(request).await,
        _ => {
            tracing::warn!(path = %request.uri().path(), origin = ?claimed, "cross-origin request refused");
            (StatusCode::FORBIDDEN, "Cross-origin request refused.").into_response()
        }
    }
}

/// Headers every response carries; pages set their own nonce-based CSP, everything else
/// gets the strict one. Responses are not cached unless a handler says otherwise.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(STRICT_POLICY));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn origin_must_match_host_without_public_url() {
        let policy = OriginPolicy {
            public_origin: None,
        };
        assert!(policy.allows("http://127.0.0.1:3000", &host("127.0.0.1:3000")));
        assert!(policy.allows("http://127.0.0.1:3000/login?x", &host("127.0.0.1:3000")));
        assert!(!policy.allows("http://evil.example", &host("127.0.0.1:3000")));
        assert!(!policy.allows("http://127.0.0.1:3001", &host("127.0.0.1:3000")));
        assert!(!policy.allows("null", &host("127.0.0.1:3000")));
    }

    #[test]
    fn origin_must_match_public_url_when_set() {
        let policy = OriginPolicy {
            public_origin: Some("https://kiln.example.com".into()),
        };
        assert!(policy.allows("https://kiln.example.com", &host("internal:3000")));
        assert!(!policy.allows("http://kiln.example.com", &host("kiln.example.com")));
    }
}
