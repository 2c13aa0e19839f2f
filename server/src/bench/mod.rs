//! `kiln bench`: the benchmarks, each a subcommand. This module holds `kiln bench projects`
//! and what the others share; it fills a scratch database with a large instance's worth of users,
//! groups, projects and audit records, runs the real server on it and prints page latencies.

pub mod build;
pub mod engine;

use crate::config::{BenchCommand, LogFormat, Settings, StoreSettings};
use crate::database;
use crate::startup::Application;
use anyhow::{Context, anyhow, ensure};
use app::domain::{Password, Slug};
use app::ssr::accounts::{FIRST_ADMIN_USERNAME, ensure_first_admin};
use app::ssr::entities::{audit_log, group_members, groups, projects, users};
use app::ssr::state::AuthSettings;
use app::types::Permissions;
use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

const USERS: usize = 1_000;
const GROUPS: usize = 100;
const PROJECTS: usize = 10_000;
const AUDIT_RECORDS: usize = 100_000;

/// Rows per INSERT: ten columns each stay far below the bound-parameter limits of SQLite
/// (32,766) and PostgreSQL (65,535).
const ROWS_PER_INSERT: usize = 1_000;

/// Every seeded user's password, and the administrator's.
pub(crate) const PASSWORD: &str = "bench-password";

/// The same data on every run, so figures of two runs compare.
const RANDOM_SEED: u64 = 20_261_127;

/// Requests before measuring, so connections, caches and the query planner are warm.
const WARM_UP_REQUESTS: usize = 20;

/// Clients sending requests at once in the throughput run.
const CONCURRENT_CLIENTS: usize = 8;

/// Names of seeded projects: "Amber Falcon 42", slug `amber-falcon-42`.
const ADJECTIVES: [&str; 12] = [
    "Amber", "Brisk", "Cobalt", "Dusty", "Early", "Frosty", "Golden", "Hidden", "Iron", "Jade",
    "Lunar", "Misty",
];
const NOUNS: [&str; 12] = [
    "Falcon", "Harbor", "Kernel", "Meadow", "Orchid", "Pebble", "Quartz", "Raven", "Summit",
    "Tundra", "Willow", "Zephyr",
];

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Projects {
            database_url,
            requests,
        } => projects_bench(database_url, requests).await,
        BenchCommand::Engine { database_url } => engine::run(database_url).await,
        BenchCommand::Builds { database_url } => build::run(database_url).await,
    }
}

/// What the measurements need to know about the seeded data.
struct Seeded {
    /// An ordinary user in three groups, owning projects of their own.
    member: String,
    /// The summary of the newest seeded audit record, which the audit page's first page shows.
    newest_audit_summary: String,
}

struct Figures {
    projects_p50_ms: f64,
    projects_p99_ms: f64,
    projects_rps: f64,
    audit_p99_ms: f64,
}

async fn projects_bench(database_url: Option<String>, requests: usize) -> anyhow::Result<()> {
    ensure!(requests > 0, "--requests must be at least 1");
    let (dir, store) = scratch_store(database_url)?;

    let started = Instant::now();
    let db = database::connect(&store).await?;
    refuse_unless_empty(&db, &store.database_url).await?;
    database::migrate(&db).await?;
    // The same call `Application::build` makes on an empty database, made here so that it
    // does not print its announcement among the figures.
    ensure_first_admin(&db, Some(PASSWORD))
        .await
        .map_err(|e| anyhow!("cannot create the first administrator: {e}"))?;
    let seeded = seed(&db).await?;
    db.close()
        .await
        .context("cannot close the seeding connection")?;
    println!("seed_seconds: {:.1}", started.elapsed().as_secs_f64());

    let settings = Settings {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        public_origin: None,
        site_root: dir.path().join("site"),
        auth: AuthSettings::default(),
        log_format: LogFormat::Text,
        // The administrator exists already.
        admin_password: None,
        embedded_workers: 0,
        worker_lease: std::time::Duration::from_secs(30),
        store,
    };
    let application = Application::build(settings).await?;
    let base = format!("http://{}", application.local_addr()?);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(application.run_until_stopped(shutdown.clone()));
    let figures = measure(&base, &seeded, requests).await;
    shutdown.cancel();
    let stopped = server.await;
    let figures = figures?;
    stopped.context("the server task failed")??;

    println!("projects_page_p50_ms: {:.1}", figures.projects_p50_ms);
    println!("projects_page_p99_ms: {:.1}", figures.projects_p99_ms);
    println!("projects_page_rps: {:.1}", figures.projects_rps);
    println!("audit_page_p99_ms: {:.1}", figures.audit_p99_ms);
    dir.close().context("cannot delete the temporary directory")
}

