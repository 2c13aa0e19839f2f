//! Server functions: the browser's only way to read and change data.
//!
//! Each one authenticates, asks the policy, calls a service and maps the error; nothing else.

pub mod audit;
pub mod auth;
pub mod builds;
pub mod configuration;
pub mod groups;
pub mod processes;
pub mod profile;
pub mod projects;
pub mod tasks;
pub mod triggers;
pub mod users;
pub mod workers;
