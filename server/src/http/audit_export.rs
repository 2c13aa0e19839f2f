//! Audit log downloads, CSV or JSON, for administrators; the same filters as the audit page.

use app::api::audit::AUDIT_EXPORT_MAX;
use app::domain::AuditQuery;
use app::error::AppError;
use app::ssr::audit;
use app::ssr::policy::Action;
use app::ssr::request::{RequestContext, Visitor};
use app::ssr::state::AppState;
use app::types::{AuditEntry, AuditFilter};
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::http::plain_routes::{context, error_response};

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Json,
}

#[derive(Debug, Deserialize)]
pub struct ExportParams {
    format: Format,
    #[serde(flatten)]
    filter: AuditFilter,
}

/// `GET /admin/audit/export?format=csv|json&actor=...&action=...&object=...&from=...&to=...`
pub async fn export(
    State(state): State<AppState>,
    Extension(visitor): Extension<Visitor>,
    Query(params): Query<ExportParams>,
) -> Response {
    let ctx = context(state, visitor);
    match entries(&ctx, &params.filter).await {
        Ok(entries) => download(params.format, &entries),
        Err(error) => error_response(&error),
    }
}

async fn entries(ctx: &RequestContext, filter: &AuditFilter) -> Result<Vec<AuditEntry>, AppError> {
    ctx.authorize(Action::ViewAudit).await?;
    let query = AuditQuery::parse(filter)?;
    audit::export(&ctx.state.db, &query, AUDIT_EXPORT_MAX).await
}

fn download(format: Format, entries: &[AuditEntry]) -> Response {
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let (body, content_type, extension) = match format {
        Format::Csv => (to_csv(entries), "text/csv; charset=utf-8", "csv"),
        Format::Json => (to_json(entries), "application/json", "json"),
    };
    let disposition = format!("attachment; filename=\"kiln-audit-{stamp}.{extension}\"");
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

const CSV_HEADER: &str = "id,at,actor,client_addr,action,object_type,object_id,summary,details";

fn to_csv(entries: &[AuditEntry]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push_str("\r\n");
    for entry in entries {
        let cells = [
            entry.id.to_string(),
            entry.at.to_rfc3339(),
            entry.actor.clone(),
            entry.client_addr.clone().unwrap_or_default(),
            entry.action.clone(),
            entry.object_type.clone(),
            entry.object_id.clone().unwrap_or_default(),
            entry.summary.clone(),
            entry.details.clone(),
        ];
        let row: Vec<String> = cells.iter().map(|cell| csv_cell(cell)).collect();
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

/// One CSV field: quoted when needed, and with a leading `'` where a spreadsheet would
/// otherwise run the text as a formula (user-typed names reach the log).
fn csv_cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

fn to_json(entries: &[AuditEntry]) -> String {
    let rows: Vec<serde_json::Value> = entries
        .iter()
        .map(|entry| {
            let details = serde_json::from_str(&entry.details)
                .unwrap_or_else(|_| serde_json::Value::String(entry.details.clone()));
            serde_json::json!({
                "id": entry.id,
                "at": entry.at,
                "actor": entry.actor,
                "client_addr": entry.client_addr,
                "action": entry.action,
                "object_type": entry.object_type,
                "object_id": entry.object_id,
                "summary": entry.summary,
                "details": details,
            })
        })
        .collect();
    serde_json::Value::Array(rows).to_string()
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("@sum"), "'@sum");
    }
}
