//! A project's configuration page: basics, ordered layers, typed variables, infrastructure
//! variables, the generated `local.conf` and `bblayers.conf`; and the revision history with
//! restore. Every save is a new revision.

use super::forms::{ConfirmButton, FormError, field_message, form_message};
use super::pagination::{Pagination, page_number};
use super::status::ErrorPage;
use crate::api::configuration::{
    AddLayer, MoveLayer, RemoveLayer, RemoveVariable, RestoreConfiguration, SaveBasics,
    SetVariable, configuration_history, project_configuration,
};
use crate::configuration::{
    ConfigurationView, LayerSource, MASK, Variable, VariableKind, VariableScope,
};
use crate::types::ProjectView;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// Every action of the page; any of them reloads the configuration.
#[derive(Clone, Copy)]
struct Edits {
    basics: ServerAction<SaveBasics>,
    add_layer: ServerAction<AddLayer>,
    remove_layer: ServerAction<RemoveLayer>,
    move_layer: ServerAction<MoveLayer>,
    set_variable: ServerAction<SetVariable>,
    remove_variable: ServerAction<RemoveVariable>,
    restore: ServerAction<RestoreConfiguration>,
}

impl Edits {
    fn new() -> Self {
        Self {
            basics: ServerAction::new(),
            add_layer: ServerAction::new(),
            remove_layer: ServerAction::new(),
            move_layer: ServerAction::new(),
            set_variable: ServerAction::new(),
            remove_variable: ServerAction::new(),
            restore: ServerAction::new(),
        }
    }

    fn version(&self) -> usize {
        self.basics.version().get()
            + self.add_layer.version().get()
            + self.remove_layer.version().get()
            + self.move_layer.version().get()
            + self.set_variable.version().get()
            + self.remove_variable.version().get()
            + self.restore.version().get()
    }
}

fn revision_param() -> impl Fn() -> u32 + Copy {
    let query = use_query_map();
    move || {
        query
            .read()
            .get("revision")
            .and_then(|r| r.parse().ok())
            .unwrap_or(0)
    }
}

#[component]
pub fn ConfigurationSection(project: ProjectView) -> impl IntoView {
    let edits = Edits::new();
    let revision = revision_param();
    let slug = project.slug.clone();
    let loaded = Resource::new(
        move || (revision(), edits.version()),
        move |(revision, _)| project_configuration(slug.clone(), revision),
    );
    let current_href = format!("/projects/{}/configuration", project.slug);
    Effect::new(move || {
        // After restoring the revision on show, show the new current one.
        if matches!(edits.restore.value().get(), Some(Ok(_))) && revision() != 0 {
            let _ = window().location().set_href(&current_href);
        }
    });
    let slug = project.slug.clone();
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || {
                let slug = slug.clone();
                Suspend::new(async move {
                    let loaded = loaded.await;
                    Unsuspend::new(move || match loaded {
                        Ok(view) => view! { <Configuration slug view edits /> }.into_any(),
                        Err(error) => view! { <ErrorPage error /> }.into_any(),
                    })
                })
            }}
        </Suspense>
    }
}

