//! Audit completeness: every change to groups and projects leaves exactly one row, naming
//! the right actor and object; owners read their project's trail.

use crate::helpers::{TestApp, audit_count, audit_rows, on_each_database};
use reqwest::StatusCode;
use serde_json::Value;

on_each_database!(every_group_and_project_change_leaves_exactly_one_row);

async fn every_group_and_project_change_leaves_exactly_one_row(app: TestApp) {
    let ann_id = app.create_user("ann", "ann-password", false).await;
    app.create_user("bob", "bob-password", false).await;
    let admin = app.admin().await;
    let ann = app.logged_in("ann", "ann-password").await;
    let bob = app.logged_in("bob", "bob-password").await;

    // (who, endpoint, form, action, object type); the object id is read from the answer
    // or, for groups and the project, known.
    let call = |client: &'static str, endpoint: &'static str, form: Vec<(&'static str, String)>| {
        (client, endpoint, form)
    };
    let before = audit_count(&app).await;
    let group: Value = admin
        .call("create_group", &[("name", "Audited")])
        .await
        .json()
        .await
        .unwrap();
    let group_id = group["id"].to_string();
    let project: Value = ann
        .call("create_project", &[("name", "Trail"), ("slug", "trail")])
        .await
        .json()
        .await
        .unwrap();
    let project_id = project["id"].to_string();
    assert_eq!(audit_count(&app).await, before + 2);
    assert_eq!(
        audit_rows(&app, "group.create", "group", &group_id)
            .await
            .len(),
        1
    );
    let created = audit_rows(&app, "project.create", "project", &project_id).await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].0, "ann");

    let s = |v: &str| v.to_owned();
    let steps = [
        (
            call(
                "admin",
                "add_group_member",
                vec![("id", group_id.clone()), ("username", s("ann"))],
            ),
            "group.add_member",
            "group",
        ),
        (
            call(
                "admin",
                "add_group_member",
                vec![("id", group_id.clone()), ("username", s("bob"))],
            ),
            "group.add_member",
            "group",
        ),
        (
            call(
                "admin",
                "set_group_maintainer",
                vec![
                    ("id", group_id.clone()),
                    ("user", ann_id.to_string()),
                    ("maintainer", s("true")),
                ],
            ),
            "group.grant_maintainer",
            "group",
        ),
        (
            call(
                "admin",
                "rename_group",
                vec![("id", group_id.clone()), ("name", s("Audited team"))],
            ),
            "group.rename",
            "group",
        ),
        (
            call(
                "ann",
                "update_project",
                vec![("slug", s("trail")), ("name", s("Trail 2"))],
            ),
            "project.update",
            "project",
        ),
        (
            call(
                "ann",
                "set_project_sharing",
                vec![
                    ("slug", s("trail")),
                    ("group", group_id.clone()),
                    ("group_permissions[view]", s("true")),
                ],
            ),
            "project.permissions",
            "project",
        ),
        (
            call(
                "ann",
                "archive_project",
                vec![("slug", s("trail")), ("archived", s("true"))],
            ),
            "project.archive",
            "project",
        ),
        (
            call(
                "ann",
                "archive_project",
                vec![("slug", s("trail")), ("archived", s("false"))],
            ),
            "project.unarchive",
            "project",
        ),
        (
            call(
                "ann",
                "transfer_project",
                vec![("slug", s("trail")), ("owner", s("bob"))],
            ),
            "project.transfer",
            "project",
        ),
        (
            call(
                "bob",
                "delete_project",
                vec![("slug", s("trail")), ("confirm", s("trail"))],
            ),
            "project.delete",
            "project",
        ),
        (
            call(
                "admin",
                "remove_group_member",
                vec![("id", group_id.clone()), ("user", ann_id.to_string())],
            ),
            "group.remove_member",
            "group",
        ),
        (
            call("admin", "delete_group", vec![("id", group_id.clone())]),
            "group.delete",
            "group",
        ),
    ];
    for ((who, endpoint, form), action, object_type) in steps {
        let client = match who {
            "admin" => &admin,
            "ann" => &ann,
            _ => &bob,
        };
        let object_id = if object_type == "group" {
            &group_id
        } else {
            &project_id
        };
        let before = audit_count(&app).await;
        let earlier = audit_rows(&app, action, object_type, object_id).await.len();
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = client.call(endpoint, &form).await;
        assert_eq!(response.status(), StatusCode::OK, "{endpoint}");
        assert_eq!(
            audit_count(&app).await,
            before + 1,
            "{endpoint} wrote one row"
        );
        let rows = audit_rows(&app, action, object_type, object_id).await;
        assert_eq!(rows.len(), earlier + 1, "{action}: {rows:?}");
        assert_eq!(rows.last().unwrap().0, who, "{action} actor");
    }

    // A clone is recorded once, on the new project, naming its source.
    let base: Value = ann
        .call(
            "create_project",
            &[
                ("name", "Base"),
                ("slug", "base"),
                ("other_permissions[view]", "true"),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    let before = audit_count(&app).await;
    let copy: Value = bob
        .call(
            "clone_project",
            &[("slug", "base"), ("name", "Copy"), ("new_slug", "copy")],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit_count(&app).await, before + 1);
    let rows = audit_rows(&app, "project.clone", "project", &copy["id"].to_string()).await;
    assert_eq!(rows, vec![(s("bob"), s("Cloned base as copy"))]);

    // The owner reads the project's own trail; others may not.
    let trail: Value = ann
        .call("project_audit", &[("slug", "base"), ("page", "1")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(trail["total"], 1);
    assert_eq!(trail["items"][0]["action"], "project.create");
    let _ = base;
    let refused = bob
        .call("project_audit", &[("slug", "base"), ("page", "1")])
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}
