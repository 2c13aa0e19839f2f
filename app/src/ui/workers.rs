//! The Workers pages: the workers with their state and load, the participants with who
//! serves them, and (for administrators) the tokens workers connect with.

use super::forms::{ConfirmButton, Field, FormError, field_message, form_message};
use super::live::use_live;
use super::processes::when;
use super::status::ErrorPage;
use crate::api::workers::{
    CreateWorkerToken, DisconnectWorker, DrainWorker, RevokeWorkerToken, SaveParticipant,
    list_participants, list_worker_tokens, list_workers,
};
use crate::live::Topic;
use crate::types::{
    NewWorkerToken, ParticipantView, WorkerState, WorkerTokenView, WorkerView, WorkersOverview,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

fn duration(ms: i64) -> String {
    match ms {
        ms if ms < 1000 => format!("{ms} ms"),
        ms if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        ms => format!("{}m {}s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

#[component]
fn WorkerTabs(#[prop(optional)] manage: bool) -> impl IntoView {
    view! {
        <h1>"Workers"</h1>
        <nav class="tabs" aria-label="Workers">
            <A href="/workers" exact=true>"Workers"</A>
            <A href="/workers/participants">"Participants"</A>
            {manage.then(|| view! { <A href="/workers/tokens">"Tokens"</A> })}
        </nav>
    }
}

#[component]
pub fn WorkersPage() -> impl IntoView {
    let drain = ServerAction::<DrainWorker>::new();
    let disconnect = ServerAction::<DisconnectWorker>::new();
    // The first overview comes with the page; later ones update the rows in place, so that
    // a question being asked on one row survives a change on another.
    let first = Resource::new(|| (), |_| list_workers());
    let live = use_live(|| Some(Topic::Workers));
    let later = Resource::new(
        move || {
            (
                drain.version().get(),
                disconnect.version().get(),
                live.get(),
            )
        },
        |_| list_workers(),
    );
    view! {
        <Title text="Workers" />
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match first.await {
                    Ok(overview) => view! {
                        <WorkerTabs manage=overview.manage />
                        <FormError message=Signal::derive(move || form_message(&drain.value().get(), &[])) />
                        <FormError message=Signal::derive(move || form_message(&disconnect.value().get(), &[])) />
                        <WorkerTable overview later drain disconnect />
                    }
                    .into_any(),
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn WorkerTable(
    overview: WorkersOverview,
    later: Resource<Result<WorkersOverview, crate::error::AppError>>,
    drain: ServerAction<DrainWorker>,
    disconnect: ServerAction<DisconnectWorker>,
) -> impl IntoView {
    let manage = overview.manage;
    let workers = RwSignal::new(overview.workers);
    Effect::new(move || {
        if let Some(Ok(overview)) = later.get() {
            workers.set(overview.workers);
        }
    });
    view! {
        <Show when=move || !workers.read().is_empty() fallback=|| view! {
            <section class="empty-state">
                <h2>"No workers yet"</h2>
                <p>"Workers appear here once they connect. Kiln runs its own embedded workers unless they are turned off; to add a build host, create a token on the Tokens tab and run "<code>"kiln worker --server URL --token TOKEN"</code>" there."</p>
            </section>
        }>
            <div class="table-wrap">
                <table class="cards workers">
                    <thead><tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Host"</th>
                        <th scope="col">"State"</th>
                        <th scope="col">"Load"</th>
                        <th scope="col">"Participants"</th>
                        <th scope="col">"Last heard from"</th>
                        {manage.then(|| view! { <th scope="col">"Running"</th><th scope="col">"Actions"</th> })}
                    </tr></thead>
                    <tbody>
                        <For each=move || workers.get() key=|worker| worker.id let:worker>
                            <WorkerRow id=worker.id workers manage drain disconnect />
                        </For>
                    </tbody>
                </table>
            </div>
        </Show>
    }
    .into_any()
}

/// One worker's row; its cells follow the worker's latest state.
#[component]
fn WorkerRow(
    id: i64,
    workers: RwSignal<Vec<WorkerView>>,
    manage: bool,
    drain: ServerAction<DrainWorker>,
    disconnect: ServerAction<DisconnectWorker>,
) -> impl IntoView {
    let worker = Memo::new(move |_| workers.with(|list| list.iter().find(|w| w.id == id).cloned()));
    let field = move |read: fn(&WorkerView) -> String| {
        move || worker.with(|w| w.as_ref().map(read).unwrap_or_default())
    };
    let state =
        Memo::new(move |_| worker.with(|w| w.as_ref().map_or(WorkerState::Offline, |w| w.state)));
    let name = worker.with_untracked(|w| w.as_ref().map(|w| w.name.clone()).unwrap_or_default());
    let running = move || {
        worker.with(|w| {
            let items = w.as_ref().map(|w| w.running.clone()).unwrap_or_default();
            if items.is_empty() {
                return view! { <span>"—"</span> }.into_any();
            }
            view! {
                <ul class="plain">
                    {items.into_iter().map(|item| {
                        let progress = item.progress.clone().map(|p| format!(" — {p}")).unwrap_or_default();
                        view! {
                            <li>
                                <a href=format!("/processes/{}", item.instance)>{format!("process {}", item.instance)}</a>
                                {format!(" {} (workitem {}, attempt {}){progress}", item.participant, item.workitem, item.attempt)}
                            </li>
                        }
                    }).collect_view()}
                </ul>
            }
            .into_any()
        })
    };
    let badge = move || match state.get() {
        WorkerState::Online => "badge active",
        WorkerState::Draining => "badge",
        WorkerState::Offline => "badge disabled",
    };
    let question = format!("Disconnect {name}? What it runs is handed elsewhere or fails.");
    let key = name.clone();
    view! {
        <tr data-worker=key>
            <td data-label="Name">
                {name}
                {move || worker.with(|w| w.as_ref().is_some_and(|w| w.embedded)).then(|| view! { " " <span class="badge">"embedded"</span> })}
                {move || worker.with(|w| w.as_ref().and_then(|w| w.token.clone())).map(|t| view! { <br /><small>{format!("token {t}")}</small> })}
            </td>
            <td data-label="Host">{field(|w| w.host.clone())}<br /><small>{field(|w| format!("version {}", w.version))}</small></td>
            <td data-label="State"><span class=badge>{move || state.get().label()}</span></td>
            <td data-label="Load">{field(|w| format!("{} of {}", w.load, w.capacity))}</td>
            <td data-label="Participants">{field(|w| w.participants.join(", "))}</td>
            <td data-label="Last heard from">{field(|w| when(w.last_seen_at))}</td>
            {manage.then(|| view! {
                <td data-label="Running">{running}</td>
                <td data-label="Actions" class="actions">
                    {move || (state.get() != WorkerState::Offline).then(|| {
                        let draining = state.get_untracked() == WorkerState::Draining;
                        let question = question.clone();
                        view! {
                            <button type="button" on:click=move |_| { drain.dispatch(DrainWorker { id, draining: !draining }); }>
                                {if draining { "Resume" } else { "Drain" }}
                            </button>
                            <ConfirmButton label="Disconnect"
                                question
                                on_confirm=Callback::new(move |()| { disconnect.dispatch(DisconnectWorker { id }); }) />
                        }
                    })}
                </td>
            })}
        </tr>
    }
    .into_any()
}

#[component]
pub fn ParticipantsPage() -> impl IntoView {
    let save = ServerAction::<SaveParticipant>::new();
    let live = use_live(|| Some(Topic::Workers));
    let participants = Resource::new(
        move || (live.get(), save.version().get()),
        |_| list_participants(),
    );
    let manage = Resource::new(|| (), |_| list_workers());
    view! {
        <Title text="Participants" />
        // The form stays out of the live part, so that what is typed survives an update.
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let manage = manage.await.map(|o| o.manage).unwrap_or(false);
                view! {
                    <WorkerTabs manage />
                    {manage.then(|| view! { <ParticipantForm save /> })}
                }
            })}
        </Suspense>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match participants.await {
                    Ok(list) => view! { <ParticipantTable list /> }.into_any(),
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ParticipantForm(save: ServerAction<SaveParticipant>) -> impl IntoView {
    let value = save.value();
    let fields = [
        "name",
        "kind",
        "description",
        "default_timeout",
        "worker_loss_retries",
        "projects",
        "users",
        "groups",
    ];
    view! {
        <details class="card">
            <summary>"Register or change a participant"</summary>
            <p class="hint">"A worker serves the participants it names with --participants; each must be registered here first. Saving a registered name changes it (built-in ones cannot change)."</p>
            <ActionForm action=save>
                <FormError message=Signal::derive(move || form_message(&value.get(), &fields)) />
                <Field label="Name" name="name" required=true maxlength=64 id_prefix="participant-".to_owned()
                    error=Signal::derive(move || field_message(&value.get(), "name")) />
                <div class="field">
                    <label for="participant-kind">"Served by"</label>
                    <select id="participant-kind" name="kind">
                        <option value="worker">"workers"</option>
                        <option value="human">"people (the Inbox)"</option>
                    </select>
                    {move || field_message(&value.get(), "kind").map(|m| view! { <p class="field-error">{m}</p> })}
                </div>
                <Field label="Description" name="description" maxlength=512 id_prefix="participant-".to_owned()
                    error=Signal::derive(move || field_message(&value.get(), "description")) />
                <Field label="Default timeout (such as 30m; empty for none)" name="default_timeout" maxlength=32 id_prefix="participant-".to_owned()
                    error=Signal::derive(move || field_message(&value.get(), "default_timeout")) />
                <Field label="If its worker is lost, try elsewhere this many times (0: fail the step)" name="worker_loss_retries" kind="number" value="1" id_prefix="participant-".to_owned()
                    error=Signal::derive(move || field_message(&value.get(), "worker_loss_retries")) />
                <Field label="Only for these projects (slugs; empty for every project)" name="projects" maxlength=4096 id_prefix="participant-".to_owned()
                    error=Signal::derive(move || field_message(&value.get(), "projects")) />
                <Field label="Only these users may launch processes using it (usernames)" name="users" maxlength=4096 id_prefix="participant-".to_owned()
                    error=Signal::derive(move || field_message(&value.get(), "users")) />
                <Field label="…or members of these groups (names, separated by commas)" name="groups" maxlength=4096 id_prefix="participant-".to_owned()
                    error=Signal::derive(move || field_message(&value.get(), "groups")) />
                <button type="submit" class="primary" disabled=move || save.pending().get()>"Save participant"</button>
                {move || matches!(value.get(), Some(Ok(()))).then(|| view! { <p class="notice" role="status">"Saved."</p> })}
            </ActionForm>
        </details>
    }
}

/// Who may use a participant, in a few words.
fn available_to(p: &ParticipantView) -> String {
    let projects = if p.projects.is_empty() {
        "every project".to_owned()
    } else {
        format!("projects {}", p.projects.join(", "))
    };
    let people: Vec<String> = p
        .users
        .iter()
        .cloned()
        .chain(p.groups.iter().map(|g| format!("group {g}")))
        .collect();
    if people.is_empty() {
        projects
    } else {
        format!("{projects}; launched by {}", people.join(", "))
    }
}

#[component]
fn ParticipantTable(list: Vec<ParticipantView>) -> impl IntoView {
    view! {
        <p class="hint">"Participants are what process steps hand work to: built into Kiln, served by workers, or by people."</p>
        <div class="table-wrap">
            <table class="cards participants">
                <thead><tr>
                    <th scope="col">"Name"</th>
                    <th scope="col">"Kind"</th>
                    <th scope="col">"Served by"</th>
                    <th scope="col">"Queued"</th>
                    <th scope="col">"Running"</th>
                    <th scope="col">"Recent median"</th>
                    <th scope="col">"If its worker is lost"</th>
                    <th scope="col">"Timeout"</th>
                    <th scope="col">"For"</th>
                </tr></thead>
                <tbody>
                    {list.into_iter().map(|p| {
                        let served = match p.kind.as_str() {
                            "built_in" => "Kiln itself".to_owned(),
                            "human" => "people".to_owned(),
                            _ if p.workers.is_empty() => "no worker online".to_owned(),
                            _ => p.workers.join(", "),
                        };
                        let loss = if p.kind != "worker" {
                            "—".to_owned()
                        } else if p.worker_loss_retries == 0 {
                            "fail the step".to_owned()
                        } else {
                            format!("try elsewhere, up to {} times", p.worker_loss_retries)
                        };
                        view! {
                            <tr data-participant=p.name.clone()>
                                <td data-label="Name"><strong>{p.name.clone()}</strong><br /><small>{p.description.clone()}</small></td>
                                <td data-label="Kind">{p.kind.replace('_', "-")}</td>
                                <td data-label="Served by">{served}</td>
                                <td data-label="Queued">{p.queued}</td>
                                <td data-label="Running">{p.running}</td>
                                <td data-label="Recent median">{p.recent_median_ms.map_or_else(|| "—".to_owned(), duration)}</td>
                                <td data-label="If its worker is lost">{loss}</td>
                                <td data-label="Timeout">{p.default_timeout_ms.map_or_else(|| "—".to_owned(), duration)}</td>
                                <td data-label="For">{available_to(&p)}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
pub fn TokensPage() -> impl IntoView {
    let create = ServerAction::<CreateWorkerToken>::new();
    let revoke = ServerAction::<RevokeWorkerToken>::new();
    let tokens = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| list_worker_tokens(),
    );
    let created = create.value();
    view! {
        <Title text="Worker tokens" />
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match tokens.await {
                    Ok(list) => view! {
                        <WorkerTabs manage=true />
                        <section class="card">
                            <h2>"Create a token"</h2>
                            <p class="hint">"A worker connects with a token. Kiln shows it once and keeps only its hash."</p>
                            <ActionForm action=create>
                                <FormError message=Signal::derive(move || form_message(&created.get(), &["name"])) />
                                <Field label="Name" name="name" required=true maxlength=64
                                    error=Signal::derive(move || field_message(&created.get(), "name")) />
                                <button type="submit" class="primary" disabled=move || create.pending().get()>"Create token"</button>
                            </ActionForm>
                        </section>
                        {move || match created.get() {
                            Some(Ok(token)) => Some(view! { <NewToken token /> }),
                            _ => None,
                        }}
                        <FormError message=Signal::derive(move || form_message(&revoke.value().get(), &[])) />
                        <TokenTable list revoke />
                    }
                    .into_any(),
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn NewToken(token: NewWorkerToken) -> impl IntoView {
    let origin = window_origin();
    view! {
        <section class="notice" role="status">
            <p>{format!("Token {} created. Copy it now: it is not shown again.", token.token.name)}</p>
            <p><code class="secret" data-token-secret="">{token.secret.clone()}</code></p>
            <p>"Start a worker with it:"</p>
            <pre><code>{format!("KILN_WORKER_TOKEN={} kiln worker --server {origin} --participants shell --capacity 1", token.secret)}</code></pre>
        </section>
    }
}

/// The address the browser reached Kiln at (the server's own idea of it while rendering).
pub(super) fn window_origin() -> String {
    #[cfg(feature = "hydrate")]
    {
        if let Ok(origin) = window().location().origin() {
            return origin;
        }
    }
    "URL".to_owned()
}

#[component]
fn TokenTable(
    list: Vec<WorkerTokenView>,
    revoke: ServerAction<RevokeWorkerToken>,
) -> impl IntoView {
    if list.is_empty() {
        return view! { <section class="empty-state"><p>"No tokens yet. The embedded workers need none; create one for each build host."</p></section> }.into_any();
    }
    view! {
        <div class="table-wrap">
            <table class="cards tokens">
                <thead><tr>
                    <th scope="col">"Name"</th>
                    <th scope="col">"Starts with"</th>
                    <th scope="col">"Created"</th>
                    <th scope="col">"Last used"</th>
                    <th scope="col">"State"</th>
                    <th scope="col">"Actions"</th>
                </tr></thead>
                <tbody>
                    {list.into_iter().map(|token| {
                        let id = token.id;
                        let name = token.name.clone();
                        view! {
                            <tr data-token=token.name.clone()>
                                <td data-label="Name">{token.name.clone()}</td>
                                <td data-label="Starts with"><code>{format!("{}…", token.prefix)}</code></td>
                                <td data-label="Created">{format!("{} by {}", when(token.created_at), token.created_by)}</td>
                                <td data-label="Last used">{token.last_used_at.map_or_else(|| "never".to_owned(), when)}</td>
                                <td data-label="State">
                                    {match token.revoked_at {
                                        Some(at) => view! { <span class="badge disabled">{format!("revoked {}", when(at))}</span> }.into_any(),
                                        None => view! { <span class="badge active">"active"</span> }.into_any(),
                                    }}
                                </td>
                                <td data-label="Actions" class="actions">
                                    {token.revoked_at.is_none().then(|| view! {
                                        <ConfirmButton label="Revoke"
                                            question=format!("Revoke {name}? Workers using it are disconnected and cannot come back with it.")
                                            on_confirm=Callback::new(move |()| { revoke.dispatch(RevokeWorkerToken { id }); }) />
                                    })}
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
