//! Kiln's application: pages and components, the types they exchange with the server, the
//! server functions, and (with the `ssr` feature) the data layer behind them.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
// Deeply nested views have deeply nested types; the release browser build needs the room.
#![recursion_limit = "256"]

pub mod api;
pub mod builds;
pub mod configuration;
pub mod domain;
pub mod error;
pub mod live;
#[cfg(feature = "ssr")]
pub mod ssr;
pub mod types;
pub mod ui;
pub mod url;
pub mod workflow;

pub use ui::{App, shell};
