//! `spawn_app()` and a cookie-keeping client, for SQLite and PostgreSQL alike.

use app::error::AppError;
use app::ssr::state::AuthSettings;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::{Response, StatusCode, Url, header};
use sea_orm::{ConnectionTrait, Database};
use server::config::{LogFormat, Settings, StoreSettings};
use server::startup::Application;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "first-admin-password";
const SESSION_COOKIE: &str = "kiln_session";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Generates one test per database for each named `async fn(TestApp)` in the calling module.
///
/// PostgreSQL variants run when `KILN_TEST_DATABASE_URL` is set or a server answers on
/// 127.0.0.1:5432, and otherwise print that they were skipped (or fail, when
/// `KILN_REQUIRE_POSTGRES=1`).
macro_rules! on_each_database {
    (configure = $configure:expr; $($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::helpers::Backend::Sqlite.spawn($configure).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if $crate::helpers::Backend::postgres_or_skip(stringify!($test)) {
                        super::$test($crate::helpers::Backend::Postgres.spawn($configure).await).await;
                    }
                }
            )*
        }
    };
    ($($test:ident),* $(,)?) => {
        $crate::helpers::on_each_database!(configure = |_| {}; $($test),*);
    };
}
pub(crate) use on_each_database;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The server's address for creating test databases (a maintenance database URL).
fn postgres_admin_url() -> String {
    std::env::var("KILN_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

fn postgres_answers() -> bool {
    if std::env::var_os("KILN_TEST_DATABASE_URL").is_some() {
        return true;
    }
    let address = SocketAddr::from(([127, 0, 0, 1], 5432));
    TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok()
}

/// `url` with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{base}/{name}{query}")
}

impl Backend {
    /// Whether PostgreSQL tests should run; prints why when they are skipped.
    pub fn postgres_or_skip(test: &str) -> bool {
        if postgres_answers() {
            return true;
        }
        assert!(
            std::env::var("KILN_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "KILN_REQUIRE_POSTGRES=1 but no PostgreSQL answers on 127.0.0.1:5432 and KILN_TEST_DATABASE_URL is unset"
        );
        eprintln!(
            "skipped {test} on PostgreSQL: no server on 127.0.0.1:5432 and KILN_TEST_DATABASE_URL is unset"
        );
        false
    }

    pub async fn spawn_default(self) -> TestApp {
        self.spawn(|_| {}).await
    }

    /// Starts an application on a free port with a fresh database, after `configure` has
    /// adjusted its settings.
    pub async fn spawn(self, configure: impl FnOnce(&mut Settings)) -> TestApp {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (database_url, postgres_database) = match self {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("kiln.db").display()),
                None,
            ),
            Backend::Postgres => {
                let name = format!("kiln_test_{}", rand::random::<u64>());
                let admin = Database::connect(postgres_admin_url())
                    .await
                    .expect("connect to PostgreSQL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create test database");
                admin.close().await.expect("close");
                (with_database(&postgres_admin_url(), &name), Some(name))
            }
        };
        let mut settings = Settings {
            store: StoreSettings::new(dir.path().join("data"), database_url),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_origin: None,
            site_root: dir.path().join("site"),
            auth: AuthSettings::default(),
            log_format: LogFormat::Text,
            admin_password: Some(ADMIN_PASSWORD.to_owned()),
            // Tests that want workers start them; the others hand out workitems by hand.
            embedded_workers: 0,
            worker_lease: Duration::from_secs(30),
        };
        configure(&mut settings);
        let application = Application::build(settings.clone())
            .await
            .expect("application starts");
        let address = application.local_addr().expect("bound address");
        let db = application.state().db.clone();
        let engine = application.state().engine.clone();
        let secrets = application.state().secrets.clone();
        let shutdown = CancellationToken::new();
        tokio::spawn(application.run_until_stopped(shutdown.clone()));
        TestApp {
            base: format!("http://{address}"),
            origin: settings
                .public_origin
                .clone()
                .unwrap_or_else(|| format!("http://{address}")),
            db,
            data_dir: settings.store.data_dir.clone(),
            database_url: settings.store.database_url.clone(),
            engine,
            secrets,
            shutdown,
            postgres_database,
            _dir: dir,
        }
    }
}

