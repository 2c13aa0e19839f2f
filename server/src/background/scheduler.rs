//! The cron scheduler: fires cron triggers as they fall due, and sleeps until the next one
//! is due or a schedule changes.

use std::time::Duration;

use app::ssr::processes::EngineHandle;
use app::ssr::triggers;
use chrono::Utc;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

/// The longest the scheduler sleeps without looking (triggers changed by another server
/// process on the same database wake nobody here).
const MAX_IDLE: Duration = Duration::from_secs(30);
/// The pause after a database error before trying again.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);

pub async fn run_until_stopped(
    db: DatabaseConnection,
    engine: EngineHandle,
    shutdown: CancellationToken,
) {
    loop {
        let pause = match triggers::fire_due(&db, &engine.cache, Utc::now()).await {
            Ok(launched) => {
                if !launched.is_empty() {
                    engine.wake();
                }
                match triggers::next_due(&db).await {
                    Ok(Some(at)) => (at - Utc::now()).to_std().unwrap_or_default().min(MAX_IDLE),
                    Ok(None) => MAX_IDLE,
                    Err(error) => {
                        tracing::warn!(%error, "the scheduler could not read the triggers");
                        ERROR_BACKOFF
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "the scheduler could not fire its triggers");
                ERROR_BACKOFF
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = engine.schedule.notified() => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
}
