//! Leases on dispatched workitems: claiming queued workitems for a worker, taking them back
//! on reconnect, and applying the participant's policy when a lease runs out.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use std::collections::{BTreeMap, BTreeSet};

use super::protocol::{Attempt, MAX_PROGRESS_CHARS};
use crate::error::AppError;
use crate::ssr::entities::participants::{Column as ParticipantColumn, Entity as Participants};
use crate::ssr::entities::workers::Entity as Workers;
use crate::ssr::entities::workitems::{self, Column, Entity as Workitems};
use crate::ssr::processes::instances::enqueue;
use crate::ssr::writes::take_turn;
use crate::ssr::{begin_write, db_error};
use crate::workflow::engine::Message;

fn attempt_of(row: &workitems::Model) -> Attempt {
    Attempt {
        workitem: row.id,
        attempt: row.attempt,
    }
}

/// A worker asking for workitems: the participants it serves and how many it can take now.
#[derive(Debug, Clone)]
pub struct Slots {
    pub worker: i64,
    /// Its name, which a workitem's `on_worker` may give.
    pub name: String,
    pub participants: Vec<String>,
    pub free: usize,
}

/// Hands the `workers` queued workitems of the participants they serve, oldest first, up to
/// each one's free slots, leased until `lease_until`. Workers serving the same participants
/// read the queue together and share its oldest workitems, each going to the worker with
/// the most slots still free, or to the worker it names; then one statement claims them all.
/// A workitem naming a worker that is not asking waits for it. Returns the rows claimed,
/// as they are now, oldest first; each names its worker.
pub async fn claim(
    db: &DatabaseConnection,
    workers: &[Slots],
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Vec<workitems::Model>, AppError> {
    // Workers serving the same participants, with their free slots; most pools have one.
    let mut pools: BTreeMap<BTreeSet<&str>, Vec<(i64, &str, usize)>> = BTreeMap::new();
    for w in workers
        .iter()
        .filter(|w| w.free > 0 && !w.participants.is_empty())
    {
        pools
            .entry(w.participants.iter().map(String::as_str).collect())
            .or_default()
            .push((w.worker, w.name.as_str(), w.free));
    }
    let mut handed: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut taken: Vec<i64> = Vec::new();
    for (participants, mut pool) in pools {
        let free: usize = pool.iter().map(|&(_, _, free)| free).sum();
        let names: Vec<&str> = pool.iter().map(|&(_, name, _)| name).collect();
        // Most passes find nothing: look before writing.
        let queued: Vec<(i64, Option<String>)> = Workitems::find()
            .select_only()
            .column(Column::Id)
            .column(Column::OnWorker)
            .filter(Column::State.eq("queued"))
            .filter(Column::Participant.is_in(participants))
            .filter(
                Condition::any()
                    .add(Column::OnWorker.is_null())
                    .add(Column::OnWorker.is_in(names)),
            )
            .filter(Column::Id.is_not_in(taken.iter().copied()))
            .filter(Expr::cust(crate::ssr::builds::waits_for_directory()).not())
            .order_by_asc(Column::Id)
            .limit(free as u64)
            .into_tuple()
            .all(db)
            .await
            .map_err(db_error)?;
        for (id, on_worker) in queued {
            let chosen = match &on_worker {
                Some(name) => pool
                    .iter_mut()
                    .find(|(_, worker_name, free)| worker_name == name && *free > 0),
                None => pool
                    .iter_mut()
                    .filter(|(_, _, free)| *free > 0)
                    .max_by_key(|(w, _, free)| (*free, -*w)),
            };
            let Some((worker, _, free)) = chosen else {
                continue;
            };
            *free -= 1;
            handed.entry(*worker).or_default().push(id);
            taken.push(id);
        }
    }
    if taken.is_empty() {
        return Ok(Vec::new());
    }
    let to_worker = handed
        .into_iter()
        .fold(CaseStatement::new(), |case, (worker, ids)| {
            case.case(Column::Id.is_in(ids), Expr::value(worker))
        });
    // Another server sharing the database may have taken some in the meantime, or the
    // engine queued a new attempt: the rows returned are the ones claimed, as they are now.
    let turn = take_turn(db).await?;
    let mut claimed = Workitems::update_many()
        .col_expr(Column::State, Expr::value("dispatched"))
        .col_expr(Column::WorkerId, to_worker.into())
        .col_expr(Column::LeaseUntil, Expr::value(Some(lease_until)))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.is_in(taken))
        .filter(Column::State.eq("queued"))
        .exec_with_returning(db)
        .await
        .map_err(db_error)?;
    drop(turn);
    claimed.sort_by_key(|row| row.id);
    Ok(claimed)
}

