//! How long audit records are kept: the administrators' setting, and the sweep that applies it.
//!
//! The sweep is the only code that deletes audit records; no server function or handler can.

use super::audit::{self, Actor, Event};
use super::entities::audit_log::{Column as AuditColumn, Entity as AuditLog};
use super::{db_error, settings};
use crate::domain::RetentionDays;
use crate::error::AppError;
use crate::ssr::begin_write;
use chrono::Utc;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::json;

const AUDIT_RETENTION_KEY: &str = "audit.retention_days";

/// The configured retention, `None` for keeping records forever.
pub async fn audit_retention(
    conn: &impl ConnectionTrait,
) -> Result<Option<RetentionDays>, AppError> {
    let value = settings::get(conn, AUDIT_RETENTION_KEY).await?;
    Ok(value
        .and_then(|value| value.parse().ok())
        .and_then(|days| RetentionDays::new(days).ok()))
}

/// Sets the retention (`None`: forever); the change is audited with the old and new value.
pub async fn set_audit_retention(
    db: &DatabaseConnection,
    actor: &Actor,
    days: Option<RetentionDays>,
) -> Result<(), AppError> {
    let txn = begin_write(db).await?;
    let before = audit_retention(&txn).await?;
    let value = days.map(|days| days.get().to_string());
    settings::put(&txn, actor, AUDIT_RETENTION_KEY, value).await?;
    let describe = |days: Option<RetentionDays>| match days {
        Some(days) => format!("{} days", days.get()),
        None => "forever".to_owned(),
    };
    let event = Event::new(
        "settings.audit_retention",
        "setting",
        Some(AUDIT_RETENTION_KEY.to_owned()),
        format!(
            "Audit retention changed from {} to {}",
            describe(before),
            describe(days)
        ),
    )
    .details(
        json!({ "before": before.map(RetentionDays::get), "after": days.map(RetentionDays::get) }),
    );
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)
}

/// Deletes audit records older than the retention, recording how many went; returns that
/// number (0 when records are kept forever).
pub async fn apply_audit_retention(db: &DatabaseConnection) -> Result<u64, AppError> {
    let Some(days) = audit_retention(db).await? else {
        return Ok(0);
    };
    let cutoff = Utc::now() - chrono::Duration::days(i64::from(days.get()));
    let txn = begin_write(db).await?;
    let deleted = AuditLog::delete_many()
        .filter(AuditColumn::At.lt(cutoff))
        .exec(&txn)
        .await
        .map_err(db_error)?
        .rows_affected;
    if deleted > 0 {
        let event = Event::new(
            "audit.retention_applied",
            "audit_log",
            None,
            format!(
                "Deleted {deleted} audit records older than {} days",
                days.get()
            ),
        )
        .details(json!({ "deleted": deleted, "cutoff": cutoff }));
        audit::record(&txn, &Actor::system(), event).await?;
    }
    txn.commit().await.map_err(db_error)?;
    Ok(deleted)
}
