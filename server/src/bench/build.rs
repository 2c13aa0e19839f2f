//! `kiln bench builds`: times builds through the real server and the worker protocol.
//!
//! The bench seeds 100,000 builds of history over 100 projects, starts the server, and runs
//! one build of the demo project with a worker it drives itself over the protocol, so that
//! what is timed is the server's part:
//!
//! - `log_ingest_mb_per_s`: 128 MiB of BitBake-like output sent in log frames of 500
//!   lines, from the first frame until the build's stored log holds all of it;
//! - `log_line_to_viewer_p99_ms`: one line at a time, from sending its frame until a
//!   viewer following the build's live topic was told and read the line back. Lines are
//!   250 ms apart, past the live socket's 200 ms coalescing window;
//! - `artifact_download_mb_per_s`: a 256 MiB artifact the worker uploaded, downloaded
//!   over loopback (the best of three);
//! - `build_page_p99_ms` and `all_builds_page_p99_ms`: the build page and the first pages
//!   of All builds, rendered for a logged-in administrator, 200 requests each.

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use app::ssr::accounts::{FIRST_ADMIN_USERNAME, ensure_first_admin};
use app::ssr::audit::Actor;
use app::ssr::entities::{builds, projects};
use app::ssr::workers::protocol::{Attempt, ServerFrame, WorkerFrame};
use app::workflow::definition::Fields;
use app::workflow::engine::Outcome;
use chrono::{TimeDelta, Utc};
use futures_util::{SinkExt, StreamExt};
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::bench::engine::ProtocolWorker;
use crate::bench::{
    Browser, PASSWORD, insert_all, latencies, percentile_ms, refuse_unless_empty, scratch_store,
};
use crate::config::{LogFormat, Settings};
use crate::database;
use crate::startup::Application;

/// Builds seeded as history, over `HISTORY_PROJECTS` projects.
const HISTORY: usize = 100_000;
const HISTORY_PROJECTS: usize = 100;

/// What the worker prints for `log_ingest_mb_per_s`.
const INGEST_BYTES: usize = 128 << 20;
const LINES_PER_FRAME: usize = 500;

/// Lines timed for `log_line_to_viewer_p99_ms`, and the pause between them.
const PROBES: usize = 100;
const PROBE_GAP: Duration = Duration::from_millis(250);

const ARTIFACT_BYTES: usize = 256 << 20;

/// Requests timed for each page.
const PAGE_REQUESTS: usize = 200;

/// The worker the bench plays.
const WORKER: &str = "bench-builder";

pub async fn run(database_url: Option<String>) -> anyhow::Result<()> {
    let (dir, store) = scratch_store(database_url)?;
    let db = database::connect(&store).await?;
    refuse_unless_empty(&db, &store.database_url).await?;
    database::migrate(&db).await?;
    ensure_first_admin(&db, Some(PASSWORD))
        .await
        .map_err(|e| anyhow!("cannot create the first administrator: {e}"))?;
    let started = Instant::now();
    seed_history(&db).await?;
    println!("seed_seconds: {:.1}", started.elapsed().as_secs_f64());

    let settings = Settings {
        store: store.clone(),
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        public_origin: None,
        site_root: dir.path().join("site"),
        auth: Default::default(),
        log_format: LogFormat::Text,
        admin_password: None,
        embedded_workers: 0,
        // The bench's worker sends no heartbeats while it sends output.
        worker_lease: Duration::from_secs(600),
    };
    let application = Application::build(settings).await?;
    let address = application.local_addr()?;
    let state = application.state().clone();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(application.run_until_stopped(shutdown.clone()));
    let figures = measure(&db, &state, &format!("http://{address}"), dir.path()).await;
    shutdown.cancel();
    let stopped = server.await;
    let figures = figures?;
    stopped.context("the server task failed")??;
    println!("log_ingest_mb_per_s: {:.1}", figures.ingest_mb_per_s);
    println!("log_line_to_viewer_p99_ms: {:.1}", figures.line_p99_ms);
    println!(
        "artifact_download_mb_per_s: {:.1}",
        figures.download_mb_per_s
    );
    println!("build_page_p99_ms: {:.1}", figures.build_page_p99_ms);
    println!("all_builds_page_p99_ms: {:.1}", figures.all_builds_p99_ms);
    db.close().await.context("cannot close the database")?;
    dir.close().context("cannot delete the temporary directory")
}

