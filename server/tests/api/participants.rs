//! The participant registry as administrators keep it: registering and changing
//! participants, keeping one to some projects, and a default timeout the engine applies.

use reqwest::StatusCode;
use serde_json::Value;

use crate::engine::{history, wait_for_status};
use crate::groups::{add_member, create_group};
use crate::helpers::{Client, TestApp, assert_invalid, audit_rows, on_each_database};
use crate::projects::create_project;

on_each_database!(
    administrators_keep_the_participant_registry,
    a_participant_kept_to_people_refuses_the_others,
);

/// Participant `name` as the Participants page lists it.
async fn listed(admin: &Client, name: &str) -> Value {
    let list: Value = admin
        .call("list_participants", &[])
        .await
        .json()
        .await
        .unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} is not listed: {list}"))
}

const QA: &str = "name: qa-run\nprocess:\n  participant: qa\n";

async fn administrators_keep_the_participant_registry(app: TestApp) {
    let admin = app.admin().await;
    app.create_user("olga", "olga-password-1", false).await;
    let olga = app.logged_in("olga", "olga-password-1").await;
    create_project(&olga, "firmware", &[]).await;
    create_project(&olga, "other", &[]).await;

    let form = |changes: &[(&'static str, &'static str)]| {
        let mut form = vec![
            ("name", "qa"),
            ("kind", "worker"),
            ("description", "Runs the QA suite"),
            ("default_timeout", "1s"),
            ("worker_loss_retries", "0"),
            ("projects", "firmware"),
        ];
        for (key, value) in changes {
            form.retain(|(k, _)| k != key);
            form.push((key, value));
        }
        form
    };

    // Only administrators keep the registry.
    let response = olga.call("save_participant", &form(&[])).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    for (field, value) in [
        ("name", "Bad Name"),
        ("kind", "robot"),
        ("default_timeout", "soon"),
        ("worker_loss_retries", "11"),
        ("projects", "nope"),
    ] {
        assert_invalid(
            admin
                .call("save_participant", &form(&[(field, value)]))
                .await,
            field,
        )
        .await;
    }
    assert_invalid(
        admin
            .call("save_participant", &form(&[("name", "noop")]))
            .await,
        "name",
    )
    .await;

    let response = admin.call("save_participant", &form(&[])).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_invalid(
        admin
            .call("save_participant", &form(&[("kind", "human")]))
            .await,
        "kind",
    )
    .await;
    let qa = listed(&admin, "qa").await;
    assert_eq!(qa["projects"], serde_json::json!(["firmware"]));
    assert_eq!(qa["default_timeout_ms"], 1000);
    assert_eq!(qa["worker_loss_retries"], 0);
    assert_eq!(
        audit_rows(&app, "participant.save", "participant", "qa")
            .await
            .len(),
        1
    );

    // Kept to firmware: other projects and global definitions cannot use it.
    for project in ["other", ""] {
        let client = if project.is_empty() { &admin } else { &olga };
        assert_invalid(
            client
                .call("save_definition", &[("project", project), ("source", QA)])
                .await,
            "source",
        )
        .await;
    }
    let saved = olga
        .call(
            "save_definition",
            &[("project", "firmware"), ("source", QA)],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::OK);

    // No worker serves it: the default timeout ends the step.
    let launched = olga
        .call(
            "launch_process",
            &[("project", "firmware"), ("name", "qa-run")],
        )
        .await;
    assert_eq!(launched.status(), StatusCode::OK);
    let id: i64 = launched.json().await.unwrap();
    wait_for_status(&app, id, "error").await;
    let timed_out = history(&app, id, "timed_out").await;
    assert_eq!(
        timed_out.len(),
        1,
        "{:?}",
        history(&app, id, "failed").await
    );
}

const DEPLOY: &str = "name: deploy-run\nprocess:\n  participant: deploy\n";

async fn a_participant_kept_to_people_refuses_the_others(app: TestApp) {
    let admin = app.admin().await;
    app.create_user("olga", "olga-password-1", false).await;
    app.create_user("vic", "vic-password-1", false).await;
    app.create_user("rita", "rita-password-1", false).await;
    let olga = app.logged_in("olga", "olga-password-1").await;
    let vic = app.logged_in("vic", "vic-password-1").await;
    let rita = app.logged_in("rita", "rita-password-1").await;
    // Everyone may build and configure the project.
    create_project(
        &olga,
        "firmware",
        &[
            ("other_permissions[view]", "true"),
            ("other_permissions[build]", "true"),
            ("other_permissions[configure]", "true"),
        ],
    )
    .await;
    let release = create_group(&app, "release team").await;
    add_member(&app, &release, "rita", false).await;

    let register = |users: &'static str, groups: &'static str| {
        vec![
            ("name", "deploy"),
            ("kind", "worker"),
            ("users", users),
            ("groups", groups),
        ]
    };
    assert_invalid(
        admin
            .call("save_participant", &register("nobody", ""))
            .await,
        "users",
    )
    .await;
    assert_invalid(
        admin
            .call("save_participant", &register("", "no such team"))
            .await,
        "groups",
    )
    .await;
    let saved = admin
        .call("save_participant", &register("olga", "release team"))
        .await;
    assert_eq!(saved.status(), StatusCode::OK);
    let deploy = listed(&admin, "deploy").await;
    assert_eq!(deploy["users"], serde_json::json!(["olga"]));
    assert_eq!(deploy["groups"], serde_json::json!(["release team"]));

    let saved = olga
        .call(
            "save_definition",
            &[("project", "firmware"), ("source", DEPLOY)],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::OK);
    let launch = [("project", "firmware"), ("name", "deploy-run")];

    // Vic may build the project but not use `deploy`; nothing is started.
    assert_invalid(vic.call("launch_process", &launch).await, "name").await;
    let listed: Value = olga
        .call("list_processes", &[("project", "firmware")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["total"], 0);
    // Nor may he set up a trigger to launch it for him.
    assert_invalid(
        vic.call(
            "create_trigger",
            &[
                ("project", "firmware"),
                ("name", "sneaky"),
                ("definition", "deploy-run"),
                ("kind", "webhook"),
            ],
        )
        .await,
        "definition",
    )
    .await;

    // Olga is named, Rita is in the group, and administrators may use everything.
    for client in [&olga, &rita, &admin] {
        let response = client.call("launch_process", &launch).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
}
