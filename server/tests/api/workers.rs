//! Workers against a real server: the embedded worker and `kiln worker` processes running
//! `shell` steps, tokens, the protocol's refusals, retraction, and lost workers.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use app::ssr::audit::Actor;
use app::ssr::entities::participants::{Column as ParticipantColumn, Entity as Participants};
use app::ssr::entities::workitems::{
    Column as WorkitemColumn, Entity as Workitems, Model as Workitem,
};
use app::ssr::processes::instances::{self, Reply, ReplyRefused};
use app::ssr::workers::protocol::{Attempt, PROTOCOL_VERSION, ServerFrame, WorkerFrame};
use app::ssr::workers::{logs, tokens};
use app::workflow::engine::{Message, Outcome};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use server::worker::{Worker, WorkerConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

use crate::engine::{history, launch, save, wait_for_status};
use crate::helpers::{TestApp, assert_invalid, audit_rows, on_each_database};

mod embedded {
    use super::*;
    on_each_database!(
        configure = |settings| settings.embedded_workers = 1;
        the_embedded_worker_runs_shell_steps,
        a_failing_command_fails_with_its_status_and_output,
        retracted_workitems_stop_their_command,
    );
}

mod external {
    use super::*;
    on_each_database!(
        configure = |settings| settings.worker_lease = std::time::Duration::from_secs(2);
        workers_need_a_live_token,
        the_protocol_refuses_what_is_not_current,
        replies_arriving_together_are_each_answered,
        workers_get_only_what_they_serve,
        a_batch_of_replies_takes_each_attempt_once,
        a_lost_worker_is_retried_then_failed,
        administrators_manage_tokens_and_workers,
        a_slow_log_holds_up_neither_heartbeats_nor_leases,
    );
}

async fn token(app: &TestApp, name: &str) -> String {
    tokens::create(&app.db, &Actor::system(), name)
        .await
        .unwrap()
        .secret
}

/// A `shell` step definition called `name` running `command`.
async fn shell_definition(app: &TestApp, name: &str, commands: &[serde_json::Value]) {
    let steps: String = commands
        .iter()
        .map(|command| {
            format!("    - participant: shell\n      params: {{ command: {command} }}\n")
        })
        .collect();
    save(
        app,
        &format!("name: {name}\nprocess:\n  sequence:\n{steps}"),
    )
    .await;
}

/// Waits until the instance has a workitem dispatched at `attempt`.
async fn wait_for_dispatch(app: &TestApp, instance: i64, attempt: i32) -> Workitem {
    for _ in 0..1000 {
        let found = Workitems::find()
            .filter(WorkitemColumn::InstanceId.eq(instance))
            .filter(WorkitemColumn::Attempt.eq(attempt))
            .filter(WorkitemColumn::State.eq("dispatched"))
            .one(&app.db)
            .await
            .unwrap();
        if let Some(workitem) = found {
            return workitem;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no workitem dispatched at attempt {attempt} for instance {instance}");
}

fn config(app: &TestApp, token: &str, name: &str, workdir: &std::path::Path) -> WorkerConfig {
    WorkerConfig {
        url: server::worker::socket_url(&app.base).unwrap(),
        token: token.to_owned(),
        name: name.to_owned(),
        participants: vec!["shell".into()],
        capacity: 1,
        workdir: workdir.to_owned(),
        run_as: None,
    }
}

/// A `kiln worker` process.
fn worker_process(app: &TestApp, token: &str, name: &str, workdir: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["worker", "--server", &app.base, "--name", name, "--workdir"])
        .arg(workdir)
        .env("KILN_WORKER_TOKEN", token)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn the_embedded_worker_runs_shell_steps(app: TestApp) {
    shell_definition(
        &app,
        "two-steps",
        &[
            json!([
                "sh",
                "-c",
                "echo hello from process $KILN_PROCESS; echo to-stderr >&2; echo kept > out.txt"
            ]),
            json!(["cat", "out.txt"]),
        ],
    )
    .await;
    let id = launch(&app, "two-steps", json!({})).await;
    let fields = wait_for_status(&app, id, "finished").await;
    assert_eq!(fields.get("outcome"), Some(&json!("passed")));
    assert_eq!(fields.get("exit_status"), Some(&json!(0)));
    let completed = history(&app, id, "completed").await;
    assert_eq!(completed.len(), 2, "{completed:?}");
    let workitems = Workitems::find()
        .filter(WorkitemColumn::InstanceId.eq(id))
        .all(&app.db)
        .await
        .unwrap();
    assert!(
        workitems
            .iter()
            .all(|w| w.state == "replied" && w.attempt == 1)
    );
    let first = logs::tail(&app.data_dir, workitems[0].id, usize::MAX)
        .await
        .unwrap();
    assert!(
        first.contains(&format!("hello from process {id}\n")),
        "{first}"
    );
    assert!(first.contains("to-stderr\n"), "{first}");
    let second = logs::tail(&app.data_dir, workitems[1].id, usize::MAX)
        .await
        .unwrap();
    assert!(
        second.ends_with("kept\n"),
        "the second step ran in the same directory: {second}"
    );
    assert!(
        second.starts_with("[kiln] attempt 1 of workitem"),
        "{second}"
    );

    // The process page shows what each step printed, newest first.
    let admin = app.admin().await;
    let view: Value = admin
        .call("process_detail", &[("id", &id.to_string())])
        .await
        .json()
        .await
        .unwrap();
    let outputs = view["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 2);
    assert!(outputs[0]["text"].as_str().unwrap().ends_with("kept\n"));
    assert!(outputs[1]["text"].as_str().unwrap().contains("to-stderr\n"));
    assert_eq!(outputs[1]["cut"], false);
}

async fn a_failing_command_fails_with_its_status_and_output(app: TestApp) {
    shell_definition(&app, "fails", &[json!(["sh", "-c", "echo boom; exit 3"])]).await;
    let id = launch(&app, "fails", json!({})).await;
    wait_for_status(&app, id, "error").await;
    let errors = history(&app, id, "failed").await;
    assert!(
        errors
            .iter()
            .any(|e| e.contains("`sh` exited with status 3; last output:\nboom")),
        "{errors:?}"
    );

    shell_definition(&app, "missing", &[json!(["kiln-test-no-such-program"])]).await;
    let id = launch(&app, "missing", json!({})).await;
    wait_for_status(&app, id, "error").await;
    let errors = history(&app, id, "failed").await;
    assert!(
        errors
            .iter()
            .any(|e| e.contains("cannot run `kiln-test-no-such-program`")),
        "{errors:?}"
    );
}

async fn retracted_workitems_stop_their_command(app: TestApp) {
    shell_definition(
        &app,
        "sleeper",
        &[json!(["sh", "-c", "echo $$ > pid; exec sleep 60"])],
    )
    .await;
    let id = launch(&app, "sleeper", json!({})).await;
    wait_for_dispatch(&app, id, 1).await;
    let pid_file = app.data_dir.join(format!("work/process-{id}/pid"));
    let mut pid = String::new();
    for _ in 0..500 {
        pid = std::fs::read_to_string(&pid_file).unwrap_or_default();
        if pid.ends_with('\n') {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let proc_dir = format!("/proc/{}", pid.trim());
    assert!(std::path::Path::new(&proc_dir).exists(), "the command runs");

    instances::control(&app.db, &Actor::system(), id, Message::Cancel)
        .await
        .unwrap();
    app.engine.wake();
    wait_for_status(&app, id, "cancelled").await;
    for _ in 0..500 {
        if !std::path::Path::new(&proc_dir).exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !std::path::Path::new(&proc_dir).exists(),
        "the command was stopped"
    );

    // The worker's only slot is free again.
    shell_definition(&app, "quick", &[json!(["true"])]).await;
    let next = launch(&app, "quick", json!({})).await;
    wait_for_status(&app, next, "finished").await;
}

async fn workers_need_a_live_token(app: TestApp) {
    let workdir = tempfile::tempdir().unwrap();
    let shutdown = CancellationToken::new();

    let refused = Worker::new(config(&app, "kiln_wt_not-a-token", "w1", workdir.path()))
        .run(shutdown.clone())
        .await
        .unwrap_err();
    assert!(
        format!("{refused:#}").contains("the worker token is not valid or has been revoked"),
        "{refused:#}"
    );

    let secret = token(&app, "ci").await;
    let worker = tokio::spawn(
        Worker::new(config(&app, &secret, "builder-1", workdir.path())).run(shutdown.clone()),
    );
    shell_definition(&app, "hello", &[json!(["echo", "hello"])]).await;
    let id = launch(&app, "hello", json!({})).await;
    wait_for_status(&app, id, "finished").await;
    let completed = history(&app, id, "completed").await;
    assert_eq!(completed, ["shell"]);
    let by = app::ssr::entities::process_history::Entity::find()
        .filter(app::ssr::entities::process_history::Column::InstanceId.eq(id))
        .filter(app::ssr::entities::process_history::Column::Kind.eq("completed"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .by;
    assert_eq!(by, "builder-1");

    let token_id = tokens::list(&app.db).await.unwrap()[0].id.to_string();
    let created = audit_rows(&app, "worker_token.create", "worker_token", &token_id).await;
    assert_eq!(
        created,
        [("system".to_owned(), "Created worker token ci".to_owned())]
    );
    let worker_id = app::ssr::workers::registry::list(
        &app.db,
        chrono::Utc::now(),
        chrono::Duration::seconds(60),
    )
    .await
    .unwrap()[0]
        .id
        .to_string();
    let connected = audit_rows(&app, "worker.connect", "worker", &worker_id).await;
    assert_eq!(connected[0].0, "worker:builder-1");
    let denied = {
        use app::ssr::entities::audit_log::{Column, Entity};
        Entity::find()
            .filter(Column::Action.eq("worker.denied"))
            .all(&app.db)
            .await
            .unwrap()
    };
    assert_eq!(denied.len(), 1);

    // A revoked token lets no new connection in.
    let id = tokens::list(&app.db).await.unwrap()[0].id;
    tokens::revoke(&app.db, &Actor::system(), id).await.unwrap();
    let refused = Worker::new(config(&app, &secret, "builder-2", workdir.path()))
        .run(shutdown.clone())
        .await
        .unwrap_err();
    assert!(format!("{refused:#}").contains("revoked"), "{refused:#}");

    // A participant the server does not know is refused for good, with the reason.
    let secret = token(&app, "other").await;
    let mut socket = connect(&app, &secret).await;
    send(&mut socket, &hello("odd", &["rocket"], &[])).await;
    let Some(Ok(WsMessage::Close(Some(frame)))) = socket.next().await else {
        panic!("the hello must be refused with a close frame");
    };
    assert_eq!(
        u16::from(frame.code),
        server::http::worker_socket::CLOSE_REFUSED
    );
    assert_eq!(
        frame.reason.as_str(),
        "participants: no participant `rocket` is registered"
    );

    shutdown.cancel();
    worker.await.unwrap().unwrap();
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp, secret: &str) -> Socket {
    let mut request = server::worker::socket_url(&app.base)
        .unwrap()
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {secret}").parse().unwrap());
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

fn hello(name: &str, participants: &[&str], running: &[Attempt]) -> WorkerFrame {
    WorkerFrame::Hello {
        protocol: PROTOCOL_VERSION,
        name: name.into(),
        host: "test".into(),
        version: "0".into(),
        participants: participants.iter().map(|p| (*p).to_owned()).collect(),
        capacity: 1,
        running: running.to_vec(),
    }
}

async fn send(socket: &mut Socket, frame: &WorkerFrame) {
    socket
        .send(WsMessage::text(serde_json::to_string(frame).unwrap()))
        .await
        .unwrap();
}

/// The next frame from the server (up to 10 s).
async fn receive(socket: &mut Socket) -> ServerFrame {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s")
            .expect("the socket is open")
            .unwrap();
        if let WsMessage::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

async fn the_protocol_refuses_what_is_not_current(app: TestApp) {
    let secret = token(&app, "raw").await;
    let mut socket = connect(&app, &secret).await;
    send(&mut socket, &hello("raw-1", &["shell"], &[])).await;
    assert!(matches!(
        receive(&mut socket).await,
        ServerFrame::Welcome { .. }
    ));
    shell_definition(&app, "one", &[json!(["true"])]).await;
    let id = launch(&app, "one", json!({})).await;
    let ServerFrame::Workitem {
        attempt,
        instance,
        participant,
        params,
        ..
    } = receive(&mut socket).await
    else {
        panic!("a workitem");
    };
    assert_eq!(
        (instance, participant.as_str(), attempt.attempt),
        (id, "shell", 1)
    );
    assert_eq!(params.get("command"), Some(&json!(["true"])));

    let done = done();
    send(
        &mut socket,
        &WorkerFrame::Progress {
            attempt,
            text: "half way".into(),
        },
    )
    .await;
    let stale = Attempt {
        attempt: 0,
        ..attempt
    };
    send(
        &mut socket,
        &WorkerFrame::Reply {
            attempt: stale,
            outcome: done.clone(),
        },
    )
    .await;
    let ServerFrame::Refused { reason, .. } = receive(&mut socket).await else {
        panic!("a stale attempt is refused");
    };
    assert_eq!(reason, "attempt 0 is stale: attempt 1 is current");
    // Frames are taken in order, so the progress report is in by now.
    let workers = app::ssr::workers::registry::list(
        &app.db,
        chrono::Utc::now(),
        chrono::Duration::seconds(60),
    )
    .await
    .unwrap();
    assert_eq!(workers[0].running[0].progress.as_deref(), Some("half way"));

    send(
        &mut socket,
        &WorkerFrame::Reply {
            attempt,
            outcome: done.clone(),
        },
    )
    .await;
    assert_eq!(receive(&mut socket).await, ServerFrame::Replied { attempt });
    wait_for_status(&app, id, "finished").await;
    // The same reply again (as after a reconnect) changes nothing.
    send(
        &mut socket,
        &WorkerFrame::Reply {
            attempt,
            outcome: done,
        },
    )
    .await;
    assert!(matches!(
        receive(&mut socket).await,
        ServerFrame::Refused { .. }
    ));
    assert_eq!(history(&app, id, "completed").await.len(), 1);

    // A frame that is not JSON ends the connection, and says why.
    socket.send(WsMessage::text("{nonsense")).await.unwrap();
    let Some(Ok(WsMessage::Close(Some(frame)))) = socket.next().await else {
        panic!("an unreadable frame closes the socket");
    };
    assert!(
        frame.reason.as_str().starts_with("unreadable frame"),
        "{}",
        frame.reason
    );
}

/// `count` workers connected over the protocol, each holding the one `shell` step of a
/// process of its own: their sockets, worker ids, attempts and processes, in that order.
async fn workers_holding_one_each(
    app: &TestApp,
    count: usize,
) -> (Vec<Socket>, Vec<i64>, Vec<Attempt>, Vec<i64>) {
    let secret = token(app, "many").await;
    shell_definition(app, "one-step", &[json!(["true"])]).await;
    let (mut sockets, mut workers) = (Vec::new(), Vec::new());
    for n in 0..count {
        let mut socket = connect(app, &secret).await;
        send(&mut socket, &hello(&format!("many-{n}"), &["shell"], &[])).await;
        let ServerFrame::Welcome { worker_id, .. } = receive(&mut socket).await else {
            panic!("a welcome");
        };
        sockets.push(socket);
        workers.push(worker_id);
    }
    let mut launched = Vec::new();
    for _ in 0..count {
        launched.push(launch(app, "one-step", json!({})).await);
    }
    let (mut held, mut processes) = (Vec::new(), Vec::new());
    for socket in &mut sockets {
        let ServerFrame::Workitem {
            attempt, instance, ..
        } = receive(socket).await
        else {
            panic!("a workitem for each worker");
        };
        held.push(attempt);
        processes.push(instance);
    }
    let mut sorted = processes.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, launched, "each worker holds one of the processes");
    (sockets, workers, held, processes)
}

/// A log the server cannot write (a named pipe nobody reads yet, as a stalled disk would
/// be) holds up only the log: the worker's heartbeats still keep its lease well past the
/// lease's length, and once the log can be written every line arrives before the reply.
async fn a_slow_log_holds_up_neither_heartbeats_nor_leases(app: TestApp) {
    let (mut sockets, _, held, processes) = workers_holding_one_each(&app, 1).await;
    let (socket, attempt, instance) = (&mut sockets[0], held[0], processes[0]);
    let path = logs::path(&app.data_dir, attempt.workitem);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();

    // More log frames than the server holds while it writes, then heartbeats for three
    // leases (the lease is 2 s).
    for n in 0..40 {
        let log = WorkerFrame::Log {
            attempt,
            lines: vec![format!("line {n}")],
        };
        send(socket, &log).await;
    }
    for _ in 0..12 {
        send(socket, &WorkerFrame::Heartbeat).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let row = Workitems::find_by_id(attempt.workitem)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.attempt, row.losses),
        (1, 0),
        "the worker was taken for lost"
    );
    assert_eq!(
        row.worker_id.map(|_| ()),
        Some(()),
        "the workitem is still held"
    );

    // The disk comes back: every line is written, then the reply counts.
    // Each write opens the pipe anew: read it until the last line came.
    let reader = std::thread::spawn(move || {
        let mut log = String::new();
        while !log.contains("line 39\n") {
            log.push_str(&std::fs::read_to_string(&path).unwrap());
        }
        log
    });
    send(
        socket,
        &WorkerFrame::Reply {
            attempt,
            outcome: done(),
        },
    )
    .await;
    assert_eq!(receive(socket).await, ServerFrame::Replied { attempt });
    wait_for_status(&app, instance, "finished").await;
    drop(sockets);
    let log = reader.join().unwrap();
    assert!(
        log.contains("line 0\n") && log.contains("line 39\n"),
        "{log}"
    );
}

fn done() -> Outcome {
    Outcome::Done {
        fields: Default::default(),
        command: None,
    }
}

/// Workers connected at once reply at once: the replies are written together, and each
/// worker hears what became of its own.
async fn replies_arriving_together_are_each_answered(app: TestApp) {
    let (mut sockets, _, held, processes) = workers_holding_one_each(&app, 8).await;
    // All reply at the same time; every other worker first sends a reply for an attempt
    // that is not current.
    futures_util::future::join_all(sockets.iter_mut().zip(&held).enumerate().map(
        |(n, (socket, &attempt))| async move {
            let stale = Attempt {
                attempt: attempt.attempt + 1,
                ..attempt
            };
            if n % 2 == 1 {
                let reply = WorkerFrame::Reply {
                    attempt: stale,
                    outcome: done(),
                };
                send(socket, &reply).await;
            }
            let reply = WorkerFrame::Reply {
                attempt,
                outcome: done(),
            };
            send(socket, &reply).await;
            let replied = ServerFrame::Replied { attempt };
            if n % 2 == 1 {
                // Replies are answered as they are written, not necessarily in order.
                let answers = [receive(socket).await, receive(socket).await];
                let refused = ServerFrame::Refused {
                    attempt: stale,
                    reason: "attempt 2 is stale: attempt 1 is current".into(),
                };
                assert!(answers.contains(&refused), "worker {n}: {answers:?}");
                assert!(answers.contains(&replied), "worker {n}: {answers:?}");
            } else {
                assert_eq!(receive(socket).await, replied);
            }
        },
    ))
    .await;
    for id in processes {
        wait_for_status(&app, id, "finished").await;
        assert_eq!(history(&app, id, "completed").await.len(), 1);
    }
}

/// Workers serving different participants are served in the same passes, each only with
/// workitems of participants it serves, oldest first.
async fn workers_get_only_what_they_serve(app: TestApp) {
    app::ssr::processes::participants::save(
        &app.db,
        &Actor::system(),
        app::ssr::processes::participants::ParticipantInput {
            name: "pack".into(),
            kind: "worker".into(),
            description: "Packs.".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    shell_definition(&app, "shell-one", &[json!(["true"])]).await;
    save(
        &app,
        "name: pack-one\nprocess:\n  sequence:\n    - participant: pack\n",
    )
    .await;
    let secret = token(&app, "split").await;
    let mut sockets = Vec::new();
    for (name, serves) in [("packer", "pack"), ("runner", "shell")] {
        let mut socket = connect(&app, &secret).await;
        send(&mut socket, &hello(name, &[serves], &[])).await;
        assert!(matches!(
            receive(&mut socket).await,
            ServerFrame::Welcome { .. }
        ));
        sockets.push(socket);
    }
    let mut launched = Vec::new();
    for name in ["pack-one", "shell-one", "pack-one", "shell-one"] {
        launched.push(launch(&app, name, json!({})).await);
    }
    // Each worker has one slot: it gets the oldest process of its participant, then the
    // next one once it has replied.
    for (socket, (serves, expected)) in sockets.iter_mut().zip([
        ("pack", [launched[0], launched[2]]),
        ("shell", [launched[1], launched[3]]),
    ]) {
        for process in expected {
            let ServerFrame::Workitem {
                attempt,
                instance,
                participant,
                ..
            } = receive(socket).await
            else {
                panic!("a workitem of {serves}");
            };
            assert_eq!((participant.as_str(), instance), (serves, process));
            send(
                socket,
                &WorkerFrame::Reply {
                    attempt,
                    outcome: done(),
                },
            )
            .await;
            assert_eq!(receive(socket).await, ServerFrame::Replied { attempt });
        }
    }
    for id in launched {
        wait_for_status(&app, id, "finished").await;
    }
}

/// Replies written in one batch are matched to the rows they name: a stale attempt, the
/// wrong worker or a second copy before or after the reply that counts takes nothing from
/// it.
async fn a_batch_of_replies_takes_each_attempt_once(app: TestApp) {
    let (_sockets, workers, held, processes) = workers_holding_one_each(&app, 2).await;
    let reply = |n: usize, attempt: i32, holder: i64| Reply {
        workitem: held[n].workitem,
        attempt,
        holder: Some(holder),
        outcome: done(),
        by: format!("many-{n}"),
    };
    let batch = vec![
        reply(0, 2, workers[0]),
        reply(0, 1, workers[1]),
        reply(0, 1, workers[0]),
        reply(0, 1, workers[0]),
        reply(1, 1, workers[1]),
    ];
    let txn = app::ssr::begin_write(&app.db).await.unwrap();
    let taken = instances::take_replies(&txn, batch).await.unwrap();
    txn.commit().await.unwrap();
    let replied = ReplyRefused::NotOut("replied".into());
    assert_eq!(
        taken,
        [
            Err(ReplyRefused::StaleAttempt {
                given: 2,
                current: 1
            }),
            Err(replied.clone()),
            Ok(processes[0]),
            Err(replied),
            Ok(processes[1]),
        ]
    );
    for id in processes {
        wait_for_status(&app, id, "finished").await;
        assert_eq!(history(&app, id, "completed").await.len(), 1);
    }
}

async fn a_lost_worker_is_retried_then_failed(app: TestApp) {
    let secret = token(&app, "ci").await;
    let workdir = tempfile::tempdir().unwrap();
    shell_definition(&app, "long", &[json!(["sleep", "60"])]).await;
    let id = launch(&app, "long", json!({})).await;

    // `shell` allows one attempt elsewhere after a lost worker.
    let mut first = worker_process(&app, &secret, "doomed-1", workdir.path());
    wait_for_dispatch(&app, id, 1).await;
    first.kill().unwrap();
    first.wait().unwrap();
    let mut second = worker_process(&app, &secret, "doomed-2", workdir.path());
    let retried = wait_for_dispatch(&app, id, 2).await;
    assert_eq!(retried.losses, 1);
    let retries = history(&app, id, "retried").await;
    assert!(
        retries
            .iter()
            .any(|r| r.contains("worker lost: doomed-1 stopped answering")
                && r.contains("attempt elsewhere 1 of 1")),
        "{retries:?}"
    );
    second.kill().unwrap();
    second.wait().unwrap();
    wait_for_status(&app, id, "error").await;
    let errors = history(&app, id, "failed").await;
    assert!(
        errors
            .iter()
            .any(|e| e.contains("worker lost: doomed-2 stopped answering")),
        "{errors:?}"
    );

    // With the policy at no attempts elsewhere, the first loss fails the step.
    Participants::update_many()
        .col_expr(ParticipantColumn::WorkerLossRetries, Expr::value(0))
        .filter(ParticipantColumn::Name.eq("shell"))
        .exec(&app.db)
        .await
        .unwrap();
    let id = launch(&app, "long", json!({})).await;
    let mut third = worker_process(&app, &secret, "doomed-3", workdir.path());
    wait_for_dispatch(&app, id, 1).await;
    third.kill().unwrap();
    third.wait().unwrap();
    wait_for_status(&app, id, "error").await;
    let errors = history(&app, id, "failed").await;
    assert!(
        errors.iter().any(|e| e.contains("worker lost: doomed-3")),
        "{errors:?}"
    );
}

async fn administrators_manage_tokens_and_workers(app: TestApp) {
    let admin = app.admin().await;
    app.create_user("dana", "dana-password-1", false).await;
    let dana = app.logged_in("dana", "dana-password-1").await;

    // Only administrators see and make tokens.
    for (endpoint, form) in [
        ("list_worker_tokens", vec![]),
        ("create_worker_token", vec![("name", "sneaky")]),
        ("revoke_worker_token", vec![("id", "1")]),
        ("drain_worker", vec![("id", "1"), ("draining", "true")]),
        ("disconnect_worker", vec![("id", "1")]),
    ] {
        let response = dana.call(endpoint, &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{endpoint}");
    }
    assert_invalid(
        admin
            .call("create_worker_token", &[("name", "has space")])
            .await,
        "name",
    )
    .await;
    let response = admin
        .call("create_worker_token", &[("name", "host-a")])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let created: Value = response.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let token_id = created["token"]["id"].as_i64().unwrap().to_string();
    assert!(secret.starts_with(created["token"]["prefix"].as_str().unwrap()));
    let taken = admin
        .call("create_worker_token", &[("name", "host-a")])
        .await;
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    let listed: Value = admin
        .call("list_worker_tokens", &[])
        .await
        .json()
        .await
        .unwrap();
    assert!(
        !listed.to_string().contains(&secret),
        "the secret is never listed again"
    );

    let workdir = tempfile::tempdir().unwrap();
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(
        Worker::new(config(&app, &secret, "host-a", workdir.path())).run(shutdown.clone()),
    );
    let workers = wait_for_workers(&dana, |w| w[0]["state"] == "online").await;
    let worker_id = workers[0]["id"].as_i64().unwrap().to_string();
    assert_eq!(workers[0]["token"], "host-a");

    // Draining: nothing new is handed to it until it resumes.
    let response = admin
        .call("drain_worker", &[("id", &worker_id), ("draining", "true")])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    wait_for_workers(&dana, |w| w[0]["state"] == "draining").await;
    shell_definition(&app, "echo", &[json!(["echo", "hi"])]).await;
    let id = launch(&app, "echo", json!({})).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let waiting = Workitems::find()
        .filter(WorkitemColumn::InstanceId.eq(id))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        waiting.state, "queued",
        "a draining worker takes nothing new"
    );
    let shell = shell_participant(&dana).await;
    assert_eq!(shell["queued"], 1);
    assert_eq!(shell["workers"], json!([]));
    admin
        .call("drain_worker", &[("id", &worker_id), ("draining", "false")])
        .await;
    wait_for_status(&app, id, "finished").await;
    let shell = shell_participant(&dana).await;
    assert_eq!(
        (shell["queued"].as_i64(), shell["workers"].clone()),
        (Some(0), json!(["host-a"]))
    );
    assert!(shell["recent_median_ms"].is_i64(), "{shell}");

    // Revoking the token disconnects the worker for good.
    let response = admin
        .call("revoke_worker_token", &[("id", &token_id)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let stopped = tokio::time::timeout(Duration::from_secs(20), worker)
        .await
        .unwrap()
        .unwrap();
    assert!(format!("{:#}", stopped.unwrap_err()).contains("revoked"));
    wait_for_workers(&dana, |w| w[0]["state"] == "offline").await;
    for action in ["worker_token.create", "worker_token.revoke"] {
        assert_eq!(
            audit_rows(&app, action, "worker_token", &token_id)
                .await
                .len(),
            1,
            "{action}"
        );
    }
    assert_eq!(
        audit_rows(&app, "worker.drain", "worker", &worker_id)
            .await
            .len(),
        1
    );
    assert_eq!(
        audit_rows(&app, "worker.resume", "worker", &worker_id)
            .await
            .len(),
        1
    );
    shutdown.cancel();
}

/// The `shell` row of the Participants page, as `client` sees it.
async fn shell_participant(client: &crate::helpers::Client) -> Value {
    let participants: Value = client
        .call("list_participants", &[])
        .await
        .json()
        .await
        .unwrap();
    participants
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "shell")
        .cloned()
        .unwrap()
}

/// Lists workers as `client` until `check` holds (up to 20 s).
async fn wait_for_workers(
    client: &crate::helpers::Client,
    check: impl Fn(&Vec<Value>) -> bool,
) -> Vec<Value> {
    let mut last = Vec::new();
    for _ in 0..200 {
        let overview: Value = client.call("list_workers", &[]).await.json().await.unwrap();
        last = overview["workers"].as_array().cloned().unwrap_or_default();
        if !last.is_empty() && check(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("workers never matched: {last:?}");
}
