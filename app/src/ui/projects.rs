//! The projects page: tabs (mine, shared with my groups, all I can see), search, sort,
//! archived toggle, server-side pagination, and the form that creates a project.

use super::forms::{Field, FormError, field_message, form_message};
use super::pagination::Pagination;
use super::status::ErrorPage;
use crate::api::groups::my_groups;
use crate::api::projects::{CreateProject, list_projects};
use crate::domain::{DESCRIPTION_MAX, PROJECT_NAME_MAX, SLUG_MAX};
use crate::types::{
    Membership, Page, Permission, Permissions, ProjectQuery, ProjectSort, ProjectSummary,
    ProjectTab,
};
use crate::url::encode_component;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

/// The URL of the projects page for `query`; defaults are left out.
fn href(query: &ProjectQuery) -> String {
    let mut parts = vec![format!("tab={}", query.tab.key())];
    if !query.search.is_empty() {
        parts.push(format!("q={}", encode_component(&query.search)));
    }
    if query.sort != ProjectSort::default() {
        parts.push(format!("sort={}", query.sort.key()));
    }
    if query.archived {
        parts.push("archived=1".into());
    }
    if query.page > 1 {
        parts.push(format!("page={}", query.page));
    }
    format!("/projects?{}", parts.join("&"))
}

/// Who may see a project besides its owner, in a few words.
pub fn sharing_label(
    group: Option<&str>,
    group_permissions: Permissions,
    others: Permissions,
) -> String {
    let mut parts = Vec::new();
    if let Some(group) = group.filter(|_| !group_permissions.is_empty()) {
        parts.push(format!("{group}: {group_permissions}"));
    }
    if !others.is_empty() {
        parts.push(format!("everyone: {others}"));
    }
    if parts.is_empty() {
        "Private".into()
    } else {
        parts.join("; ")
    }
}

