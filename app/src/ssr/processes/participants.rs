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
    (
        "approve",
        "human",
        "Asks params.user or a member of params.group (else anyone who may build) in their Inbox; params.message, params.form: the fields to fill in.",
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

/// The names of the participants people serve.
pub async fn human(conn: &impl ConnectionTrait) -> Result<Vec<String>, AppError> {
    use sea_orm::{ColumnTrait, QueryFilter};
    Ok(Participants::find()
        .filter(Column::Kind.eq("human"))
        .all(conn)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|row| row.name)
        .collect())
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

/// Completed steps the Participants page takes the median latency over.
const LATENCY_SAMPLE: u64 = 20;

/// Every participant with who serves it, what waits for it and how fast it answered lately.
/// `served` maps participant names to the live workers that serve them.
pub async fn overview(
    conn: &impl ConnectionTrait,
    served: &std::collections::BTreeMap<String, Vec<String>>,
) -> Result<Vec<crate::types::ParticipantView>, AppError> {
    use crate::ssr::entities::process_history::{Column as HistoryColumn, Entity as History};
    use crate::ssr::entities::workitems::{Column as WorkitemColumn, Entity as Workitems};
    use sea_orm::sea_query::{Expr, ExprTrait};
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};

    let counts: Vec<(String, String, i64)> = Workitems::find()
        .select_only()
        .column(WorkitemColumn::Participant)
        .column(WorkitemColumn::State)
        .column_as(Expr::col(WorkitemColumn::Id).count(), "n")
        .filter(WorkitemColumn::State.is_in(["queued", "dispatched"]))
        .group_by(WorkitemColumn::Participant)
        .group_by(WorkitemColumn::State)
        .into_tuple()
        .all(conn)
        .await
        .map_err(db_error)?;
    let mut views = Vec::new();
    for row in Participants::find()
        .order_by_asc(Column::Name)
        .all(conn)
        .await
        .map_err(db_error)?
    {
        let count = |state: &str| {
            counts
                .iter()
                .find(|(p, s, _)| *p == row.name && s == state)
                .map_or(0, |c| c.2)
        };
        let mut durations: Vec<i64> = History::find()
            .select_only()
            .column(HistoryColumn::DurationMs)
            .filter(HistoryColumn::Kind.eq("completed"))
            .filter(HistoryColumn::Participant.eq(&row.name))
            .filter(HistoryColumn::DurationMs.is_not_null())
            .order_by_desc(HistoryColumn::Id)
            .limit(LATENCY_SAMPLE)
            .into_tuple::<Option<i64>>()
            .all(conn)
            .await
            .map_err(db_error)?
            .into_iter()
            .flatten()
            .collect();
        durations.sort_unstable();
        views.push(crate::types::ParticipantView {
            queued: count("queued"),
            running: count("dispatched"),
            recent_median_ms: durations.get(durations.len() / 2).copied(),
            workers: served.get(&row.name).cloned().unwrap_or_default(),
            name: row.name,
            kind: row.kind,
            description: row.description,
            default_timeout_ms: row.default_timeout_ms,
            worker_loss_retries: row.worker_loss_retries,
        });
    }
    Ok(views)
}
