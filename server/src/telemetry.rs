//! Logging: `tracing` to standard error, filtered by `RUST_LOG`, as text or JSON lines.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Starts logging; `default_level` applies when `RUST_LOG` is unset (the server logs at
/// `info`, one-shot commands only warnings, so their own output stays readable).
pub fn init(format: LogFormat, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
