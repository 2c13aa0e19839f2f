//! The frame every signed-in page lives in: top bar, navigation, user menu.

use super::status::ErrorPage;
use crate::api::auth::{Logout, whoami};
use crate::error::AppError;
use crate::types::CurrentUser;
use leptos::prelude::*;
use leptos_router::components::{A, Outlet};
use leptos_router::hooks::use_location;

/// The logged-in user, loaded once by the layout for every page under it.
#[derive(Clone, Copy)]
pub struct SessionUser(pub Resource<Result<Option<CurrentUser>, AppError>>);

/// The top bar waits for the user; the page does not wait inside it. A page built inside
/// the top bar's suspended view would be built (and its data loaded) once per rendering
/// pass on the server.
#[component]
pub fn Layout() -> impl IntoView {
    let user = Resource::new(|| (), |_| whoami());
    provide_context(SessionUser(user));
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match user.await {
                    Ok(Some(user)) => view! { <TopBar user /> }.into_any(),
                    Ok(None) => view! { <ErrorPage error=AppError::Unauthenticated /> }.into_any(),
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                }
            })}
        </Suspense>
        <main class="content">
            <Outlet />
        </main>
    }
}

#[component]
fn TopBar(user: CurrentUser) -> impl IntoView {
    let is_admin = user.is_admin;
    let name = user.display_name.clone();
    let location = use_location();
    let in_admin = move || location.pathname.get().starts_with("/admin/");
    let logout = ServerAction::<Logout>::new();
    Effect::new(move || {
        if matches!(logout.value().get(), Some(Ok(()))) {
            let _ = window().location().set_href("/login");
        }
    });
    view! {
        <header class="topbar">
            <a class="brand" href="/">"Kiln"</a>
            <nav class="mainnav" aria-label="Main">
                <A href="/" exact=true>"Dashboard"</A>
                <A href="/projects">"Projects"</A>
                <A href="/builds">"Builds"</A>
                <A href="/processes">"Processes"</A>
                <A href="/inbox">"Inbox"</A>
                <A href="/workers">"Workers"</A>
                <Show when=move || is_admin>
                    // Current on every administration page, not only the first tab.
                    <a href="/admin/users" aria-current=move || in_admin().then_some("page")>"Admin"</a>
                </Show>
            </nav>
            <details class="usermenu">
                <summary aria-label="User menu">{name}</summary>
                <div class="usermenu-items">
                    <a href="/profile">"Profile"</a>
                    <ActionForm action=logout>
                        <button type="submit" class="link-button">"Log out"</button>
                    </ActionForm>
                </div>
            </details>
        </header>
    }
}

/// The heading and tabs of the administration pages, shown only to those allowed in.
#[component]
pub fn AdminTabs() -> impl IntoView {
    view! {
        <h1>"Administration"</h1>
        <nav class="tabs" aria-label="Administration">
            <A href="/admin/users">"Users"</A>
            <A href="/admin/groups">"Groups"</A>
            <A href="/admin/infrastructure">"Infrastructure"</A>
            <A href="/admin/audit">"Audit log"</A>
        </nav>
    }
}
