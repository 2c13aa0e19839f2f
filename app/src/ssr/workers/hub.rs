//! The hub: the workers connected to this server, and the dispatcher that hands them
//! workitems, reconciles what they run with the database, and sweeps lapsed leases.
//!
//! The database is the truth. A connection's `running` set is what this server believes
//! the worker runs; every pass compares it with the workitems dispatched to that worker and
//! retracts what is no longer current (cancelled, timed out, handed elsewhere).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;
use sea_orm::DatabaseConnection;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::leases;
use super::protocol::{Attempt, ServerFrame};
use crate::error::AppError;
use crate::live::Topic;
use crate::ssr::live::LiveBus;
use crate::ssr::processes::EngineHandle;
use crate::workflow::definition::Fields;

/// Frames queued for one connection before it counts as stuck and is closed.
pub const OUTBOX_FRAMES: usize = 256;

/// The most lapsed leases one pass handles.
const EXPIRE_BATCH: u64 = 256;

/// How often the dispatcher looks at the database without being woken.
const PASS_INTERVAL: Duration = Duration::from_secs(1);

/// What the hub sends a connection's writer.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    Frame(ServerFrame),
    /// Close the socket, telling the worker why.
    Close(String),
}

struct Connection {
    serial: u64,
    name: String,
    participants: Vec<String>,
    capacity: usize,
    draining: bool,
    running: BTreeSet<Attempt>,
    /// The first line of each running attempt's log, written with its first output (a
    /// step that prints nothing leaves no file behind).
    headers: HashMap<Attempt, String>,
    outbox: mpsc::Sender<Outgoing>,
}

#[derive(Default)]
struct Inner {
    connections: Mutex<HashMap<i64, Connection>>,
    /// Uploads in progress, by worker name.
    uploads: Mutex<HashMap<String, usize>>,
    next_serial: std::sync::atomic::AtomicU64,
    wake: Notify,
    /// Whether the next pass must also reconcile (workitems were taken back).
    reconcile: std::sync::atomic::AtomicBool,
}

/// Lets go of a connection whose outbox is full: its writer sends what is queued and ends
/// the connection. When the worker comes back, what it did not get is given up and
/// attempted again (see `leases::reclaim`); nothing is left to a worker that never had it.
fn drop_stuck(connections: &mut HashMap<i64, Connection>, worker: i64) {
    tracing::warn!(worker, "a worker's outbox is full; closing its connection");
    connections.remove(&worker);
}

/// The connected workers; cheap to clone.
#[derive(Clone)]
pub struct WorkerHub {
    inner: Arc<Inner>,
    /// How long a dispatched workitem stays leased without a heartbeat.
    pub lease: Duration,
    /// The secret the server's embedded workers connect with (never stored).
    embedded_secret: Arc<String>,
    /// Where the workers page hears of changes.
    live: LiveBus,
    /// Opens the secrets a build step is given.
    keys: crate::ssr::secrets::Keyring,
}

/// A connection's place in the hub, returned by [`WorkerHub::attach`].
pub struct Attached {
    pub serial: u64,
    pub outbox: mpsc::Receiver<Outgoing>,
}

/// The most files one worker uploads at once.
pub const MAX_UPLOADS_PER_WORKER: usize = 4;

/// One upload of a worker in progress; dropping it ends it.
pub struct UploadSlot {
    inner: Arc<Inner>,
    worker: String,
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        if let Ok(mut uploads) = self.inner.uploads.lock()
            && let Some(count) = uploads.get_mut(&self.worker)
        {
            *count -= 1;
            if *count == 0 {
                uploads.remove(&self.worker);
            }
        }
    }
}

impl WorkerHub {
    /// A slot for an upload of `worker`, unless it uploads [`MAX_UPLOADS_PER_WORKER`]
    /// files already.
    pub fn start_upload(&self, worker: &str) -> Option<UploadSlot> {
        let mut uploads = self.inner.uploads.lock().ok()?;
        let count = uploads.entry(worker.to_owned()).or_default();
        if *count >= MAX_UPLOADS_PER_WORKER {
            return None;
        }
        *count += 1;
        Some(UploadSlot {
            inner: Arc::clone(&self.inner),
            worker: worker.to_owned(),
        })
    }

    pub fn new(lease: Duration, live: LiveBus, keys: crate::ssr::secrets::Keyring) -> Self {
        Self {
            inner: Arc::default(),
            lease,
            embedded_secret: Arc::new(super::tokens::random_secret()),
            live,
            keys,
        }
    }

