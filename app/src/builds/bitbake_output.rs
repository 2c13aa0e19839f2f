//! Reading BitBake's console output, one line at a time: the parsing progress, the running
//! task count, each task's start and end, and the errors and warnings a build page lists.
//!
//! BitBake prints these lines the same way whether or not it writes to a terminal, so the
//! reader needs no state: each line is what it says, or nothing worth knowing.

use serde::{Deserialize, Serialize};

/// What one output line tells about a build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// `Parsing recipes: 45% |####      | ETA:  0:00:10`
    Parsing { percent: u8 },
    /// `NOTE: Running task 12 of 400 (/…/busybox_1.36.1.bb:do_compile)`, also setscene and
    /// noexec tasks: the build has reached task `number` of `total`.
    Running { number: u32, total: u32 },
    /// `NOTE: recipe busybox-1.36.1-r0: task do_compile: Started` (or `Succeeded`, `Failed`).
    Task(TaskEvent),
    /// `ERROR: …`
    Error(String),
    /// `WARNING: …`
    Warning(String),
}

/// One task of one recipe changing state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskEvent {
    /// The recipe's name, `busybox`.
    pub recipe: String,
    /// The recipe's version and revision, `1.36.1-r0`.
    pub version: String,
    /// The task, `do_compile`.
    pub task: String,
    pub state: TaskState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    Started,
    Succeeded,
    Failed,
}

/// What `line` (without its line ending) tells, if anything.
pub fn read(line: &str) -> Option<Event> {
    let line = line.trim_end();
    if let Some(note) = line.strip_prefix("NOTE: ") {
        return running(note).or_else(|| task(note));
    }
    if let Some(message) = line.strip_prefix("ERROR: ") {
        return Some(Event::Error(message.to_owned()));
    }
    if let Some(message) = line.strip_prefix("WARNING: ") {
        return Some(Event::Warning(message.to_owned()));
    }
    parsing(line)
}

/// `Running task 12 of 400 (…)`, `Running setscene task 3 of 90 (…)`,
/// `Running noexec task 7 of 400 (…)`.
fn running(note: &str) -> Option<Event> {
    let rest = note.strip_prefix("Running ")?;
    let rest = rest
        .strip_prefix("setscene ")
        .or_else(|| rest.strip_prefix("noexec "))
        .unwrap_or(rest);
    let rest = rest.strip_prefix("task ")?;
    let (number, rest) = rest.split_once(" of ")?;
    let total = rest.split(' ').next()?;
    let (number, total) = (number.parse().ok()?, total.parse().ok()?);
    (number <= total).then_some(Event::Running { number, total })
}

/// `recipe busybox-1.36.1-r0: task do_compile: Started`.
fn task(note: &str) -> Option<Event> {
    let rest = note.strip_prefix("recipe ")?;
    let (full, rest) = rest.split_once(": task ")?;
    let (task, state) = rest.split_once(": ")?;
    let state = match state {
        "Started" => TaskState::Started,
        "Succeeded" => TaskState::Succeeded,
        "Failed" => TaskState::Failed,
        _ => return None,
    };
    if full.is_empty() || task.is_empty() || task.contains(' ') {
        return None;
    }
    // `PN-PV-PR`: the name may hold hyphens, the version and revision do not.
    let (recipe, version) = match full.rsplitn(3, '-').collect::<Vec<_>>()[..] {
        [revision, version, name] if !name.is_empty() => (name, format!("{version}-{revision}")),
        _ => (full, String::new()),
    };
    Some(Event::Task(TaskEvent {
        recipe: recipe.to_owned(),
        version,
        task: task.to_owned(),
        state,
    }))
}

