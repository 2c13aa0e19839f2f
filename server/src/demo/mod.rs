//! The demo project `kiln serve --demo-project` makes on a new install: a project whose
//! builds run the shipped `fake-bitbake`, so a first build can be started, watched and
//! downloaded before any real layer or build host is set up.

use anyhow::anyhow;
use app::ssr::audit::Actor;
use app::ssr::entities::users::{Column, Entity as Users};
use app::ssr::processes::{Scope, definitions};
use app::ssr::{builds, project_file, projects};
use app::types::CurrentUser;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};

/// The demo project's file.
const PROJECT_FILE: &str = include_str!("project.toml");

/// The demo project's slug.
pub const SLUG: &str = "demo";

/// The demo project's build workflow: the standard one, running `fake-bitbake`.
pub fn definition() -> String {
    builds::STANDARD_DEFINITION.replace("command: [bitbake]", "command: [fake-bitbake]")
}

/// Creates the demo project, owned by the first administrator, unless a project with its
/// slug exists. Returns whether it was created.
pub async fn ensure(
    db: &DatabaseConnection,
    keys: &app::ssr::secrets::Keyring,
) -> anyhow::Result<bool> {
    match projects::by_slug(db, SLUG).await {
        Ok(_) => return Ok(false),
        Err(app::error::AppError::NotFound) => {}
        Err(error) => return Err(anyhow!("cannot look for the demo project: {error}")),
    }
    let owner = Users::find()
        .filter(Column::IsAdmin.eq(true))
        .filter(Column::IsDisabled.eq(false))
        .order_by_asc(Column::Id)
        .one(db)
        .await?
        .ok_or_else(|| anyhow!("the demo project needs an administrator to own it"))?;
    let owner = CurrentUser::from(&owner);
    let actor = Actor::system();
    let project = project_file::import(db, keys, &actor, &owner, PROJECT_FILE, SLUG)
        .await
        .map_err(|error| anyhow!("cannot create the demo project: {error}"))?;
    definitions::save(db, &actor, Scope::Project(project.id), &definition())
        .await
        .map_err(|error| {
            anyhow!(
                "cannot save the demo project's build workflow: {}",
                app::error::AppError::from(error)
            )
        })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_workflow_runs_fake_bitbake() {
        assert!(definition().contains("command: [fake-bitbake]"));
        assert!(PROJECT_FILE.contains("slug = \"demo\""));
    }
}
