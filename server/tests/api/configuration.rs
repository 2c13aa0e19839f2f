//! Project configuration: revisions, restore, validation, who may change what, and the
//! project file's export and import.

use crate::groups::{add_member, create_group};
use crate::helpers::{Client, TestApp, audit_count, audit_rows, on_each_database};
use crate::projects::create_project;
use reqwest::StatusCode;
use serde_json::Value;

on_each_database!(
    every_change_is_a_revision_and_any_revision_can_be_restored,
    invalid_configuration_is_refused_with_its_field,
    configure_permission_and_infrastructure_are_enforced,
    export_then_import_gives_the_same_file,
    invalid_project_files_create_nothing,
    simultaneous_saves_all_succeed,
);

async fn ok(client: &Client, endpoint: &str, form: &[(&str, &str)]) -> Value {
    let response = client.call(endpoint, form).await;
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{endpoint} {form:?}: {body}");
    serde_json::from_str(&body).unwrap()
}

async fn configuration(client: &Client, slug: &str, revision: &str) -> Value {
    ok(
        client,
        "project_configuration",
        &[("slug", slug), ("revision", revision)],
    )
    .await
}

/// A project with two layers and one variable of each type, one of them secret.
async fn configured(client: &Client, slug: &str) {
    create_project(client, slug, &[("description", "Configured")]).await;
    ok(
        client,
        "save_basics",
        &[
            ("slug", slug),
            ("release", "scarthgap"),
            ("machine", "qemux86-64"),
            ("distro", "poky"),
            ("image_targets", "core-image-minimal core-image-sato"),
            ("packages", "htop, strace"),
        ],
    )
    .await;
    ok(
        client,
        "add_layer",
        &[
            ("slug", slug),
            ("name", "poky"),
            ("source", "git"),
            ("url", "https://git.yoctoproject.org/poky"),
            ("git_ref", "scarthgap"),
            ("subdirectory", "meta"),
        ],
    )
    .await;
    ok(
        client,
        "add_layer",
        &[
            ("slug", slug),
            ("name", "meta-local"),
            ("source", "local"),
            ("path", "/srv/meta-local"),
        ],
    )
    .await;
    let variables: [&[(&str, &str)]; 5] = [
        &[
            ("name", "EXTRA_TEXT"),
            ("kind", "string"),
            ("value", "say \"hi\""),
        ],
        &[
            ("name", "SSTATE_MIRRORS_DIR"),
            ("kind", "path"),
            ("value", "/srv/sstate"),
        ],
        &[
            ("name", "INHERIT_RM_WORK"),
            ("kind", "bool"),
            ("value", "1"),
        ],
        &[
            ("name", "PACKAGE_CLASSES"),
            ("kind", "choice"),
            ("choices", "package_ipk, package_rpm"),
            ("value", "package_rpm"),
        ],
        &[
            ("name", "API_TOKEN"),
            ("kind", "string"),
            ("value", "t0p-s3cret"),
            ("secret", "true"),
        ],
    ];
    for fields in variables {
        let mut form = vec![("slug", slug)];
        form.extend_from_slice(fields);
        ok(client, "set_variable", &form).await;
    }
}

