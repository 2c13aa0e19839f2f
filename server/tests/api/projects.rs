//! Projects: creating, listing by tab, sharing, transferring, archiving, cloning, deleting.

use crate::groups::{add_member, create_group};
use crate::helpers::{Client, TestApp, assert_invalid, audit_count, on_each_database};
use reqwest::StatusCode;
use serde_json::Value;

on_each_database!(
    new_projects_are_private_to_their_owner,
    tabs_list_mine_shared_and_all_i_can_see,
    lists_search_sort_and_paginate,
    project_input_is_validated_and_nothing_is_half_written,
    only_groups_one_belongs_to_can_be_given,
    archived_projects_leave_the_list_until_asked_for,
    clone_makes_a_private_copy_for_the_cloner,
    transfer_gives_the_project_away,
    delete_needs_the_slug_and_removes_stored_files,
);

/// Creates a project as `client` with extra form fields; returns the project as JSON.
pub async fn create_project(client: &Client, slug: &str, extra: &[(&str, &str)]) -> Value {
    let mut form = vec![("slug", slug)];
    if !extra.iter().any(|(key, _)| *key == "name") {
        form.push(("name", slug));
    }
    form.extend_from_slice(extra);
    let response = client.call("create_project", &form).await;
    assert_eq!(response.status(), StatusCode::OK, "create project {slug}");
    response.json().await.unwrap()
}

/// The slugs of one page of `client`'s projects for the given query fields.
async fn slugs(client: &Client, query: &[(&str, &str)]) -> (Vec<String>, u64) {
    let form: Vec<(String, &str)> = query
        .iter()
        .map(|(key, value)| (format!("query[{key}]"), *value))
        .collect();
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let response = client.call("list_projects", &form).await;
    assert_eq!(response.status(), StatusCode::OK, "list {query:?}");
    let page: Value = response.json().await.unwrap();
    let slugs = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["slug"].as_str().unwrap().to_owned())
        .collect();
    (slugs, page["total"].as_u64().unwrap())
}

async fn new_projects_are_private_to_their_owner(app: TestApp) {
    app.create_user("ann", "ann-password", false).await;
    app.create_user("bob", "bob-password", false).await;
    let ann = app.logged_in("ann", "ann-password").await;
    let project = create_project(&ann, "gateway", &[("description", "Edge box")]).await;
    assert_eq!(project["owner"], "ann");
    assert_eq!(project["group_permissions"]["view"], false);
    assert_eq!(project["other_permissions"]["view"], false);
    assert_eq!(project["access"]["admin"], true);

    let bob = app.logged_in("bob", "bob-password").await;
    let hidden = bob.call("project", &[("slug", "gateway")]).await;
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);
    assert_eq!(slugs(&bob, &[("tab", "All")]).await.1, 0);
    let page = bob.get("/projects/gateway").await;
    assert_eq!(page.status(), StatusCode::NOT_FOUND);

    let own_page = ann.get("/projects/gateway").await;
    assert_eq!(own_page.status(), StatusCode::OK);
    let html = own_page.text().await.unwrap();
    assert!(
        html.contains("Edge box"),
        "the project page shows the project"
    );
}

async fn tabs_list_mine_shared_and_all_i_can_see(app: TestApp) {
    for name in ["ann", "bob", "cy"] {
        app.create_user(name, &format!("{name}-password"), false)
            .await;
    }
    let group = create_group(&app, "Team").await;
    add_member(&app, &group, "ann", false).await;
    add_member(&app, &group, "bob", false).await;
    let ann = app.logged_in("ann", "ann-password").await;
    let bob = app.logged_in("bob", "bob-password").await;
    let cy = app.logged_in("cy", "cy-password").await;
    create_project(&ann, "ann-private", &[]).await;
    create_project(
        &ann,
        "ann-team",
        &[("group", &group), ("group_permissions[view]", "true")],
    )
    .await;
    // A group without `view` is not shared with it.
    create_project(&ann, "ann-group-none", &[("group", &group)]).await;
    create_project(&ann, "ann-public", &[("other_permissions[view]", "true")]).await;
    create_project(&bob, "bob-own", &[]).await;

    let tab = |client, tab: &'static str| async move {
        let (mut slugs, _) = slugs(client, &[("tab", tab)]).await;
        slugs.sort();
        slugs
    };
    assert_eq!(
        tab(&ann, "Mine").await,
        ["ann-group-none", "ann-private", "ann-public", "ann-team"]
    );
    assert_eq!(tab(&bob, "Mine").await, ["bob-own"]);
    assert_eq!(tab(&bob, "Shared").await, ["ann-team"]);
    assert_eq!(
        tab(&bob, "All").await,
        ["ann-public", "ann-team", "bob-own"]
    );
    assert_eq!(tab(&cy, "Shared").await, Vec::<String>::new());
    assert_eq!(tab(&cy, "All").await, ["ann-public"]);
    let admin = app.admin().await;
    assert_eq!(tab(&admin, "All").await.len(), 5);

    // What the list shows, the policy allows, and nothing more.
    for slug in ["ann-team", "ann-public"] {
        let seen = bob.call("project", &[("slug", slug)]).await;
        assert_eq!(seen.status(), StatusCode::OK, "{slug}");
    }
    for slug in ["ann-private", "ann-group-none"] {
        let hidden = bob.call("project", &[("slug", slug)]).await;
        assert_eq!(hidden.status(), StatusCode::NOT_FOUND, "{slug}");
    }
}

