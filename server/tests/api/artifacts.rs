//! Artifacts against a real server and real workers: what a build's steps upload, whole and
//! ranged downloads with `download` only, and uploads refused without leaving anything.

use std::path::Path;
use std::time::Duration;

use app::ssr::builds::artifacts;
use app::ssr::entities::artifacts::Entity as Artifacts;
use app::ssr::entities::workitems::{Column as WorkitemColumn, Entity as Workitems};
use reqwest::StatusCode;
use reqwest::header;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::builds::{
    build_row, ok, project, read, start, tasks, token, wait_for_state, worker_process,
};
use crate::helpers::{Client, TestApp, assert_invalid, audit_rows, fake_bitbake, on_each_database};

mod embedded {
    use super::*;
    on_each_database!(
        configure = |settings| settings.embedded_workers = 1;
        a_build_uploads_its_files_and_they_download_whole_and_in_ranges,
        a_failed_build_keeps_the_log_of_its_failed_task,
        downloads_need_the_download_permission_and_an_artifact_of_that_build,
        retention_expires_artifacts_but_keeps_pinned_builds_and_every_record,
    );
}

mod external {
    use super::*;
    on_each_database!(
        configure = |settings| {
            settings.embedded_workers = 0;
            settings.worker_lease = std::time::Duration::from_secs(2);
        };
        only_the_worker_running_a_step_uploads_and_only_whole_files,
    );
}

/// An upload's query: name, size and SHA-256.
type Query = Vec<(&'static str, String)>;

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn artifact<'a>(view: &'a Value, name: &str) -> &'a Value {
    view["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no artifact {name}: {view:#}"))
}

fn url(slug: &str, number: i32, id: &Value) -> String {
    format!("/projects/{slug}/builds/{number}/artifacts/{id}")
}

/// A succeeded build of `slug` with 300 KiB images.
async fn built(client: &Client, slug: &str) -> (i32, Value) {
    project(
        client,
        slug,
        "core-image-minimal",
        &[
            ("FAKE_BITBAKE_TASKS", "30", false),
            ("FAKE_BITBAKE_TASK_MS", "2", false),
            ("FAKE_BITBAKE_IMAGE_KB", "300", false),
        ],
        json!([fake_bitbake()]),
    )
    .await;
    let number = start(client, slug).await;
    let view = wait_for_state(client, slug, number, "succeeded").await;
    (number, view)
}

async fn a_build_uploads_its_files_and_they_download_whole_and_in_ranges(app: TestApp) {
    let admin = app.admin().await;
    let (number, view) = built(&admin, "images").await;
    let wic_name = "core-image-minimal-qemux86-64.rootfs.wic";
    let wic = artifact(&view, wic_name);
    assert_eq!(wic["kind"], "image");
    assert_eq!(
        artifact(&view, "core-image-minimal-qemux86-64.rootfs.ext4")["kind"],
        "image"
    );
    assert_eq!(
        artifact(&view, "core-image-minimal-qemux86-64.rootfs.manifest")["kind"],
        "manifest"
    );
    let logs: Vec<&Value> = view["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "log")
        .collect();
    assert_eq!(logs.len(), 1, "the cooker log: {view:#}");

    // What the worker made is what the server lists and serves.
    let directory = Path::new(view["directory"].as_str().unwrap());
    let bytes = std::fs::read(
        directory
            .join("tmp/deploy/images/qemux86-64")
            .join(wic_name),
    )
    .unwrap();
    assert_eq!(bytes.len(), 300 * 1024);
    assert_eq!(wic["size"], bytes.len());
    assert_eq!(wic["sha256"], sha256(&bytes));
    let path = url("images", number, &wic["id"]);
    let response = admin.get(&path).await;
    assert_eq!(response.status(), StatusCode::OK);
    let disposition = response.headers()[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with(&format!("attachment; filename=\"{wic_name}\"")),
        "{disposition}"
    );
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/octet-stream"
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), bytes.as_slice());

    // Ranges, as download managers and resumed downloads ask for them.
    let response = admin
        .get_request(&path)
        .header(header::RANGE, "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        response.headers()[header::CONTENT_RANGE],
        format!("bytes 100-199/{}", bytes.len()).as_str()
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), &bytes[100..200]);
    let response = admin
        .get_request(&path)
        .header(header::RANGE, format!("bytes={}-", bytes.len() - 10))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        response.bytes().await.unwrap().as_ref(),
        &bytes[bytes.len() - 10..]
    );
    let response = admin
        .get_request(&path)
        .header(header::RANGE, "bytes=999999999-")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    // Each upload is audited as the worker's.
    let id = wic["id"].to_string();
    let rows = audit_rows(&app, "artifact.upload", "artifact", &id).await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0].0.starts_with("worker:"), "{rows:?}");

    // Deleting the build removes its files with it.
    let build = build_row(&app, number).await;
    let stored = artifacts::file(
        &app.data_dir,
        build.project_id,
        number,
        wic["id"].as_i64().unwrap(),
    );
    assert!(stored.is_file());
    ok(
        &admin,
        "delete_build",
        &[("project", "images"), ("number", &number.to_string())],
    )
    .await;
    assert!(!stored.exists());
    assert_eq!(Artifacts::find().count(&app.db).await.unwrap(), 0);
    assert_eq!(admin.get(&path).await.status(), StatusCode::NOT_FOUND);
}

