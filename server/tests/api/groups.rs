//! Groups: administrators manage them, maintainers manage plain members, members see them.

use crate::helpers::{TestApp, app_error, assert_invalid, audit_rows, on_each_database};
use app::error::AppError;
use reqwest::StatusCode;
use serde_json::Value;

on_each_database!(
    administrators_create_rename_and_delete_groups,
    maintainers_manage_plain_members_only,
    members_see_their_groups_and_others_do_not,
    group_input_is_validated,
);

/// Creates a group as the administrator; returns its id.
pub async fn create_group(app: &TestApp, name: &str) -> String {
    let response = app
        .admin()
        .await
        .call("create_group", &[("name", name)])
        .await;
    assert_eq!(response.status(), StatusCode::OK, "create group {name}");
    let group: Value = response.json().await.unwrap();
    group["id"].as_i64().unwrap().to_string()
}

/// Adds `username` to the group as the administrator.
pub async fn add_member(app: &TestApp, group: &str, username: &str, maintainer: bool) {
    let response = app
        .admin()
        .await
        .call(
            "add_group_member",
            &[
                ("id", group),
                ("username", username),
                ("maintainer", if maintainer { "true" } else { "false" }),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK, "add {username}");
}

async fn administrators_create_rename_and_delete_groups(app: TestApp) {
    let admin = app.admin().await;
    let id = create_group(&app, "Firmware").await;
    let taken = admin.call("create_group", &[("name", "Firmware")]).await;
    assert_eq!(taken.status(), StatusCode::CONFLICT);

    let renamed = admin
        .call("rename_group", &[("id", &id), ("name", "Firmware team")])
        .await;
    assert_eq!(renamed.status(), StatusCode::OK);
    let list: Value = admin
        .call("list_groups", &[("search", "team"), ("page", "1")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["name"], "Firmware team");

    app.create_user("gus", "gus-password", false).await;
    add_member(&app, &id, "gus", false).await;
    let list: Value = admin
        .call("list_groups", &[("search", ""), ("page", "1")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"][0]["member_count"], 1);

    let deleted = admin.call("delete_group", &[("id", &id)]).await;
    assert_eq!(deleted.status(), StatusCode::OK);
    let gone = admin.call("group", &[("id", &id)]).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let gus = app.logged_in("gus", "gus-password").await;
    let mine: Value = gus.call("my_groups", &[]).await.json().await.unwrap();
    assert_eq!(mine, serde_json::json!([]));
    for action in [
        "group.create",
        "group.rename",
        "group.add_member",
        "group.delete",
    ] {
        assert_eq!(
            audit_rows(&app, action, "group", &id).await.len(),
            1,
            "{action}"
        );
    }
}

async fn maintainers_manage_plain_members_only(app: TestApp) {
    let id = create_group(&app, "Platform").await;
    for name in ["mia", "max", "moe", "ned"] {
        app.create_user(name, &format!("{name}-password"), false)
            .await;
    }
    add_member(&app, &id, "mia", true).await;
    add_member(&app, &id, "max", true).await;
    let mia = app.logged_in("mia", "mia-password").await;

    let added = mia
        .call("add_group_member", &[("id", &id), ("username", "moe")])
        .await;
    assert_eq!(added.status(), StatusCode::OK);
    let detail: Value = mia
        .call("group", &[("id", &id)])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["can_manage_members"], true);
    assert_eq!(detail["can_administer"], false);
    let moe_id = detail["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["username"] == "moe")
        .unwrap()["user"]
        .to_string();
    let max_id = detail["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["username"] == "max")
        .unwrap()["user"]
        .to_string();

    // A maintainer may not make maintainers, remove one, or promote.
    let promote = mia
        .call(
            "add_group_member",
            &[("id", &id), ("username", "ned"), ("maintainer", "true")],
        )
        .await;
    assert_eq!(promote.status(), StatusCode::FORBIDDEN);
    let remove_maintainer = mia
        .call("remove_group_member", &[("id", &id), ("user", &max_id)])
        .await;
    assert_eq!(remove_maintainer.status(), StatusCode::FORBIDDEN);
    let set = mia
        .call(
            "set_group_maintainer",
            &[("id", &id), ("user", &moe_id), ("maintainer", "true")],
        )
        .await;
    assert_eq!(set.status(), StatusCode::FORBIDDEN);

    let removed = mia
        .call("remove_group_member", &[("id", &id), ("user", &moe_id)])
        .await;
    assert_eq!(removed.status(), StatusCode::OK);

    // A plain member may not manage members at all.
    add_member(&app, &id, "ned", false).await;
    let ned = app.logged_in("ned", "ned-password").await;
    let refused = ned
        .call("add_group_member", &[("id", &id), ("username", "moe")])
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let denials = audit_rows(&app, "access.denied", "group", &id).await;
    assert_eq!(denials.len(), 1, "{denials:?}");
    assert_eq!(denials[0].0, "ned");

    // Administrators choose maintainers.
    let admin = app.admin().await;
    let demoted = admin
        .call(
            "set_group_maintainer",
            &[("id", &id), ("user", &max_id), ("maintainer", "false")],
        )
        .await;
    assert_eq!(demoted.status(), StatusCode::OK);
    assert_eq!(
        audit_rows(&app, "group.revoke_maintainer", "group", &id)
            .await
            .len(),
        1
    );
}

async fn members_see_their_groups_and_others_do_not(app: TestApp) {
    let id = create_group(&app, "Secret lab").await;
    app.create_user("ivy", "ivy-password", false).await;
    app.create_user("oz", "oz-password", false).await;
    add_member(&app, &id, "ivy", false).await;

    let ivy = app.logged_in("ivy", "ivy-password").await;
    let mine: Value = ivy.call("my_groups", &[]).await.json().await.unwrap();
    assert_eq!(mine[0]["name"], "Secret lab");
    assert_eq!(mine[0]["is_maintainer"], false);
    let detail = ivy.call("group", &[("id", &id)]).await;
    assert_eq!(detail.status(), StatusCode::OK);

    // Someone outside learns nothing, not even that the group exists.
    let oz = app.logged_in("oz", "oz-password").await;
    let hidden = oz.call("group", &[("id", &id)]).await;
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);
    let missing = oz.call("group", &[("id", "999999")]).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(app_error(hidden).await, AppError::NotFound);
    let list = oz
        .call("list_groups", &[("search", ""), ("page", "1")])
        .await;
    assert_eq!(list.status(), StatusCode::FORBIDDEN);
    let denials = audit_rows(&app, "access.denied", "group", &id).await;
    assert_eq!(
        denials,
        vec![(
            "oz".to_owned(),
            format!("oz was refused view_group on group {id}")
        )]
    );

    let profile = ivy.get("/profile").await.text().await.unwrap();
    assert!(
        profile.contains("Secret lab"),
        "groups are shown on the profile"
    );
}

async fn group_input_is_validated(app: TestApp) {
    let admin = app.admin().await;
    assert_invalid(admin.call("create_group", &[("name", " ")]).await, "name").await;
    let long = "g".repeat(65);
    assert_invalid(admin.call("create_group", &[("name", &long)]).await, "name").await;
    let id = create_group(&app, "Ops").await;
    assert_invalid(
        admin
            .call("add_group_member", &[("id", &id), ("username", "nobody")])
            .await,
        "username",
    )
    .await;
    app.create_user("pat", "pat-password", false).await;
    add_member(&app, &id, "pat", false).await;
    let twice = admin
        .call("add_group_member", &[("id", &id), ("username", "pat")])
        .await;
    assert_eq!(twice.status(), StatusCode::CONFLICT);
    let list: Value = admin
        .call("list_groups", &[("search", ""), ("page", "1")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 1, "nothing was created by the invalid calls");
}
