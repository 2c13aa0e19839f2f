//! Connecting to SQLite or PostgreSQL and bringing the schema up to date.

use crate::config::StoreSettings;
use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use std::time::Duration;

/// Connections kept to a SQLite file unless configured: writers take turns anyway.
pub const SQLITE_MAX_CONNECTIONS: u32 = 8;
/// Connections kept to PostgreSQL unless configured.
pub const POSTGRES_MAX_CONNECTIONS: u32 = 16;

/// Opens the database, creating the data directory and the SQLite file when needed.
///
/// SQLite runs in WAL mode with foreign keys on and a busy timeout, so concurrent
/// requests wait for each other instead of failing.
pub async fn connect(store: &StoreSettings) -> anyhow::Result<DatabaseConnection> {
    let url = &store.database_url;
    let mut options = ConnectOptions::new(url.clone());
    options
        .sqlx_logging(false)
        .acquire_timeout(store.pool.acquire_timeout);
    if url.starts_with("sqlite:") {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .map(|p| p.split('?').next().unwrap_or(p))
            && let Some(parent) = std::path::Path::new(path).parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let max = store.pool.max_connections.unwrap_or(SQLITE_MAX_CONNECTIONS);
        options.max_connections(max).map_sqlx_sqlite_opts(|opts| {
            opts.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
        });
    } else if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
        anyhow::bail!("unsupported database URL '{url}': use sqlite://PATH or postgres://...");
    } else {
        options.max_connections(
            store
                .pool
                .max_connections
                .unwrap_or(POSTGRES_MAX_CONNECTIONS),
        );
    }
    std::fs::create_dir_all(&store.data_dir)
        .with_context(|| format!("cannot create data directory {}", store.data_dir.display()))?;
    Database::connect(options)
        .await
        .with_context(|| format!("cannot open database {}", redact(url)))
}

pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None)
        .await
        .context("database migration failed")
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact("postgres://kiln:s3cret@db/kiln"),
            "postgres://kiln:***@db/kiln"
        );
        assert_eq!(
            super::redact("postgres://kiln@db/kiln"),
            "postgres://kiln@db/kiln"
        );
        assert_eq!(
            super::redact("sqlite://data/kiln.db"),
            "sqlite://data/kiln.db"
        );
    }
}
