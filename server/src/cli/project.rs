//! `kiln project export|import`: project files from the command line, audited as "system".

use crate::config::ProjectCommand;
use crate::database;
use anyhow::{Context, anyhow};
use app::domain::Username;
use app::ssr::audit::Actor;
use app::ssr::{project_file, projects, users};
use app::types::CurrentUser;
use std::io::Read;

fn app_error(error: app::error::AppError) -> anyhow::Error {
    anyhow!("{}", error.message())
}

pub async fn run(command: ProjectCommand) -> anyhow::Result<()> {
    let store = match &command {
        ProjectCommand::Export { store, .. } | ProjectCommand::Import { store, .. } => {
            store.resolve()?
        }
    };
    let db = database::connect(&store).await?;
    database::migrate(&db).await?;
    match command {
        ProjectCommand::Export { slug, .. } => {
            let project = projects::by_slug(&db, &slug)
                .await
                .map_err(|_| anyhow!("no project with the slug '{slug}'"))?;
            let text = project_file::export(&db, &project)
                .await
                .map_err(app_error)?;
            print!("{text}");
            Ok(())
        }
        ProjectCommand::Import {
            file, owner, slug, ..
        } => {
            let mut text = String::new();
            if file.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("cannot read the project file from standard input")?;
            } else {
                text = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
            }
            let name = Username::parse(&owner).map_err(app_error)?;
            let owner = users::by_username(&db, &name)
                .await
                .map_err(app_error)?
                .filter(|user| !user.is_disabled)
                .ok_or_else(|| anyhow!("no active user named '{name}'"))?;
            let owner = CurrentUser::from(&owner);
            let keys = crate::secrets_key::load(&store, &db).await?;
            let project = project_file::import(&db, &keys, &Actor::system(), &owner, &text, &slug)
                .await
                .map_err(app_error)?;
            println!(
                "Imported project {} (owner {}).",
                project.slug, owner.username
            );
            Ok(())
        }
    }
}
