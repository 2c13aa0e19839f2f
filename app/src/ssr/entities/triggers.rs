//! A trigger: a cron schedule or a webhook that launches a definition of its scope.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "triggers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub project_id: Option<i64>,
    /// The project id, or 0 for a global trigger (names are unique per scope).
    pub scope_key: i64,
    pub name: String,
    /// `cron` or `webhook`.
    pub kind: String,
    pub definition_name: String,
    /// JSON object: the fields every launch starts with.
    pub fields: String,
    pub schedule: Option<String>,
    pub time_zone: Option<String>,
    pub secret: Option<String>,
    /// JSON object: field name to JSON pointer into a webhook's payload.
    pub mapping: String,
    pub enabled: bool,
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub next_run_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
