//! What a build's page tells of BitBake's output, as real BitBake prints it: on a pipe,
//! with setscene tasks, recipes whose version holds hyphens, multi-line messages and the
//! lines BitBake groups with a failed task; on a terminal; and wrapped by kas, whose line
//! prefix the project sets.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::builds::{ok, project, start, tasks, wait_for_state};
use crate::helpers::{TestApp, assert_invalid, audit_rows, fake_bitbake, on_each_database};

on_each_database!(
    configure = |settings| settings.embedded_workers = 1;
    a_pipes_output_is_read_as_bitbake_means_it,
    a_terminals_output_still_gives_tasks_and_failures,
    a_projects_line_prefix_is_taken_off_its_build_output,
);

/// A build command that prints the fixture `name`, written in BitBake's format, and
/// succeeds (the image targets it is given are ignored).
fn printing(name: &str) -> Value {
    let fixture = format!(
        "{}/../app/testdata/bitbake/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    assert!(std::path::Path::new(&fixture).is_file(), "{fixture}");
    json!(["sh", "-c", "cat \"$0\"", fixture])
}

fn messages<'a>(view: &'a Value, level: &str) -> Vec<&'a str> {
    view["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["level"] == level)
        .map(|m| m["text"].as_str().unwrap())
        .collect()
}

async fn a_pipes_output_is_read_as_bitbake_means_it(app: TestApp) {
    let admin = app.admin().await;
    project(
        &admin,
        "petalinux",
        "petalinux-image-minimal",
        &[],
        printing("pipe-failed.log"),
    )
    .await;
    let number = start(&admin, "petalinux").await;
    let view = wait_for_state(&admin, "petalinux", number, "succeeded").await;
    let summary = &view["summary"];
    // `Parsing recipes...done.` is parsing done.
    assert_eq!(summary["parse_percent"], 100, "{view:#}");
    // Setscene tasks and tasks, each with its own count; the bar kept the furthest it got.
    assert_eq!(summary["setscene_done"], 4851);
    assert_eq!(summary["setscene_total"], 4851);
    assert_eq!(summary["tasks_done"], 1961);
    assert_eq!(summary["tasks_total"], 11164);
    assert_eq!(summary["progress"], 42);
    // BitBake's own count: the failure's log and exit code are not errors of their own.
    assert_eq!(summary["errors"], 3);
    assert_eq!(summary["warnings"], 2);
    let errors = messages(&view, "error");
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors
            .iter()
            .all(|e| !e.starts_with("Logfile of failure") && !e.starts_with("Task ("))
    );
    // A message keeps its continuation lines: wget's output under the fetcher failure.
    assert!(
        errors[0].starts_with("mtd-utils-2.1.4-r0 do_fetch: Fetcher failure:")
            && errors[0].contains("\nHTTP request sent, awaiting response... 404 Not Found\n"),
        "{}",
        errors[0]
    );
    assert!(messages(&view, "warning")[1].ends_with("[installed-vs-shipped]"));

    let all = tasks(&admin, "petalinux", number).await;
    let named = |recipe: &str, task: &str| {
        all.iter()
            .find(|t| t["recipe"] == recipe && t["task"] == task)
            .unwrap_or_else(|| panic!("no {recipe}:{task} in {all:#?}"))
            .clone()
    };
    let uboot = named("u-boot-xlnx", "do_diffconfig");
    assert_eq!(
        uboot["version"],
        "v2021.01-xilinx-v2022.2+gitAUTOINC+b31476685d-r0"
    );
    assert_eq!(uboot["outcome"], "succeeded");
    assert_eq!(
        named("m4-native", "do_populate_sysroot_setscene")["outcome"],
        "succeeded"
    );
    assert_eq!(
        named("gcc-cross-aarch64", "do_compile")["version"],
        "11.3.0-r0"
    );
    // The failed task, with the lines BitBake grouped with it.
    let failed = view["failed_tasks"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(
        (failed[0]["recipe"].as_str(), failed[0]["task"].as_str()),
        (Some("mtd-utils"), Some("do_fetch"))
    );
    let failure = failed[0]["failure"].as_str().unwrap();
    assert!(
        failure.starts_with("Logfile of failure stored in: /build/tmp/work/"),
        "{failure}"
    );
    assert!(failure.ends_with("failed with exit code '1'"), "{failure}");
}

