//! The All builds page: the builds of every project the user may view, filtered by project,
//! state, user, target and date, updating live.

use super::builds::BuildTable;
use super::live::use_live;
use super::pagination::page_number;
use super::status::ErrorPage;
use crate::api::builds::list_all_builds;
use crate::builds::{BUILD_FILTER_MAX, BuildFilter, STATE_FILTERS};
use crate::error::AppError;
use crate::live::Topic;
use crate::url::encode_component;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

/// The query string for `filter`, without empty fields.
fn filter_query(filter: &BuildFilter) -> String {
    let hidden = if filter.hidden { "1" } else { "" };
    [
        ("project", filter.project.as_str()),
        ("state", &filter.state),
        ("user", &filter.user),
        ("target", &filter.target),
        ("from", &filter.from),
        ("to", &filter.to),
        ("hidden", hidden),
    ]
    .into_iter()
    .filter(|(_, value)| !value.is_empty())
    .map(|(name, value)| format!("{name}={}", encode_component(value)))
    .collect::<Vec<_>>()
    .join("&")
}

#[component]
pub fn AllBuildsPage() -> impl IntoView {
    let query = use_query_map();
    let filter = move || {
        let query = query.read();
        let get = |name: &str| query.get(name).unwrap_or_default();
        BuildFilter {
            project: get("project"),
            state: get("state"),
            user: get("user"),
            target: get("target"),
            from: get("from"),
            to: get("to"),
            hidden: get("hidden") == "1",
        }
    };
    let page = page_number(query);
    let builds_live = use_live(|| Some(Topic::Builds));
    let processes_live = use_live(|| Some(Topic::Processes));
    let list = Resource::new(
        move || (filter(), page(), builds_live.get(), processes_live.get()),
        |(filter, page, ..)| list_all_builds(filter, page),
    );
    view! {
        <Title text="All builds" />
        <h1>"All builds"</h1>
        {move || view! { <FilterForm filter=filter() /> }}
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let filter = filter();
                match list.await {
                    Ok(list) => {
                        let rest = filter_query(&filter);
                        let page_href = Callback::new(move |page| {
                            if rest.is_empty() {
                                format!("/builds?page={page}")
                            } else {
                                format!("/builds?page={page}&{rest}")
                            }
                        });
                        let empty = if filter == BuildFilter::default() {
                            "Builds of the projects you may view appear here. Start one from a project's Builds tab."
                        } else {
                            "No build matches these filters."
                        };
                        view! { <BuildTable list page_href show_project=true empty /> }.into_any()
                    }
                    Err(error @ AppError::Invalid { .. }) => view! {
                        <p class="form-error" role="alert">{error.to_string()}</p>
                    }
                    .into_any(),
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn FilterForm(filter: BuildFilter) -> impl IntoView {
    let state = filter.state.clone();
    view! {
        <Form method="GET" action="/builds" attr:class="card filters" attr:role="search">
            <div class="field">
                <label for="builds-project">"Project"</label>
                <input id="builds-project" name="project" value=filter.project placeholder="slug" maxlength=BUILD_FILTER_MAX />
            </div>
            <div class="field">
                <label for="builds-state">"State"</label>
                <select id="builds-state" name="state">
                    <option value="" selected=state.is_empty()>"Any"</option>
                    {STATE_FILTERS.iter().map(|(value, label)| view! {
                        <option value=*value selected=state == *value>{*label}</option>
                    }).collect_view()}
                </select>
            </div>
            <div class="field">
                <label for="builds-user">"Started by"</label>
                <input id="builds-user" name="user" value=filter.user placeholder="username" maxlength=BUILD_FILTER_MAX />
            </div>
            <div class="field">
                <label for="builds-target">"Target"</label>
                <input id="builds-target" name="target" value=filter.target placeholder="e.g. core-image-minimal" maxlength=BUILD_FILTER_MAX />
            </div>
            <div class="field">
                <label for="builds-from">"From"</label>
                <input id="builds-from" name="from" type="date" value=filter.from />
            </div>
            <div class="field">
                <label for="builds-to">"To"</label>
                <input id="builds-to" name="to" type="date" value=filter.to />
            </div>
            <div class="field checkbox">
                <label><input type="checkbox" name="hidden" value="1" checked=filter.hidden />" Hidden builds too"</label>
            </div>
            <div class="filter-actions">
                <button type="submit" class="primary">"Filter"</button>
                <a href="/builds">"Clear"</a>
            </div>
        </Form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_make_query_strings_without_empty_fields() {
        assert_eq!(filter_query(&BuildFilter::default()), "");
        let filter = BuildFilter {
            project: "demo".into(),
            state: "failed".into(),
            target: "core-image-minimal".into(),
            hidden: true,
            ..Default::default()
        };
        assert_eq!(
            filter_query(&filter),
            "project=demo&state=failed&target=core-image-minimal&hidden=1"
        );
    }
}
