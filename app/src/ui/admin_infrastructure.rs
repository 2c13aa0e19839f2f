//! Administration of infrastructure variables: the instance-wide defaults (download and
//! shared-state directories, parallelism) every project's builds get.

use super::forms::{ConfirmButton, FormError, form_message};
use super::layout::AdminTabs;
use super::project_configuration::NewVariableFields;
use super::status::{ErrorPage, Forbidden};
use crate::api::configuration::{
    RemoveInfrastructureVariable, SetInfrastructureVariable, infrastructure_variables,
};
use crate::types::CurrentUser;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn InfrastructurePage() -> impl IntoView {
    let is_admin = use_context::<CurrentUser>().is_some_and(|user| user.is_admin);
    if !is_admin {
        return view! { <Forbidden /> }.into_any();
    }
    let set = ServerAction::<SetInfrastructureVariable>::new();
    let remove = ServerAction::<RemoveInfrastructureVariable>::new();
    let variables = Resource::new(
        move || (set.version().get(), remove.version().get()),
        |_| infrastructure_variables(),
    );
    let set_value = set.value();
    view! {
        <Title text="Infrastructure variables" />
        <AdminTabs />
        <p class="hint">"Defaults for every project's builds, such as DL_DIR, SSTATE_DIR, BB_NUMBER_THREADS and PARALLEL_MAKE. Administrators may override them per project on its Configuration tab; others see them read-only."</p>
        <FormError message=Signal::derive(move || form_message(&remove.value().get(), &[])) />
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match variables.await {
                    Ok(list) if list.is_empty() => view! {
                        <section class="empty-state"><p>"No infrastructure variables yet."</p></section>
                    }.into_any(),
                    Ok(list) => view! {
                        <div class="table-wrap">
                            <table class="cards variables">
                                <thead><tr>
                                    <th scope="col">"Name"</th><th scope="col">"Type"</th><th scope="col">"Value"</th><th scope="col">"Actions"</th>
                                </tr></thead>
                                <tbody>
                                    {list.into_iter().map(|variable| {
                                        let name = variable.name.clone();
                                        view! {
                                            <tr data-variable=variable.name.clone()>
                                                <td data-label="Name">{variable.name.clone()}{variable.secret.then_some(" (secret)")}</td>
                                                <td data-label="Type">{variable.kind.name()}</td>
                                                <td data-label="Value"><code>{variable.value.clone()}</code></td>
                                                <td data-label="Actions" class="actions">
                                                    <ConfirmButton label="Remove" question=format!("Remove {name}?")
                                                        on_confirm=Callback::new(move |()| { remove.dispatch(RemoveInfrastructureVariable { name: name.clone() }); }) />
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any(),
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                }
            })}
        </Suspense>
        <section class="card">
            <h2>"Set a variable"</h2>
            <p class="hint">"A variable with the name of an existing one replaces it."</p>
            <ActionForm action=set>
                <FormError message=Signal::derive(move || form_message(&set_value.get(), &["name", "kind", "choices", "value"])) />
                <NewVariableFields prefix="instance" error=Signal::derive(move || set_value.get().and_then(Result::err)) />
                <button type="submit" class="primary">"Save variable"</button>
            </ActionForm>
        </section>
    }
    .into_any()
}
