//! One project's page: overview, builds and clone for everyone who may view it; settings (details,
//! sharing, owner, archive, delete) and the audit trail for its owner and administrators.

use super::builds::BuildsSection;
use super::forms::{ConfirmButton, Field, FormError, field_message, form_message};
use super::pagination::{Pagination, page_number};
use super::project_configuration::{ConfigurationSection, HistorySection};
use super::projects::{GroupSelect, PermissionBoxes, sharing_label};
use super::status::{ErrorPage, NotFound};
use crate::api::groups::my_groups;
use crate::api::projects::{
    ArchiveProject, CloneProject, DeleteProject, SetProjectSharing, TransferProject, UpdateProject,
    project, project_audit,
};
use crate::domain::{DESCRIPTION_MAX, PROJECT_NAME_MAX, SLUG_MAX, USERNAME_MAX};
use crate::types::{Membership, ProjectView};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

/// The parts of a project's page, each at its own address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Overview,
    Builds,
    Configuration,
    History,
    Settings,
    Audit,
}

impl Section {
    fn from_path(segment: Option<String>) -> Option<Self> {
        match segment.as_deref() {
            None | Some("") => Some(Self::Overview),
            Some("builds") => Some(Self::Builds),
            Some("configuration") => Some(Self::Configuration),
            Some("history") => Some(Self::History),
            Some("settings") => Some(Self::Settings),
            Some("audit") => Some(Self::Audit),
            Some(_) => None,
        }
    }
}

/// Actions that change the project and so reload it.
#[derive(Clone, Copy)]
struct Changes {
    update: ServerAction<UpdateProject>,
    share: ServerAction<SetProjectSharing>,
    archive: ServerAction<ArchiveProject>,
}

#[component]
pub fn ProjectPage() -> impl IntoView {
    let params = use_params_map();
    let slug = move || params.read().get("slug").unwrap_or_default();
    let section = move || Section::from_path(params.read().get("section"));
    let changes = Changes {
        update: ServerAction::new(),
        share: ServerAction::new(),
        archive: ServerAction::new(),
    };
    let loaded = Resource::new(
        move || {
            (
                slug(),
                changes.update.version().get(),
                changes.share.version().get(),
                changes.archive.version().get(),
            )
        },
        |(slug, ..)| project(slug),
    );
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let loaded = loaded.await;
                Unsuspend::new(move || match (loaded, section()) {
                    (Ok(project), Some(section)) => view! { <Project project section changes /> }.into_any(),
                    (Ok(_), None) => view! { <NotFound /> }.into_any(),
                    (Err(error), _) => view! { <ErrorPage error /> }.into_any(),
                })
            })}
        </Suspense>
    }
}

#[component]
fn Project(project: ProjectView, section: Section, changes: Changes) -> impl IntoView {
    let base = format!("/projects/{}", project.slug);
    let admin = project.access.admin;
    let tab = |target: Section, href: String, label: &'static str| {
        view! { <a href=href aria-current=(section == target).then_some("page")>{label}</a> }
    };
    let sharing = sharing_label(
        project.group.as_ref().map(|g| g.name.as_str()),
        project.group_permissions,
        project.other_permissions,
    );
    view! {
        <Title text=project.name.clone() />
        <h1>
            {project.name.clone()}
            {project.archived_at.map(|_| view! { " " <span class="badge disabled">"Archived"</span> })}
        </h1>
        <dl class="facts">
            <dt>"Slug"</dt>
            <dd>{project.slug.clone()}</dd>
            <dt>"Owner"</dt>
            <dd>{format!("{} ({})", project.owner_display_name, project.owner)}</dd>
            <dt>"Shared with"</dt>
            <dd>{sharing}</dd>
            <dt>"You may"</dt>
            <dd>{project.access.permissions.to_string()}{admin.then_some(", admin")}</dd>
        </dl>
        <nav class="tabs" aria-label="Project">
            {tab(Section::Overview, base.clone(), "Overview")}
            {tab(Section::Builds, format!("{base}/builds"), "Builds")}
            {tab(Section::Configuration, format!("{base}/configuration"), "Configuration")}
            {tab(Section::History, format!("{base}/history"), "History")}
            <a href=format!("/processes?project={}", project.slug)>"Processes"</a>
            <a href=format!("/processes/definitions?project={}", project.slug)>"Definitions"</a>
            <a href=format!("/processes/triggers/manage?project={}", project.slug)>"Triggers"</a>
            {admin.then(|| tab(Section::Settings, format!("{base}/settings"), "Settings"))}
            {admin.then(|| tab(Section::Audit, format!("{base}/audit"), "Audit trail"))}
        </nav>
        {match section {
            Section::Overview => view! { <Overview project /> }.into_any(),
            Section::Builds => view! { <BuildsSection project /> }.into_any(),
            Section::Configuration => view! { <ConfigurationSection project /> }.into_any(),
            Section::History => view! { <HistorySection project /> }.into_any(),
            Section::Settings if admin => view! { <Settings project changes /> }.into_any(),
            Section::Audit if admin => view! { <AuditTrail slug=project.slug.clone() /> }.into_any(),
            _ => view! { <ErrorPage error=crate::error::AppError::Forbidden /> }.into_any(),
        }}
    }
}