    /// Tells the workers pages that something they show changed.
    fn changed(&self) {
        self.live.publish(Topic::Workers, None);
    }

    /// How often workers should heartbeat: three times per lease.
    pub fn heartbeat_interval(&self) -> Duration {
        self.lease / 3
    }

    /// The secret embedded workers present instead of a token.
    pub fn embedded_secret(&self) -> &str {
        &self.embedded_secret
    }

    /// Whether `secret` is the embedded workers' secret (compared in constant time).
    pub fn is_embedded_secret(&self, secret: &str) -> bool {
        let (a, b) = (secret.as_bytes(), self.embedded_secret.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    fn connections(&self) -> MutexGuard<'_, HashMap<i64, Connection>> {
        self.inner
            .connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Tells the dispatcher to look for work now.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Tells the dispatcher that workitems were taken back (cancelled, timed out, handed
    /// elsewhere): the next pass also retracts them from their workers.
    pub fn reconcile_soon(&self) {
        self.inner
            .reconcile
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.wake();
    }

    /// Registers a connection for worker `worker`; an older connection of the same worker
    /// is closed.
    pub fn attach(
        &self,
        worker: i64,
        name: String,
        participants: Vec<String>,
        capacity: usize,
        draining: bool,
        running: BTreeSet<Attempt>,
    ) -> Attached {
        let serial = self
            .inner
            .next_serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (outbox, receiver) = mpsc::channel(OUTBOX_FRAMES);
        let connection = Connection {
            serial,
            name,
            participants,
            capacity,
            draining,
            running,
            headers: HashMap::new(),
            outbox,
        };
        if let Some(old) = self.connections().insert(worker, connection) {
            let _ = old
                .outbox
                .try_send(Outgoing::Close("replaced by a newer connection".into()));
        }
        self.wake();
        self.changed();
        Attached {
            serial,
            outbox: receiver,
        }
    }

    /// Forgets connection `serial` of worker `worker` (a newer one is left alone).
    pub fn detach(&self, worker: i64, serial: u64) {
        let mut connections = self.connections();
        if connections.get(&worker).is_some_and(|c| c.serial == serial) {
            connections.remove(&worker);
        }
        self.changed();
    }

    /// Whether worker `worker` runs `attempt`, as far as this server knows.
    pub fn runs(&self, worker: i64, attempt: Attempt) -> bool {
        self.connections()
            .get(&worker)
            .is_some_and(|c| c.running.contains(&attempt))
    }

    /// What worker `worker` runs, as far as this server knows.
    pub fn running(&self, worker: i64) -> Vec<Attempt> {
        self.connections()
            .get(&worker)
            .map(|c| c.running.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The header `attempt`'s log still lacks, once: the caller writes it before the
    /// attempt's first output.
    pub fn take_header(&self, worker: i64, attempt: Attempt) -> Option<String> {
        self.connections()
            .get_mut(&worker)
            .and_then(|c| c.headers.remove(&attempt))
    }

    /// `attempt` is over for worker `worker` (replied or refused): its slot is free.
    pub fn finished(&self, worker: i64, attempt: Attempt) {
        if let Some(c) = self.connections().get_mut(&worker) {
            c.running.remove(&attempt);
            c.headers.remove(&attempt);
        }
        self.wake();
        self.changed();
    }

    /// Drains or resumes worker `worker`, if it is connected here.
    pub fn set_draining(&self, worker: i64, draining: bool) {
        if let Some(c) = self.connections().get_mut(&worker) {
            c.draining = draining;
        }
        self.wake();
        self.changed();
    }

    /// Closes worker `worker`'s connection, telling it why.
    pub fn disconnect(&self, worker: i64, reason: &str) {
        if let Some(c) = self.connections().remove(&worker) {
            let _ = c.outbox.try_send(Outgoing::Close(reason.to_owned()));
        }
    }

    /// One dispatcher pass: with `full`, lapsed leases and retractions; then new workitems
    /// for free slots. Returns how many workitems were handed out.
    pub async fn pass(
        &self,
        db: &DatabaseConnection,
        engine: &EngineHandle,
        full: bool,
    ) -> Result<usize, AppError> {
        if full && leases::expire(db, Utc::now(), EXPIRE_BATCH).await? > 0 {
            engine.wake();
        }
        if full {
            let workers: Vec<i64> = self.connections().keys().copied().collect();
            for worker in workers {
                self.reconcile(db, worker).await?;
            }
        }
        self.fill(db).await
    }

    /// Retracts what worker `worker` runs but no longer holds in the database.
    async fn reconcile(&self, db: &DatabaseConnection, worker: i64) -> Result<(), AppError> {
        let held = leases::held_by(db, worker).await?;
        let mut connections = self.connections();
        let Some(c) = connections.get_mut(&worker) else {
            return Ok(());
        };
        let gone: Vec<Attempt> = c.running.difference(&held).copied().collect();
        for attempt in gone {
            c.running.remove(&attempt);
            c.headers.remove(&attempt);
            if c.outbox
                .try_send(Outgoing::Frame(ServerFrame::Retract { attempt }))
                .is_err()
            {
                drop_stuck(&mut connections, worker);
                break;
            }
        }
        Ok(())
    }

    /// Hands the workers queued workitems for their free slots.
    async fn fill(&self, db: &DatabaseConnection) -> Result<usize, AppError> {
        let slots: Vec<leases::Slots> = self
            .connections()
            .iter()
            .filter(|(_, c)| !c.draining)
            .map(|(&worker, c)| leases::Slots {
                worker,
                name: c.name.clone(),
                participants: c.participants.clone(),
                free: c.capacity.saturating_sub(c.running.len()),
            })
            .collect();
        let now = Utc::now();
        let lease_until = now + chrono::Duration::from_std(self.lease).unwrap_or_default();
        let claimed = leases::claim(db, &slots, now, lease_until).await?;
        let count = claimed.len();
        for row in claimed {
            let Some(worker) = row.worker_id else {
                continue;
            };
            let attempt = Attempt {
                workitem: row.id,
                attempt: row.attempt,
            };
            let header = format!(
                "[kiln] attempt {} of workitem {} ({}) started at {}",
                row.attempt,
                row.id,
                row.participant,
                now.format("%Y-%m-%d %H:%M:%S UTC")
            );
            self.live.publish(Topic::Process(row.instance_id), None);
            let mut params: Fields = serde_json::from_str(&row.params).unwrap_or_default();
            if row.participant == "build" {
                // What the build's steps need, secrets included, goes to the worker only.
                match crate::ssr::builds::jobs::spec(db, &self.keys, row.instance_id).await {
                    Ok(Some(build)) => {
                        params.insert("build".into(), build);
                    }
                    Ok(None) => {}
                    Err(error) => {
                        tracing::error!(%error, workitem = row.id, "cannot describe a build to its worker");
                    }
                }
            }
            let frame = ServerFrame::Workitem {
                attempt,
                instance: row.instance_id,
                participant: row.participant,
                params,
                fields: serde_json::from_str(&row.fields).unwrap_or_default(),
            };
            let mut connections = self.connections();
            // A worker that left in the meantime keeps the lease until it runs out.
            if let Some(c) = connections.get_mut(&worker) {
                c.running.insert(attempt);
                c.headers.insert(attempt, header);
                if c.outbox.try_send(Outgoing::Frame(frame)).is_err() {
                    drop_stuck(&mut connections, worker);
                }
            }
        }
        if count > 0 {
            self.changed();
        }
        Ok(count)
    }

    /// Dispatches until `shutdown`: a pass whenever woken, and at least every second.
    pub async fn run_until_stopped(
        self,
        db: DatabaseConnection,
        engine: EngineHandle,
        shutdown: CancellationToken,
    ) {
        // Leases and retractions are looked at every second, and at once when the engine
        // took workitems back; a pass for new work only hands out workitems.
        let mut last_full = tokio::time::Instant::now() - PASS_INTERVAL;
        loop {
            let asked = self
                .inner
                .reconcile
                .swap(false, std::sync::atomic::Ordering::Relaxed);
            let full = asked || last_full.elapsed() >= PASS_INTERVAL;
            if full {
                last_full = tokio::time::Instant::now();
            }
            if let Err(error) = self.pass(&db, &engine, full).await {
                tracing::warn!(%error, "the worker dispatcher could not finish a pass");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(PASS_INTERVAL) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssr::secrets::{Keyring, generate_key};

    #[test]
    fn a_worker_uploads_only_so_many_files_at_once() {
        let hub = WorkerHub::new(
            Duration::from_secs(30),
            LiveBus::default(),
            Keyring::new(&generate_key(), &[]),
        );
        let slots: Vec<_> = (0..MAX_UPLOADS_PER_WORKER)
            .map(|_| hub.start_upload("builder").unwrap())
            .collect();
        assert!(hub.start_upload("builder").is_none());
        assert!(
            hub.start_upload("other").is_some(),
            "each worker has its own"
        );
        drop(slots);
        assert!(hub.start_upload("builder").is_some());
    }
}