/// A temporary directory, and a store in it: the given database, or a SQLite file there.
pub(crate) fn scratch_store(
    database_url: Option<String>,
) -> anyhow::Result<(tempfile::TempDir, StoreSettings)> {
    let dir = tempfile::Builder::new()
        .prefix("kiln-bench-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let store = StoreSettings::new(
        dir.path().join("data"),
        database_url
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("kiln.db").display())),
    );
    Ok((dir, store))
}

/// Refuses a database that holds any table: the bench fills it, and must not mix its rows
/// with someone's data.
pub(crate) async fn refuse_unless_empty(db: &DatabaseConnection, url: &str) -> anyhow::Result<()> {
    let backend = db.get_database_backend();
    let sql = if backend == DbBackend::Sqlite {
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'"
    } else {
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()"
    };
    let tables: i64 = db
        .query_one_raw(Statement::from_string(backend, sql))
        .await
        .context("cannot list the database's tables")?
        .context("counting the database's tables answered nothing")?
        .try_get_by_index(0)
        .context("cannot read the number of tables")?;
    ensure!(
        tables == 0,
        "{} is not empty ({tables} tables): `kiln bench` fills the database it is given, so give it \
         a scratch database of its own (CREATE DATABASE kiln_bench) and drop that afterwards",
        database::redact(url)
    );
    Ok(())
}

fn app_error(error: app::error::AppError) -> anyhow::Error {
    anyhow!("{error}")
}

/// Fills the database directly, in bulk: going through the application would hash a
/// password per user and write an audit record per change, and take an hour.
async fn seed(db: &DatabaseConnection) -> anyhow::Result<Seeded> {
    let mut rng = StdRng::seed_from_u64(RANDOM_SEED);
    let now = Utc::now();
    // One argon2 hash for everyone: hashing a thousand passwords would dominate the seeding.
    let password = Password::parse(PASSWORD, "password").map_err(app_error)?;
    let password_hash = app::ssr::password::hash(&password)
        .await
        .map_err(app_error)?;

    let users = seed_users(db, &password_hash, now).await?;
    let groups = seed_groups(db, now).await?;
    let memberships = seed_members(db, &mut rng, &users, &groups, now).await?;
    let projects = seed_projects(db, &mut rng, &users, &memberships, now).await?;
    let newest_audit_summary = seed_audit_log(db, &mut rng, &users, &projects, now).await?;
    if db.get_database_backend() == DbBackend::Postgres {
        // Autovacuum would vacuum and analyze these freshly filled tables within a minute,
        // during the measurements; doing it now measures the steady state throughout. SQLite
        // gathers no statistics unless told to, and Kiln does not tell it, so it is left be.
        db.execute_unprepared("VACUUM ANALYZE")
            .await
            .context("cannot vacuum and analyze the seeded tables")?;
    }
    let member = users
        .first()
        .map(|(_, username)| username.clone())
        .context("no user was seeded")?;
    Ok(Seeded {
        member,
        newest_audit_summary,
    })
}

/// Inserts `rows` in statements of [`ROWS_PER_INSERT`] rows, in one transaction.
pub(crate) async fn insert_all<A>(
    db: &DatabaseConnection,
    table: &str,
    rows: impl IntoIterator<Item = A>,
) -> anyhow::Result<()>
where
    A: ActiveModelTrait,
{
    let txn = db.begin().await.context("cannot begin a transaction")?;
    let mut rows = rows.into_iter();
    loop {
        let chunk: Vec<A> = rows.by_ref().take(ROWS_PER_INSERT).collect();
        if chunk.is_empty() {
            break;
        }
        <A::Entity as EntityTrait>::insert_many(chunk)
            .exec_without_returning(&txn)
            .await
            .with_context(|| format!("cannot insert into {table}"))?;
    }
    txn.commit()
        .await
        .with_context(|| format!("cannot commit the rows of {table}"))
}