struct Figures {
    ingest_mb_per_s: f64,
    line_p99_ms: f64,
    download_mb_per_s: f64,
    build_page_p99_ms: f64,
    all_builds_p99_ms: f64,
}

/// `HISTORY` ended builds, newest last, spread over `HISTORY_PROJECTS` projects of the
/// administrator's, over the past year.
async fn seed_history(db: &DatabaseConnection) -> anyhow::Result<()> {
    use app::ssr::entities::users::{Column, Entity as Users};
    use sea_orm::{ColumnTrait, QueryFilter};
    let admin = Users::find()
        .filter(Column::Username.eq(FIRST_ADMIN_USERNAME))
        .one(db)
        .await?
        .context("no administrator")?;
    let now = Utc::now();
    let rows = (0..HISTORY_PROJECTS).map(|n| projects::ActiveModel {
        slug: Set(format!("history-{n:03}")),
        name: Set(format!("History {n:03}")),
        description: Set(String::new()),
        owner_id: Set(admin.id),
        group_id: Set(None),
        group_permissions: Set(0),
        other_permissions: Set(0),
        archived_at: Set(None),
        build_definition: Set(None),
        keep_builds: Set(None),
        keep_days: Set(None),
        keep_bytes: Set(None),
        last_build_number: Set((HISTORY / HISTORY_PROJECTS) as i32),
        created_at: Set(now - TimeDelta::days(366)),
        updated_at: Set(now),
        ..Default::default()
    });
    insert_all(db, "projects", rows).await?;
    let first: i64 = projects::Entity::find()
        .all(db)
        .await?
        .iter()
        .map(|p| p.id)
        .min()
        .context("no project was seeded")?;
    let snapshot = serde_json::to_string(&app::builds::Snapshot::default())?;
    let per_project = HISTORY / HISTORY_PROJECTS;
    let rows = (0..HISTORY).map(|n| {
        let at = now - TimeDelta::seconds(((HISTORY - n) * 300) as i64);
        builds::ActiveModel {
            project_id: Set(first + (n % HISTORY_PROJECTS) as i64),
            number: Set((n / HISTORY_PROJECTS + 1) as i32),
            instance_id: Set(None),
            configuration_revision: Set(1),
            snapshot: Set(snapshot.clone()),
            targets: Set("core-image-minimal".into()),
            requested_by: Set(Some(admin.id)),
            requested_by_name: Set(admin.username.clone()),
            rebuild_of: Set(None),
            host: Set(Some("builder".into())),
            directory: Set(Some("/srv/kiln/build".into())),
            parse_percent: Set(100),
            tasks_done: Set(4000),
            tasks_total: Set(4000),
            errors: Set(0),
            warnings: Set(1),
            log_bytes: Set(50 << 20),
            log_lines: Set(400_000),
            hidden: Set(false),
            pinned: Set(false),
            archived: Set(false),
            artifacts_expired_at: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
            ..Default::default()
        }
    });
    debug_assert_eq!(per_project * HISTORY_PROJECTS, HISTORY);
    insert_all(db, "builds", rows).await?;
    // A PostgreSQL server that has been running has planner statistics for its tables, which
    // autovacuum gathers some time after rows arrive; give the history just inserted its own.
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        sea_orm::ConnectionTrait::execute_unprepared(db, "ANALYZE")
            .await
            .context("cannot analyse the seeded history")?;
    }
    Ok(())
}

