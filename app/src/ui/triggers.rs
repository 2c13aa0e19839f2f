//! The trigger pages: every trigger a user may see, and the triggers of one scope (a project,
//! or global) with the form that adds one and the controls that turn them off or delete them.

use super::forms::{ConfirmButton, Field, FormError, field_message, form_message};
use super::pagination::{Pagination, page_number};
use super::processes::{ProcessTabs, when};
use super::status::ErrorPage;
use crate::api::processes::list_definitions;
use crate::api::triggers::{
    CreateTrigger, DeleteTrigger, SetTriggerEnabled, list_all_triggers, list_triggers,
};
use crate::types::{NewTrigger, Page, TriggerKind, TriggerList, TriggerRunView, TriggerView};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// The page where a scope's triggers are managed.
fn manage_href(project: &str) -> String {
    if project.is_empty() {
        "/processes/triggers/manage".to_owned()
    } else {
        format!(
            "/processes/triggers/manage?project={}",
            crate::url::encode_component(project)
        )
    }
}

fn hook_path(id: i64) -> String {
    format!("/hooks/{id}")
}

fn outcome_badge(outcome: &str) -> &'static str {
    match outcome {
        "started" => "badge active",
        _ => "badge disabled",
    }
}

/// What sets the trigger off, in a few words.
fn describe(kind: &TriggerKind, id: i64) -> String {
    match kind {
        TriggerKind::Cron {
            schedule,
            time_zone,
        } => format!("cron {schedule} ({time_zone})"),
        TriggerKind::Webhook { mapping } if mapping.is_empty() => {
            format!("webhook {}", hook_path(id))
        }
        TriggerKind::Webhook { mapping } => format!(
            "webhook {}, mapping {}",
            hook_path(id),
            mapping
                .iter()
                .map(|(field, pointer)| format!("{field} = {pointer}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[component]
pub fn AllTriggersPage() -> impl IntoView {
    let query = use_query_map();
    let page = page_number(query);
    let list = Resource::new(page, list_all_triggers);
    view! {
        <Title text="Triggers" />
        <ProcessTabs />
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match list.await {
                    Ok(list) => view! { <AllTriggers list /> }.into_any(),
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn AllTriggers(list: Page<TriggerView>) -> impl IntoView {
    let intro = view! {
        <p class="hint">
            "Every trigger you may see. Triggers are added on a project's Triggers link, or as "
            <a href=manage_href("")>"global triggers"</a>"."
        </p>
    };
    if list.items.is_empty() {
        return view! {
            {intro}
            <section class="empty-state">
                <h2>"No triggers yet"</h2>
                <p>"A trigger launches a process on a cron schedule or when a signed webhook call arrives, for example a push to a Git repository."</p>
            </section>
        }
        .into_any();
    }
    let position = list.position();
    view! {
        {intro}
        <TriggerTable triggers=list.items show_scope=true />
        <Pagination position href=Callback::new(|page| format!("/processes/triggers?page={page}")) />
    }
    .into_any()
}

#[component]
pub fn TriggersPage() -> impl IntoView {
    let query = use_query_map();
    let project = move || query.read().get("project").unwrap_or_default();
    let create = ServerAction::<CreateTrigger>::new();
    let enable = ServerAction::<SetTriggerEnabled>::new();
    let delete = ServerAction::<DeleteTrigger>::new();
    let triggers = Resource::new(
        move || {
            (
                project(),
                create.version().get(),
                enable.version().get(),
                delete.version().get(),
            )
        },
        |(project, ..)| list_triggers(project),
    );
    let definitions = Resource::new(project, list_definitions);
    view! {
        <Title text="Triggers" />
        <ProcessTabs />
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let (list, definitions) = (triggers.await, definitions.await);
                match (list, definitions) {
                    (Ok(list), Ok(definitions)) => {
                        let names = definitions.definitions.into_iter().map(|d| d.name).collect();
                        view! { <ScopeTriggers list names create enable delete /> }.into_any()
                    }
                    (Err(error), _) | (_, Err(error)) => view! { <ErrorPage error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ScopeTriggers(
    list: TriggerList,
    names: Vec<String>,
    create: ServerAction<CreateTrigger>,
    enable: ServerAction<SetTriggerEnabled>,
    delete: ServerAction<DeleteTrigger>,
) -> impl IntoView {
    let project = list.project.clone();
    let heading = if project.is_empty() {
        "Global triggers: they launch global definitions.".to_owned()
    } else {
        format!("Triggers of project {project}: they launch its definitions.")
    };
    let created = create.value();
    view! {
        <p class="hint">{heading}" "<a href="/processes/triggers">"All triggers"</a></p>
        {list.can_create.then(|| view! { <CreateForm project=project.clone() names create /> })}
        {move || match created.get() {
            Some(Ok(new)) => Some(view! { <Created new /> }),
            _ => None,
        }}
        <FormError message=Signal::derive(move || form_message(&enable.value().get(), &[])) />
        <FormError message=Signal::derive(move || form_message(&delete.value().get(), &[])) />
        {if list.triggers.is_empty() {
            view! { <section class="empty-state"><p>"No triggers here yet."</p></section> }.into_any()
        } else {
            let actions = TriggerActions { enable, delete };
            view! { <TriggerTable triggers=list.triggers show_scope=false actions /> }.into_any()
        }}
    }
}

#[component]
fn CreateForm(
    project: String,
    names: Vec<String>,
    create: ServerAction<CreateTrigger>,
) -> impl IntoView {
    let value = create.value();
    let kind = RwSignal::new("cron".to_owned());
    let fields = [
        "name",
        "definition",
        "kind",
        "fields",
        "schedule",
        "time_zone",
        "mapping",
    ];
    let no_definitions = names.is_empty();
    view! {
        <section class="card">
            <h2>"Add a trigger"</h2>
            {no_definitions.then(|| view! { <p class="hint">"Save a definition first: a trigger launches one."</p> })}
            <ActionForm action=create>
                <input type="hidden" name="project" value=project />
                <FormError message=Signal::derive(move || form_message(&value.get(), &fields)) />
                <Field label="Name" name="name" required=true maxlength=48 id_prefix="trigger-".to_owned()
                    error=Signal::derive(move || field_message(&value.get(), "name")) />
                <div class="field">
                    <label for="trigger-definition">"Definition"</label>
                    <select id="trigger-definition" name="definition" required=true>
                        {names.into_iter().map(|name| view! { <option value=name.clone()>{name.clone()}</option> }).collect_view()}
                    </select>
                    {move || field_message(&value.get(), "definition").map(|m| view! { <p class="field-error">{m}</p> })}
                </div>
                <div class="field">
                    <label for="trigger-kind">"Kind"</label>
                    <select id="trigger-kind" name="kind" on:change=move |ev| kind.set(event_target_value(&ev))>
                        <option value="cron">"Cron schedule"</option>
                        <option value="webhook">"Webhook"</option>
                    </select>
                </div>
                <fieldset hidden=move || kind.get() != "cron">
                    <legend>"Schedule"</legend>
                    <Field label="Cron schedule (minute hour day month weekday)" name="schedule" maxlength=128
                        id_prefix="trigger-".to_owned() value="0 2 * * *"
                        error=Signal::derive(move || field_message(&value.get(), "schedule")) />
                    <Field label="Time zone" name="time_zone" maxlength=64 id_prefix="trigger-".to_owned() value="UTC"
                        error=Signal::derive(move || field_message(&value.get(), "time_zone")) />
                    <p class="hint">"For example "<code>"*/15 * * * *"</code>" (every 15 minutes) or "<code>"0 2 * * mon-fri"</code>" (02:00 on weekdays), in a zone like "<code>"Europe/Helsinki"</code>"."</p>
                </fieldset>
                <fieldset hidden=move || kind.get() != "webhook">
                    <legend>"Webhook"</legend>
                    <div class="field">
                        <label for="trigger-mapping">"Fields from the payload: one "<code>"field = /json/pointer"</code>" per line"</label>
                        <textarea id="trigger-mapping" name="mapping" class="code" rows="4" spellcheck="false">"branch = /ref\n"</textarea>
                        {move || field_message(&value.get(), "mapping").map(|m| view! { <p class="field-error">{m}</p> })}
                    </div>
                </fieldset>
                <div class="field">
                    <label for="trigger-fields">"Fields (JSON) every launch starts with"</label>
                    <textarea id="trigger-fields" name="fields" class="code" rows="3" spellcheck="false"></textarea>
                    {move || field_message(&value.get(), "fields").map(|m| view! { <p class="field-error">{m}</p> })}
                </div>
                <button type="submit" class="primary" disabled=move || create.pending().get() || no_definitions>"Add trigger"</button>
            </ActionForm>
        </section>
    }
}

/// The notice after creating a trigger: a webhook's URL and secret, shown this once.
#[component]
fn Created(new: NewTrigger) -> impl IntoView {
    let name = new.trigger.name.clone();
    match new.secret {
        Some(secret) => view! {
            <section class="notice" role="status">
                <p>{format!("Webhook {name} added. Copy its secret now: it is not shown again.")}</p>
                <dl>
                    <dt>"Payload URL"</dt><dd><code data-hook-url="">{format!("{}{}", super::workers::window_origin(), hook_path(new.trigger.id))}</code></dd>
                    <dt>"Content type"</dt><dd><code>"application/json"</code></dd>
                    <dt>"Secret"</dt><dd><code class="secret" data-hook-secret="">{secret}</code></dd>
                </dl>
                <p class="hint">"GitHub signs calls with it (X-Hub-Signature-256); GitLab sends it as X-Gitlab-Token. Unsigned calls and calls over 1 MiB are refused."</p>
            </section>
        }
        .into_any(),
        None => view! {
            <section class="notice" role="status">
                <p>{format!(
                    "Trigger {name} added; it fires next at {}.",
                    new.trigger.next_run_at.map_or_else(|| "no time".to_owned(), when)
                )}</p>
            </section>
        }
        .into_any(),
    }
}

/// What a scope's page may do to its triggers.
#[derive(Clone, Copy)]
struct TriggerActions {
    enable: ServerAction<SetTriggerEnabled>,
    delete: ServerAction<DeleteTrigger>,
}

/// The triggers as a table; `actions` adds the column of buttons (shown on the rows the
/// reader may change).
#[component]
fn TriggerTable(
    triggers: Vec<TriggerView>,
    show_scope: bool,
    #[prop(optional)] actions: Option<TriggerActions>,
) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="cards triggers">
                <thead><tr>
                    <th scope="col">"Name"</th>
                    {show_scope.then(|| view! { <th scope="col">"Scope"</th> })}
                    <th scope="col">"Launches"</th>
                    <th scope="col">"On"</th>
                    <th scope="col">"State"</th>
                    <th scope="col">"Latest runs"</th>
                    {actions.is_some().then(|| view! { <th scope="col">"Actions"</th> })}
                </tr></thead>
                <tbody>
                    {triggers.into_iter().map(|trigger| view! { <TriggerRow trigger show_scope actions /> }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn TriggerRow(
    trigger: TriggerView,
    show_scope: bool,
    actions: Option<TriggerActions>,
) -> impl IntoView {
    let t = trigger;
    let (id, enabled) = (t.id, t.enabled);
    let state = match (t.enabled, t.next_run_at) {
        (false, _) => "disabled".to_owned(),
        (true, Some(next)) => format!("next {}", when(next)),
        (true, None) => "enabled".to_owned(),
    };
    let scope = if t.project.is_empty() {
        view! { <a href=manage_href("")>"global"</a> }.into_any()
    } else {
        view! { <a href=manage_href(&t.project)>{t.project_name.clone()}</a> }.into_any()
    };
    let question = format!(
        "Delete trigger {} and its runs? The processes it started stay.",
        t.name
    );
    let buttons = move |TriggerActions { enable, delete }: TriggerActions| {
        view! {
            <button type="button" on:click=move |_| { enable.dispatch(SetTriggerEnabled { id, enabled: !enabled }); }>
                {if enabled { "Disable" } else { "Enable" }}
            </button>
            <ConfirmButton label="Delete" question
                on_confirm=Callback::new(move |()| { delete.dispatch(DeleteTrigger { id }); }) />
        }
    };
    let can_edit = t.can_edit;
    view! {
        <tr data-trigger=t.name.clone()>
            <td data-label="Name"><strong>{t.name.clone()}</strong><br /><small>{format!("by {}", t.created_by)}</small></td>
            {show_scope.then(|| view! { <td data-label="Scope">{scope}</td> })}
            <td data-label="Launches">{t.definition.clone()}</td>
            <td data-label="On"><code>{describe(&t.kind, id)}</code></td>
            <td data-label="State"><span class=if enabled { "badge active" } else { "badge disabled" }>{state}</span></td>
            <td data-label="Latest runs"><RecentRuns runs=t.runs /></td>
            {actions.map(|actions| view! {
                <td data-label="Actions" class="actions">{can_edit.then(|| buttons(actions))}</td>
            })}
        </tr>
    }
}

/// The latest five runs of a trigger: when, and the process it started or why not.
#[component]
fn RecentRuns(runs: Vec<TriggerRunView>) -> impl IntoView {
    if runs.is_empty() {
        return view! { <span>"none yet"</span> }.into_any();
    }
    view! {
        <ul class="runs">
            {runs.into_iter().take(5).map(|run| view! {
                <li>
                    <span class=outcome_badge(&run.outcome)>{run.outcome.clone()}</span>" "
                    {when(run.at)}" "
                    {match run.process_id {
                        Some(p) => view! { <a href=format!("/processes/{p}")>{format!("#{p}")}</a> }.into_any(),
                        None => view! { <span>{run.message}</span> }.into_any(),
                    }}
                </li>
            }).collect_view()}
        </ul>
    }
    .into_any()
}
