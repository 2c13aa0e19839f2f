//! Session cookies: their flags, a new id at login, and sessions that end when an account
//! is disabled or its password changes.

use crate::helpers::{ADMIN, ADMIN_PASSWORD, Backend, TestApp, on_each_database};
use reqwest::{StatusCode, header};

on_each_database!(
    session_id_changes_at_login,
    disabling_a_user_ends_their_sessions,
    a_password_reset_ends_their_sessions,
    changing_your_own_password_ends_your_sessions,
);

fn session_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("kiln_session="))
        .expect("a session cookie is set")
        .to_owned()
}

#[tokio::test]
async fn the_session_cookie_is_http_only_and_same_site_lax() {
    let app = Backend::Sqlite.spawn_default().await;
    let response = app.client().login(ADMIN, ADMIN_PASSWORD).await;
    let cookie = session_cookie(&response);
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain http public URL: {cookie}"
    );
}

#[tokio::test]
async fn the_session_cookie_is_secure_behind_https() {
    let app = Backend::Sqlite
        .spawn(|settings| settings.public_origin = Some("https://kiln.example".into()))
        .await;
    let response = app.client().login(ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = session_cookie(&response);
    assert!(cookie.contains("Secure"), "{cookie}");
}

async fn session_id_changes_at_login(app: TestApp) {
    // A planted id (session fixation) is not adopted.
    let browser = app.client();
    browser.set_session_id("planted-by-someone-else");
    assert_eq!(
        browser.login(ADMIN, ADMIN_PASSWORD).await.status(),
        StatusCode::OK
    );
    let first = browser.session_id().expect("session cookie");
    assert_ne!(first, "planted-by-someone-else");

    // Logging in again over a live session gives it a new id; the old one is dead.
    assert_eq!(
        browser.login(ADMIN, ADMIN_PASSWORD).await.status(),
        StatusCode::OK
    );
    let second = browser.session_id().expect("session cookie");
    assert_ne!(first, second);
    assert!(browser.is_logged_in().await);

    let old = app.client();
    old.set_session_id(&first);
    assert!(!old.is_logged_in().await);
}

async fn disabling_a_user_ends_their_sessions(app: TestApp) {
    let id = app
        .create_user("bob", "bob-password", false)
        .await
        .to_string();
    let bob = app.logged_in("bob", "bob-password").await;
    let bob_elsewhere = app.logged_in("bob", "bob-password").await;
    assert!(bob.is_logged_in().await);

    let admin = app.admin().await;
    let response = admin
        .call("change_user", &[("id", &id), ("change", "Disable")])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!bob.is_logged_in().await);
    assert!(!bob_elsewhere.is_logged_in().await);
    assert_eq!(
        app.client().login("bob", "bob-password").await.status(),
        StatusCode::UNAUTHORIZED
    );

    let response = admin
        .call("change_user", &[("id", &id), ("change", "Enable")])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        app.client().login("bob", "bob-password").await.status(),
        StatusCode::OK
    );
}

async fn a_password_reset_ends_their_sessions(app: TestApp) {
    let id = app
        .create_user("carol", "carol-password", false)
        .await
        .to_string();
    let carol = app.logged_in("carol", "carol-password").await;

    let admin = app.admin().await;
    let response = admin
        .call(
            "reset_user_password",
            &[("id", &id), ("new_password", "reset-password")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!carol.is_logged_in().await);
    assert_eq!(
        app.client().login("carol", "carol-password").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.client().login("carol", "reset-password").await.status(),
        StatusCode::OK
    );
    assert!(
        admin.is_logged_in().await,
        "the admin's own session is untouched"
    );
}

async fn changing_your_own_password_ends_your_sessions(app: TestApp) {
    app.create_user("dave", "dave-password", false).await;
    let here = app.logged_in("dave", "dave-password").await;
    let elsewhere = app.logged_in("dave", "dave-password").await;

    let wrong = here
        .call(
            "change_password",
            &[
                ("current_password", "not-it"),
                ("new_password", "new-dave-password"),
                ("confirm_password", "new-dave-password"),
            ],
        )
        .await;
    crate::helpers::assert_invalid(wrong, "current_password").await;

    let response = here
        .call(
            "change_password",
            &[
                ("current_password", "dave-password"),
                ("new_password", "new-dave-password"),
                ("confirm_password", "new-dave-password"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!elsewhere.is_logged_in().await);
    assert!(!here.is_logged_in().await);
    assert_eq!(
        app.client()
            .login("dave", "new-dave-password")
            .await
            .status(),
        StatusCode::OK
    );
}