async fn lists_search_sort_and_paginate(app: TestApp) {
    let admin = app.admin().await;
    for i in 0..30 {
        create_project(&admin, &format!("board-{i:02}"), &[]).await;
    }
    create_project(&admin, "zeta-image", &[("name", "Zeta image")]).await;

    let (first, total) = slugs(&admin, &[("tab", "Mine"), ("page", "1")]).await;
    assert_eq!(total, 31);
    assert_eq!(first.len(), 25);
    assert_eq!(first[0], "board-00");
    let (second, _) = slugs(&admin, &[("tab", "Mine"), ("page", "2")]).await;
    assert_eq!(second.len(), 6);
    assert_eq!(second.last().unwrap(), "zeta-image");
    let (beyond, _) = slugs(&admin, &[("tab", "Mine"), ("page", "99")]).await;
    assert_eq!(beyond, second, "a page past the end shows the last page");

    let (newest, _) = slugs(&admin, &[("sort", "Created")]).await;
    assert_eq!(newest[0], "zeta-image");
    let (found, total) = slugs(&admin, &[("search", "ZETA")]).await;
    assert_eq!((found, total), (vec!["zeta-image".to_owned()], 1));
    let (none, total) = slugs(&admin, &[("search", "100%_")]).await;
    assert_eq!((none.len(), total), (0, 0), "wildcards are literal");
    let too_long = "x".repeat(129);
    assert_invalid(
        admin
            .call("list_projects", &[("query[search]", too_long.as_str())])
            .await,
        "q",
    )
    .await;

    let html = admin
        .get("/projects?tab=mine&q=board&page=2")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("board-29"),
        "the page renders the second page"
    );
    assert!(!html.contains("board-00"));
}