#[component]
fn Configuration(slug: String, view: ConfigurationView, edits: Edits) -> impl IntoView {
    let old = view.revision.is_some() && view.revision != view.latest;
    let editable = view.can_configure && !old;
    let config = view.configuration.clone();
    let errors = move || {
        [
            form_message(&edits.remove_layer.value().get(), &[]),
            form_message(&edits.move_layer.value().get(), &[]),
            form_message(&edits.remove_variable.value().get(), &[]),
            form_message(&edits.restore.value().get(), &[]),
        ]
        .into_iter()
        .flatten()
        .next()
    };
    let revision_label = match view.revision {
        Some(n) => format!("Revision {n}"),
        None => "Not saved yet".to_owned(),
    };
    view! {
        <p class="hint">
            {revision_label}
            " · " <a href=format!("/projects/{slug}/history")>"History"</a>
            " · " <a href=format!("/export/{slug}") rel="external" download="">"Export (TOML)"</a>
        </p>
        {view.archived.then(|| view! { <p class="notice">"The project is archived: its configuration is read-only."</p> })}
        {old.then(|| {
            let number = view.revision.unwrap_or_default();
            let slug = slug.clone();
            view! {
                <div class="card old-revision" role="status">
                    <p>{format!("You are looking at revision {number}; the current one is {}.", view.latest.unwrap_or_default())}</p>
                    {view.can_configure.then(|| view! {
                        <ConfirmButton label="Restore this revision"
                            question=format!("Restore revision {number} as a new revision?")
                            on_confirm=Callback::new(move |()| { edits.restore.dispatch(RestoreConfiguration { slug: slug.clone(), revision: number }); }) />
                    })}
                </div>
            }
        })}
        <FormError message=Signal::derive(errors) />
        <Basics slug=slug.clone() view=view.clone() editable edits />
        <super::builds::BuildWorkflowCard slug=slug.clone() />
        <Layers slug=slug.clone() layers=config.layers.clone() editable edits />
        <Variables slug=slug.clone() scope=VariableScope::Build title="Build variables"
            variables=config.variables.clone() editable edits />
        <section class="card">
            <h2>"Infrastructure variables"</h2>
            <p class="hint">"Set for the whole instance by administrators; only administrators override them per project."</p>
            {if view.infrastructure_defaults.is_empty() {
                view! { <p class="hint">"No instance defaults are set."</p> }.into_any()
            } else {
                view! { <VariableList variables=view.infrastructure_defaults.clone() /> }.into_any()
            }}
        </section>
        <Variables slug=slug.clone() scope=VariableScope::Infrastructure title="Infrastructure overrides for this project"
            variables=config.infrastructure.clone() editable=view.can_override_infrastructure && !old edits />
        <section class="card">
            <h2>"Generated files"</h2>
            <h3>"conf/local.conf"</h3>
            <pre class="generated" data-file="local.conf">{view.local_conf.clone()}</pre>
            <h3>"conf/bblayers.conf"</h3>
            <pre class="generated" data-file="bblayers.conf">{view.bblayers_conf.clone()}</pre>
        </section>
    }
}

#[component]
fn Basics(slug: String, view: ConfigurationView, editable: bool, edits: Edits) -> impl IntoView {
    let config = view.configuration;
    let value = edits.basics.value();
    let fields = ["release", "machine", "distro", "image_targets", "packages"];
    if !editable {
        return view! {
            <section class="card">
                <h2>"Build"</h2>
                <dl class="facts">
                    <dt>"Release"</dt><dd>{config.release}</dd>
                    <dt>"Machine"</dt><dd>{config.machine}</dd>
                    <dt>"Distro"</dt><dd>{config.distro}</dd>
                    <dt>"Image targets"</dt><dd>{config.image_targets.join(" ")}</dd>
                    <dt>"Packages"</dt><dd>{config.packages.join(" ")}</dd>
                </dl>
            </section>
        }
        .into_any();
    }
    let text = move |name: &'static str, label: &'static str, current: String| {
        view! {
            <div class="field">
                <label for=format!("basics-{name}")>{label}</label>
                <input id=format!("basics-{name}") name=name value=current autocomplete="off"
                    aria-invalid=move || field_message(&value.get(), name).map(|_| "true") />
                {move || field_message(&value.get(), name).map(|m| view! { <p class="field-error">{m}</p> })}
            </div>
        }
    };
    view! {
        <section class="card">
            <h2>"Build"</h2>
            <ActionForm action=edits.basics>
                <FormError message=Signal::derive(move || form_message(&value.get(), &fields)) />
                <input type="hidden" name="slug" value=slug />
                {text("release", "Release (e.g. scarthgap)", config.release.clone())}
                {text("machine", "Machine", config.machine.clone())}
                {text("distro", "Distro", config.distro.clone())}
                {text("image_targets", "Image targets (separated by spaces)", config.image_targets.join(" "))}
                {text("packages", "Extra packages in the image (separated by spaces)", config.packages.join(" "))}
                <button type="submit" class="primary">"Save"</button>
            </ActionForm>
        </section>
    }
    .into_any()
}

