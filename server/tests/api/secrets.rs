//! Secrets at rest: secret variables and webhook secrets are stored sealed, opened for the
//! builds and calls that need them, sealed again under a new key by a rotation, and a lost
//! or wrong key is an error naming what it cannot open.

use app::ssr::entities::configuration_revisions::Entity as Revisions;
use app::ssr::entities::triggers::Entity as Triggers;
use app::ssr::secrets::{Keyring, SEALED_PREFIX, generate_key, key_id};
use sea_orm::EntityTrait;
use server::config::StoreSettings;
use server::secrets_key;

use crate::builds::ok;
use crate::helpers::{TestApp, on_each_database};
use crate::projects::create_project;

on_each_database!(
    secrets_are_stored_sealed_and_opened_where_needed,
    a_rotation_seals_under_a_new_key_and_a_lost_key_names_its_projects,
);

const SECRET: &str = "t0p-s3cret-value";

async fn vault(app: &TestApp) {
    let admin = app.admin().await;
    create_project(&admin, "vault", &[]).await;
    let form = [
        ("slug", "vault"),
        ("name", "API_TOKEN"),
        ("kind", "string"),
        ("value", SECRET),
        ("secret", "true"),
    ];
    ok(&admin, "set_variable", &form).await;
    let infra = [
        ("name", "MIRROR_PASSWORD"),
        ("kind", "string"),
        ("value", "infra-s3cret"),
        ("secret", "true"),
    ];
    ok(&admin, "set_infrastructure_variable", &infra).await;
}

/// Every revision's stored document, and the stored infrastructure variables.
async fn stored_text(app: &TestApp) -> String {
    let mut text: String = Revisions::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.document)
        .collect();
    text.push_str(
        &app::ssr::settings::get(&app.db, "build.infrastructure_variables")
            .await
            .unwrap()
            .unwrap_or_default(),
    );
    text
}

async fn secrets_are_stored_sealed_and_opened_where_needed(app: TestApp) {
    vault(&app).await;
    let text = stored_text(&app).await;
    assert!(!text.contains(SECRET), "stored in plain text: {text}");
    assert!(
        !text.contains("infra-s3cret"),
        "stored in plain text: {text}"
    );
    assert!(text.contains(SEALED_PREFIX), "{text}");

    // The key file is the owner's alone.
    let key = app.data_dir.join("secrets.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }

    // A sealed-looking value is not taken from a user.
    let admin = app.admin().await;
    let sealed = app.secrets.seal("x");
    crate::helpers::assert_invalid(
        admin
            .call(
                "set_variable",
                &[
                    ("slug", "vault"),
                    ("name", "OTHER"),
                    ("kind", "string"),
                    ("value", &sealed),
                    ("secret", "true"),
                ],
            )
            .await,
        "value",
    )
    .await;

    // The server's keys open them (a build's steps get them so: see the builds' tests).
    assert_eq!(opened(&app, &app.secrets).await, SECRET);

    // The export carries no secret, sealed or not.
    let exported = admin.get("/export/vault").await.text().await.unwrap();
    assert!(
        !exported.contains(SECRET) && !exported.contains(SEALED_PREFIX),
        "{exported}"
    );

    // A webhook's secret is sealed too, and still checks the calls signed with it.
    ok(
        &admin,
        "save_definition",
        &[
            ("project", "vault"),
            ("source", "name: on-push\nprocess:\n  wait: 1s\n"),
        ],
    )
    .await;
    let created = ok(
        &admin,
        "create_trigger",
        &[
            ("project", "vault"),
            ("name", "push"),
            ("definition", "on-push"),
            ("kind", "webhook"),
            ("fields", "{}"),
            ("mapping", ""),
        ],
    )
    .await;
    let id = created["trigger"]["id"].as_i64().unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let row = Triggers::find_by_id(id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let stored = row.secret.unwrap();
    assert!(
        stored.starts_with(SEALED_PREFIX) && !stored.contains(&secret),
        "{stored}"
    );
    let response = reqwest::Client::new()
        .post(format!("{}/hooks/{id}", app.base))
        .header("X-Gitlab-Token", &secret)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
}

async fn a_rotation_seals_under_a_new_key_and_a_lost_key_names_its_projects(app: TestApp) {
    vault(&app).await;
    let store = StoreSettings::new(app.data_dir.clone(), app.database_url.clone());
    let path = secrets_key::path(&store);
    let old_id = app.secrets.current_id().to_owned();

    let new_id = secrets_key::rotate(&store, &app.db).await.unwrap();
    assert_ne!(new_id, old_id);
    let text = stored_text(&app).await;
    assert!(
        text.contains(&format!("{SEALED_PREFIX}{new_id}:")),
        "{text}"
    );
    assert!(
        !text.contains(&format!("{SEALED_PREFIX}{old_id}:")),
        "{text}"
    );
    assert!(!text.contains(SECRET));
    assert!(!path.with_extension("key.new").exists());

    // A server started after the rotation opens everything with the new key alone.
    let keys = secrets_key::load(&store, &app.db).await.unwrap();
    assert_eq!(keys.current_id(), new_id);
    assert_eq!(opened(&app, &keys).await, SECRET);
    assert!(
        app.secrets.open(&sealed_token(&app).await).is_err(),
        "the old key is of no use"
    );
    assert_eq!(
        audit_actions(&app, "secrets.seal").await,
        1,
        "the rotation is audited"
    );

    // A wrong key names the projects it cannot open, and changes nothing.
    let new_key = std::fs::read_to_string(&path).unwrap();
    let wrong = generate_key();
    std::fs::write(&path, hex::encode(wrong)).unwrap();
    let error = secrets_key::load(&store, &app.db)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("vault") && error.contains("infrastructure"),
        "{error}"
    );
    assert_eq!(stored_text(&app).await, text);

    // So does a missing one, and no key is left in its place.
    std::fs::remove_file(&path).unwrap();
    let error = secrets_key::load(&store, &app.db)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("missing") && error.contains("vault"),
        "{error}"
    );
    assert!(!path.exists());

    // With the key restored from its backup, everything opens again.
    std::fs::write(&path, new_key).unwrap();
    let keys = secrets_key::load(&store, &app.db).await.unwrap();
    assert_eq!(keys.current_id(), new_id);
    assert_ne!(key_id(&wrong), new_id);
    assert_eq!(opened(&app, &keys).await, SECRET);
    assert_eq!(
        audit_actions(&app, "secrets.seal").await,
        1,
        "nothing was sealed again"
    );
}

/// `API_TOKEN` of project `vault` as stored.
async fn sealed_token(app: &TestApp) -> String {
    let project = app::ssr::projects::by_slug(&app.db, "vault").await.unwrap();
    let (config, _) = app::ssr::configurations::current(&app.db, &project)
        .await
        .unwrap();
    config.variables[0].value.clone()
}

/// `API_TOKEN` of project `vault`, opened with `keys`.
async fn opened(app: &TestApp, keys: &Keyring) -> String {
    keys.open(&sealed_token(app).await).unwrap()
}

async fn audit_actions(app: &TestApp, action: &str) -> u64 {
    use app::ssr::entities::audit_log::{Column, Entity};
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
    Entity::find()
        .filter(Column::Action.eq(action))
        .count(&app.db)
        .await
        .unwrap()
}
