//! One BitBake task of a build, as its output reported it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "build_tasks")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub build_id: i64,
    pub recipe: String,
    pub version: String,
    pub task: String,
    /// `started`, `succeeded` or `failed`.
    pub outcome: String,
    pub started_at: DateTimeUtc,
    pub ended_at: Option<DateTimeUtc>,
    /// For a failed task, the lines BitBake grouped with it (its log, its exit code).
    pub failure: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
