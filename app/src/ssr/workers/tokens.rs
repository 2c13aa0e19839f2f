//! Worker tokens: created and revoked by administrators, shown once, kept only as SHA-256.
//!
//! A token is 32 random bytes, so a plain hash is enough to keep it safe at rest and lets a
//! connecting worker be found with one indexed lookup (a slow password hash would be neither
//! needed nor affordable on every connection).

use chrono::Utc;
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, SqlErr,
};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::valid_name;
use crate::error::AppError;
use crate::ssr::audit::{self, Actor, Event};
use crate::ssr::entities::worker_tokens::{self, Column, Entity as Tokens};
use crate::ssr::{begin_write, db_error};
use crate::types::{NewWorkerToken, WorkerTokenView};

/// What every token starts with, so that one pasted in the wrong place is recognisable.
const TOKEN_PREFIX: &str = "kiln_wt_";

/// Characters of a token shown to tell it apart.
const SHOWN_CHARS: usize = TOKEN_PREFIX.len() + 6;

/// Most tokens (revoked ones included) a Kiln keeps.
pub const MAX_TOKENS: u64 = 1000;

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn view(row: worker_tokens::Model) -> WorkerTokenView {
    WorkerTokenView {
        id: row.id,
        name: row.name,
        prefix: row.prefix,
        created_by: row.created_by,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        revoked_at: row.revoked_at,
    }
}

/// A new random token secret.
pub fn random_secret() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Every token, newest first.
pub async fn list(conn: &impl ConnectionTrait) -> Result<Vec<WorkerTokenView>, AppError> {
    Ok(Tokens::find()
        .order_by_desc(Column::Id)
        .all(conn)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(view)
        .collect())
}

/// Creates a token called `name`. The caller has checked that the actor is an administrator.
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    name: &str,
) -> Result<NewWorkerToken, AppError> {
    let name = valid_name("name", name)?;
    let secret = random_secret();
    let txn = begin_write(db).await?;
    let count = Tokens::find().count(&txn).await.map_err(db_error)?;
    if count >= MAX_TOKENS {
        return Err(AppError::invalid(
            "name",
            format!("Kiln keeps at most {MAX_TOKENS} worker tokens; delete old ones first"),
        ));
    }
    let inserted = worker_tokens::ActiveModel {
        name: Set(name.clone()),
        token_hash: Set(hash(&secret)),
        prefix: Set(secret.chars().take(SHOWN_CHARS).collect()),
        created_by: Set(actor.name.clone()),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(&txn)
    .await;
    let row = match inserted {
        Ok(row) => row,
        Err(error) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            return Err(AppError::conflict(
                "name",
                format!("a worker token named `{name}` already exists"),
            ));
        }
        Err(error) => return Err(db_error(error)),
    };
    let event = Event::new(
        "worker_token.create",
        "worker_token",
        Some(row.id.to_string()),
        format!("Created worker token {name}"),
    )
    .details(json!({ "name": name, "prefix": row.prefix }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(NewWorkerToken {
        token: view(row),
        secret,
    })
}

/// Revokes token `id`: workers can no longer connect with it (the caller disconnects the
/// ones that are connected). The caller has checked that the actor is an administrator.
pub async fn revoke(
    db: &DatabaseConnection,
    actor: &Actor,
    id: i64,
) -> Result<WorkerTokenView, AppError> {
    let txn = begin_write(db).await?;
    let row = Tokens::find_by_id(id)
        .one(&txn)
        .await
        .map_err(db_error)?
        .ok_or(AppError::NotFound)?;
    if row.revoked_at.is_some() {
        return Ok(view(row));
    }
    let name = row.name.clone();
    let mut active: worker_tokens::ActiveModel = row.into();
    active.revoked_at = Set(Some(Utc::now()));
    let row = active.update(&txn).await.map_err(db_error)?;
    let event = Event::new(
        "worker_token.revoke",
        "worker_token",
        Some(id.to_string()),
        format!("Revoked worker token {name}"),
    );
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(view(row))
}

/// The id of the live token whose secret is `secret`, noting its use.
pub async fn authenticate(db: &DatabaseConnection, secret: &str) -> Result<Option<i64>, AppError> {
    if !secret.starts_with(TOKEN_PREFIX) || secret.len() > 128 {
        return Ok(None);
    }
    let Some(row) = Tokens::find()
        .filter(Column::TokenHash.eq(hash(secret)))
        .filter(Column::RevokedAt.is_null())
        .one(db)
        .await
        .map_err(db_error)?
    else {
        return Ok(None);
    };
    let id = row.id;
    let mut active: worker_tokens::ActiveModel = row.into();
    active.last_used_at = Set(Some(Utc::now()));
    active.update(db).await.map_err(db_error)?;
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_recognisable() {
        let (a, b) = (random_secret(), random_secret());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 43);
        assert_eq!(hash(&a).len(), 64);
    }
}
