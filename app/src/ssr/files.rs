//! Where Kiln keeps the files it stores for projects (logs and artifacts of their builds),
//! under the data directory: `projects/<id>/`.

use crate::types::ProjectId;
use std::path::{Path, PathBuf};

pub fn project_dir(data_dir: &Path, project: ProjectId) -> PathBuf {
    data_dir.join("projects").join(project.0.to_string())
}

/// Removes everything stored for `project`; nothing stored is not an error. Failures are
/// logged: the records are already gone, and an operator can remove the directory by hand.
pub async fn remove_project_files(data_dir: &Path, project: ProjectId) {
    let dir = project_dir(data_dir, project);
    match tokio::fs::remove_dir_all(&dir).await {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => tracing::error!(%error, dir = %dir.display(), "cannot remove project files"),
    }
}
