//! Builds against a real server and real workers: a build of a project running
//! `fake-bitbake` after fetching a git layer, its log, progress, tasks and messages; a failing
//! build; secrets kept out of the log; rebuilds; who may start and read builds; a worker lost
//! mid-build; and steps waiting for the worker they name.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use app::ssr::audit::Actor;
use app::ssr::builds::logs;
use app::ssr::entities::builds::{Column as BuildColumn, Entity as Builds, Model as Build};
use app::ssr::entities::workitems::{Column as WorkitemColumn, Entity as Workitems};
use app::ssr::workers::tokens;
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::engine::{launch, save, wait_for_status};
use crate::helpers::{
    Client, TestApp, app_error, assert_invalid, audit_rows, fake_bitbake, on_each_database,
};
use crate::projects::create_project;

mod embedded {
    use super::*;
    on_each_database!(
        configure = |settings| settings.embedded_workers = 1;
        a_build_fetches_its_layers_runs_and_is_read_as_it_goes,
        a_failing_build_shows_its_failed_task_and_error,
        secrets_never_reach_the_log,
        builds_need_a_configuration_and_the_build_permission,
        hostile_log_lines_are_kept_as_text_and_cut,
        the_demo_project_is_made_once,
        builds_are_cancelled_hidden_and_deleted,
        all_builds_are_filtered_and_only_of_viewable_projects,
        the_whole_log_is_read_by_line_searched_and_downloaded,
        a_project_chooses_the_workflow_its_builds_run,
    );
}

mod two_workers {
    use super::*;
    on_each_database!(
        configure = |settings| settings.embedded_workers = 2;
        builds_share_a_configured_directory_one_at_a_time,
    );
}

mod external {
    use super::*;
    on_each_database!(
        configure = |settings| {
            settings.embedded_workers = 0;
            settings.worker_lease = std::time::Duration::from_secs(2);
        };
        a_worker_lost_mid_build_fails_it_and_keeps_its_log,
        a_step_naming_a_worker_waits_for_that_worker,
    );
}

