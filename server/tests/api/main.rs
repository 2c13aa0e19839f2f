//! Integration tests: a real `kiln serve` application on a free port with a fresh database,
//! driven over HTTP the way a browser drives it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod access;
mod artifacts;
mod audit;
mod audit_trail;
mod auth;
mod build_output;
mod builds;
mod configuration;
mod durability;
mod engine;
mod fake_bitbake;
mod groups;
mod live;
mod markup;
mod participants;
mod processes;
mod projects;
mod secrets;
mod security;
mod sessions;
mod triggers;
mod users;
mod workers;
mod writes;
