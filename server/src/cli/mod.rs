//! The `kiln` subcommands that work on a store directly: users, projects and processes.

pub mod accounts;
pub mod process;
pub mod project;