/// `Parsing recipes: 45% |####    | ETA:  0:00:10`.
fn parsing(line: &str) -> Option<Event> {
    let rest = line.strip_prefix("Parsing recipes: ")?;
    let (percent, _) = rest.split_once('%')?;
    let percent: u8 = percent.trim().parse().ok()?;
    (percent <= 100).then_some(Event::Parsing { percent })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task_event(recipe: &str, version: &str, task: &str, state: TaskState) -> Option<Event> {
        Some(Event::Task(TaskEvent {
            recipe: recipe.into(),
            version: version.into(),
            task: task.into(),
            state,
        }))
    }

    #[test]
    fn parsing_progress_is_read() {
        assert_eq!(
            read("Parsing recipes:  45% |#####          | ETA:  0:00:10"),
            Some(Event::Parsing { percent: 45 })
        );
        assert_eq!(
            read("Parsing recipes: 100% |###############| Time: 0:00:21\n"),
            Some(Event::Parsing { percent: 100 })
        );
        assert_eq!(read("Parsing recipes: 140% |"), None);
        assert_eq!(read("Parsing recipes: lots% |"), None);
    }

    #[test]
    fn running_tasks_are_counted() {
        assert_eq!(
            read(
                "NOTE: Running task 12 of 400 (/poky/meta/recipes-core/busybox/busybox_1.36.1.bb:do_compile)"
            ),
            Some(Event::Running {
                number: 12,
                total: 400
            })
        );
        assert_eq!(
            read(
                "NOTE: Running setscene task 3 of 90 (/poky/meta/recipes-core/glibc/glibc_2.39.bb:do_populate_sysroot_setscene)"
            ),
            Some(Event::Running {
                number: 3,
                total: 90
            })
        );
        assert_eq!(
            read("NOTE: Running noexec task 7 of 400 (/x.bb:do_build)"),
            Some(Event::Running {
                number: 7,
                total: 400
            })
        );
        assert_eq!(read("NOTE: Running task 500 of 400 (/x.bb:do_build)"), None);
        assert_eq!(
            read("NOTE: Running task many of 400 (/x.bb:do_build)"),
            None
        );
    }

    #[test]
    fn task_states_are_read_with_recipe_and_version() {
        assert_eq!(
            read("NOTE: recipe busybox-1.36.1-r0: task do_compile: Started"),
            task_event("busybox", "1.36.1-r0", "do_compile", TaskState::Started)
        );
        assert_eq!(
            read("NOTE: recipe linux-yocto-6.6.21+git-r0: task do_kernel_metadata: Succeeded"),
            task_event(
                "linux-yocto",
                "6.6.21+git-r0",
                "do_kernel_metadata",
                TaskState::Succeeded
            )
        );
        assert_eq!(
            read("NOTE: recipe core-image-minimal-1.0-r0: task do_rootfs: Failed"),
            task_event(
                "core-image-minimal",
                "1.0-r0",
                "do_rootfs",
                TaskState::Failed
            )
        );
        assert_eq!(
            read("NOTE: recipe odd: task do_fetch: Started"),
            task_event("odd", "", "do_fetch", TaskState::Started)
        );
        assert_eq!(
            read("NOTE: recipe busybox-1.36.1-r0: task do_compile: Paused"),
            None
        );
    }

    #[test]
    fn errors_and_warnings_keep_their_message() {
        assert_eq!(
            read("ERROR: busybox-1.36.1-r0 do_compile: oe_runmake failed"),
            Some(Event::Error(
                "busybox-1.36.1-r0 do_compile: oe_runmake failed".into()
            ))
        );
        assert_eq!(
            read("WARNING: Host distribution \"debian-12\" has not been validated"),
            Some(Event::Warning(
                "Host distribution \"debian-12\" has not been validated".into()
            ))
        );
    }

    #[test]
    fn other_lines_tell_nothing() {
        for line in [
            "",
            "Loading cache: 100% |########| Time: 0:00:00",
            "NOTE: Executing Tasks",
            "NOTE: Tasks Summary: Attempted 400 tasks of which 0 didn't need to be rerun and all succeeded.",
            "| make: *** [Makefile:12: all] Error 2",
            "BB_VERSION           = \"2.8.0\"",
            "<script>NOTE: recipe x-1-r0: task do_fetch: Started",
        ] {
            assert_eq!(read(line), None, "{line}");
        }
    }
}
