//! How long a project keeps its builds' artifacts: its limits (the newest N builds, D days,
//! B bytes), the sweep that expires what is past them, and archiving one build down to what
//! explains it.
//!
//! Expiring or archiving removes files and artifact rows but never the build's record,
//! snapshot, tasks or messages. Pinned builds and builds still running are never touched by
//! the sweep.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Func, Query},
};
use serde_json::json;

use super::{artifacts, is_over, logs};
use crate::builds::{BuildRetention, BuildStorage};
use crate::error::AppError;
use crate::ssr::audit::{self, Actor, Event};
use crate::ssr::entities::artifacts::{Column as ArtifactColumn, Entity as Artifacts};
use crate::ssr::entities::builds::{self, Column, Entity as Builds};
use crate::ssr::entities::process_instances::{self, Entity as Instances};
use crate::ssr::entities::projects::{self, Entity as Projects};
use crate::ssr::projects::Project;
use crate::ssr::{begin_write, db_error};

/// The most builds a project may keep artifacts of by count.
pub const MAX_KEEP_BUILDS: u32 = 100_000;

/// The longest a project may keep artifacts by age, in days.
pub const MAX_KEEP_DAYS: u32 = 36_500;

/// The least a size limit may be.
pub const MIN_KEEP_BYTES: u64 = 1 << 20;

/// The limits of `project`.
pub fn limits(project: &projects::Model) -> BuildRetention {
    BuildRetention {
        keep_builds: project.keep_builds.and_then(|n| u32::try_from(n).ok()),
        keep_days: project.keep_days.and_then(|n| u32::try_from(n).ok()),
        keep_bytes: project.keep_bytes.and_then(|n| u64::try_from(n).ok()),
    }
}

/// Checks `limits` against the documented bounds.
pub fn check(limits: &BuildRetention) -> Result<(), AppError> {
    if limits
        .keep_builds
        .is_some_and(|n| n == 0 || n > MAX_KEEP_BUILDS)
    {
        return Err(AppError::invalid(
            "keep_builds",
            format!("Keep the artifacts of 1 to {MAX_KEEP_BUILDS} builds, or leave it empty."),
        ));
    }
    if limits
        .keep_days
        .is_some_and(|n| n == 0 || n > MAX_KEEP_DAYS)
    {
        return Err(AppError::invalid(
            "keep_days",
            format!("Keep artifacts for 1 to {MAX_KEEP_DAYS} days, or leave it empty."),
        ));
    }
    if limits
        .keep_bytes
        .is_some_and(|n| n < MIN_KEEP_BYTES || i64::try_from(n).is_err())
    {
        return Err(AppError::invalid(
            "keep_size",
            "Keep at least 1 MiB of artifacts, or leave it empty.",
        ));
    }
    Ok(())
}