async fn every_change_is_a_revision_and_any_revision_can_be_restored(app: TestApp) {
    let admin = app.admin().await;
    configured(&admin, "conf").await;
    let view = configuration(&admin, "conf", "0").await;
    assert_eq!(view["revision"], 8, "basics, two layers and five variables");
    let local = view["local_conf"].as_str().unwrap();
    assert!(local.contains("MACHINE ?= \"qemux86-64\""), "{local}");
    assert!(
        local.contains("IMAGE_INSTALL:append = \" htop strace\""),
        "{local}"
    );
    assert!(local.contains("EXTRA_TEXT = \"say \\\"hi\\\"\""), "{local}");
    assert!(
        local.contains("API_TOKEN = \"********\""),
        "secrets are masked: {local}"
    );
    let bblayers = view["bblayers_conf"].as_str().unwrap();
    assert!(
        bblayers.find("layers/poky/meta").unwrap() < bblayers.find("/srv/meta-local").unwrap(),
        "{bblayers}"
    );
    let text = serde_json::to_string(&view).unwrap();
    assert!(!text.contains("t0p-s3cret"), "no secret leaves the server");

    // A secret sent empty keeps its value; it stays masked.
    ok(
        &admin,
        "set_variable",
        &[
            ("slug", "conf"),
            ("name", "API_TOKEN"),
            ("kind", "string"),
            ("value", ""),
            ("secret", "true"),
        ],
    )
    .await;
    assert_eq!(
        configuration(&admin, "conf", "0").await["revision"],
        8,
        "nothing changed"
    );

    ok(
        &admin,
        "move_layer",
        &[("slug", "conf"), ("name", "meta-local"), ("up", "true")],
    )
    .await;
    ok(
        &admin,
        "remove_variable",
        &[("slug", "conf"), ("name", "EXTRA_TEXT")],
    )
    .await;
    let history = ok(
        &admin,
        "configuration_history",
        &[("slug", "conf"), ("page", "1")],
    )
    .await;
    assert_eq!(history["total"], 10);
    assert_eq!(history["items"][0]["summary"], "Removed EXTRA_TEXT");
    assert_eq!(history["items"][1]["summary"], "Moved layer meta-local up");

    let old = configuration(&admin, "conf", "3").await;
    assert_eq!(old["revision"], 3);
    assert_eq!(old["configuration"]["layers"].as_array().unwrap().len(), 2);
    assert_eq!(old["configuration"]["variables"], serde_json::json!([]));

    let restored = ok(
        &admin,
        "restore_configuration",
        &[("slug", "conf"), ("revision", "8")],
    )
    .await;
    assert_eq!(restored, 11);
    let now = configuration(&admin, "conf", "0").await;
    assert_eq!(
        now["configuration"],
        configuration(&admin, "conf", "8").await["configuration"]
    );
    let project: Value = ok(&admin, "project", &[("slug", "conf")]).await;
    let configures = audit_rows(
        &app,
        "project.configure",
        "project",
        &project["id"].to_string(),
    )
    .await;
    assert_eq!(configures.len(), 11, "one audit row per revision");
    assert!(
        configures[10].1.contains("Restored revision 8"),
        "{:?}",
        configures[10]
    );
}

/// A server function, the field its refusal must name, and the form.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);

async fn invalid_configuration_is_refused_with_its_field(app: TestApp) {
    let admin = app.admin().await;
    create_project(&admin, "strict", &[]).await;
    let before = audit_count(&app).await;
    let cases: [Case; 9] = [
        (
            "set_variable",
            "name",
            vec![("name", "1BAD"), ("kind", "string"), ("value", "x")],
        ),
        (
            "set_variable",
            "name",
            vec![("name", "MACHINE"), ("kind", "string"), ("value", "x")],
        ),
        (
            "set_variable",
            "value",
            vec![("name", "B"), ("kind", "bool"), ("value", "yes")],
        ),
        (
            "set_variable",
            "value",
            vec![("name", "N"), ("kind", "integer"), ("value", "4x")],
        ),
        (
            "set_variable",
            "value",
            vec![("name", "S"), ("kind", "string"), ("value", "a\nb")],
        ),
        (
            "set_variable",
            "kind",
            vec![("name", "K"), ("kind", "float"), ("value", "1")],
        ),
        (
            "add_layer",
            "url",
            vec![
                ("name", "meta-x"),
                ("source", "git"),
                ("url", "-uhttps://x"),
                ("git_ref", "main"),
            ],
        ),
        (
            "add_layer",
            "git_ref",
            vec![
                ("name", "meta-x"),
                ("source", "git"),
                ("url", "https://x/y"),
                ("git_ref", "--upload-pack=sh"),
            ],
        ),
        (
            "add_layer",
            "path",
            vec![
                ("name", "meta-x"),
                ("source", "local"),
                ("path", "relative/dir"),
            ],
        ),
    ];
    for (endpoint, field, fields) in cases {
        let mut form = vec![("slug", "strict")];
        form.extend_from_slice(&fields);
        let response = admin.call(endpoint, &form).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{endpoint} {fields:?}"
        );
        let error: Value = response.json().await.unwrap();
        assert_eq!(
            error["Invalid"]["field"], field,
            "{endpoint} {fields:?}: {error}"
        );
    }
    let basics = admin
        .call(
            "save_basics",
            &[("slug", "strict"), ("machine", "qemu x86")],
        )
        .await;
    assert_eq!(basics.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(audit_count(&app).await, before, "nothing was saved");
    assert_eq!(
        configuration(&admin, "strict", "0").await["revision"],
        Value::Null
    );
}

