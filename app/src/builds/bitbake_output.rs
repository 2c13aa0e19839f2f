//! Reading BitBake's console output: the parsing progress, the setscene and task counts,
//! each task's start and end, the errors and warnings a build page lists (with their
//! continuation lines), the lines BitBake groups with a failed task, and its summaries.
//!
//! BitBake writes differently to a pipe (`Parsing recipes...done.`, `NOTE: Running task 12
//! of 400 (…)`) and to a terminal (progress bars, colours, `Currently  2 running tasks (320
//! of 8598)`); both forms are read. Colours and other ANSI sequences are dropped through
//! [`super::ansi`] and a project's line prefix (a wrapper's, such as kas's timestamps) is
//! taken off before a line is read. Some lines mean something only with those before them
//! (a message's continuation lines, the recipe file a `Running task` line named, the tasks
//! after `Summary: 1 task failed:`), so a build's output is read by one [`Reader`], a small
//! state kept per build, from its first line on.

use std::collections::{HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

/// The most lines one error or warning keeps, its first line included; the log has it whole.
pub const MAX_MESSAGE_LINES: usize = 40;

/// The most bytes one error or warning keeps; the log has it whole.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// Recipe files and names remembered for telling a recipe's name from its version.
const MAX_REMEMBERED: usize = 8192;

/// `Running task` lines remembered while their task's `Started` line has not come.
const MAX_WAITING: usize = 1024;

/// What one output line tells about a build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// `Parsing recipes: 45% |####      | ETA:  0:00:10` on a terminal; `Parsing
    /// recipes...done.` and `Parsing of 912 .bb files complete (…)` are 100.
    Parsing { percent: u8 },
    /// `NOTE: Running setscene task 3 of 90 (…)`, or `Setscene tasks: 3 of 90` on a terminal.
    Setscene { number: u32, total: u32 },
    /// `NOTE: Setscene tasks completed`.
    SetsceneCompleted,
    /// `NOTE: Running task 12 of 400 (…)`, also noexec tasks, or `Currently  2 running tasks
    /// (12 of 400)` on a terminal: the build has reached task `number` of `total`.
    Running { number: u32, total: u32 },
    /// `NOTE: recipe busybox-1.36.1-r0: task do_compile: Started` (or `Succeeded`,
    /// `Failed`).
    Task(TaskEvent),
    /// A task failed, as a line BitBake groups with the task tells: `ERROR: Logfile of
    /// failure stored in: …` and `ERROR: Task (…) failed with exit code '1'` (its `text`,
    /// which BitBake's own count of errors leaves out), or the task's name after `Summary: 1
    /// task failed:` (no text). On a terminal these are all that tell of a failed task.
    TaskFailure {
        recipe: String,
        task: String,
        text: Option<String>,
    },
    /// `NOTE: Tasks Summary: Attempted 557 tasks of which 541 didn't need to be rerun and
    /// all succeeded.` (or `and 1 failed.`).
    TasksSummary {
        attempted: u32,
        not_rerun: u32,
        failed: u32,
    },
    /// `Summary: There were 4 ERROR messages shown, returning a non-zero exit code.`: BitBake's
    /// own count of the build's errors or warnings.
    Counted { level: Level, count: u32 },
    /// An `ERROR:` or `WARNING:` message, told at its first line.
    Message(Message),
    /// A message gained continuation lines: the message begun on line `line`, its whole text
    /// so far (its lines joined with `\n`).
    MessageText { line: u64, text: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Level {
    Error,
    Warning,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
        }
    }
}

/// An error or warning: its text (lines joined with `\n`) and the number of its first line
/// among the lines read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub level: Level,
    pub text: String,
    pub line: u64,
}

/// One task of one recipe changing state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskEvent {
    /// The recipe's name, `busybox`.
    pub recipe: String,
    /// The recipe's version and revision, `1.36.1-r0`; empty when the line does not say.
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

pub use super::MAX_LINE_PREFIX_BYTES;

/// A pattern matched at the start of each line and taken off before the line is read, for
/// output a wrapper prefixes (kas: `2023-09-20 16:16:43 - INFO     - `).
#[derive(Debug, Clone)]
pub struct LinePrefix(regex::Regex);

impl LinePrefix {
    /// `pattern` (a regular expression, matched at the start of a line) checked: at most
    /// [`MAX_LINE_PREFIX_BYTES`], without control characters, and one that compiles within
    /// a small size. Empty or blank is none; otherwise its spaces count, a trailing one too.
    pub fn parse(pattern: &str) -> Result<Option<Self>, String> {
        if pattern.trim().is_empty() {
            return Ok(None);
        }
        if pattern.len() > MAX_LINE_PREFIX_BYTES {
            return Err(format!(
                "A pattern of at most {MAX_LINE_PREFIX_BYTES} bytes."
            ));
        }
        if pattern.chars().any(char::is_control) {
            return Err("A pattern without control characters; write them as `\\t`.".into());
        }
        regex::RegexBuilder::new(&format!("^(?:{pattern})"))
            .size_limit(1 << 20)
            .build()
            .map(|regex| Some(Self(regex)))
            .map_err(|error| match error {
                regex::Error::CompiledTooBig(_) => "The pattern is too large.".to_owned(),
                error => format!("Not a regular expression: {error}"),
            })
    }