#[component]
pub fn ProjectsPage() -> impl IntoView {
    let params = use_query_map();
    let query = move || {
        let params = params.read();
        ProjectQuery {
            tab: ProjectTab::from_key(&params.get("tab").unwrap_or_default()),
            search: params.get("q").unwrap_or_default(),
            sort: ProjectSort::from_key(&params.get("sort").unwrap_or_default()),
            archived: params.get("archived").is_some_and(|v| v == "1"),
            page: params.get("page").and_then(|p| p.parse().ok()).unwrap_or(1),
        }
    };
    let projects = Resource::new(query, list_projects);
    view! {
        <Title text="Projects" />
        <h1>"Projects"</h1>
        <NewProject />
        <p><a href="/import-project">"Import a project from a file"</a></p>
        <nav class="tabs" aria-label="Which projects">
            {move || {
                let current = query();
                ProjectTab::ALL.into_iter().map(|tab| {
                    let target = ProjectQuery { tab, page: 1, ..current.clone() };
                    view! {
                        <a href=href(&target) aria-current=(tab == current.tab).then_some("page")>{tab.label()}</a>
                    }
                }).collect_view()
            }}
        </nav>
        <ProjectFilters query=Signal::derive(query) />
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match projects.await {
                    Ok(list) => view! { <ProjectTable list query=query() /> }.into_any(),
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ProjectFilters(query: Signal<ProjectQuery>) -> impl IntoView {
    move || {
        let query = query.get();
        view! {
            <Form method="GET" action="/projects" attr:class="search project-filters" attr:role="search">
                <input type="hidden" name="tab" value=query.tab.key() />
                <label for="project-search" class="visually-hidden">"Search projects"</label>
                <input id="project-search" type="search" name="q" value=query.search.clone()
                    placeholder="Search by name or slug" maxlength="128" />
                <label for="project-sort" class="visually-hidden">"Sort by"</label>
                <select id="project-sort" name="sort">
                    {ProjectSort::ALL.into_iter().map(|sort| view! {
                        <option value=sort.key() selected=sort == query.sort>{sort.label()}</option>
                    }).collect_view()}
                </select>
                <span class="field checkbox">
                    <input id="project-archived" type="checkbox" name="archived" value="1" checked=query.archived />
                    <label for="project-archived">"Archived too"</label>
                </span>
                <button type="submit">"Apply"</button>
            </Form>
        }
    }
}

#[component]
fn ProjectTable(list: Page<ProjectSummary>, query: ProjectQuery) -> impl IntoView {
    if list.items.is_empty() {
        let message = if !query.search.is_empty() {
            "No projects match this search."
        } else {
            match query.tab {
                ProjectTab::Mine => {
                    "You have no projects yet. Create one above, or clone one you can see."
                }
                ProjectTab::Shared => "No projects are shared with your groups.",
                ProjectTab::All => "There are no projects you can see.",
            }
        };
        return view! { <section class="empty-state"><p>{message}</p></section> }.into_any();
    }
    let position = list.position();
    view! {
        <div class="table-wrap">
            <table class="cards projects">
                <thead>
                    <tr>
                        <th scope="col">"Project"</th>
                        <th scope="col">"Owner"</th>
                        <th scope="col">"Shared with"</th>
                        <th scope="col">"Changed"</th>
                    </tr>
                </thead>
                <tbody>
                    {list.items.into_iter().map(|project| {
                        let sharing = sharing_label(project.group.as_deref(), project.group_permissions, project.other_permissions);
                        view! {
                            <tr data-slug=project.slug.clone()>
                                <td data-label="Project">
                                    <a href=format!("/projects/{}", project.slug)>{project.name.clone()}</a>
                                    " " <span class="hint">{project.slug.clone()}</span>
                                    {project.archived.then(|| view! { " " <span class="badge disabled">"Archived"</span> })}
                                </td>
                                <td data-label="Owner">{project.owner.clone()}</td>
                                <td data-label="Shared with">{sharing}</td>
                                <td data-label="Changed">{project.updated_at.format("%Y-%m-%d %H:%M UTC").to_string()}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        <Pagination position href=Callback::new(move |page| href(&ProjectQuery { page, ..query.clone() })) />
    }
    .into_any()
}

/// The checkboxes of one permission set, named `prefix[view]` and so on.
#[component]
pub fn PermissionBoxes(
    prefix: &'static str,
    legend: &'static str,
    #[prop(optional)] id_prefix: &'static str,
    #[prop(optional)] value: Permissions,
) -> impl IntoView {
    view! {
        <fieldset class="permissions">
            <legend>{legend}</legend>
            {Permission::ALL.into_iter().map(|permission| {
                let id = format!("{id_prefix}{prefix}-{}", permission.name());
                view! {
                    <span class="field checkbox">
                        <input id=id.clone() type="checkbox" name=format!("{prefix}[{}]", permission.name())
                            value="true" checked=value.has(permission) />
                        <label for=id>{permission.name()}</label>
                    </span>
                }
            }).collect_view()}
        </fieldset>
    }
}

/// A select of the user's groups, with "no group" first.
#[component]
pub fn GroupSelect(
    groups: Vec<Membership>,
    selected: Option<i64>,
    #[prop(into)] error: Signal<Option<String>>,
    #[prop(optional)] id: &'static str,
) -> impl IntoView {
    let id = if id.is_empty() { "group" } else { id };
    view! {
        <div class="field">
            <label for=id>"Group"</label>
            <select id=id name="group" aria-invalid=move || error.get().map(|_| "true")>
                <option value="" selected=selected.is_none()>"No group"</option>
                {groups.into_iter().map(|group| view! {
                    <option value=group.group.0 selected=selected == Some(group.group.0)>{group.name}</option>
                }).collect_view()}
            </select>
            {move || error.get().map(|message| view! { <p class="field-error">{message}</p> })}
        </div>
    }
}

#[component]
fn NewProject() -> impl IntoView {
    let create = ServerAction::<CreateProject>::new();
    let value = create.value();
    let groups = Resource::new(|| (), |_| my_groups());
    let fields = ["name", "slug", "description", "group"];
    Effect::new(move || {
        if let Some(Ok(project)) = value.get() {
            let _ = window()
                .location()
                .set_href(&format!("/projects/{}", project.slug));
        }
    });
    view! {
        <details class="card create-project" open=move || matches!(value.get(), Some(Err(_)))>
            <summary>"New project"</summary>
            <ActionForm action=create>
                <FormError message=Signal::derive(move || form_message(&value.get(), &fields)) />
                <Field label="Name" name="name" required=true maxlength=PROJECT_NAME_MAX
                    id_prefix="new-".to_owned()
                    error=Signal::derive(move || field_message(&value.get(), "name")) />
                <Field label="Slug (the project's address; empty: made from the name)" name="slug" maxlength=SLUG_MAX
                    id_prefix="new-".to_owned() autocomplete="off"
                    error=Signal::derive(move || field_message(&value.get(), "slug")) />
                <div class="field">
                    <label for="new-description">"Description"</label>
                    <textarea id="new-description" name="description" rows="3" maxlength=DESCRIPTION_MAX></textarea>
                    {move || field_message(&value.get(), "description").map(|m| view! { <p class="field-error">{m}</p> })}
                </div>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        let groups = groups.await.unwrap_or_default();
                        view! {
                            <GroupSelect groups selected=None id="new-group" error=Signal::derive(move || field_message(&value.get(), "group")) />
                        }
                    })}
                </Suspense>
                <PermissionBoxes prefix="group_permissions" legend="The group may" id_prefix="new-" />
                <PermissionBoxes prefix="other_permissions" legend="Everyone else may" id_prefix="new-" />
                <p class="hint">"Leave the boxes empty to keep the project private. Any permission includes view."</p>
                <button type="submit" class="primary" disabled=move || create.pending().get()>"Create project"</button>
            </ActionForm>
        </details>
    }
}
