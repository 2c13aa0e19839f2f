//! Building and running the application: state, background tasks, embedded workers,
//! listener and shutdown.

use crate::background::{engine, scheduler};
use crate::config::Settings;
use crate::database;
use crate::http::router;
use anyhow::Context;
use app::ssr::builds::logs::BuildLogs;
use app::ssr::live::LiveBus;
use app::ssr::processes::EngineHandle;
use app::ssr::retention::apply_audit_retention;
use app::ssr::session_store::delete_expired;
use app::ssr::state::AppState;
use app::ssr::workers::WorkerHub;
use app::ssr::workers::replies::Replies;
use axum::Router;
use axum::serve::ListenerExt;
use leptos::config::LeptosOptions;
use sea_orm::DatabaseConnection;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::worker::{self, Worker, WorkerConfig};

/// How often expired sessions are swept from the database.
const SESSION_SWEEP_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// How often audit records past the retention are removed.
const AUDIT_SWEEP_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// How often build artifacts past their project's retention are removed.
const ARTIFACT_SWEEP_INTERVAL: Duration = Duration::from_secs(5 * 60);

pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    embedded_workers: u32,
}

impl Application {
    /// Connects and migrates the database, makes the first administrator if there is no
    /// user, and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = database::connect(&settings.store).await?;
        database::migrate(&db).await?;
        if let Some(first) =
            app::ssr::accounts::ensure_first_admin(&db, settings.admin_password.as_deref())
                .await
                .map_err(|e| anyhow::anyhow!("cannot create the first administrator: {e}"))?
        {
            match first.generated_password {
                Some(password) => println!(
                    "Created the first administrator '{}' with the password: {password}\n\
                     It is shown only this once; change it on the profile page.",
                    first.username
                ),
                None => println!(
                    "Created the first administrator '{}' with the password from KILN_ADMIN_PASSWORD.",
                    first.username
                ),
            }
        }
        app::ssr::processes::participants::ensure_standard(&db)
            .await
            .map_err(|e| anyhow::anyhow!("cannot register the standard participants: {e}"))?;
        app::ssr::builds::ensure_standard_definition(&db)
            .await
            .map_err(|e| anyhow::anyhow!("cannot store the standard build workflow: {e}"))?;
        app::ssr::password::warm_up().await;
        let lease_until = chrono::Utc::now() + chrono::Duration::from_std(settings.worker_lease)?;
        app::ssr::workers::leases::renew_all(&db, lease_until)
            .await
            .map_err(|e| anyhow::anyhow!("cannot renew the workers' leases: {e}"))?;

        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let address = listener.local_addr()?;
        let leptos_options = LeptosOptions::builder()
            .output_name("kiln")
            .site_root(settings.site_root.to_string_lossy().as_ref())
            .site_pkg_dir("pkg")
            .site_addr(address)
            .env(leptos::config::Env::PROD)
            .build();
        let live = LiveBus::default();
        let secrets = crate::secrets_key::load(&settings.store, &db).await?;
        let state = AppState {
            replies: Replies::start(db.clone()),
            builds: BuildLogs::new(live.clone(), secrets.clone()),
            db,
            auth: Arc::new(settings.auth.clone()),
            data_dir: Arc::new(settings.store.data_dir.clone()),
            engine: EngineHandle::default(),
            workers: WorkerHub::new(settings.worker_lease, live.clone(), secrets.clone()),
            live,
            secrets,
            leptos_options,
        };
        let router = router(state.clone(), &settings);
        Ok(Self {
            listener,
            router,
            state,
            embedded_workers: settings.embedded_workers,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` is cancelled, then lets open requests finish.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let db = self.state.db.clone();
        let sessions = tokio::spawn(every(SESSION_SWEEP_INTERVAL, shutdown.clone(), move || {
            sweep_sessions(db.clone())
        }));
        let db = self.state.db.clone();
        let audit = tokio::spawn(every(AUDIT_SWEEP_INTERVAL, shutdown.clone(), move || {
            sweep_audit_log(db.clone())
        }));
        let (db, data_dir, live) = (
            self.state.db.clone(),
            self.state.data_dir.clone(),
            self.state.live.clone(),
        );
        let artifacts = tokio::spawn(every(
            ARTIFACT_SWEEP_INTERVAL,
            shutdown.clone(),
            move || sweep_artifacts(db.clone(), data_dir.clone(), live.clone()),
        ));
        let runner = tokio::spawn(
            engine::Runner::new(
                self.state.db.clone(),
                self.state.engine.clone(),
                self.state.workers.clone(),
                self.state.live.clone(),
            )
            .run_until_stopped(shutdown.clone()),
        );
        let scheduler = tokio::spawn(scheduler::run_until_stopped(
            self.state.db.clone(),
            self.state.engine.clone(),
            shutdown.clone(),
        ));
        let dispatcher = tokio::spawn(self.state.workers.clone().run_until_stopped(
            self.state.db.clone(),
            self.state.engine.clone(),
            shutdown.clone(),
        ));
        let embedded = self.start_embedded_workers(&shutdown)?;
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        // Small frames (a workitem for a worker, a change for a page) go out at once rather
        // than waiting for the acknowledgement of the previous one.
        let listener = self.listener.tap_io(|stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::warn!(%error, "cannot turn off Nagle's algorithm on a connection");
            }
        });
        axum::serve(listener, service)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .await
            .context("server error")?;
        shutdown.cancel();
        let _ = tokio::join!(sessions, audit, artifacts, runner, scheduler, dispatcher);
        for worker in embedded {
            let _ = worker.await;
        }
        Ok(())
    }

    /// Starts the embedded workers: the same worker program, over loopback, serving every
    /// participant it can with one workitem at a time each, in `DATA_DIR/work`.
    fn start_embedded_workers(
        &self,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
        let mut address = self.listener.local_addr()?;
        if address.ip().is_unspecified() {
            address.set_ip(match address.ip() {
                std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into());
        let host: String = host
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .take(40)
            .collect();
        Ok((1..=self.embedded_workers)
            .map(|n| {
                let config = WorkerConfig {
                    url: format!("ws://{address}/worker"),
                    token: self.state.workers.embedded_secret().to_owned(),
                    name: format!("{host}/embedded-{n}"),
                    participants: worker::SERVABLE.iter().map(|p| (*p).to_owned()).collect(),
                    capacity: 1,
                    workdir: self.state.data_dir.join("work"),
                    run_as: None,
                };
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    if let Err(error) = Worker::new(config).run(shutdown).await {
                        tracing::error!(error = %format!("{error:#}"), "an embedded worker stopped");
                    }
                })
            })
            .collect())
    }
}

/// Runs `task` every `period` until `shutdown` is cancelled; the first run is at once.
async fn every<F, Fut>(period: Duration, shutdown: CancellationToken, mut task: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut interval = tokio::time::interval(period);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => task().await,
        }
    }
}

async fn sweep_sessions(db: DatabaseConnection) {
    match delete_expired(&db).await {
        Ok(0) => {}
        Ok(count) => tracing::info!(count, "expired sessions removed"),
        Err(error) => tracing::warn!(%error, "could not remove expired sessions"),
    }
}

async fn sweep_audit_log(db: DatabaseConnection) {
    match apply_audit_retention(&db).await {
        Ok(0) => {}
        Ok(count) => tracing::info!(count, "audit records past their retention removed"),
        Err(error) => tracing::warn!(%error, "could not apply the audit retention"),
    }
}

async fn sweep_artifacts(db: DatabaseConnection, data_dir: Arc<std::path::PathBuf>, live: LiveBus) {
    match app::ssr::builds::retention::apply_all(&db, &data_dir, &live).await {
        Ok(0) => {}
        Ok(count) => {
            tracing::info!(
                count,
                "build artifacts past their project's retention removed"
            )
        }
        Err(error) => tracing::warn!(%error, "could not apply the build retention"),
    }
}