async fn a_terminals_output_still_gives_tasks_and_failures(app: TestApp) {
    let admin = app.admin().await;
    project(
        &admin,
        "terminal",
        "core-image-minimal",
        &[
            ("FAKE_BITBAKE_TASKS", "20", false),
            ("FAKE_BITBAKE_TASK_MS", "1", false),
            ("FAKE_BITBAKE_OUTPUT", "terminal", false),
            ("FAKE_BITBAKE_FAIL", "quilt-native:do_compile", false),
        ],
        json!([fake_bitbake()]),
    )
    .await;
    let number = start(&admin, "terminal").await;
    let view = wait_for_state(&admin, "terminal", number, "failed").await;
    let summary = &view["summary"];
    assert_eq!(summary["parse_percent"], 100, "{view:#}");
    // Only the footer counts tasks on a terminal: the fifth of twenty failed.
    assert_eq!(
        (
            summary["tasks_done"].as_u64(),
            summary["tasks_total"].as_u64()
        ),
        (Some(5), Some(20))
    );
    // Coloured levels are read as levels.
    assert_eq!(summary["errors"], 1);
    assert_eq!(summary["warnings"], 1);
    assert_eq!(
        messages(&view, "error"),
        ["quilt-native-0.67-r0 do_compile: oe_runmake failed"]
    );
    let failed = view["failed_tasks"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{view:#}");
    assert_eq!(failed[0]["recipe"], "quilt-native");
    assert_eq!(failed[0]["task"], "do_compile");
    assert!(
        failed[0]["failure"]
            .as_str()
            .unwrap()
            .contains("Logfile of failure stored in: ")
    );
}

async fn a_projects_line_prefix_is_taken_off_its_build_output(app: TestApp) {
    use app::ssr::entities::projects::{Column, Entity as Projects};
    let admin = app.admin().await;
    project(
        &admin,
        "kas",
        "core-image-minimal",
        &[],
        printing("kas.log"),
    )
    .await;
    let kas = app::builds::KAS_LINE_PREFIX;

    // Without the prefix, nothing kas wrapped is read.
    let number = start(&admin, "kas").await;
    let view = wait_for_state(&admin, "kas", number, "succeeded").await;
    assert_eq!(view["summary"]["tasks_total"], 0, "{view:#}");
    assert_eq!(view["summary"]["warnings"], 0);

    // Refused, each naming the field.
    for bad in [
        "(unclosed",
        &"a".repeat(app::builds::MAX_LINE_PREFIX_BYTES + 1),
        "a\u{1}",
    ] {
        assert_invalid(
            admin
                .call(
                    "set_build_line_prefix",
                    &[("project", "kas"), ("prefix", bad)],
                )
                .await,
            "line_prefix",
        )
        .await;
    }
    let workflow = ok(&admin, "read_build_workflow", &[("project", "kas")]).await;
    assert_eq!(workflow["line_prefix"], Value::Null);

    ok(
        &admin,
        "set_build_line_prefix",
        &[("project", "kas"), ("prefix", kas)],
    )
    .await;
    let workflow = ok(&admin, "read_build_workflow", &[("project", "kas")]).await;
    assert_eq!(workflow["line_prefix"], kas);
    let id = Projects::find()
        .filter(Column::Slug.eq("kas"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .id;
    assert_eq!(
        audit_rows(
            &app,
            "project.build_line_prefix",
            "project",
            &id.to_string()
        )
        .await
        .len(),
        1
    );

    let number = start(&admin, "kas").await;
    let view = wait_for_state(&admin, "kas", number, "succeeded").await;
    let summary = &view["summary"];
    assert_eq!(summary["parse_percent"], 100, "{view:#}");
    assert_eq!(summary["setscene_total"], 2);
    assert_eq!(summary["tasks_total"], 5112);
    assert_eq!(summary["warnings"], 1);
    assert_eq!(
        messages(&view, "warning"),
        ["busybox-1.36.1-r0 do_compile: a warning from the build"]
    );
    let all = tasks(&admin, "kas", number).await;
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0]["recipe"], "busybox");
    assert_eq!(all[0]["outcome"], "succeeded");

    // Empty reads lines as they are again.
    ok(
        &admin,
        "set_build_line_prefix",
        &[("project", "kas"), ("prefix", "")],
    )
    .await;
    let workflow = ok(&admin, "read_build_workflow", &[("project", "kas")]).await;
    assert_eq!(workflow["line_prefix"], Value::Null);
}