/// Sets `project`'s limits and applies them at once. The caller has checked that the user
/// administers the project.
pub async fn set_limits(
    db: &DatabaseConnection,
    data_dir: &Path,
    actor: &Actor,
    project: &Project,
    limits: BuildRetention,
) -> Result<u64, AppError> {
    check(&limits)?;
    let txn = begin_write(db).await?;
    let row = Projects::find_by_id(project.id)
        .one(&txn)
        .await
        .map_err(db_error)?
        .ok_or(AppError::NotFound)?;
    let before = self::limits(&row);
    let mut active: projects::ActiveModel = row.into();
    active.keep_builds = Set(limits.keep_builds.map(|n| n as i32));
    active.keep_days = Set(limits.keep_days.map(|n| n as i32));
    active.keep_bytes = Set(limits.keep_bytes.and_then(|n| i64::try_from(n).ok()));
    active.updated_at = Set(Utc::now());
    active.update(&txn).await.map_err(db_error)?;
    let event = Event::new(
        "project.retention",
        "project",
        Some(project.id.to_string()),
        format!("Set how long {} keeps build artifacts", project.slug),
    )
    .details(json!({ "before": before, "after": limits }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    apply_project(db, data_dir, project.id, Utc::now()).await
}

/// One build as the sweep weighs it, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    /// The bytes and number of its artifacts.
    pub bytes: u64,
    pub files: u64,
    pub pinned: bool,
    pub over: bool,
}

/// Which of `candidates` (a project's builds, newest first) to expire under `limits` at
/// `now`: those beyond the newest `keep_builds`, older than `keep_days`, or past
/// `keep_bytes` counted from the newest build down. Pinned and running builds are kept
/// (and count towards the bytes), builds without artifacts are left alone.
pub fn to_expire(
    candidates: &[Candidate],
    limits: &BuildRetention,
    now: DateTime<Utc>,
) -> Vec<i64> {
    let oldest = limits
        .keep_days
        .map(|days| now - Duration::days(i64::from(days)));
    let mut kept_bytes: u64 = 0;
    let mut full = false;
    let mut out = Vec::new();
    for (rank, build) in candidates.iter().enumerate() {
        if build.pinned || !build.over {
            kept_bytes = kept_bytes.saturating_add(build.bytes);
            continue;
        }
        if build.files == 0 {
            continue;
        }
        let beyond = limits.keep_builds.is_some_and(|n| rank >= n as usize);
        let old = oldest.is_some_and(|oldest| build.created_at < oldest);
        full = full
            || limits
                .keep_bytes
                .is_some_and(|max| kept_bytes.saturating_add(build.bytes) > max);
        if beyond || old || full {
            out.push(build.id);
        } else {
            kept_bytes = kept_bytes.saturating_add(build.bytes);
        }
    }
    out
}

/// The sum of `column` as a 64-bit integer (PostgreSQL sums big integers as numeric).
fn sum_of(column: impl sea_orm::sea_query::IntoColumnRef) -> Expr {
    Func::cast_as(Func::sum(Expr::col(column)), "bigint").into()
}

#[derive(Debug, FromQueryResult)]
struct Totals {
    build_id: i64,
    bytes: Option<i64>,
    files: i64,
}

/// The bytes and number of artifacts of each build of `project` that has any.
async fn totals(
    conn: &impl ConnectionTrait,
    project: i64,
) -> Result<HashMap<i64, (u64, u64)>, AppError> {
    let rows = Artifacts::find()
        .select_only()
        .column(ArtifactColumn::BuildId)
        .column_as(sum_of(ArtifactColumn::Size), "bytes")
        .column_as(Expr::col(ArtifactColumn::Id).count(), "files")
        .filter(
            ArtifactColumn::BuildId.in_subquery(
                Query::select()
                    .column(Column::Id)
                    .from(Builds)
                    .and_where(Column::ProjectId.eq(project))
                    .to_owned(),
            ),
        )
        .group_by(ArtifactColumn::BuildId)
        .into_model::<Totals>()
        .all(conn)
        .await
        .map_err(db_error)?;
    Ok(rows
        .into_iter()
        .map(|t| {
            let bytes = u64::try_from(t.bytes.unwrap_or(0)).unwrap_or(0);
            (t.build_id, (bytes, u64::try_from(t.files).unwrap_or(0)))
        })
        .collect())
}

/// Applies `project`'s limits at `now`; returns how many builds' artifacts expired.
pub async fn apply_project(
    db: &DatabaseConnection,
    data_dir: &Path,
    project: i64,
    now: DateTime<Utc>,
) -> Result<u64, AppError> {
    let Some(row) = Projects::find_by_id(project)
        .one(db)
        .await
        .map_err(db_error)?
    else {
        return Ok(0);
    };
    let limits = limits(&row);
    if limits == BuildRetention::default() {
        return Ok(0);
    }
    let totals = totals(db, project).await?;
    let builds = Builds::find()
        .filter(Column::ProjectId.eq(project))
        .order_by_desc(Column::Number)
        .all(db)
        .await
        .map_err(db_error)?;
    let instance_ids: Vec<i64> = builds.iter().filter_map(|b| b.instance_id).collect();
    let mut statuses: HashMap<i64, String> = HashMap::new();
    for chunk in instance_ids.chunks(500) {
        for instance in Instances::find()
            .filter(process_instances::Column::Id.is_in(chunk.to_vec()))
            .all(db)
            .await
            .map_err(db_error)?
        {
            statuses.insert(instance.id, instance.status);
        }
    }
    let candidates: Vec<Candidate> = builds
        .iter()
        .map(|b| {
            let (bytes, files) = totals.get(&b.id).copied().unwrap_or((0, 0));
            let over = b.instance_id.is_none_or(|id| {
                statuses.get(&id).is_none_or(|s| {
                    matches!(s.as_str(), "finished" | "error" | "cancelled" | "killed")
                })
            });
            Candidate {
                id: b.id,
                created_at: b.created_at,
                bytes,
                files,
                pinned: b.pinned,
                over,
            }
        })
        .collect();
    let by_id: HashMap<i64, &builds::Model> = builds.iter().map(|b| (b.id, b)).collect();
    let mut expired = 0;
    for id in to_expire(&candidates, &limits, now) {
        if let Some(build) = by_id.get(&id) {
            free(db, data_dir, &Actor::system(), build, Freeing::Expire).await?;
            expired += 1;
        }
    }
    Ok(expired)
}

/// Applies every project's limits, telling the lists of each project that changed; returns
/// how many builds' artifacts expired.
pub async fn apply_all(
    db: &DatabaseConnection,
    data_dir: &Path,
    live: &crate::ssr::live::LiveBus,
) -> Result<u64, AppError> {
    let projects: Vec<i64> = Projects::find()
        .select_only()
        .column(projects::Column::Id)
        .filter(
            projects::Column::KeepBuilds
                .is_not_null()
                .or(projects::Column::KeepDays.is_not_null())
                .or(projects::Column::KeepBytes.is_not_null()),
        )
        .into_tuple()
        .all(db)
        .await
        .map_err(db_error)?;
    let now = Utc::now();
    let mut expired = 0;
    for project in projects {
        let count = apply_project(db, data_dir, project, now).await?;
        if count > 0 {
            live.publish(crate::live::Topic::Builds, Some(project));
        }
        expired += count;
    }
    Ok(expired)
}

/// Why a build's files are freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freeing {
    /// The project's limits: every artifact goes, and the build is marked expired.
    Expire,
    /// Archiving: everything but the failed tasks' logs goes, the build log included.
    Archive,
}