pub struct TestApp {
    /// Where the application listens, `http://127.0.0.1:PORT`.
    pub base: String,
    /// The origin browsers would send.
    pub origin: String,
    /// The application's own database connection, for what no HTTP call may do.
    pub db: sea_orm::DatabaseConnection,
    /// The data directory, where Kiln stores files for projects.
    pub data_dir: std::path::PathBuf,
    /// The database's URL, for `kiln` processes started on the same database.
    pub database_url: String,
    /// The engine's cache and wake-up bell, shared with the running application.
    pub engine: app::ssr::processes::EngineHandle,
    /// The keys the application seals secrets with.
    pub secrets: app::ssr::secrets::Keyring,
    shutdown: CancellationToken,
    postgres_database: Option<String>,
    _dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(name) = self.postgres_database.take() {
            // Dropped from a thread of its own: the test's runtime may be shutting down.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async {
                    let admin = Database::connect(postgres_admin_url())
                        .await
                        .map_err(std::io::Error::other)?;
                    let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    admin
                        .execute_unprepared(&drop)
                        .await
                        .map_err(std::io::Error::other)?;
                    Ok::<_, std::io::Error>(())
                })
            })
            .join();
        }
    }
}

impl TestApp {
    /// Stops the in-process server (its runner and dispatcher too); the database stays, for
    /// a `kiln serve` process to take over.
    pub fn stop_server(&self) {
        self.shutdown.cancel();
    }

    /// A browser with an empty cookie jar.
    pub fn client(&self) -> Client {
        let jar = Arc::new(Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            // A request the server never answers fails the test instead of hanging it.
            .timeout(Duration::from_secs(120))
            .build()
            .expect("HTTP client");
        Client {
            http,
            jar,
            base: self.base.clone(),
            origin: self.origin.clone(),
        }
    }

    /// A browser logged in as `username`.
    pub async fn logged_in(&self, username: &str, password: &str) -> Client {
        let client = self.client();
        let response = client.login(username, password).await;
        assert_eq!(response.status(), StatusCode::OK, "login as {username}");
        client
    }

    pub async fn admin(&self) -> Client {
        self.logged_in(ADMIN, ADMIN_PASSWORD).await
    }

    /// Creates a user through the admin server function and returns their id.
    pub async fn create_user(&self, username: &str, password: &str, is_admin: bool) -> i64 {
        let admin = self.admin().await;
        let response = admin
            .call(
                "create_user",
                &[
                    ("username", username),
                    ("display_name", username),
                    ("email", ""),
                    ("password", password),
                    ("is_admin", if is_admin { "true" } else { "false" }),
                ],
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "create user {username}");
        let user: serde_json::Value = response.json().await.expect("user JSON");
        user["id"].as_i64().expect("user id")
    }
}

/// Audit rows with `action` about `object_type` `object_id`, as (actor, summary), oldest first.
pub async fn audit_rows(
    app: &TestApp,
    action: &str,
    object_type: &str,
    object_id: &str,
) -> Vec<(String, String)> {
    use app::ssr::entities::audit_log::{Column, Entity};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    Entity::find()
        .filter(Column::Action.eq(action))
        .filter(Column::ObjectType.eq(object_type))
        .filter(Column::ObjectId.eq(object_id))
        .order_by_asc(Column::Id)
        .all(&app.db)
        .await
        .expect("audit rows")
        .into_iter()
        .map(|row| (row.actor, row.summary))
        .collect()
}

/// Every audit row, for counting what one call added.
pub async fn audit_count(app: &TestApp) -> u64 {
    use sea_orm::{EntityTrait, PaginatorTrait};
    app::ssr::entities::audit_log::Entity::find()
        .count(&app.db)
        .await
        .expect("audit count")
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    jar: Arc<Jar>,
    base: String,
    origin: String,
}

impl Client {
    fn url(&self) -> Url {
        Url::parse(&self.base).expect("base URL")
    }

