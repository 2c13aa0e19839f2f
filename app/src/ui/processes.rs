//! The process pages: the processes a user may see, the definitions of a scope, the
//! definition editor (checked as you type) with its launch form, and one process with its
//! tree, fields, history and controls.

use super::forms::{ConfirmButton, FormError, field_message, form_message};
use super::live::use_live;
use super::pagination::{Pagination, page_number};
use super::status::ErrorPage;
use crate::api::processes::{
    ControlProcess, LaunchProcess, SaveDefinition, check_definition, list_definitions,
    list_processes, process_detail, read_definition,
};
use crate::live::Topic;
use crate::types::{DefinitionList, Page, ProcessSummary, ProcessView};
use crate::workflow::outline::{NodeState, OutlineRow};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

/// A new definition's starting text.
const TEMPLATE: &str = "name: my-process\ndescription: What this process is for.\nfields: { branch: main }\nprocess:\n  sequence:\n    - participant: shell\n      params: { command: [\"echo\", \"building ${branch}\"] }\n    - participant: log\n      params: { message: done }\n";

/// A moment as the process and worker pages show it.
pub(super) fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn scope_query(project: &str) -> String {
    if project.is_empty() {
        String::new()
    } else {
        format!("project={}", crate::url::encode_component(project))
    }
}

fn editor_href(project: &str, name: &str) -> String {
    let mut href = "/processes/definitions/edit?".to_owned();
    let scope = scope_query(project);
    if !scope.is_empty() {
        href.push_str(&scope);
        href.push('&');
    }
    href.push_str("name=");
    href.push_str(&crate::url::encode_component(name));
    href
}

fn status_badge(status: &str) -> &'static str {
    match status {
        "finished" => "badge active",
        "error" | "killed" | "cancelled" => "badge disabled",
        _ => "badge",
    }
}

#[component]
pub(super) fn ProcessTabs() -> impl IntoView {
    view! {
        <h1>"Processes"</h1>
        <nav class="tabs" aria-label="Processes">
            <A href="/processes" exact=true>"Processes"</A>
            <A href="/processes/definitions">"Global definitions"</A>
            <A href="/processes/triggers">"Triggers"</A>
        </nav>
    }
}

