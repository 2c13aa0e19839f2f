//! The Kiln server runtime: configuration, database, HTTP application and command line.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod background;
pub mod bench;
pub mod cli;
pub mod config;
pub mod database;
pub mod demo;
pub mod http;
pub mod secrets_key;
pub mod startup;
pub mod telemetry;
pub mod worker;