    /// `line` without the prefix, if it starts with one.
    fn strip<'a>(&self, line: &'a str) -> &'a str {
        self.0.find(line).map_or(line, |found| &line[found.end()..])
    }
}

/// An error or warning still taking continuation lines.
struct Open {
    message: Message,
    lines: usize,
}

/// Reads one build's output, line by line; see the module's documentation.
#[derive(Default)]
pub struct Reader {
    prefix: Option<LinePrefix>,
    /// Lines read.
    lines: u64,
    open: Option<Open>,
    /// `Running task` lines whose task has not started yet: the task and the recipe file.
    waiting: VecDeque<(String, String)>,
    /// The recipe name each recipe file turned out to hold.
    recipe_of_file: HashMap<String, String>,
    /// Recipe names seen in this build.
    recipes: HashSet<String>,
    /// A `…...` progress line is waiting for its `done.`: the phase's name.
    phase: Option<&'static str>,
    /// After `Summary: N tasks failed:`, lines naming a failed task each.
    failed_list: bool,
    /// A failure line whose recipe its path does not tell: the task, and the line, kept for
    /// the task's `Failed` line.
    unclaimed: Option<(String, String)>,
}

impl Reader {
    /// A reader of output whose lines may start with `prefix`, from its first line; a reader
    /// started on a log that has lines already counts from `lines_before`.
    pub fn new(prefix: Option<LinePrefix>, lines_before: u64) -> Self {
        Self {
            prefix,
            lines: lines_before,
            ..Self::default()
        }
    }

    /// What `line` (without its line ending) tells, with what the lines before it left open
    /// and it ended.
    pub fn read(&mut self, line: &str) -> Vec<Event> {
        self.lines += 1;
        let plain = super::ansi::plain(line);
        let mut text = plain.as_str();
        if let Some(prefix) = &self.prefix {
            text = prefix.strip(text);
        }
        let text = text.trim_end();
        let mut events = Vec::new();
        if self.failed_list {
            if let Some(failure) = self.failed_task(text) {
                events.push(failure);
                return events;
            }
            if text.trim_start().starts_with("log: ") {
                return events;
            }
            self.failed_list = false;
        }
        let ends_phase = self.phase.is_some() && text == "done.";
        if self.open.is_some() && !is_bitbake_line(text) && !ends_phase {
            self.continue_message(text, &mut events);
            return events;
        }
        self.close();
        self.line(text, &mut events);
        events
    }

    /// The output ended (its step is over): a message still taking lines takes no more.
    pub fn finish(&mut self) {
        self.close();
    }

    fn line(&mut self, text: &str, events: &mut Vec<Event>) {
        if let Some(note) = text.strip_prefix("NOTE: ") {
            self.note(note, events);
        } else if let Some(message) = text.strip_prefix("ERROR: ") {
            if !self.failure(message, events) {
                self.open(Level::Error, message, events);
            }
        } else if let Some(message) = text.strip_prefix("WARNING: ") {
            self.open(Level::Warning, message, events);
        } else if let Some(summary) = text.strip_prefix("Summary: ") {
            self.summary(summary, events);
        } else if text == "done." {
            if self.phase.take() == Some("Parsing recipes") {
                events.push(Event::Parsing { percent: 100 });
            }
        } else if let Some((phase, rest)) = PHASES
            .iter()
            .find_map(|phase| Some((*phase, text.strip_prefix(phase)?.strip_prefix("...")?)))
        {
            // On a pipe the phase is written, then `done.` when it ends; what is logged
            // meanwhile continues the same line.
            self.phase = Some(phase);
            if !rest.is_empty() {
                self.line(rest, events);
            }
        } else if let Some(event) = terminal_line(text) {
            events.push(event);
        }
    }

    fn note(&mut self, note: &str, events: &mut Vec<Event>) {
        if note == "Setscene tasks completed" {
            events.push(Event::SetsceneCompleted);
        } else if let Some(event) = self.running(note) {
            events.push(event);
        } else if let Some(task) = self.task(note) {
            let claimed = match &self.unclaimed {
                Some((name, _)) => task.state == TaskState::Failed && *name == task.task,
                None => false,
            };
            if let (true, Some((_, text))) = (claimed, self.unclaimed.take()) {
                events.push(Event::TaskFailure {
                    recipe: task.recipe.clone(),
                    task: task.task.clone(),
                    text: Some(text),
                });
            }
            events.push(Event::Task(task));
        } else if let Some(event) = tasks_summary(note) {
            events.push(event);
        }
    }

