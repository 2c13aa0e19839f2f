//! Administration of user accounts: search, pagination, create, disable/enable,
//! reset password, grant/revoke admin.

use super::forms::{ConfirmButton, Field, FormError, field_message, form_message};
use super::layout::{AdminTabs, SessionUser};
use super::pagination::{Pagination, page_number};
use super::status::ErrorPage;
use crate::api::users::{ChangeUser, CreateUser, ResetUserPassword, list_users};
use crate::domain::{DISPLAY_NAME_MAX, EMAIL_MAX, USERNAME_MAX};
use crate::types::{Page, UserChange, UserId, UserView};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

fn page_href(search: &str, page: u64) -> String {
    let mut href = format!("/admin/users?page={page}");
    if !search.is_empty() {
        href.push_str("&q=");
        href.push_str(&crate::url::encode_component(search));
    }
    href
}

#[component]
pub fn UsersPage() -> impl IntoView {
    let query = use_query_map();
    let search = move || query.read().get("q").unwrap_or_default();
    let page = page_number(query);

    let create = ServerAction::<CreateUser>::new();
    let change = ServerAction::<ChangeUser>::new();
    let reset = ServerAction::<ResetUserPassword>::new();
    let users = Resource::new(
        move || {
            (
                search(),
                page(),
                create.version().get(),
                change.version().get(),
            )
        },
        |(search, page, _, _)| list_users(search, page),
    );
    view! {
        <Title text="Users" />
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let me = match use_context::<SessionUser>() {
                    Some(SessionUser(user)) => user.await.ok().flatten().map(|u| u.id),
                    None => None,
                };
                match users.await {
                    Ok(list) => view! {
                        <AdminTabs />
                        <CreateUserForm action=create />
                        <Form method="GET" action="/admin/users" attr:class="search" attr:role="search">
                            <label for="user-search" class="visually-hidden">"Search users"</label>
                            <input id="user-search" type="search" name="q" value=search() placeholder="Search by name or email" maxlength="128" />
                            <button type="submit">"Search"</button>
                        </Form>
                        <FormError message=Signal::derive(move || form_message(&change.value().get(), &[])) />
                        <FormError message=Signal::derive(move || form_message(&reset.value().get(), &["new_password"])) />
                        <Show when=move || matches!(reset.value().get(), Some(Ok(())))>
                            <p class="notice" role="status">"Password reset. The user's sessions have ended."</p>
                        </Show>
                        <UserTable list search=search() me change reset />
                    }
                    .into_any(),
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn CreateUserForm(action: ServerAction<CreateUser>) -> impl IntoView {
    let value = action.value();
    let fields = ["username", "display_name", "email", "password"];
    let created = move || match value.get() {
        Some(Ok(user)) => Some(user.username),
        _ => None,
    };
    view! {
        <details class="card create-user" open=move || matches!(value.get(), Some(Err(_)))>
            <summary>"Create user"</summary>
            <ActionForm action>
                <FormError message=Signal::derive(move || form_message(&value.get(), &fields)) />
                <Field label="Username" name="username" required=true maxlength=USERNAME_MAX autocomplete="off"
                    id_prefix="new-".to_owned()
                    error=Signal::derive(move || field_message(&value.get(), "username")) />
                <Field label="Display name" name="display_name" maxlength=DISPLAY_NAME_MAX
                    id_prefix="new-".to_owned()
                    error=Signal::derive(move || field_message(&value.get(), "display_name")) />
                <Field label="Email" name="email" kind="email" maxlength=EMAIL_MAX
                    id_prefix="new-".to_owned()
                    error=Signal::derive(move || field_message(&value.get(), "email")) />
                <Field label="Password" name="password" kind="password" required=true autocomplete="new-password"
                    id_prefix="new-".to_owned()
                    error=Signal::derive(move || field_message(&value.get(), "password")) />
                <div class="field checkbox">
                    <input id="new-is_admin" type="checkbox" name="is_admin" value="true" />
                    <label for="new-is_admin">"Administrator"</label>
                </div>
                <button type="submit" class="primary" disabled=move || action.pending().get()>"Create user"</button>
            </ActionForm>
        </details>
        {move || created().map(|name| view! { <p class="notice" role="status">{format!("User {name} created.")}</p> })}
    }
}

#[component]
fn UserTable(
    list: Page<UserView>,
    search: String,
    me: Option<UserId>,
    change: ServerAction<ChangeUser>,
    reset: ServerAction<ResetUserPassword>,
) -> impl IntoView {
    if list.items.is_empty() {
        let message = if search.is_empty() {
            "No users yet."
        } else {
            "No users match this search."
        };
        return view! { <section class="empty-state"><p>{message}</p></section> }.into_any();
    }
    let position = list.position();
    view! {
        <div class="table-wrap">
            <table class="cards users">
                <thead>
                    <tr>
                        <th scope="col">"Username"</th>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Email"</th>
                        <th scope="col">"Role"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Last login"</th>
                        <th scope="col">"Actions"</th>
                    </tr>
                </thead>
                <tbody>
                    {list.items.into_iter().map(|user| {
                        let is_me = Some(user.id) == me;
                        view! { <UserRow user is_me change reset /> }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        <Pagination position href=Callback::new(move |page| page_href(&search, page)) />
    }
    .into_any()
}

#[component]
fn UserRow(
    user: UserView,
    is_me: bool,
    change: ServerAction<ChangeUser>,
    reset: ServerAction<ResetUserPassword>,
) -> impl IntoView {
    let id = user.id;
    let username = user.username.clone();
    let last_login = user
        .last_login_at
        .map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "never".into());
    let (status_change, status_label) = if user.is_disabled {
        (UserChange::Enable, "Enable")
    } else {
        (UserChange::Disable, "Disable")
    };
    let (role_change, role_label) = if user.is_admin {
        (UserChange::RevokeAdmin, "Revoke admin")
    } else {
        (UserChange::GrantAdmin, "Make admin")
    };
    let reset_value = reset.value();
    view! {
        <tr data-username=username.clone()>
            <td data-label="Username">{username.clone()}</td>
            <td data-label="Name">{user.display_name.clone()}</td>
            <td data-label="Email">{user.email.clone().unwrap_or_default()}</td>
            <td data-label="Role">{if user.is_admin { "Administrator" } else { "User" }}</td>
            <td data-label="Status">
                <span class=if user.is_disabled { "badge disabled" } else { "badge active" }>
                    {if user.is_disabled { "Disabled" } else { "Active" }}
                </span>
            </td>
            <td data-label="Last login">{last_login}</td>
            <td data-label="Actions" class="actions">
                {if is_me {
                    view! { <span class="hint">"This is you"</span> }.into_any()
                } else {
                    view! {
                        <ConfirmButton
                            label=status_label
                            question=format!("{status_label} {username}?")
                            on_confirm=Callback::new(move |()| { change.dispatch(ChangeUser { id, change: status_change }); })
                        />
                        <ConfirmButton
                            label=role_label
                            question=format!("{role_label} for {username}?")
                            on_confirm=Callback::new(move |()| { change.dispatch(ChangeUser { id, change: role_change }); })
                        />
                        <details class="reset-password">
                            <summary>"Reset password"</summary>
                            <ActionForm action=reset>
                                <input type="hidden" name="id" value=id.0 />
                                <Field label="New password" name="new_password" kind="password" required=true
                                    autocomplete="new-password" id_prefix=format!("reset-{}-", id.0)
                                    error=Signal::derive(move || field_message(&reset_value.get(), "new_password")) />
                                <button type="submit">"Set password"</button>
                            </ActionForm>
                        </details>
                    }
                    .into_any()
                }}
            </td>
        </tr>
    }
}