/// Takes back, for a worker that (re)connected, the attempts it says it still runs: those
/// still dispatched to it are leased again and returned. The lease of anything else the
/// database has dispatched to it ends now, so the loss policy applies at once: an earlier
/// run of this worker (an embedded worker of a server that was killed, say) may have
/// started it, so it must not run again under the same attempt.
pub async fn reclaim(
    conn: &impl ConnectionTrait,
    worker: i64,
    running: &[Attempt],
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<BTreeSet<Attempt>, AppError> {
    let mut kept = BTreeSet::new();
    for attempt in running {
        let updated = Workitems::update_many()
            .col_expr(Column::LeaseUntil, Expr::value(Some(lease_until)))
            .filter(Column::Id.eq(attempt.workitem))
            .filter(Column::Attempt.eq(attempt.attempt))
            .filter(Column::WorkerId.eq(worker))
            .filter(Column::State.eq("dispatched"))
            .exec(conn)
            .await
            .map_err(db_error)?;
        if updated.rows_affected == 1 {
            kept.insert(*attempt);
        }
    }
    for attempt in held_by(conn, worker).await?.difference(&kept) {
        Workitems::update_many()
            .col_expr(Column::LeaseUntil, Expr::value(Some(now)))
            .filter(Column::Id.eq(attempt.workitem))
            .filter(Column::Attempt.eq(attempt.attempt))
            .filter(Column::WorkerId.eq(worker))
            .filter(Column::State.eq("dispatched"))
            .exec(conn)
            .await
            .map_err(db_error)?;
    }
    Ok(kept)
}

/// The attempts dispatched to worker `worker` now.
pub async fn held_by(
    conn: &impl ConnectionTrait,
    worker: i64,
) -> Result<BTreeSet<Attempt>, AppError> {
    Ok(Workitems::find()
        .filter(Column::WorkerId.eq(worker))
        .filter(Column::State.eq("dispatched"))
        .all(conn)
        .await
        .map_err(db_error)?
        .iter()
        .map(attempt_of)
        .collect())
}

/// Ends the leases of what worker `worker` holds now (it was disconnected on purpose), so
/// that the next sweep applies the loss policy at once.
pub async fn release(conn: &impl ConnectionTrait, worker: i64) -> Result<(), AppError> {
    Workitems::update_many()
        .col_expr(Column::LeaseUntil, Expr::value(Some(Utc::now())))
        .filter(Column::WorkerId.eq(worker))
        .filter(Column::State.eq("dispatched"))
        .exec(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Gives every dispatched workitem a fresh lease until `lease_until`: called when a server
/// starts, since no worker could heartbeat while it was down, and its workers need a moment
/// to reconnect and say what they still run.
pub async fn renew_all(
    conn: &impl ConnectionTrait,
    lease_until: DateTime<Utc>,
) -> Result<u64, AppError> {
    let updated = Workitems::update_many()
        .col_expr(Column::LeaseUntil, Expr::value(Some(lease_until)))
        .filter(Column::State.eq("dispatched"))
        .filter(Column::LeaseUntil.lt(lease_until))
        .exec(conn)
        .await
        .map_err(db_error)?;
    Ok(updated.rows_affected)
}

/// Records a progress report for an attempt worker `worker` holds.
pub async fn progress(
    conn: &impl ConnectionTrait,
    worker: i64,
    attempt: Attempt,
    text: &str,
) -> Result<(), AppError> {
    let text: String = text.chars().take(MAX_PROGRESS_CHARS).collect();
    Workitems::update_many()
        .col_expr(Column::Progress, Expr::value(Some(text)))
        .filter(Column::Id.eq(attempt.workitem))
        .filter(Column::Attempt.eq(attempt.attempt))
        .filter(Column::WorkerId.eq(worker))
        .filter(Column::State.eq("dispatched"))
        .exec(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Applies the worker-loss policy to up to `limit` workitems whose lease ran out before
/// `now`: each is marked lost and its instance told, with whether its participant allows
/// another attempt. Returns how many were lost.
pub async fn expire(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<usize, AppError> {
    let expired = Workitems::find()
        .filter(Column::State.eq("dispatched"))
        .filter(Column::LeaseUntil.lt(now))
        .order_by_asc(Column::Id)
        .limit(limit)
        .all(db)
        .await
        .map_err(db_error)?;
    let mut lost = 0;
    for row in expired {
        let txn = begin_write(db).await?;
        let updated = Workitems::update_many()
            .col_expr(Column::State, Expr::value("lost"))
            .col_expr(Column::Losses, Expr::col(Column::Losses).add(1))
            .col_expr(Column::UpdatedAt, Expr::value(now))
            .filter(Column::Id.eq(row.id))
            .filter(Column::Attempt.eq(row.attempt))
            .filter(Column::State.eq("dispatched"))
            .filter(Column::LeaseUntil.lt(now))
            .exec(&txn)
            .await
            .map_err(db_error)?;
        if updated.rows_affected != 1 {
            continue;
        }
        let retries = Participants::find()
            .filter(ParticipantColumn::Name.eq(&row.participant))
            .one(&txn)
            .await
            .map_err(db_error)?
            .map_or(0, |p| p.worker_loss_retries);
        let worker = match row.worker_id {
            Some(id) => Workers::find_by_id(id).one(&txn).await.map_err(db_error)?,
            None => None,
        };
        let losses = row.losses + 1;
        let retry = losses <= retries;
        let reason = match &worker {
            Some(w) => format!(
                "worker lost: {} stopped answering (last heard from at {})",
                w.name,
                w.last_seen_at.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            None => "worker lost".to_owned(),
        };
        let reason = if retry {
            format!("{reason}; attempt elsewhere {losses} of {retries}")
        } else if retries > 0 {
            format!("{reason}; no attempts elsewhere left ({retries} allowed)")
        } else {
            reason
        };
        let message = Message::WorkitemLost {
            workitem: u64::try_from(row.seq).unwrap_or_default(),
            attempt: u32::try_from(row.attempt).unwrap_or_default(),
            reason,
            retry,
        };
        enqueue(&txn, row.instance_id, &message, now).await?;
        txn.commit().await.map_err(db_error)?;
        lost += 1;
    }
    Ok(lost)
}
