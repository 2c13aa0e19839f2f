//! The shipped `fake-bitbake`: its output reads as BitBake's does, it fails when asked, and it
//! leaves images and logs where BitBake leaves them.

use app::builds::bitbake_output::{Event, Level, Reader, TaskState};
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
    let mut reader = Reader::new(None, 0);
    let events: Vec<Event> = String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .flat_map(|line| reader.read(line))
        .collect();
    (output, events)
}

fn build_dir(local_conf: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("conf")).unwrap();
    std::fs::write(dir.path().join("conf/local.conf"), local_conf).unwrap();
    dir
}

/// The messages of `level`, with the continuation lines they gained.
fn messages(events: &[Event], level: Level) -> Vec<&str> {
    let mut all: Vec<(u64, Level, &str)> = Vec::new();
    for event in events {
        match event {
            Event::Message(m) => all.push((m.line, m.level, m.text.as_str())),
            Event::MessageText { line, text } => {
                if let Some(m) = all.iter_mut().find(|m| m.0 == *line) {
                    m.2 = text;
                }
            }
            _ => {}
        }
    }
    all.into_iter()
        .filter(|m| m.1 == level)
        .map(|m| m.2)
        .collect()
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

    // On a pipe, as a worker runs it: parsing is read as done.
    assert_eq!(events.first(), Some(&Event::Parsing { percent: 100 }));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("\nParsing recipes...done.\n"), "{stdout}");
    assert!(!stdout.contains('\u{1b}'), "{stdout}");
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
    assert!(messages(&events, Level::Error).is_empty());
    assert_eq!(messages(&events, Level::Warning).len(), 1);
    assert!(events.contains(&Event::Counted {
        level: Level::Warning,
        count: 1
    }));

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
    // One error of its own, as BitBake counts; its log and exit code go with the task.
    assert_eq!(
        messages(&events, Level::Error),
        ["busybox-1.36.1-r0 do_compile: oe_runmake failed"]
    );
    assert!(events.contains(&Event::Counted {
        level: Level::Error,
        count: 1
    }));
    let failures: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::TaskFailure { recipe, task, text }
                if recipe == "busybox" && task == "do_compile" =>
            {
                text.as_deref()
            }
            _ => None,
        })
        .collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    let log = failures[0]
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
fn setscene_tasks_come_before_the_tasks() {
    let dir = build_dir("FAKE_BITBAKE_TASKS = \"12\"\nFAKE_BITBAKE_SETSCENE = \"4\"\n");
    let (output, events) = run(dir.path(), &[], &["core-image-minimal"]);
    assert!(output.status.success(), "{output:?}");
    let setscene: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Setscene { number, total } => Some((*number, *total)),
            _ => None,
        })
        .collect();
    assert_eq!(setscene, (1..=4).map(|n| (n, 4)).collect::<Vec<_>>());
    let completed = events
        .iter()
        .position(|e| *e == Event::SetsceneCompleted)
        .unwrap();
    let first_task = events
        .iter()
        .position(|e| matches!(e, Event::Running { .. }))
        .unwrap();
    assert!(completed < first_task);
    assert!(
        tasks(&events, TaskState::Succeeded)
            .contains(&"quilt-native:do_populate_sysroot_setscene".to_owned())
    );
}

#[test]
fn the_terminal_form_is_there_on_request_and_read_as_well() {
    let dir = build_dir("FAKE_BITBAKE_TASKS = \"10\"\nFAKE_BITBAKE_OUTPUT = \"terminal\"\n");
    let (output, events) = run(
        dir.path(),
        &[("FAKE_BITBAKE_FAIL", "quilt-native:do_configure")],
        &["core-image-minimal"],
    );
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Parsing recipes: 100% |"), "{stdout}");
    assert!(stdout.contains("\u{1b}[1;31mERROR\u{1b}[0m: "), "{stdout}");
    assert!(!stdout.contains("NOTE: Running task"), "{stdout}");
    assert!(events.contains(&Event::Parsing { percent: 100 }));
    // The footer's count is all there is of the tasks.
    assert!(events.contains(&Event::Running {
        number: 4,
        total: 10
    }));
    assert_eq!(
        messages(&events, Level::Error),
        ["quilt-native-0.67-r0 do_configure: oe_runmake failed"]
    );
    assert_eq!(messages(&events, Level::Warning).len(), 1);
    assert!(events.iter().any(|e| matches!(e, Event::TaskFailure { recipe, task, text: None } if recipe == "quilt-native" && task == "do_configure")));
    // The cooker log has no colours.
    let cooker = std::fs::read_dir(dir.path().join("tmp/log/cooker/qemux86-64"))
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect::<String>();
    assert!(cooker.contains("\nERROR: quilt-native-0.67-r0 do_configure: oe_runmake failed\n"));
    assert!(!cooker.contains('\u{1b}'));
}

#[test]
fn bad_requests_are_errors_bitbake_would_give() {
    let dir = build_dir("");
    let (output, events) = run(dir.path(), &[], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(matches!(&messages(&events, Level::Error)[..], [m] if m.starts_with("Nothing to do.")));

    let (output, events) = run(dir.path(), &[], &["../etc/passwd"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        matches!(&messages(&events, Level::Error)[..], [m] if m.contains("Nothing PROVIDES '../etc/passwd'. Close matches:\n  core-image-minimal"))
    );

    let (output, events) = run(
        dir.path(),
        &[("FAKE_BITBAKE_TASKS", "lots")],
        &["core-image-minimal"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        matches!(&messages(&events, Level::Error)[..], [m] if m.contains("FAKE_BITBAKE_TASKS"))
    );
}
