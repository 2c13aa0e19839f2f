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

/// How many days audit records are kept; `None` keeps them forever.
#[server(prefix = "/api", endpoint = "audit_retention")]
pub async fn audit_retention() -> Result<Option<u32>, AppError> {
    use crate::ssr::{policy::Action, request::authorized, retention};
    authorized(Action::ViewAudit, |ctx, _| async move {
        let days = retention::audit_retention(&ctx.state.db).await?;
        Ok(days.map(crate::domain::RetentionDays::get))
    })
    .await
}

/// Sets the retention from the form field (empty: forever); answers the new value.
#[server(prefix = "/api", endpoint = "set_audit_retention")]
pub async fn set_audit_retention(retention_days: String) -> Result<Option<u32>, AppError> {
    use crate::domain::RetentionDays;
    use crate::ssr::{policy::Action, request::authorized, retention};
    authorized(Action::ConfigureInstance, |ctx, _| async move {
        let days = RetentionDays::parse(&retention_days)?;
        retention::set_audit_retention(&ctx.state.db, &ctx.actor(), days).await?;
        Ok(days.map(RetentionDays::get))
    })
    .await
}
