//! The audit log for administrators: filters, pagination, and CSV or JSON export.

use super::forms::{FormError, field_message, form_message};
use super::layout::AdminTabs;
use super::pagination::{Pagination, page_number};
use super::status::ErrorPage;
use crate::api::audit::{AUDIT_EXPORT_MAX, SetAuditRetention, audit_retention, list_audit};
use crate::domain::{AUDIT_FILTER_MAX, RETENTION_DAYS_MAX};
use crate::types::{AuditEntry, AuditFilter, Page};
use crate::url::encode_component;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

/// The query string for `filter`, without empty fields.
fn filter_query(filter: &AuditFilter) -> String {
    [
        ("actor", &filter.actor),
        ("action", &filter.action),
        ("object", &filter.object),
        ("from", &filter.from),
        ("to", &filter.to),
    ]
    .into_iter()
    .filter(|(_, value)| !value.is_empty())
    .map(|(name, value)| format!("{name}={}", encode_component(value)))
    .collect::<Vec<_>>()
    .join("&")
}

fn with_query(path: &str, first: String, filter: &AuditFilter) -> String {
    let rest = filter_query(filter);
    if rest.is_empty() {
        format!("{path}?{first}")
    } else {
        format!("{path}?{first}&{rest}")
    }
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let filter = move || {
        let query = query.read();
        let get = |name: &str| query.get(name).unwrap_or_default();
        AuditFilter {
            actor: get("actor"),
            action: get("action"),
            object: get("object"),
            from: get("from"),
            to: get("to"),
        }
    };
    let page = page_number(query);
    let entries = Resource::new(
        move || (filter(), page()),
        |(filter, page)| list_audit(filter, page),
    );
    view! {
        <Title text="Audit log" />
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let entries = entries.await;
                Unsuspend::new(move || match entries {
                    Ok(list) => view! {
                        <AdminTabs />
                        <FilterForm filter=filter() />
                        <AuditTable list filter=filter() />
                        <RetentionForm />
                    }
                    .into_any(),
                    Err(error @ crate::error::AppError::Invalid { .. }) => view! {
                        <AdminTabs />
                        <FilterForm filter=filter() />
                        <p class="form-error" role="alert">{error.to_string()}</p>
                    }
                    .into_any(),
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                })
            })}
        </Suspense>
    }
}

#[component]
fn FilterForm(filter: AuditFilter) -> impl IntoView {
    view! {
        <Form method="GET" action="/admin/audit" attr:class="card filters" attr:role="search">
            <div class="field">
                <label for="audit-actor">"Actor"</label>
                <input id="audit-actor" name="actor" value=filter.actor placeholder="username, system or anonymous" maxlength=AUDIT_FILTER_MAX />
            </div>
            <div class="field">
                <label for="audit-action">"Action"</label>
                <input id="audit-action" name="action" value=filter.action placeholder="e.g. login or user.create" maxlength=AUDIT_FILTER_MAX />
            </div>
            <div class="field">
                <label for="audit-object">"Object"</label>
                <input id="audit-object" name="object" value=filter.object placeholder="type or type:id, e.g. user:3" maxlength=AUDIT_FILTER_MAX />
            </div>
            <div class="field">
                <label for="audit-from">"From"</label>
                <input id="audit-from" name="from" type="date" value=filter.from />
            </div>
            <div class="field">
                <label for="audit-to">"To"</label>
                <input id="audit-to" name="to" type="date" value=filter.to />
            </div>
            <div class="filter-actions">
                <button type="submit" class="primary">"Filter"</button>
                <a href="/admin/audit">"Clear"</a>
            </div>
        </Form>
    }
}

#[component]
fn AuditTable(list: Page<AuditEntry>, filter: AuditFilter) -> impl IntoView {
    let export =
        |format: &str| with_query("/admin/audit/export", format!("format={format}"), &filter);
    let exports = view! {
        <p class="exports">
            "Export these records: "
            <a href=export("csv") download="">"CSV"</a>
            " · "
            <a href=export("json") download="">"JSON"</a>
            <span class="hint">{format!(" (at most {AUDIT_EXPORT_MAX} records per export)")}</span>
        </p>
    };
    if list.items.is_empty() {
        return view! {
            <section class="empty-state"><p>"No audit records match these filters."</p></section>
        }
        .into_any();
    }
    let mut position = list.position();
    position.summary.push_str(", newest first");
    let page_filter = filter.clone();
    let page_href =
        move |page: u64| with_query("/admin/audit", format!("page={page}"), &page_filter);
    view! {
        {exports}
        <div class="table-wrap">
            <table class="cards audit">
                <thead>
                    <tr>
                        <th scope="col">"Time (UTC)"</th>
                        <th scope="col">"Actor"</th>
                        <th scope="col">"Address"</th>
                        <th scope="col">"Action"</th>
                        <th scope="col">"Object"</th>
                        <th scope="col">"Summary"</th>
                    </tr>
                </thead>
                <tbody>
                    {list.items.into_iter().map(|entry| view! { <AuditRow entry /> }).collect_view()}
                </tbody>
            </table>
        </div>
        <Pagination position href=Callback::new(page_href) />
    }
    .into_any()
}

#[component]
fn AuditRow(entry: AuditEntry) -> impl IntoView {
    let object = match &entry.object_id {
        Some(id) => format!("{}:{id}", entry.object_type),
        None => entry.object_type.clone(),
    };
    let has_details = entry.details != "{}";
    let action = entry.action.clone();
    view! {
        <tr data-action=action>
            <td data-label="Time">{entry.at.format("%Y-%m-%d %H:%M:%S").to_string()}</td>
            <td data-label="Actor">{entry.actor}</td>
            <td data-label="Address">{entry.client_addr.unwrap_or_default()}</td>
            <td data-label="Action"><code>{entry.action}</code></td>
            <td data-label="Object">{object}</td>
            <td data-label="Summary">
                {entry.summary}
                {has_details.then(|| view! {
                    <details class="audit-details">
                        <summary>"Details"</summary>
                        <pre>{entry.details}</pre>
                    </details>
                })}
            </td>
        </tr>
    }
}

/// How long records are kept; saving it is itself recorded in the log.
#[component]
fn RetentionForm() -> impl IntoView {
    let save = ServerAction::<SetAuditRetention>::new();
    let value = save.value();
    let current = Resource::new(move || save.version().get(), |_| audit_retention());
    let describe = |days: Option<u32>| match days {
        Some(days) => format!("Records older than {days} days are deleted, hourly."),
        None => "Records are kept forever.".to_owned(),
    };
    view! {
        <section class="card retention">
            <h2>"Retention"</h2>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match current.await {
                        Ok(days) => view! {
                            <p>{describe(days)}</p>
                            <ActionForm action=save>
                                <FormError message=Signal::derive(move || form_message(&value.get(), &["retention_days"])) />
                                <div class="field">
                                    <label for="retention_days">"Keep records for (days)"</label>
                                    <input id="retention_days" name="retention_days" type="number" min="1"
                                        max=RETENTION_DAYS_MAX inputmode="numeric"
                                        value=days.map(|d| d.to_string()).unwrap_or_default()
                                        placeholder="empty: forever"
                                        aria-describedby="retention_days-error" />
                                    {move || field_message(&value.get(), "retention_days").map(|message| view! {
                                        <p id="retention_days-error" class="field-error" role="alert">{message}</p>
                                    })}
                                </div>
                                <button type="submit" disabled=move || save.pending().get()>"Save retention"</button>
                            </ActionForm>
                        }
                        .into_any(),
                        Err(error) => view! { <p class="form-error" role="alert">{error.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}
