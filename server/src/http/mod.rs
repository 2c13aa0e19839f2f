//! Kiln over HTTP: the router, the layers in front of every route, and the routes served
//! outside Leptos (the worker and live sockets, downloads, uploads, webhooks, probes).

pub mod artifacts;
pub mod audit_export;
pub mod build_log;
pub mod health;
pub mod layers;
pub mod live_socket;
pub mod plain_routes;
pub mod project_transfer;
pub mod webhook;
pub mod worker_socket;

use crate::config::Settings;
use app::ssr::session_store::DbSessionStore;
use app::ssr::state::AppState;
use app::ssr::triggers;
use app::{App, shell};
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::{Extension, Router};
use leptos_axum::{AxumRouteListing, LeptosRoutes, generate_route_list};
use std::sync::{Arc, LazyLock};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use tracing::Level;

/// The application's page routes, generated once per process.
///
/// Generating them renders the app with resource loading suppressed through a flag that is
/// global to the process: a page rendered by another server in the same process at that
/// moment would wait forever for its data. Generating once, before any server serves,
/// rules that out.
fn page_routes() -> Vec<AxumRouteListing> {
    static ROUTES: LazyLock<Vec<AxumRouteListing>> = LazyLock::new(|| generate_route_list(App));
    ROUTES.clone()
}

pub(crate) fn router(state: AppState, settings: &Settings) -> Router {
    let idle =
        time::Duration::try_from(settings.auth.idle_timeout).unwrap_or(time::Duration::hours(8));
    let sessions = SessionManagerLayer::new(DbSessionStore::new(state.db.clone()))
        .with_name("kiln_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(settings.secure_cookies())
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(idle));

    let context = {
        let state = state.clone();
        move || leptos::prelude::provide_context(state.clone())
    };
    let options = state.leptos_options.clone();
    let origin_policy = Arc::new(layers::OriginPolicy {
        public_origin: settings.public_origin.clone(),
    });
    let pages = Router::new()
        .route("/ws", get(live_socket::upgrade))
        .route("/admin/audit/export", get(audit_export::export))
        .route("/export/{slug}", get(project_transfer::export))
        .route(
            "/projects/{slug}/builds/{number}/artifacts/{id}",
            get(artifacts::download),
        )
        .route(
            "/projects/{slug}/builds/{number}/build.log",
            get(build_log::download),
        )
        .route("/import-project", post(project_transfer::import))
        .leptos_routes_with_context(&state, page_routes(), context.clone(), move || {
            shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, shell))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            layers::resolve_visitor,
        ))
        .layer(sessions)
        .layer(Extension(origin_policy.clone()));

    let site_root = &settings.site_root;
    let assets = Router::new()
        .nest_service("/pkg", ServeDir::new(site_root.join("pkg")))
        .route_service(
            "/favicon.svg",
            ServeFile::new(site_root.join("favicon.svg")),
        )
        .route("/worker", get(worker_socket::upgrade))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));

    // Webhook calls come from other sites by design; their signature is what they prove.
    let hooks = Router::new()
        .route("/hooks/{id}", post(webhook::call))
        .layer(DefaultBodyLimit::max(triggers::webhook::MAX_PAYLOAD_BYTES));
    // Workers upload with their token, from no page at all; the body is streamed to disk.
    let uploads = Router::new()
        .route(
            "/worker/artifacts/{workitem}/{attempt}",
            put(artifacts::upload),
        )
        .layer(DefaultBodyLimit::disable());
    assets
        .merge(pages)
        .layer(axum::middleware::from_fn_with_state(origin_policy, layers::same_origin))
        .merge(hooks)
        .merge(uploads)
        .layer(axum::middleware::from_fn(layers::security_headers))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &axum::extract::Request| {
                    tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(state)
}
