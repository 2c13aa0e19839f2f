//! The admin users pages and functions: who may use them, and what bad input gets.

use crate::helpers::{ADMIN, TestApp, app_error, assert_invalid, on_each_database};
use app::error::AppError;
use reqwest::StatusCode;

on_each_database!(
    admin_functions_are_refused_to_normal_users,
    invalid_user_input_names_the_field_and_writes_nothing,
    taken_usernames_conflict,
    the_last_administrator_cannot_be_removed,
    users_are_listed_with_search_and_pagination,
    profiles_are_validated_and_saved,
);

async fn user_count(app: &TestApp) -> u64 {
    let admin = app.admin().await;
    let page: serde_json::Value = admin
        .call("list_users", &[("search", ""), ("page", "1")])
        .await
        .json()
        .await
        .unwrap();
    page["total"].as_u64().unwrap()
}

async fn admin_functions_are_refused_to_normal_users(app: TestApp) {
    let admin_id = "1";
    app.create_user("erin", "erin-password", false).await;
    let erin = app.logged_in("erin", "erin-password").await;

    let page = erin.get("/admin/users").await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("not allowed") || html.contains("permission"),
        "a 403 page"
    );
    assert!(
        !html.contains("href=\"/admin/users\""),
        "no Admin link for normal users"
    );

    let calls: [(&str, Vec<(&str, &str)>); 4] = [
        ("list_users", vec![("search", ""), ("page", "1")]),
        (
            "create_user",
            vec![
                ("username", "sneaky"),
                ("display_name", "S"),
                ("email", ""),
                ("password", "sneaky-password"),
                ("is_admin", "true"),
            ],
        ),
        ("change_user", vec![("id", admin_id), ("change", "Disable")]),
        (
            "reset_user_password",
            vec![("id", admin_id), ("new_password", "taken-over-1")],
        ),
    ];
    for (endpoint, form) in calls {
        let response = erin.call(endpoint, &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{endpoint}");
        assert_eq!(app_error(response).await, AppError::Forbidden, "{endpoint}");
    }
    assert_eq!(user_count(&app).await, 2, "nothing was created");
    assert_eq!(
        app.client().login(ADMIN, "taken-over-1").await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Anonymous callers are told to log in.
    let anonymous = app
        .client()
        .call("list_users", &[("search", ""), ("page", "1")])
        .await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

async fn invalid_user_input_names_the_field_and_writes_nothing(app: TestApp) {
    let admin = app.admin().await;
    let long_name = "u".repeat(65);
    let long_display = "d".repeat(129);
    let long_email = format!("{}@example.com", "e".repeat(243));
    let long_password = "p".repeat(1025);
    let cases: [(&str, &str, &str, &str, &str); 10] = [
        ("username", "", "Name", "", "good-password"),
        ("username", &long_name, "Name", "", "good-password"),
        ("username", "has space", "Name", "", "good-password"),
        ("username", "tab\tname", "Name", "", "good-password"),
        ("display_name", "okname", &long_display, "", "good-password"),
        ("display_name", "okname", "bell\u{7}", "", "good-password"),
        ("email", "okname", "Name", &long_email, "good-password"),
        ("email", "okname", "Name", "not-an-email", "good-password"),
        ("password", "okname", "Name", "", "short"),
        ("password", "okname", "Name", "", &long_password),
    ];
    for (field, username, display_name, email, password) in cases {
        let response = admin
            .call(
                "create_user",
                &[
                    ("username", username),
                    ("display_name", display_name),
                    ("email", email),
                    ("password", password),
                ],
            )
            .await;
        assert_invalid(response, field).await;
    }

    // Bytes that are not UTF-8, percent-encoded or raw, are refused without a server error.
    let response = admin
        .post_raw(
            "create_user",
            b"username=%FF%FE&display_name=x&email=&password=good-password".to_vec(),
        )
        .await;
    assert_invalid(response, "username").await;
    let response = admin
        .post_raw(
            "create_user",
            b"username=ok&display_name=\xff\xfe&email=&password=good-password".to_vec(),
        )
        .await;
    assert!(
        response.status().is_client_error(),
        "raw invalid UTF-8: {}",
        response.status()
    );
    let response = admin
        .post_raw("login", b"username=admin&password=\xff\xfe&next=/".to_vec())
        .await;
    assert!(
        response.status().is_client_error(),
        "raw invalid UTF-8: {}",
        response.status()
    );

    assert_eq!(user_count(&app).await, 1, "nothing was written");
}

async fn taken_usernames_conflict(app: TestApp) {
    app.create_user("frank", "frank-password", false).await;
    let admin = app.admin().await;
    let response = admin
        .call(
            "create_user",
            &[
                ("username", "Frank"),
                ("display_name", "F"),
                ("email", ""),
                ("password", "other-password"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(app_error(response).await.field(), Some("username"));
}

async fn the_last_administrator_cannot_be_removed(app: TestApp) {
    let admin = app.admin().await;
    let me: serde_json::Value = admin.call("whoami", &[]).await.json().await.unwrap();
    let my_id = me["id"].to_string();
    for change in ["Disable", "RevokeAdmin"] {
        let response = admin
            .call("change_user", &[("id", &my_id), ("change", change)])
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{change} on oneself"
        );
    }

    let other = app
        .create_user("grace", "grace-password", true)
        .await
        .to_string();
    let grace = app.logged_in("grace", "grace-password").await;
    // Grace may demote the first admin: another active administrator remains.
    let response = grace
        .call("change_user", &[("id", &my_id), ("change", "RevokeAdmin")])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // The first admin has lost the right at once.
    let response = admin
        .call("change_user", &[("id", &other), ("change", "RevokeAdmin")])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        admin.get("/admin/users").await.status(),
        StatusCode::FORBIDDEN
    );
}

async fn users_are_listed_with_search_and_pagination(app: TestApp) {
    let admin = app.admin().await;
    for i in 0..30 {
        let name = format!("worker{i:02}");
        let response = admin
            .call(
                "create_user",
                &[
                    ("username", &name),
                    ("display_name", &name),
                    ("email", ""),
                    ("password", "some-password"),
                ],
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let page: serde_json::Value = admin
        .call("list_users", &[("search", ""), ("page", "2")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 31);
    assert_eq!(page["page"], 2);
    assert_eq!(page["items"].as_array().unwrap().len(), 6);

    let found: serde_json::Value = admin
        .call("list_users", &[("search", "worker1"), ("page", "1")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["total"], 10);
    // LIKE wildcards are searched for literally.
    let none: serde_json::Value = admin
        .call("list_users", &[("search", "w%r"), ("page", "1")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none["total"], 0);

    // The page renders the list with pagination.
    let html = admin.get("/admin/users?page=2").await.text().await.unwrap();
    assert!(
        html.contains("worker29"),
        "the second page lists the last users"
    );
    assert!(!html.contains("worker03"));
}

async fn profiles_are_validated_and_saved(app: TestApp) {
    app.create_user("heidi", "heidi-password", false).await;
    let heidi = app.logged_in("heidi", "heidi-password").await;
    let long_display = "d".repeat(129);
    assert_invalid(
        heidi
            .call(
                "update_profile",
                &[("display_name", &long_display), ("email", "")],
            )
            .await,
        "display_name",
    )
    .await;
    assert_invalid(
        heidi
            .call(
                "update_profile",
                &[("display_name", "Heidi"), ("email", "nope")],
            )
            .await,
        "email",
    )
    .await;

    let response = heidi
        .call(
            "update_profile",
            &[("display_name", "Heidi H."), ("email", "heidi@example.com")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let profile: serde_json::Value = heidi.call("my_profile", &[]).await.json().await.unwrap();
    assert_eq!(profile["display_name"], "Heidi H.");
    assert_eq!(profile["email"], "heidi@example.com");
    assert_eq!(profile["is_admin"], false);
}