pub(crate) async fn ok(client: &Client, endpoint: &str, form: &[(&str, &str)]) -> Value {
    let response = client.call(endpoint, form).await;
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{endpoint} {form:?}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// A git repository with one commit on `main`; returns the commit.
fn git_layer(dir: &Path) -> String {
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .args(["-c", "user.name=Kiln", "-c", "user.email=kiln@example.com"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(output.status.success(), "git {args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    git(&["init", "--quiet", "--initial-branch=main"]);
    std::fs::create_dir_all(dir.join("conf")).unwrap();
    std::fs::write(
        dir.join("conf/layer.conf"),
        "BBFILE_COLLECTIONS += \"demo\"\n",
    )
    .unwrap();
    git(&["add", "."]);
    git(&["commit", "--quiet", "-m", "A layer"]);
    git(&["rev-parse", "HEAD"])
}

/// A project `slug` building `targets` for qemux86-64 with `variables` (name, value,
/// secret), whose build workflow runs `command` instead of `bitbake`.
pub(crate) async fn project(
    client: &Client,
    slug: &str,
    targets: &str,
    variables: &[(&str, &str, bool)],
    command: Value,
) {
    create_project(client, slug, &[]).await;
    ok(
        client,
        "save_basics",
        &[
            ("slug", slug),
            ("release", "scarthgap"),
            ("machine", "qemux86-64"),
            ("distro", "poky"),
            ("image_targets", targets),
            ("packages", ""),
        ],
    )
    .await;
    for (name, value, secret) in variables {
        let secret = if *secret { "true" } else { "false" };
        ok(
            client,
            "set_variable",
            &[
                ("slug", slug),
                ("name", name),
                ("kind", "string"),
                ("value", value),
                ("secret", secret),
            ],
        )
        .await;
    }
    let source = app::ssr::builds::STANDARD_DEFINITION
        .replace("command: [bitbake]", &format!("command: {command}"));
    assert_ne!(source, app::ssr::builds::STANDARD_DEFINITION);
    ok(
        client,
        "save_definition",
        &[("project", slug), ("source", &source)],
    )
    .await;
}

pub(crate) async fn start(client: &Client, slug: &str) -> i32 {
    let number = ok(client, "start_build", &[("project", slug)]).await;
    i32::try_from(number.as_i64().unwrap()).unwrap()
}

/// Every task of build `number` of `slug`, as its page's task table loads them.
pub(crate) async fn tasks(client: &Client, slug: &str, number: i32) -> Vec<Value> {
    let tasks = ok(
        client,
        "read_build_tasks",
        &[("project", slug), ("number", &number.to_string())],
    )
    .await;
    tasks.as_array().unwrap().clone()
}

pub(crate) async fn read(client: &Client, slug: &str, number: i32) -> Value {
    ok(
        client,
        "read_build",
        &[("project", slug), ("number", &number.to_string())],
    )
    .await
}

/// Waits (up to 30 s) until build `number` of `slug` is in `state`; returns its view.
pub(crate) async fn wait_for_state(client: &Client, slug: &str, number: i32, state: &str) -> Value {
    let mut view = Value::Null;
    for _ in 0..1500 {
        view = read(client, slug, number).await;
        if view["summary"]["state"] == state {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("build {number} of {slug} is not {state}: {view:#}");
}

pub(crate) async fn build_row(app: &TestApp, number: i32) -> Build {
    Builds::find()
        .filter(BuildColumn::Number.eq(number))
        .all(&app.db)
        .await
        .unwrap()
        .pop()
        .unwrap()
}

pub(crate) fn log_text(app: &TestApp, build: &Build) -> String {
    std::fs::read_to_string(logs::path(&app.data_dir, build.project_id, build.number))
        .unwrap_or_default()
}

async fn a_build_fetches_its_layers_runs_and_is_read_as_it_goes(app: TestApp) {
    let admin = app.admin().await;
    let layer = tempfile::tempdir().unwrap();
    let commit = git_layer(layer.path());
    project(
        &admin,
        "demo",
        "core-image-minimal",
        &[
            ("FAKE_BITBAKE_TASKS", "24", false),
            ("FAKE_BITBAKE_TASK_MS", "5", false),
        ],
        json!([fake_bitbake()]),
    )
    .await;
    let url = format!("file://{}", layer.path().display());
    ok(
        &admin,
        "add_layer",
        &[
            ("slug", "demo"),
            ("name", "meta-demo"),
            ("source", "git"),
            ("url", &url),
            ("git_ref", "main"),
            ("subdirectory", ""),
        ],
    )
    .await;

    let number = start(&admin, "demo").await;
    assert_eq!(number, 1);
    let view = wait_for_state(&admin, "demo", number, "succeeded").await;
    let summary = &view["summary"];
    assert_eq!(summary["targets"], "core-image-minimal");
    assert_eq!(summary["machine"], "qemux86-64");
    assert_eq!(summary["tasks_total"], 24, "{view:#}");
    assert_eq!(summary["tasks_done"], 24);
    assert_eq!(summary["parse_percent"], 100);
    assert_eq!(summary["errors"], 0);
    assert!(summary["warnings"].as_u64().unwrap() >= 1, "{view:#}");
    assert!(view["process"].as_i64().is_some());

    // Where it ran, and what the layer resolved to, are kept with the build.
    let directory = view["directory"].as_str().unwrap();
    assert!(directory.ends_with("/build"), "{directory}");
    assert!(!view["host"].as_str().unwrap().is_empty());
    assert_eq!(view["snapshot"]["layer_commits"]["meta-demo"], commit);
    assert_eq!(view["snapshot"]["revision"], 4);
    let local_conf = std::fs::read_to_string(Path::new(directory).join("conf/local.conf")).unwrap();
    assert!(
        local_conf.contains("MACHINE ?= \"qemux86-64\""),
        "{local_conf}"
    );
    let bblayers =
        std::fs::read_to_string(Path::new(directory).join("conf/bblayers.conf")).unwrap();
    assert!(bblayers.contains("/../layers/meta-demo"), "{bblayers}");
    assert!(
        Path::new(directory)
            .join("../layers/meta-demo/conf/layer.conf")
            .is_file()
    );

    // Every task, as the output reported it.
    assert_eq!(view["task_count"], 24, "{view:#}");
    assert_eq!(view["failed_tasks"], json!([]));
    let tasks = tasks(&admin, "demo", number).await;
    assert_eq!(tasks.len(), 24, "{tasks:#?}");
    assert!(
        tasks
            .iter()
            .all(|t| t["outcome"] == "succeeded" && t["duration_ms"].is_i64())
    );
    let warning = &view["messages"][0];
    assert_eq!(warning["level"], "warning");
    let build = build_row(&app, number).await;
    let log = log_text(&app, &build);
    let line = log
        .lines()
        .nth(usize::try_from(warning["line"].as_i64().unwrap() - 1).unwrap())
        .unwrap();
    assert!(line.starts_with("WARNING: "), "{line}");
    assert!(log.contains("[kiln] layer meta-demo is at"), "{log}");
    assert!(log.contains("NOTE: Tasks Summary"), "{log}");
    assert_eq!(u64::try_from(build.log_bytes).unwrap(), log.len() as u64);
    assert_eq!(
        usize::try_from(build.log_lines).unwrap(),
        log.lines().count()
    );

    // Each step got the fields of the one before, what it was launched with included:
    // the last step still knows the build and the worker its directory is on.
    let collect = Workitems::find()
        .filter(WorkitemColumn::InstanceId.eq(view["process"].as_i64().unwrap()))
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .find(|w| w.params.contains("\"collect\""))
        .unwrap();
    let fields: Value = serde_json::from_str(&collect.fields).unwrap();
    assert_eq!(fields["project"], "demo", "{fields}");
    assert_eq!(fields["build_number"], 1);
    assert_eq!(fields["exit_status"], 0);
    assert!(fields["build_worker"].is_string(), "{fields}");
    assert_eq!(
        collect.on_worker,
        fields["build_worker"].as_str().map(str::to_owned)
    );

    // Lists show it; a rebuild builds the same commit again under the next number.
    let list = ok(&admin, "list_builds", &[("project", "demo")]).await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["state"], "succeeded");
    let again = ok(&admin, "rebuild", &[("project", "demo"), ("number", "1")]).await;
    assert_eq!(again, 2);
    let view = wait_for_state(&admin, "demo", 2, "succeeded").await;
    assert_eq!(view["rebuild_of"], 1);
    assert_eq!(view["snapshot"]["layer_commits"]["meta-demo"], commit);
    assert_eq!(
        audit_rows(&app, "build.start", "build", &build.id.to_string())
            .await
            .len(),
        1
    );
}

async fn a_failing_build_shows_its_failed_task_and_error(app: TestApp) {
    let admin = app.admin().await;
    project(
        &admin,
        "failing",
        "core-image-minimal",
        &[
            ("FAKE_BITBAKE_TASK_MS", "1", false),
            ("FAKE_BITBAKE_FAIL", "busybox:do_compile", false),
        ],
        json!([fake_bitbake()]),
    )
    .await;
    let number = start(&admin, "failing").await;
    let view = wait_for_state(&admin, "failing", number, "failed").await;
    let failed = view["failed_tasks"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{view:#}");
    let all = tasks(&admin, "failing", number).await;
    assert_eq!(
        all.iter().filter(|t| t["outcome"] == "failed").count(),
        1,
        "{all:#?}"
    );
    assert_eq!(failed[0]["recipe"], "busybox");
    assert_eq!(failed[0]["task"], "do_compile");
    let errors: Vec<&Value> = view["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["level"] == "error")
        .collect();
    assert!(!errors.is_empty(), "{view:#}");
    assert!(
        errors
            .iter()
            .any(|e| e["text"].as_str().unwrap().contains("busybox")),
        "{errors:?}"
    );
    assert_eq!(
        view["summary"]["errors"].as_u64().unwrap(),
        errors.len() as u64
    );
    let failure = view["failure"].as_str().unwrap();
    assert!(failure.contains("exited with status 1"), "{failure}");
}

async fn secrets_never_reach_the_log(app: TestApp) {
    let admin = app.admin().await;
    // The "build" prints the generated local.conf, then fails on the target, which is no
    // file; lines with markup and escapes are stored as they were printed.
    project(
        &admin,
        "secretive",
        "no-such-file",
        &[
            ("API_TOKEN", "t0p-s3cret-value", true),
            ("GREETING", "<script>alert(1)</script>", false),
        ],
        json!(["cat", "conf/local.conf"]),
    )
    .await;
    let number = start(&admin, "secretive").await;
    let view = wait_for_state(&admin, "secretive", number, "failed").await;
    let build = build_row(&app, number).await;
    let log = log_text(&app, &build);
    assert!(log.contains("API_TOKEN = \"********\""), "{log}");
    assert!(
        log.contains("GREETING = \"<script>alert(1)</script>\""),
        "{log}"
    );
    assert!(!log.contains("t0p-s3cret-value"), "{log}");
    assert!(!view.to_string().contains("t0p-s3cret-value"));
    let process = view["process"].as_i64().unwrap();
    let fields = ok(&admin, "process_detail", &[("id", &process.to_string())]).await;
    assert!(!fields.to_string().contains("t0p-s3cret-value"));
}

async fn builds_need_a_configuration_and_the_build_permission(app: TestApp) {
    let admin = app.admin().await;
    create_project(&admin, "empty", &[("other_permissions[view]", "true")]).await;
    assert_invalid(
        admin.call("start_build", &[("project", "empty")]).await,
        "configuration",
    )
    .await;
    ok(
        &admin,
        "save_basics",
        &[
            ("slug", "empty"),
            ("release", ""),
            ("machine", "qemux86-64"),
            ("distro", ""),
            ("image_targets", ""),
            ("packages", ""),
        ],
    )
    .await;
    assert_invalid(
        admin.call("start_build", &[("project", "empty")]).await,
        "image_targets",
    )
    .await;
    assert_eq!(Builds::find().count(&app.db).await.unwrap(), 0);

    // A viewer reads builds but cannot start one; a stranger's project does not exist.
    project(
        &admin,
        "shared",
        "core-image-minimal",
        &[],
        json!([fake_bitbake()]),
    )
    .await;
    ok(
        &admin,
        "set_project_sharing",
        &[("slug", "shared"), ("other_permissions[view]", "true")],
    )
    .await;
    app.create_user("viewer", "viewer-password", false).await;
    let viewer = app.logged_in("viewer", "viewer-password").await;
    let response = viewer.call("start_build", &[("project", "shared")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let number = start(&admin, "shared").await;
    assert_eq!(read(&viewer, "shared", number).await["can_build"], false);
    assert_eq!(read(&admin, "shared", number).await["can_build"], true);
    create_project(&admin, "private", &[]).await;
    let response = viewer.call("list_builds", &[("project", "private")]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = viewer
        .call("read_build", &[("project", "shared"), ("number", "99")])
        .await;
    assert!(matches!(
        app_error(response).await,
        app::error::AppError::NotFound
    ));
    assert_eq!(
        app.client()
            .call("start_build", &[("project", "shared")])
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    wait_for_state(&admin, "shared", number, "succeeded").await;
}

pub(crate) async fn token(app: &TestApp, name: &str) -> String {
    tokens::create(&app.db, &Actor::system(), name)
        .await
        .unwrap()
        .secret
}

/// A `kiln worker` process serving `participants`; `fake-bitbake` sits beside it.
pub(crate) fn worker_process(
    app: &TestApp,
    token: &str,
    name: &str,
    participants: &str,
    workdir: &Path,
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "worker",
            "--server",
            &app.base,
            "--name",
            name,
            "--participants",
            participants,
            "--workdir",
        ])
        .arg(workdir)
        .env("KILN_WORKER_TOKEN", token)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn a_worker_lost_mid_build_fails_it_and_keeps_its_log(app: TestApp) {
    let admin = app.admin().await;
    project(
        &admin,
        "fragile",
        "core-image-minimal",
        &[
            ("FAKE_BITBAKE_TASKS", "400", false),
            ("FAKE_BITBAKE_TASK_MS", "50", false),
        ],
        // A bare name: the worker finds it beside itself.
        json!(["fake-bitbake"]),
    )
    .await;
    let secret = token(&app, "builders").await;
    let workdir = tempfile::tempdir().unwrap();
    let mut worker = worker_process(&app, &secret, "doomed", "build", workdir.path());
    let number = start(&admin, "fragile").await;
    for _ in 0..1500 {
        let view = read(&admin, "fragile", number).await;
        if view["summary"]["tasks_done"].as_u64().unwrap_or(0) >= 3 {
            assert_eq!(view["summary"]["state"], "building");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.kill().unwrap();
    worker.wait().unwrap();
    let view = wait_for_state(&admin, "fragile", number, "failed").await;
    let failure = view["failure"].as_str().unwrap();
    assert!(failure.contains("worker lost: doomed"), "{failure}");
    let build = build_row(&app, number).await;
    let log = log_text(&app, &build);
    assert!(log.contains("Running task 3 of 400"), "{log}");
    assert!(build.log_lines > 0);
}

async fn a_step_naming_a_worker_waits_for_that_worker(app: TestApp) {
    save(
        &app,
        "name: pinned\nprocess:\n  sequence:\n    - participant: shell\n      params: { command: [\"true\"], on_worker: \"${where}\" }\n",
    )
    .await;
    let secret = token(&app, "pool").await;
    let workdir = tempfile::tempdir().unwrap();
    let mut first = worker_process(&app, &secret, "first", "shell", workdir.path());
    let id = launch(&app, "pinned", json!({ "where": "second" })).await;
    // `first` serves shell too, but the step waits for `second`.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let queued = Workitems::find()
        .filter(WorkitemColumn::InstanceId.eq(id))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(queued.state, "queued");
    assert_eq!(queued.on_worker.as_deref(), Some("second"));
    let mut second = worker_process(&app, &secret, "second", "shell", workdir.path());
    wait_for_status(&app, id, "finished").await;
    let done = Workitems::find_by_id(queued.id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let worker = app::ssr::entities::workers::Entity::find_by_id(done.worker_id.unwrap())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(worker.name, "second");
    for child in [&mut first, &mut second] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

async fn hostile_log_lines_are_kept_as_text_and_cut(app: TestApp) {
    let admin = app.admin().await;
    project(
        &admin,
        "hostile",
        "core-image-minimal",
        &[
            ("FAKE_BITBAKE_TASKS", "3", false),
            ("FAKE_BITBAKE_TASK_MS", "1", false),
        ],
        json!([fake_bitbake()]),
    )
    .await;
    let number = start(&admin, "hostile").await;
    wait_for_state(&admin, "hostile", number, "succeeded").await;
    let build = build_row(&app, number).await;
    let step = Workitems::find()
        .filter(WorkitemColumn::InstanceId.eq(build.instance_id.unwrap()))
        .filter(WorkitemColumn::Participant.eq("build"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let before = build.log_lines;
    let lines = vec![
        "y".repeat(10 * 1024 * 1024),
        "NOTE: recipe <img src=x onerror=alert(1)>-1.0-r0: task do_<b>x</b>: Started".to_owned(),
        "ERROR: \u{1b}[31m<script>alert(1)</script>\u{1b}[0m \u{fffd}".to_owned(),
    ];
    let logs = logs::BuildLogs::new(Default::default(), app.secrets.clone());
    let taken = logs
        .ingest(&app.db, &app.data_dir, step.id, &lines)
        .await
        .unwrap();
    assert_eq!(taken.map(|t| t.build), Some(build.id));
    let view = read(&admin, "hostile", number).await;
    let task = tasks(&admin, "hostile", number)
        .await
        .into_iter()
        .find(|t| t["task"] == "do_<b>x</b>")
        .unwrap();
    assert_eq!(task["recipe"], "<img src=x onerror=alert(1)>");
    let error = &view["messages"].as_array().unwrap().last().unwrap().clone();
    // Read without its colours, as shown; the log keeps them.
    assert_eq!(error["text"], "<script>alert(1)</script> \u{fffd}");
    assert_eq!(error["line"], before + 3);
    let log = log_text(&app, &build_row(&app, number).await);
    let long = log.lines().nth(usize::try_from(before).unwrap()).unwrap();
    assert_eq!(
        long.len(),
        app::ssr::workers::protocol::MAX_LOG_LINE_BYTES + " [kiln: line cut]".len()
    );
    assert!(long.ends_with(" [kiln: line cut]"));
    assert_eq!(
        usize::try_from(build_row(&app, number).await.log_lines).unwrap(),
        log.lines().count()
    );

    // A full log says so once, and takes nothing more.
    let size = log.len() as u64;
    let small = logs::BuildLogs::with_limit(Default::default(), app.secrets.clone(), size + 100);
    let more: Vec<String> = (0..10)
        .map(|i| format!("line {i} of forty bytes......"))
        .collect();
    small
        .ingest(&app.db, &app.data_dir, step.id, &more)
        .await
        .unwrap();
    small
        .ingest(&app.db, &app.data_dir, step.id, &more)
        .await
        .unwrap();
    let log = log_text(&app, &build_row(&app, number).await);
    assert!(log.len() as u64 <= size + 100, "{}", log.len());
    assert_eq!(
        log.matches("the build log reached its size limit").count(),
        1
    );
    assert!(log.contains("line 0 of forty"));
    assert!(!log.contains("line 9 of forty"));
    // A server started again knows the log is full.
    let restarted =
        logs::BuildLogs::with_limit(Default::default(), app.secrets.clone(), size + 100);
    restarted
        .ingest(&app.db, &app.data_dir, step.id, &more)
        .await
        .unwrap();
    assert_eq!(log_text(&app, &build_row(&app, number).await), log);
}

async fn the_demo_project_is_made_once(app: TestApp) {
    assert!(server::demo::ensure(&app.db, &app.secrets).await.unwrap());
    assert!(!server::demo::ensure(&app.db, &app.secrets).await.unwrap());
    let admin = app.admin().await;
    let project = ok(&admin, "project", &[("slug", "demo")]).await;
    assert_eq!(project["owner"], "admin");
    let definition = ok(
        &admin,
        "read_definition",
        &[("project", "demo"), ("name", "standard-build")],
    )
    .await;
    assert!(
        definition["source"]
            .as_str()
            .unwrap()
            .contains("command: [fake-bitbake]")
    );
    // Its configuration is complete enough to build.
    assert_eq!(start(&admin, "demo").await, 1);
}

async fn builds_are_cancelled_hidden_and_deleted(app: TestApp) {
    let admin = app.admin().await;
    project(
        &admin,
        "managed",
        "core-image-minimal",
        &[
            ("FAKE_BITBAKE_TASKS", "400", false),
            ("FAKE_BITBAKE_TASK_MS", "50", false),
        ],
        json!([fake_bitbake()]),
    )
    .await;
    ok(
        &admin,
        "set_project_sharing",
        &[("slug", "managed"), ("other_permissions[view]", "true")],
    )
    .await;
    app.create_user("viewer", "viewer-password", false).await;
    let viewer = app.logged_in("viewer", "viewer-password").await;
    let number = start(&admin, "managed").await;
    let form = [("project", "managed"), ("number", "1")];
    wait_for_state(&admin, "managed", number, "building").await;

    // Deleting a running build is refused; a viewer may neither cancel nor delete.
    assert_invalid(admin.call("delete_build", &form).await, "build").await;
    assert_eq!(
        viewer.call("cancel_build", &form).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        viewer.call("delete_build", &form).await.status(),
        StatusCode::FORBIDDEN
    );
    ok(&admin, "cancel_build", &form).await;
    let view = wait_for_state(&admin, "managed", number, "cancelled").await;
    let mut stopped = view;
    for _ in 0..500 {
        if stopped["summary"]["finished_at"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        stopped = read(&admin, "managed", number).await;
    }
    assert!(stopped["summary"]["finished_at"].is_string(), "{stopped:#}");
    assert_invalid(admin.call("cancel_build", &form).await, "build").await;

    // Hidden builds leave the list unless asked for.
    ok(
        &admin,
        "set_build_hidden",
        &[("project", "managed"), ("number", "1"), ("hidden", "true")],
    )
    .await;
    let list = ok(&admin, "list_builds", &[("project", "managed")]).await;
    assert_eq!(list["total"], 0);
    let list = ok(
        &admin,
        "list_builds",
        &[("project", "managed"), ("show_hidden", "true")],
    )
    .await;
    assert_eq!(list["items"][0]["hidden"], true);
    ok(
        &admin,
        "set_build_hidden",
        &[("project", "managed"), ("number", "1"), ("hidden", "false")],
    )
    .await;
    let list = ok(&admin, "list_builds", &[("project", "managed")]).await;
    assert_eq!(list["total"], 1);

    // Deleting removes the record, its process and its files.
    let build = build_row(&app, number).await;
    let dir = logs::build_dir(&app.data_dir, build.project_id, build.number);
    assert!(dir.join("build.log").is_file());
    ok(&admin, "delete_build", &form).await;
    assert_eq!(
        admin.call("read_build", &form).await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(!dir.exists());
    assert_eq!(Builds::find().count(&app.db).await.unwrap(), 0);
    let process =
        app::ssr::entities::process_instances::Entity::find_by_id(build.instance_id.unwrap())
            .one(&app.db)
            .await
            .unwrap();
    assert!(process.is_none());
    let id = build.id.to_string();
    for action in [
        "build.start",
        "build.cancel",
        "build.hide",
        "build.unhide",
        "build.delete",
    ] {
        assert_eq!(
            audit_rows(&app, action, "build", &id).await.len(),
            1,
            "{action}"
        );
    }

    // The deleted build was the newest, yet its number is not given again.
    let next = start(&admin, "managed").await;
    assert_eq!(next, number + 1, "a deleted build's number is never reused");
    ok(
        &admin,
        "cancel_build",
        &[("project", "managed"), ("number", &next.to_string())],
    )
    .await;
}

/// The All builds list as `client` sees it with `filter`: the total and each build as
/// `project#number`.
async fn all_builds(client: &Client, filter: &[(&str, &str)]) -> (u64, Vec<String>) {
    let form: Vec<(String, &str)> = filter
        .iter()
        .map(|(key, value)| (format!("filter[{key}]"), *value))
        .collect();
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let page = ok(client, "list_all_builds", &form).await;
    let names = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| format!("{}#{}", b["project"].as_str().unwrap(), b["number"]))
        .collect();
    (page["total"].as_u64().unwrap(), names)
}

async fn all_builds_are_filtered_and_only_of_viewable_projects(app: TestApp) {
    let admin = app.admin().await;
    let quick = [
        ("FAKE_BITBAKE_TASKS", "10", false),
        ("FAKE_BITBAKE_TASK_MS", "1", false),
    ];
    project(
        &admin,
        "alpha",
        "core-image-minimal",
        &quick,
        json!([fake_bitbake()]),
    )
    .await;
    let mut failing = quick.to_vec();
    failing.push(("FAKE_BITBAKE_FAIL", "yes", false));
    project(
        &admin,
        "beta",
        "core-image-sato",
        &failing,
        json!([fake_bitbake()]),
    )
    .await;
    let alpha = start(&admin, "alpha").await;
    wait_for_state(&admin, "alpha", alpha, "succeeded").await;
    let beta = start(&admin, "beta").await;
    wait_for_state(&admin, "beta", beta, "failed").await;

    assert_eq!(
        all_builds(&admin, &[]).await,
        (2, vec!["beta#1".to_owned(), "alpha#1".to_owned()])
    );
    let today = chrono::Utc::now().date_naive().to_string();
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .date_naive()
        .to_string();
    for (filter, expected) in [
        (vec![("project", "beta")], vec!["beta#1"]),
        (vec![("project", "nowhere")], vec![]),
        (vec![("state", "failed")], vec!["beta#1"]),
        (vec![("state", "succeeded")], vec!["alpha#1"]),
        (vec![("state", "running")], vec![]),
        (vec![("target", "core-image-sato")], vec!["beta#1"]),
        (vec![("target", "core-image")], vec![]),
        (vec![("user", "ADMIN")], vec!["beta#1", "alpha#1"]),
        (vec![("user", "nobody")], vec![]),
        (
            vec![("from", today.as_str()), ("to", today.as_str())],
            vec!["beta#1", "alpha#1"],
        ),
        (vec![("from", tomorrow.as_str())], vec![]),
        (vec![("state", "succeeded"), ("project", "beta")], vec![]),
    ] {
        let (_, names) = all_builds(&admin, &filter).await;
        assert_eq!(names, expected, "{filter:?}");
    }
    for (field, value) in [
        ("state", "exploded"),
        ("from", "2026-13-01"),
        ("target", "a%b"),
        ("user", "a\u{7}b"),
    ] {
        let form = [(format!("filter[{field}]"), value)];
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_invalid(admin.call("list_all_builds", &form).await, field).await;
    }
    let backwards = [
        ("filter[from]", tomorrow.as_str()),
        ("filter[to]", today.as_str()),
    ];
    assert_invalid(admin.call("list_all_builds", &backwards).await, "to").await;

    // Hidden builds only when asked for.
    ok(
        &admin,
        "set_build_hidden",
        &[("project", "alpha"), ("number", "1"), ("hidden", "true")],
    )
    .await;
    assert_eq!(all_builds(&admin, &[]).await.0, 1);
    assert_eq!(all_builds(&admin, &[("hidden", "true")]).await.0, 2);

    // Someone sees the builds of the projects they may view, and no others.
    ok(
        &admin,
        "set_project_sharing",
        &[("slug", "alpha"), ("other_permissions[view]", "true")],
    )
    .await;
    app.create_user("viewer", "viewer-password", false).await;
    let viewer = app.logged_in("viewer", "viewer-password").await;
    assert_eq!(
        all_builds(&viewer, &[("hidden", "true")]).await,
        (1, vec!["alpha#1".to_owned()])
    );
    assert_eq!(all_builds(&viewer, &[("project", "beta")]).await.0, 0);
    assert_eq!(
        app.client().call("list_all_builds", &[]).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn the_whole_log_is_read_by_line_searched_and_downloaded(app: TestApp) {
    let admin = app.admin().await;
    project(
        &admin,
        "long",
        "core-image-minimal",
        &[
            ("FAKE_BITBAKE_TASKS", "1500", false),
            ("FAKE_BITBAKE_TASK_MS", "0", false),
        ],
        json!([fake_bitbake()]),
    )
    .await;
    let number = start(&admin, "long").await;
    wait_for_state(&admin, "long", number, "succeeded").await;
    let build = build_row(&app, number).await;
    let text = log_text(&app, &build);
    let file: Vec<&str> = text.lines().collect();
    assert!(file.len() > 4000, "{}", file.len());
    let index = std::fs::metadata(app::ssr::builds::log_reader::index_path(&logs::path(
        &app.data_dir,
        build.project_id,
        number,
    )))
    .unwrap();
    assert_eq!(index.len(), 8 * file.len().div_ceil(1000) as u64);
    let plain = |line: &Value| -> String {
        line.as_array()
            .unwrap()
            .iter()
            .map(|run| run["text"].as_str().unwrap())
            .collect()
    };

    // Any stretch, by line number; or the end.
    let n = number.to_string();
    let slice = ok(
        &admin,
        "read_build_log",
        &[
            ("project", "long"),
            ("number", &n),
            ("first", "2999"),
            ("count", "3"),
        ],
    )
    .await;
    assert_eq!(slice["first_line"], 2999);
    let lines: Vec<String> = slice["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(plain)
        .collect();
    assert_eq!(lines, file[2998..3001]);
    let tail = ok(
        &admin,
        "read_build_log",
        &[("project", "long"), ("number", &n)],
    )
    .await;
    let last: Vec<String> = tail["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(plain)
        .collect();
    assert_eq!(last.last().map(String::as_str), file.last().copied());
    assert_eq!(tail["total_lines"], file.len());

    // Searched on the server, ignoring case, from any line on.
    let found = ok(
        &admin,
        "search_build_log",
        &[
            ("project", "long"),
            ("number", &n),
            ("query", "TASKS SUMMARY"),
        ],
    )
    .await;
    let matches = found["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 1, "{found:#}");
    let line = usize::try_from(matches[0][0].as_u64().unwrap()).unwrap();
    assert!(file[line - 1].contains("Tasks Summary"));
    let found = ok(
        &admin,
        "search_build_log",
        &[("project", "long"), ("number", &n), ("query", "do_compile")],
    )
    .await;
    assert_eq!(found["matches"].as_array().unwrap().len(), 200);
    assert!(found["more_after"].as_u64().is_some());
    for query in ["", &"x".repeat(257)] {
        let response = admin
            .call(
                "search_build_log",
                &[("project", "long"), ("number", &n), ("query", query)],
            )
            .await;
        assert_invalid(response, "query").await;
    }

    // Downloaded whole, or in part.
    let path = format!("/projects/long/builds/{number}/build.log");
    let response = admin.get(&path).await;
    assert_eq!(response.status(), StatusCode::OK);
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(disposition.contains("long-build-1.log"), "{disposition}");
    assert_eq!(response.text().await.unwrap(), text);
    let response = admin
        .get_request(&path)
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(response.text().await.unwrap(), text[..10]);
    app.create_user("stranger", "stranger-password", false)
        .await;
    let stranger = app.logged_in("stranger", "stranger-password").await;
    assert_eq!(stranger.get(&path).await.status(), StatusCode::NOT_FOUND);
    let response = stranger
        .call(
            "search_build_log",
            &[("project", "long"), ("number", &n), ("query", "x")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

async fn a_project_chooses_the_workflow_its_builds_run(app: TestApp) {
    use app::ssr::entities::process_instances::Entity as Instances;
    let admin = app.admin().await;
    project(
        &admin,
        "chosen",
        "core-image-minimal",
        &[
            ("FAKE_BITBAKE_TASKS", "5", false),
            ("FAKE_BITBAKE_TASK_MS", "1", false),
        ],
        json!([fake_bitbake()]),
    )
    .await;
    let workflow = ok(&admin, "read_build_workflow", &[("project", "chosen")]).await;
    assert_eq!(workflow["current"], "standard-build");
    assert_eq!(workflow["can_edit"], true);

    // A definition of the project's own, without the collect step, chosen for its builds.
    let source = app::ssr::builds::STANDARD_DEFINITION
        .replace("name: standard-build", "name: quick-build")
        .replace("command: [bitbake]", &format!("command: {}", json!([fake_bitbake()])))
        .replace(
            "    - participant: build\n      params: { step: collect, on_worker: \"${build_worker}\" }\n",
            "",
        );
    assert!(!source.contains("collect"), "{source}");
    ok(
        &admin,
        "save_definition",
        &[("project", "chosen"), ("source", &source)],
    )
    .await;
    let missing = admin
        .call(
            "set_build_workflow",
            &[("project", "chosen"), ("definition", "nowhere")],
        )
        .await;
    assert_invalid(missing, "build_definition").await;
    ok(
        &admin,
        "set_build_workflow",
        &[("project", "chosen"), ("definition", "quick-build")],
    )
    .await;
    let workflow = ok(&admin, "read_build_workflow", &[("project", "chosen")]).await;
    assert_eq!(workflow["current"], "quick-build");
    let choices: Vec<&str> = workflow["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(choices.contains(&"quick-build") && choices.contains(&"standard-build"));

    let number = start(&admin, "chosen").await;
    let view = wait_for_state(&admin, "chosen", number, "succeeded").await;
    let instance = Instances::find_by_id(view["process"].as_i64().unwrap())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(instance.definition_name, "quick-build");
    assert!(
        view["artifacts"].as_array().unwrap().is_empty(),
        "no collect step ran"
    );
    let project_id = build_row(&app, number).await.project_id.to_string();
    assert_eq!(
        audit_rows(&app, "project.build_workflow", "project", &project_id)
            .await
            .len(),
        1
    );

    // Only those who may configure choose; back to the standard one with an empty choice.
    ok(
        &admin,
        "set_project_sharing",
        &[("slug", "chosen"), ("other_permissions[build]", "true")],
    )
    .await;
    app.create_user("builder", "builder-password", false).await;
    let builder = app.logged_in("builder", "builder-password").await;
    let refused = builder
        .call(
            "set_build_workflow",
            &[("project", "chosen"), ("definition", "")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        ok(&builder, "read_build_workflow", &[("project", "chosen")]).await["can_edit"],
        false
    );
    ok(
        &admin,
        "set_build_workflow",
        &[("project", "chosen"), ("definition", "")],
    )
    .await;
    assert_eq!(
        ok(&admin, "read_build_workflow", &[("project", "chosen")]).await["current"],
        "standard-build"
    );

    // An archived project neither builds nor changes how it builds, until it is restored.
    ok(
        &admin,
        "archive_project",
        &[("slug", "chosen"), ("archived", "true")],
    )
    .await;
    let refused = admin.call("start_build", &[("project", "chosen")]).await;
    assert_invalid(refused, "project").await;
    let refused = admin
        .call(
            "set_build_workflow",
            &[("project", "chosen"), ("definition", "quick-build")],
        )
        .await;
    assert_invalid(refused, "build_definition").await;
    let refused = admin
        .call(
            "set_build_directory",
            &[("project", "chosen"), ("directory", "/srv/build")],
        )
        .await;
    assert_invalid(refused, "build_directory").await;
    assert_eq!(
        ok(&admin, "read_build_workflow", &[("project", "chosen")]).await["current"],
        "standard-build"
    );
    ok(&admin, "archive_project", &[("slug", "chosen")]).await;
    ok(
        &admin,
        "set_build_workflow",
        &[("project", "chosen"), ("definition", "quick-build")],
    )
    .await;
}

/// Administrators give a project one build directory: its builds run there one at a time,
/// although two workers are free, and a build uploads only the files it made.
async fn builds_share_a_configured_directory_one_at_a_time(app: TestApp) {
    let admin = app.admin().await;
    project(
        &admin,
        "shared-dir",
        "core-image-minimal",
        &[
            ("FAKE_BITBAKE_TASKS", "12", false),
            ("FAKE_BITBAKE_TASK_MS", "100", false),
        ],
        json!([fake_bitbake()]),
    )
    .await;
    let workflow = ok(&admin, "read_build_workflow", &[("project", "shared-dir")]).await;
    assert_eq!(workflow["build_directory"], Value::Null);
    assert_eq!(workflow["can_set_directory"], true);

    for bad in ["relative/build", "/srv/../etc", "/"] {
        let refused = admin
            .call(
                "set_build_directory",
                &[("project", "shared-dir"), ("directory", bad)],
            )
            .await;
        assert_invalid(refused, "build_directory").await;
    }
    let directory = app.data_dir.join("yocto").join("shared-dir").join("build");
    let given = format!("{}//", directory.display());
    ok(
        &admin,
        "set_build_directory",
        &[("project", "shared-dir"), ("directory", &given)],
    )
    .await;
    let workflow = ok(&admin, "read_build_workflow", &[("project", "shared-dir")]).await;
    let configured = directory.display().to_string();
    assert_eq!(workflow["build_directory"], configured.as_str());
    let project_id = app::ssr::entities::projects::Entity::find()
        .filter(app::ssr::entities::projects::Column::Slug.eq("shared-dir"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .id;
    assert_eq!(
        audit_rows(
            &app,
            "project.build_directory",
            "project",
            &project_id.to_string()
        )
        .await
        .len(),
        1
    );

    // Only administrators choose where builds go on the workers, even for their own project.
    app.create_user("owner", "owner-password", false).await;
    let owner = app.logged_in("owner", "owner-password").await;
    create_project(&owner, "owned", &[]).await;
    assert_eq!(
        ok(&owner, "read_build_workflow", &[("project", "owned")]).await["can_set_directory"],
        false
    );
    let refused = owner
        .call(
            "set_build_directory",
            &[("project", "owned"), ("directory", "/tmp/elsewhere")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // Two builds: the second waits for the first although a worker is free, then builds
    // another image in the same directory.
    let first = start(&admin, "shared-dir").await;
    wait_for_state(&admin, "shared-dir", first, "building").await;
    ok(
        &admin,
        "save_basics",
        &[
            ("slug", "shared-dir"),
            ("release", "scarthgap"),
            ("machine", "qemux86-64"),
            ("distro", "poky"),
            ("image_targets", "core-image-base"),
            ("packages", ""),
        ],
    )
    .await;
    let second = start(&admin, "shared-dir").await;
    let mut waited = false;
    loop {
        // The second is read first: if the first has not ended after that, it had not
        // ended when the second was read either.
        let second_view = read(&admin, "shared-dir", second).await;
        let first_view = read(&admin, "shared-dir", first).await;
        let first_state = first_view["summary"]["state"].as_str().unwrap().to_owned();
        if ["succeeded", "failed", "cancelled"].contains(&first_state.as_str()) {
            assert_eq!(first_state, "succeeded", "{first_view:#}");
            break;
        }
        assert_eq!(second_view["summary"]["state"], "queued", "{second_view:#}");
        assert_eq!(second_view["summary"]["waiting_for_directory"], first);
        waited = true;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        waited,
        "the first build ended before the second was seen waiting"
    );
    let first_view = read(&admin, "shared-dir", first).await;
    let second_view = wait_for_state(&admin, "shared-dir", second, "succeeded").await;
    assert_eq!(second_view["summary"]["waiting_for_directory"], Value::Null);
    for view in [&first_view, &second_view] {
        assert_eq!(view["directory"], configured.as_str(), "{view:#}");
    }
    assert!(directory.join("conf").join("local.conf").is_file());

    let names = |view: &Value| -> Vec<String> {
        view["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (first_names, second_names) = (names(&first_view), names(&second_view));
    assert!(
        first_names
            .iter()
            .any(|n| n.starts_with("core-image-minimal")),
        "{first_names:?}"
    );
    assert!(
        second_names
            .iter()
            .any(|n| n.starts_with("core-image-base")),
        "{second_names:?}"
    );
    assert!(
        !second_names
            .iter()
            .any(|n| n.starts_with("core-image-minimal")),
        "the second build uploaded the first one's image: {second_names:?}"
    );
    let cooker_logs = |list: &[String]| list.iter().filter(|n| n.ends_with(".log")).count();
    assert_eq!(cooker_logs(&second_names), 1, "{second_names:?}");

    // A build that failed lets the directory go: the next one does not wait for it.
    for (fail, state) in [("yes", "failed"), ("no", "succeeded")] {
        ok(
            &admin,
            "set_variable",
            &[
                ("slug", "shared-dir"),
                ("name", "FAKE_BITBAKE_FAIL"),
                ("kind", "string"),
                ("value", fail),
                ("secret", "false"),
            ],
        )
        .await;
        let number = start(&admin, "shared-dir").await;
        let view = wait_for_state(&admin, "shared-dir", number, state).await;
        assert_eq!(view["directory"], configured.as_str(), "{view:#}");
    }

    // Back to a directory of its own for each build.
    ok(
        &admin,
        "set_build_directory",
        &[("project", "shared-dir"), ("directory", "")],
    )
    .await;
    let third = start(&admin, "shared-dir").await;
    let third_view = wait_for_state(&admin, "shared-dir", third, "succeeded").await;
    assert_ne!(third_view["directory"], configured.as_str());
}
