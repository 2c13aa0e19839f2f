//! The server's background loops: the engine's runner and the cron scheduler.

pub mod engine;
pub mod scheduler;
