//! The navigation under a paginated list: where we are, and links to the neighbours.

use leptos::prelude::*;

/// `summary` says what is shown; `href` makes the link of a page number.
#[component]
pub fn Pagination(
    page: u64,
    pages: u64,
    summary: String,
    href: Callback<u64, String>,
) -> impl IntoView {
    view! {
        <nav class="pagination" aria-label="Pages">
            <span>{summary}</span>
            {(page > 1).then(|| view! { <a href=href.run(page - 1) rel="prev">"Previous"</a> })}
            <span>{format!("Page {page} of {pages}")}</span>
            {(page < pages).then(|| view! { <a href=href.run(page + 1) rel="next">"Next"</a> })}
        </nav>
    }
}
