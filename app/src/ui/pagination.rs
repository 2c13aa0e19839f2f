//! The navigation under a paginated list: where we are, and links to the neighbours.

use leptos::prelude::*;
use leptos_router::params::ParamsMap;

use crate::types::PagePosition;

/// The page number a list page was asked for (`?page=N`), 1 when absent or not a number.
pub fn page_number(query: Memo<ParamsMap>) -> impl Fn() -> u64 + Copy + Send + Sync + 'static {
    move || {
        query
            .read()
            .get("page")
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(1)
    }
}

/// `position` says where the page stands; `href` makes the link of a page number.
#[component]
pub fn Pagination(position: PagePosition, href: Callback<u64, String>) -> impl IntoView {
    let PagePosition {
        page,
        pages,
        summary,
    } = position;
    view! {
        <nav class="pagination" aria-label="Pages">
            <span>{summary}</span>
            {(page > 1).then(|| view! { <a href=href.run(page - 1) rel="prev">"Previous"</a> })}
            <span>{format!("Page {page} of {pages}")}</span>
            {(page < pages).then(|| view! { <a href=href.run(page + 1) rel="next">"Next"</a> })}
        </nav>
    }
}
