//! Command line and configuration: flags, then `KILN_*` environment variables, then the
//! optional TOML file, then built-in defaults, in that order of precedence.

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    about = "Kiln: a self-hosted build and workflow orchestration server."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the web server (runs pending migrations first).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(StoreArgs),
    /// Manage user accounts from the command line.
    #[command(subcommand)]
    User(UserCommand),
    /// Export and import project files (TOML, schema = 1).
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Measure pages on a freshly seeded database and print the figures.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Connect to a Kiln server and run the workitems it hands out.
    Worker(WorkerArgs),
    /// Launch and control workflow processes.
    #[command(subcommand)]
    Process(ProcessCommand),
    /// Manage the key that seals the secrets kept in the database.
    #[command(subcommand)]
    Secrets(SecretsCommand),
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Seal every stored secret under a new key and replace the key file with it. Stop
    /// every server using the database first, and start them again after.
    RotateKey {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProcessCommand {
    /// Launch a process of a definition; prints its id.
    Launch {
        /// The definition's name
        name: String,
        /// The project whose definition it is [default: a global definition]
        #[arg(long, value_name = "SLUG")]
        project: Option<String>,
        /// A launch field, KEY=VALUE; VALUE is read as JSON when it is JSON, else as text
        #[arg(long = "field", value_name = "KEY=VALUE")]
        fields: Vec<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show a process: its status, errors and running expressions.
    Show {
        id: i64,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Cancel a process (its on_cancel handlers run).
    Cancel {
        id: i64,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Kill a process at once, without on_cancel handlers.
    Kill {
        id: i64,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Pause a process: nothing new starts until it is resumed.
    Pause {
        id: i64,
        #[command(flatten)]
        store: StoreArgs,
    },
    Resume {
        id: i64,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Run a process's failed expressions again (one of them with --flow).
    Replay {
        id: i64,
        #[arg(long, value_name = "FLOW")]
        flow: Option<u64>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Cancel a running expression and apply it again (see `kiln process show` for flows).
    Reapply {
        id: i64,
        #[arg(long, value_name = "FLOW")]
        flow: u64,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Print a project's configuration as a project file on standard output.
    Export {
        slug: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Create a new private project from a project file ('-' reads standard input).
    Import {
        file: PathBuf,
        /// The user who will own the project.
        #[arg(long, default_value = "admin")]
        owner: String,
        /// Slug for the new project [default: the file's]
        #[arg(long, default_value = "")]
        slug: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Seed 1,000 users, 100 groups, 10,000 projects and 100,000 audit records, then time
    /// the projects page and the audit page over HTTP.
    Projects {
        /// A scratch PostgreSQL database to fill; it must be empty and is left filled
        /// [default: SQLite in a temporary directory, deleted afterwards]
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
        /// Requests per measurement
        #[arg(long, value_name = "N", default_value_t = 500)]
        requests: usize,
    },
    /// Time the workflow engine: milliseconds per step of a 40-step sequence of built-in
    /// steps, and of steps that go through the workitem outbox.
    Engine {
        /// A scratch database [default: SQLite in a temporary directory, deleted afterwards]
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
    },
    /// Time builds through the server and the worker protocol: log ingest, a log line's way
    /// to a viewer, artifact downloads, and the build and All builds pages with 100,000
    /// builds in history.
    Builds {
        /// A scratch database [default: SQLite in a temporary directory, deleted afterwards]
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. Without --password-stdin a random password is generated and printed.
    Add {
        username: String,
        /// Name shown in the interface [default: the username]
        #[arg(long, default_value = "")]
        display_name: String,
        #[arg(long, default_value = "")]
        email: String,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set a user's password and end all their sessions.
    Passwd {
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List all users.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Disable a user and end all their sessions.
    Disable {
        username: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Enable a disabled user.
    Enable {
        username: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Where Kiln keeps its data; shared by every subcommand that touches the database.
#[derive(Debug, Clone, Default, Args)]
pub struct StoreArgs {
    /// TOML configuration file; its keys are the long option names with '_' for '-'.
    #[arg(long, env = "KILN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for Kiln's data: the SQLite database and stored files [default: ./data]
    #[arg(long, env = "KILN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB [default: SQLite file kiln.db in the data directory]
    #[arg(long, env = "KILN_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// Most connections to the database at once [default: 8 for SQLite, 16 for PostgreSQL]
    #[arg(long, env = "KILN_DATABASE_MAX_CONNECTIONS", value_name = "N")]
    pub database_max_connections: Option<u32>,
    /// How long a request waits for a free database connection before it fails [default: 10s]
    #[arg(long, env = "KILN_DATABASE_ACQUIRE_TIMEOUT", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub database_acquire_timeout: Option<Duration>,
    /// The key that seals the secrets kept in the database; made on first start [default: secrets.key in the data directory]
    #[arg(long, env = "KILN_SECRETS_KEY_FILE", value_name = "FILE")]
    pub secrets_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address and port to listen on [default: 127.0.0.1:3000]
    #[arg(long, env = "KILN_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// The URL users reach Kiln at, e.g. https://kiln.example.com. Requests from other
    /// origins are refused, and cookies are marked Secure when it is https. [default: unset:
    /// a request's Origin must match its Host header]
    #[arg(long, env = "KILN_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Directory holding the built site (pkg/ with the browser bundle) [default: target/site]
    #[arg(long, env = "KILN_SITE_ROOT", value_name = "DIR")]
    pub site_root: Option<PathBuf>,
    /// End a session after this long without requests [default: 8h]
    #[arg(long, env = "KILN_SESSION_IDLE_TIMEOUT", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub session_idle_timeout: Option<Duration>,
    /// End a session this long after login, however active [default: 7days]
    #[arg(long, env = "KILN_SESSION_LIFETIME", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub session_lifetime: Option<Duration>,
    /// Failed logins for one account within the window before it is locked [default: 5]
    #[arg(long, env = "KILN_LOGIN_MAX_FAILURES", value_name = "N")]
    pub login_max_failures: Option<u32>,
    /// Failed logins from one client address within the window before it is locked [default: 20]
    #[arg(long, env = "KILN_LOGIN_MAX_FAILURES_PER_ADDRESS", value_name = "N")]
    pub login_max_failures_per_address: Option<u32>,
    /// Window in which failed logins are counted; a lock lasts until it ends [default: 15m]
    #[arg(long, env = "KILN_LOGIN_FAILURE_WINDOW", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub login_failure_window: Option<Duration>,
    /// Take the client address from X-Forwarded-For (only behind a trusted reverse proxy) [default: false]
    #[arg(long, env = "KILN_TRUST_FORWARDED_FOR", value_name = "BOOL")]
    pub trust_forwarded_for: Option<bool>,
    /// Log format: text or json; the level comes from RUST_LOG [default: text]
    #[arg(long, env = "KILN_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Workers the server runs itself, each taking one workitem at a time; 0 for none [default: 2]
    #[arg(long, env = "KILN_EMBEDDED_WORKERS", value_name = "N")]
    pub embedded_workers: Option<u32>,
    /// Create the demo project (builds with the shipped fake-bitbake) unless it exists
    #[arg(long, env = "KILN_DEMO_PROJECT")]
    pub demo_project: bool,
    /// How long a worker may stay silent before what it runs counts as lost [default: 30s]
    #[arg(long, env = "KILN_WORKER_LEASE", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub worker_lease: Option<Duration>,
}

/// `kiln worker`: serve participants for a Kiln server.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// The server's URL, e.g. https://kiln.example.com (ws:// and wss:// work too)
    #[arg(long, env = "KILN_SERVER", value_name = "URL")]
    pub server: String,
    /// A worker token from the Workers page
    #[arg(
        long,
        env = "KILN_WORKER_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: String,
    /// Participants to serve, comma-separated
    #[arg(
        long,
        value_name = "NAMES",
        value_delimiter = ',',
        default_value = "shell,build"
    )]
    pub participants: Vec<String>,
    /// Workitems to run at once
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub capacity: u32,
    /// Directory under which workitems run (one directory per process)
    #[arg(long, value_name = "DIR", default_value = "kiln-work")]
    pub workdir: PathBuf,
    /// The name the worker shows on the Workers page [default: the host name]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Run participant commands as this user (the worker must run as root)
    #[arg(long, value_name = "USER")]
    pub run_as: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The TOML file: every setting optional; unknown keys are an error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    database_max_connections: Option<u32>,
    #[serde(default, with = "optional_duration")]
    database_acquire_timeout: Option<Duration>,
    secrets_key_file: Option<PathBuf>,
    listen: Option<SocketAddr>,
    public_url: Option<String>,
    site_root: Option<PathBuf>,
    #[serde(default, with = "optional_duration")]
    session_idle_timeout: Option<Duration>,
    #[serde(default, with = "optional_duration")]
    session_lifetime: Option<Duration>,
    login_max_failures: Option<u32>,
    login_max_failures_per_address: Option<u32>,
    #[serde(default, with = "optional_duration")]
    login_failure_window: Option<Duration>,
    trust_forwarded_for: Option<bool>,
    log_format: Option<LogFormat>,
    embedded_workers: Option<u32>,
    #[serde(default, with = "optional_duration")]
    worker_lease: Option<Duration>,
}

mod optional_duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| humantime::parse_duration(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

fn read_file(path: Option<&Path>) -> anyhow::Result<FileSettings> {
    let Some(path) = path else {
        return Ok(FileSettings::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read configuration file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid configuration file {}", path.display()))
}

/// The most workers `kiln serve` runs itself.
pub const MAX_EMBEDDED_WORKERS: u32 = 64;

/// The most connections the database pool may be given.
pub const MAX_DATABASE_CONNECTIONS: u32 = 1024;

/// Where the database is, and how many connections to it are kept.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub pool: PoolSettings,
    /// `None`: `secrets.key` in the data directory.
    pub secrets_key_file: Option<PathBuf>,
}

/// The database connection pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// `None`: the backend's default (8 for SQLite, 16 for PostgreSQL).
    pub max_connections: Option<u32>,
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: None,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

impl StoreSettings {
    /// A store with the default pool.
    pub fn new(data_dir: PathBuf, database_url: String) -> Self {
        Self {
            data_dir,
            database_url,
            pool: PoolSettings::default(),
            secrets_key_file: None,
        }
    }
}

/// Everything `kiln serve` needs, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub store: StoreSettings,
    pub listen: SocketAddr,
    /// `scheme://host[:port]` of the public URL, when configured.
    pub public_origin: Option<String>,
    pub site_root: PathBuf,
    pub auth: app::ssr::state::AuthSettings,
    pub log_format: LogFormat,
    /// Password for the first administrator (`KILN_ADMIN_PASSWORD`); random when unset.
    pub admin_password: Option<String>,
    pub embedded_workers: u32,
    pub worker_lease: Duration,
}

impl Settings {
    pub fn secure_cookies(&self) -> bool {
        self.public_origin
            .as_deref()
            .is_some_and(|o| o.starts_with("https://"))
    }
}

fn store_settings(args: &StoreArgs, file: &FileSettings) -> anyhow::Result<StoreSettings> {
    let data_dir = args
        .data_dir
        .clone()
        .or_else(|| file.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from("data"));
    let database_url = args
        .database_url
        .clone()
        .or_else(|| file.database_url.clone())
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("kiln.db").display()));
    let max_connections = args
        .database_max_connections
        .or(file.database_max_connections);
    if max_connections.is_some_and(|n| n == 0 || n > MAX_DATABASE_CONNECTIONS) {
        bail!("database_max_connections must be between 1 and {MAX_DATABASE_CONNECTIONS}");
    }
    let acquire_timeout = args
        .database_acquire_timeout
        .or(file.database_acquire_timeout)
        .unwrap_or(PoolSettings::default().acquire_timeout);
    if acquire_timeout < Duration::from_millis(100) {
        bail!("database_acquire_timeout must be at least 100ms");
    }
    Ok(StoreSettings {
        data_dir,
        database_url,
        pool: PoolSettings {
            max_connections,
            acquire_timeout,
        },
        secrets_key_file: args
            .secrets_key_file
            .clone()
            .or_else(|| file.secrets_key_file.clone()),
    })
}

impl StoreArgs {
    pub fn resolve(&self) -> anyhow::Result<StoreSettings> {
        store_settings(self, &read_file(self.config.as_deref())?)
    }
}

/// `scheme://host[:port]` of an http(s) URL, lowercased, without path.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    Some(format!("{scheme}://{authority}"))
}

impl ServeArgs {
    pub fn resolve(&self, admin_password: Option<String>) -> anyhow::Result<Settings> {
        let file = read_file(self.store.config.as_deref())?;
        let defaults = app::ssr::state::AuthSettings::default();
        let public_url = self.public_url.clone().or_else(|| file.public_url.clone());
        let public_origin = match public_url {
            Some(url) => Some(
                origin_of(&url)
                    .with_context(|| format!("public URL '{url}' is not an http(s) URL"))?,
            ),
            None => None,
        };
        let auth = app::ssr::state::AuthSettings {
            idle_timeout: self
                .session_idle_timeout
                .or(file.session_idle_timeout)
                .unwrap_or(defaults.idle_timeout),
            lifetime: self
                .session_lifetime
                .or(file.session_lifetime)
                .unwrap_or(defaults.lifetime),
            account_max_failures: self
                .login_max_failures
                .or(file.login_max_failures)
                .unwrap_or(defaults.account_max_failures),
            address_max_failures: self
                .login_max_failures_per_address
                .or(file.login_max_failures_per_address)
                .unwrap_or(defaults.address_max_failures),
            failure_window: self
                .login_failure_window
                .or(file.login_failure_window)
                .unwrap_or(defaults.failure_window),
            trust_forwarded_for: self
                .trust_forwarded_for
                .or(file.trust_forwarded_for)
                .unwrap_or(false),
        };
        if auth.idle_timeout.is_zero() || auth.lifetime.is_zero() {
            bail!("session durations must be longer than zero");
        }
        if auth.account_max_failures == 0 || auth.address_max_failures == 0 {
            bail!("login failure limits must be at least 1");
        }
        let worker_lease = self
            .worker_lease
            .or(file.worker_lease)
            .unwrap_or(Duration::from_secs(30));
        if worker_lease < Duration::from_secs(1) {
            bail!("the worker lease must be at least 1s");
        }
        let embedded_workers = self.embedded_workers.or(file.embedded_workers).unwrap_or(2);
        if embedded_workers > MAX_EMBEDDED_WORKERS {
            bail!("at most {MAX_EMBEDDED_WORKERS} embedded workers");
        }
        Ok(Settings {
            store: store_settings(&self.store, &file)?,
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3000))),
            public_origin,
            site_root: self
                .site_root
                .clone()
                .or_else(|| file.site_root.clone())
                .unwrap_or_else(|| PathBuf::from("target/site")),
            auth,
            log_format: self
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            admin_password: admin_password.filter(|p| !p.is_empty()),
            embedded_workers,
            worker_lease,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_and_file_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:4000\"\nsession_idle_timeout = \"30m\"\ndata_dir = \"/srv/kiln\"\n").unwrap();
        let args = ServeArgs {
            store: StoreArgs {
                config: Some(path),
                ..Default::default()
            },
            session_idle_timeout: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        let settings = args.resolve(None).unwrap();
        assert_eq!(settings.listen, SocketAddr::from(([127, 0, 0, 1], 4000)));
        assert_eq!(settings.auth.idle_timeout, Duration::from_secs(60));
        assert_eq!(settings.auth.lifetime, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(settings.store.database_url, "sqlite:///srv/kiln/kiln.db");
    }

    #[test]
    fn the_pool_is_sized_by_flag_or_file_within_limits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.toml");
        std::fs::write(
            &path,
            "database_max_connections = 4\ndatabase_acquire_timeout = \"2s\"\n",
        )
        .unwrap();
        let store = |max: Option<u32>| StoreArgs {
            config: Some(path.clone()),
            database_max_connections: max,
            ..Default::default()
        };
        let pool = store(None).resolve().unwrap().pool;
        assert_eq!(pool.max_connections, Some(4));
        assert_eq!(pool.acquire_timeout, Duration::from_secs(2));
        assert_eq!(
            store(Some(2)).resolve().unwrap().pool.max_connections,
            Some(2)
        );
        for refused in [0, MAX_DATABASE_CONNECTIONS + 1] {
            let error = store(Some(refused)).resolve().unwrap_err().to_string();
            assert!(error.contains("database_max_connections"), "{error}");
        }
        let defaults = StoreArgs::default().resolve().unwrap().pool;
        assert_eq!(defaults, PoolSettings::default());
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.toml");
        std::fs::write(&path, "listne = \"127.0.0.1:4000\"\n").unwrap();
        let args = ServeArgs {
            store: StoreArgs {
                config: Some(path),
                ..Default::default()
            },
            ..Default::default()
        };
        let error = format!("{:#}", args.resolve(None).unwrap_err());
        assert!(error.contains("unknown field `listne`"), "{error}");
    }

    #[test]
    fn origins_are_normalised() {
        assert_eq!(
            origin_of("https://Kiln.example.com:443/path").as_deref(),
            Some("https://kiln.example.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:3000").as_deref(),
            Some("http://127.0.0.1:3000")
        );
        assert_eq!(origin_of("ftp://x"), None);
        assert_eq!(origin_of("https://user@host"), None);
    }

    #[test]
    fn https_public_url_makes_cookies_secure() {
        let args = ServeArgs {
            public_url: Some("https://kiln.example.com".into()),
            ..Default::default()
        };
        assert!(args.resolve(None).unwrap().secure_cookies());
        assert!(!ServeArgs::default().resolve(None).unwrap().secure_cookies());
    }
}
