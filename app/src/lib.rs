//! Kiln's application: pages and components, the types they exchange with the server, the
//! server functions, and (with the `ssr` feature) the data layer behind them.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod api;
pub mod domain;
pub mod error;
#[cfg(feature = "ssr")]
pub mod ssr;
pub mod types;
pub mod ui;
pub mod url;

pub use ui::{App, shell};