    /// `Running task 12 of 400 (…/busybox_1.36.1.bb:do_compile)`, `Running setscene task 3
    /// of 90 (…)`, `Running noexec task 7 of 400 (…)`.
    fn running(&mut self, note: &str) -> Option<Event> {
        let rest = note.strip_prefix("Running ")?;
        let (kind, rest) = match rest.split_once(' ') {
            Some((kind @ ("setscene" | "noexec"), rest)) => (kind, rest),
            _ => ("", rest),
        };
        let rest = rest.strip_prefix("task ")?;
        let (number, rest) = rest.split_once(" of ")?;
        let (total, named) = rest.split_once(' ').unwrap_or((rest, ""));
        let (number, total): (u32, u32) = (number.parse().ok()?, total.parse().ok()?);
        if number > total {
            return None;
        }
        // Noexec tasks run nothing, so no `Started` line follows them.
        if kind != "noexec"
            && let Some((file, task)) = named
                .strip_prefix('(')
                .and_then(|n| n.strip_suffix(')'))
                .and_then(|n| n.rsplit_once(':'))
        {
            if self.waiting.len() >= MAX_WAITING {
                self.waiting.pop_front();
            }
            self.waiting.push_back((task.to_owned(), file.to_owned()));
        }
        Some(if kind == "setscene" {
            Event::Setscene { number, total }
        } else {
            Event::Running { number, total }
        })
    }

    /// `recipe busybox-1.36.1-r0: task do_compile: Started`.
    fn task(&mut self, note: &str) -> Option<TaskEvent> {
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
        let (recipe, version) = self.split_recipe(full, task);
        Some(TaskEvent {
            recipe,
            version,
            task: task.to_owned(),
            state,
        })
    }

    /// `full`, `PN-PV-PR`, as recipe name and version. The name may hold hyphens and so may
    /// the version, so what BitBake said is asked first: the recipe file of a `Running`
    /// line for `task` (named `PN_PV.bb`), then the names already seen in this build; only
    /// then is the last hyphen before the revision taken to end the name.
    fn split_recipe(&mut self, full: &str, task: &str) -> (String, String) {
        let mut found = None;
        for (at, (waiting_task, file)) in self.waiting.iter().enumerate() {
            if waiting_task != task {
                continue;
            }
            let known = self.recipe_of_file.get(file).cloned();
            let named = known.into_iter().chain(names_of_file(file));
            if let Some(name) = named
                .into_iter()
                .find(|name| version_after(full, name).is_some())
            {
                found = Some((at, file.clone(), name));
                break;
            }
        }
        let name = match found {
            Some((at, file, name)) => {
                self.waiting.remove(at);
                if self.recipe_of_file.len() >= MAX_REMEMBERED {
                    self.recipe_of_file.clear();
                }
                self.recipe_of_file.insert(file, name.clone());
                Some(name)
            }
            None => full
                .match_indices('-')
                .map(|(at, _)| &full[..at])
                .rev()
                .find(|name| self.recipes.contains(*name) && version_after(full, name).is_some())
                .map(str::to_owned),
        };
        let name = name.unwrap_or_else(|| guess_name(full).to_owned());
        if self.recipes.len() >= MAX_REMEMBERED {
            self.recipes.clear();
        }
        self.recipes.insert(name.clone());
        let version = full
            .strip_prefix(name.as_str())
            .and_then(|rest| rest.strip_prefix('-'))
            .unwrap_or_default()
            .to_owned();
        (name, version)
    }

    /// The recipe a recipe file (with its `virtual:…:` or `mc:…:` prefix) holds: the one a
    /// task of it turned out to be, or what its name says.
    fn recipe_in(&self, file: &str) -> String {
        self.recipe_of_file
            .get(file)
            .cloned()
            .or_else(|| names_of_file(file).into_iter().next())
            .unwrap_or_default()
    }

    /// `Logfile of failure stored in: …/PN/PV-PR/temp/log.do_task.PID` and `Task
    /// (FILE:do_task) failed with exit code '1'`, which belong to their task: whether
    /// `message` is one. A log whose path does not tell its recipe waits for its task's
    /// `Failed` line.
    fn failure(&mut self, message: &str, events: &mut Vec<Event>) -> bool {
        if let Some(path) = message.strip_prefix("Logfile of failure stored in: ") {
            let mut parts = path.trim().rsplit('/');
            let file = parts.next().unwrap_or_default();
            let task = file
                .strip_prefix("log.")
                .and_then(|rest| rest.rsplit_once('.'))
                .map_or(file, |(task, _)| task);
            match (parts.next(), parts.next(), parts.next()) {
                (Some("temp"), Some(_), Some(recipe)) if !recipe.is_empty() => {
                    events.push(Event::TaskFailure {
                        recipe: recipe.to_owned(),
                        task: task.to_owned(),
                        text: Some(message.to_owned()),
                    });
                }
                _ => self.unclaimed = Some((task.to_owned(), message.to_owned())),
            }
            return true;
        }
        let Some((file, task)) = message
            .strip_prefix("Task (")
            .and_then(|rest| rest.split_once(") failed with exit code"))
            .and_then(|(named, _)| named.rsplit_once(':'))
        else {
            return false;
        };
        events.push(Event::TaskFailure {
            recipe: self.recipe_in(file),
            task: task.to_owned(),
            text: Some(message.to_owned()),
        });
        true
    }

