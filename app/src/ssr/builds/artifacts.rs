//! A build's artifacts: which worker may upload one, how a complete upload becomes a listed
//! file, and finding one to download.
//!
//! Files live in the build's `artifacts` directory named by their id: neither a name a
//! worker sent nor anything in a request ever becomes part of a path.

use std::path::{Path, PathBuf};

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;

use super::logs;
use crate::builds::{Artifact, ArtifactKind};
use crate::error::AppError;
use crate::ssr::audit::{self, Actor, Event};
use crate::ssr::entities::artifacts::{self, Column, Entity as Artifacts};
use crate::ssr::entities::builds::{self, Entity as Builds};
use crate::ssr::entities::workers::Entity as Workers;
use crate::ssr::entities::workitems::Entity as Workitems;
use crate::ssr::workers::protocol::Attempt;
use crate::ssr::{begin_write, db_error};

/// The largest artifact a worker may upload.
pub const MAX_ARTIFACT_BYTES: u64 = 16 << 30;

/// The most artifacts one build keeps.
pub const MAX_ARTIFACTS_PER_BUILD: u64 = 1_000;

/// The most bytes one build's artifacts take together.
pub const MAX_BUILD_ARTIFACT_BYTES: u64 = 64 << 30;

/// Refuses an upload of `size` bytes named `name` that would take build `build`'s
/// artifacts past [`MAX_BUILD_ARTIFACT_BYTES`] (an artifact of the same name is replaced,
/// so its bytes do not count).
pub async fn check_room(
    conn: &impl ConnectionTrait,
    build: &builds::Model,
    name: &str,
    size: u64,
) -> Result<(), AppError> {
    let sizes: Vec<i64> = Artifacts::find()
        .filter(Column::BuildId.eq(build.id))
        .filter(Column::Name.ne(name))
        .select_only()
        .column(Column::Size)
        .into_tuple()
        .all(conn)
        .await
        .map_err(db_error)?;
    let taken: u64 = sizes.iter().map(|&n| u64::try_from(n).unwrap_or(0)).sum();
    if taken.saturating_add(size) > MAX_BUILD_ARTIFACT_BYTES {
        return Err(AppError::invalid(
            "size",
            format!(
                "A build's artifacts take at most {} GiB together; this build's take {} MiB already.",
                MAX_BUILD_ARTIFACT_BYTES >> 30,
                taken >> 20
            ),
        ));
    }
    Ok(())
}

/// The longest artifact name, in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// The directory of build `number` of `project`'s artifacts.
pub fn dir(data_dir: &Path, project: i64, number: i32) -> PathBuf {
    logs::build_dir(data_dir, project, number).join("artifacts")
}

/// Where artifact `id` of build `number` of `project` is stored.
pub fn file(data_dir: &Path, project: i64, number: i32, id: i64) -> PathBuf {
    dir(data_dir, project, number).join(id.to_string())
}

/// Checks what a worker says of an upload before any of it is read.
pub fn check_upload(name: &str, size: u64, sha256: &str) -> Result<(), AppError> {
    let plain = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    if !plain {
        return Err(AppError::invalid(
            "name",
            format!(
                "An artifact's name is a file name of 1 to {MAX_NAME_BYTES} bytes, without slashes or control characters."
            ),
        ));
    }
    if size > MAX_ARTIFACT_BYTES {
        return Err(AppError::invalid(
            "size",
            format!(
                "An artifact may be at most {} GiB.",
                MAX_ARTIFACT_BYTES >> 30
            ),
        ));
    }
    if sha256.len() != 64
        || !sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(AppError::invalid(
            "sha256",
            "The SHA-256 is 64 lowercase hexadecimal digits.",
        ));
    }
    Ok(())
}

/// Who is uploading: a worker token's id, or one of the server's own workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uploader {
    Token(i64),
    Embedded,
}

/// The build whose step `attempt` is, and the name of the worker holding it, when the
/// uploader is that worker and the step is still running. Anything else is `Forbidden`:
/// a worker uploads only into the build it is working on.
pub async fn upload_target(
    conn: &impl ConnectionTrait,
    uploader: Uploader,
    attempt: Attempt,
) -> Result<(builds::Model, String), AppError> {
    let Some(workitem) = Workitems::find_by_id(attempt.workitem)
        .one(conn)
        .await
        .map_err(db_error)?
    else {
        return Err(AppError::Forbidden);
    };
    if workitem.state != "dispatched"
        || workitem.attempt != attempt.attempt
        || workitem.participant != "build"
    {
        return Err(AppError::Forbidden);
    }
    let Some(worker_id) = workitem.worker_id else {
        return Err(AppError::Forbidden);
    };
    let worker = Workers::find_by_id(worker_id)
        .one(conn)
        .await
        .map_err(db_error)?
        .ok_or(AppError::Forbidden)?;
    let holds = match uploader {
        Uploader::Token(token) => worker.token_id == Some(token),
        Uploader::Embedded => worker.embedded,
    };
    if !holds {
        return Err(AppError::Forbidden);
    }
    let build = Builds::find()
        .filter(builds::Column::InstanceId.eq(workitem.instance_id))
        .one(conn)
        .await
        .map_err(db_error)?
        .ok_or(AppError::Forbidden)?;
    Ok((build, worker.name))
}

/// A complete upload: `temp` holds `size` bytes whose SHA-256 is `sha256`.
pub struct Upload<'a> {
    pub name: &'a str,
    pub size: u64,
    pub sha256: &'a str,
    pub temp: &'a Path,
}

