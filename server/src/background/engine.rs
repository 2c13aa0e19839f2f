//! The engine's runner: handles queued messages as they fall due, one transaction each, and
//! sleeps until the next one is due or a new one is queued.

use std::time::Duration;

use app::error::AppError;
use app::live::Topic;
use app::ssr::live::LiveBus;
use app::ssr::processes::EngineHandle;
use app::ssr::processes::instances::{self, Handled};
use app::ssr::workers::WorkerHub;
use chrono::Utc;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

/// Messages handled before the runner looks at the queue again.
const BATCH: u64 = 256;
/// The longest the runner sleeps without looking at the queue (messages queued by another
/// server process on the same database wake nobody here).
const MAX_IDLE: Duration = Duration::from_millis(500);
/// The pause after a database error, or when only failing messages are due, before trying
/// again.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);

pub struct Runner {
    db: DatabaseConnection,
    engine: EngineHandle,
    /// Woken after transitions, which may have dispatched workitems.
    workers: WorkerHub,
    /// Told which processes moved.
    live: LiveBus,
}

/// What one round of the runner did.
#[derive(Debug, PartialEq, Eq)]
pub enum ExecutionOutcome {
    Worked(Handled),
    EmptyQueue,
    /// Only messages that fail are due: the runner waits before trying them again.
    Failing,
}

impl Runner {
    pub fn new(
        db: DatabaseConnection,
        engine: EngineHandle,
        workers: WorkerHub,
        live: LiveBus,
    ) -> Self {
        Self {
            db,
            engine,
            workers,
            live,
        }
    }

    /// Tells the pages that follow them that these processes moved.
    fn publish(&self, handled: &Handled) {
        let mut projects = std::collections::BTreeSet::new();
        let mut tasks = false;
        for touched in &handled.touched {
            self.live
                .publish(Topic::Process(touched.instance), touched.project);
            projects.insert(touched.project);
            tasks |= touched.workitems;
        }
        for project in projects {
            self.live.publish(Topic::Processes, project);
        }
        if tasks {
            self.live.publish(Topic::Inbox, None);
        }
    }

    /// Handles the messages due now (at most one batch).
    pub async fn try_execute_task(&self) -> Result<ExecutionOutcome, AppError> {
        let handled =
            instances::handle_due(&self.db, &self.engine.cache, Utc::now(), BATCH).await?;
        Ok(if handled.messages == 0 && handled.conflicts == 0 {
            if handled.failures > 0 {
                ExecutionOutcome::Failing
            } else {
                ExecutionOutcome::EmptyQueue
            }
        } else {
            if handled.touched.iter().any(|t| t.retracted) {
                self.workers.reconcile_soon();
            } else {
                self.workers.wake();
            }
            self.publish(&handled);
            ExecutionOutcome::Worked(handled)
        })
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        loop {
            let pause = match self.try_execute_task().await {
                Ok(ExecutionOutcome::Worked(_)) => {
                    if shutdown.is_cancelled() {
                        return;
                    }
                    continue;
                }
                Ok(ExecutionOutcome::EmptyQueue) => self.until_next_due().await,
                Ok(ExecutionOutcome::Failing) => ERROR_BACKOFF,
                Err(error) => {
                    tracing::warn!(%error, "the engine could not handle its queue");
                    ERROR_BACKOFF
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.engine.wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    async fn until_next_due(&self) -> Duration {
        match instances::next_due(&self.db).await {
            Ok(Some(at)) => (at - Utc::now()).to_std().unwrap_or_default().min(MAX_IDLE),
            Ok(None) => MAX_IDLE,
            Err(error) => {
                tracing::warn!(%error, "the engine could not read its queue");
                ERROR_BACKOFF
            }
        }
    }
}
