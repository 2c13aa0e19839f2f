//! Kiln's database schema as ordered migrations, run at start-up and by `kiln migrate`.
//!
//! Migrations use string identifiers (never entities), so they stay valid as the entities
//! evolve; a landed migration is never edited, a new one is added instead.

pub use sea_orm_migration::prelude::*;

mod m20261124_000001_create_accounts;
mod m20261127_000001_create_instance_settings;
mod m20261127_000002_create_groups_and_projects;
mod m20261127_000003_create_configuration_revisions;
mod m20261127_000004_create_workflow_engine;
mod m20261127_000005_create_workers;
mod m20261127_000006_create_triggers;
mod m20261128_000001_create_builds;
mod m20261204_000001_add_build_counter;
mod m20261204_000002_widen_trigger_secrets;
mod m20261204_211806_add_build_progress_and_line_prefix;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_accounts::Migration),
            Box::new(m20261127_000001_create_instance_settings::Migration),
            Box::new(m20261127_000002_create_groups_and_projects::Migration),
            Box::new(m20261127_000003_create_configuration_revisions::Migration),
            Box::new(m20261127_000004_create_workflow_engine::Migration),
            Box::new(m20261127_000005_create_workers::Migration),
            Box::new(m20261127_000006_create_triggers::Migration),
            Box::new(m20261128_000001_create_builds::Migration),
            Box::new(m20261204_000001_add_build_counter::Migration),
            Box::new(m20261204_000002_widen_trigger_secrets::Migration),
            Box::new(m20261204_211806_add_build_progress_and_line_prefix::Migration),
        ]
    }
}
