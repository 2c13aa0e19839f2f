//! Application state shared by every request, and the settings the data layer needs.

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sea_orm::DatabaseConnection;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How logins and sessions behave; resolved from `kiln serve`'s configuration.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// A session unused for this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after login, however active.
    pub lifetime: Duration,
    /// Failed logins for one account name within `failure_window` before it is locked.
    pub account_max_failures: u32,
    /// Failed logins from one client address within `failure_window` before it is locked.
    pub address_max_failures: u32,
    pub failure_window: Duration,
    /// Take the client address from the last `X-Forwarded-For` entry (behind a reverse proxy).
    pub trust_forwarded_for: bool,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(8 * 3600),
            lifetime: Duration::from_secs(7 * 24 * 3600),
            account_max_failures: 5,
            address_max_failures: 20,
            failure_window: Duration::from_secs(15 * 60),
            trust_forwarded_for: false,
        }
    }
}

#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub auth: Arc<AuthSettings>,
    /// Where Kiln keeps files: the SQLite database, and what it stores for projects.
    pub data_dir: Arc<PathBuf>,
    pub engine: super::processes::EngineHandle,
    pub workers: super::workers::WorkerHub,
    /// Writes the workers' replies.
    pub replies: super::workers::replies::Replies,
    /// Takes in what builds print.
    pub builds: super::builds::logs::BuildLogs,
    /// Live changes for the browsers' `/ws` sockets.
    pub live: super::live::LiveBus,
    /// Seals and opens the secrets kept in the database.
    pub secrets: super::secrets::Keyring,
    pub leptos_options: LeptosOptions,
}
