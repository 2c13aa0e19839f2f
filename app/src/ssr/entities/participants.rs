//! A registered participant: what it is called, what kind of thing serves it, and its policies.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "participants")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub name: String,
    /// `built_in`, `worker` or `human`.
    pub kind: String,
    pub description: String,
    pub default_timeout_ms: Option<i64>,
    pub worker_loss_retries: i32,
    /// JSON: who may use it; null for everyone who may run the process.
    pub allowed: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