#[component]
fn Layers(
    slug: String,
    layers: Vec<crate::configuration::Layer>,
    editable: bool,
    edits: Edits,
) -> impl IntoView {
    let count = layers.len();
    let form_slug = slug.clone();
    let rows = layers
        .into_iter()
        .enumerate()
        .map(|(i, layer)| {
            let source = match &layer.source {
                LayerSource::Git { url, git_ref, subdirectory } if subdirectory.is_empty() => {
                    format!("{url} @ {git_ref}")
                }
                LayerSource::Git { url, git_ref, subdirectory } => {
                    format!("{url} @ {git_ref}, {subdirectory}")
                }
                LayerSource::Local { path } => format!("local: {path}"),
            };
            let name = layer.name.clone();
            let (up, down, remove) = (name.clone(), name.clone(), name.clone());
            let slug = slug.clone();
            let (s1, s2, s3) = (slug.clone(), slug.clone(), slug);
            view! {
                <tr data-layer=layer.name.clone()>
                    <td data-label="Order">{i + 1}</td>
                    <td data-label="Layer">{layer.name.clone()}</td>
                    <td data-label="Source">{source}</td>
                    {editable.then(|| view! {
                        <td data-label="Actions" class="actions">
                            <button type="button" disabled=i == 0 aria-label=format!("Move {name} up")
                                on:click=move |_| { edits.move_layer.dispatch(MoveLayer { slug: s1.clone(), name: up.clone(), up: true }); }>"↑"</button>
                            <button type="button" disabled=i + 1 == count aria-label=format!("Move {name} down")
                                on:click=move |_| { edits.move_layer.dispatch(MoveLayer { slug: s2.clone(), name: down.clone(), up: false }); }>"↓"</button>
                            <ConfirmButton label="Remove" question=format!("Remove layer {name}?")
                                on_confirm=Callback::new(move |()| { edits.remove_layer.dispatch(RemoveLayer { slug: s3.clone(), name: remove.clone() }); }) />
                        </td>
                    })}
                </tr>
            }
        })
        .collect_view();
    let value = edits.add_layer.value();
    let source = RwSignal::new("git".to_owned());
    let fields = ["name", "source", "url", "git_ref", "subdirectory", "path"];
    let field = move |name: &'static str, label: &'static str, placeholder: &'static str| {
        view! {
            <div class="field">
                <label for=format!("layer-{name}")>{label}</label>
                <input id=format!("layer-{name}") name=name placeholder=placeholder autocomplete="off"
                    aria-invalid=move || field_message(&value.get(), name).map(|_| "true") />
                {move || field_message(&value.get(), name).map(|m| view! { <p class="field-error">{m}</p> })}
            </div>
        }
    };
    view! {
        <section class="card">
            <h2>"Layers"</h2>
            {if count == 0 {
                view! { <p class="hint">"No layers yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table class="cards layers">
                            <thead><tr>
                                <th scope="col">"#"</th><th scope="col">"Layer"</th><th scope="col">"Source"</th>
                                {editable.then(|| view! { <th scope="col">"Actions"</th> })}
                            </tr></thead>
                            <tbody>{rows}</tbody>
                        </table>
                    </div>
                }.into_any()
            }}
            {editable.then(|| view! {
                <details class="add-layer" open=move || matches!(value.get(), Some(Err(_)))>
                    <summary>"Add a layer"</summary>
                    <ActionForm action=edits.add_layer>
                        <FormError message=Signal::derive(move || form_message(&value.get(), &fields)) />
                        <input type="hidden" name="slug" value=form_slug />
                        {field("name", "Name", "meta-example")}
                        <div class="field">
                            <label for="layer-source">"Source"</label>
                            <select id="layer-source" name="source" on:change=move |ev| source.set(event_target_value(&ev))>
                                <option value="git" selected=true>"Git repository"</option>
                                <option value="local">"Local path on the build host"</option>
                            </select>
                        </div>
                        <div hidden=move || source.get() != "git">
                            {field("url", "Git URL", "https://git.example.com/meta-example")}
                            {field("git_ref", "Branch, tag or commit", "scarthgap")}
                            {field("subdirectory", "Subdirectory (optional)", "meta-example")}
                        </div>
                        <div hidden=move || source.get() != "local">
                            {field("path", "Path", "/srv/layers/meta-example")}
                        </div>
                        <button type="submit" class="primary">"Add layer"</button>
                    </ActionForm>
                </details>
            })}
        </section>
    }
}