async fn project_input_is_validated_and_nothing_is_half_written(app: TestApp) {
    let admin = app.admin().await;
    create_project(&admin, "taken", &[]).await;
    let before = audit_count(&app).await;
    let cases: [(&str, Vec<(&str, &str)>); 6] = [
        ("name", vec![("name", ""), ("slug", "ok")]),
        ("slug", vec![("name", "Bad"), ("slug", "Bad Slug")]),
        ("slug", vec![("name", "Dash"), ("slug", "-dash")]),
        (
            "description",
            vec![("name", "D"), ("slug", "d"), ("description", "\u{1}")],
        ),
        ("group", vec![("name", "G"), ("slug", "g"), ("group", "x")]),
        (
            "group",
            vec![("name", "G"), ("slug", "g"), ("group", "424242")],
        ),
    ];
    for (field, form) in cases {
        assert_invalid(admin.call("create_project", &form).await, field).await;
    }
    let conflict = admin
        .call("create_project", &[("name", "Again"), ("slug", "taken")])
        .await;
    assert_eq!(conflict.status(), StatusCode::CONFLICT);
    assert_eq!(
        audit_count(&app).await,
        before,
        "no audit row for refused input"
    );
    let (all, total) = slugs(&admin, &[("tab", "All")]).await;
    assert_eq!((all, total), (vec!["taken".to_owned()], 1));

    let unknown = admin.call("project", &[("slug", "../etc")]).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

async fn only_groups_one_belongs_to_can_be_given(app: TestApp) {
    let theirs = create_group(&app, "Theirs").await;
    let mine = create_group(&app, "Mine").await;
    app.create_user("ann", "ann-password", false).await;
    add_member(&app, &mine, "ann", false).await;
    let ann = app.logged_in("ann", "ann-password").await;
    assert_invalid(
        ann.call(
            "create_project",
            &[("name", "P"), ("slug", "p"), ("group", &theirs)],
        )
        .await,
        "group",
    )
    .await;
    create_project(&ann, "p", &[]).await;
    let shared = ann
        .call(
            "set_project_sharing",
            &[
                ("slug", "p"),
                ("group", &mine),
                ("group_permissions[build]", "true"),
            ],
        )
        .await;
    assert_eq!(shared.status(), StatusCode::OK);
    let project: Value = shared.json().await.unwrap();
    assert_eq!(project["group"]["name"], "Mine");
    assert_eq!(
        project["group_permissions"]["view"], true,
        "build implies view"
    );
    assert_invalid(
        ann.call("set_project_sharing", &[("slug", "p"), ("group", &theirs)])
            .await,
        "group",
    )
    .await;
}

async fn archived_projects_leave_the_list_until_asked_for(app: TestApp) {
    let admin = app.admin().await;
    create_project(&admin, "old", &[]).await;
    create_project(&admin, "new", &[]).await;
    let archived = admin
        .call("archive_project", &[("slug", "old"), ("archived", "true")])
        .await;
    assert_eq!(archived.status(), StatusCode::OK);
    let again = admin
        .call("archive_project", &[("slug", "old"), ("archived", "true")])
        .await;
    assert_invalid(again, "project").await;
    assert_eq!(slugs(&admin, &[]).await.0, ["new"]);
    let (with_archived, _) = slugs(&admin, &[("archived", "true")]).await;
    assert_eq!(with_archived, ["new", "old"]);
    let restored = admin
        .call("archive_project", &[("slug", "old"), ("archived", "false")])
        .await;
    assert_eq!(restored.status(), StatusCode::OK);
    assert_eq!(slugs(&admin, &[]).await.1, 2);
}

async fn clone_makes_a_private_copy_for_the_cloner(app: TestApp) {
    app.create_user("ann", "ann-password", false).await;
    app.create_user("bob", "bob-password", false).await;
    let ann = app.logged_in("ann", "ann-password").await;
    create_project(
        &ann,
        "base",
        &[
            ("description", "Shared base"),
            ("other_permissions[view]", "true"),
        ],
    )
    .await;
    let bob = app.logged_in("bob", "bob-password").await;
    let cloned = bob
        .call(
            "clone_project",
            &[
                ("slug", "base"),
                ("name", "Bob's base"),
                ("new_slug", "bob-base"),
            ],
        )
        .await;
    assert_eq!(cloned.status(), StatusCode::OK);
    let project: Value = cloned.json().await.unwrap();
    assert_eq!(project["owner"], "bob");
    assert_eq!(project["description"], "Shared base");
    assert_eq!(
        project["other_permissions"]["view"], false,
        "clones are private"
    );
    let taken = bob
        .call(
            "clone_project",
            &[
                ("slug", "base"),
                ("name", "Again"),
                ("new_slug", "bob-base"),
            ],
        )
        .await;
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    assert_invalid(
        bob.call(
            "clone_project",
            &[("slug", "base"), ("name", "Bad"), ("new_slug", "Bad!")],
        )
        .await,
        "new_slug",
    )
    .await;
}

async fn transfer_gives_the_project_away(app: TestApp) {
    app.create_user("ann", "ann-password", false).await;
    app.create_user("bob", "bob-password", false).await;
    let ann = app.logged_in("ann", "ann-password").await;
    create_project(&ann, "handover", &[]).await;
    assert_invalid(
        ann.call(
            "transfer_project",
            &[("slug", "handover"), ("owner", "nobody")],
        )
        .await,
        "owner",
    )
    .await;
    let moved = ann
        .call(
            "transfer_project",
            &[("slug", "handover"), ("owner", "bob")],
        )
        .await;
    assert_eq!(moved.status(), StatusCode::OK);
    let after = ann.call("project", &[("slug", "handover")]).await;
    assert_eq!(after.status(), StatusCode::NOT_FOUND, "ann gave it away");
    let bob = app.logged_in("bob", "bob-password").await;
    let project: Value = bob
        .call("project", &[("slug", "handover")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(project["owner"], "bob");
}

async fn delete_needs_the_slug_and_removes_stored_files(app: TestApp) {
    let admin = app.admin().await;
    let project = create_project(&admin, "doomed", &[]).await;
    let stored = app
        .data_dir
        .join("projects")
        .join(project["id"].to_string());
    std::fs::create_dir_all(stored.join("logs")).unwrap();
    std::fs::write(stored.join("logs").join("build.log"), "done").unwrap();

    assert_invalid(
        admin
            .call(
                "delete_project",
                &[("slug", "doomed"), ("confirm", "doome")],
            )
            .await,
        "confirm",
    )
    .await;
    assert!(stored.exists(), "nothing removed without the right slug");
    let deleted = admin
        .call(
            "delete_project",
            &[("slug", "doomed"), ("confirm", "doomed")],
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::OK);
    assert!(!stored.exists(), "stored files are removed");
    let gone = admin.call("project", &[("slug", "doomed")]).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    // The slug is free again.
    create_project(&admin, "doomed", &[]).await;
}
