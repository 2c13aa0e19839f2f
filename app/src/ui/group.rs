//! One group's page: its members, for its members; maintainers add and remove members,
//! administrators also choose maintainers.

use super::forms::{ConfirmButton, Field, FormError, field_message, form_message};
use super::status::{ErrorPage, NotFound};
use crate::api::groups::{AddGroupMember, RemoveGroupMember, SetGroupMaintainer, group};
use crate::domain::USERNAME_MAX;
use crate::types::{GroupDetail, GroupId};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn GroupPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || {
        params
            .read()
            .get("id")
            .and_then(|id| id.parse::<i64>().ok())
            .map(GroupId)
    };
    let add = ServerAction::<AddGroupMember>::new();
    let remove = ServerAction::<RemoveGroupMember>::new();
    let maintain = ServerAction::<SetGroupMaintainer>::new();
    let detail = Resource::new(
        move || {
            (
                id(),
                add.version().get(),
                remove.version().get(),
                maintain.version().get(),
            )
        },
        |(id, ..)| async move {
            match id {
                Some(id) => group(id).await.map(Some),
                None => Ok(None),
            }
        },
    );
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Ok(Some(detail)) => view! { <Group detail add remove maintain /> }.into_any(),
                    Ok(None) => view! { <NotFound /> }.into_any(),
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Group(
    detail: GroupDetail,
    add: ServerAction<AddGroupMember>,
    remove: ServerAction<RemoveGroupMember>,
    maintain: ServerAction<SetGroupMaintainer>,
) -> impl IntoView {
    let id = detail.group.id;
    let name = detail.group.name.clone();
    let (manage, administer) = (detail.can_manage_members, detail.can_administer);
    let added = add.value();
    view! {
        <Title text=name.clone() />
        <h1>{format!("Group {name}")}</h1>
        <p class="hint">{format!("{} member(s)", detail.group.member_count)}</p>
        <Show when=move || manage>
            <section class="card">
                <h2>"Add a member"</h2>
                <ActionForm action=add>
                    <FormError message=Signal::derive(move || form_message(&added.get(), &["username"])) />
                    <input type="hidden" name="id" value=id.0 />
                    <Field label="Username" name="username" required=true maxlength=USERNAME_MAX autocomplete="off"
                        error=Signal::derive(move || field_message(&added.get(), "username")) />
                    <Show when=move || administer>
                        <div class="field checkbox">
                            <input id="maintainer" type="checkbox" name="maintainer" value="true" />
                            <label for="maintainer">"Maintainer (may add and remove members)"</label>
                        </div>
                    </Show>
                    <button type="submit" class="primary" disabled=move || add.pending().get()>"Add member"</button>
                </ActionForm>
            </section>
        </Show>
        <FormError message=Signal::derive(move || form_message(&remove.value().get(), &[])) />
        <FormError message=Signal::derive(move || form_message(&maintain.value().get(), &[])) />
        {if detail.members.is_empty() {
            view! { <section class="empty-state"><p>"This group has no members yet."</p></section> }.into_any()
        } else {
            view! {
                <div class="table-wrap">
                    <table class="cards">
                        <thead>
                            <tr>
                                <th scope="col">"Username"</th>
                                <th scope="col">"Name"</th>
                                <th scope="col">"Role"</th>
                                <Show when=move || manage><th scope="col">"Actions"</th></Show>
                            </tr>
                        </thead>
                        <tbody>
                            {detail.members.into_iter().map(|member| {
                                let user = member.user;
                                let username = member.username.clone();
                                let can_remove = administer || (manage && !member.is_maintainer);
                                let toggle = !member.is_maintainer;
                                let toggle_label = if member.is_maintainer { "Make plain member" } else { "Make maintainer" };
                                view! {
                                    <tr data-username=member.username.clone()>
                                        <td data-label="Username">{member.username.clone()}</td>
                                        <td data-label="Name">{member.display_name.clone()}</td>
                                        <td data-label="Role">{if member.is_maintainer { "Maintainer" } else { "Member" }}</td>
                                        <Show when=move || manage>
                                            <td data-label="Actions" class="actions">
                                                {can_remove.then(|| view! {
                                                    <ConfirmButton
                                                        label="Remove"
                                                        question=format!("Remove {username} from the group?")
                                                        on_confirm=Callback::new(move |()| { remove.dispatch(RemoveGroupMember { id, user }); })
                                                    />
                                                })}
                                                {administer.then(|| view! {
                                                    <button type="button" on:click=move |_| { maintain.dispatch(SetGroupMaintainer { id, user, maintainer: toggle }); }>
                                                        {toggle_label}
                                                    </button>
                                                })}
                                            </td>
                                        </Show>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            }.into_any()
        }}
    }
}