async fn configure_permission_and_infrastructure_are_enforced(app: TestApp) {
    let group = create_group(&app, "Builders").await;
    for name in ["ann", "vic", "cam"] {
        app.create_user(name, &format!("{name}-password"), false)
            .await;
    }
    add_member(&app, &group, "ann", false).await;
    add_member(&app, &group, "vic", false).await;
    add_member(&app, &group, "cam", false).await;
    let ann = app.logged_in("ann", "ann-password").await;
    create_project(
        &ann,
        "shared",
        &[("group", &group), ("group_permissions[view]", "true")],
    )
    .await;
    let vic = app.logged_in("vic", "vic-password").await;
    let view = configuration(&vic, "shared", "0").await;
    assert_eq!(view["can_configure"], false);
    let refused = vic
        .call("save_basics", &[("slug", "shared"), ("machine", "qemuarm")])
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    ok(
        &ann,
        "set_project_sharing",
        &[
            ("slug", "shared"),
            ("group", &group),
            ("group_permissions[configure]", "true"),
        ],
    )
    .await;
    ok(
        &vic,
        "save_basics",
        &[("slug", "shared"), ("machine", "qemuarm")],
    )
    .await;

    // Infrastructure: instance defaults and per-project overrides are for administrators.
    let infra = [
        ("slug", "shared"),
        ("scope", "Infrastructure"),
        ("name", "BB_NUMBER_THREADS"),
        ("kind", "integer"),
        ("value", "4"),
    ];
    assert_eq!(
        ann.call("set_variable", &infra).await.status(),
        StatusCode::FORBIDDEN
    );
    let admin = app.admin().await;
    ok(&admin, "set_variable", &infra).await;
    let defaults = [
        ("name", "DL_DIR"),
        ("kind", "path"),
        ("value", "/srv/downloads"),
    ];
    assert_eq!(
        ann.call("set_infrastructure_variable", &defaults)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    ok(&admin, "set_infrastructure_variable", &defaults).await;
    assert_eq!(
        ann.get("/admin/infrastructure").await.status(),
        StatusCode::FORBIDDEN
    );
    let page = admin
        .get("/admin/infrastructure")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("/srv/downloads"),
        "the administrators' page lists the defaults"
    );
    let view = configuration(&vic, "shared", "0").await;
    let local = view["local_conf"].as_str().unwrap();
    assert!(local.contains("DL_DIR = \"/srv/downloads\""), "{local}");
    assert!(local.contains("BB_NUMBER_THREADS = \"4\""), "{local}");
    assert_eq!(view["can_override_infrastructure"], false);

    // A non-administrator restoring an old revision keeps the infrastructure overrides.
    ok(
        &vic,
        "restore_configuration",
        &[("slug", "shared"), ("revision", "1")],
    )
    .await;
    let view = configuration(&vic, "shared", "0").await;
    assert_eq!(view["configuration"]["machine"], "qemuarm");
    assert_eq!(
        view["configuration"]["infrastructure"][0]["name"],
        "BB_NUMBER_THREADS"
    );

    // Archived projects are read-only.
    ok(
        &ann,
        "archive_project",
        &[("slug", "shared"), ("archived", "true")],
    )
    .await;
    let archived = ann
        .call("save_basics", &[("slug", "shared"), ("machine", "qemux86")])
        .await;
    assert_eq!(archived.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Someone outside the group learns nothing.
    let cam = app.logged_in("cam", "cam-password").await;
    assert_eq!(
        cam.call("project_configuration", &[("slug", "shared")])
            .await
            .status(),
        StatusCode::OK
    );
    let outsider_id = app.create_user("oli", "oli-password", false).await;
    let _ = outsider_id;
    let oli = app.logged_in("oli", "oli-password").await;
    assert_eq!(
        oli.call("project_configuration", &[("slug", "shared")])
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        oli.get("/export/shared").await.status(),
        StatusCode::NOT_FOUND
    );
}

async fn export_then_import_gives_the_same_file(app: TestApp) {
    let admin = app.admin().await;
    configured(&admin, "origin").await;
    ok(
        &admin,
        "set_variable",
        &[
            ("slug", "origin"),
            ("scope", "Infrastructure"),
            ("name", "PARALLEL_MAKE"),
            ("kind", "string"),
            ("value", "-j 4"),
        ],
    )
    .await;
    // How it builds travels too: workflow, shared directory and retention.
    ok(
        &admin,
        "save_definition",
        &[
            ("project", "origin"),
            ("source", "name: custom-build\nprocess:\n  wait: 1s\n"),
        ],
    )
    .await;
    ok(
        &admin,
        "set_build_workflow",
        &[("project", "origin"), ("definition", "custom-build")],
    )
    .await;
    ok(
        &admin,
        "set_build_directory",
        &[("project", "origin"), ("directory", "/srv/build/origin")],
    )
    .await;
    ok(
        &admin,
        "set_build_retention",
        &[
            ("project", "origin"),
            ("keep_builds", "10"),
            ("keep_days", "30"),
            ("keep_size", "2 GiB"),
        ],
    )
    .await;
    let exported: String =
        serde_json::from_value(ok(&admin, "export_project", &[("slug", "origin")]).await).unwrap();
    assert!(exported.starts_with("schema = 1\n"), "{exported}");
    assert!(
        exported.contains("[builds]\nworkflow = \"custom-build\"\ndirectory = \"/srv/build/origin\"\nkeep_builds = 10\nkeep_days = 30\nkeep_bytes = 2147483648\n"),
        "{exported}"
    );
    assert!(!exported.contains("t0p-s3cret"), "secrets are not exported");
    assert!(
        !exported.contains("PARALLEL_MAKE"),
        "infrastructure is not exported"
    );
    let download = admin.get("/export/origin").await;
    assert_eq!(download.status(), StatusCode::OK);
    assert!(
        download.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("origin.toml")
    );
    assert_eq!(download.text().await.unwrap(), exported);

    let copy = ok(
        &admin,
        "import_project",
        &[("file", exported.as_str()), ("slug", "copy")],
    )
    .await;
    assert_eq!(copy["slug"], "copy");
    assert_eq!(
        copy["other_permissions"]["view"], false,
        "imports are private"
    );
    let again: String =
        serde_json::from_value(ok(&admin, "export_project", &[("slug", "copy")]).await).unwrap();
    assert_eq!(
        again,
        exported.replace("slug = \"origin\"", "slug = \"copy\"")
    );
    // Only administrators give a project a shared build directory.
    app.create_user("ann", "ann-password-1", false).await;
    let ann = app.logged_in("ann", "ann-password-1").await;
    let refused = ann
        .call(
            "import_project",
            &[("file", exported.as_str()), ("slug", "anns")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.text().await.unwrap().contains("builds.directory"),
        "the refusal names its key"
    );
    assert_eq!(
        audit_rows(&app, "project.import", "project", &copy["id"].to_string())
            .await
            .len(),
        1
    );

    // Under its own slug, the file comes back byte for byte.
    ok(
        &admin,
        "delete_project",
        &[("slug", "origin"), ("confirm", "origin")],
    )
    .await;
    ok(&admin, "import_project", &[("file", exported.as_str())]).await;
    let round: String =
        serde_json::from_value(ok(&admin, "export_project", &[("slug", "origin")]).await).unwrap();
    assert_eq!(round, exported);
}

async fn invalid_project_files_create_nothing(app: TestApp) {
    let admin = app.admin().await;
    let good = "schema = 1\n[project]\nname = \"P\"\nslug = \"p\"\n[configuration]\nmachine = \"qemux86-64\"\n";
    let cases = [
        (
            "schema = 2\n[project]\nname = \"P\"\nslug = \"p\"\n[configuration]\n",
            "schema: unknown schema version 2",
        ),
        ("[project]\nname = \"P\"\nslug = \"p\"\n", "schema"),
        ("schema = 1\nname = = \n", ""),
        (
            &format!("{good}colour = \"red\"\n") as &str,
            "configuration.colour",
        ),
        (
            &format!(
                "{good}[[configuration.layers]]\nname = \"meta-x\"\npath = \"/a\"\n[configuration.layers.git]\nurl = \"https://x/y\"\nref = \"main\"\n"
            ),
            "configuration.layers[0]",
        ),
        (
            &format!(
                "{good}[[configuration.layers]]\nname = \"meta-x\"\n[configuration.layers.git]\nurl = \"-uhttps://x\"\nref = \"main\"\n"
            ),
            "configuration.layers[0].url",
        ),
        (
            &format!(
                "{good}[[configuration.variables]]\nname = \"X\"\ntype = \"integer\"\nvalue = \"many\"\n"
            ),
            "configuration.variables[0].value",
        ),
        (
            &format!(
                "{good}[[configuration.variables]]\nname = \"X\"\ntype = \"colour\"\nvalue = \"red\"\n"
            ),
            "configuration.variables[0].type",
        ),
        (
            "schema = 1\n[project]\nname = \"\"\nslug = \"p\"\n[configuration]\n",
            "project.name",
        ),
    ];
    let before = audit_count(&app).await;
    for (file, path) in cases {
        let response = admin.call("import_project", &[("file", file)]).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{file}"
        );
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["Invalid"]["field"], "file", "{error}");
        let message = error["Invalid"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(path),
            "{message:?} should start with {path:?}"
        );
    }
    assert_eq!(audit_count(&app).await, before);
    let list = ok(&admin, "list_projects", &[("query[tab]", "All")]).await;
    assert_eq!(list["total"], 0, "nothing was created");
    ok(&admin, "import_project", &[("file", good)]).await;
}

/// Saves that read before they write, all at once: none may fail for the database's locking
/// (on SQLite a transaction that reads first must not have to upgrade its lock later).
async fn simultaneous_saves_all_succeed(app: TestApp) {
    let client = app.admin().await;
    const PROJECTS: usize = 16;
    let mut ids = Vec::new();
    for i in 0..PROJECTS {
        let project = create_project(&client, &format!("parallel-{i}"), &[]).await;
        ids.push(project["id"].to_string());
    }
    let mut saves = tokio::task::JoinSet::new();
    for i in 0..PROJECTS {
        let client = client.clone();
        saves.spawn(async move {
            let slug = format!("parallel-{i}");
            let form = [("slug", slug.as_str()), ("machine", "qemux86-64")];
            let response = client.call("save_basics", &form).await;
            (response.status(), response.text().await.unwrap())
        });
    }
    while let Some(result) = saves.join_next().await {
        let (status, body) = result.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    for id in ids {
        assert_eq!(
            audit_rows(&app, "project.configure", "project", &id)
                .await
                .len(),
            1
        );
    }
}
