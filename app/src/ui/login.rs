//! The login page.

use super::forms::{Field, FormError, field_message, form_message};
use crate::api::auth::Login;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let next = query
        .read_untracked()
        .get("next")
        .unwrap_or_else(|| "/".into());
    let password_changed =
        query.read_untracked().get("notice").as_deref() == Some("password-changed");
    let login = ServerAction::<Login>::new();
    let value = login.value();
    Effect::new(move || {
        if let Some(Ok(next)) = value.get() {
            let _ = window().location().set_href(&next);
        }
    });
    let fields = ["username", "password"];
    view! {
        <Title text="Log in" />
        <main class="login">
            <h1 class="brand">"Kiln"</h1>
            <section class="card">
                <h2>"Log in"</h2>
                <Show when=move || password_changed>
                    <p class="notice" role="status">"Your password was changed. Log in with the new one."</p>
                </Show>
                <FormError message=Signal::derive(move || form_message(&value.get(), &fields)) />
                <ActionForm action=login>
                    <input type="hidden" name="next" value=next />
                    <Field
                        label="Username"
                        name="username"
                        required=true
                        autocomplete="username"
                        error=Signal::derive(move || field_message(&value.get(), "username"))
                    />
                    <Field
                        label="Password"
                        name="password"
                        kind="password"
                        required=true
                        autocomplete="current-password"
                        error=Signal::derive(move || field_message(&value.get(), "password"))
                    />
                    <button type="submit" class="primary" disabled=move || login.pending().get()>
                        {move || if login.pending().get() { "Logging in…" } else { "Log in" }}
                    </button>
                </ActionForm>
            </section>
        </main>
    }
}
