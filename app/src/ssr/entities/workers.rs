//! A worker as it last introduced itself, and whether it may take new workitems.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub name: String,
    /// Null for the server's embedded workers.
    pub token_id: Option<i64>,
    pub host: String,
    pub version: String,
    /// JSON list of participant names.
    pub participants: String,
    pub capacity: i32,
    pub embedded: bool,
    pub draining: bool,
    pub connected: bool,
    pub first_seen_at: DateTimeUtc,
    pub last_seen_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
