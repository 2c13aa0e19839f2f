//! SeaORM entities: the database rows as the data layer reads and writes them.
//!
//! They stay on the server; `crate::types` holds what goes over the wire.

pub mod audit_log;
pub mod configuration_revisions;
pub mod group_members;
pub mod groups;
pub mod instance_settings;
pub mod login_throttle;
pub mod projects;
pub mod sessions;
pub mod users;