/// Lists `upload` as an artifact of `build`, in place of one of the same name, and moves
/// its file into place, in one transaction with its audit row.
pub async fn record(
    db: &sea_orm::DatabaseConnection,
    data_dir: &Path,
    worker: &str,
    build: &builds::Model,
    upload: Upload<'_>,
) -> Result<artifacts::Model, AppError> {
    let txn = begin_write(db).await?;
    let replaced = Artifacts::find()
        .filter(Column::BuildId.eq(build.id))
        .filter(Column::Name.eq(upload.name))
        .one(&txn)
        .await
        .map_err(db_error)?;
    let others = Artifacts::find()
        .filter(Column::BuildId.eq(build.id))
        .filter(Column::Name.ne(upload.name))
        .count(&txn)
        .await
        .map_err(db_error)?;
    if others >= MAX_ARTIFACTS_PER_BUILD {
        return Err(AppError::invalid(
            "name",
            format!("A build keeps at most {MAX_ARTIFACTS_PER_BUILD} artifacts."),
        ));
    }
    // Checked again here: uploads of the same build may have run side by side.
    check_room(&txn, build, upload.name, upload.size).await?;
    if let Some(old) = &replaced {
        Artifacts::delete_by_id(old.id)
            .exec(&txn)
            .await
            .map_err(db_error)?;
    }
    let kind = ArtifactKind::of(upload.name);
    let row = artifacts::ActiveModel {
        build_id: Set(build.id),
        name: Set(upload.name.to_owned()),
        kind: Set(kind.as_str().to_owned()),
        size: Set(i64::try_from(upload.size).unwrap_or(i64::MAX)),
        sha256: Set(upload.sha256.to_owned()),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(db_error)?;
    let actor = Actor {
        id: None,
        name: format!("worker:{worker}"),
        client_addr: None,
    };
    let event = Event::new(
        "artifact.upload",
        "artifact",
        Some(row.id.to_string()),
        format!(
            "Worker {worker} uploaded {} ({} bytes) to build {}",
            upload.name, upload.size, build.number
        ),
    )
    .details(json!({
        "build": build.id,
        "project": build.project_id,
        "name": upload.name,
        "size": upload.size,
        "sha256": upload.sha256,
    }));
    audit::record(&txn, &actor, event).await?;
    let path = file(data_dir, build.project_id, build.number, row.id);
    tokio::fs::rename(upload.temp, &path)
        .await
        .map_err(|error| {
            tracing::error!(%error, path = %path.display(), "cannot move an upload into place");
            AppError::Internal
        })?;
    if let Err(error) = txn.commit().await {
        let _ = tokio::fs::remove_file(&path).await;
        return Err(db_error(error));
    }
    if let Some(old) = replaced {
        let old_path = file(data_dir, build.project_id, build.number, old.id);
        if let Err(error) = tokio::fs::remove_file(&old_path).await {
            tracing::warn!(%error, path = %old_path.display(), "cannot remove a replaced artifact");
        }
    }
    Ok(row)
}

/// `build`'s artifacts, by kind and name.
pub async fn list(
    conn: &impl ConnectionTrait,
    build: &builds::Model,
) -> Result<Vec<Artifact>, AppError> {
    let rows = Artifacts::find()
        .filter(Column::BuildId.eq(build.id))
        .order_by_asc(Column::Name)
        .limit(MAX_ARTIFACTS_PER_BUILD)
        .all(conn)
        .await
        .map_err(db_error)?;
    let mut artifacts: Vec<Artifact> = rows.into_iter().map(view).collect();
    artifacts.sort_by_key(|artifact| {
        ArtifactKind::ALL
            .iter()
            .position(|kind| *kind == artifact.kind)
    });
    Ok(artifacts)
}

fn view(row: artifacts::Model) -> Artifact {
    Artifact {
        id: row.id,
        kind: ArtifactKind::parse(&row.kind).unwrap_or(ArtifactKind::Other),
        name: row.name,
        size: u64::try_from(row.size).unwrap_or_default(),
        sha256: row.sha256,
    }
}

/// Artifact `id` of `build`; `NotFound` when it belongs to another build or is gone.
pub async fn find(
    conn: &impl ConnectionTrait,
    build: &builds::Model,
    id: i64,
) -> Result<artifacts::Model, AppError> {
    Artifacts::find_by_id(id)
        .filter(Column::BuildId.eq(build.id))
        .one(conn)
        .await
        .map_err(db_error)?
        .ok_or(AppError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_are_checked_before_they_are_read() {
        let hash = "a".repeat(64);
        assert!(check_upload("core-image-minimal.wic", 10, &hash).is_ok());
        for (name, size, sha256, field) in [
            ("", 1, hash.as_str(), "name"),
            ("../etc/passwd", 1, hash.as_str(), "name"),
            ("a/b", 1, hash.as_str(), "name"),
            ("..", 1, hash.as_str(), "name"),
            ("a\nb", 1, hash.as_str(), "name"),
            ("x", MAX_ARTIFACT_BYTES + 1, hash.as_str(), "size"),
            ("x", 1, "ABC", "sha256"),
            ("x", 1, &"A".repeat(64), "sha256"),
        ] {
            let error = check_upload(name, size, sha256).unwrap_err();
            assert_eq!(error.field(), Some(field), "{name:?} {size} {sha256}");
        }
        assert!(check_upload(&"n".repeat(MAX_NAME_BYTES + 1), 1, &hash).is_err());
    }
}
