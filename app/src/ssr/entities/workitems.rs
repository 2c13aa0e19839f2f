//! A workitem for a worker or a person: the outbox row a transition writes, and its lease.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workitems")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub instance_id: i64,
    /// The interpreter's workitem number within the instance.
    pub seq: i64,
    pub attempt: i32,
    pub flow_id: i64,
    pub participant: String,
    pub params: String,
    pub fields: String,
    /// `queued`, `dispatched`, `replied`, `retracted` or `lost`.
    pub state: String,
    pub worker_id: Option<i64>,
    pub lease_until: Option<DateTimeUtc>,
    /// How many times a worker holding this workitem was lost.
    pub losses: i32,
    /// The worker's last progress report.
    pub progress: Option<String>,
    /// The worker this workitem waits for (`params.on_worker`), if any.
    pub on_worker: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
