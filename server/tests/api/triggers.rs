//! Triggers through their server functions and their real entry points: webhook calls over
//! HTTP with GitHub and GitLab signatures, and the cron scheduler of the running server.

use std::time::Duration;

use app::ssr::entities::process_instances::Entity as Instances;
use app::ssr::entities::triggers::{Column as TriggerColumn, Entity as Triggers};
use app::ssr::triggers::{self, webhook};
use chrono::Utc;
use reqwest::StatusCode;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::engine::wait_for_status;
use crate::helpers::{Client, TestApp, app_error, assert_invalid, audit_rows, on_each_database};
use crate::projects::create_project;

on_each_database!(
    webhooks_launch_signed_calls_and_refuse_the_rest,
    triggers_are_checked_and_kept_to_their_scope,
    cron_triggers_fire_once_when_due,
);

const ON_PUSH: &str =
    "name: on-push\nfields: { branch: none }\nprocess:\n  sequence:\n    - set: { seen: yes }\n";

async fn json(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// Olga's project `firmware` (visible to every user) with the `on-push` definition.
async fn project_with_definition(app: &TestApp) -> Client {
    app.create_user("olga", "olga-password-1", false).await;
    let olga = app.logged_in("olga", "olga-password-1").await;
    create_project(&olga, "firmware", &[("other_permissions[view]", "true")]).await;
    json(
        olga.call(
            "save_definition",
            &[("project", "firmware"), ("source", ON_PUSH)],
        )
        .await,
    )
    .await;
    olga
}

async fn create(client: &Client, form: &[(&str, &str)]) -> reqwest::Response {
    client.call("create_trigger", form).await
}

async fn hook(
    app: &TestApp,
    id: i64,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{}/hooks/{id}", app.base))
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

async fn process_count(app: &TestApp) -> u64 {
    Instances::find().count(&app.db).await.unwrap()
}

async fn webhooks_launch_signed_calls_and_refuse_the_rest(app: TestApp) {
    let olga = project_with_definition(&app).await;
    let created = json(
        create(
            &olga,
            &[
                ("project", "firmware"),
                ("name", "push"),
                ("definition", "on-push"),
                ("kind", "webhook"),
                ("fields", r#"{"source": "hook"}"#),
                ("mapping", "branch = /ref\nrepo = /repository/name\n"),
            ],
        )
        .await,
    )
    .await;
    let id = created["trigger"]["id"].as_i64().unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 48);
    assert_eq!(created["trigger"]["kind"]["mapping"]["branch"], "/ref");
    let payload =
        serde_json::to_vec(&json!({ "ref": "refs/heads/main", "repository": { "name": "os" } }))
            .unwrap();

    // Unsigned and wrongly signed calls are refused, recorded and audited; nothing starts.
    let response = hook(&app, id, &[], payload.clone()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let forged = webhook::sign("not-the-secret", &payload);
    let response = hook(
        &app,
        id,
        &[("X-Hub-Signature-256", forged.as_str())],
        payload.clone(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = hook(&app, id, &[("X-Gitlab-Token", "guess")], payload.clone()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(process_count(&app).await, 0);
    let refused = audit_rows(&app, "trigger.refused", "trigger", &id.to_string()).await;
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert!(
        refused[0].1.contains("no X-Hub-Signature-256"),
        "{refused:?}"
    );
    assert!(refused[1].1.contains("does not match"), "{refused:?}");

    // A call signed the GitHub way starts the process with the mapped fields.
    let signature = webhook::sign(&secret, &payload);
    let response = hook(
        &app,
        id,
        &[("X-Hub-Signature-256", signature.as_str())],
        payload.clone(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let answer: Value = response.json().await.unwrap();
    let process = answer["process"].as_i64().unwrap();
    let fields = wait_for_status(&app, process, "finished").await;
    assert_eq!(fields["branch"], "refs/heads/main");
    assert_eq!(fields["repo"], "os");
    assert_eq!(fields["source"], "hook");
    assert_eq!(fields["seen"], "yes");
    let row = Instances::find_by_id(process)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.launched_by_name, "trigger:push");

    // The GitLab way; a pointer that finds nothing leaves the definition's default.
    let response = hook(
        &app,
        id,
        &[("X-Gitlab-Token", secret.as_str())],
        b"{\"other\": 1}".to_vec(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let answer: Value = response.json().await.unwrap();
    let fields = wait_for_status(&app, answer["process"].as_i64().unwrap(), "finished").await;
    assert_eq!(fields["branch"], "none");

    // A body that is not JSON, or over 1 MiB, starts nothing.
    let before = process_count(&app).await;
    let response = hook(
        &app,
        id,
        &[("X-Gitlab-Token", secret.as_str())],
        b"<xml/>".to_vec(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let mut huge = b"{\"pad\": \"".to_vec();
    huge.resize(webhook::MAX_PAYLOAD_BYTES + 1, b'a');
    let signature = webhook::sign(&secret, &huge);
    let response = hook(
        &app,
        id,
        &[("X-Hub-Signature-256", signature.as_str())],
        huge,
    )
    .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(process_count(&app).await, before);

    // Unknown triggers are not found; a disabled one says so.
    let response = hook(&app, id + 1000, &[("X-Gitlab-Token", "x")], b"{}".to_vec()).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = reqwest::Client::new()
        .post(format!("{}/hooks/..%2Fetc", app.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let id_text = id.to_string();
    let response = olga
        .call(
            "set_trigger_enabled",
            &[("id", id_text.as_str()), ("enabled", "false")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = hook(
        &app,
        id,
        &[("X-Gitlab-Token", secret.as_str())],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(process_count(&app).await, before);

    // The list shows the runs, newest first, and never the secret.
    let list = json(olga.call("list_triggers", &[("project", "firmware")]).await).await;
    let trigger = &list["triggers"][0];
    assert_eq!(trigger["enabled"], false);
    let outcomes: Vec<&str> = trigger["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "failed", "started", "started", "refused", "refused", "refused"
        ]
    );
    assert!(!list.to_string().contains(&secret));
    assert_eq!(
        audit_rows(&app, "trigger.disable", "trigger", &id_text)
            .await
            .len(),
        1
    );

    // Only the latest runs are kept.
    for _ in 0..triggers::RUNS_KEPT {
        let response = hook(&app, id, &[], b"{}".to_vec()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    use app::ssr::entities::trigger_runs::{Column as RunColumn, Entity as Runs};
    let kept = Runs::find()
        .filter(RunColumn::TriggerId.eq(id))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(kept.len() as u64, triggers::RUNS_KEPT);
    assert!(kept.iter().all(|run| run.outcome == "refused"));
}

async fn triggers_are_checked_and_kept_to_their_scope(app: TestApp) {
    let olga = project_with_definition(&app).await;
    let base = [
        ("project", "firmware"),
        ("name", "nightly"),
        ("definition", "on-push"),
        ("kind", "cron"),
        ("schedule", "0 2 * * *"),
        ("time_zone", "Europe/Helsinki"),
    ];
    let with = |key: &'static str, value: &'static str| {
        let mut form = base.to_vec();
        form.retain(|(k, _)| *k != key);
        form.push((key, value));
        form
    };
    assert_invalid(
        create(&olga, &with("schedule", "0 25 * * *")).await,
        "schedule",
    )
    .await;
    assert_invalid(
        create(&olga, &with("schedule", "0 0 31 2 *")).await,
        "schedule",
    )
    .await;
    let minutes: Vec<String> = (0..60).map(|m| m.to_string()).collect();
    let long: &'static str = Box::leak(format!("{} * * * *", minutes.join(",")).into_boxed_str());
    assert_invalid(create(&olga, &with("schedule", long)).await, "schedule").await;
    assert_invalid(
        create(&olga, &with("time_zone", "Mars/Base")).await,
        "time_zone",
    )
    .await;
    assert_invalid(
        create(&olga, &with("definition", "missing")).await,
        "definition",
    )
    .await;
    assert_invalid(create(&olga, &with("name", "night ly")).await, "name").await;
    assert_invalid(create(&olga, &with("kind", "email")).await, "kind").await;
    assert_invalid(create(&olga, &with("fields", "[1]")).await, "fields").await;
    let mut bad_mapping = with("kind", "webhook");
    bad_mapping.push(("mapping", "branch: /ref"));
    assert_invalid(create(&olga, &bad_mapping).await, "mapping").await;
    assert_eq!(Triggers::find().count(&app.db).await.unwrap(), 0);

    let created = json(create(&olga, &base).await).await;
    assert!(created["secret"].is_null());
    let next = created["trigger"]["next_run_at"].as_str().unwrap();
    // 02:00 in Helsinki is midnight UTC in winter, 23:00 UTC in summer.
    assert!(
        next.contains("T00:00:00") || next.contains("T23:00:00"),
        "{next}"
    );
    let response = create(&olga, &base).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);

    // Vic may see the project's triggers but not change them, nor add any.
    app.create_user("vic", "vic-password-1", false).await;
    let vic = app.logged_in("vic", "vic-password-1").await;
    let list = json(vic.call("list_triggers", &[("project", "firmware")]).await).await;
    assert_eq!(list["can_create"], false);
    assert_eq!(list["triggers"][0]["can_edit"], false);
    let id = list["triggers"][0]["id"].as_i64().unwrap().to_string();
    let mut other = base.to_vec();
    other[1] = ("name", "mine");
    let refused = create(&vic, &other).await;
    assert_eq!(
        refused.status(),
        StatusCode::FORBIDDEN,
        "{:?}",
        app_error(refused).await
    );
    let response = vic.call("delete_trigger", &[("id", id.as_str())]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Global triggers are for administrators.
    let mut global = base.to_vec();
    global[0] = ("project", "");
    let response = create(&vic, &global).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // The pages render it for both.
    let page = olga
        .get("/processes/triggers/manage?project=firmware")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Add a trigger") && page.contains("cron 0 2 * * * (Europe/Helsinki)"));
    let page = vic.get("/processes/triggers").await.text().await.unwrap();
    assert!(page.contains("nightly") && !page.contains("Add a trigger"));

    // The list of every trigger shows it to Vic; the owner deletes it, audited.
    let all = json(vic.call("list_all_triggers", &[("page", "1")]).await).await;
    assert_eq!(all["total"], 1);
    assert_eq!(all["items"][0]["project"], "firmware");
    let response = olga.call("delete_trigger", &[("id", id.as_str())]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(Triggers::find().count(&app.db).await.unwrap(), 0);
    assert_eq!(
        audit_rows(&app, "trigger.delete", "trigger", &id)
            .await
            .len(),
        1
    );
}

async fn cron_triggers_fire_once_when_due(app: TestApp) {
    let olga = project_with_definition(&app).await;
    let created = json(
        create(
            &olga,
            &[
                ("project", "firmware"),
                ("name", "hourly"),
                ("definition", "on-push"),
                ("kind", "cron"),
                ("schedule", "@hourly"),
                ("time_zone", ""),
                ("fields", r#"{"branch": "nightly"}"#),
            ],
        )
        .await,
    )
    .await;
    let id = created["trigger"]["id"].as_i64().unwrap();
    assert_eq!(created["trigger"]["kind"]["time_zone"], "UTC");

    // Three hours of missed firings (as after a long stop) make one launch, even with a
    // second scheduler racing the server's own.
    let missed = Utc::now() - chrono::Duration::hours(3);
    Triggers::update_many()
        .col_expr(TriggerColumn::NextRunAt, Expr::value(Some(missed)))
        .filter(TriggerColumn::Id.eq(id))
        .exec(&app.db)
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        triggers::fire_due(&app.db, &app.engine.cache, Utc::now()),
        async {
            app.engine.schedule_changed();
            triggers::fire_due(&app.db, &app.engine.cache, Utc::now()).await
        }
    );
    app.engine.wake();
    let mut launched = a.unwrap();
    launched.extend(b.unwrap());
    assert!(launched.len() <= 1, "{launched:?}");
    for _ in 0..100 {
        if process_count(&app).await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(process_count(&app).await, 1);
    let process = Instances::find().one(&app.db).await.unwrap().unwrap();
    let fields = wait_for_status(&app, process.id, "finished").await;
    assert_eq!(fields["branch"], "nightly");
    assert_eq!(process.launched_by_name, "trigger:hourly");

    // The next firing is the next full hour from now.
    let row = triggers::get(&app.db, id).await.unwrap();
    let next = row.next_run_at.unwrap();
    assert!(next > Utc::now() && next <= Utc::now() + chrono::Duration::hours(1));
    assert_eq!(next.timestamp() % 3600, 0);

    // The run names the process it started.
    let list = json(olga.call("list_triggers", &[("project", "firmware")]).await).await;
    assert_eq!(list["triggers"][0]["runs"][0]["outcome"], "started");
    assert_eq!(
        list["triggers"][0]["runs"][0]["process_id"].as_i64(),
        Some(process.id)
    );

    // Disabled, it does not fire, and has no next time.
    let id_text = id.to_string();
    json(
        olga.call(
            "set_trigger_enabled",
            &[("id", id_text.as_str()), ("enabled", "false")],
        )
        .await,
    )
    .await;
    let row = triggers::get(&app.db, id).await.unwrap();
    assert!(row.next_run_at.is_none());
    assert!(
        triggers::fire_due(
            &app.db,
            &app.engine.cache,
            Utc::now() + chrono::Duration::days(1)
        )
        .await
        .unwrap()
        .is_empty()
    );
}
