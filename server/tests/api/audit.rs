//! The audit log: what is recorded, filtering, export, and who may read it.

use crate::helpers::{ADMIN, TestApp, assert_invalid, on_each_database};
use reqwest::{StatusCode, header};
use serde_json::Value;

on_each_database!(
    logins_changes_and_denials_are_recorded_and_filtered,
    only_administrators_read_the_audit_log,
    exports_hold_the_filtered_records,
    retention_is_set_by_admins_audited_and_applied,
);

async fn audit(client: &crate::helpers::Client, filter: &[(&str, &str)]) -> Value {
    let mut form: Vec<(String, String)> = filter
        .iter()
        .map(|(k, v)| (format!("filter[{k}]"), (*v).to_owned()))
        .collect();
    form.push(("page".into(), "1".into()));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let response = client.call("list_audit", &form).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn actions(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

async fn logins_changes_and_denials_are_recorded_and_filtered(app: TestApp) {
    // The records are made between these two days (the same one, unless midnight passes).
    let first_day = chrono::Utc::now().date_naive();
    assert_eq!(
        app.client().login(ADMIN, "wrong-password").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let erin_id = app
        .create_user("erin", "erin-password", false)
        .await
        .to_string();
    let erin = app.logged_in("erin", "erin-password").await;
    assert_eq!(
        erin.call("list_users", &[("search", ""), ("page", "1")])
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    let admin = app.admin().await;
    let logins = audit(&admin, &[("action", "login")]).await;
    let found = actions(&logins);
    assert!(found.iter().all(|a| a.starts_with("login.")), "{found:?}");
    assert!(
        found.contains(&"login.failure".to_owned()) && found.contains(&"login.success".to_owned()),
        "{found:?}"
    );

    let by_erin = audit(&admin, &[("actor", "ERIN")]).await;
    let found = actions(&by_erin);
    assert!(found.contains(&"access.denied".to_owned()), "{found:?}");
    assert!(
        by_erin["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == "erin")
    );

    let about_erin = audit(&admin, &[("object", &format!("user:{erin_id}"))]).await;
    assert!(actions(&about_erin).contains(&"user.create".to_owned()));

    let last_day = chrono::Utc::now().date_naive();
    let tomorrow = last_day.succ_opt().unwrap().to_string();
    let none = audit(&admin, &[("from", &tomorrow)]).await;
    assert_eq!(none["total"], 0);
    let all_these_days = audit(
        &admin,
        &[
            ("from", &first_day.to_string()),
            ("to", &last_day.to_string()),
        ],
    )
    .await;
    assert!(all_these_days["total"].as_u64().unwrap() >= 5);

    let response = admin
        .call(
            "list_audit",
            &[("filter[from]", "last week"), ("page", "1")],
        )
        .await;
    assert_invalid(response, "from").await;

    // The page lists the same records.
    let html = admin
        .get("/admin/audit?action=access")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("access.denied"),
        "the audit page lists denials"
    );
    assert!(!html.contains("login.success"));
}

async fn only_administrators_read_the_audit_log(app: TestApp) {
    app.create_user("frank", "frank-password", false).await;
    let frank = app.logged_in("frank", "frank-password").await;
    assert_eq!(
        frank.call("list_audit", &[("page", "1")]).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        frank.get("/admin/audit").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        frank.get("/admin/audit/export?format=csv").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        frank.get("/admin/audit/export?format=json").await.status(),
        StatusCode::FORBIDDEN
    );

    let anonymous = app.client().get("/admin/audit/export?format=csv").await;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.client()
            .call("list_audit", &[("page", "1")])
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let admin = app.admin().await;
    let denials = audit(&admin, &[("action", "access.denied"), ("actor", "frank")]).await;
    assert!(
        denials["total"].as_u64().unwrap() >= 4,
        "each refusal is recorded: {denials}"
    );
}

async fn exports_hold_the_filtered_records(app: TestApp) {
    for _ in 0..3 {
        app.client().login(ADMIN, "wrong,\"password\"").await;
    }
    let admin = app.admin().await;

    let csv = admin
        .get("/admin/audit/export?format=csv&action=login.failure")
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert_eq!(
        csv.headers()[header::CONTENT_TYPE],
        "text/csv; charset=utf-8"
    );
    let disposition = csv.headers()[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"kiln-audit-")
            && disposition.ends_with(".csv\"")
    );
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "id,at,actor,client_addr,action,object_type,object_id,summary,details"
    );
    assert_eq!(lines.len(), 4, "a header and three failures: {text}");
    assert!(lines[1..].iter().all(|l| l.contains(",login.failure,")));

    let json = admin
        .get("/admin/audit/export?format=json&action=login")
        .await;
    assert_eq!(json.status(), StatusCode::OK);
    let rows: Vec<Value> = json.json().await.unwrap();
    assert_eq!(rows.len(), 4, "three failures and the admin's login");
    assert!(
        rows.windows(2)
            .all(|w| w[0]["id"].as_i64() < w[1]["id"].as_i64()),
        "oldest first"
    );
    assert_eq!(
        rows[0]["details"]["username"], "admin",
        "details are JSON objects"
    );

    let bad = admin.get("/admin/audit/export?format=csv&to=someday").await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.unwrap().starts_with("to:"));
    let unknown_format = admin.get("/admin/audit/export?format=xlsx").await;
    assert_eq!(unknown_format.status(), StatusCode::BAD_REQUEST);
}

async fn retention_is_set_by_admins_audited_and_applied(app: TestApp) {
    use app::ssr::entities::audit_log;
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};

    app.create_user("gina", "gina-password", false).await;
    let gina = app.logged_in("gina", "gina-password").await;
    let refused = gina
        .call("set_audit_retention", &[("retention_days", "1")])
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let admin = app.admin().await;
    let current = admin.call("audit_retention", &[]).await;
    assert_eq!(
        current.json::<Option<u32>>().await.unwrap(),
        None,
        "kept forever by default"
    );
    for bad in ["0", "ninety", "36501", "-3"] {
        assert_invalid(
            admin
                .call("set_audit_retention", &[("retention_days", bad)])
                .await,
            "retention_days",
        )
        .await;
    }
    let saved = admin
        .call("set_audit_retention", &[("retention_days", "30")])
        .await;
    assert_eq!(saved.status(), StatusCode::OK);
    assert_eq!(saved.json::<Option<u32>>().await.unwrap(), Some(30));
    let changes = audit(&admin, &[("action", "settings.audit_retention")]).await;
    assert_eq!(changes["total"], 1);
    assert_eq!(
        changes["items"][0]["summary"],
        "Audit retention changed from forever to 30 days"
    );

    // A record from 40 days ago goes at the next sweep; today's stay.
    let old = audit_log::ActiveModel {
        at: Set(chrono::Utc::now() - chrono::Duration::days(40)),
        actor: Set("system".into()),
        action: Set("test.ancient".into()),
        object_type: Set("test".into()),
        summary: Set("An old record".into()),
        details: Set("{}".into()),
        ..Default::default()
    }
    .insert(&app.db)
    .await
    .unwrap();
    let before = audit(&admin, &[]).await["total"].as_u64().unwrap();
    assert_eq!(
        app::ssr::retention::apply_audit_retention(&app.db)
            .await
            .unwrap(),
        1
    );
    assert!(
        audit_log::Entity::find_by_id(old.id)
            .one(&app.db)
            .await
            .unwrap()
            .is_none()
    );
    let applied = audit(&admin, &[("action", "audit.retention_applied")]).await;
    assert_eq!(applied["total"], 1, "the sweep is itself recorded");
    assert_eq!(
        audit(&admin, &[]).await["total"].as_u64().unwrap(),
        before,
        "one gone, one added"
    );

    // Empty keeps records forever again.
    let forever = admin
        .call("set_audit_retention", &[("retention_days", "")])
        .await;
    assert_eq!(forever.json::<Option<u32>>().await.unwrap(), None);
    assert_eq!(
        app::ssr::retention::apply_audit_retention(&app.db)
            .await
            .unwrap(),
        0
    );
}
