//! Process definitions and instances through the server functions, as browsers use them:
//! checking as you type, saving by scope, launching, reading and controlling through the
//! permission policy.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::groups::{add_member, create_group};
use crate::helpers::{Client, TestApp, app_error, assert_invalid, audit_rows, on_each_database};
use crate::projects::create_project;

on_each_database!(
    definitions_are_checked_and_saved_by_scope,
    processes_are_launched_read_and_controlled_through_the_policy,
    people_answer_their_tasks_from_the_inbox,
);

const WAITER: &str = "name: waiter\nfields: { branch: main }\nprocess:\n  sequence:\n    - set: { started: yes }\n    - wait: 1h\n";

async fn json(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn definitions_are_checked_and_saved_by_scope(app: TestApp) {
    let admin = app.admin().await;
    app.create_user("olga", "olga-password-1", false).await;
    let olga = app.logged_in("olga", "olga-password-1").await;
    create_project(&olga, "firmware", &[("other_permissions[view]", "true")]).await;
    app.create_user("vic", "vic-password-1", false).await;
    let vic = app.logged_in("vic", "vic-password-1").await;

    // Checking as you type: problems with line and column, or the tree.
    let bad = "name: x\nprocess:\n  sequence:\n    - participant: rocket\n";
    let check = json(
        olga.call(
            "check_definition",
            &[("project", "firmware"), ("source", bad)],
        )
        .await,
    )
    .await;
    assert_eq!(check["problems"][0]["line"], 4);
    assert!(
        check["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("rocket")
    );
    let check = json(
        olga.call(
            "check_definition",
            &[("project", "firmware"), ("source", WAITER)],
        )
        .await,
    )
    .await;
    assert_eq!(check["problems"], serde_json::json!([]));
    assert_eq!(check["outline"][0]["label"], "sequence");
    assert_eq!(check["outline"][2]["label"], "wait 1h");

    // The owner saves project definitions; an invalid text is refused and nothing stored.
    assert_invalid(
        olga.call(
            "save_definition",
            &[("project", "firmware"), ("source", bad)],
        )
        .await,
        "source",
    )
    .await;
    let saved = json(
        olga.call(
            "save_definition",
            &[("project", "firmware"), ("source", WAITER)],
        )
        .await,
    )
    .await;
    assert_eq!(
        (saved["name"].as_str(), saved["version"].as_i64()),
        (Some("waiter"), Some(1))
    );
    let list = json(
        vic.call("list_definitions", &[("project", "firmware")])
            .await,
    )
    .await;
    assert_eq!(list["definitions"][0]["name"], "waiter");
    assert_eq!(
        (list["can_edit"].as_bool(), list["can_launch"].as_bool()),
        (Some(false), Some(false))
    );
    let detail = json(
        vic.call(
            "read_definition",
            &[("project", "firmware"), ("name", "waiter")],
        )
        .await,
    )
    .await;
    assert_eq!(detail["source"], WAITER);
    assert!(
        detail["fields"]
            .as_str()
            .unwrap()
            .contains("\"branch\": \"main\"")
    );

    // Viewers may not save; only administrators save global definitions.
    let refused = vic
        .call(
            "save_definition",
            &[("project", "firmware"), ("source", WAITER)],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let refused = olga.call("save_definition", &[("source", WAITER)]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    json(admin.call("save_definition", &[("source", WAITER)]).await).await;
    let global = json(olga.call("list_definitions", &[]).await).await;
    let names: Vec<&str> = global["definitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["standard-build", "waiter"]);
    assert_eq!(global["can_edit"], false);

    // A private project's definitions are as invisible as the project.
    create_project(&olga, "secret", &[]).await;
    let hidden = vic.call("list_definitions", &[("project", "secret")]).await;
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);
    let hidden = vic
        .call(
            "check_definition",
            &[("project", "secret"), ("source", WAITER)],
        )
        .await;
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);
}

async fn wait_for(client: &Client, id: &str, status: &str) -> Value {
    wait_until(client, id, |view| view["summary"]["status"] == status).await
}

async fn wait_until(client: &Client, id: &str, check: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..500 {
        last = json(client.call("process_detail", &[("id", id)]).await).await;
        if check(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("process {id} never got there: {last}");
}

async fn processes_are_launched_read_and_controlled_through_the_policy(app: TestApp) {
    app.create_user("olga", "olga-password-1", false).await;
    let olga = app.logged_in("olga", "olga-password-1").await;
    create_project(&olga, "firmware", &[("other_permissions[view]", "true")]).await;
    create_project(&olga, "secret", &[]).await;
    app.create_user("vic", "vic-password-1", false).await;
    let vic = app.logged_in("vic", "vic-password-1").await;
    json(
        olga.call(
            "save_definition",
            &[("project", "firmware"), ("source", WAITER)],
        )
        .await,
    )
    .await;

    let error = app_error(
        olga.call(
            "launch_process",
            &[
                ("project", "firmware"),
                ("name", "waiter"),
                ("fields", "[1]"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(error.field(), Some("fields"));
    let refused = vic
        .call(
            "launch_process",
            &[("project", "firmware"), ("name", "waiter")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let launched = olga
        .call(
            "launch_process",
            &[
                ("project", "firmware"),
                ("name", "waiter"),
                ("fields", r#"{"branch": "next"}"#),
            ],
        )
        .await;
    let id = json(launched).await.as_i64().unwrap().to_string();

    // Everyone who may view the project sees the process; its tree marks where it is.
    let view = wait_until(&vic, &id, |v| v["outline"][2]["state"] == "running").await;
    assert_eq!(view["summary"]["project"], "firmware");
    assert_eq!(view["can_control"], false);
    let states: Vec<(String, String)> = view["outline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["label"].as_str().unwrap().to_owned(),
                r["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("sequence".to_owned(), "running".to_owned()),
            ("set started".to_owned(), "done".to_owned()),
            ("wait 1h".to_owned(), "running".to_owned()),
        ]
    );
    assert!(
        view["fields"]
            .as_str()
            .unwrap()
            .contains("\"branch\": \"next\"")
    );
    let listed = json(vic.call("list_processes", &[]).await).await;
    assert_eq!(listed["items"][0]["id"].as_i64().unwrap().to_string(), id);

    // Viewers may not control it; the owner pauses, resumes and cancels it.
    let refused = vic
        .call("control_process", &[("id", &id), ("command", "cancel")])
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_invalid(
        olga.call("control_process", &[("id", &id), ("command", "explode")])
            .await,
        "command",
    )
    .await;
    json(
        olga.call("control_process", &[("id", &id), ("command", "pause")])
            .await,
    )
    .await;
    wait_for(&olga, &id, "paused").await;
    json(
        olga.call("control_process", &[("id", &id), ("command", "resume")])
            .await,
    )
    .await;
    wait_for(&olga, &id, "running").await;
    json(
        olga.call("control_process", &[("id", &id), ("command", "cancel")])
            .await,
    )
    .await;
    let view = wait_for(&olga, &id, "cancelled").await;
    assert!(
        view["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["kind"] == "cancelled")
    );
    assert_eq!(
        audit_rows(&app, "process.control", "process", &id)
            .await
            .len(),
        3
    );
    assert_eq!(
        audit_rows(&app, "process.launch", "process", &id).await[0].0,
        "olga"
    );

    // A process of a private project is not found by others, and not listed for them.
    json(
        olga.call(
            "save_definition",
            &[("project", "secret"), ("source", WAITER)],
        )
        .await,
    )
    .await;
    let hidden = json(
        olga.call(
            "launch_process",
            &[("project", "secret"), ("name", "waiter")],
        )
        .await,
    )
    .await;
    let hidden = hidden.as_i64().unwrap().to_string();
    let refused = vic.call("process_detail", &[("id", &hidden)]).await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let refused = vic
        .call("control_process", &[("id", &hidden), ("command", "kill")])
        .await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let listed = json(vic.call("list_processes", &[]).await).await;
    assert_eq!(listed["total"], 1);
    let listed = json(olga.call("list_processes", &[("project", "secret")]).await).await;
    assert_eq!(listed["total"], 1);
}

const APPROVAL: &str = "name: release\nprocess:\n  sequence:\n    - participant: approve\n      params: { group: qa, message: Ship it?, form: [reason] }\n    - set: { shipped: true }\n";
const ANYONE: &str = "name: anyone\nprocess:\n  participant: approve\n";

async fn tasks(client: &Client) -> Vec<Value> {
    json(client.call("list_tasks", &[]).await)
        .await
        .as_array()
        .cloned()
        .unwrap()
}

async fn wait_for_tasks(client: &Client, count: usize) -> Vec<Value> {
    for _ in 0..500 {
        let list = tasks(client).await;
        if list.len() >= count {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("fewer than {count} tasks arrived");
}

async fn people_answer_their_tasks_from_the_inbox(app: TestApp) {
    for name in ["olga", "quinn", "vic"] {
        app.create_user(name, &format!("{name}-password-1"), false)
            .await;
    }
    let qa = create_group(&app, "qa").await;
    add_member(&app, &qa, "olga", false).await;
    add_member(&app, &qa, "quinn", false).await;
    let olga = app.logged_in("olga", "olga-password-1").await;
    let quinn = app.logged_in("quinn", "quinn-password-1").await;
    let vic = app.logged_in("vic", "vic-password-1").await;
    create_project(
        &olga,
        "firmware",
        &[
            ("group", &qa),
            ("group_permissions[view]", "true"),
            ("other_permissions[view]", "true"),
        ],
    )
    .await;
    json(
        olga.call(
            "save_definition",
            &[("project", "firmware"), ("source", APPROVAL)],
        )
        .await,
    )
    .await;
    json(
        olga.call(
            "save_definition",
            &[("project", "firmware"), ("source", ANYONE)],
        )
        .await,
    )
    .await;

    // A task for the group reaches its members only.
    let first = json(
        olga.call(
            "launch_process",
            &[("project", "firmware"), ("name", "release")],
        )
        .await,
    )
    .await;
    let first = first.as_i64().unwrap();
    let inbox = wait_for_tasks(&quinn, 1).await;
    assert_eq!(inbox[0]["message"], "Ship it?");
    assert_eq!(inbox[0]["form"], serde_json::json!(["reason"]));
    assert_eq!(inbox[0]["addressed_to"], "group qa");
    assert!(tasks(&vic).await.is_empty());
    let (workitem, attempt) = (
        inbox[0]["workitem"].to_string(),
        inbox[0]["attempt"].to_string(),
    );
    let refused = vic
        .call(
            "complete_task",
            &[("workitem", &workitem), ("attempt", &attempt)],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let unknown = quinn
        .call(
            "complete_task",
            &[
                ("workitem", &workitem),
                ("attempt", &attempt),
                ("values[colour]", "red"),
            ],
        )
        .await;
    assert_eq!(app_error(unknown).await.field(), Some("colour"));
    let done = quinn
        .call(
            "complete_task",
            &[
                ("workitem", &workitem),
                ("attempt", &attempt),
                ("values[reason]", "tests pass"),
            ],
        )
        .await;
    assert_eq!(json(done).await.as_i64(), Some(first));
    let view = wait_for(&olga, &first.to_string(), "finished").await;
    let fields = view["fields"].as_str().unwrap();
    assert!(
        fields.contains("\"reason\": \"tests pass\"")
            && fields.contains("\"decided_by\": \"quinn\""),
        "{fields}"
    );
    let again = quinn
        .call(
            "complete_task",
            &[("workitem", &workitem), ("attempt", &attempt)],
        )
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(
        audit_rows(&app, "task.complete", "process", &first.to_string()).await[0].0,
        "quinn"
    );

    // Rejecting fails the step with the reason.
    let second = json(
        olga.call(
            "launch_process",
            &[("project", "firmware"), ("name", "release")],
        )
        .await,
    )
    .await;
    let second = second.as_i64().unwrap().to_string();
    let inbox = wait_for_tasks(&quinn, 1).await;
    let (workitem, attempt) = (
        inbox[0]["workitem"].to_string(),
        inbox[0]["attempt"].to_string(),
    );
    json(
        quinn
            .call(
                "reject_task",
                &[
                    ("workitem", &workitem),
                    ("attempt", &attempt),
                    ("comment", "not today"),
                ],
            )
            .await,
    )
    .await;
    let view = wait_for(&olga, &second, "error").await;
    assert!(
        view["errors"][0]
            .as_str()
            .unwrap()
            .contains("rejected by quinn: not today"),
        "{}",
        view["errors"]
    );

    // A task naming nobody is for those who may build: the owner, not the viewers.
    json(
        olga.call(
            "launch_process",
            &[("project", "firmware"), ("name", "anyone")],
        )
        .await,
    )
    .await;
    let inbox = wait_for_tasks(&olga, 1).await;
    assert_eq!(inbox[0]["addressed_to"], "");
    assert!(tasks(&quinn).await.is_empty());
}
