//! One saved configuration of a project, kept whole: number, author, time, what changed.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "configuration_revisions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub project_id: i64,
    /// 1, 2, ... within the project.
    pub number: i32,
    pub author_id: Option<i64>,
    pub author: String,
    pub created_at: DateTimeUtc,
    pub summary: String,
    /// The configuration as JSON, secrets included.
    pub document: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
