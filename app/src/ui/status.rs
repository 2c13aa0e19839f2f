//! Pages for "not found", "forbidden" and unexpected errors, with their HTTP status.

use crate::error::AppError;
use leptos::prelude::*;
use leptos_meta::Title;

/// Sets the status of the page being rendered on the server; nothing in the browser.
pub fn set_status(code: u16) {
    #[cfg(feature = "ssr")]
    if let (Some(options), Ok(status)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        http::StatusCode::from_u16(code),
    ) {
        options.set_status(status);
    }
    #[cfg(not(feature = "ssr"))]
    let _ = code;
}

#[component]
pub fn NotFound() -> impl IntoView {
    set_status(404);
    view! {
        <Title text="Not found" />
        <section class="status-page">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address, or you are not allowed to see it."</p>
            <a href="/">"Go to the dashboard"</a>
        </section>
    }
}

#[component]
pub fn Forbidden() -> impl IntoView {
    set_status(403);
    view! {
        <Title text="Forbidden" />
        <section class="status-page">
            <h1>"Forbidden"</h1>
            <p>"You do not have permission to see this page. Ask an administrator if you need access."</p>
            <a href="/">"Go to the dashboard"</a>
        </section>
    }
}

/// A full-page view of an error from a server function.
#[component]
pub fn ErrorPage(error: AppError) -> impl IntoView {
    match error {
        AppError::Forbidden => view! { <Forbidden /> }.into_any(),
        AppError::NotFound => view! { <NotFound /> }.into_any(),
        AppError::Unauthenticated => view! { <SignedOut /> }.into_any(),
        other => {
            set_status(other.status());
            view! {
                <Title text="Error" />
                <section class="status-page">
                    <h1>"Something went wrong"</h1>
                    <p role="alert">{other.to_string()}</p>
                </section>
            }
            .into_any()
        }
    }
}

/// Shown when the session ended while the page was open.
#[component]
pub fn SignedOut() -> impl IntoView {
    set_status(401);
    view! {
        <Title text="Logged out" />
        <section class="status-page">
            <h1>"Your session has ended"</h1>
            <p>"Log in again to continue."</p>
            <a rel="external" href="/login">"Log in"</a>
        </section>
    }
}
