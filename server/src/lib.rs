//! The Kiln server runtime: configuration, database, HTTP application and command line.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod accounts_cli;
pub mod artifacts;
pub mod audit_export;
pub mod bench;
pub mod build_bench;
pub mod build_log;
pub mod config;
pub mod database;
pub mod demo;
pub mod engine;
pub mod engine_bench;
pub mod health;
pub mod live_socket;
pub mod plain_routes;
pub mod process_cli;
pub mod project_cli;
pub mod project_transfer;
pub mod scheduler;
pub mod startup;
pub mod telemetry;
pub mod web;
pub mod webhook;
pub mod worker;
pub mod worker_socket;
