//! Durability with real processes: a `kiln serve` killed with SIGKILL while 100 processes
//! run through its embedded workers and an external `kiln worker`, then started again; and
//! `kiln process` driving processes from the command line.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use app::ssr::audit::Actor;
use app::ssr::entities::process_history::{Column as HistoryColumn, Entity as History};
use app::ssr::entities::process_instances::{Column as InstanceColumn, Entity as Instances};
use app::ssr::entities::workitems::Entity as Workitems;
use app::ssr::processes::instances;
use app::ssr::workers::tokens;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;

use crate::engine::{launch, save, wait_for_status};
use crate::helpers::{ADMIN_PASSWORD, TestApp, audit_rows, on_each_database};

on_each_database!(
    a_killed_server_resumes_every_process_and_runs_each_step_once,
    processes_are_launched_and_controlled_from_the_command_line,
);

const INSTANCES: usize = 100;
const STEPS: usize = 3;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `kiln serve` on `port`, with two embedded workers and a five-second lease.
fn serve(app: &TestApp, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--embedded-workers",
            "2",
        ])
        .args([
            "--worker-lease",
            "5s",
            "--database-url",
            &app.database_url,
            "--data-dir",
        ])
        .arg(&app.data_dir)
        .env("KILN_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn ready(port: u16) {
    let url = format!("http://127.0.0.1:{port}/readyz");
    for _ in 0..300 {
        if reqwest::get(&url)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("kiln serve did not become ready on port {port}");
}

async fn completed_steps(app: &TestApp) -> u64 {
    History::find()
        .filter(HistoryColumn::Kind.eq("completed"))
        .count(&app.db)
        .await
        .unwrap()
}

async fn a_killed_server_resumes_every_process_and_runs_each_step_once(app: TestApp) {
    app.stop_server();
    let ledger_dir = tempfile::tempdir().unwrap();
    let ledger = ledger_dir.path().join("ledger");
    // Each run of a step appends "workitem attempt" to the ledger, then takes a moment.
    let step = format!(
        "    - participant: shell\n      params: {{ command: [\"sh\", \"-c\", \"echo $KILN_WORKITEM $KILN_ATTEMPT $PWD $(date +%s.%N) >> {}; sleep 0.05\"] }}\n",
        ledger.display()
    );
    save(
        &app,
        &format!(
            "name: durable\nprocess:\n  sequence:\n{}",
            step.repeat(STEPS)
        ),
    )
    .await;
    let secret = tokens::create(&app.db, &Actor::system(), "durability")
        .await
        .unwrap()
        .secret;

    let port = free_port();
    let mut server = serve(&app, port);
    ready(port).await;
    let workdir = tempfile::tempdir().unwrap();
    let mut worker = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "worker",
            "--server",
            &format!("http://127.0.0.1:{port}"),
            "--name",
            "external",
        ])
        .args(["--capacity", "4", "--workdir"])
        .arg(workdir.path())
        .env("KILN_WORKER_TOKEN", &secret)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let mut ids = Vec::new();
    for _ in 0..INSTANCES {
        ids.push(launch(&app, "durable", json!({})).await);
    }
    // Kill it in the middle of the work.
    let total = (INSTANCES * STEPS) as u64;
    let started = Instant::now();
    while completed_steps(&app).await < total / 3 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no progress before the kill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let at_kill = completed_steps(&app).await;
    assert!(at_kill < total, "the kill came after the end");

    let mut server = serve(&app, port);
    let started = Instant::now();
    loop {
        let finished = Instances::find()
            .filter(InstanceColumn::Status.eq("finished"))
            .count(&app.db)
            .await
            .unwrap();
        if finished == INSTANCES as u64 {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let stuck: Vec<_> = Instances::find()
                .filter(InstanceColumn::Status.ne("finished"))
                .all(&app.db)
                .await
                .unwrap();
            let items: Vec<_> = Workitems::find().all(&app.db).await.unwrap();
            for instance in stuck {
                let mine: Vec<_> = items
                    .iter()
                    .filter(|w| w.instance_id == instance.id)
                    .collect();
                eprintln!("stuck {} {}: {mine:#?}", instance.id, instance.status);
            }
            panic!("{finished} of {INSTANCES} finished after the restart");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    worker.kill().unwrap();
    worker.wait().unwrap();
    server.kill().unwrap();
    server.wait().unwrap();

    // By the engine's counts, every step of every process completed exactly once.
    let history = History::find()
        .filter(HistoryColumn::Kind.eq("completed"))
        .all(&app.db)
        .await
        .unwrap();
    let mut per_step: BTreeMap<(i64, Option<i32>), usize> = BTreeMap::new();
    for row in &history {
        *per_step.entry((row.instance_id, row.node_id)).or_default() += 1;
    }
    assert_eq!(per_step.len(), INSTANCES * STEPS);
    assert!(per_step.values().all(|n| *n == 1), "a step completed twice");

    // Every workitem ran; one that was never handed elsewhere ran exactly once, and none
    // ran twice in the same attempt.
    let text = std::fs::read_to_string(&ledger).unwrap();
    let mut runs: BTreeMap<(i64, i32), usize> = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split(' ');
        let (workitem, attempt) = (words.next().unwrap(), words.next().unwrap_or_default());
        let (Ok(workitem), Ok(attempt)) = (workitem.parse(), attempt.parse()) else {
            panic!("bad ledger line {line:?}");
        };
        *runs.entry((workitem, attempt)).or_default() += 1;
    }
    for ((workitem, attempt), n) in &runs {
        if *n > 1 {
            eprintln!("ran {n} times: {workitem} {attempt}");
            for line in text
                .lines()
                .filter(|l| l.starts_with(&format!("{workitem} ")))
            {
                eprintln!("  {line}");
            }
            let item = Workitems::find_by_id(*workitem)
                .one(&app.db)
                .await
                .unwrap()
                .unwrap();
            let events = History::find()
                .filter(HistoryColumn::InstanceId.eq(item.instance_id))
                .all(&app.db)
                .await
                .unwrap();
            for e in events {
                eprintln!(
                    "  {} {} {:?} {} {}",
                    e.at, e.kind, e.node_id, e.by, e.message
                );
            }
        }
    }
    let workitems = Workitems::find().all(&app.db).await.unwrap();
    assert_eq!(workitems.len(), INSTANCES * STEPS);
    for item in &workitems {
        assert_eq!(item.state, "replied", "workitem {}", item.id);
        assert_eq!(
            runs.get(&(item.id, item.attempt)),
            Some(&1),
            "workitem {} attempt {}",
            item.id,
            item.attempt
        );
        if item.attempt == 1 {
            assert!(
                runs.keys().filter(|(w, _)| *w == item.id).count() == 1,
                "workitem {} ran in more than one attempt",
                item.id
            );
        }
    }
    assert!(
        runs.values().all(|n| *n == 1),
        "an attempt ran twice: {runs:?}"
    );
    eprintln!(
        "durability: {at_kill} of {total} steps done at the kill; {} workitems needed another attempt",
        workitems.iter().filter(|w| w.attempt > 1).count()
    );
    for id in ids {
        wait_for_status(&app, id, "finished").await;
    }
}

