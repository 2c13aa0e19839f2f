//! A build's whole log in the browser: a stretch of lines at a time (opening at the end,
//! following it live there), paging, going to a line, server-side search and the download.

use super::builds::use_build_address;
use super::live::use_live;
use super::status::ErrorPage;
use crate::api::builds::{read_build, read_build_log, search_build_log};
use crate::builds::{BuildLogMatches, BuildLogTail};
use crate::live::Topic;
use crate::url::encode_component;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

/// Lines shown at a time.
const PAGE_LINES: u64 = 500;

/// Lines shown before the line asked for.
const CONTEXT_LINES: u64 = 20;

#[component]
pub fn BuildLogPage() -> impl IntoView {
    let (slug, number) = use_build_address();
    let query = use_query_map();
    let number_query = move |name: &str| {
        query
            .read()
            .get(name)
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|n| *n > 0)
    };
    let wanted = move || number_query("line");
    // The first line shown; 0 for the end of the log.
    let first = move || match (number_query("from"), wanted()) {
        (Some(from), _) => from,
        (None, Some(line)) => line.saturating_sub(CONTEXT_LINES).max(1),
        (None, None) => 0,
    };
    let search = move || query.read().get("q").unwrap_or_default();
    let after = move || number_query("after").unwrap_or(0);
    let build = Resource::new(
        move || (slug(), number()),
        |(slug, number)| read_build(slug, number),
    );
    let build_id = move || build.get().and_then(Result::ok).map(|b| b.summary.id);
    let live = use_live(move || build_id().map(Topic::Build));
    let lines = Resource::new(
        move || {
            // Only the end of the log moves.
            let tick = if first() == 0 { live.get() } else { 0 };
            (slug(), number(), first(), tick)
        },
        |(slug, number, first, _)| read_build_log(slug, number, first, PAGE_LINES),
    );
    let matches = Resource::new(
        move || (slug(), number(), search(), after()),
        |(slug, number, search, after)| async move {
            if search.trim().is_empty() {
                Ok(None)
            } else {
                search_build_log(slug, number, search, after)
                    .await
                    .map(Some)
            }
        },
    );
    let base = move || format!("/projects/{}/builds/{}", slug(), number());
    view! {
        <Title text=move || format!("Log of build {} of {}", number(), slug()) />
        <p><a href=base>{move || format!("← Build #{}", number())}</a></p>
        <h1>{move || format!("Log of build #{} of {}", number(), slug())}</h1>
        <div class="actions">
            <a href=move || format!("{}/build.log", base()) download="" rel="nofollow">"Download the whole log"</a>
        </div>
        <Form method="GET" action="" attr:class="card filters" attr:role="search">
            <div class="field">
                <label for="log-search">"Search the log"</label>
                <input id="log-search" name="q" type="search" value=search maxlength=256 placeholder="e.g. ERROR or do_compile" />
            </div>
            <div class="field">
                <label for="log-line">"Go to line"</label>
                <input id="log-line" name="line" type="number" min="1" value=move || wanted().map(|n| n.to_string()).unwrap_or_default() />
            </div>
            <div class="filter-actions">
                <button type="submit" class="primary">"Go"</button>
            </div>
        </Form>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match matches.await {
                    Ok(Some(found)) => view! { <Matches found base=base() search=search() /> }.into_any(),
                    Ok(None) => ().into_any(),
                    Err(error) => view! { <p class="form-error" role="alert">{error.to_string()}</p> }.into_any(),
                }
            })}
        </Transition>
        <section class="card">
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match lines.await {
                        Ok(slice) => view! { <Stretch slice base=base() wanted=wanted() /> }.into_any(),
                        Err(error) => view! { <ErrorPage error /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// Where the search found the text, each a link to its line.
#[component]
fn Matches(found: BuildLogMatches, base: String, search: String) -> impl IntoView {
    let more = found
        .more_after
        .map(|after| format!("{base}/log?q={}&after={after}", encode_component(&search)));
    view! {
        <section class="card log-matches">
            <h2>{format!("{} lines found{}", found.matches.len(), if more.is_some() { " (more below)" } else { "" })}</h2>
            {found.matches.is_empty().then(|| view! { <p class="hint">"No line contains it."</p> })}
            <ul class="plain">
                {found.matches.into_iter().map(|(line, runs)| view! {
                    <li>
                        <a href=format!("{base}/log?line={line}#L{line}")>{format!("line {line}")}</a>" "
                        <code>{runs.into_iter().map(|run| run.text).collect::<String>()}</code>
                    </li>
                }).collect_view()}
            </ul>
            {more.map(|href| view! { <a href=href>"More results"</a> })}
        </section>
    }
}

/// A stretch of the log with links to the stretches around it.
#[component]
fn Stretch(slice: BuildLogTail, base: String, wanted: Option<u64>) -> impl IntoView {
    if slice.archived {
        return view! { <p class="hint">"This build is archived: its log was removed."</p> }
            .into_any();
    }
    if slice.lines.is_empty() {
        return view! { <p class="hint">"No lines here: the log is shorter, or nothing was printed yet."</p> }
            .into_any();
    }
    let first = slice.first_line;
    let last = first + slice.lines.len() as u64 - 1;
    let at_end = last >= slice.total_lines;
    let earlier = (first > 1).then(|| first.saturating_sub(PAGE_LINES).max(1));
    let nav = {
        let base = base.clone();
        move || {
            view! {
                <nav class="pagination" aria-label="Log">
                    {(first > 1).then(|| view! { <a href=format!("{base}/log?from=1")>"First"</a> })}
                    {earlier.map(|from| view! { <a href=format!("{base}/log?from={from}")>"Earlier"</a> })}
                    <span>{format!("Lines {first} to {last} of {}", slice.total_lines)}</span>
                    {(!at_end).then(|| view! { <a href=format!("{base}/log?from={}", last + 1)>"Later"</a> })}
                    {(!at_end).then(|| view! { <a href=format!("{base}/log")>"Last"</a> })}
                </nav>
            }
        }
    };
    view! {
        {nav.clone()}
        <pre class="code log build-log">
            {slice.lines.into_iter().enumerate().map(|(i, runs)| {
                let number = first + i as u64;
                view! {
                    <span class="log-line" class:wanted=wanted == Some(number) id=format!("L{number}") data-line=number>
                        {runs.into_iter().map(|run| view! {
                            <span class=run.style.classes()>{run.text}</span>
                        }).collect_view()}
                        "\n"
                    </span>
                }
            }).collect_view()}
        </pre>
        {nav}
    }
    .into_any()
}
