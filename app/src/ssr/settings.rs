//! Instance-wide settings that administrators change at run time, kept as text by key.

use super::audit::Actor;
use super::db_error;
use super::entities::instance_settings::{self, Column, Entity as InstanceSettings};
use crate::error::AppError;
use chrono::Utc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};

pub async fn get(conn: &impl ConnectionTrait, key: &str) -> Result<Option<String>, AppError> {
    Ok(InstanceSettings::find_by_id(key)
        .one(conn)
        .await
        .map_err(db_error)?
        .map(|row| row.value))
}

/// Stores `value` under `key`, or removes the key for `None`.
pub async fn put(
    conn: &impl ConnectionTrait,
    actor: &Actor,
    key: &str,
    value: Option<String>,
) -> Result<(), AppError> {
    let Some(value) = value else {
        InstanceSettings::delete_by_id(key)
            .exec(conn)
            .await
            .map_err(db_error)?;
        return Ok(());
    };
    let row = instance_settings::ActiveModel {
        key: Set(key.to_owned()),
        value: Set(value),
        updated_at: Set(Utc::now()),
        updated_by: Set(actor.id.map(|id| id.0)),
    };
    InstanceSettings::insert(row)
        .on_conflict(
            OnConflict::column(Column::Key)
                .update_columns([Column::Value, Column::UpdatedAt, Column::UpdatedBy])
                .to_owned(),
        )
        .exec(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}
