//! Builds in the browser: a project's Builds tab (start a build, the list with its queue and
//! progress) and a build's page (summary, progress, errors, artifacts, tasks, log and
//! snapshot; rebuild, cancel, hide and delete), both updating live.

use super::forms::{ConfirmButton, Field, FormError, OpenQuestion, field_message, form_message};
use super::live::use_live;
use super::pagination::{Pagination, page_number};
use super::processes::when;
use super::status::ErrorPage;
use crate::api::builds::{
    ArchiveBuild, CancelBuild, DeleteBuild, Rebuild, SetBuildDirectory, SetBuildHidden,
    SetBuildLinePrefix, SetBuildPinned, SetBuildRetention, SetBuildWorkflow, StartBuild,
    list_builds, read_build, read_build_log, read_build_storage, read_build_tasks,
    read_build_workflow,
};
use crate::builds::{
    Artifact, ArtifactKind, BuildLogTail, BuildState, BuildStorage, BuildSummary, BuildTask,
    BuildView, BuildWorkflow,
};
use crate::configuration::LayerSource;
use crate::error::AppError;
use crate::live::Topic;
use crate::types::{Page, ProjectView};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

fn state_badge(state: BuildState) -> &'static str {
    match state {
        BuildState::Succeeded => "badge active",
        BuildState::Failed | BuildState::Cancelled => "badge disabled",
        _ => "badge running",
    }
}

fn state_label(build: &BuildSummary) -> String {
    match (build.state, build.queue_position) {
        (BuildState::Queued, _) if build.waiting_for_directory == Some(0) => {
            "queued, build directory in use".to_owned()
        }
        (BuildState::Queued, _) if build.waiting_for_directory.is_some() => {
            let number = build.waiting_for_directory.unwrap_or_default();
            format!("queued, waiting for build {number}")
        }
        (BuildState::Queued, Some(position)) if position > 0 => {
            format!("queued (#{position})")
        }
        (state, _) => state.as_str().to_owned(),
    }
}

/// How far a build got, as a bar and in words: setscene tasks (restored from shared
/// state) and tasks each with their own count, as BitBake numbers them.
#[component]
fn Progress(summary: BuildSummary) -> impl IntoView {
    let percent = summary.percent();
    let mut counts = Vec::new();
    if summary.setscene_total > 0 {
        counts.push(format!(
            "setscene {} of {}",
            summary.setscene_done, summary.setscene_total
        ));
    }
    if summary.tasks_total > 0 {
        counts.push(format!(
            "task {} of {}",
            summary.tasks_done, summary.tasks_total
        ));
    }
    let words = if !counts.is_empty() {
        counts.join(", ")
    } else if summary.parse_percent > 0 && !summary.state.is_over() {
        format!("parsing {}%", summary.parse_percent)
    } else {
        String::new()
    };
    view! {
        <span class="progress-line">
            <progress max="100" value=percent aria-label=format!("Build {} progress", summary.number)>
                {format!("{percent}%")}
            </progress>
            <span class="hint">{words}</span>
        </span>
    }
}

/// The badges of a build's marks: hidden, pinned, archived.
#[component]
fn Marks(summary: BuildSummary) -> impl IntoView {
    let marks = [
        (summary.hidden, "hidden"),
        (summary.pinned, "pinned"),
        (summary.archived, "archived"),
    ];
    marks
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| view! { " " <span class="badge" data-mark=name>{name}</span> })
        .collect_view()
}

/// A project's Builds tab.
#[component]
pub fn BuildsSection(project: ProjectView) -> impl IntoView {
    let query = use_query_map();
    let page = page_number(query);
    let show_hidden = move || query.read().get("hidden").is_some_and(|v| v == "1");
    let start = ServerAction::<StartBuild>::new();
    let builds_live = use_live(|| Some(Topic::Builds));
    let processes_live = use_live(|| Some(Topic::Processes));
    let slug = project.slug.clone();
    let list = Resource::new(
        {
            let slug = slug.clone();
            move || {
                (
                    slug.clone(),
                    page(),
                    show_hidden(),
                    start.version().get(),
                    builds_live.get(),
                    processes_live.get(),
                )
            }
        },
        |(slug, page, hidden, ..)| list_builds(slug, page, hidden),
    );
    let can_build = project.access.permissions.build && project.archived_at.is_none();
    let value = start.value();
    let slug_for_toggle = slug.clone();
    let slug_for_storage = slug.clone();
    let slug_for_pages = slug.clone();
    view! {
        <section class="card">
            <h2>"Builds"</h2>
            {can_build.then(|| view! {
                <ActionForm action=start>
                    <input type="hidden" name="project" value=slug.clone() />
                    <FormError message=Signal::derive(move || form_message(&value.get(), &[])) />
                    <button type="submit" class="primary">"Start build"</button>
                    {move || match value.get() {
                        Some(Ok(number)) => view! {
                            <span role="status">" Build "<a href=format!("/projects/{}/builds/{number}", slug.clone())>{format!("#{number}")}</a>" started."</span>
                        }.into_any(),
                        _ => ().into_any(),
                    }}
                </ActionForm>
            })}
            <p>{move || if show_hidden() {
                view! { <a href=format!("/projects/{}/builds", slug_for_toggle.clone())>"Leave out hidden builds"</a> }.into_any()
            } else {
                view! { <a href=format!("/projects/{}/builds?hidden=1", slug_for_toggle.clone())>"Show hidden builds"</a> }.into_any()
            }}</p>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || {
                    let slug = slug_for_pages.clone();
                    Suspend::new(async move {
                    match list.await {
                        Ok(list) => {
                            let hidden = show_hidden();
                            let page_href = Callback::new(move |page| {
                                let hidden = if hidden { "hidden=1&" } else { "" };
                                format!("/projects/{slug}/builds?{hidden}page={page}")
                            });
                            view! {
                                <BuildTable list page_href
                                    empty="Start a build to run the project's build workflow on a worker with its current configuration." />
                            }.into_any()
                        }
                        Err(error) => view! { <ErrorPage error /> }.into_any(),
                    }
                    })
                }}
            </Transition>
        </section>
        <Storage slug=slug_for_storage />
    }
}