#[component]
fn Overview(project: ProjectView) -> impl IntoView {
    let clone = ServerAction::<CloneProject>::new();
    let value = clone.value();
    Effect::new(move || {
        if let Some(Ok(copy)) = value.get() {
            let _ = window()
                .location()
                .set_href(&format!("/projects/{}", copy.slug));
        }
    });
    let description = if project.description.is_empty() {
        view! { <p class="hint">"No description."</p> }.into_any()
    } else {
        view! { <p class="description">{project.description.clone()}</p> }.into_any()
    };
    let fields = ["name", "new_slug"];
    view! {
        <section class="card">
            <h2>"About"</h2>
            {description}
            <dl class="facts">
                <dt>"Created"</dt>
                <dd>{project.created_at.format("%Y-%m-%d %H:%M UTC").to_string()}</dd>
                <dt>"Changed"</dt>
                <dd>{project.updated_at.format("%Y-%m-%d %H:%M UTC").to_string()}</dd>
            </dl>
        </section>
        <details class="card" open=move || matches!(value.get(), Some(Err(_)))>
            <summary>"Clone this project"</summary>
            <p class="hint">"Makes a new private project of yours with this project's description and configuration."</p>
            <ActionForm action=clone>
                <FormError message=Signal::derive(move || form_message(&value.get(), &fields)) />
                <input type="hidden" name="slug" value=project.slug.clone() />
                <Field label="Name" name="name" required=true maxlength=PROJECT_NAME_MAX
                    value=format!("Copy of {}", project.name) id_prefix="clone-".to_owned()
                    error=Signal::derive(move || field_message(&value.get(), "name")) />
                <Field label="Slug" name="new_slug" required=true maxlength=SLUG_MAX autocomplete="off"
                    value=format!("{}-copy", project.slug) id_prefix="clone-".to_owned()
                    error=Signal::derive(move || field_message(&value.get(), "new_slug")) />
                <button type="submit" class="primary" disabled=move || clone.pending().get()>"Clone"</button>
            </ActionForm>
        </details>
    }
}

#[component]
fn Settings(project: ProjectView, changes: Changes) -> impl IntoView {
    let groups = Resource::new(|| (), |_| my_groups());
    let current_group = project.group.clone();
    let updated = changes.update.value();
    let shared = changes.share.value();
    let archive = changes.archive;
    let slug = project.slug.clone();
    let (details_slug, sharing_slug, transfer_slug, delete_slug) =
        (slug.clone(), slug.clone(), slug.clone(), slug.clone());
    let (name, description) = (project.name.clone(), project.description.clone());
    let (group_permissions, other_permissions) =
        (project.group_permissions, project.other_permissions);
    let archived = project.archived_at.is_some();
    view! {
        <section class="card">
            <h2>"Details"</h2>
            <ActionForm action=changes.update>
                <FormError message=Signal::derive(move || form_message(&updated.get(), &["name", "description"])) />
                <input type="hidden" name="slug" value=details_slug />
                <Field label="Name" name="name" required=true maxlength=PROJECT_NAME_MAX value=name
                    error=Signal::derive(move || field_message(&updated.get(), "name")) />
                <div class="field">
                    <label for="description">"Description"</label>
                    <textarea id="description" name="description" rows="4" maxlength=DESCRIPTION_MAX>
                        {super::raw_text::escaped(description)}
                    </textarea>
                    {move || field_message(&updated.get(), "description").map(|m| view! { <p class="field-error">{m}</p> })}
                </div>
                <button type="submit" class="primary">"Save details"</button>
                {move || matches!(updated.get(), Some(Ok(_))).then(|| view! { <p class="notice" role="status">"Saved."</p> })}
            </ActionForm>
        </section>
        <section class="card">
            <h2>"Sharing"</h2>
            <p class="hint">"The owner and administrators may do everything. Any permission includes view."</p>
            <ActionForm action=changes.share>
                <FormError message=Signal::derive(move || form_message(&shared.get(), &["group"])) />
                <input type="hidden" name="slug" value=sharing_slug />
                <Suspense fallback=|| ()>
                    {move || {
                        let current_group = current_group.clone();
                        Suspend::new(async move {
                            let mut choices: Vec<Membership> = groups.await.unwrap_or_default();
                            // The current group stays selectable even for an owner who left it.
                            if let Some(current) = &current_group
                                && !choices.iter().any(|g| g.group == current.id)
                            {
                                choices.insert(0, Membership { group: current.id, name: current.name.clone(), is_maintainer: false });
                            }
                            let selected = current_group.as_ref().map(|g| g.id.0);
                            view! {
                                <GroupSelect groups=choices selected error=Signal::derive(move || field_message(&shared.get(), "group")) />
                            }
                        })
                    }}
                </Suspense>
                <PermissionBoxes prefix="group_permissions" legend="The group may" value=group_permissions />
                <PermissionBoxes prefix="other_permissions" legend="Everyone else may" value=other_permissions />
                <button type="submit" class="primary">"Save sharing"</button>
                {move || matches!(shared.get(), Some(Ok(_))).then(|| view! { <p class="notice" role="status">"Sharing saved."</p> })}
            </ActionForm>
        </section>
        <Transfer slug=transfer_slug />
        <section class="card">
            <h2>{if archived { "Archived" } else { "Archive" }}</h2>
            <p class="hint">{if archived {
                "This project is archived: it is hidden from project lists unless asked for."
            } else {
                "Archiving hides the project from lists; it can be restored at any time."
            }}</p>
            <FormError message=Signal::derive(move || form_message(&archive.value().get(), &[])) />
            <ConfirmButton
                label=if archived { "Restore" } else { "Archive" }
                question=format!("{} {slug}?", if archived { "Restore" } else { "Archive" })
                on_confirm=Callback::new(move |()| {
                    archive.dispatch(ArchiveProject { slug: slug.clone(), archived: !archived });
                })
            />
        </section>
        <Delete slug=delete_slug />
    }
}