/// `user0001` to `user1000`, as (id, username) in that order.
async fn seed_users(
    db: &DatabaseConnection,
    password_hash: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<(i64, String)>> {
    let rows = (1..=USERS).map(|n| users::ActiveModel {
        username: Set(format!("user{n:04}")),
        display_name: Set(format!("Bench User {n}")),
        email: Set(Some(format!("user{n:04}@bench.example"))),
        password_hash: Set(password_hash.to_owned()),
        is_admin: Set(false),
        is_disabled: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        last_login_at: Set(None),
        ..Default::default()
    });
    insert_all(db, "users", rows).await?;
    users::Entity::find()
        .select_only()
        .columns([users::Column::Id, users::Column::Username])
        .filter(users::Column::IsAdmin.eq(false))
        .order_by_asc(users::Column::Id)
        .into_tuple()
        .all(db)
        .await
        .context("cannot read back the seeded users")
}

/// `team-001` to `team-100`, their ids in that order.
async fn seed_groups(db: &DatabaseConnection, now: DateTime<Utc>) -> anyhow::Result<Vec<i64>> {
    let rows = (1..=GROUPS).map(|n| groups::ActiveModel {
        name: Set(format!("team-{n:03}")),
        created_at: Set(now),
        ..Default::default()
    });
    insert_all(db, "groups", rows).await?;
    groups::Entity::find()
        .select_only()
        .column(groups::Column::Id)
        .order_by_asc(groups::Column::Id)
        .into_tuple()
        .all(db)
        .await
        .context("cannot read back the seeded groups")
}

/// Puts every user in one to three groups (the first user in three); answers each user's
/// group ids, in the order of `users`.
async fn seed_members(
    db: &DatabaseConnection,
    rng: &mut StdRng,
    users: &[(i64, String)],
    groups: &[i64],
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Vec<i64>>> {
    let memberships: Vec<Vec<i64>> = (0..users.len())
        .map(|index| {
            let count = if index == 0 { 3 } else { rng.gen_range(1..=3) };
            rand::seq::index::sample(rng, groups.len(), count)
                .into_iter()
                .map(|group| groups[group])
                .collect()
        })
        .collect();
    let mut rows = Vec::new();
    for ((user_id, _), group_ids) in users.iter().zip(&memberships) {
        for group_id in group_ids {
            rows.push(group_members::ActiveModel {
                group_id: Set(*group_id),
                user_id: Set(*user_id),
                is_maintainer: Set(rng.gen_bool(0.05)),
                added_at: Set(now),
            });
        }
    }
    insert_all(db, "group_members", rows).await?;
    Ok(memberships)
}

/// Some of view, build, configure and download; always view.
fn some_permissions(rng: &mut StdRng) -> Permissions {
    Permissions {
        view: true,
        build: rng.gen_bool(0.5),
        configure: rng.gen_bool(0.2),
        download: rng.gen_bool(0.5),
    }
}

/// 10,000 projects owned by random users: 40% in one of the owner's groups (most of those
/// with permissions for it), 20% visible to everyone, 10% archived, changed at random times
/// over the last year. Answers their (id, slug).
async fn seed_projects(
    db: &DatabaseConnection,
    rng: &mut StdRng,
    users: &[(i64, String)],
    memberships: &[Vec<i64>],
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<(i64, String)>> {
    const YEAR_SECONDS: i64 = 365 * 24 * 3600;
    let mut rows = Vec::with_capacity(PROJECTS);
    for n in 1..=PROJECTS {
        let owner = rng.gen_range(0..users.len());
        let adjective = ADJECTIVES.choose(rng).copied().unwrap_or_default();
        let noun = NOUNS.choose(rng).copied().unwrap_or_default();
        let name = format!("{adjective} {noun} {n}");
        let group = rng
            .gen_bool(0.4)
            .then(|| memberships[owner].choose(rng).copied())
            .flatten();
        let group_permissions = match group {
            Some(_) if rng.gen_bool(0.9) => some_permissions(rng),
            _ => Permissions::NONE,
        };
        let other_permissions = if rng.gen_bool(0.2) {
            Permissions {
                view: true,
                download: rng.gen_bool(0.3),
                ..Permissions::NONE
            }
        } else {
            Permissions::NONE
        };
        let created_at = now - TimeDelta::seconds(rng.gen_range(0..YEAR_SECONDS));
        let updated_at =
            created_at + TimeDelta::seconds(rng.gen_range(0..=(now - created_at).num_seconds()));
        rows.push(projects::ActiveModel {
            slug: Set(Slug::suggest(&name)),
            description: Set(format!(
                "Images for the {} {} board.",
                adjective.to_lowercase(),
                noun.to_lowercase()
            )),
            name: Set(name),
            owner_id: Set(users[owner].0),
            group_id: Set(group),
            group_permissions: Set(group_permissions.bits()),
            other_permissions: Set(other_permissions.bits()),
            archived_at: Set(rng.gen_bool(0.1).then_some(updated_at)),
            created_at: Set(created_at),
            updated_at: Set(updated_at),
            ..Default::default()
        });
    }
    insert_all(db, "projects", rows).await?;
    projects::Entity::find()
        .select_only()
        .columns([projects::Column::Id, projects::Column::Slug])
        .order_by_asc(projects::Column::Id)
        .into_tuple()
        .all(db)
        .await
        .context("cannot read back the seeded projects")
}

/// 100,000 records of logins, logouts and project changes over the last 90 days, oldest
/// first; answers the newest one's summary.
async fn seed_audit_log(
    db: &DatabaseConnection,
    rng: &mut StdRng,
    users: &[(i64, String)],
    projects: &[(i64, String)],
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let span = TimeDelta::days(90);
    let step = span / i32::try_from(AUDIT_RECORDS).context("too many audit records")?;
    let mut newest_summary = String::new();
    let rows = (0..AUDIT_RECORDS).map(|index| {
        let (user_id, username) = &users[rng.gen_range(0..users.len())];
        let (project_id, slug) = &projects[rng.gen_range(0..projects.len())];
        let (action, object_type, object_id, summary, details) = match rng.gen_range(0..4) {
            0 => (
                "login.success",
                "user",
                user_id.to_string(),
                format!("{username} logged in"),
                json!({}),
            ),
            1 => (
                "logout",
                "user",
                user_id.to_string(),
                format!("{username} logged out"),
                json!({}),
            ),
            2 => (
                "project.update",
                "project",
                project_id.to_string(),
                format!("Updated project {slug}"),
                json!({ "description": "changed" }),
            ),
            _ => (
                "project.permissions",
                "project",
                project_id.to_string(),
                format!("Changed the permissions of project {slug}"),
                json!({ "other_permissions": "view" }),
            ),
        };
        if index + 1 == AUDIT_RECORDS {
            newest_summary.clone_from(&summary);
        }
        let offset = i32::try_from(AUDIT_RECORDS - index).unwrap_or(i32::MAX);
        audit_log::ActiveModel {
            at: Set(now - step * offset),
            actor_id: Set(Some(*user_id)),
            actor: Set(username.clone()),
            client_addr: Set(Some(format!("192.0.2.{}", rng.gen_range(1..255)))),
            action: Set(action.to_owned()),
            object_type: Set(object_type.to_owned()),
            object_id: Set(Some(object_id)),
            summary: Set(summary),
            details: Set(details.to_string()),
            ..Default::default()
        }
    });
    insert_all(db, "audit_log", rows).await?;
    Ok(newest_summary)
}

/// An HTTP client with a logged-in session, as a browser tab would be.
#[derive(Clone)]
pub(crate) struct Browser {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    jar: Arc<reqwest::cookie::Jar>,
}

impl Browser {
    pub(crate) async fn logged_in(
        base: &str,
        username: &str,
        password: &str,
    ) -> anyhow::Result<Self> {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot make an HTTP client")?;
        let response = http
            .post(format!("{base}/api/login"))
            .header(reqwest::header::ORIGIN, base)
            .form(&[
                ("username", username),
                ("password", password),
                ("next", "/"),
            ])
            .send()
            .await
            .with_context(|| format!("cannot log in as {username}"))?;
        let status = response.status();
        if status != StatusCode::OK {
            let body = response.text().await.unwrap_or_default();
            anyhow::bail!("logging in as {username} answered {status}: {body}");
        }
        Ok(Self {
            http,
            base: base.to_owned(),
            jar,
        })
    }

    /// The `Cookie` header the browser sends, for a websocket of its session.
    pub(crate) fn cookie(&self) -> anyhow::Result<String> {
        use reqwest::cookie::CookieStore;
        let url = self.base.parse().context("the base is not a URL")?;
        let header = self.jar.cookies(&url).context("no session cookie")?;
        Ok(header.to_str()?.to_owned())
    }

    /// Calls server function `endpoint` with `form`, as a page's form does; returns its
    /// answer.
    pub(crate) async fn call(
        &self,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        let response = self
            .http
            .post(format!("{}/api/{endpoint}", self.base))
            .header(reqwest::header::ORIGIN, &self.base)
            .form(form)
            .send()
            .await
            .with_context(|| format!("cannot call {endpoint}"))?;
        let status = response.status();
        let body = response.text().await?;
        ensure!(
            status == StatusCode::OK,
            "{endpoint} answered {status}: {body}"
        );
        Ok(body)
    }

    /// The page at `path`; anything but 200 (a redirect to the login page, too) is an error.
    pub(crate) async fn page(&self, path: &str) -> anyhow::Result<String> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .with_context(|| format!("GET {path} failed"))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .with_context(|| format!("cannot read the answer to GET {path}"))?;
        ensure!(
            status == StatusCode::OK,
            "GET {path} answered {status}, not 200"
        );
        Ok(body)
    }
}

/// The `index`th projects page a user looks at: the three tabs in turn, pages 1 to 5, and
/// every tenth a search.
fn projects_path(index: usize) -> String {
    let tab = ["mine", "shared", "all"][index % 3];
    let page = index / 3 % 5 + 1;
    if index % 10 == 9 {
        let word = NOUNS[index / 10 % NOUNS.len()].to_lowercase();
        format!("/projects?tab={tab}&q={word}&page={page}")
    } else {
        format!("/projects?tab={tab}&page={page}")
    }
}

/// The `index`th audit page an administrator looks at: pages 1 to 5.
fn audit_path(index: usize) -> String {
    format!("/admin/audit?page={}", index % 5 + 1)
}

async fn measure(base: &str, seeded: &Seeded, requests: usize) -> anyhow::Result<Figures> {
    let member = Browser::logged_in(base, &seeded.member, PASSWORD).await?;
    let admin = Browser::logged_in(base, FIRST_ADMIN_USERNAME, PASSWORD).await?;

    // The pages must show the seeded data, or the figures would time empty pages.
    let projects = member.page("/projects?tab=all").await?;
    ensure!(
        projects.contains("data-slug="),
        "the projects page lists no project for {}",
        seeded.member
    );
    let audit = admin.page("/admin/audit").await?;
    ensure!(
        audit.contains(&seeded.newest_audit_summary),
        "the audit page does not show the newest seeded record"
    );
    for index in 0..WARM_UP_REQUESTS {
        member.page(&projects_path(index)).await?;
        admin.page(&audit_path(index)).await?;
    }

    let projects = latencies(&member, requests, projects_path).await?;
    let projects_rps = throughput(&member, requests, projects_path).await?;
    let audit = latencies(&admin, requests, audit_path).await?;
    Ok(Figures {
        projects_p50_ms: percentile_ms(&projects, 50),
        projects_p99_ms: percentile_ms(&projects, 99),
        projects_rps,
        audit_p99_ms: percentile_ms(&audit, 99),
    })
}

/// The times of `count` requests sent one after another, fastest first.
pub(crate) async fn latencies(
    browser: &Browser,
    count: usize,
    path: impl Fn(usize) -> String,
) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(count);
    for index in 0..count {
        let started = Instant::now();
        browser.page(&path(index)).await?;
        times.push(started.elapsed());
    }
    times.sort_unstable();
    Ok(times)
}

/// Requests per second when [`CONCURRENT_CLIENTS`] clients share `count` requests.
async fn throughput(
    browser: &Browser,
    count: usize,
    path: fn(usize) -> String,
) -> anyhow::Result<f64> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut clients = JoinSet::new();
    for _ in 0..CONCURRENT_CLIENTS {
        let browser = browser.clone();
        let next = next.clone();
        clients.spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= count {
                    return anyhow::Ok(());
                }
                browser.page(&path(index)).await?;
            }
        });
    }
    while let Some(finished) = clients.join_next().await {
        finished.context("a client task failed")??;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// The nearest-rank percentile of `sorted`, in milliseconds.
pub(crate) fn percentile_ms(sorted: &[Duration], percent: usize) -> f64 {
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted
        .get(rank - 1)
        .map_or(0.0, |time| time.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let times: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&times, 50), 50.0);
        assert_eq!(percentile_ms(&times, 99), 99.0);
        assert_eq!(percentile_ms(&times[..10], 99), 10.0);
        assert_eq!(percentile_ms(&times[..1], 50), 1.0);
        assert_eq!(percentile_ms(&[], 50), 0.0);
    }

    #[test]
    fn projects_paths_cycle_tabs_pages_and_searches() {
        assert_eq!(projects_path(0), "/projects?tab=mine&page=1");
        assert_eq!(projects_path(4), "/projects?tab=shared&page=2");
        assert_eq!(projects_path(9), "/projects?tab=mine&q=falcon&page=4");
        assert_eq!(projects_path(14), "/projects?tab=all&page=5");
        assert_eq!(projects_path(15), "/projects?tab=mine&page=1");
    }
}
