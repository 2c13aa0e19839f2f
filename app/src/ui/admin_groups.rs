//! Administration of groups: search, create, rename and delete; members are managed on
//! each group's own page.

use super::forms::{ConfirmButton, Field, FormError, field_message, form_message};
use super::layout::AdminTabs;
use super::pagination::{Pagination, page_number};
use super::status::ErrorPage;
use crate::api::groups::{CreateGroup, DeleteGroup, RenameGroup, list_groups};
use crate::domain::GROUP_NAME_MAX;
use crate::types::{GroupView, Page};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

fn page_href(search: &str, page: u64) -> String {
    let mut href = format!("/admin/groups?page={page}");
    if !search.is_empty() {
        href.push_str("&q=");
        href.push_str(&crate::url::encode_component(search));
    }
    href
}

#[component]
pub fn GroupsPage() -> impl IntoView {
    let query = use_query_map();
    let search = move || query.read().get("q").unwrap_or_default();
    let page = page_number(query);
    let create = ServerAction::<CreateGroup>::new();
    let rename = ServerAction::<RenameGroup>::new();
    let delete = ServerAction::<DeleteGroup>::new();
    let groups = Resource::new(
        move || {
            (
                search(),
                page(),
                create.version().get(),
                rename.version().get(),
                delete.version().get(),
            )
        },
        |(search, page, ..)| list_groups(search, page),
    );
    let created = create.value();
    view! {
        <Title text="Groups" />
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match groups.await {
                    Ok(list) => view! {
                        <AdminTabs />
                        <details class="card" open=move || matches!(created.get(), Some(Err(_)))>
                            <summary>"Create group"</summary>
                            <ActionForm action=create>
                                <FormError message=Signal::derive(move || form_message(&created.get(), &["name"])) />
                                <Field label="Name" name="name" required=true maxlength=GROUP_NAME_MAX
                                    id_prefix="new-group-".to_owned()
                                    error=Signal::derive(move || field_message(&created.get(), "name")) />
                                <button type="submit" class="primary" disabled=move || create.pending().get()>"Create group"</button>
                            </ActionForm>
                        </details>
                        {move || match created.get() {
                            Some(Ok(group)) => Some(view! { <p class="notice" role="status">{format!("Group {} created.", group.name)}</p> }),
                            _ => None,
                        }}
                        <Form method="GET" action="/admin/groups" attr:class="search" attr:role="search">
                            <label for="group-search" class="visually-hidden">"Search groups"</label>
                            <input id="group-search" type="search" name="q" value=search() placeholder="Search by name" maxlength="128" />
                            <button type="submit">"Search"</button>
                        </Form>
                        <FormError message=Signal::derive(move || form_message(&rename.value().get(), &[])) />
                        <FormError message=Signal::derive(move || form_message(&delete.value().get(), &[])) />
                        <GroupTable list search=search() rename delete />
                    }
                    .into_any(),
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn GroupTable(
    list: Page<GroupView>,
    search: String,
    rename: ServerAction<RenameGroup>,
    delete: ServerAction<DeleteGroup>,
) -> impl IntoView {
    if list.items.is_empty() {
        let message = if search.is_empty() {
            "No groups yet. Create one to share projects with several people."
        } else {
            "No groups match this search."
        };
        return view! { <section class="empty-state"><p>{message}</p></section> }.into_any();
    }
    let position = list.position();
    view! {
        <div class="table-wrap">
            <table class="cards">
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Members"</th>
                        <th scope="col">"Created"</th>
                        <th scope="col">"Actions"</th>
                    </tr>
                </thead>
                <tbody>
                    {list.items.into_iter().map(|group| {
                        let id = group.id;
                        let name = group.name.clone();
                        let current = group.name.clone();
                        let question = format!("Delete group {name}? Its projects lose the group's permissions.");
                        let rename_value = rename.value();
                        view! {
                            <tr data-group=name.clone()>
                                <td data-label="Name"><a href=format!("/groups/{id}")>{name.clone()}</a></td>
                                <td data-label="Members">{group.member_count}</td>
                                <td data-label="Created">{group.created_at.format("%Y-%m-%d").to_string()}</td>
                                <td data-label="Actions" class="actions">
                                    <details>
                                        <summary>"Rename"</summary>
                                        <ActionForm action=rename>
                                            <input type="hidden" name="id" value=id.0 />
                                            <Field label="New name" name="name" required=true maxlength=GROUP_NAME_MAX
                                                value=current id_prefix=format!("rename-{}-", id.0)
                                                error=Signal::derive(move || field_message(&rename_value.get(), "name")) />
                                            <button type="submit">"Rename"</button>
                                        </ActionForm>
                                    </details>
                                    <ConfirmButton
                                        label="Delete"
                                        question=question
                                        on_confirm=Callback::new(move |()| { delete.dispatch(DeleteGroup { id }); })
                                    />
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        <Pagination position href=Callback::new(move |page| page_href(&search, page)) />
    }
    .into_any()
}
