//! A build: one numbered run of a project's build workflow, with what it was built from and
//! what it showed while it ran.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "builds")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub project_id: i64,
    /// Counts up from 1 within the project.
    pub number: i32,
    pub instance_id: Option<i64>,
    pub configuration_revision: i32,
    /// JSON [`crate::builds::Snapshot`].
    pub snapshot: String,
    /// Space-separated image targets.
    pub targets: String,
    pub requested_by: Option<i64>,
    pub requested_by_name: String,
    pub rebuild_of: Option<i64>,
    pub host: Option<String>,
    /// Where the build ran, as its worker reported it.
    pub directory: Option<String>,
    /// The project's configured build directory when the build started: the build waits
    /// for the earlier builds using it to end.
    pub build_directory: Option<String>,
    pub parse_percent: i16,
    /// Setscene tasks (restored from shared state) reached, of their total.
    pub setscene_done: i32,
    pub setscene_total: i32,
    pub tasks_done: i32,
    pub tasks_total: i32,
    /// The furthest the build's progress bar got, in percent.
    pub progress: i16,
    pub errors: i32,
    pub warnings: i32,
    pub log_bytes: i64,
    pub log_lines: i64,
    pub hidden: bool,
    pub pinned: bool,
    pub archived: bool,
    /// When retention removed the build's artifacts.
    pub artifacts_expired_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
