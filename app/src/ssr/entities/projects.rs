//! A project: its identity, owner, group and the permissions of group and others.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "projects")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub slug: String,
    pub name: String,
    pub description: String,
    pub owner_id: i64,
    pub group_id: Option<i64>,
    /// A [`crate::types::Permissions`] bit set.
    pub group_permissions: i16,
    pub other_permissions: i16,
    pub archived_at: Option<DateTimeUtc>,
    /// The definition the project's builds run; `standard-build` when unset.
    pub build_definition: Option<String>,
    /// Where on a worker the project's builds run, one at a time (administrators set it);
    /// `None`: each build in a directory of its own.
    pub build_directory: Option<String>,
    /// A pattern taken off the start of each line of the builds' output before it is read;
    /// `None`: lines are read as they are.
    pub line_prefix: Option<String>,
    /// Keep the artifacts of only this many newest builds.
    pub keep_builds: Option<i32>,
    /// Keep artifacts for this many days.
    pub keep_days: Option<i32>,
    /// Keep at most this many bytes of artifacts.
    pub keep_bytes: Option<i64>,
    /// The number of the project's newest build ever started; only grows, so a deleted
    /// build's number is never given again.
    pub last_build_number: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