/// Which definition the project's builds run, chosen on its configuration page, and the
/// build directory they share, if administrators gave them one.
#[component]
pub fn BuildWorkflowCard(slug: String) -> impl IntoView {
    let save = ServerAction::<SetBuildWorkflow>::new();
    let save_directory = ServerAction::<SetBuildDirectory>::new();
    let save_prefix = ServerAction::<SetBuildLinePrefix>::new();
    let workflow = Resource::new(
        {
            let slug = slug.clone();
            move || {
                (
                    slug.clone(),
                    save.version().get(),
                    save_directory.version().get(),
                    save_prefix.version().get(),
                )
            }
        },
        |(slug, ..)| read_build_workflow(slug),
    );
    view! {
        <section class="card build-workflow">
            <h2>"Build workflow"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || {
                    let slug = slug.clone();
                    Suspend::new(async move {
                        match workflow.await {
                            Ok(workflow) => view! {
                                <WorkflowChoice slug=slug.clone() workflow=workflow.clone() save />
                                <BuildDirectory slug=slug.clone() workflow=workflow.clone() save=save_directory />
                                <LinePrefix slug workflow save=save_prefix />
                            }
                            .into_any(),
                            Err(error) => view! { <ErrorPage error /> }.into_any(),
                        }
                    })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn WorkflowChoice(
    slug: String,
    workflow: BuildWorkflow,
    save: ServerAction<SetBuildWorkflow>,
) -> impl IntoView {
    if !workflow.can_edit {
        return view! { <p>"Builds run the definition "<code>{workflow.current}</code>"."</p> }
            .into_any();
    }
    let value = save.value();
    let current = workflow.current.clone();
    view! {
        <ActionForm action=save>
            <input type="hidden" name="project" value=slug />
            <FormError message=Signal::derive(move || form_message(&value.get(), &["build_definition"])) />
            <div class="field">
                <label for="build-definition">"Builds run the definition"</label>
                <select id="build-definition" name="definition">
                    {workflow.choices.into_iter().map(|name| {
                        let selected = name == current;
                        view! { <option value=name.clone() selected=selected>{name.clone()}</option> }
                    }).collect_view()}
                </select>
                {move || field_message(&value.get(), "build_definition").map(|m| view! { <p class="field-error">{m}</p> })}
            </div>
            <p class="hint">"The standard one is "<code>"standard-build"</code>"; save a definition under Definitions to change the build command, or to add approval or QA steps, and choose it here."</p>
            <button type="submit">"Save build workflow"</button>
            {move || matches!(value.get(), Some(Ok(()))).then(|| view! { <span role="status">" Saved."</span> })}
        </ActionForm>
    }
    .into_any()
}

/// Where on a worker the project's builds run: administrators may give them one shared
/// directory, which builds then use one at a time.
#[component]
fn BuildDirectory(
    slug: String,
    workflow: BuildWorkflow,
    save: ServerAction<SetBuildDirectory>,
) -> impl IntoView {
    let said = match &workflow.build_directory {
        Some(directory) => view! {
            <p>"Builds run in "<code>{directory.clone()}</code>" on their worker, one build at a time; layers are checked out beside it, in "<code>"../layers"</code>"."</p>
        }
        .into_any(),
        None => view! { <p>"Each build runs in a directory of its own on its worker."</p> }.into_any(),
    };
    if !workflow.can_set_directory {
        return said;
    }
    let value = save.value();
    let current = workflow.build_directory.unwrap_or_default();
    view! {
        <h3>"Build directory"</h3>
        {said}
        <ActionForm action=save>
            <input type="hidden" name="project" value=slug />
            <FormError message=Signal::derive(move || form_message(&value.get(), &["build_directory"])) />
            <div class="field">
                <label for="build-directory">"Build directory on the workers"</label>
                <input id="build-directory" name="directory" type="text" value=current
                    placeholder="empty: a directory of its own for each build"
                    maxlength=crate::builds::MAX_BUILD_DIRECTORY_BYTES.to_string()
                    autocomplete="off" spellcheck="false" />
                {move || field_message(&value.get(), "build_directory").map(|m| view! { <p class="field-error">{m}</p> })}
            </div>
            <p class="hint">"An absolute path, such as "<code>"/srv/yocto/my-project/build"</code>", kept between builds like a BitBake build directory you reuse by hand. A build waits until the earlier builds using it have ended. Files earlier builds left there are not collected again."</p>
            <button type="submit">"Save build directory"</button>
            {move || matches!(value.get(), Some(Ok(()))).then(|| view! { <span role="status">" Saved."</span> })}
        </ActionForm>
    }
    .into_any()
}

/// The prefix a wrapper such as kas puts before each line of the build's output, which Kiln
/// takes off before reading the line; users with `configure` set it.
#[component]
fn LinePrefix(
    slug: String,
    workflow: BuildWorkflow,
    save: ServerAction<SetBuildLinePrefix>,
) -> impl IntoView {
    let said = match &workflow.line_prefix {
        Some(pattern) => view! {
            <p class="line-prefix">"Output lines are read without the prefix "<code>{pattern.clone()}</code>"."</p>
        }
        .into_any(),
        None => view! { <p class="line-prefix">"Output lines are read as BitBake prints them."</p> }.into_any(),
    };
    if !workflow.can_edit {
        return said;
    }
    let value = save.value();
    let current = workflow.line_prefix.unwrap_or_default();
    let kas = crate::builds::KAS_LINE_PREFIX;
    let for_kas = slug.clone();
    view! {
        <h3>"Output line prefix"</h3>
        {said}
        <ActionForm action=save>
            <input type="hidden" name="project" value=slug.clone() />
            <FormError message=Signal::derive(move || form_message(&value.get(), &["line_prefix"])) />
            <div class="field">
                <label for="line-prefix">"Line prefix (a regular expression)"</label>
                <input id="line-prefix" name="prefix" type="text" value=current
                    placeholder="empty: lines are read as they are"
                    maxlength=crate::builds::MAX_LINE_PREFIX_BYTES.to_string()
                    autocomplete="off" spellcheck="false" />
                {move || field_message(&value.get(), "line_prefix").map(|m| view! { <p class="field-error">{m}</p> })}
            </div>
            <p class="hint">{format!("When the build command wraps BitBake and prefixes each line it prints, the pattern matched at the start of a line is taken off before Kiln reads it. At most {} bytes.", crate::builds::MAX_LINE_PREFIX_BYTES)}</p>
            <button type="submit">"Save line prefix"</button>
            {move || matches!(value.get(), Some(Ok(()))).then(|| view! { <span role="status">" Saved."</span> })}
        </ActionForm>
        <ActionForm action=save>
            <input type="hidden" name="project" value=for_kas />
            <input type="hidden" name="prefix" value=kas />
            <p class="hint">"kas prefixes each line with its time and level: "<code>{kas}</code>" "
                <button type="submit">"Use kas's prefix"</button></p>
        </ActionForm>
    }
    .into_any()
}

/// What the project's builds keep on disk, and how long; its owner and administrators
/// change the limits here.
#[component]
fn Storage(slug: String) -> impl IntoView {
    let save = ServerAction::<SetBuildRetention>::new();
    let builds_live = use_live(|| Some(Topic::Builds));
    let storage = Resource::new(
        {
            let slug = slug.clone();
            move || (slug.clone(), save.version().get(), builds_live.get())
        },
        |(slug, ..)| read_build_storage(slug),
    );
    view! {
        <section class="card build-storage">
            <h2>"Storage and retention"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || {
                    let slug = slug.clone();
                    Suspend::new(async move {
                        match storage.await {
                            Ok(storage) => view! { <StorageFacts storage slug save /> }.into_any(),
                            Err(error) => view! { <ErrorPage error /> }.into_any(),
                        }
                    })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn StorageFacts(
    storage: BuildStorage,
    slug: String,
    save: ServerAction<SetBuildRetention>,
) -> impl IntoView {
    let limits = storage.retention;
    let described: Vec<String> = [
        limits.keep_builds.map(|n| format!("the newest {n} builds")),
        limits.keep_days.map(|n| format!("{n} days")),
        limits
            .keep_bytes
            .map(|n| format!("{} in all", size_text(n))),
    ]
    .into_iter()
    .flatten()
    .collect();
    let rule = if described.is_empty() {
        "Artifacts are kept until their build is archived or deleted.".to_owned()
    } else {
        format!(
            "Artifacts are kept for {}, whichever is least; pinned builds keep theirs.",
            described.join(", ")
        )
    };
    let value = save.value();
    let error =
        move |field: &'static str| Signal::derive(move || field_message(&value.get(), field));
    view! {
        <p>{format!("{} artifacts, {}; logs {}.", storage.artifacts, size_text(storage.artifact_bytes), size_text(storage.log_bytes))}</p>
        <p>{rule}</p>
        {storage.can_edit.then(|| view! {
            <ActionForm action=save>
                <input type="hidden" name="project" value=slug />
                <FormError message=Signal::derive(move || form_message(&value.get(), &["keep_builds", "keep_days", "keep_size"])) />
                <div class="fields-row">
                    <Field label="Keep the newest builds" name="keep_builds" kind="number"
                        value=limits.keep_builds.map(|n| n.to_string()).unwrap_or_default()
                        error=error("keep_builds") />
                    <Field label="Keep days" name="keep_days" kind="number"
                        value=limits.keep_days.map(|n| n.to_string()).unwrap_or_default()
                        error=error("keep_days") />
                    <Field label="Keep at most (e.g. 20 GiB)" name="keep_size"
                        value=limits.keep_bytes.map(size_text).unwrap_or_default()
                        error=error("keep_size") />
                </div>
                <p class="hint">"Empty means no limit. Saving applies the limits at once; artifacts past them are removed, and their builds keep their log, tasks and snapshot, marked expired."</p>
                <button type="submit" disabled=move || save.pending().get()>"Save retention"</button>
                {move || matches!(value.get(), Some(Ok(_))).then(|| view! {
                    <span role="status">{move || match value.get() {
                        Some(Ok(0)) => " Saved.".to_owned(),
                        Some(Ok(n)) => format!(" Saved; the artifacts of {n} builds expired."),
                        _ => String::new(),
                    }}</span>
                })}
            </ActionForm>
        })}
    }
}

/// A page of builds; `page_href` gives the address of another page of the same list.
#[component]
pub fn BuildTable(
    list: Page<BuildSummary>,
    page_href: Callback<u64, String>,
    /// Whether the builds are of several projects.
    #[prop(optional)]
    show_project: bool,
    /// What to say when there are none.
    #[prop(into)]
    empty: String,
) -> impl IntoView {
    if list.items.is_empty() {
        return view! {
            <div class="empty-state">
                <h3>"No builds yet"</h3>
                <p>{empty}</p>
            </div>
        }
        .into_any();
    }
    let position = list.position();
    view! {
        <div class="table-wrap">
            <table class="cards builds">
                <thead><tr>
                    <th scope="col">"Build"</th>
                    {show_project.then(|| view! { <th scope="col">"Project"</th> })}
                    <th scope="col">"State"</th>
                    <th scope="col">"Progress"</th>
                    <th scope="col">"Targets"</th>
                    <th scope="col">"Started"</th>
                    <th scope="col">"Finished"</th>
                </tr></thead>
                <tbody>
                    {list.items.into_iter().map(|b| view! {
                        <tr data-build=b.number data-project=b.project.clone() data-state=b.state.as_str()>
                            <td data-label="Build"><a href=format!("/projects/{}/builds/{}", b.project, b.number)>{format!("#{}", b.number)}</a></td>
                            {show_project.then(|| view! {
                                <td data-label="Project"><a href=format!("/projects/{}/builds", b.project)>{b.project_name.clone()}</a></td>
                            })}
                            <td data-label="State"><span class=state_badge(b.state)>{state_label(&b)}</span>
                                <Marks summary=b.clone() /></td>
                            <td data-label="Progress"><Progress summary=b.clone() /></td>
                            <td data-label="Targets">{format!("{} for {}", b.targets, b.machine)}</td>
                            <td data-label="Started">{format!("{} by {}", when(b.created_at), b.requested_by)}</td>
                            <td data-label="Finished">{b.finished_at.map_or_else(|| "—".to_owned(), when)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        <Pagination position href=page_href />
    }
    .into_any()
}

/// The project slug and build number of the route a build's pages are at
/// (`/projects/:slug/builds/:number...`); a number that is not one reads as 0, which no
/// build has.
pub fn use_build_address() -> (
    impl Fn() -> String + Copy + Send + Sync + 'static,
    impl Fn() -> i32 + Copy + Send + Sync + 'static,
) {
    let params = use_params_map();
    let slug = move || params.read().get("slug").unwrap_or_default();
    let number = move || {
        params
            .read()
            .get("number")
            .and_then(|n| n.parse::<i32>().ok())
            .unwrap_or(0)
    };
    (slug, number)
}

/// A build's page, at `/projects/:slug/builds/:number`.
#[component]
pub fn BuildPage() -> impl IntoView {
    let (slug, number) = use_build_address();
    let actions = Actions {
        rebuild: ServerAction::new(),
        cancel: ServerAction::new(),
        hide: ServerAction::new(),
        pin: ServerAction::new(),
        archive: ServerAction::new(),
        delete: ServerAction::new(),
    };
    let build = Resource::new(
        move || (slug(), number(), actions.rebuild.version().get()),
        |(slug, number, _)| read_build(slug, number),
    );
    view! {
        <Title text=move || format!("Build {} of {}", number(), slug()) />
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let build = build.await;
                Unsuspend::new(move || match build {
                    Ok(view) => view! { <LiveBuild first=view slug=slug() actions /> }.into_any(),
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                })
            })}
        </Suspense>
    }
}

/// What the build page's buttons do; each reloads the page's build.
#[derive(Clone, Copy)]
struct Actions {
    rebuild: ServerAction<Rebuild>,
    cancel: ServerAction<CancelBuild>,
    hide: ServerAction<SetBuildHidden>,
    pin: ServerAction<SetBuildPinned>,
    archive: ServerAction<ArchiveBuild>,
    delete: ServerAction<DeleteBuild>,
}

/// What the reader opened or chose on a build's page. The page builds the build's part
/// again at each live change of the build; these outlive that.
#[derive(Clone, Copy)]
struct Reading {
    warnings_open: RwSignal<bool>,
    tasks_open: RwSignal<bool>,
    task_order: RwSignal<TaskOrder>,
    /// Every task, read in the browser once the task table is opened, and again at each
    /// change of the build after that.
    tasks: LocalResource<Result<Option<Vec<BuildTask>>, AppError>>,
}

impl Reading {
    fn new(slug: String, number: i32, build_live: Signal<u64>) -> Self {
        let tasks_open = RwSignal::new(false);
        let tasks = LocalResource::new(move || {
            let wanted = tasks_open.get().then(|| {
                build_live.track();
                slug.clone()
            });
            async move {
                match wanted {
                    Some(slug) => read_build_tasks(slug, number).await.map(Some),
                    None => Ok(None),
                }
            }
        });
        Self {
            warnings_open: RwSignal::new(false),
            tasks_open,
            task_order: RwSignal::new(TaskOrder::Started),
            tasks,
        }
    }
}

/// Keeps `open` in step with the `<details>` element a toggle event came from.
fn follow_toggle(open: RwSignal<bool>) -> impl Fn(leptos::ev::Event) + Copy {
    move |ev| {
        let now = event_target::<leptos::web_sys::HtmlDetailsElement>(&ev).open();
        if now != open.get_untracked() {
            open.set(now);
        }
    }
}

/// The build page, read again whenever the build or its process changes.
#[component]
fn LiveBuild(first: BuildView, slug: String, actions: Actions) -> impl IntoView {
    let id = first.summary.id;
    let number = first.summary.number;
    let process = first.process;
    // The build is shown again at each change; a question asked stays open meanwhile, as
    // do the sections opened and the order chosen.
    OpenQuestion::provide();
    let build_live = use_live(move || Some(Topic::Build(id)));
    let reading = Reading::new(slug.clone(), number, build_live);
    let process_live = use_live(move || process.map(Topic::Process));
    let latest = Resource::new(
        {
            let slug = slug.clone();
            move || {
                (
                    slug.clone(),
                    build_live.get(),
                    process_live.get(),
                    actions.cancel.version().get(),
                    actions.hide.version().get(),
                    actions.pin.version().get(),
                    actions.archive.version().get(),
                )
            }
        },
        move |(slug, ..)| read_build(slug, number),
    );
    let log = Resource::new(
        {
            let slug = slug.clone();
            move || {
                (
                    slug.clone(),
                    build_live.get(),
                    actions.archive.version().get(),
                )
            }
        },
        move |(slug, ..)| read_build_log(slug, number, 0, 0),
    );
    let rebuilt = actions.rebuild.value();
    let deleted = actions.delete.value();
    Effect::new({
        let slug = slug.clone();
        move || {
            if let Some(Ok(next)) = rebuilt.get() {
                let _ = window()
                    .location()
                    .set_href(&format!("/projects/{slug}/builds/{next}"));
            }
            if let Some(Ok(())) = deleted.get() {
                let _ = window()
                    .location()
                    .set_href(&format!("/projects/{slug}/builds"));
            }
        }
    });
    let log_page = format!("/projects/{slug}/builds/{number}/log");
    let log_file = format!("/projects/{slug}/builds/{number}/build.log");
    let fallback = {
        let slug = slug.clone();
        move || view! { <Build view=first.clone() slug=slug.clone() actions reading /> }
    };
    view! {
        <Transition fallback>
            {move || Suspend::new({
                let slug = slug.clone();
                async move {
                    let latest = latest.await;
                    Unsuspend::new(move || match latest {
                        Ok(view) => view! { <Build view slug actions reading /> }.into_any(),
                        Err(error) => view! { <ErrorPage error /> }.into_any(),
                    })
                }
            })}
        </Transition>
        <section class="card">
            <h2>"Log"</h2>
            <p class="actions">
                <a href=log_page>"The whole log, with search"</a>
                <a href=log_file download="" rel="nofollow">"Download"</a>
            </p>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match log.await {
                        Ok(tail) => view! { <LogTail tail /> }.into_any(),
                        Err(error) => view! { <ErrorPage error /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn Build(view: BuildView, slug: String, actions: Actions, reading: Reading) -> impl IntoView {
    let summary = view.summary.clone();
    let number = summary.number;
    let over = summary.state.is_over();
    let hidden = summary.hidden;
    let message = Signal::derive(move || {
        form_message(&actions.rebuild.value().get(), &[])
            .or_else(|| form_message(&actions.cancel.value().get(), &[]))
            .or_else(|| form_message(&actions.hide.value().get(), &[]))
            .or_else(|| form_message(&actions.pin.value().get(), &[]))
            .or_else(|| form_message(&actions.archive.value().get(), &[]))
            .or_else(|| form_message(&actions.delete.value().get(), &[]))
    });
    let (for_cancel, for_hide, for_delete) = (slug.clone(), slug.clone(), slug.clone());
    let (for_pin, for_archive) = (slug.clone(), slug.clone());
    let pinned = summary.pinned;
    let archived = summary.archived;
    let for_artifacts = slug.clone();
    let log_base = format!("/projects/{slug}/builds/{number}/log");
    let log_base_w = log_base.clone();
    let errors: Vec<_> = view
        .messages
        .iter()
        .filter(|m| m.level == "error")
        .cloned()
        .collect();
    let warnings: Vec<_> = view
        .messages
        .iter()
        .filter(|m| m.level != "error")
        .cloned()
        .collect();
    view! {
        <p><a href=format!("/projects/{slug}/builds")>{format!("← Builds of {}", summary.project_name)}</a></p>
        <h1>{format!("Build #{number} of {}", summary.project_name)}</h1>
        <dl class="facts">
            <dt>"State"</dt>
            <dd>
                <span class=state_badge(summary.state) data-state=summary.state.as_str()>{state_label(&summary)}</span>
                <Marks summary=summary.clone() />
                {(summary.state == BuildState::Cancelled && summary.finished_at.is_none()).then(|| view! { " " <span class="hint">"stopping…"</span> })}
            </dd>
            <dt>"Progress"</dt>
            <dd><Progress summary=summary.clone() /></dd>
            <dt>"Targets"</dt>
            <dd>{format!("{} for {}", summary.targets, summary.machine)}</dd>
            <dt>"Started"</dt>
            <dd>{format!("{} by {}", when(summary.created_at), summary.requested_by)}</dd>
            <dt>"Finished"</dt>
            <dd>{summary.finished_at.map_or_else(|| "—".to_owned(), when)}</dd>
            <dt>"Ran on"</dt>
            <dd>{match (&view.host, &view.directory) {
                (Some(host), Some(dir)) => format!("{host}: {dir}"),
                _ => "not yet on a worker".to_owned(),
            }}</dd>
            <dt>"Process"</dt>
            <dd>{match view.process {
                Some(id) => view! { <a href=format!("/processes/{id}")>{format!("#{id}")}</a> }.into_any(),
                None => view! { <span>"deleted"</span> }.into_any(),
            }}</dd>
            {view.rebuild_of.map(|earlier| view! {
                <dt>"Rebuild of"</dt>
                <dd><a href=format!("/projects/{slug}/builds/{earlier}")>{format!("#{earlier}")}</a></dd>
            })}
        </dl>
        <FormError message />
        {(view.can_build || view.can_delete).then(|| view! {
            <div class="actions" role="group" aria-label="Build actions">
                {view.can_build.then(|| view! {
                    <ActionForm action=actions.rebuild>
                        <input type="hidden" name="project" value=slug.clone() />
                        <input type="hidden" name="number" value=number />
                        <button type="submit">"Rebuild"</button>
                    </ActionForm>
                })}
                {(view.can_build && !over).then(|| view! {
                    <ConfirmButton label="Cancel build" question=format!("Cancel build #{number}? Its worker stops the step it runs.")
                        on_confirm=Callback::new(move |()| {
                            actions.cancel.dispatch(CancelBuild { project: for_cancel.clone(), number });
                        }) />
                })}
                {view.can_build.then(|| view! {
                    <button type="button" on:click=move |_| {
                        actions.hide.dispatch(SetBuildHidden { project: for_hide.clone(), number, hidden: !hidden });
                    }>{if hidden { "Unhide" } else { "Hide" }}</button>
                })}
                {view.can_build.then(|| view! {
                    <button type="button" title="A pinned build keeps its artifacts whatever the project's retention says" on:click=move |_| {
                        actions.pin.dispatch(SetBuildPinned { project: for_pin.clone(), number, pinned: !pinned });
                    }>{if pinned { "Unpin" } else { "Pin" }}</button>
                })}
                {(view.can_delete && over && !archived).then(|| view! {
                    <ConfirmButton label="Archive build" question=format!("Archive build #{number}? Its snapshot, summary, tasks, errors and failed tasks' logs are kept; its log and other artifacts are removed.")
                        on_confirm=Callback::new(move |()| {
                            actions.archive.dispatch(ArchiveBuild { project: for_archive.clone(), number });
                        }) />
                })}
                {(view.can_delete && over).then(|| view! {
                    <ConfirmButton label="Delete build" question=format!("Delete build #{number} with its log and everything stored for it? This cannot be undone.")
                        on_confirm=Callback::new(move |()| {
                            actions.delete.dispatch(DeleteBuild { project: for_delete.clone(), number });
                        }) />
                })}
            </div>
        })}
        {view.failure.clone().map(|failure| view! {
            <section class="card errors" role="alert">
                <h2>"Why it failed"</h2>
                <pre>{failure}</pre>
            </section>
        })}
        {(!errors.is_empty()).then(|| view! {
            <section class="card errors build-errors">
                <h2>{format!("Errors ({})", summary.errors)}</h2>
                <ul>{errors.into_iter().map(|m| view! { <li><pre>{m.text}</pre><a class="hint" href=format!("{log_base}?line={}#L{}", m.line, m.line)>{format!("log line {}", m.line)}</a></li> }).collect_view()}</ul>
            </section>
        })}
        {(!warnings.is_empty()).then(|| view! {
            <details class="card warnings" open=move || reading.warnings_open.get()
                on:toggle=follow_toggle(reading.warnings_open)>
                <summary>{format!("Warnings ({})", summary.warnings)}</summary>
                <ul>{warnings.into_iter().map(|m| view! { <li><pre>{m.text}</pre><a class="hint" href=format!("{log_base_w}?line={}#L{}", m.line, m.line)>{format!("log line {}", m.line)}</a></li> }).collect_view()}</ul>
            </details>
        })}
        <Artifacts view=view.clone() slug=for_artifacts />
        <Tasks count=view.task_count failed=view.failed_tasks.clone() reading />
        <SnapshotCard view=view.clone() />
    }
}

/// What the build was built from: the configuration revision, layers with their commits,
/// and variables (secrets masked).
#[component]
fn SnapshotCard(view: BuildView) -> impl IntoView {
    let configuration = view.snapshot.configuration.clone();
    view! {
        <details class="card snapshot">
            <summary>{format!("Configuration (revision {})", view.snapshot.revision)}</summary>
            <dl class="facts">
                <dt>"Release"</dt><dd>{configuration.release.clone()}</dd>
                <dt>"Machine"</dt><dd>{configuration.machine.clone()}</dd>
                <dt>"Distro"</dt><dd>{configuration.distro.clone()}</dd>
                <dt>"Targets"</dt><dd>{configuration.image_targets.join(" ")}</dd>
                <dt>"Packages"</dt><dd>{configuration.packages.join(" ")}</dd>
            </dl>
            <ul class="plain">
                {configuration.layers.iter().map(|layer| {
                    let source = match &layer.source {
                        LayerSource::Git { url, git_ref, .. } => format!("{url} at {git_ref}"),
                        LayerSource::Local { path } => path.clone(),
                    };
                    let commit = view.snapshot.layer_commits.get(&layer.name).cloned();
                    view! {
                        <li><strong>{layer.name.clone()}</strong>" "{source}
                            {commit.map(|c| view! { " → "<code>{c}</code> })}</li>
                    }
                }).collect_view()}
            </ul>
            <ul class="plain">
                {configuration.variables.iter().map(|v| view! {
                    <li><code>{format!("{} = {}", v.name, v.value)}</code></li>
                }).collect_view()}
            </ul>
        </details>
    }
    .into_any()
}

/// How the task table is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaskOrder {
    Started,
    Recipe,
    Task,
    Outcome,
    /// Longest first.
    Duration,
}

/// The build's task table: its failed tasks at once, every task when opened (loaded then,
/// so a build of thousands of tasks keeps its page light), sortable by each column.
#[component]
fn Tasks(count: u64, failed: Vec<BuildTask>, reading: Reading) -> impl IntoView {
    let order = reading.task_order;
    // Sorting sits above the table: on a phone the table's header row is not shown.
    let sorter = move || {
        let choice = move |label: &'static str, by: TaskOrder| {
            view! {
                <button type="button" aria-pressed=move || (order.get() == by).to_string()
                    on:click=move |_| order.set(by)>{label}</button>
            }
        };
        view! {
            <div class="actions" role="group" aria-label="Sort tasks by">
                <span class="hint">"Sort by"</span>
                {choice("Start", TaskOrder::Started)}
                {choice("Recipe", TaskOrder::Recipe)}
                {choice("Task", TaskOrder::Task)}
                {choice("Outcome", TaskOrder::Outcome)}
                {choice("Duration", TaskOrder::Duration)}
            </div>
        }
    };
    let header = move |label: &'static str, by: TaskOrder| {
        view! {
            <th scope="col" aria-sort=move || (order.get() == by).then_some("ascending")>{label}</th>
        }
    };
    let table = move |mut tasks: Vec<BuildTask>| {
        match order.get() {
            TaskOrder::Started => {}
            TaskOrder::Recipe => {
                tasks.sort_by(|a, b| a.recipe.cmp(&b.recipe).then(a.task.cmp(&b.task)))
            }
            TaskOrder::Task => {
                tasks.sort_by(|a, b| a.task.cmp(&b.task).then(a.recipe.cmp(&b.recipe)))
            }
            TaskOrder::Outcome => tasks.sort_by(|a, b| a.outcome.cmp(&b.outcome)),
            TaskOrder::Duration => tasks.sort_by_key(|t| std::cmp::Reverse(t.duration_ms)),
        }
        view! {
            <div class="table-wrap">
                <table class="cards build-tasks">
                    <thead><tr>
                        {header("Recipe", TaskOrder::Recipe)}
                        {header("Task", TaskOrder::Task)}
                        {header("Outcome", TaskOrder::Outcome)}
                        {header("Duration", TaskOrder::Duration)}
                    </tr></thead>
                    <tbody>
                        {tasks.into_iter().map(|t| view! {
                            <tr data-outcome=t.outcome.clone()>
                                <td data-label="Recipe">{format!("{} {}", t.recipe, t.version)}</td>
                                <td data-label="Task">{t.task.clone()}</td>
                                <td data-label="Outcome">{t.outcome.clone()}</td>
                                <td data-label="Duration">{t.duration_ms.map_or_else(|| "—".to_owned(), |ms| format!("{:.1} s", ms as f64 / 1000.0))}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        }
    };
    view! {
        {(!failed.is_empty()).then(|| {
            let failed = failed.clone();
            let in_table = failed.clone();
            view! {
                <section class="card errors failed-tasks">
                    <h2>{format!("Failed tasks ({})", failed.len())}</h2>
                    {move || table(in_table.clone())}
                    // What BitBake said of each failure: where its log is, its exit code.
                    <ul class="plain task-failures">
                        {failed.iter().filter_map(|t| {
                            let failure = t.failure.clone()?;
                            Some(view! { <li><strong>{format!("{} {}", t.recipe, t.task)}</strong><pre>{failure}</pre></li> })
                        }).collect_view()}
                    </ul>
                </section>
            }
        })}
        <details class="card tasks" open=move || reading.tasks_open.get()
            on:toggle=follow_toggle(reading.tasks_open)>
            <summary>{format!("Tasks ({count})")}</summary>
            {if count == 0 {
                view! { <p class="hint">"No tasks have run yet."</p> }.into_any()
            } else {
                // Read without a boundary: the table shown stays until the next reading
                // replaces it, where a boundary built with the page would show "Loading…"
                // at each change.
                (move || match reading.tasks.get() {
                    Some(Ok(Some(tasks))) => view! { {sorter()} {table(tasks)} }.into_any(),
                    None if reading.tasks_open.get() => {
                        view! { <p class="loading">"Loading…"</p> }.into_any()
                    }
                    Some(Ok(None)) | None => ().into_any(),
                    Some(Err(error)) => view! { <ErrorPage error /> }.into_any(),
                })
                .into_any()
            }}
        </details>
    }
    .into_any()
}

/// `bytes` in the largest binary unit that keeps it at least 1.
pub fn size_text(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The build's artifacts by kind, each a download link for users with `download`.
#[component]
fn Artifacts(view: BuildView, slug: String) -> impl IntoView {
    let number = view.summary.number;
    let over = view.summary.state.is_over();
    let total: u64 = view.artifacts.iter().map(|a| a.size).sum();
    let body = if let Some(expired) = view.artifacts_expired_at {
        view! { <p class="hint">{format!("Expired {}: the project's retention removed this build's artifacts. Its log, tasks and snapshot are kept.", when(expired))}</p> }.into_any()
    } else if view.artifacts.is_empty() {
        let text = if over {
            "This build left no artifacts."
        } else {
            "Artifacts appear here once the build has collected them."
        };
        view! { <p class="hint">{text}</p> }.into_any()
    } else {
        let can_download = view.can_download;
        let kinds = ArtifactKind::ALL.into_iter().filter_map(|kind| {
            let files: Vec<Artifact> = view
                .artifacts
                .iter()
                .filter(|a| a.kind == kind)
                .cloned()
                .collect();
            (!files.is_empty()).then(|| {
                let slug = slug.clone();
                view! {
                    <h3>{kind.title()}</h3>
                    <ul class="plain artifacts" data-kind=kind.as_str()>
                        {files.into_iter().map(|a| {
                            let href = format!("/projects/{slug}/builds/{number}/artifacts/{}", a.id);
                            let name = if can_download {
                                view! { <a href=href download=a.name.clone() rel="nofollow">{a.name.clone()}</a> }.into_any()
                            } else {
                                view! { <span>{a.name.clone()}</span> }.into_any()
                            };
                            view! {
                                <li>
                                    {name}" "
                                    <span class="hint">{size_text(a.size)}</span>" "
                                    <code class="hash" title=format!("SHA-256 {}", a.sha256)>{a.sha256[..a.sha256.len().min(12)].to_owned()}</code>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }
            })
        }).collect_view();
        view! {
            {(!can_download).then(|| view! { <p class="hint">"Downloading needs the project's download permission."</p> })}
            {kinds}
        }.into_any()
    };
    view! {
        <section class="card build-artifacts">
            <h2>{format!("Artifacts ({}, {})", view.artifacts.len(), size_text(total))}</h2>
            {body}
        </section>
    }
    .into_any()
}

#[component]
fn LogTail(tail: BuildLogTail) -> impl IntoView {
    if tail.archived {
        return view! { <p class="hint">"This build is archived: its log was removed. Its errors, warnings and tasks are kept above, and its failed tasks' logs among its artifacts."</p> }.into_any();
    }
    if tail.lines.is_empty() {
        return view! { <p class="hint">"Nothing printed yet."</p> }.into_any();
    }
    let earlier = tail.first_line.saturating_sub(1);
    view! {
        {(earlier > 0).then(|| view! {
            <p class="hint">{format!("The last {} of {} lines.", tail.lines.len(), tail.total_lines)}</p>
        })}
        <pre class="code log build-log" aria-live="polite">
            {tail.lines.into_iter().enumerate().map(|(i, runs)| view! {
                <span class="log-line" data-line=tail.first_line + i as u64>
                    {runs.into_iter().map(|run| view! {
                        <span class=run.style.classes()>{run.text}</span>
                    }).collect_view()}
                    "\n"
                </span>
            }).collect_view()}
        </pre>
    }
    .into_any()
}
