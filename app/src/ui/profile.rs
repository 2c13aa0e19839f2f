//! The profile page: one's own display name, email and password.

use super::forms::{Field, FormError, field_message, form_message};
use super::status::ErrorPage;
use crate::api::groups::my_groups;
use crate::api::profile::{ChangePassword, UpdateProfile, my_profile};
use crate::domain::{DISPLAY_NAME_MAX, EMAIL_MAX};
use crate::types::UserView;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn ProfilePage() -> impl IntoView {
    let profile = Resource::new(|| (), |_| my_profile());
    view! {
        <Title text="Profile" />
        <h1>"Profile"</h1>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match profile.await {
                    Ok(user) => view! { <ProfileForms user /> }.into_any(),
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                }
            })}
        </Suspense>
        <MyGroups />
    }
}

#[component]
fn ProfileForms(user: UserView) -> impl IntoView {
    let update = ServerAction::<UpdateProfile>::new();
    let saved = update.value();
    let change = ServerAction::<ChangePassword>::new();
    let changed = change.value();
    Effect::new(move || {
        if matches!(changed.get(), Some(Ok(()))) {
            let _ = window()
                .location()
                .set_href("/login?notice=password-changed");
        }
    });
    let profile_fields = ["display_name", "email"];
    let password_fields = ["current_password", "new_password", "confirm_password"];
    view! {
        <section class="card">
            <h2>"Account"</h2>
            <dl class="facts">
                <dt>"Username"</dt>
                <dd>{user.username.clone()}</dd>
                <dt>"Role"</dt>
                <dd>{if user.is_admin { "Administrator" } else { "User" }}</dd>
            </dl>
            <ActionForm action=update>
                <FormError message=Signal::derive(move || form_message(&saved.get(), &profile_fields)) />
                <Field
                    label="Display name"
                    name="display_name"
                    value=user.display_name.clone()
                    maxlength=DISPLAY_NAME_MAX
                    autocomplete="name"
                    error=Signal::derive(move || field_message(&saved.get(), "display_name"))
                />
                <Field
                    label="Email"
                    name="email"
                    kind="email"
                    value=user.email.clone().unwrap_or_default()
                    maxlength=EMAIL_MAX
                    autocomplete="email"
                    error=Signal::derive(move || field_message(&saved.get(), "email"))
                />
                <button type="submit" class="primary" disabled=move || update.pending().get()>"Save profile"</button>
                <Show when=move || matches!(saved.get(), Some(Ok(_)))>
                    <p class="notice" role="status">"Profile saved."</p>
                </Show>
            </ActionForm>
        </section>
        <section class="card">
            <h2>"Change password"</h2>
            <p class="hint">"Changing your password logs you out everywhere, this browser included."</p>
            <ActionForm action=change>
                <FormError message=Signal::derive(move || form_message(&changed.get(), &password_fields)) />
                <Field
                    label="Current password"
                    name="current_password"
                    kind="password"
                    required=true
                    autocomplete="current-password"
                    error=Signal::derive(move || field_message(&changed.get(), "current_password"))
                />
                <Field
                    label="New password"
                    name="new_password"
                    kind="password"
                    required=true
                    autocomplete="new-password"
                    error=Signal::derive(move || field_message(&changed.get(), "new_password"))
                />
                <Field
                    label="Confirm new password"
                    name="confirm_password"
                    kind="password"
                    required=true
                    autocomplete="new-password"
                    error=Signal::derive(move || field_message(&changed.get(), "confirm_password"))
                />
                <button type="submit" class="primary" disabled=move || change.pending().get()>"Change password"</button>
            </ActionForm>
        </section>
    }
}

/// The groups the user belongs to, with their role in each.
#[component]
fn MyGroups() -> impl IntoView {
    let groups = Resource::new(|| (), |_| my_groups());
    view! {
        <section class="card">
            <h2>"Groups"</h2>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match groups.await {
                        Ok(groups) if groups.is_empty() => view! {
                            <p class="hint">"You are not in any group. An administrator can add you to one."</p>
                        }.into_any(),
                        Ok(groups) => view! {
                            <ul class="plain-list">
                                {groups.into_iter().map(|group| view! {
                                    <li>
                                        <a href=format!("/groups/{}", group.group)>{group.name}</a>
                                        {group.is_maintainer.then(|| view! { " " <span class="badge">"Maintainer"</span> })}
                                    </li>
                                }).collect_view()}
                            </ul>
                        }.into_any(),
                        Err(error) => view! { <p class="form-error" role="alert">{error.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}
