//! Account services: creating users, administrators' changes, profiles and passwords.
//! Each change commits together with its audit row.

use super::audit::{self, Actor, Event};
use super::entities::users as user_rows;
use super::session_store::end_user_sessions;
use super::{db_error, password, users};
use crate::domain::{DisplayName, Email, Password, Username};
use crate::error::AppError;
use crate::ssr::begin_write;
use crate::types::{CurrentUser, UserChange, UserId, UserView};
use sea_orm::{ActiveValue::Set, DatabaseConnection, IntoActiveModel};
use serde_json::json;

/// What an administrator (or the command line) submits to create an account.
pub struct NewAccount<'a> {
    pub username: &'a str,
    pub display_name: &'a str,
    pub email: &'a str,
    pub password: &'a str,
    pub is_admin: bool,
}

pub async fn create_user(
    db: &DatabaseConnection,
    actor: &Actor,
    input: NewAccount<'_>,
) -> Result<UserView, AppError> {
    let username = Username::parse(input.username)?;
    let display_name = DisplayName::parse(input.display_name, &username)?;
    let email = Email::parse(input.email)?;
    let password = Password::parse(input.password, "password")?;
    let password_hash = password::hash(&password).await?;

    let txn = begin_write(db).await?;
    let user = users::insert(
        &txn,
        users::NewUser {
            username,
            display_name,
            email,
            password_hash,
            is_admin: input.is_admin,
        },
    )
    .await?;
    let event = Event::new(
        "user.create",
        "user",
        Some(user.id.to_string()),
        format!("Created user {}", user.username),
    )
    .details(json!({ "username": user.username, "is_admin": user.is_admin }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(user.into())
}

async fn existing(db: &impl sea_orm::ConnectionTrait, id: UserId) -> Result<users::User, AppError> {
    users::by_id(db, id).await?.ok_or(AppError::NotFound)
}

/// Disables, enables, promotes or demotes `target`. An administrator cannot do this to
/// themselves, and the last active administrator cannot be disabled or demoted.
pub async fn change_user(
    db: &DatabaseConnection,
    actor: &Actor,
    target: UserId,
    change: UserChange,
) -> Result<UserView, AppError> {
    if actor.id == Some(target) {
        return Err(AppError::invalid(
            "user",
            "You cannot change your own account's status or role here.",
        ));
    }
    let txn = begin_write(db).await?;
    let user = existing(&txn, target).await?;
    let removes_admin = user.is_admin
        && !user.is_disabled
        && matches!(change, UserChange::Disable | UserChange::RevokeAdmin);
    if removes_admin && users::count_other_active_admins(&txn, target).await? == 0 {
        return Err(AppError::invalid(
            "user",
            "Kiln needs at least one active administrator.",
        ));
    }
    let username = user.username.clone();
    let mut row: user_rows::ActiveModel = user.into_active_model();
    match change {
        UserChange::Disable => row.is_disabled = Set(true),
        UserChange::Enable => row.is_disabled = Set(false),
        UserChange::GrantAdmin => row.is_admin = Set(true),
        UserChange::RevokeAdmin => row.is_admin = Set(false),
    }
    let updated = users::update(&txn, row).await?;
    let ended = if change == UserChange::Disable {
        end_user_sessions(&txn, target).await.map_err(db_error)?
    } else {
        0
    };
    let event = Event::new(
        change.audit_action(),
        "user",
        Some(target.to_string()),
        format!("{:?} for {username}", change),
    )
    .details(json!({ "username": username, "sessions_ended": ended }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(updated.into())
}

/// Sets `target`'s password and ends all their sessions.
async fn set_password(
    db: &DatabaseConnection,
    actor: &Actor,
    target: UserId,
    password: &Password,
    action: &str,
) -> Result<(), AppError> {
    let password_hash = password::hash(password).await?;
    let txn = begin_write(db).await?;
    let user = existing(&txn, target).await?;
    let username = user.username.clone();
    let mut row = user.into_active_model();
    row.password_hash = Set(password_hash);
    users::update(&txn, row).await?;
    let ended = end_user_sessions(&txn, target).await.map_err(db_error)?;
    let event = Event::new(
        action,
        "user",
        Some(target.to_string()),
        format!("Password changed for {username}"),
    )
    .details(json!({ "username": username, "sessions_ended": ended }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(())
}

/// An administrator (or the command line) sets a new password for `target`.
pub async fn reset_password(
    db: &DatabaseConnection,
    actor: &Actor,
    target: UserId,
    new_password: &str,
) -> Result<(), AppError> {
    let password = Password::parse(new_password, "new_password")?;
    set_password(db, actor, target, &password, "user.reset_password").await
}

/// A user changes their own password; the current one is required. All their sessions end.
pub async fn change_own_password(
    db: &DatabaseConnection,
    actor: &Actor,
    user: &CurrentUser,
    current: &str,
    new_password: &str,
) -> Result<(), AppError> {
    let password = Password::parse(new_password, "new_password")?;
    let stored = existing(db, user.id).await?;
    if !password::verify(current, Some(&stored.password_hash)).await? {
        return Err(AppError::invalid(
            "current_password",
            "The current password is not correct.",
        ));
    }
    set_password(db, actor, user.id, &password, "user.change_password").await
}

/// A user changes their own display name and email.
pub async fn update_profile(
    db: &DatabaseConnection,
    actor: &Actor,
    user: &CurrentUser,
    display_name: &str,
    email: &str,
) -> Result<UserView, AppError> {
    let username = Username::parse(&user.username)?;
    let display_name = DisplayName::parse(display_name, &username)?;
    let email = Email::parse(email)?;
    let txn = begin_write(db).await?;
    let mut row = existing(&txn, user.id).await?.into_active_model();
    row.display_name = Set(display_name.as_str().to_owned());
    row.email = Set(email.into_inner());
    let updated = users::update(&txn, row).await?;
    let event = Event::new(
        "user.update_profile",
        "user",
        Some(user.id.to_string()),
        format!("{} updated their profile", user.username),
    )
    .details(json!({ "display_name": updated.display_name, "email": updated.email }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(updated.into())
}

/// The first administrator made at start-up when there is no user at all.
pub struct FirstAdmin {
    pub username: String,
    /// Set when Kiln generated the password; shown once, never stored in clear.
    pub generated_password: Option<String>,
}

pub const FIRST_ADMIN_USERNAME: &str = "admin";

/// Creates the `admin` account if Kiln has no user yet, with `password` or a random one.
pub async fn ensure_first_admin(
    db: &DatabaseConnection,
    password: Option<&str>,
) -> Result<Option<FirstAdmin>, AppError> {
    if users::count(db).await? > 0 {
        return Ok(None);
    }
    let generated = password.is_none().then(random_password);
    let chosen = password.or(generated.as_deref()).unwrap_or_default();
    let input = NewAccount {
        username: FIRST_ADMIN_USERNAME,
        display_name: "Administrator",
        email: "",
        password: chosen,
        is_admin: true,
    };
    create_user(db, &Actor::system(), input).await?;
    Ok(Some(FirstAdmin {
        username: FIRST_ADMIN_USERNAME.into(),
        generated_password: generated,
    }))
}

/// 20 characters from an unambiguous alphabet: about 115 bits.
pub fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}
