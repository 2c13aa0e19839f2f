//! The Inbox: the human tasks the user may answer, each with the process's fields and a
//! form; completing or rejecting answers the process at once.

use super::forms::{FormError, form_message};
use super::live::use_live;
use super::status::ErrorPage;
use crate::api::tasks::{CompleteTask, RejectTask, list_tasks};
use crate::live::Topic;
use crate::types::TaskView;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn InboxPage() -> impl IntoView {
    let complete = ServerAction::<CompleteTask>::new();
    let reject = ServerAction::<RejectTask>::new();
    // The first list comes with the page; later ones replace it in place, task by task, so
    // that a form being filled in is left alone when another task comes or goes.
    let first = Resource::new(|| (), |_| list_tasks());
    let live = use_live(|| Some(Topic::Inbox));
    let later = Resource::new(
        move || (complete.version().get(), reject.version().get(), live.get()),
        |_| list_tasks(),
    );
    view! {
        <Title text="Inbox" />
        <h1>"Inbox"</h1>
        <FormError message=Signal::derive(move || form_message(&complete.value().get(), &[])) />
        <FormError message=Signal::derive(move || form_message(&reject.value().get(), &[])) />
        {move || match complete.value().get() {
            Some(Ok(id)) => Some(view! { <p class="notice" role="status">"Done: process "<a href=format!("/processes/{id}")>{format!("#{id}")}</a>" goes on."</p> }),
            _ => None,
        }}
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match first.await {
                    Ok(list) => view! { <TaskList list later complete reject /> }.into_any(),
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn TaskList(
    list: Vec<TaskView>,
    later: Resource<Result<Vec<TaskView>, crate::error::AppError>>,
    complete: ServerAction<CompleteTask>,
    reject: ServerAction<RejectTask>,
) -> impl IntoView {
    let tasks = RwSignal::new(list);
    Effect::new(move || {
        if let Some(Ok(list)) = later.get() {
            tasks.set(list);
        }
    });
    view! {
        <Show when=move || !tasks.read().is_empty() fallback=|| view! {
            <section class="empty-state">
                <h2>"Nothing to do"</h2>
                <p>"Tasks for you, your groups or the projects you build appear here when a process asks a person, for example an approval step."</p>
            </section>
        }>
            <ul class="plain tasks">
                <For each=move || tasks.get() key=|task| (task.workitem, task.attempt) let:task>
                    <Task task complete reject />
                </For>
            </ul>
        </Show>
    }
    .into_any()
}

#[component]
fn Task(
    task: TaskView,
    complete: ServerAction<CompleteTask>,
    reject: ServerAction<RejectTask>,
) -> impl IntoView {
    let id = task.workitem;
    let where_ = match &task.project {
        Some(slug) => format!("project {slug}"),
        None => "global".to_owned(),
    };
    view! {
        <li class="card task" data-task=id>
            <h2>{if task.message.is_empty() { format!("{} asks for you", task.participant) } else { task.message.clone() }}</h2>
            <p class="hint">
                <a href=format!("/processes/{}", task.process)>{format!("Process #{} ({})", task.process, task.definition)}</a>
                {format!(", {where_}, since {}", task.created_at.format("%Y-%m-%d %H:%M UTC"))}
                {(!task.addressed_to.is_empty()).then(|| format!("; for {}", task.addressed_to))}
            </p>
            <details>
                <summary>"Fields"</summary>
                <pre class="code">{task.fields.clone()}</pre>
            </details>
            <ActionForm action=complete>
                <input type="hidden" name="workitem" value=id />
                <input type="hidden" name="attempt" value=task.attempt />
                {task.form.iter().map(|field| {
                    let input_id = format!("task-{id}-{field}");
                    view! {
                        <div class="field">
                            <label for=input_id.clone()>{field.clone()}</label>
                            <input id=input_id name=format!("values[{field}]") maxlength="4096" />
                        </div>
                    }
                }).collect_view()}
                <button type="submit" class="primary" disabled=move || complete.pending().get()>"Complete"</button>
            </ActionForm>
            <ActionForm action=reject>
                <input type="hidden" name="workitem" value=id />
                <input type="hidden" name="attempt" value=task.attempt />
                <div class="field">
                    <label for=format!("task-{id}-comment")>"Why reject (the step fails with this)"</label>
                    <input id=format!("task-{id}-comment") name="comment" maxlength="4096" />
                </div>
                <button type="submit" class="danger" disabled=move || reject.pending().get()>"Reject"</button>
            </ActionForm>
        </li>
    }
}
