//! `kiln user ...`: account administration from the command line, audited as "system".

use crate::config::UserCommand;
use crate::database;
use anyhow::{Context, anyhow};
use app::domain::Username;
use app::ssr::accounts::{self, NewAccount, random_password};
use app::ssr::audit::Actor;
use app::ssr::users;
use app::types::UserChange;
use sea_orm::DatabaseConnection;
use std::io::BufRead;

fn app_error(error: app::error::AppError) -> anyhow::Error {
    anyhow!("{error}")
}

/// The password from standard input, or a generated one that is printed.
fn password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((random_password(), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    Ok((line.trim_end_matches(['\r', '\n']).to_owned(), false))
}

async fn find(db: &DatabaseConnection, username: &str) -> anyhow::Result<users::User> {
    let name = Username::parse(username).map_err(app_error)?;
    users::by_username(db, &name)
        .await
        .map_err(app_error)?
        .ok_or_else(|| anyhow!("no user named '{name}'"))
}

pub async fn run(command: UserCommand) -> anyhow::Result<()> {
    let store = match &command {
        UserCommand::Add { store, .. }
        | UserCommand::Passwd { store, .. }
        | UserCommand::List { store }
        | UserCommand::Disable { store, .. }
        | UserCommand::Enable { store, .. } => store.resolve()?,
    };
    let db = database::connect(&store).await?;
    database::migrate(&db).await?;
    let actor = Actor::system();
    match command {
        UserCommand::Add {
            username,
            display_name,
            email,
            admin,
            password_stdin,
            ..
        } => {
            let (password, generated) = password(password_stdin)?;
            let input = NewAccount {
                username: &username,
                display_name: &display_name,
                email: &email,
                password: &password,
                is_admin: admin,
            };
            let user = accounts::create_user(&db, &actor, input)
                .await
                .map_err(app_error)?;
            println!(
                "Created user '{}'{}.",
                user.username,
                if user.is_admin {
                    " (administrator)"
                } else {
                    ""
                }
            );
            if generated {
                println!("Password: {password}");
            }
        }
        UserCommand::Passwd {
            username,
            password_stdin,
            ..
        } => {
            let user = find(&db, &username).await?;
            let (password, generated) = password(password_stdin)?;
            accounts::reset_password(&db, &actor, app::types::UserId(user.id), &password)
                .await
                .map_err(app_error)?;
            println!(
                "Password changed for '{}'; their sessions have ended.",
                user.username
            );
            if generated {
                println!("Password: {password}");
            }
        }
        UserCommand::List { .. } => {
            let mut page = 1;
            println!(
                "{:<24} {:<32} {:<6} {:<9} LAST LOGIN",
                "USERNAME", "DISPLAY NAME", "ADMIN", "STATUS"
            );
            loop {
                let list = users::list(&db, "", page, 500).await.map_err(app_error)?;
                for user in &list.items {
                    let last = user
                        .last_login_at
                        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_else(|| "never".into());
                    let status = if user.is_disabled {
                        "disabled"
                    } else {
                        "active"
                    };
                    let admin = if user.is_admin { "yes" } else { "no" };
                    println!(
                        "{:<24} {:<32} {:<6} {:<9} {last}",
                        user.username, user.display_name, admin, status
                    );
                }
                if page >= list.page_count() {
                    break;
                }
                page += 1;
            }
        }
        UserCommand::Disable { username, .. } => {
            let user = find(&db, &username).await?;
            accounts::change_user(
                &db,
                &actor,
                app::types::UserId(user.id),
                UserChange::Disable,
            )
            .await
            .map_err(app_error)?;
            println!("Disabled '{}'; their sessions have ended.", user.username);
        }
        UserCommand::Enable { username, .. } => {
            let user = find(&db, &username).await?;
            accounts::change_user(&db, &actor, app::types::UserId(user.id), UserChange::Enable)
                .await
                .map_err(app_error)?;
            println!("Enabled '{}'.", user.username);
        }
    }
    Ok(())
}