    /// A line after `Summary: N tasks failed:`: `  FILE:do_task`.
    fn failed_task(&self, text: &str) -> Option<Event> {
        let named = text.strip_prefix("  ")?.trim();
        let (file, task) = named.rsplit_once(':')?;
        if !task.starts_with("do_") || task.contains(' ') || file.is_empty() {
            return None;
        }
        Some(Event::TaskFailure {
            recipe: self.recipe_in(file),
            task: task.to_owned(),
            text: None,
        })
    }

    /// `There were 4 ERROR messages shown, …`, `There was 1 WARNING message.`, `1 task
    /// failed:`.
    fn summary(&mut self, summary: &str, events: &mut Vec<Event>) {
        if let Some(count) = summary
            .strip_suffix(" task failed:")
            .or_else(|| summary.strip_suffix(" tasks failed:"))
            && count.parse::<u32>().is_ok()
        {
            self.failed_list = true;
            return;
        }
        let Some(rest) = summary
            .strip_prefix("There were ")
            .or_else(|| summary.strip_prefix("There was "))
        else {
            return;
        };
        let Some((count, rest)) = rest.split_once(' ') else {
            return;
        };
        let level = if rest.starts_with("ERROR message") {
            Level::Error
        } else if rest.starts_with("WARNING message") {
            Level::Warning
        } else {
            return;
        };
        if let Ok(count) = count.parse() {
            events.push(Event::Counted { level, count });
        }
    }

    /// A message begins: it is told at once, and again with each line it gains.
    fn open(&mut self, level: Level, first: &str, events: &mut Vec<Event>) {
        let message = Message {
            level,
            text: cut(first, MAX_MESSAGE_BYTES).trim_end().to_owned(),
            line: self.lines,
        };
        events.push(Event::Message(message.clone()));
        self.open = Some(Open { message, lines: 1 });
    }

    fn continue_message(&mut self, text: &str, events: &mut Vec<Event>) {
        let Some(open) = &mut self.open else {
            return;
        };
        let room = MAX_MESSAGE_BYTES.saturating_sub(open.message.text.len() + 1);
        if open.lines >= MAX_MESSAGE_LINES || room == 0 {
            self.open = None;
            return;
        }
        let shown = open.message.text.trim_end().len();
        open.message.text.push('\n');
        open.message.text.push_str(cut(text, room));
        open.lines += 1;
        // Blank lines count only once something follows them.
        let text = open.message.text.trim_end();
        if text.len() != shown {
            events.push(Event::MessageText {
                line: open.message.line,
                text: text.to_owned(),
            });
        }
    }

    fn close(&mut self) {
        self.open = None;
    }
}

/// Phases BitBake writes on a pipe as `NAME...`, then `done.` once over.
const PHASES: &[&str] = &[
    "Loading cache",
    "Parsing recipes",
    "Initialising tasks",
    "Checking sstate mirror object availability",
];

/// Whether `text` is a line of BitBake's own, which ends a message's continuation lines.
fn is_bitbake_line(text: &str) -> bool {
    const STARTS: &[&str] = &[
        "NOTE: ",
        "ERROR: ",
        "WARNING: ",
        "DEBUG: ",
        "Summary: ",
        "Log data follows:",
        "Build Configuration:",
        "Sstate summary: ",
        "Loaded ",
        "Parsing of ",
        "Currently ",
        "No currently running tasks",
        "Setscene tasks: ",
    ];
    STARTS.iter().any(|start| text.starts_with(start))
        || PHASES.iter().any(|phase| text.starts_with(phase))
}

/// Lines BitBake writes on a terminal, or once on either: `Parsing recipes:  45% |…`,
/// `Parsing of 912 .bb files complete (…)`, `Setscene tasks: 3 of 90`, `Currently  2
/// running tasks (12 of 400)`.
fn terminal_line(text: &str) -> Option<Event> {
    if let Some(rest) = text.strip_prefix("Parsing recipes: ") {
        let (percent, _) = rest.split_once('%')?;
        let percent: u8 = percent.trim().parse().ok()?;
        return (percent <= 100).then_some(Event::Parsing { percent });
    }
    if text.starts_with("Parsing of ") && text.contains(" .bb files complete") {
        return Some(Event::Parsing { percent: 100 });
    }
    if let Some(rest) = text.strip_prefix("Setscene tasks: ") {
        let (number, total) = count_of(rest)?;
        return Some(Event::Setscene { number, total });
    }
    let counted = text
        .strip_prefix("Currently ")
        .and_then(|rest| rest.split_once(" running task"))
        .or_else(|| {
            text.strip_prefix("No currently running tasks")
                .map(|rest| ("0", rest))
        })?
        .1;
    let inner = counted.split_once('(')?.1.split_once(')')?.0;
    let (number, total) = count_of(inner)?;
    Some(Event::Running { number, total })
}

/// `12 of 400`, as long as the first is no more than the second.
fn count_of(text: &str) -> Option<(u32, u32)> {
    let (number, total) = text.trim().split_once(" of ")?;
    let total = total.split(' ').next()?;
    let (number, total): (u32, u32) = (number.trim().parse().ok()?, total.parse().ok()?);
    (number <= total).then_some((number, total))
}