async fn measure(
    db: &DatabaseConnection,
    state: &app::ssr::state::AppState,
    base: &str,
    dir: &std::path::Path,
) -> anyhow::Result<Figures> {
    crate::demo::ensure(db, &state.secrets).await?;
    let project = app::ssr::projects::by_slug(db, crate::demo::SLUG)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let token = app::ssr::workers::tokens::create(db, &Actor::system(), "bench")
        .await
        .map_err(|e| anyhow!("token: {e}"))?
        .secret;
    let socket_url = format!("{}/worker", base.replacen("http", "ws", 1));
    let mut worker = ProtocolWorker::connect(&socket_url, &token, WORKER, "build", 1).await?;
    let browser = Browser::logged_in(base, FIRST_ADMIN_USERNAME, PASSWORD).await?;

    let build = app::ssr::builds::start(db, &state.engine.cache, &Actor::system(), &project, None)
        .await
        .map_err(|e| anyhow!("cannot start a build: {e}"))?;
    state.engine.wake();
    let prepare = next_workitem(&mut worker).await?;
    let mut fields = Fields::new();
    fields.insert("build_worker".into(), json!(WORKER));
    fields.insert("build_host".into(), json!("bench"));
    fields.insert("build_dir".into(), json!("/srv/kiln/build"));
    fields.insert("layer_commits".into(), json!({}));
    reply(&mut worker, prepare, fields).await?;
    let bitbake = next_workitem(&mut worker).await?;

    let ingest_mb_per_s = ingest(&mut worker, bitbake, db, build.id).await?;
    let line_p99_ms = line_to_viewer(&mut worker, bitbake, &browser, build.id).await?;
    reply(&mut worker, bitbake, Fields::new()).await?;

    let collect = next_workitem(&mut worker).await?;
    let artifact = upload(base, &token, collect, dir).await?;
    reply(&mut worker, collect, Fields::new()).await?;
    let download_mb_per_s = download(&browser, build.number, artifact).await?;

    let build_page = format!("/projects/{}/builds/{}", project.slug, build.number);
    let page = browser.page(&build_page).await?;
    ensure!(
        page.contains("Build #1 of Demo"),
        "the build page does not show the build"
    );
    let all = browser.page("/builds").await?;
    ensure!(all.contains("data-build="), "All builds lists no build");
    let build_page = latencies(&browser, PAGE_REQUESTS, |_| build_page.clone()).await?;
    let all_builds = latencies(&browser, PAGE_REQUESTS, |n| {
        format!("/builds?page={}", n % 5 + 1)
    })
    .await?;
    let build_page_p99_ms = percentile_ms(&build_page, 99);
    let all_builds_p99_ms = percentile_ms(&all_builds, 99);
    Ok(Figures {
        ingest_mb_per_s,
        line_p99_ms,
        download_mb_per_s,
        build_page_p99_ms,
        all_builds_p99_ms,
    })
}

/// The next workitem the server hands the worker, heartbeating meanwhile.
async fn next_workitem(worker: &mut ProtocolWorker) -> anyhow::Result<Attempt> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let frame = tokio::time::timeout_at(deadline.into(), worker.next_frame())
            .await
            .context("no workitem came within a minute")??;
        if let ServerFrame::Workitem { attempt, .. } = frame {
            return Ok(attempt);
        }
    }
}

async fn reply(
    worker: &mut ProtocolWorker,
    attempt: Attempt,
    fields: Fields,
) -> anyhow::Result<()> {
    worker
        .send(&WorkerFrame::Reply {
            attempt,
            outcome: Outcome::Done {
                fields,
                command: None,
            },
        })
        .await
}

/// One frame of BitBake-like output, line `first` on: compiler lines, and a task starting
/// and succeeding.
fn frame_lines(first: usize) -> Vec<String> {
    let task = first / LINES_PER_FRAME + 1;
    (0..LINES_PER_FRAME)
        .map(|i| match i {
            0 => format!("NOTE: Running task {task} of 1000000 (/poky/meta/recipes-bench/bench/bench_1.0.bb:do_compile)"),
            1 => format!("NOTE: recipe bench{task}-1.0-r0: task do_compile: Started"),
            499 => format!("NOTE: recipe bench{task}-1.0-r0: task do_compile: Succeeded"),
            _ => format!(
                "| x86_64-poky-linux-gcc -m64 -O2 -pipe -g -c ../bench-1.0/src/unit_{:06}.c -o unit_{:06}.o",
                first + i,
                first + i
            ),
        })
        .collect()
}

