//! Cross-origin refusal, security headers, status pages and health endpoints.

use crate::helpers::{ADMIN, ADMIN_PASSWORD, TestApp, on_each_database};
use reqwest::{StatusCode, header};

on_each_database!(
    cross_origin_posts_are_refused,
    pages_carry_security_headers,
    unknown_pages_are_404,
    health_and_readiness_answer_json,
    without_a_session_nothing_tells_what_exists,
);

/// Without a session every server function answers 401 before it looks anything up, so a
/// slug, build or process that exists answers as one that does not.
async fn without_a_session_nothing_tells_what_exists(app: TestApp) {
    let admin = app.admin().await;
    crate::projects::create_project(&admin, "real", &[]).await;
    let anonymous = app.client();
    let calls: [(&str, Vec<(&str, &str)>); 6] = [
        ("project", vec![("slug", "SLUG")]),
        ("read_build", vec![("project", "SLUG"), ("number", "1")]),
        ("list_builds", vec![("project", "SLUG")]),
        (
            "project_configuration",
            vec![("slug", "SLUG"), ("revision", "0")],
        ),
        (
            "launch_process",
            vec![("project", "SLUG"), ("name", "x"), ("fields", "not json")],
        ),
        ("process_detail", vec![("id", "1")]),
    ];
    for (endpoint, form) in &calls {
        let mut answers = Vec::new();
        for slug in ["real", "missing"] {
            let form: Vec<(&str, &str)> = form
                .iter()
                .map(|(key, value)| (*key, if *value == "SLUG" { slug } else { value }))
                .collect();
            let response = anonymous.call(endpoint, &form).await;
            let status = response.status();
            answers.push((status, response.text().await.unwrap()));
        }
        assert_eq!(
            answers[0].0,
            StatusCode::UNAUTHORIZED,
            "{endpoint}: {answers:?}"
        );
        assert_eq!(answers[0], answers[1], "{endpoint} tells them apart");
    }
}

async fn cross_origin_posts_are_refused(app: TestApp) {
    let browser = app.client();
    let form = [
        ("username", ADMIN),
        ("password", ADMIN_PASSWORD),
        ("next", "/"),
    ];

    let foreign = browser
        .post("login", Some("http://evil.example"), &form)
        .await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let nothing = browser.post("login", None, &form).await;
    assert_eq!(
        nothing.status(),
        StatusCode::FORBIDDEN,
        "a POST claiming no origin at all"
    );
    assert!(browser.session_id().is_none(), "no session was started");

    // A logged-in browser tricked into posting from another site changes nothing.
    let admin = app.admin().await;
    let form = [
        ("username", "mallory"),
        ("display_name", "M"),
        ("email", ""),
        ("password", "mallory-password"),
    ];
    let response = admin
        .post("create_user", Some("https://evil.example"), &form)
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.client()
            .login("mallory", "mallory-password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // Without Origin, a same-site Referer is accepted.
    let response = reqwest::Client::new()
        .post(format!("{}/api/login", app.base))
        .header(header::REFERER, format!("{}/login", app.origin))
        .form(&[
            ("username", ADMIN),
            ("password", ADMIN_PASSWORD),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn pages_carry_security_headers(app: TestApp) {
    let response = app.client().get("/login").await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let csp = headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    let nonce = csp
        .split(['\'', ' '])
        .find_map(|part| part.strip_prefix("nonce-"))
        .expect("the page policy carries a nonce")
        .to_owned();
    assert!(!csp.contains("'unsafe-inline'"), "{csp}");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(headers[header::REFERRER_POLICY], "same-origin");

    // Every inline script on the page carries the nonce; a new page gets a new one.
    let html = response.text().await.unwrap();
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "scripts carry the nonce"
    );
    for script in html.split("<script").skip(1) {
        let tag = script.split('>').next().unwrap_or_default();
        assert!(
            tag.contains(&format!("nonce=\"{nonce}\"")),
            "script without nonce: <script{tag}>"
        );
    }
    let again = app.client().get("/login").await;
    assert!(
        !again.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains(&nonce)
    );

    // Responses that are not pages get the strict policy.
    let health = app.client().get("/healthz").await;
    let strict = health.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        !strict.contains("nonce-") && strict.contains("frame-ancestors 'none'"),
        "{strict}"
    );
}

async fn unknown_pages_are_404(app: TestApp) {
    let admin = app.admin().await;
    let response = admin.get("/no/such/page").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.text().await.unwrap().contains("Page not found"));
}

async fn health_and_readiness_answer_json(app: TestApp) {
    let browser = app.client();
    let health = browser.get("/healthz").await;
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.headers()[header::CONTENT_TYPE], "application/json");
    let ready = browser.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["database"], "ok", "{body}");
}