/// `Tasks Summary: Attempted 557 tasks of which 541 didn't need to be rerun and all
/// succeeded.`, or `… and 2 failed.`.
fn tasks_summary(note: &str) -> Option<Event> {
    let rest = note.strip_prefix("Tasks Summary: Attempted ")?;
    let (attempted, rest) = rest.split_once(" tasks of which ")?;
    let (not_rerun, rest) = rest.split_once(" didn't need to be rerun and ")?;
    let failed = match rest.trim_end_matches('.') {
        "all succeeded" => 0,
        failed => failed.strip_suffix(" failed")?.parse().ok()?,
    };
    Some(Event::TasksSummary {
        attempted: attempted.parse().ok()?,
        not_rerun: not_rerun.parse().ok()?,
        failed,
    })
}

/// The recipe names a recipe file may hold: BitBake names a recipe from its file,
/// `PN_PV.bb`; a `virtual:native:` one is `PN-native`, `virtual:nativesdk:` `nativesdk-PN`
/// and `virtual:multilib:lib32:` `lib32-PN`. A recipe may set another name (`gcc-cross_13.2.bb`
/// holds `gcc-cross-x86_64`), so these are candidates to check.
fn names_of_file(file: &str) -> Vec<String> {
    let mut rest = file;
    let mut class = None;
    loop {
        if let Some(after) = rest.strip_prefix("mc:") {
            rest = after.split_once(':').map_or("", |(_, r)| r);
        } else if let Some(after) = rest.strip_prefix("virtual:") {
            let Some((kind, after)) = after.split_once(':') else {
                break;
            };
            if kind == "multilib" {
                let Some((variant, after)) = after.split_once(':') else {
                    break;
                };
                class = Some(format!("{variant}-"));
                rest = after;
            } else {
                class = Some(kind.to_owned());
                rest = after;
            }
        } else {
            break;
        }
    }
    let base = rest.rsplit('/').next().unwrap_or(rest);
    let Some(stem) = base.strip_suffix(".bb") else {
        return Vec::new();
    };
    let name = stem.split('_').next().unwrap_or(stem);
    if name.is_empty() {
        return Vec::new();
    }
    let mut names = Vec::new();
    match class.as_deref() {
        Some("native") if !name.ends_with("-native") => names.push(format!("{name}-native")),
        Some("nativesdk") if !name.starts_with("nativesdk-") => {
            names.push(format!("nativesdk-{name}"))
        }
        Some(variant) if variant.ends_with('-') => names.push(format!("{variant}{name}")),
        _ => {}
    }
    names.push(name.to_owned());
    names
}

/// What follows `name-` in `full`, when it reads as a version and revision (`1.36.1-r0`,
/// `v2021.01-xilinx-v2022.2+gitAUTOINC+b31476685d-r0`, `git-r0`).
fn version_after<'a>(full: &'a str, name: &str) -> Option<&'a str> {
    let rest = full.strip_prefix(name)?.strip_prefix('-')?;
    let (version, revision) = rest.rsplit_once('-')?;
    let mut chars = version.chars();
    let looks = match chars.next() {
        Some(c) if c.is_ascii_digit() => true,
        Some('v') => chars.next().is_some_and(|c| c.is_ascii_digit()),
        _ => version.starts_with("git") || version.starts_with("AUTOINC"),
    };
    (looks && !revision.is_empty()).then_some(rest)
}