#[component]
pub fn ProcessesPage() -> impl IntoView {
    let query = use_query_map();
    let page = page_number(query);
    let project = move || query.read().get("project").unwrap_or_default();
    let live = use_live(|| Some(Topic::Processes));
    let list = Resource::new(
        move || (project(), page(), live.get()),
        |(project, page, _)| list_processes(project, page),
    );
    view! {
        <Title text="Processes" />
        <ProcessTabs />
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match list.await {
                    Ok(list) => view! { <ProcessTable list project=project() /> }.into_any(),
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ProcessTable(list: Page<ProcessSummary>, project: String) -> impl IntoView {
    if list.items.is_empty() {
        return view! {
            <section class="empty-state">
                <h2>"No processes yet"</h2>
                <p>"Processes appear here when a definition is launched: from its page, with "<code>"kiln process launch"</code>", or by a trigger (see the Triggers tab). Definitions are on the Global definitions tab and on each project's Processes link."</p>
            </section>
        }
        .into_any();
    }
    let position = list.position();
    let scope = scope_query(&project);
    view! {
        <div class="table-wrap">
            <table class="cards processes">
                <thead><tr>
                    <th scope="col">"Process"</th>
                    <th scope="col">"Definition"</th>
                    <th scope="col">"Project"</th>
                    <th scope="col">"Status"</th>
                    <th scope="col">"Launched"</th>
                    <th scope="col">"Finished"</th>
                </tr></thead>
                <tbody>
                    {list.items.into_iter().map(|p| view! {
                        <tr data-process=p.id>
                            <td data-label="Process"><a href=format!("/processes/{}", p.id)>{format!("#{}", p.id)}</a></td>
                            <td data-label="Definition">{p.definition.clone()}</td>
                            <td data-label="Project">{match p.project.clone() {
                                Some(slug) => view! { <a href=format!("/projects/{slug}")>{slug.clone()}</a> }.into_any(),
                                None => view! { <span>"global"</span> }.into_any(),
                            }}</td>
                            <td data-label="Status"><span class=status_badge(&p.status)>{p.status.clone()}</span></td>
                            <td data-label="Launched">{format!("{} by {}", when(p.created_at), p.launched_by)}</td>
                            <td data-label="Finished">{p.finished_at.map_or_else(|| "—".to_owned(), when)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        <Pagination position href=Callback::new(move |page| {
            if scope.is_empty() { format!("/processes?page={page}") } else { format!("/processes?{scope}&page={page}") }
        }) />
    }
    .into_any()
}

#[component]
pub fn DefinitionsPage() -> impl IntoView {
    let query = use_query_map();
    let project = move || query.read().get("project").unwrap_or_default();
    let list = Resource::new(project, list_definitions);
    view! {
        <Title text="Process definitions" />
        <ProcessTabs />
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match list.await {
                    Ok(list) => view! { <DefinitionTable list /> }.into_any(),
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn DefinitionTable(list: DefinitionList) -> impl IntoView {
    let project = list.project.clone();
    let heading = if project.is_empty() {
        "Global definitions: every project may call them as subprocesses.".to_owned()
    } else {
        format!("Definitions of project {project}; the global ones are available to it too.")
    };
    let new_href = editor_href(&project, "");
    let processes_href = if project.is_empty() {
        "/processes".to_owned()
    } else {
        format!("/processes?{}", scope_query(&project))
    };
    view! {
        <p class="hint">{heading}" "<a href=processes_href>"Its processes"</a></p>
        {list.can_edit.then(|| view! { <p><a class="button primary" href=new_href>"New definition"</a></p> })}
        {if list.definitions.is_empty() {
            view! { <section class="empty-state"><p>"No definitions here yet."</p></section> }.into_any()
        } else {
            view! {
                <div class="table-wrap">
                    <table class="cards definitions">
                        <thead><tr>
                            <th scope="col">"Name"</th><th scope="col">"Version"</th><th scope="col">"Saved"</th>
                        </tr></thead>
                        <tbody>
                            {list.definitions.into_iter().map(|d| view! {
                                <tr data-definition=d.name.clone()>
                                    <td data-label="Name"><a href=editor_href(&project, &d.name)>{d.name.clone()}</a></td>
                                    <td data-label="Version">{d.version}</td>
                                    <td data-label="Saved">{format!("{} by {}", when(d.updated_at), d.author)}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            }.into_any()
        }}
    }
}

/// The editor of one definition (`name` empty: a new one), with its launch form.
#[component]
pub fn DefinitionEditorPage() -> impl IntoView {
    let query = use_query_map();
    let project = move || query.read().get("project").unwrap_or_default();
    let name = move || query.read().get("name").unwrap_or_default();
    let detail = Resource::new(
        move || (project(), name()),
        |(project, name)| async move {
            if name.is_empty() {
                let list = list_definitions(project).await?;
                Ok((None, list.can_edit, list.can_launch))
            } else {
                let detail = read_definition(project, name).await?;
                let (edit, launch) = (detail.can_edit, detail.can_launch);
                Ok((Some(detail), edit, launch))
            }
        },
    );
    view! {
        <Title text="Process definition" />
        <ProcessTabs />
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let detail = detail.await;
                Unsuspend::new(move || match detail {
                    Ok((detail, can_edit, can_launch)) => {
                        let source = detail.as_ref().map_or_else(|| TEMPLATE.to_owned(), |d| d.source.clone());
                        let fields = detail.as_ref().map(|d| d.fields.clone()).unwrap_or_default();
                        let saved_name = detail.as_ref().map(|d| d.summary.name.clone());
                        let versions = detail.map(|d| d.versions).unwrap_or_default();
                        view! {
                            <Editor project=project() source can_edit />
                            {saved_name.filter(|_| can_launch).map(|name| view! { <LaunchForm project=project() name fields /> })}
                            {(!versions.is_empty()).then(|| view! {
                                <section class="card">
                                    <h2>"Versions"</h2>
                                    <ul class="plain versions">
                                        {versions.into_iter().map(|v| view! { <li>{format!("version {} saved {} by {}", v.version, when(v.updated_at), v.author)}</li> }).collect_view()}
                                    </ul>
                                </section>
                            })}
                        }
                        .into_any()
                    }
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                })
            })}
        </Suspense>
    }
}

#[component]
fn Editor(project: String, source: String, can_edit: bool) -> impl IntoView {
    let text = RwSignal::new(source);
    let check_project = project.clone();
    let check = Resource::new(
        move || text.get(),
        move |source| check_definition(check_project.clone(), source),
    );
    let save = ServerAction::<SaveDefinition>::new();
    let saved = save.value();
    let save_project = project.clone();
    Effect::new(move || {
        if let Some(Ok(summary)) = saved.get() {
            // Open the saved definition (a new one gets its own address).
            let href = editor_href(&save_project, &summary.name);
            if window()
                .location()
                .href()
                .ok()
                .is_some_and(|h| !h.ends_with(&href))
            {
                let _ = window().location().set_href(&href);
            }
        }
    });
    view! {
        <section class="card editor">
            <h2>"Definition"</h2>
            <label for="definition-source">"YAML text, checked as you type"</label>
            <textarea id="definition-source" class="code" rows="20" spellcheck="false"
                readonly=!can_edit
                aria-describedby="definition-problems"
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))
            >{super::raw_text::escaped(text.get_untracked())}</textarea>
            <div id="definition-problems" aria-live="polite">
                <Suspense fallback=|| view! { <p class="loading">"Checking…"</p> }>
                    {move || Suspend::new(async move {
                        match check.await {
                            Ok(check) if check.problems.is_empty() => view! {
                                <p class="notice" role="status">{format!("{} is valid.", check.name)}</p>
                                <Outline rows=check.outline />
                            }.into_any(),
                            Ok(check) => view! {
                                <ul class="problems">
                                    {check.problems.into_iter().map(|p| view! {
                                        <li class="field-error">{format!("line {}, column {}: {}", p.line, p.column, p.message)}</li>
                                    }).collect_view()}
                                </ul>
                            }.into_any(),
                            Err(error) => view! { <p class="form-error">{error.message()}</p> }.into_any(),
                        }
                    })}
                </Suspense>
            </div>
            {can_edit.then(|| view! {
                <FormError message=Signal::derive(move || form_message(&saved.get(), &[])) />
                {move || field_message(&saved.get(), "source").map(|_| view! { <p class="form-error">"Not saved: fix the problems above first."</p> })}
                {move || match saved.get() {
                    Some(Ok(summary)) => Some(view! { <p class="notice" role="status">{format!("Saved {} version {}.", summary.name, summary.version)}</p> }),
                    _ => None,
                }}
                <button type="button" class="primary" disabled=move || save.pending().get()
                    on:click=move |_| { save.dispatch(SaveDefinition { project: project.clone(), source: text.get_untracked() }); }>
                    "Save"
                </button>
            })}
        </section>
    }
}

#[component]
fn LaunchForm(project: String, name: String, fields: String) -> impl IntoView {
    let launch = ServerAction::<LaunchProcess>::new();
    let value = launch.value();
    Effect::new(move || {
        if let Some(Ok(id)) = value.get() {
            let _ = window().location().set_href(&format!("/processes/{id}"));
        }
    });
    view! {
        <section class="card">
            <h2>{format!("Launch {name}")}</h2>
            <ActionForm action=launch>
                <input type="hidden" name="project" value=project />
                <input type="hidden" name="name" value=name />
                <FormError message=Signal::derive(move || form_message(&value.get(), &["fields"])) />
                <div class="field">
                    <label for="launch-fields">"Fields (JSON), over the definition's defaults"</label>
                    <textarea id="launch-fields" name="fields" class="code" rows="6" spellcheck="false">{super::raw_text::escaped(fields)}</textarea>
                    {move || field_message(&value.get(), "fields").map(|m| view! { <p class="field-error">{m}</p> })}
                </div>
                <button type="submit" class="primary" disabled=move || launch.pending().get()>"Launch"</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn Outline(rows: Vec<OutlineRow>) -> impl IntoView {
    view! {
        <ol class="outline">
            {rows.into_iter().map(|row| {
                let state = row.state;
                view! {
                    <li class=format!("node {}", state.label()) data-depth=row.depth.min(12)
                        data-node=row.node data-state=state.label()>
                        <span class="label">{row.label}</span>
                        {(state != NodeState::Pending).then(|| view! { " " <span class="state">{state.label()}</span> })}
                        <small>{format!(" line {}", row.line)}</small>
                    </li>
                }
            }).collect_view()}
        </ol>
    }
}

#[component]
pub fn ProcessPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || {
        params
            .read()
            .get("id")
            .and_then(|id| id.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let control = ServerAction::<ControlProcess>::new();
    let live = use_live(move || Some(Topic::Process(id())));
    let process = Resource::new(
        move || (id(), control.version().get(), live.get()),
        |(id, ..)| process_detail(id),
    );
    view! {
        <Title text=move || format!("Process {}", id()) />
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match process.await {
                    Ok(view) => view! { <Process view control /> }.into_any(),
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Process(view: ProcessView, control: ServerAction<ControlProcess>) -> impl IntoView {
    let summary = view.summary.clone();
    let id = summary.id;
    let status = summary.status.clone();
    let over = matches!(status.as_str(), "finished" | "cancelled" | "killed");
    let run = move |command: &'static str, flow: u64| {
        control.dispatch(ControlProcess {
            id,
            command: command.to_owned(),
            flow,
        });
    };
    let history_note = (view.earlier_steps > 0)
        .then(|| format!("{} earlier steps are not shown.", view.earlier_steps));
    view! {
        <h1>{format!("Process #{id}: {}", summary.definition)}</h1>
        <dl class="facts">
            <dt>"Status"</dt><dd><span class=status_badge(&status) data-status=status.clone()>{status.clone()}</span></dd>
            <dt>"Project"</dt><dd>{match summary.project.clone() {
                Some(slug) => view! { <a href=format!("/projects/{slug}")>{slug.clone()}</a> }.into_any(),
                None => view! { <span>"global"</span> }.into_any(),
            }}</dd>
            <dt>"Launched"</dt><dd>{format!("{} by {}", when(summary.created_at), summary.launched_by)}</dd>
            <dt>"Finished"</dt><dd>{summary.finished_at.map_or_else(|| "—".to_owned(), when)}</dd>
            <dt>"Runs"</dt><dd>{view.versions.join(", ")}</dd>
        </dl>
        <FormError message=Signal::derive(move || form_message(&control.value().get(), &[])) />
        {(view.can_control && !over).then(|| view! {
            <div class="actions controls" role="group" aria-label="Control the process">
                {if status == "paused" {
                    view! { <button type="button" on:click=move |_| run("resume", 0)>"Resume"</button> }.into_any()
                } else {
                    view! { <button type="button" on:click=move |_| run("pause", 0)>"Pause"</button> }.into_any()
                }}
                {(status == "error").then(|| view! { <button type="button" class="primary" on:click=move |_| run("replay", 0)>"Replay failed steps"</button> })}
                <ConfirmButton label="Cancel" question="Cancel this process? Its on_cancel handlers run.".to_owned()
                    on_confirm=Callback::new(move |()| run("cancel", 0)) />
                <ConfirmButton label="Kill" question="Kill this process at once, without on_cancel handlers?".to_owned()
                    on_confirm=Callback::new(move |()| run("kill", 0)) />
            </div>
        })}
        {(!view.errors.is_empty()).then(|| view! {
            <section class="card errors" role="alert">
                <h2>"Errors"</h2>
                <ul>{view.errors.iter().map(|e| view! { <li><pre>{e.clone()}</pre></li> }).collect_view()}</ul>
            </section>
        })}
        <section class="card">
            <h2>"Steps"</h2>
            <Outline rows=view.outline.clone() />
            {(!view.reapplicable.is_empty() && !over).then(|| view! {
                <details>
                    <summary>"Re-apply an expression"</summary>
                    <ul class="plain">
                        {view.reapplicable.iter().cloned().map(|(flow, label)| view! {
                            <li>{label.clone()}" "
                                <ConfirmButton label="Re-apply" question=format!("Re-apply {label}? What it runs now is cancelled.")
                                    on_confirm=Callback::new(move |()| run("reapply", flow)) />
                            </li>
                        }).collect_view()}
                    </ul>
                </details>
            })}
        </section>
        {(!view.outputs.is_empty()).then(|| view! {
            <section class="card outputs">
                <h2>"Output"</h2>
                {view.outputs.iter().enumerate().map(|(i, output)| view! {
                    <details open=i == 0 data-workitem=output.workitem>
                        <summary>{format!("{} — workitem {}, attempt {} ({})", output.participant, output.workitem, output.attempt, output.state)}</summary>
                        {output.cut.then(|| view! { <p class="hint">"Earlier output is left out."</p> })}
                        <pre class="code log">{output.text.clone()}</pre>
                    </details>
                }).collect_view()}
            </section>
        })}
        <section class="card">
            <h2>"Fields"</h2>
            <pre class="code fields">{view.fields.clone()}</pre>
        </section>
        <section class="card">
            <h2>"History"</h2>
            {history_note.map(|n| view! { <p class="hint">{n}</p> })}
            <div class="table-wrap">
                <table class="cards history">
                    <thead><tr>
                        <th scope="col">"When"</th><th scope="col">"What"</th><th scope="col">"Step"</th>
                        <th scope="col">"By"</th><th scope="col">"Took"</th><th scope="col">"Message"</th>
                    </tr></thead>
                    <tbody>
                        {view.history.into_iter().map(|h| view! {
                            <tr data-kind=h.kind.clone()>
                                <td data-label="When">{when(h.at)}</td>
                                <td data-label="What">{h.kind.replace('_', " ")}</td>
                                <td data-label="Step">{h.node.clone().or(h.participant.clone()).unwrap_or_default()}</td>
                                <td data-label="By">{h.by.clone()}</td>
                                <td data-label="Took">{h.duration_ms.map(|ms| format!("{ms} ms")).unwrap_or_default()}</td>
                                <td data-label="Message"><pre>{h.message.clone()}</pre></td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}
