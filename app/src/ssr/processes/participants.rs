//! The participant registry: which names a definition may hand workitems to.

use std::collections::BTreeSet;

use chrono::Utc;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, sea_query::OnConflict};

use crate::error::AppError;
use crate::ssr::db_error;
use crate::ssr::entities::participants::{self, Column, Entity as Participants};

/// The participants every Kiln has: the interpreter's own, and `shell` on workers.
const STANDARD: &[(&str, &str, &str)] = &[
    ("noop", "built_in", "Does nothing and replies at once."),
    (
        "log",
        "built_in",
        "Appends params.message to the instance history.",
    ),
    ("set", "built_in", "Sets its params as fields."),
    (
        "notify",
        "built_in",
        "Records params.message for params.to.",
    ),
    (
        "shell",
        "worker",
        "Runs params.command (a list: program and arguments, no shell) on a worker.",
    ),
];

/// Registers the standard participants that are not registered yet.
pub async fn ensure_standard(conn: &impl ConnectionTrait) -> Result<(), AppError> {
    let now = Utc::now();
    for (name, kind, description) in STANDARD {
        Participants::insert(participants::ActiveModel {
            name: Set((*name).to_owned()),
            kind: Set((*kind).to_owned()),
            description: Set((*description).to_owned()),
            default_timeout_ms: Set(None),
            worker_loss_retries: Set(1),
            allowed: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .on_conflict(OnConflict::column(Column::Name).do_nothing().to_owned())
        .exec_without_returning(conn)
        .await
        .map_err(db_error)?;
    }
    Ok(())
}

/// Every registered participant's name.
pub async fn names(conn: &impl ConnectionTrait) -> Result<BTreeSet<String>, AppError> {
    Ok(Participants::find()
        .all(conn)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|row| row.name)
        .collect())
}
