//! SeaORM entities: the database rows as the data layer reads and writes them.
//!
//! They stay on the server; `crate::types` holds what goes over the wire.

pub mod artifacts;
pub mod audit_log;
pub mod build_messages;
pub mod build_tasks;
pub mod builds;
pub mod configuration_revisions;
pub mod engine_messages;
pub mod group_members;
pub mod groups;
pub mod instance_settings;
pub mod login_throttle;
pub mod participants;
pub mod process_definition_versions;
pub mod process_definitions;
pub mod process_history;
pub mod process_instances;
pub mod projects;
pub mod sessions;
pub mod trigger_runs;
pub mod triggers;
pub mod users;
pub mod worker_tokens;
pub mod workers;
pub mod workitems;
