//! Pages and components, and the HTML shell the server renders them into.
//!
//! One rule keeps server rendering and hydration in step. Each resource and each
//! `<Suspense>`/`<Transition>` takes the next number of the page's hydration counter, and the
//! browser finds a resource's data by that number. While the server waits for a suspended
//! view it may build a `Suspend`'s view more than once, the browser builds it once; a view
//! built there that makes resources or boundaries of its own would shift every number after
//! it. So a `Suspend` that builds such components returns them in an `Unsuspend`, which
//! builds them once, when the view is really rendered.

mod admin_audit;
mod admin_groups;
mod admin_infrastructure;
mod admin_users;
mod all_builds;
mod build_log;
mod builds;
mod forms;
mod group;
mod inbox;
mod layout;
mod live;
mod login;
mod pagination;
mod placeholders;
mod processes;
mod profile;
mod project;
mod project_configuration;
mod project_import;
mod projects;
mod raw_text;
pub mod status;
mod triggers;
mod workers;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{SsrMode, path};

/// The HTML document around the app. On the server it also sets the Content-Security-Policy
/// with a fresh nonce, so only Kiln's own hydration script runs.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    crate::ssr::csp::provide_nonce_and_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="kiln" href="/pkg/kiln.css" />
        <Title formatter=|page: String| raw_text::escaped(if page.is_empty() { "Kiln".to_owned() } else { format!("{page} · Kiln") }) />
        <Router>
            <Routes fallback=status::NotFound>
                <Route path=path!("/login") view=login::LoginPage ssr=SsrMode::Async />
                <ParentRoute path=path!("") view=layout::Layout ssr=SsrMode::Async>
                    <Route path=path!("") view=placeholders::Dashboard ssr=SsrMode::Async />
                    <Route path=path!("projects") view=projects::ProjectsPage ssr=SsrMode::Async />
                    <Route path=path!("projects/:slug") view=project::ProjectPage ssr=SsrMode::Async />
                    <Route path=path!("projects/:slug/:section") view=project::ProjectPage ssr=SsrMode::Async />
                    <Route path=path!("projects/:slug/builds/:number") view=builds::BuildPage ssr=SsrMode::Async />
                    <Route path=path!("projects/:slug/builds/:number/log") view=build_log::BuildLogPage ssr=SsrMode::Async />
                    <Route path=path!("builds") view=all_builds::AllBuildsPage ssr=SsrMode::Async />
                    <Route path=path!("import-project") view=project_import::ImportPage ssr=SsrMode::Async />
                    <Route path=path!("groups/:id") view=group::GroupPage ssr=SsrMode::Async />
                    <Route path=path!("processes") view=processes::ProcessesPage ssr=SsrMode::Async />
                    <Route path=path!("processes/definitions") view=processes::DefinitionsPage ssr=SsrMode::Async />
                    <Route path=path!("processes/definitions/edit") view=processes::DefinitionEditorPage ssr=SsrMode::Async />
                    <Route path=path!("processes/triggers") view=triggers::AllTriggersPage ssr=SsrMode::Async />
                    <Route path=path!("processes/triggers/manage") view=triggers::TriggersPage ssr=SsrMode::Async />
                    <Route path=path!("processes/:id") view=processes::ProcessPage ssr=SsrMode::Async />
                    <Route path=path!("workers") view=workers::WorkersPage ssr=SsrMode::Async />
                    <Route path=path!("workers/participants") view=workers::ParticipantsPage ssr=SsrMode::Async />
                    <Route path=path!("workers/tokens") view=workers::TokensPage ssr=SsrMode::Async />
                    <Route path=path!("inbox") view=inbox::InboxPage ssr=SsrMode::Async />
                    <Route path=path!("profile") view=profile::ProfilePage ssr=SsrMode::Async />
                    <Route path=path!("admin/users") view=admin_users::UsersPage ssr=SsrMode::Async />
                    <Route path=path!("admin/groups") view=admin_groups::GroupsPage ssr=SsrMode::Async />
                    <Route path=path!("admin/infrastructure") view=admin_infrastructure::InfrastructurePage ssr=SsrMode::Async />
                    <Route path=path!("admin/audit") view=admin_audit::AuditPage ssr=SsrMode::Async />
                    <Route path=path!("*any") view=status::NotFound ssr=SsrMode::Async />
                </ParentRoute>
            </Routes>
        </Router>
    }
}
