//! The Inbox: the human tasks the user may answer, each with the process's fields and a
//! form; completing or rejecting answers the process at once.

use super::forms::{FormError, form_message};
use super::status::ErrorPage;
use crate::api::tasks::{CompleteTask, RejectTask, list_tasks};
use crate::types::TaskView;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn InboxPage() -> impl IntoView {
    let complete = ServerAction::<CompleteTask>::new();
    let reject = ServerAction::<RejectTask>::new();
    let tasks = Resource::new(
        move || (complete.version().get(), reject.version().get()),
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
                match tasks.await {
                    Ok(list) if list.is_empty() => view! {
                        <section class="empty-state">
                            <h2>"Nothing to do"</h2>
                            <p>"Tasks for you, your groups or the projects you build appear here when a process asks a person, for example an approval step."</p>
                        </section>
                    }.into_any(),
                    Ok(list) => view! {
                        <ul class="plain tasks">
                            {list.into_iter().map(|task| view! { <Task task complete reject /> }).collect_view()}
                        </ul>
                    }.into_any(),
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                }
            })}
        </Suspense>
    }
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
