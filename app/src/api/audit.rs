//! The audit log, for administrators: read only. Nothing here (or anywhere) edits a record.

use crate::error::AppError;
use crate::types::{AuditEntry, AuditFilter, Page};
use leptos::prelude::*;

/// Records per page on the audit page.
pub const AUDIT_PER_PAGE: u64 = 50;

/// Most records one export holds; wider exports are refused with a request to narrow them.
pub const AUDIT_EXPORT_MAX: u64 = 100_000;

/// One page of matching records, newest first.
#[server(prefix = "/api", endpoint = "list_audit")]
pub async fn list_audit(
    #[server(default)] filter: AuditFilter,
    page: u64,
) -> Result<Page<AuditEntry>, AppError> {
    use crate::domain::AuditQuery;
    use crate::ssr::{audit, policy::Action, request::authorized};
    authorized(Action::ViewAudit, |ctx, _| async move {
        let query = AuditQuery::parse(&filter)?;
        audit::list(&ctx.state.db, &query, page, AUDIT_PER_PAGE).await
    })
    .await
}