#[component]
fn Transfer(slug: String) -> impl IntoView {
    let transfer = ServerAction::<TransferProject>::new();
    let value = transfer.value();
    Effect::new(move || {
        if matches!(value.get(), Some(Ok(_))) {
            let _ = window().location().reload();
        }
    });
    view! {
        <section class="card">
            <h2>"Transfer ownership"</h2>
            <p class="hint">"The new owner gets every permission; you keep only what the sharing gives you."</p>
            <ActionForm action=transfer>
                <FormError message=Signal::derive(move || form_message(&value.get(), &["owner"])) />
                <input type="hidden" name="slug" value=slug />
                <Field label="New owner's username" name="owner" required=true maxlength=USERNAME_MAX autocomplete="off"
                    error=Signal::derive(move || field_message(&value.get(), "owner")) />
                <button type="submit">"Transfer"</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn Delete(slug: String) -> impl IntoView {
    let delete = ServerAction::<DeleteProject>::new();
    let value = delete.value();
    Effect::new(move || {
        if matches!(value.get(), Some(Ok(()))) {
            let _ = window().location().set_href("/projects");
        }
    });
    view! {
        <section class="card danger-zone">
            <h2>"Delete project"</h2>
            <p>"This removes the project, its configuration history, builds, logs and artifacts. It cannot be undone."</p>
            <ActionForm action=delete>
                <FormError message=Signal::derive(move || form_message(&value.get(), &["confirm"])) />
                <input type="hidden" name="slug" value=slug.clone() />
                <Field label="Type the slug to confirm" name="confirm" required=true autocomplete="off"
                    error=Signal::derive(move || field_message(&value.get(), "confirm")) />
                <button type="submit" class="danger" disabled=move || delete.pending().get()>{format!("Delete {slug}")}</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn AuditTrail(slug: String) -> impl IntoView {
    let query = use_query_map();
    let page = page_number(query);
    let for_slug = slug.clone();
    let entries = Resource::new(page, move |page| project_audit(for_slug.clone(), page));
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || {
                let slug = slug.clone();
                Suspend::new(async move {
                    match entries.await {
                        Ok(list) if list.items.is_empty() => view! {
                            <section class="empty-state"><p>"Nothing recorded yet."</p></section>
                        }.into_any(),
                        Ok(list) => {
                            let position = list.position();
                            view! {
                                <div class="table-wrap">
                                    <table class="cards">
                                        <thead>
                                            <tr>
                                                <th scope="col">"Time"</th>
                                                <th scope="col">"Actor"</th>
                                                <th scope="col">"Action"</th>
                                                <th scope="col">"Summary"</th>
                                            </tr>
                                        </thead>
                                        <tbody>
                                            {list.items.into_iter().map(|entry| view! {
                                                <tr>
                                                    <td data-label="Time">{entry.at.format("%Y-%m-%d %H:%M:%S UTC").to_string()}</td>
                                                    <td data-label="Actor">{entry.actor}</td>
                                                    <td data-label="Action">{entry.action}</td>
                                                    <td data-label="Summary">{entry.summary}</td>
                                                </tr>
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                                <Pagination position
                                    href=Callback::new(move |page| format!("/projects/{slug}/audit?page={page}")) />
                            }.into_any()
                        }
                        Err(error) => view! { <ErrorPage error /> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}