/// Sends `INGEST_BYTES` of output and times it until the build's log holds it all.
async fn ingest(
    worker: &mut ProtocolWorker,
    attempt: Attempt,
    db: &DatabaseConnection,
    build: i64,
) -> anyhow::Result<f64> {
    let logged = |db: &DatabaseConnection| {
        let db = db.clone();
        async move {
            anyhow::Ok(
                builds::Entity::find_by_id(build)
                    .one(&db)
                    .await?
                    .map_or(0, |b| b.log_bytes),
            )
        }
    };
    let before = logged(db).await?;
    let started = Instant::now();
    let mut sent = 0usize;
    let mut line = 0usize;
    while sent < INGEST_BYTES {
        let lines = frame_lines(line);
        line += lines.len();
        sent += lines.iter().map(|l| l.len() + 1).sum::<usize>();
        worker.send(&WorkerFrame::Log { attempt, lines }).await?;
    }
    let expected = before + i64::try_from(sent)?;
    loop {
        let now = logged(db).await?;
        if now >= expected {
            break;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(600),
            "the log holds {now} of {expected} bytes after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(sent as f64 / (1 << 20) as f64 / started.elapsed().as_secs_f64())
}

/// Times `PROBES` lines from their frame until a viewer following the build was told and
/// read them back.
async fn line_to_viewer(
    worker: &mut ProtocolWorker,
    attempt: Attempt,
    browser: &Browser,
    build: i64,
) -> anyhow::Result<f64> {
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;

    let url = format!("{}/ws", browser.base.replacen("http", "ws", 1));
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("cookie", HeaderValue::from_str(&browser.cookie()?)?);
    request
        .headers_mut()
        .insert("origin", HeaderValue::from_str(&browser.base)?);
    let (mut viewer, _) = tokio_tungstenite::connect_async(request).await?;
    let topic = format!("build:{build}");
    viewer
        .send(Message::text(json!({ "subscribe": topic }).to_string()))
        .await?;
    tokio::time::sleep(PROBE_GAP).await;
    let mut times = Vec::with_capacity(PROBES);
    for probe in 0..PROBES {
        let line = format!("NOTE: bench probe {probe}");
        let started = Instant::now();
        worker
            .send(&WorkerFrame::Log {
                attempt,
                lines: vec![line.clone()],
            })
            .await?;
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), viewer.next())
                .await
                .context("the viewer heard nothing within 10 seconds")?
                .context("the live socket closed")??;
            let Message::Text(text) = message else {
                continue;
            };
            if !text.contains(&topic) {
                continue;
            }
            let tail = browser
                .call("read_build_log", &[("project", "demo"), ("number", "1")])
                .await?;
            if tail.contains(&line) {
                break;
            }
        }
        times.push(started.elapsed());
        tokio::time::sleep(PROBE_GAP).await;
    }
    times.sort_unstable();
    Ok(percentile_ms(&times, 99))
}

/// Uploads an `ARTIFACT_BYTES` image as the worker holding `attempt`; returns its id.
async fn upload(
    base: &str,
    token: &str,
    attempt: Attempt,
    dir: &std::path::Path,
) -> anyhow::Result<i64> {
    use sha2::{Digest, Sha256};
    let bytes: Vec<u8> = (0..ARTIFACT_BYTES).map(|i| (i % 251) as u8).collect();
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let path = dir.join("bench-image.wic");
    tokio::fs::write(&path, &bytes).await?;
    let file = tokio::fs::File::open(&path).await?;
    let response = reqwest::Client::new()
        .put(format!(
            "{base}/worker/artifacts/{}/{}",
            attempt.workitem, attempt.attempt
        ))
        .bearer_auth(token)
        .query(&[
            ("name", "bench-image.wic"),
            ("size", &ARTIFACT_BYTES.to_string()),
            ("sha256", &sha256),
        ])
        .header(reqwest::header::CONTENT_LENGTH, ARTIFACT_BYTES)
        .body(reqwest::Body::from(file))
        .send()
        .await?;
    let status = response.status();
    let body: serde_json::Value = response.json().await?;
    if !status.is_success() {
        bail!("the upload answered {status}: {body}");
    }
    tokio::fs::remove_file(&path).await?;
    body["id"].as_i64().context("the upload answered no id")
}

/// The best of three downloads of artifact `id`, in MiB/s.
async fn download(browser: &Browser, number: i32, id: i64) -> anyhow::Result<f64> {
    let url = format!(
        "{}/projects/demo/builds/{number}/artifacts/{id}",
        browser.base
    );
    let mut best = 0.0f64;
    for _ in 0..3 {
        let started = Instant::now();
        let response = browser.http.get(&url).send().await?;
        ensure!(
            response.status().is_success(),
            "the download answered {}",
            response.status()
        );
        let mut stream = response.bytes_stream();
        let mut received = 0usize;
        while let Some(chunk) = stream.next().await {
            received += chunk?.len();
        }
        ensure!(
            received == ARTIFACT_BYTES,
            "downloaded {received} bytes, not {ARTIFACT_BYTES}"
        );
        best = best.max(received as f64 / (1 << 20) as f64 / started.elapsed().as_secs_f64());
    }
    Ok(best)
}
