//! Logging in and out, the login redirect, and throttling of failed logins.

use crate::helpers::{
    ADMIN, ADMIN_PASSWORD, Backend, TestApp, app_error, assert_invalid, on_each_database,
};
use app::error::AppError;
use reqwest::{StatusCode, header};

on_each_database!(
    valid_credentials_start_a_session,
    wrong_password_and_unknown_user_get_the_same_answer,
    empty_credentials_name_the_field,
    anonymous_page_visits_go_to_login_with_next,
    logout_ends_the_session,
    parallel_failures_are_all_counted,
);

async fn valid_credentials_start_a_session(app: TestApp) {
    let browser = app.client();
    assert!(!browser.is_logged_in().await);

    let response = browser
        .call(
            "login",
            &[
                ("username", ADMIN),
                ("password", ADMIN_PASSWORD),
                ("next", "/projects"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let next: String = response.json().await.unwrap();
    assert_eq!(next, "/projects");

    let page = browser.get("/").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Dashboard"), "dashboard rendered");
    assert!(
        html.contains("href=\"/admin/users\""),
        "admins see the Admin link"
    );
}

async fn wrong_password_and_unknown_user_get_the_same_answer(app: TestApp) {
    let browser = app.client();
    let wrong = browser.login(ADMIN, "not-the-password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong = app_error(wrong).await;

    let unknown = browser.login("nobody-here", "not-the-password").await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let unknown = app_error(unknown).await;

    assert!(matches!(wrong, AppError::LoginFailed(_)), "{wrong:?}");
    assert_eq!(wrong, unknown);
    assert!(!browser.is_logged_in().await);
}

async fn empty_credentials_name_the_field(app: TestApp) {
    let browser = app.client();
    assert_invalid(browser.login("", "whatever-password").await, "username").await;
    assert_invalid(browser.login(ADMIN, "").await, "password").await;
}

async fn anonymous_page_visits_go_to_login_with_next(app: TestApp) {
    let browser = app.client();
    let response = browser.get("/admin/users?page=2").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()[header::LOCATION],
        "/login?next=%2Fadmin%2Fusers%3Fpage%3D2"
    );

    let response = browser.get("/").await;
    assert_eq!(response.headers()[header::LOCATION], "/login");

    // The login page itself, health checks and static files need no session.
    assert_eq!(browser.get("/login").await.status(), StatusCode::OK);
    assert_eq!(browser.get("/healthz").await.status(), StatusCode::OK);

    // Only same-site paths are honoured as `next`.
    let response = browser
        .call(
            "login",
            &[
                ("username", ADMIN),
                ("password", ADMIN_PASSWORD),
                ("next", "//evil.example/x"),
            ],
        )
        .await;
    assert_eq!(response.json::<String>().await.unwrap(), "/");
    let response = browser.get("/login?next=https%3A%2F%2Fevil.example").await;
    assert_eq!(response.headers()[header::LOCATION], "/");
    let response = browser.get("/login?next=%2Fprofile").await;
    assert_eq!(response.headers()[header::LOCATION], "/profile");
}

async fn logout_ends_the_session(app: TestApp) {
    let browser = app.admin().await;
    let session = browser.session_id().expect("session cookie");

    // A copy of the cookie, as someone who stole it would hold.
    let copy = app.client();
    copy.set_session_id(&session);
    assert!(copy.is_logged_in().await);

    assert_eq!(browser.call("logout", &[]).await.status(), StatusCode::OK);
    assert!(!browser.is_logged_in().await);
    assert!(
        !copy.is_logged_in().await,
        "the session ended on the server, not only in the browser"
    );
}

async fn parallel_failures_are_all_counted(app: TestApp) {
    // As many wrong guesses at once as the account allows (5 by default): none may be
    // lost to a race, so the right password is refused afterwards.
    let mut guesses = tokio::task::JoinSet::new();
    for i in 0..5 {
        let browser = app.client();
        guesses.spawn(async move { browser.login(ADMIN, &format!("guess-{i}")).await.status() });
    }
    while let Some(status) = guesses.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::UNAUTHORIZED);
    }
    let response = app.client().login(ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn failed_logins_are_throttled_per_account() {
    let app = Backend::Sqlite
        .spawn(|settings| {
            settings.auth.account_max_failures = 3;
            settings.auth.address_max_failures = 100;
        })
        .await;
    app.create_user("second", "second-password", false).await;
    let browser = app.client();
    for _ in 0..3 {
        assert_eq!(
            browser.login(ADMIN, "wrong-password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Locked now: even the right password is refused, with a time to wait.
    let locked = browser.login(ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.headers().contains_key(header::RETRY_AFTER));
    let locked = app_error(locked).await;
    assert!(
        matches!(locked, AppError::TooManyRequests { .. }),
        "{locked:?}"
    );

    // An account that does not exist is locked in the same way, with the same message.
    for _ in 0..3 {
        assert_eq!(
            browser.login("ghost", "wrong-password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let ghost = browser.login("ghost", "wrong-password").await;
    assert_eq!(ghost.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(app_error(ghost).await.to_string(), locked.to_string());

    // Other accounts from the same address are not affected.
    assert_eq!(
        browser.login("second", "second-password").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn failed_logins_are_throttled_per_address() {
    let app = Backend::Sqlite
        .spawn(|settings| {
            settings.auth.account_max_failures = 100;
            settings.auth.address_max_failures = 4;
        })
        .await;
    let browser = app.client();
    for name in ["a1", "a2", "a3", "a4"] {
        assert_eq!(
            browser.login(name, "wrong-password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let response = browser.login(ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}
