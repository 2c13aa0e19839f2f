//! The audit writer: one append-only row per recorded event, written on the caller's
//! connection so that it commits (or rolls back) with the change it records.

use super::entities::audit_log;
use crate::error::AppError;
use crate::types::{CurrentUser, UserId};
use chrono::Utc;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait};
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
    .map_err(super::db_error)?;
    Ok(())
}
