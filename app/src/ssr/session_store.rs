//! tower-sessions storage in Kiln's own database (SQLite or PostgreSQL, through SeaORM).
//!
//! Each row keeps the user id outside the opaque session data so that disabling a user or
//! changing their password ends all their sessions with one delete.

use super::entities::sessions::{self, Column, Entity as Sessions};
use crate::types::UserId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, SqlErr,
};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result, SessionStore};

/// The session key holding the logged-in user's id.
pub const USER_ID_KEY: &str = "user_id";

#[derive(Debug, Clone)]
pub struct DbSessionStore {
    db: DatabaseConnection,
}

impl DbSessionStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

fn backend(error: DbErr) -> Error {
    Error::Backend(error.to_string())
}

fn expires_at(record: &Record) -> DateTime<Utc> {
    DateTime::from_timestamp(record.expiry_date.unix_timestamp(), 0).unwrap_or_default()
}

fn row(record: &Record) -> Result<sessions::ActiveModel> {
    let data = serde_json::to_string(&record.data).map_err(|e| Error::Encode(e.to_string()))?;
    Ok(sessions::ActiveModel {
        id: Set(record.id.to_string()),
        user_id: Set(record.data.get(USER_ID_KEY).and_then(|v| v.as_i64())),
        data: Set(data),
        expires_at: Set(expires_at(record)),
        created_at: Set(Utc::now()),
    })
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        loop {
            match Sessions::insert(row(record)?).exec(&self.db).await {
                Ok(_) => return Ok(()),
                Err(error)
                    if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) =>
                {
                    record.id = Id::default();
                }
                Err(error) => return Err(backend(error)),
            }
        }
    }

    /// Updates an existing session only: a session deleted meanwhile (logout, password
    /// change, disabled user) must not come back because a request still held it.
    async fn save(&self, record: &Record) -> Result<()> {
        let mut model = row(record)?;
        model.created_at = sea_orm::ActiveValue::NotSet;
        Sessions::update_many()
            .set(model)
            .filter(Column::Id.eq(record.id.to_string()))
            .exec(&self.db)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let Some(found) = Sessions::find_by_id(id.to_string())
            .filter(Column::ExpiresAt.gt(Utc::now()))
            .one(&self.db)
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let data = serde_json::from_str(&found.data).map_err(|e| Error::Decode(e.to_string()))?;
        let expiry_date = time::OffsetDateTime::from_unix_timestamp(found.expires_at.timestamp())
            .map_err(|e| Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        Sessions::delete_by_id(id.to_string())
            .exec(&self.db)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

/// Ends every session of `user`.
pub async fn end_user_sessions(
    conn: &impl ConnectionTrait,
    user: UserId,
) -> std::result::Result<u64, DbErr> {
    let result = Sessions::delete_many()
        .filter(Column::UserId.eq(user.0))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}

/// Removes expired sessions; run periodically.
pub async fn delete_expired(conn: &impl ConnectionTrait) -> std::result::Result<u64, DbErr> {
    let result = Sessions::delete_many()
        .filter(Column::ExpiresAt.lte(Utc::now()))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}
