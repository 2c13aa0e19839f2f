//! One line of an instance's history: what happened, to which expression, by whom, how long.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "process_history")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub instance_id: i64,
    pub at: DateTimeUtc,
    pub kind: String,
    pub flow_id: Option<i64>,
    pub definition_index: Option<i32>,
    pub node_id: Option<i32>,
    pub participant: Option<String>,
    pub by: String,
    pub message: String,
    pub duration_ms: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