    /// A GET of `path` to add headers to.
    pub fn get_request(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET")
    }

    /// Calls a server function the way a browser's form post does, from Kiln's own origin.
    pub async fn call(&self, endpoint: &str, form: &[(&str, &str)]) -> Response {
        self.post(endpoint, Some(&self.origin), form).await
    }

    /// Calls a server function claiming `origin` (or none).
    pub async fn post(
        &self,
        endpoint: &str,
        origin: Option<&str>,
        form: &[(&str, &str)],
    ) -> Response {
        let mut request = self
            .http
            .post(format!("{}/api/{endpoint}", self.base))
            .form(form);
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        request.send().await.expect("POST")
    }

    /// Posts a raw, already encoded form body.
    pub async fn post_raw(&self, endpoint: &str, body: Vec<u8>) -> Response {
        self.http
            .post(format!("{}/api/{endpoint}", self.base))
            .header(header::ORIGIN, &self.origin)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.call(
            "login",
            &[
                ("username", username),
                ("password", password),
                ("next", "/"),
            ],
        )
        .await
    }

    /// The session id in this browser's cookie jar.
    pub fn session_id(&self) -> Option<String> {
        let cookies = self.jar.cookies(&self.url())?;
        let cookies = cookies.to_str().ok()?.to_owned();
        cookies.split("; ").find_map(|pair| {
            pair.strip_prefix(&format!("{SESSION_COOKIE}="))
                .map(str::to_owned)
        })
    }

    /// Puts a session cookie into this browser's jar, as a copied (or planted) cookie would.
    pub fn set_session_id(&self, id: &str) {
        self.jar
            .add_cookie_str(&format!("{SESSION_COOKIE}={id}; Path=/"), &self.url());
    }

    /// Whether this browser's session is logged in: a page visit is not sent to the login page.
    pub async fn is_logged_in(&self) -> bool {
        let response = self.get("/profile").await;
        match response.status() {
            StatusCode::OK => true,
            status if status.is_redirection() => false,
            status => panic!("unexpected status {status} for /profile"),
        }
    }
}

/// The error a failed server function call returned.
pub async fn app_error(response: Response) -> AppError {
    let body = response.text().await.expect("body");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("not an AppError ({e}): {body}"))
}

/// Asserts a 422 naming `field`.
pub async fn assert_invalid(response: Response, field: &str) {
    assert_eq!(
        response.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "status for invalid {field}"
    );
    match app_error(response).await {
        AppError::Invalid { field: named, .. } => assert_eq!(named, field),
        other => panic!("expected Invalid for {field}, got {other:?}"),
    }
}

#[test]
fn database_names_are_replaced_in_urls() {
    assert_eq!(
        with_database("postgres://u@h:5432/postgres", "t"),
        "postgres://u@h:5432/t"
    );
    assert_eq!(
        with_database("postgres://u@h/postgres?sslmode=disable", "t"),
        "postgres://u@h/t?sslmode=disable"
    );
    assert_eq!(with_database("postgres://u@h", "t"), "postgres://u@h/t");
}

/// The `fake-bitbake` program built beside this test (its package is a workspace member,
/// so the same target directory holds it). `cargo test` does not build it by itself:
/// `make test` runs `cargo build -p fake-bitbake` first.
pub fn fake_bitbake() -> String {
    let exe = std::env::current_exe().expect("the test knows where it runs from");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps");
    let program = dir.join("fake-bitbake");
    assert!(
        program.is_file(),
        "{} is missing: run `cargo build -p fake-bitbake` before the tests (as `make test` does)",
        program.display()
    );
    program.display().to_string()
}
