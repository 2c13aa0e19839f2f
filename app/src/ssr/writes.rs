//! Write transactions, taken in turn on SQLite so that writers queue here instead of in
//! SQLite's busy handler.
//!
//! SQLite lets one writer at a time hold a database file. A connection that finds the lock
//! taken sleeps in its busy handler (1, 2, 5, 10, … ms) and tries again, so under many
//! writers most of their time goes to sleeping after the lock came free. Writers of this
//! process instead wait for their turn on an async lock per database file, first come first
//! served, and find the file free when they get it. PostgreSQL takes its writers as they
//! come.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use tokio::sync::OwnedMutexGuard;

use crate::error::AppError;
use crate::ssr::db_error;

/// How long a writer waits for its turn before giving up, as SQLite's busy timeout does.
pub const TURN_TIMEOUT: Duration = Duration::from_secs(10);

/// The turn of each SQLite file this process writes to, by the file name its pools were
/// opened with.
static TURNS: LazyLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Mutex::default);

/// The turn of `db`'s file; `None` for PostgreSQL.
fn turn_of(db: &DatabaseConnection) -> Option<Arc<tokio::sync::Mutex<()>>> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return None;
    }
    let file = db
        .get_sqlite_connection_pool()
        .connect_options()
        .get_filename()
        .to_path_buf();
    let mut turns = TURNS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Some(turns.entry(file).or_default().clone())
}

/// The right to write to a SQLite file, until dropped; nothing on PostgreSQL.
pub struct Turn {
    _guard: Option<OwnedMutexGuard<()>>,
}

/// Waits for `db`'s turn to write, for a write that is one statement and needs no
/// transaction; see [`begin_write`] for anything longer.
pub async fn take_turn(db: &DatabaseConnection) -> Result<Turn, AppError> {
    let Some(turn) = turn_of(db) else {
        return Ok(Turn { _guard: None });
    };
    tokio::time::timeout(TURN_TIMEOUT, turn.lock_owned())
        .await
        .map(|guard| Turn {
            _guard: Some(guard),
        })
        .map_err(|_| {
            db_error(DbErr::Custom(format!(
                "no turn to write within {}s",
                TURN_TIMEOUT.as_secs()
            )))
        })
}

/// A transaction that is going to write; on SQLite it holds the file's turn until it is
/// committed, rolled back or dropped.
pub struct WriteTransaction {
    // Declared first so that it ends before the turn passes on.
    txn: DatabaseTransaction,
    _turn: Turn,
}

/// Starts a transaction that is going to write.
///
/// On SQLite it waits for the file's turn, then takes the write lock at once
/// (`BEGIN IMMEDIATE`). A deferred transaction that reads first and writes later cannot
/// upgrade its lock once another connection has committed in between: SQLite fails it at
/// once, busy timeout or not, and the request would answer 500. PostgreSQL ignores the mode.
///
/// A writer must not start another write transaction on the same database while it holds
/// one: it would wait for itself until [`TURN_TIMEOUT`].
pub async fn begin_write(db: &DatabaseConnection) -> Result<WriteTransaction, AppError> {
    let turn = take_turn(db).await?;
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await
        .map_err(db_error)?;
    Ok(WriteTransaction { txn, _turn: turn })
}

impl WriteTransaction {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }

    /// A nested transaction (a savepoint): what it wrote goes if it is dropped uncommitted,
    /// the rest stays.
    pub async fn savepoint(&self) -> Result<DatabaseTransaction, DbErr> {
        self.txn.begin().await
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for WriteTransaction {
    fn get_database_backend(&self) -> DbBackend {
        self.txn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.txn.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.txn.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.txn.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.txn.query_all_raw(stmt).await
    }

    fn support_returning(&self) -> bool {
        self.txn.support_returning()
    }
}
