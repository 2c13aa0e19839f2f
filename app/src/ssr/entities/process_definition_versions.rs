//! One saved version of a process definition: its text and parsed tree, never changed.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "process_definition_versions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub definition_id: i64,
    /// 1, 2, ... within the definition.
    pub version: i32,
    pub source: String,
    /// The parsed `Definition` as JSON.
    pub tree: String,
    pub author_id: Option<i64>,
    pub author: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
