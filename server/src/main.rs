//! The `kiln` command.

use anyhow::Context;
use clap::Parser;
use server::cli::{accounts, process, project};
use server::config::{Cli, Command, LogFormat, SecretsCommand, WorkerArgs};
use server::worker::{RunAs, Worker, WorkerConfig, socket_url};
use server::{bench, database, startup::Application, telemetry};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kiln: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let settings = args.resolve(std::env::var("KILN_ADMIN_PASSWORD").ok())?;
            telemetry::init(settings.log_format, "info");
            let application = Application::build(settings).await?;
            if args.demo_project
                && server::demo::ensure(&application.state().db, &application.state().secrets)
                    .await?
            {
                println!(
                    "Created the demo project: open /projects/{} and start a build.",
                    server::demo::SLUG
                );
            }
            let address = application.local_addr()?;
            tracing::info!(%address, "Kiln is listening");
            println!("Kiln is listening on http://{address}");
            let shutdown = CancellationToken::new();
            tokio::spawn(stop_on_signal(shutdown.clone()));
            application.run_until_stopped(shutdown).await
        }
        Command::Migrate(store) => {
            telemetry::init(LogFormat::Text, "warn");
            let db = database::connect(&store.resolve()?).await?;
            database::migrate(&db).await?;
            println!("Database is up to date.");
            Ok(())
        }
        Command::User(command) => {
            telemetry::init(LogFormat::Text, "warn");
            accounts::run(command).await
        }
        Command::Project(command) => {
            telemetry::init(LogFormat::Text, "warn");
            project::run(command).await
        }
        Command::Bench(command) => {
            telemetry::init(LogFormat::Text, "warn");
            bench::run(command).await
        }
        Command::Process(command) => {
            telemetry::init(LogFormat::Text, "warn");
            process::run(command).await
        }
        Command::Secrets(SecretsCommand::RotateKey { store }) => {
            telemetry::init(LogFormat::Text, "warn");
            let store = store.resolve()?;
            let db = database::connect(&store).await?;
            database::migrate(&db).await?;
            let id = server::secrets_key::rotate(&store, &db).await?;
            println!(
                "Every stored secret is sealed under the new key {id}, now in {}. Back it up.",
                server::secrets_key::path(&store).display()
            );
            Ok(())
        }
        Command::Worker(args) => {
            telemetry::init(LogFormat::Text, "info");
            let config = worker_config(args)?;
            config.check()?;
            println!(
                "Kiln worker {} serving {} for {}",
                config.name,
                config.participants.join(", "),
                config.url
            );
            let shutdown = CancellationToken::new();
            tokio::spawn(stop_on_signal(shutdown.clone()));
            Worker::new(config).run(shutdown).await
        }
    }
}

fn worker_config(args: WorkerArgs) -> anyhow::Result<WorkerConfig> {
    let run_as = args.run_as.as_deref().map(RunAs::resolve).transpose()?;
    std::fs::create_dir_all(&args.workdir)
        .with_context(|| format!("cannot create the workdir {}", args.workdir.display()))?;
    let workdir = args.workdir.canonicalize()?;
    let name = match args.name {
        Some(name) => name,
        None => nix::unistd::gethostname()?
            .into_string()
            .map_err(|_| anyhow::anyhow!("the host name is not UTF-8: give --name"))?,
    };
    Ok(WorkerConfig {
        url: socket_url(&args.server)?,
        token: args.token,
        name,
        participants: args.participants,
        capacity: args.capacity,
        workdir,
        run_as,
    })
}

/// Cancels `shutdown` on Ctrl-C or SIGTERM.
async fn stop_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}
