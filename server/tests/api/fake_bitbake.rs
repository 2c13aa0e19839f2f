//! The shipped `fake-bitbake`: its output reads as BitBake's does, it fails when asked, and it
//! leaves images and logs where BitBake leaves them.

use app::builds::bitbake_output::{Event, TaskState, read};
use std::path::Path;
use std::process::Output;

fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (Output, Vec<Event>) {
    let output = std::process::Command::new(crate::helpers::fake_bitbake())
        .current_dir(dir)
        .env_remove("FAKE_BITBAKE_TASKS")
        .env_remove("FAKE_BITBAKE_FAIL")
        .env("FAKE_BITBAKE_TASK_MS", "0")
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap();
    let events = String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .filter_map(read)
        .collect();
    (output, events)
}

fn build_dir(local_conf: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("conf")).unwrap();
    std::fs::write(dir.path().join("conf/local.conf"), local_conf).unwrap();
    dir
}

fn tasks(events: &[Event], state: TaskState) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Task(t) if t.state == state => Some(format!("{}:{}", t.recipe, t.task)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_build_runs_every_task_and_leaves_its_images() {
    let dir = build_dir(
        "MACHINE ?= \"qemux86-64\"\nMACHINE = \"qemuarm\"\nFAKE_BITBAKE_TASKS = \"30\"\n",
    );
    let (output, events) = run(dir.path(), &[], &["-k", "--", "core-image-minimal"]);
    assert!(output.status.success(), "{output:?}");

    assert_eq!(events.first(), Some(&Event::Parsing { percent: 0 }));
    assert!(events.contains(&Event::Parsing { percent: 100 }));
    let running: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Running { number, total } => Some((*number, *total)),
            _ => None,
        })
        .collect();
    assert_eq!(running, (1..=30).map(|n| (n, 30)).collect::<Vec<_>>());
    let started = tasks(&events, TaskState::Started);
    assert_eq!(started.len(), 30);
    assert_eq!(started, tasks(&events, TaskState::Succeeded));
    assert!(tasks(&events, TaskState::Failed).is_empty());
    assert_eq!(
        started.last().unwrap(),
        "core-image-minimal:do_image_complete"
    );
    assert!(!events.iter().any(|e| matches!(e, Event::Error(_))));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::Warning(_)))
            .count(),
        1
    );

    let images = dir.path().join("tmp/deploy/images/qemuarm");
    let image = std::fs::read(images.join("core-image-minimal-qemuarm.rootfs.ext4")).unwrap();
    assert_eq!(image.len(), 256 * 1024);
    assert!(image.starts_with(b"fake-bitbake image core-image-minimal-qemuarm.rootfs.ext4\n"));
    let wic = std::fs::read(images.join("core-image-minimal-qemuarm.rootfs.wic")).unwrap();
    assert_ne!(image[64..], wic[64..], "each image has its own bytes");
    assert!(
        images
            .join("core-image-minimal-qemuarm.rootfs.manifest")
            .exists()
    );

    let cooker = std::fs::read_dir(dir.path().join("tmp/log/cooker/qemuarm"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect::<Vec<_>>();
    assert_eq!(cooker.len(), 1);
    assert_eq!(std::fs::read(&cooker[0]).unwrap(), output.stdout);
}

#[test]
fn a_build_fails_where_asked_and_says_why() {
    let dir = build_dir("MACHINE = \"qemux86-64\"\n");
    let (output, events) = run(
        dir.path(),
        &[("FAKE_BITBAKE_FAIL", "busybox:do_compile")],
        &["core-image-minimal"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        tasks(&events, TaskState::Failed),
        vec!["busybox:do_compile".to_owned()]
    );
    let errors: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Error(message) => Some(message.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(errors[0], "busybox-1.36.1-r0 do_compile: oe_runmake failed");
    let log = errors[1]
        .strip_prefix("Logfile of failure stored in: ")
        .unwrap();
    assert!(std::fs::read_to_string(log).unwrap().contains("Error 1"));
    assert!(!dir.path().join("tmp/deploy/images").exists());

    let (output, events) = run(
        dir.path(),
        &[("FAKE_BITBAKE_FAIL", "yes"), ("FAKE_BITBAKE_TASKS", "10")],
        &["core-image-minimal"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(tasks(&events, TaskState::Failed).len(), 1);
    assert_eq!(tasks(&events, TaskState::Started).len(), 6);
}

#[test]
fn bad_requests_are_errors_bitbake_would_give() {
    let dir = build_dir("");
    let (output, events) = run(dir.path(), &[], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(matches!(&events[..], [Event::Error(m)] if m.starts_with("Nothing to do.")));

    let (output, events) = run(dir.path(), &[], &["../etc/passwd"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        matches!(&events[0], Event::Error(m) if m.contains("Nothing PROVIDES '../etc/passwd'"))
    );

    let (output, events) = run(
        dir.path(),
        &[("FAKE_BITBAKE_TASKS", "lots")],
        &["core-image-minimal"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(matches!(&events[..], [Event::Error(m)] if m.contains("FAKE_BITBAKE_TASKS")));
}