/// The input for a variable's value, by its type.
#[component]
fn ValueWidget(
    id: String,
    kind: VariableKind,
    #[prop(optional)] value: String,
    #[prop(optional)] secret: bool,
) -> impl IntoView {
    if secret {
        let placeholder = if value.is_empty() {
            "not set"
        } else {
            "unchanged"
        };
        return view! { <input id=id name="value" type="password" autocomplete="new-password" placeholder=placeholder /> }.into_any();
    }
    match kind {
        VariableKind::Bool => view! {
            <input id=id name="value" type="checkbox" value="1" checked=value == "1" />
        }
        .into_any(),
        VariableKind::Integer => view! { <input id=id name="value" type="number" step="1" value=value /> }.into_any(),
        VariableKind::Choice(choices) => view! {
            <select id=id name="value">
                {choices.into_iter().map(|choice| {
                    let selected = choice == value;
                    view! { <option value=choice.clone() selected=selected>{choice.clone()}</option> }
                }).collect_view()}
            </select>
        }
        .into_any(),
        VariableKind::Path => view! { <input id=id name="value" value=value placeholder="/path/on/the/build/host" /> }.into_any(),
        VariableKind::String => view! { <input id=id name="value" value=value /> }.into_any(),
    }
}

/// Read-only list of variables (secrets masked).
#[component]
fn VariableList(variables: Vec<Variable>) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="cards variables">
                <thead><tr><th scope="col">"Name"</th><th scope="col">"Type"</th><th scope="col">"Value"</th></tr></thead>
                <tbody>
                    {variables.into_iter().map(|v| view! {
                        <tr data-variable=v.name.clone()>
                            <td data-label="Name">{v.name.clone()}{v.secret.then_some(" (secret)")}</td>
                            <td data-label="Type">{v.kind.name()}</td>
                            <td data-label="Value"><code>{v.value.clone()}</code></td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn Variables(
    slug: String,
    scope: VariableScope,
    title: &'static str,
    variables: Vec<Variable>,
    editable: bool,
    edits: Edits,
) -> impl IntoView {
    if !editable {
        if variables.is_empty() && scope == VariableScope::Infrastructure {
            return ().into_any();
        }
        return view! {
            <section class="card">
                <h2>{title}</h2>
                {if variables.is_empty() {
                    view! { <p class="hint">"No variables."</p> }.into_any()
                } else {
                    view! { <VariableList variables /> }.into_any()
                }}
            </section>
        }
        .into_any();
    }
    let scope_key = match scope {
        VariableScope::Build => "Build",
        VariableScope::Infrastructure => "Infrastructure",
    };
    let prefix = match scope {
        VariableScope::Build => "var",
        VariableScope::Infrastructure => "infra",
    };
    let set_value = edits.set_variable.value();
    let add_slug = slug.clone();
    let rows = variables
        .into_iter()
        .map(|variable| {
            let name = variable.name.clone();
            let id = format!("{prefix}-{}-value", variable.name.replace(':', "-"));
            let slug_remove = slug.clone();
            let remove_name = name.clone();
            let choices = match &variable.kind {
                VariableKind::Choice(choices) => choices.join(","),
                _ => String::new(),
            };
            let shown = if variable.secret && variable.value == MASK { String::new() } else { variable.value.clone() };
            let secret_set = variable.secret && !variable.value.is_empty();
            let form_slug = slug.clone();
            let form_name = variable.name.clone();
            let kind_name = variable.kind.name();
            let widget_kind = variable.kind.clone();
            let secret = variable.secret;
            view! {
                <tr data-variable=variable.name.clone()>
                    <td data-label="Name">{variable.name.clone()}{variable.secret.then_some(" (secret)")}</td>
                    <td data-label="Type">{variable.kind.name()}</td>
                    <td data-label="Value">
                        <ActionForm action=edits.set_variable attr:class="inline-form">
                            <input type="hidden" name="slug" value=form_slug />
                            <input type="hidden" name="scope" value=scope_key />
                            <input type="hidden" name="name" value=form_name />
                            <input type="hidden" name="kind" value=kind_name />
                            <input type="hidden" name="choices" value=choices />
                            {secret.then(|| view! { <input type="hidden" name="secret" value="true" /> })}
                            <label for=id.clone() class="visually-hidden">{format!("Value of {name}")}</label>
                            <ValueWidget id=id.clone() kind=widget_kind value=if secret_set { MASK.to_owned() } else { shown } secret=secret />
                            <button type="submit">"Save"</button>
                        </ActionForm>
                    </td>
                    <td data-label="Actions" class="actions">
                        <ConfirmButton label="Remove" question=format!("Remove {remove_name}?")
                            on_confirm=Callback::new(move |()| {
                                edits.remove_variable.dispatch(RemoveVariable { slug: slug_remove.clone(), scope, name: remove_name.clone() });
                            }) />
                    </td>
                </tr>
            }
        })
        .collect_view();
    let fields = ["name", "kind", "choices", "value"];
    view! {
        <section class="card">
            <h2>{title}</h2>
            <FormError message=Signal::derive(move || form_message(&set_value.get(), &fields)) />
            <div class="table-wrap">
                <table class="cards variables">
                    <thead><tr>
                        <th scope="col">"Name"</th><th scope="col">"Type"</th><th scope="col">"Value"</th><th scope="col">"Actions"</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
            <details class="add-variable">
                <summary>"Add a variable"</summary>
                <ActionForm action=edits.set_variable>
                    <input type="hidden" name="slug" value=add_slug />
                    <input type="hidden" name="scope" value=scope_key />
                    <NewVariableFields prefix error=Signal::derive(move || set_value.get().and_then(Result::err)) />
                    <button type="submit" class="primary">"Add variable"</button>
                </ActionForm>
            </details>
        </section>
    }
    .into_any()
}

/// The fields of a new variable: name, type, choices, a value widget for the type, secret.
#[component]
pub fn NewVariableFields(
    prefix: &'static str,
    #[prop(into)] error: Signal<Option<crate::error::AppError>>,
) -> impl IntoView {
    let kind = RwSignal::new("string".to_owned());
    let set_value = Signal::derive(move || error.get().map(Err::<(), _>));
    view! {
                    <div class="field">
                        <label for=format!("{prefix}-new-name")>"Name"</label>
                        <input id=format!("{prefix}-new-name") name="name" required=true autocomplete="off" placeholder="EXAMPLE_VARIABLE"
                            aria-invalid=move || field_message(&set_value.get(), "name").map(|_| "true") />
                        {move || field_message(&set_value.get(), "name").map(|m| view! { <p class="field-error">{m}</p> })}
                    </div>
                    <div class="field">
                        <label for=format!("{prefix}-new-kind")>"Type"</label>
                        <select id=format!("{prefix}-new-kind") name="kind" on:change=move |ev| kind.set(event_target_value(&ev))>
                            {VariableKind::NAMES.into_iter().map(|name| view! { <option value=name>{name}</option> }).collect_view()}
                        </select>
                    </div>
                    <div class="field" hidden=move || kind.get() != "choice">
                        <label for=format!("{prefix}-new-choices")>"Choices (separated by commas)"</label>
                        <input id=format!("{prefix}-new-choices") name="choices" autocomplete="off"
                            on:change=move |_| kind.update(|_| ()) />
                        {move || field_message(&set_value.get(), "choices").map(|m| view! { <p class="field-error">{m}</p> })}
                    </div>
                    <div class="field">
                        <label for=format!("{prefix}-new-value")>"Value"</label>
                        {move || {
                            let widget = match kind.get().as_str() {
                                "bool" => VariableKind::Bool,
                                "integer" => VariableKind::Integer,
                                "path" => VariableKind::Path,
                                _ => VariableKind::String,
                            };
                            view! { <ValueWidget id=format!("{prefix}-new-value") kind=widget /> }
                        }}
                        {move || field_message(&set_value.get(), "value").map(|m| view! { <p class="field-error">{m}</p> })}
                    </div>
                    <div class="field checkbox">
                        <input id=format!("{prefix}-new-secret") type="checkbox" name="secret" value="true" />
                        <label for=format!("{prefix}-new-secret")>"Secret (write-only, masked everywhere, never exported)"</label>
                    </div>
    }
}

#[component]
pub fn HistorySection(project: ProjectView) -> impl IntoView {
    let query = use_query_map();
    let page = page_number(query);
    let restore = ServerAction::<RestoreConfiguration>::new();
    let slug = project.slug.clone();
    let history = Resource::new(
        move || (page(), restore.version().get()),
        move |(page, _)| configuration_history(slug.clone(), page),
    );
    let can_restore = project.access.permissions.configure && project.archived_at.is_none();
    let slug = project.slug.clone();
    view! {
        <FormError message=Signal::derive(move || form_message(&restore.value().get(), &[])) />
        {move || matches!(restore.value().get(), Some(Ok(_))).then(|| view! { <p class="notice" role="status">"Restored as a new revision."</p> })}
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || {
                let slug = slug.clone();
                Suspend::new(async move {
                    match history.await {
                        Ok(list) if list.items.is_empty() => view! {
                            <section class="empty-state"><p>"The configuration has not been saved yet."</p></section>
                        }.into_any(),
                        Ok(list) => {
                            let position = list.position();
                            let newest = list.items.first().map(|r| r.number).filter(|_| list.page == 1);
                            let href_slug = slug.clone();
                            view! {
                                <div class="table-wrap">
                                    <table class="cards revisions">
                                        <thead><tr>
                                            <th scope="col">"Revision"</th><th scope="col">"When"</th><th scope="col">"Who"</th>
                                            <th scope="col">"What changed"</th><th scope="col">"Actions"</th>
                                        </tr></thead>
                                        <tbody>
                                            {list.items.into_iter().map(|revision| {
                                                let number = revision.number;
                                                let slug = slug.clone();
                                                let view_href = format!("/projects/{slug}/configuration?revision={number}");
                                                let current = Some(number) == newest;
                                                view! {
                                                    <tr data-revision=number>
                                                        <td data-label="Revision">{number}{current.then_some(" (current)")}</td>
                                                        <td data-label="When">{revision.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()}</td>
                                                        <td data-label="Who">{revision.author.clone()}</td>
                                                        <td data-label="What changed">{revision.summary.clone()}</td>
                                                        <td data-label="Actions" class="actions">
                                                            <a href=view_href>"View"</a>
                                                            {(can_restore && !current).then(|| view! {
                                                                <ConfirmButton label="Restore" question=format!("Restore revision {number} as a new revision?")
                                                                    on_confirm=Callback::new(move |()| { restore.dispatch(RestoreConfiguration { slug: slug.clone(), revision: number }); }) />
                                                            })}
                                                        </td>
                                                    </tr>
                                                }
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                                <Pagination position
                                    href=Callback::new(move |page| format!("/projects/{href_slug}/history?page={page}")) />
                            }.into_any()
                        }
                        Err(error) => view! { <ErrorPage error /> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}
