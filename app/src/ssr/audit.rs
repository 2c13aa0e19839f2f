//! The audit writer: one append-only row per recorded event, written on the caller's
//! connection so that it commits (or rolls back) with the change it records.

use super::entities::audit_log::{self, Column, Entity as AuditLog};
use super::{db_error, like_escaped, paginate};
use crate::domain::AuditQuery;
use crate::error::AppError;
use crate::types::{AuditEntry, CurrentUser, Page, UserId};
use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, Select,
};
use serde_json::Value;

/// Who did something, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: Option<UserId>,
    pub name: String,
    pub client_addr: Option<String>,
}

impl Actor {
    /// Kiln itself, or an operator at the command line.
    pub fn system() -> Self {
        Self {
            id: None,
            name: "system".into(),
            client_addr: None,
        }
    }

    pub fn user(user: &CurrentUser, client_addr: Option<String>) -> Self {
        Self {
            id: Some(user.id),
            name: user.username.clone(),
            client_addr,
        }
    }

    pub fn anonymous(client_addr: Option<String>) -> Self {
        Self {
            id: None,
            name: "anonymous".into(),
            client_addr,
        }
    }
}

/// One event to record.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// Dotted verb, e.g. `user.create`, `login.failure`.
    pub action: &'a str,
    pub object_type: &'a str,
    pub object_id: Option<String>,
    pub summary: String,
    pub details: Value,
}

impl<'a> Event<'a> {
    pub fn new(
        action: &'a str,
        object_type: &'a str,
        object_id: Option<String>,
        summary: impl Into<String>,
    ) -> Self {
        Self {
            action,
            object_type,
            object_id,
            summary: summary.into(),
            details: Value::Object(Default::default()),
        }
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

fn truncated(value: &str, max: usize) -> String {
    value.chars().take(max).collect()
}

/// Appends `event` by `actor` on `conn` (a transaction, when it records a change).
pub async fn record(
    conn: &impl ConnectionTrait,
    actor: &Actor,
    event: Event<'_>,
) -> Result<(), AppError> {
    audit_log::ActiveModel {
        at: Set(Utc::now()),
        actor_id: Set(actor.id.map(|id| id.0)),
        actor: Set(truncated(&actor.name, 64)),
        client_addr: Set(actor.client_addr.as_deref().map(|a| truncated(a, 64))),
        action: Set(event.action.to_owned()),
        object_type: Set(event.object_type.to_owned()),
        object_id: Set(event.object_id.map(|id| truncated(&id, 64))),
        summary: Set(truncated(&event.summary, 512)),
        details: Set(event.details.to_string()),
        ..Default::default()
    }
    .insert(conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

impl From<audit_log::Model> for AuditEntry {
    fn from(row: audit_log::Model) -> Self {
        Self {
            id: row.id,
            at: row.at,
            actor: row.actor,
            client_addr: row.client_addr,
            action: row.action,
            object_type: row.object_type,
            object_id: row.object_id,
            summary: row.summary,
            details: row.details,
        }
    }
}

fn matching(query: &AuditQuery) -> Select<AuditLog> {
    let mut select = AuditLog::find();
    if let Some(actor) = &query.actor {
        select =
            select.filter(Expr::expr(Func::lower(Expr::col(Column::Actor))).eq(actor.as_str()));
    }
    if let Some(action) = &query.action {
        select = select.filter(
            Column::Action
                .eq(action.as_str())
                .or(Expr::col(Column::Action).like(like_escaped("", action, ".%"))),
        );
    }
    if let Some(object_type) = &query.object_type {
        select = select.filter(Column::ObjectType.eq(object_type.as_str()));
    }
    if let Some(object_id) = &query.object_id {
        select = select.filter(Column::ObjectId.eq(object_id.as_str()));
    }
    if let Some(from) = query.from {
        select = select.filter(Column::At.gte(from));
    }
    if let Some(until) = query.until {
        select = select.filter(Column::At.lt(until));
    }
    select
}

/// One page of matching records, newest first. `page` is 1-based and clamped to the last page.
pub async fn list(
    conn: &impl ConnectionTrait,
    query: &AuditQuery,
    page: u64,
    per_page: u64,
) -> Result<Page<AuditEntry>, AppError> {
    paginate(
        conn,
        matching(query).order_by_desc(Column::Id),
        page,
        per_page,
    )
    .await
}

/// All matching records, oldest first; refused when there are more than `max`.
pub async fn export(
    conn: &impl ConnectionTrait,
    query: &AuditQuery,
    max: u64,
) -> Result<Vec<AuditEntry>, AppError> {
    let select = matching(query);
    let total = select.clone().count(conn).await.map_err(db_error)?;
    if total > max {
        return Err(AppError::invalid(
            "from",
            format!(
                "{total} records match; an export holds at most {max}. Narrow the dates or filters."
            ),
        ));
    }
    let rows = select
        .order_by_asc(Column::Id)
        .all(conn)
        .await
        .map_err(db_error)?;
    Ok(rows.into_iter().map(AuditEntry::from).collect())
}
