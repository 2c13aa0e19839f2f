//! Workflows: the process definition language (an expression tree written in YAML), its
//! condition language, and (with `ssr`) the parser and the engine's interpreter.
//!
//! The tree types travel to the browser so pages can draw a definition; parsing and running
//! stay on the server.

pub mod condition;
pub mod definition;
#[cfg(feature = "ssr")]
pub mod engine;
pub mod fields;
pub mod outline;
#[cfg(feature = "ssr")]
pub mod parse;

pub use definition::{Definition, Expr, Node, NodeId, Position};
