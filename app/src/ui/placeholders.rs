//! Pages whose content arrives with later features; until then they show honest empty states.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
fn EmptyState(title: &'static str, heading: &'static str, body: &'static str) -> impl IntoView {
    view! {
        <Title text=title />
        <h1>{title}</h1>
        <section class="empty-state">
            <h2>{heading}</h2>
            <p>{body}</p>
        </section>
    }
}

#[component]
pub fn Dashboard() -> impl IntoView {
    view! {
        <EmptyState
            title="Dashboard"
            heading="No builds yet"
            body="Running and recent builds of the projects you can see will show here, live."
        />
    }
}
