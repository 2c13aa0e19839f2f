//! Administration of infrastructure variables: the instance-wide defaults (download and
//! shared-state directories, parallelism) every project's builds get.

use super::forms::{ConfirmButton, FormError, form_message};
use super::layout::{AdminTabs, SessionUser};
use super::project_configuration::NewVariableFields;
use super::status::{ErrorPage, Forbidden};
use crate::api::configuration::{
    RemoveInfrastructureVariable, SetInfrastructureVariable, infrastructure_variables,
};
use crate::configuration::Variable;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn InfrastructurePage() -> impl IntoView {
    let set = ServerAction::<SetInfrastructureVariable>::new();
    let remove = ServerAction::<RemoveInfrastructureVariable>::new();
    let variables = Resource::new(
        move || (set.version().get(), remove.version().get()),
        |_| infrastructure_variables(),
    );
    view! {
        <Title text="Infrastructure variables" />
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                // Readable by everyone (projects show them); this page is for administrators.
                let is_admin = match use_context::<SessionUser>() {
                    Some(SessionUser(user)) => user.await.ok().flatten().is_some_and(|u| u.is_admin),
                    None => false,
                };
                if !is_admin {
                    return view! { <Forbidden /> }.into_any();
                }
                match variables.await {
                    Ok(list) => view! {
                        <AdminTabs />
                        <p class="hint">"Defaults for every project's builds, such as DL_DIR, SSTATE_DIR, BB_NUMBER_THREADS and PARALLEL_MAKE. Administrators may override them per project on its Configuration tab; others see them read-only."</p>
                        <FormError message=Signal::derive(move || form_message(&remove.value().get(), &[])) />
                        <InfrastructureList list remove />
                        <SetVariable set />
                    }
                    .into_any(),
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn InfrastructureList(
    list: Vec<Variable>,
    remove: ServerAction<RemoveInfrastructureVariable>,
) -> impl IntoView {
    if list.is_empty() {
        return view! {
            <section class="empty-state"><p>"No infrastructure variables yet."</p></section>
        }
        .into_any();
    }
    view! {
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
    }
    .into_any()
}

#[component]
fn SetVariable(set: ServerAction<SetInfrastructureVariable>) -> impl IntoView {
    let value = set.value();
    view! {
        <section class="card">
            <h2>"Set a variable"</h2>
            <p class="hint">"A variable with the name of an existing one replaces it."</p>
            <ActionForm action=set>
                <FormError message=Signal::derive(move || form_message(&value.get(), &["name", "kind", "choices", "value"])) />
                <NewVariableFields prefix="instance" error=Signal::derive(move || value.get().and_then(Result::err)) />
                <button type="submit" class="primary">"Save variable"</button>
            </ActionForm>
        </section>
    }
}
