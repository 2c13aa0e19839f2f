//! The import page: a project file (TOML, `schema = 1`) becomes a new private project.
//! A plain multipart form, so it works before (and without) the page's script.

use crate::domain::SLUG_MAX;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn ImportPage() -> impl IntoView {
    let query = use_query_map();
    let error = move || query.read().get("error").filter(|e| !e.is_empty());
    view! {
        <Title text="Import a project" />
        <h1>"Import a project"</h1>
        <section class="card">
            <p class="hint">"Choose a project file exported from Kiln (TOML, schema = 1). The new project is private and yours; secrets in the file have no values, so set them after importing."</p>
            {move || error().map(|message| view! { <p class="form-error" role="alert" id="import-error">{message}</p> })}
            <form method="post" action="/import-project" enctype="multipart/form-data">
                <div class="field">
                    <label for="import-file">"Project file"</label>
                    <input id="import-file" type="file" name="file" accept=".toml,application/toml,text/plain" required=true
                        aria-describedby=move || error().map(|_| "import-error") />
                </div>
                <div class="field">
                    <label for="import-slug">"Slug for the new project (empty: the file's)"</label>
                    <input id="import-slug" name="slug" maxlength=SLUG_MAX autocomplete="off" />
                </div>
                <button type="submit" class="primary">"Import"</button>
            </form>
        </section>
    }
}
