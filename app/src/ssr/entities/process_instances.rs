//! A process instance: the definitions it pinned, its status and the interpreter's state.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "process_instances")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub project_id: Option<i64>,
    pub definition_name: String,
    /// JSON list of definition version ids, in the order of the state's `definitions`.
    pub pinned_versions: String,
    pub status: String,
    /// The interpreter's `Instance` as JSON.
    pub state: String,
    /// Bumped by every transition (optimistic locking).
    pub revision: i64,
    pub launched_by: Option<i64>,
    pub launched_by_name: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