/// Whether archiving keeps artifact `name`: a failed task's log (`log.do_TASK.PID`).
fn kept_by_archive(name: &str) -> bool {
    name.starts_with("log.do_")
}

/// Frees `build`'s files for `why`, in one transaction with its audit row; the files go
/// after it commits.
async fn free(
    db: &DatabaseConnection,
    data_dir: &Path,
    actor: &Actor,
    build: &builds::Model,
    why: Freeing,
) -> Result<(), AppError> {
    let txn = begin_write(db).await?;
    let rows = Artifacts::find()
        .filter(ArtifactColumn::BuildId.eq(build.id))
        .all(&txn)
        .await
        .map_err(db_error)?;
    let going: Vec<_> = rows
        .into_iter()
        .filter(|a| why == Freeing::Expire || !kept_by_archive(&a.name))
        .collect();
    let ids: Vec<i64> = going.iter().map(|a| a.id).collect();
    let bytes: i64 = going.iter().map(|a| a.size).sum();
    if !ids.is_empty() {
        Artifacts::delete_many()
            .filter(ArtifactColumn::Id.is_in(ids.clone()))
            .exec(&txn)
            .await
            .map_err(db_error)?;
    }
    let mut active: builds::ActiveModel = build.clone().into();
    let (action, summary) = match why {
        Freeing::Expire => {
            active.artifacts_expired_at = Set(Some(Utc::now()));
            ("build.expire", "Expired the artifacts of build")
        }
        Freeing::Archive => {
            active.archived = Set(true);
            ("build.archive", "Archived build")
        }
    };
    active.updated_at = Set(Utc::now());
    active.update(&txn).await.map_err(db_error)?;
    let event = Event::new(
        action,
        "build",
        Some(build.id.to_string()),
        format!("{summary} {}", build.number),
    )
    .details(json!({
        "project_id": build.project_id,
        "number": build.number,
        "artifacts": ids.len(),
        "bytes": bytes,
    }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;

    let mut paths: Vec<_> = ids
        .iter()
        .map(|id| artifacts::file(data_dir, build.project_id, build.number, *id))
        .collect();
    if why == Freeing::Archive {
        let log = logs::path(data_dir, build.project_id, build.number);
        paths.push(super::log_reader::index_path(&log));
        paths.push(log);
    }
    for path in paths {
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            // The records are gone; an operator can remove the file by hand.
            Err(error) => {
                tracing::error!(%error, path = %path.display(), "cannot remove a build file")
            }
        }
    }
    Ok(())
}

/// Reduces build `row` to its snapshot, summary, tasks, messages and failed tasks' logs,
/// removing its log and other artifacts. The caller has checked that the user administers
/// the project.
pub async fn archive(
    db: &DatabaseConnection,
    data_dir: &Path,
    actor: &Actor,
    row: &builds::Model,
) -> Result<(), AppError> {
    if row.archived {
        return Err(AppError::invalid(
            "build",
            format!("Build {} is archived already.", row.number),
        ));
    }
    if !is_over(db, row).await? {
        return Err(AppError::invalid(
            "build",
            format!(
                "Build {} is still running; it can be archived once it has ended.",
                row.number
            ),
        ));
    }
    free(db, data_dir, actor, row, Freeing::Archive).await
}

/// What `project`'s builds keep on disk, and its limits.
pub async fn storage(
    conn: &impl ConnectionTrait,
    project: &projects::Model,
    can_edit: bool,
) -> Result<BuildStorage, AppError> {
    let totals = totals(conn, project.id).await?;
    let (artifact_bytes, artifacts) = totals
        .values()
        .fold((0u64, 0u64), |(b, n), (bytes, files)| {
            (b + bytes, n + files)
        });
    let log_bytes: Option<i64> = Builds::find()
        .select_only()
        .column_as(sum_of(Column::LogBytes), "log_bytes")
        .filter(Column::ProjectId.eq(project.id))
        .filter(Column::Archived.eq(false))
        .into_tuple()
        .one(conn)
        .await
        .map_err(db_error)?
        .flatten();
    Ok(BuildStorage {
        artifact_bytes,
        artifacts,
        log_bytes: u64::try_from(log_bytes.unwrap_or(0)).unwrap_or(0),
        retention: limits(project),
        can_edit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(id: i64, days_old: i64, bytes: u64) -> Candidate {
        Candidate {
            id,
            created_at: Utc::now() - Duration::days(days_old),
            bytes,
            files: u64::from(bytes > 0),
            pinned: false,
            over: true,
        }
    }

    #[test]
    fn limits_expire_from_the_oldest_and_spare_pinned_and_running_builds() {
        let now = Utc::now();
        // Newest first: 5 builds, a day apart, 100 bytes each.
        let mut builds: Vec<Candidate> = (0..5).map(|n| build(5 - n, n, 100)).collect();
        let keep = |keep_builds, keep_days, keep_bytes| BuildRetention {
            keep_builds,
            keep_days,
            keep_bytes,
        };
        assert!(to_expire(&builds, &keep(None, None, None), now).is_empty());
        assert_eq!(
            to_expire(&builds, &keep(Some(2), None, None), now),
            [3, 2, 1]
        );
        assert_eq!(to_expire(&builds, &keep(None, Some(2), None), now), [2, 1]);
        assert_eq!(
            to_expire(&builds, &keep(None, None, Some(250)), now),
            [3, 2, 1]
        );
        // Whichever limit is tighter wins.
        assert_eq!(
            to_expire(&builds, &keep(Some(4), Some(30), Some(150)), now),
            [4, 3, 2, 1]
        );
        // A pinned build is kept and counts towards the size; so does a running one.
        builds[3].pinned = true;
        builds[0].over = false;
        assert_eq!(
            to_expire(&builds, &keep(Some(1), None, None), now),
            [4, 3, 1]
        );
        assert_eq!(
            to_expire(&builds, &keep(None, None, Some(250)), now),
            [3, 1]
        );
        // Builds without artifacts have nothing to expire.
        builds[4] = build(1, 4, 0);
        assert_eq!(to_expire(&builds, &keep(Some(1), None, None), now), [4, 3]);
    }

    #[test]
    fn limits_are_checked() {
        let ok = BuildRetention {
            keep_builds: Some(10),
            keep_days: Some(30),
            keep_bytes: Some(10 << 30),
        };
        assert!(check(&ok).is_ok());
        for (bad, field) in [
            (
                BuildRetention {
                    keep_builds: Some(0),
                    ..ok
                },
                "keep_builds",
            ),
            (
                BuildRetention {
                    keep_days: Some(MAX_KEEP_DAYS + 1),
                    ..ok
                },
                "keep_days",
            ),
            (
                BuildRetention {
                    keep_bytes: Some(1000),
                    ..ok
                },
                "keep_size",
            ),
        ] {
            assert_eq!(check(&bad).unwrap_err().field(), Some(field));
        }
    }
}