async fn a_failed_build_keeps_the_log_of_its_failed_task(app: TestApp) {
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
    let names: Vec<&str> = view["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.len(),
        2,
        "the cooker log and the task's log: {view:#}"
    );
    let task_log = view["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"].as_str().unwrap().starts_with("log.do_compile."))
        .unwrap_or_else(|| panic!("{view:#}"));
    assert_eq!(task_log["kind"], "log");
    let text = admin
        .get(&url("failing", number, &task_log["id"]))
        .await
        .text()
        .await
        .unwrap();
    assert!(text.contains("oe_runmake failed"), "{text}");
    // No image was made, so none is listed.
    assert!(
        view["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["kind"] == "log")
    );

    // Archived, the build keeps what explains the failure: its tasks, its errors and the
    // failed task's log; its own log and the cooker log go.
    let n = number.to_string();
    ok(
        &admin,
        "archive_build",
        &[("project", "failing"), ("number", &n)],
    )
    .await;
    let archived = read(&admin, "failing", number).await;
    assert_eq!(archived["summary"]["archived"], true);
    let names: Vec<&str> = archived["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [task_log["name"].as_str().unwrap()]);
    assert_eq!(archived["failed_tasks"], view["failed_tasks"]);
    assert_eq!(
        tasks(&admin, "failing", number).await.len() as u64,
        view["task_count"].as_u64().unwrap()
    );
    assert_eq!(archived["messages"], view["messages"]);
    let build = build_row(&app, number).await;
    assert!(!app::ssr::builds::logs::path(&app.data_dir, build.project_id, number).exists());
    let log = ok(
        &admin,
        "read_build_log",
        &[("project", "failing"), ("number", &n)],
    )
    .await;
    assert_eq!(log["archived"], true);
    assert_eq!(
        audit_rows(&app, "build.archive", "build", &build.id.to_string())
            .await
            .len(),
        1
    );
    let again = admin
        .call("archive_build", &[("project", "failing"), ("number", &n)])
        .await;
    assert_invalid(again, "build").await;
}

async fn retention_expires_artifacts_but_keeps_pinned_builds_and_every_record(app: TestApp) {
    let admin = app.admin().await;
    let (first, _) = built(&admin, "kept").await;
    let second = start(&admin, "kept").await;
    let second_view = wait_for_state(&admin, "kept", second, "succeeded").await;
    let third = start(&admin, "kept").await;
    wait_for_state(&admin, "kept", third, "succeeded").await;
    let files = second_view["artifacts"].as_array().unwrap().len();
    assert!(files >= 4, "{second_view:#}");
    let storage = ok(&admin, "read_build_storage", &[("project", "kept")]).await;
    assert_eq!(storage["artifacts"], 3 * files);
    assert_eq!(storage["can_edit"], true);
    ok(
        &admin,
        "set_build_pinned",
        &[
            ("project", "kept"),
            ("number", &first.to_string()),
            ("pinned", "true"),
        ],
    )
    .await;

    // Only the owner and administrators set the limits, and only sensible ones.
    ok(
        &admin,
        "set_project_sharing",
        &[("slug", "kept"), ("other_permissions[build]", "true")],
    )
    .await;
    app.create_user("builder", "builder-password", false).await;
    let builder = app.logged_in("builder", "builder-password").await;
    let limits = [("project", "kept"), ("keep_builds", "1")];
    assert_eq!(
        builder.call("set_build_retention", &limits).await.status(),
        StatusCode::FORBIDDEN
    );
    for (field, value) in [
        ("keep_builds", "abc"),
        ("keep_builds", "0"),
        ("keep_days", "-3"),
        ("keep_size", "5 parsecs"),
        ("keep_size", "1 KiB"),
    ] {
        let response = admin
            .call(
                "set_build_retention",
                &[("project", "kept"), (field, value)],
            )
            .await;
        assert_invalid(response, field).await;
    }
    assert_eq!(
        ok(&admin, "read_build_storage", &[("project", "kept")]).await["retention"],
        json!({ "keep_builds": null, "keep_days": null, "keep_bytes": null })
    );

    // Keeping one build: the newest keeps its files, the pinned first keeps its own, and
    // the second's expire, leaving its record, tasks, snapshot and log.
    let expired = ok(&admin, "set_build_retention", &limits).await;
    assert_eq!(expired, 1);
    let view = read(&admin, "kept", second).await;
    assert!(view["artifacts"].as_array().unwrap().is_empty(), "{view:#}");
    assert!(view["artifacts_expired_at"].is_string());
    assert_eq!(view["task_count"], second_view["task_count"]);
    assert_eq!(
        tasks(&admin, "kept", second).await.len() as u64,
        second_view["task_count"].as_u64().unwrap()
    );
    assert_eq!(view["snapshot"], second_view["snapshot"]);
    let log = ok(
        &admin,
        "read_build_log",
        &[("project", "kept"), ("number", &second.to_string())],
    )
    .await;
    assert!(!log["lines"].as_array().unwrap().is_empty());
    let build = build_row(&app, second).await;
    let dir = artifacts::dir(&app.data_dir, build.project_id, second);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    let gone = &second_view["artifacts"][0]["id"];
    assert_eq!(
        admin.get(&url("kept", second, gone)).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        read(&admin, "kept", first).await["artifacts"]
            .as_array()
            .unwrap()
            .len(),
        files
    );
    assert_eq!(
        read(&admin, "kept", third).await["artifacts"]
            .as_array()
            .unwrap()
            .len(),
        files
    );
    let storage = ok(&admin, "read_build_storage", &[("project", "kept")]).await;
    assert_eq!(storage["artifacts"], 2 * files);
    assert_eq!(storage["retention"]["keep_builds"], 1);
    assert_eq!(
        audit_rows(&app, "build.expire", "build", &build.id.to_string())
            .await
            .len(),
        1
    );
    assert_eq!(
        audit_rows(
            &app,
            "build.pin",
            "build",
            &build_row(&app, first).await.id.to_string()
        )
        .await
        .len(),
        1
    );

    // Unpinned, the first build goes at the next application of the limits.
    ok(
        &admin,
        "set_build_pinned",
        &[
            ("project", "kept"),
            ("number", &first.to_string()),
            ("pinned", "false"),
        ],
    )
    .await;
    let expired = ok(&admin, "set_build_retention", &limits).await;
    assert_eq!(expired, 1);
    assert!(
        read(&admin, "kept", first).await["artifacts"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // A newer build pushes the third past the limit at the next sweep, which the server
    // runs on its own every few minutes.
    let fourth = start(&admin, "kept").await;
    wait_for_state(&admin, "kept", fourth, "succeeded").await;
    assert_eq!(
        read(&admin, "kept", third).await["artifacts"]
            .as_array()
            .unwrap()
            .len(),
        files
    );
    let live = app::ssr::live::LiveBus::default();
    let swept = app::ssr::builds::retention::apply_all(&app.db, &app.data_dir, &live)
        .await
        .unwrap();
    assert_eq!(swept, 1);
    assert!(read(&admin, "kept", third).await["artifacts_expired_at"].is_string());
    assert_eq!(
        read(&admin, "kept", fourth).await["artifacts"]
            .as_array()
            .unwrap()
            .len(),
        files
    );
}

async fn downloads_need_the_download_permission_and_an_artifact_of_that_build(app: TestApp) {
    let admin = app.admin().await;
    let (number, view) = built(&admin, "shared").await;
    let (other_number, other_view) = built(&admin, "other").await;
    let wic = artifact(&view, "core-image-minimal-qemux86-64.rootfs.wic");
    let path = url("shared", number, &wic["id"]);
    ok(
        &admin,
        "set_project_sharing",
        &[("slug", "shared"), ("other_permissions[view]", "true")],
    )
    .await;
    app.create_user("viewer", "viewer-password", false).await;
    let viewer = app.logged_in("viewer", "viewer-password").await;

    // A viewer sees the list but may not download; the page says why.
    let seen = read(&viewer, "shared", number).await;
    assert_eq!(seen["can_download"], false);
    assert_eq!(
        seen["artifacts"].as_array().unwrap().len(),
        view["artifacts"].as_array().unwrap().len()
    );
    assert_eq!(viewer.get(&path).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        audit_rows(&app, "access.denied", "artifact", &wic["id"].to_string())
            .await
            .len(),
        1
    );
    // Someone not logged in is sent to log in first.
    let response = app.client().get(&path).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[header::LOCATION].to_str().unwrap();
    assert!(location.starts_with("/login"), "{location}");
    // A project the viewer cannot see does not exist for them.
    let other = artifact(&other_view, "core-image-minimal-qemux86-64.rootfs.wic");
    assert_eq!(
        viewer
            .get(&url("other", other_number, &other["id"]))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // With `download`, the file comes.
    ok(
        &admin,
        "set_project_sharing",
        &[
            ("slug", "shared"),
            ("other_permissions[view]", "true"),
            ("other_permissions[download]", "true"),
        ],
    )
    .await;
    assert_eq!(read(&viewer, "shared", number).await["can_download"], true);
    assert_eq!(viewer.get(&path).await.status(), StatusCode::OK);

    // Ids name artifacts of the build in the URL, nothing else.
    for bad in [
        url("shared", number, &other["id"]),
        url("shared", number + 1, &wic["id"]),
        format!("/projects/shared/builds/{number}/artifacts/..%2F..%2Fkiln.db"),
        format!("/projects/shared/builds/{number}/artifacts/%2Fetc%2Fpasswd"),
        format!("/projects/shared/builds/{number}/artifacts/1e3"),
        format!("/projects/shared/builds/x/artifacts/{}", wic["id"]),
    ] {
        let response = admin.get(&bad).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{bad}");
    }
}

/// Waits until `slug`'s build `number` runs its bitbake step; returns the step's workitem
/// id and attempt.
async fn running_step(app: &TestApp, client: &Client, slug: &str, number: i32) -> (i64, i32) {
    for _ in 0..1500 {
        let view = read(client, slug, number).await;
        if view["summary"]["tasks_done"].as_u64().unwrap_or(0) >= 1
            && let Some(instance) = view["process"].as_i64()
        {
            let step = Workitems::find()
                .filter(WorkitemColumn::InstanceId.eq(instance))
                .filter(WorkitemColumn::State.eq("dispatched"))
                .one(&app.db)
                .await
                .unwrap()
                .unwrap();
            return (step.id, step.attempt);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("build {number} of {slug} never ran a task");
}

async fn only_the_worker_running_a_step_uploads_and_only_whole_files(app: TestApp) {
    let admin = app.admin().await;
    project(
        &admin,
        "slow",
        "core-image-minimal",
        &[
            ("FAKE_BITBAKE_TASKS", "2000", false),
            ("FAKE_BITBAKE_TASK_MS", "20", false),
        ],
        json!(["fake-bitbake"]),
    )
    .await;
    let secret = token(&app, "builders").await;
    let stranger = token(&app, "strangers").await;
    let workdir = tempfile::tempdir().unwrap();
    let mut worker = worker_process(&app, &secret, "builder", "build", workdir.path());
    let number = start(&admin, "slow").await;
    let (workitem, attempt) = running_step(&app, &admin, "slow", number).await;
    let build = build_row(&app, number).await;
    let dir = artifacts::dir(&app.data_dir, build.project_id, number);

    let body = b"a file the build made\n".to_vec();
    let hash = sha256(&body);
    let http = reqwest::Client::new();
    let put = |token: Option<&str>, attempt: i32, query: Query, body: Vec<u8>| {
        let mut request = http
            .put(format!(
                "{}/worker/artifacts/{workitem}/{attempt}",
                app.base
            ))
            .query(&query)
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let query = |name: &str, size: usize, sha256: &str| -> Query {
        vec![
            ("name", name.to_owned()),
            ("size", size.to_string()),
            ("sha256", sha256.to_owned()),
        ]
    };
    let cases: Vec<(Option<&str>, i32, Query, StatusCode)> = vec![
        (
            None,
            attempt,
            query("a.txt", body.len(), &hash),
            StatusCode::UNAUTHORIZED,
        ),
        (
            Some("not-a-token"),
            attempt,
            query("a.txt", body.len(), &hash),
            StatusCode::UNAUTHORIZED,
        ),
        // Another worker's token, or a step this worker no longer holds.
        (
            Some(&stranger),
            attempt,
            query("a.txt", body.len(), &hash),
            StatusCode::FORBIDDEN,
        ),
        (
            Some(&secret),
            attempt + 1,
            query("a.txt", body.len(), &hash),
            StatusCode::FORBIDDEN,
        ),
        // Names are file names, never paths.
        (
            Some(&secret),
            attempt,
            query("../../kiln.db", body.len(), &hash),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Some(&secret),
            attempt,
            query("a.txt", body.len(), "xyz"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        // Too large before a byte is read; longer or shorter than said; another hash.
        (
            Some(&secret),
            attempt,
            query("a.txt", (artifacts::MAX_ARTIFACT_BYTES + 1) as usize, &hash),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            Some(&secret),
            attempt,
            query("a.txt", body.len() - 1, &hash),
            StatusCode::BAD_REQUEST,
        ),
        (
            Some(&secret),
            attempt,
            query("a.txt", body.len(), &sha256(b"other")),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (token, attempt, query, status) in cases {
        let response = put(token, attempt, query.clone(), body.clone())
            .await
            .unwrap();
        let got = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(got, status, "{query:?}: {text}");
        assert!(!text.is_empty());
    }
    // A body that runs past the size it claimed, without a length up front.
    let stream = futures_util::stream::iter(vec![
        Ok::<_, std::io::Error>(body.clone()),
        Ok(body.clone()),
    ]);
    let response = http
        .put(format!(
            "{}/worker/artifacts/{workitem}/{attempt}",
            app.base
        ))
        .bearer_auth(&secret)
        .query(&query("a.txt", body.len(), &hash))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(Artifacts::find().count(&app.db).await.unwrap(), 0);
    let leftovers = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers, 0, "partial uploads are removed");

    // The right worker, whole and matching: listed, and a second upload of the name
    // replaces the first.
    let response = put(
        Some(&secret),
        attempt,
        query("notes.txt", body.len(), &hash),
        body.clone(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let again = b"newer notes\n".to_vec();
    let response = put(
        Some(&secret),
        attempt,
        query("notes.txt", again.len(), &sha256(&again)),
        again.clone(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let view = read(&admin, "slow", number).await;
    let notes = artifact(&view, "notes.txt");
    assert_eq!(notes["kind"], "other");
    assert_eq!(notes["size"], again.len());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    let downloaded = admin.get(&url("slow", number, &notes["id"])).await;
    assert_eq!(downloaded.bytes().await.unwrap().as_ref(), again.as_slice());

    // A build's artifacts have a budget together: with it nearly spent, a file that does
    // not fit is refused before a byte is stored, naming the size.
    use sea_orm::sea_query::Expr;
    Artifacts::update_many()
        .col_expr(
            app::ssr::entities::artifacts::Column::Size,
            Expr::value((artifacts::MAX_BUILD_ARTIFACT_BYTES - 5) as i64),
        )
        .exec(&app.db)
        .await
        .unwrap();
    let response = put(
        Some(&secret),
        attempt,
        query("more.txt", body.len(), &hash),
        body.clone(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = response.text().await.unwrap();
    assert!(
        text.contains("size") && text.contains("GiB together"),
        "{text}"
    );
    assert_eq!(Artifacts::find().count(&app.db).await.unwrap(), 1);

    ok(
        &admin,
        "cancel_build",
        &[("project", "slow"), ("number", &number.to_string())],
    )
    .await;
    wait_for_state(&admin, "slow", number, "cancelled").await;
    for _ in 0..1500 {
        let step = Workitems::find_by_id(workitem)
            .one(&app.db)
            .await
            .unwrap()
            .unwrap();
        if step.state != "dispatched" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Once the step is over, its worker may upload no more.
    let response = put(
        Some(&secret),
        attempt,
        query("late.txt", body.len(), &hash),
        body.clone(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    worker.kill().unwrap();
    worker.wait().unwrap();
}
