//! The Content-Security-Policy of rendered pages: only Kiln's own scripts, the inline
//! hydration script admitted by a per-response nonce.

use leptos::prelude::*;

/// The policy for responses that carry no page script (static files, JSON, errors).
pub const STRICT_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn page_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// Makes a nonce for this render (Leptos puts it on its inline scripts) and sets the header.
pub fn provide_nonce_and_policy() {
    leptos::nonce::provide_nonce();
    let (Some(nonce), Some(options)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    if let Ok(value) = http::HeaderValue::from_str(&page_policy(&nonce)) {
        options.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}