fn kiln_process(app: &TestApp, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("process")
        .args(args)
        .args(["--database-url", &app.database_url, "--data-dir"])
        .arg(&app.data_dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "kiln process {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

async fn processes_are_launched_and_controlled_from_the_command_line(app: TestApp) {
    save(
        &app,
        "name: waiter\nprocess:\n  sequence:\n    - set: { a: 1 }\n    - wait: 1h\n",
    )
    .await;
    let id = kiln_process(
        &app,
        &[
            "launch",
            "waiter",
            "--field",
            "branch=next",
            "--field",
            "n=3",
        ],
    );
    let id: i64 = id.trim().parse().unwrap();
    let (_, instance) = instances::load(&app.db, id).await.unwrap();
    assert_eq!(
        (
            instance.fields["branch"].clone(),
            instance.fields["n"].clone()
        ),
        (json!("next"), json!(3))
    );

    kiln_process(&app, &["pause", &id.to_string()]);
    wait_for_status(&app, id, "paused").await;
    let shown = kiln_process(&app, &["show", &id.to_string()]);
    assert!(
        shown.starts_with(&format!("process {id}: waiter (paused)")),
        "{shown}"
    );
    kiln_process(&app, &["resume", &id.to_string()]);
    wait_for_status(&app, id, "running").await;
    kiln_process(&app, &["cancel", &id.to_string()]);
    wait_for_status(&app, id, "cancelled").await;
    let rows = audit_rows(&app, "process.control", "process", &id.to_string()).await;
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|(actor, _)| actor == "system"));

    // Mistakes are reported, with a failing status.
    let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "process",
            "launch",
            "nothing-here",
            "--database-url",
            &app.database_url,
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no definition named 'nothing-here'"));
    let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "process",
            "kill",
            "999999",
            "--database-url",
            &app.database_url,
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("no process 999999"));
}