/// Without anything BitBake said: the name ends at the last hyphen before the version and
/// revision, `PN-PV-PR`.
fn guess_name(full: &str) -> &str {
    match full.rsplitn(3, '-').collect::<Vec<_>>()[..] {
        [_, _, name] if !name.is_empty() => name,
        _ => full,
    }
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Output of a PetaLinux build on a pipe that fails fetching a recipe.
    const PIPE_FAILED: &str = include_str!("../../testdata/bitbake/pipe-failed.log");
    /// Output of a build on a terminal, in colour, with progress bars, that fails a task.
    const TERMINAL_FAILED: &str = include_str!("../../testdata/bitbake/terminal-failed.log");
    /// Output of a build run by kas, every line prefixed.
    const KAS: &str = include_str!("../../testdata/bitbake/kas.log");

    fn read_all(text: &str, prefix: Option<LinePrefix>) -> Vec<Event> {
        let mut reader = Reader::new(prefix, 0);
        let events = text.lines().flat_map(|line| reader.read(line)).collect();
        reader.finish();
        events
    }

    fn one(line: &str) -> Vec<Event> {
        read_all(line, None)
    }

    fn task_event(recipe: &str, version: &str, task: &str, state: TaskState) -> Event {
        Event::Task(TaskEvent {
            recipe: recipe.into(),
            version: version.into(),
            task: task.into(),
            state,
        })
    }

    /// The messages of `level` as the events left them, continuation lines and all.
    fn messages(events: &[Event], level: Level) -> Vec<Message> {
        let mut all: Vec<Message> = Vec::new();
        for event in events {
            match event {
                Event::Message(m) => all.push(m.clone()),
                Event::MessageText { line, text } => {
                    let m = all.iter_mut().find(|m| m.line == *line).unwrap();
                    m.text.clone_from(text);
                }
                _ => {}
            }
        }
        all.retain(|m| m.level == level);
        all
    }

    fn failures(events: &[Event]) -> Vec<(&str, &str, Option<&str>)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::TaskFailure { recipe, task, text } => {
                    Some((recipe.as_str(), task.as_str(), text.as_deref()))
                }
                _ => None,
            })
            .collect()
    }

    fn tasks(events: &[Event]) -> Vec<(String, String, String, TaskState)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Task(t) => {
                    Some((t.recipe.clone(), t.version.clone(), t.task.clone(), t.state))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn parsing_progress_is_read_in_both_forms() {
        assert_eq!(
            one("Parsing recipes:  45% |#####          | ETA:  0:00:10"),
            [Event::Parsing { percent: 45 }]
        );
        assert_eq!(
            one("Parsing recipes: 100% |###############| Time: 0:00:21\n"),
            [Event::Parsing { percent: 100 }]
        );
        assert_eq!(one("Parsing recipes: 140% |"), []);
        assert_eq!(one("Parsing recipes: lots% |"), []);
        // On a pipe.
        assert_eq!(
            one("Parsing recipes...done."),
            [Event::Parsing { percent: 100 }]
        );
        assert_eq!(one("Loading cache...done."), []);
        assert_eq!(
            one(
                "Parsing of 4461 .bb files complete (4459 cached, 2 parsed). 6822 targets, 412 skipped, 2 masked, 0 errors."
            ),
            [Event::Parsing { percent: 100 }]
        );
        // A warning logged while parsing continues the phase's line; `done.` follows alone.
        let events = read_all(
            "Parsing recipes...WARNING: /layers/meta-x/foo.bb: Unable to get checksum\ndone.",
            None,
        );
        assert_eq!(
            events,
            [
                Event::Message(Message {
                    level: Level::Warning,
                    text: "/layers/meta-x/foo.bb: Unable to get checksum".into(),
                    line: 1
                }),
                Event::Parsing { percent: 100 },
            ]
        );
    }

    #[test]
    fn setscene_and_tasks_are_counted_apart() {
        let events = read_all(
            "NOTE: Running setscene task 4028 of 4851 (/poky/meta/recipes-core/glibc/glibc_2.35.bb:do_populate_sysroot_setscene)\n\
             NOTE: Setscene tasks completed\n\
             NOTE: Running task 1958 of 11164 (/poky/meta/recipes-core/busybox/busybox_1.36.1.bb:do_compile)\n\
             NOTE: Running noexec task 1959 of 11164 (/x.bb:do_build)\n\
             NOTE: Running task 500 of 400 (/x.bb:do_build)\n\
             NOTE: Running task many of 400 (/x.bb:do_build)",
            None,
        );
        assert_eq!(
            events,
            [
                Event::Setscene {
                    number: 4028,
                    total: 4851
                },
                Event::SetsceneCompleted,
                Event::Running {
                    number: 1958,
                    total: 11164
                },
                Event::Running {
                    number: 1959,
                    total: 11164
                },
            ]
        );
        // On a terminal the footer counts both.
        assert_eq!(
            one("Setscene tasks: 301 of 4851"),
            [Event::Setscene {
                number: 301,
                total: 4851
            }]
        );
        assert_eq!(
            one("Currently  2 running tasks (320 of 8598):"),
            [Event::Running {
                number: 320,
                total: 8598
            }]
        );
        assert_eq!(
            one("No currently running tasks (8598 of 8598)"),
            [Event::Running {
                number: 8598,
                total: 8598
            }]
        );
    }

    #[test]
    fn task_states_are_read_with_recipe_and_version() {
        assert_eq!(
            one("NOTE: recipe busybox-1.36.1-r0: task do_compile: Started"),
            [task_event(
                "busybox",
                "1.36.1-r0",
                "do_compile",
                TaskState::Started
            )]
        );
        assert_eq!(
            one("NOTE: recipe linux-yocto-6.6.21+git-r0: task do_kernel_metadata: Succeeded"),
            [task_event(
                "linux-yocto",
                "6.6.21+git-r0",
                "do_kernel_metadata",
                TaskState::Succeeded
            )]
        );
        assert_eq!(
            one("NOTE: recipe odd: task do_fetch: Started"),
            [task_event("odd", "", "do_fetch", TaskState::Started)]
        );
        assert_eq!(
            one("NOTE: recipe busybox-1.36.1-r0: task do_compile: Paused"),
            []
        );
        assert_eq!(
            one("<script>NOTE: recipe x-1-r0: task do_fetch: Started"),
            []
        );
    }

    #[test]
    fn a_recipe_is_named_from_its_file_when_its_version_holds_hyphens() {
        let full = "u-boot-xlnx-v2021.01-xilinx-v2022.2+gitAUTOINC+b31476685d-r0";
        let events = read_all(
            &format!(
                "NOTE: Running task 1958 of 11164 (/layers/meta-xilinx/recipes-bsp/u-boot/u-boot-xlnx_2022.2.bb:do_diffconfig)\n\
                 NOTE: recipe {full}: task do_diffconfig: Started\n\
                 NOTE: recipe {full}: task do_diffconfig: Succeeded"
            ),
            None,
        );
        let version = "v2021.01-xilinx-v2022.2+gitAUTOINC+b31476685d-r0";
        assert_eq!(
            events[1..],
            [
                task_event("u-boot-xlnx", version, "do_diffconfig", TaskState::Started),
                // Known from its start, though no `Running` line names it again.
                task_event(
                    "u-boot-xlnx",
                    version,
                    "do_diffconfig",
                    TaskState::Succeeded
                ),
            ]
        );
        // Guessing from hyphens alone, as without the file, cuts the version.
        assert_eq!(guess_name(full), "u-boot-xlnx-v2021.01-xilinx");
    }

    #[test]
    fn recipe_files_name_their_recipes() {
        assert_eq!(
            names_of_file("/poky/meta/recipes-core/busybox/busybox_1.36.1.bb"),
            ["busybox"]
        );
        assert_eq!(
            names_of_file("/x/core-image-minimal.bb"),
            ["core-image-minimal"]
        );
        assert_eq!(
            names_of_file("virtual:native:/x/m4_1.4.19.bb"),
            ["m4-native", "m4"]
        );
        assert_eq!(
            names_of_file("mc:arm:virtual:nativesdk:/x/zlib_1.3.bb"),
            ["nativesdk-zlib", "zlib"]
        );
        assert_eq!(
            names_of_file("virtual:multilib:lib32:/x/glibc_2.39.bb"),
            ["lib32-glibc", "glibc"]
        );
        assert!(names_of_file("/x/foo.bbappend").is_empty());
        // A recipe that names itself otherwise than its file is not cut at the file's name.
        let events = read_all(
            "NOTE: Running task 9 of 90 (/poky/meta/recipes-devtools/gcc/gcc-cross_13.2.bb:do_compile)\n\
             NOTE: recipe gcc-cross-x86_64-13.2.0-r0: task do_compile: Started",
            None,
        );
        assert_eq!(
            events[1],
            task_event(
                "gcc-cross-x86_64",
                "13.2.0-r0",
                "do_compile",
                TaskState::Started
            )
        );
    }

    #[test]
    fn messages_keep_their_continuation_lines_up_to_a_limit() {
        let events = read_all(PIPE_FAILED, None);
        let errors = messages(&events, Level::Error);
        assert_eq!(errors.len(), 3, "{errors:#?}");
        let fetch = &errors[0];
        assert!(
            fetch
                .text
                .starts_with("mtd-utils-2.1.4-r0 do_fetch: Fetcher failure: ")
        );
        assert!(fetch.text.ends_with("HTTP request sent, awaiting response... 404 Not Found\n2023-09-20 16:16:44 ERROR 404: Not Found."), "{}", fetch.text);
        assert_eq!(fetch.text.lines().count(), 6);
        assert_eq!(fetch.line, 31);
        assert!(
            errors[2]
                .text
                .ends_with("needed by bar-1.0-r0.cortexa72_cortexa53")
        );
        let warnings = messages(&events, Level::Warning);
        assert_eq!(warnings.len(), 2);
        assert!(warnings[1].text.ends_with("[installed-vs-shipped]"));
        assert_eq!(warnings[1].text.lines().count(), 5);

        let long: String = (0..100).map(|n| format!("\nline {n}")).collect();
        let events = read_all(&format!("ERROR: first{long}\nNOTE: Executing Tasks"), None);
        let error = &messages(&events, Level::Error)[0].text;
        assert_eq!(error.lines().count(), MAX_MESSAGE_LINES);
        let wide = "x".repeat(3000);
        let events = read_all(&format!("WARNING: {wide}\n{wide}\n{wide}"), None);
        let warning = &messages(&events, Level::Warning)[0].text;
        assert!(warning.len() <= MAX_MESSAGE_BYTES, "{}", warning.len());
        // A message is told at its first line, and again as it grows.
        assert_eq!(
            one("ERROR: last words"),
            [Event::Message(Message {
                level: Level::Error,
                text: "last words".into(),
                line: 1
            })]
        );
        assert_eq!(
            read_all("WARNING: a\n\nb\n", None)[1..],
            [Event::MessageText {
                line: 1,
                text: "a\n\nb".into()
            }]
        );
    }

    #[test]
    fn failure_lines_go_with_their_task_and_bitbakes_count_is_read() {
        let events = read_all(PIPE_FAILED, None);
        let failures = failures(&events);
        // Its log, its exit code, and the summary naming it.
        assert_eq!(failures.len(), 3, "{failures:#?}");
        assert!(
            failures
                .iter()
                .all(|(recipe, task, _)| (*recipe, *task) == ("mtd-utils", "do_fetch"))
        );
        assert!(
            failures[0]
                .2
                .unwrap()
                .starts_with("Logfile of failure stored in: ")
        );
        assert!(
            failures[1]
                .2
                .unwrap()
                .ends_with("failed with exit code '1'")
        );
        assert_eq!(failures[2].2, None);
        assert!(events.contains(&Event::Counted {
            level: Level::Error,
            count: 3
        }));
        assert!(events.contains(&Event::Counted {
            level: Level::Warning,
            count: 2
        }));
        assert!(events.contains(&Event::TasksSummary {
            attempted: 1961,
            not_rerun: 1940,
            failed: 1
        }));
        let failed: Vec<_> = tasks(&events)
            .into_iter()
            .filter(|t| t.3 == TaskState::Failed)
            .collect();
        assert_eq!(
            failed,
            [(
                "mtd-utils".into(),
                "2.1.4-r0".into(),
                "do_fetch".into(),
                TaskState::Failed
            )]
        );
        assert_eq!(
            one(
                "NOTE: Tasks Summary: Attempted 557 tasks of which 541 didn't need to be rerun and all succeeded."
            ),
            [Event::TasksSummary {
                attempted: 557,
                not_rerun: 541,
                failed: 0
            }]
        );
        assert_eq!(
            one("Summary: There were 4 ERROR messages shown, returning a non-zero exit code."),
            [Event::Counted {
                level: Level::Error,
                count: 4
            }]
        );
    }

    #[test]
    fn a_terminals_output_is_read_without_its_colours() {
        let events = read_all(TERMINAL_FAILED, None);
        assert!(events.contains(&Event::Parsing { percent: 100 }));
        assert!(events.contains(&Event::Setscene {
            number: 301,
            total: 301
        }));
        assert!(events.contains(&Event::Running {
            number: 320,
            total: 8598
        }));
        assert!(events.contains(&Event::Running {
            number: 5120,
            total: 8598
        }));
        let warnings = messages(&events, Level::Warning);
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0]
                .text
                .starts_with("Host distribution \"ubuntu-23.04\"")
        );
        let errors = messages(&events, Level::Error);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert_eq!(
            errors[0].text,
            "busybox-1.36.1-r0 do_compile: oe_runmake failed"
        );
        assert!(events.contains(&Event::Counted {
            level: Level::Error,
            count: 1
        }));
        // Only the failure lines and the summary name the failed task here.
        assert_eq!(tasks(&events), []);
        let failures = failures(&events);
        assert_eq!(failures.len(), 3, "{failures:#?}");
        assert!(
            failures
                .iter()
                .all(|(recipe, task, _)| (*recipe, *task) == ("busybox", "do_compile"))
        );
        assert!(events.contains(&Event::TasksSummary {
            attempted: 5120,
            not_rerun: 4800,
            failed: 1
        }));
    }

    #[test]
    fn a_configured_prefix_is_taken_off_each_line() {
        assert_eq!(
            messages(&read_all(KAS, None), Level::Warning).len(),
            0,
            "without the prefix nothing is read"
        );
        let kas = LinePrefix::parse(super::super::KAS_LINE_PREFIX).unwrap();
        let events = read_all(KAS, kas);
        assert!(events.contains(&Event::Parsing { percent: 100 }));
        assert!(events.contains(&Event::Setscene {
            number: 2,
            total: 2
        }));
        assert!(events.contains(&Event::Running {
            number: 307,
            total: 5112
        }));
        assert_eq!(
            tasks(&events),
            [
                (
                    "busybox".into(),
                    "1.36.1-r0".into(),
                    "do_compile".into(),
                    TaskState::Started
                ),
                (
                    "busybox".into(),
                    "1.36.1-r0".into(),
                    "do_compile".into(),
                    TaskState::Succeeded
                ),
            ]
        );
        let warnings = messages(&events, Level::Warning);
        assert_eq!(warnings.len(), 1);
        assert_eq!(
            warnings[0].text,
            "busybox-1.36.1-r0 do_compile: a warning from the build"
        );
        assert!(events.contains(&Event::Counted {
            level: Level::Warning,
            count: 1
        }));
        // Lines without the prefix are read as they are.
        let prefix = LinePrefix::parse(r"\[\w+\] ").unwrap();
        assert_eq!(
            read_all(
                "[bb] NOTE: Setscene tasks completed\nNOTE: Setscene tasks completed\nx [bb] NOTE: Setscene tasks completed",
                prefix
            ),
            [Event::SetsceneCompleted, Event::SetsceneCompleted]
        );
    }

    #[test]
    fn line_prefixes_are_checked() {
        assert!(LinePrefix::parse("  ").unwrap().is_none());
        assert!(
            LinePrefix::parse(super::super::KAS_LINE_PREFIX)
                .unwrap()
                .is_some()
        );
        assert!(
            LinePrefix::parse("(unclosed")
                .unwrap_err()
                .starts_with("Not a regular expression")
        );
        assert!(LinePrefix::parse(&"a".repeat(MAX_LINE_PREFIX_BYTES + 1)).is_err());
        assert!(LinePrefix::parse("a\u{7}b").is_err());
        assert_eq!(
            LinePrefix::parse(r"\w{1000}{1000}").unwrap_err(),
            "The pattern is too large."
        );
    }

    #[test]
    fn other_lines_tell_nothing() {
        for line in [
            "",
            "Loading cache: 100% |########| Time: 0:00:00",
            "NOTE: Executing Tasks",
            "| make: *** [Makefile:12: all] Error 2",
            "BB_VERSION           = \"2.8.0\"",
            "0: busybox-1.36.1-r0 do_compile - 12s (pid 4211)",
        ] {
            assert_eq!(one(line), [], "{line}");
        }
    }
}
