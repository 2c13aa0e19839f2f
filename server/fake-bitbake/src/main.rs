//! `fake-bitbake`: a stand-in for BitBake for demonstrations and tests. Run in a build
//! directory like `bitbake <targets>`, it prints the output BitBake prints (parsing, the
//! build configuration, each task's start and end, errors, the summary), writes the cooker
//! log, the failed task's log and, for each target, image files into
//! `tmp/deploy/images/<machine>/`, and exits as BitBake does.
//!
//! It reads `MACHINE` and `DISTRO` from `conf/local.conf`, and these settings from the
//! environment or, failing that, from `conf/local.conf`:
//! - `FAKE_BITBAKE_TASKS`: how many tasks to run (default 100, enough for every recipe it knows; at most 100000);
//! - `FAKE_BITBAKE_TASK_MS`: how long each task takes (default 50, at most 60000);
//! - `FAKE_BITBAKE_FAIL`: `recipe:task` (for example `busybox:do_compile`) fails that task,
//!   `yes` fails the task halfway through the build;
//! - `FAKE_BITBAKE_IMAGE_KB`: the size of each image file (default 256, at most 1048576);
//! - `FAKE_BITBAKE_SETSCENE`: how many setscene tasks to restore from shared state before
//!   the tasks (default 0, at most 100000);
//! - `FAKE_BITBAKE_OUTPUT`: `pipe` or `terminal`, the form BitBake writes its output in to
//!   a pipe (what a worker sees: `Parsing recipes...done.`, each task's lines) or to a
//!   terminal (progress bars, colours, a footer of running tasks); by default the form for
//!   where standard output goes.

use std::collections::HashMap;
use std::fs;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Recipes the fake build goes through, with their version and the layer file they are in.
const RECIPES: &[(&str, &str, &str)] = &[
    (
        "quilt-native",
        "0.67-r0",
        "meta/recipes-devtools/quilt/quilt-native_0.67.bb",
    ),
    (
        "gcc-cross-x86_64",
        "13.2.0-r0",
        "meta/recipes-devtools/gcc/gcc-cross_13.2.bb",
    ),
    (
        "linux-libc-headers",
        "6.6-r0",
        "meta/recipes-kernel/linux-libc-headers/linux-libc-headers_6.6.bb",
    ),
    (
        "glibc",
        "2.39+git-r0",
        "meta/recipes-core/glibc/glibc_2.39.bb",
    ),
    ("zlib", "1.3.1-r0", "meta/recipes-core/zlib/zlib_1.3.1.bb"),
    (
        "openssl",
        "3.2.1-r0",
        "meta/recipes-connectivity/openssl/openssl_3.2.1.bb",
    ),
    (
        "busybox",
        "1.36.1-r0",
        "meta/recipes-core/busybox/busybox_1.36.1.bb",
    ),
    (
        "base-files",
        "3.0.14-r0",
        "meta/recipes-core/base-files/base-files_3.0.14.bb",
    ),
    (
        "linux-yocto",
        "6.6.21+git-r0",
        "meta/recipes-kernel/linux/linux-yocto_6.6.bb",
    ),
    (
        "systemd",
        "255.4-r0",
        "meta/recipes-core/systemd/systemd_255.4.bb",
    ),
];

/// The tasks each recipe runs, in order.
const TASKS: &[&str] = &[
    "do_fetch",
    "do_unpack",
    "do_patch",
    "do_configure",
    "do_compile",
    "do_install",
    "do_package",
    "do_package_write_rpm",
    "do_populate_sysroot",
];

/// The setscene tasks restored from shared state, in turn for each recipe.
const SETSCENE_TASKS: &[&str] = &[
    "do_populate_sysroot_setscene",
    "do_package_setscene",
    "do_package_write_rpm_setscene",
];

/// The tasks that make each target's image, after every recipe's tasks.
const IMAGE_TASKS: &[&str] = &["do_rootfs", "do_image", "do_image_complete"];

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("ERROR: {error}");
            ExitCode::from(1)
        }
    }
}

/// The settings one run goes by.
struct Settings {
    machine: String,
    distro: String,
    tasks: usize,
    task_time: Duration,
    fail: Option<Failure>,
    image_bytes: usize,
    setscene: usize,
    /// How output is written; `None`: as to a terminal when standard output is one.
    form: Option<Form>,
}

enum Failure {
    Halfway,
    Task { recipe: String, task: String },
}

fn run() -> io::Result<ExitCode> {
    let mut targets = Vec::new();
    let mut options_ended = false;
    for argument in std::env::args().skip(1) {
        if !options_ended && argument == "--" {
            options_ended = true;
        } else if !options_ended && argument.starts_with('-') {
            // BitBake's options (`-k`, `-v`, …) change nothing here.
        } else {
            targets.push(argument);
        }
    }
    let mut out = Output::new();
    if targets.is_empty() {
        out.line("ERROR: Nothing to do.  Use 'bitbake world' to build everything, or run 'bitbake --help' for usage information.")?;
        return Ok(ExitCode::from(1));
    }
    if let Some(bad) = targets.iter().find(|t| !is_target(t)) {
        out.line(&format!(
            "ERROR: Nothing PROVIDES '{bad}'. Close matches:\n  core-image-minimal"
        ))?;
        return Ok(ExitCode::from(1));
    }
    let settings = match Settings::read(Path::new("conf/local.conf")) {
        Ok(settings) => settings,
        Err(message) => {
            out.line(&format!("ERROR: {message}"))?;
            return Ok(ExitCode::from(1));
        }
    };
    out.form = settings.form.unwrap_or(if io::stdout().is_terminal() {
        Form::Terminal
    } else {
        Form::Pipe
    });
    out.start_cooker_log(&settings.machine)?;
    build(&mut out, &settings, &targets)
}

/// What BitBake would accept as a target name.
fn is_target(target: &str) -> bool {
    !target.is_empty()
        && target.len() <= 200
        && target
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-+._".contains(c))
}

impl Settings {
    fn read(local_conf: &Path) -> Result<Self, String> {
        let conf = fs::read_to_string(local_conf)
            .map(|text| assignments(&text))
            .unwrap_or_default();
        let setting = |name: &str| {
            std::env::var(name)
                .ok()
                .or_else(|| conf.get(name).cloned())
                .filter(|v| !v.is_empty())
        };
        let number = |name: &str, default: usize, max: usize| -> Result<usize, String> {
            match setting(name) {
                None => Ok(default),
                Some(value) => value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n <= max)
                    .ok_or_else(|| format!("{name}: a whole number up to {max}, not `{value}`")),
            }
        };
        let fail = match setting("FAKE_BITBAKE_FAIL").as_deref() {
            None | Some("no") => None,
            Some("yes") => Some(Failure::Halfway),
            Some(spec) => match spec.split_once(':') {
                Some((recipe, task)) if !recipe.is_empty() && task.starts_with("do_") => {
                    Some(Failure::Task {
                        recipe: recipe.into(),
                        task: task.into(),
                    })
                }
                _ => {
                    return Err(format!(
                        "FAKE_BITBAKE_FAIL: `yes`, `no` or `recipe:do_task`, not `{spec}`"
                    ));
                }
            },
        };
        Ok(Self {
            machine: conf
                .get("MACHINE")
                .cloned()
                .unwrap_or_else(|| "qemux86-64".into()),
            distro: conf.get("DISTRO").cloned().unwrap_or_else(|| "poky".into()),
            tasks: number("FAKE_BITBAKE_TASKS", 100, 100_000)?.max(1),
            task_time: Duration::from_millis(number("FAKE_BITBAKE_TASK_MS", 50, 60_000)? as u64),
            fail,
            image_bytes: number("FAKE_BITBAKE_IMAGE_KB", 256, 1024 * 1024)? * 1024,
            setscene: number("FAKE_BITBAKE_SETSCENE", 0, 100_000)?,
            form: match setting("FAKE_BITBAKE_OUTPUT").as_deref() {
                None | Some("auto") => None,
                Some("pipe") => Some(Form::Pipe),
                Some("terminal") => Some(Form::Terminal),
                Some(other) => {
                    return Err(format!(
                        "FAKE_BITBAKE_OUTPUT: `pipe`, `terminal` or `auto`, not `{other}`"
                    ));
                }
            },
        })
    }
}

/// `NAME = "value"` and `NAME ?= "value"` lines of a BitBake configuration file.
fn assignments(text: &str) -> HashMap<String, String> {
    let mut found = HashMap::new();
    for line in text.lines() {
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let weak = name.trim_end().ends_with('?');
        let name = name.trim().trim_end_matches('?').trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let value = value.trim().trim_matches('"').to_owned();
        if weak {
            found.entry(name.to_owned()).or_insert(value);
        } else {
            found.insert(name.to_owned(), value);
        }
    }
    found
}

/// One task of the plan: a recipe's task, or an image task of a target.
struct Step {
    recipe: String,
    version: String,
    file: String,
    task: &'static str,
}

/// The build's tasks: recipes' tasks in turn, then each target's image tasks, `tasks` in all.
fn plan(targets: &[String], tasks: usize) -> Vec<Step> {
    let image_steps: Vec<Step> = targets
        .iter()
        .flat_map(|target| {
            IMAGE_TASKS.iter().map(move |task| Step {
                recipe: target.clone(),
                version: "1.0-r0".into(),
                file: format!("meta/recipes-core/images/{target}.bb"),
                task,
            })
        })
        .collect();
    let before = tasks.saturating_sub(image_steps.len());
    let mut steps: Vec<Step> = (0..before)
        .map(|n| {
            let (recipe, version, file) = RECIPES[(n / TASKS.len()) % RECIPES.len()];
            let round = n / (TASKS.len() * RECIPES.len());
            let recipe = if round == 0 {
                recipe.to_owned()
            } else {
                format!("{recipe}-extra{round}")
            };
            Step {
                recipe,
                version: version.into(),
                file: file.into(),
                task: TASKS[n % TASKS.len()],
            }
        })
        .collect();
    steps.extend(image_steps);
    steps
}

fn build(out: &mut Output, settings: &Settings, targets: &[String]) -> io::Result<ExitCode> {
    // On a pipe BitBake writes each phase's name, then `done.` once it is over; on a
    // terminal it draws progress bars, redrawn with carriage returns.
    out.phase("Loading cache", || ())?;
    out.line("Loaded 1834 entries from dependency cache.")?;
    out.phase("Parsing recipes", || {
        std::thread::sleep(settings.task_time * 2);
    })?;
    out.line("Parsing of 912 .bb files complete (0 cached, 912 parsed). 1834 targets, 78 skipped, 0 masked, 0 errors.")?;
    out.line("NOTE: Resolving any missing task queue dependencies")?;
    out.line("")?;
    out.line("Build Configuration:")?;
    for (name, value) in [
        ("BB_VERSION", "2.8.0"),
        ("BUILD_SYS", "x86_64-linux"),
        ("TARGET_SYS", "x86_64-poky-linux"),
        ("MACHINE", settings.machine.as_str()),
        ("DISTRO", settings.distro.as_str()),
        ("DISTRO_VERSION", "5.0"),
        ("TUNE_FEATURES", "m64 core2"),
    ] {
        out.line(&format!("{name:<20} = \"{value}\""))?;
    }
    out.line("")?;
    out.message("WARNING", "Host distribution \"fake-1\" has not been validated with this version of the build system; you may possibly experience unexpected failures.")?;
    out.phase("Initialising tasks", || ())?;
    let setscene = settings.setscene;
    out.line(&format!(
        "Sstate summary: Wanted {setscene} Local {setscene} Mirrors 0 Missed 0 Current 0 (100% match, 0% complete)"
    ))?;
    out.line("NOTE: Executing Tasks")?;
    for n in 0..setscene {
        let (recipe, version, file) = RECIPES[n % RECIPES.len()];
        let task = SETSCENE_TASKS[(n / RECIPES.len()) % SETSCENE_TASKS.len()];
        let step = Step {
            recipe: recipe.into(),
            version: version.into(),
            file: file.into(),
            task,
        };
        out.start("setscene task", n + 1, setscene, &step)?;
        std::thread::sleep(settings.task_time / 4);
        out.task_line(&step, "Succeeded")?;
    }
    out.line("NOTE: Setscene tasks completed")?;

    let steps = plan(targets, settings.tasks);
    let total = steps.len();
    let failing = match &settings.fail {
        None => None,
        Some(Failure::Halfway) => Some(total / 2),
        Some(Failure::Task { recipe, task }) => {
            let at = steps
                .iter()
                .position(|s| s.recipe == *recipe && s.task == task);
            if at.is_none() {
                out.message(
                    "WARNING",
                    &format!(
                        "FAKE_BITBAKE_FAIL: no task {recipe}:{task} in this build; nothing fails"
                    ),
                )?;
            }
            at
        }
    };
    // The host's warning, and one for a task to fail that is not in the build.
    let warnings = if failing.is_none() && settings.fail.is_some() {
        "Summary: There were 2 WARNING messages."
    } else {
        "Summary: There was 1 WARNING message."
    };
    for (n, step) in steps.iter().enumerate() {
        let name = format!("{}-{}", step.recipe, step.version);
        out.start("task", n + 1, total, step)?;
        std::thread::sleep(settings.task_time);
        if failing == Some(n) {
            let log = fail_log(settings, step)?;
            out.message("ERROR", &format!("{name} {}: oe_runmake failed", step.task))?;
            out.message(
                "ERROR",
                &format!("Logfile of failure stored in: {}", log.display()),
            )?;
            out.line("Log data follows:")?;
            for line in FAILURE_LOG {
                out.line(&format!("| {line}"))?;
            }
            out.task_line(step, "Failed")?;
            out.message(
                "ERROR",
                &format!(
                    "Task (/poky/{}:{}) failed with exit code '1'",
                    step.file, step.task
                ),
            )?;
            out.footer(n + 1, total)?;
            out.line(&format!("NOTE: Tasks Summary: Attempted {} tasks of which 0 didn't need to be rerun and 1 failed.", n + 1))?;
            out.line("")?;
            out.line("Summary: 1 task failed:")?;
            out.line(&format!("  /poky/{}:{}", step.file, step.task))?;
            out.line(warnings)?;
            // BitBake counts neither the log's place nor the exit code as errors.
            out.line("Summary: There was 1 ERROR message, returning a non-zero exit code.")?;
            return Ok(ExitCode::from(1));
        }
        if step.task == "do_image_complete" {
            write_images(settings, &step.recipe)?;
        }
        out.task_line(step, "Succeeded")?;
    }
    out.footer(total, total)?;
    out.line(&format!("NOTE: Tasks Summary: Attempted {total} tasks of which 0 didn't need to be rerun and all succeeded."))?;
    out.line("")?;
    out.line(warnings)?;
    Ok(ExitCode::SUCCESS)
}

/// What the failed task's log says, after its first line.
const FAILURE_LOG: &[&str] = &[
    "DEBUG: Executing shell function do_compile",
    "NOTE: make -j 8",
    "src/main.c:42:5: error: implicit declaration of function 'frobnicate' [-Wimplicit-function-declaration]",
    "make: *** [Makefile:12: all] Error 1",
    "ERROR: oe_runmake failed",
];

/// Writes the failed task's log where BitBake keeps it; returns its path.
fn fail_log(settings: &Settings, step: &Step) -> io::Result<PathBuf> {
    let dir = std::env::current_dir()?
        .join("tmp/work")
        .join(format!("{}-poky-linux", settings.machine.replace('-', "_")))
        .join(&step.recipe)
        .join(&step.version)
        .join("temp");
    fs::create_dir_all(&dir)?;
    let log = dir.join(format!("log.{}.{}", step.task, std::process::id()));
    let mut text = format!("DEBUG: Executing task {}\n", step.task);
    for line in FAILURE_LOG {
        text.push_str(line);
        text.push('\n');
    }
    fs::write(&log, text)?;
    Ok(log)
}

/// Writes `target`'s image files: an ext4 image, a `.wic` disk image and a manifest. The
/// images' bytes depend on the target and machine only, so a test can check a download.
fn write_images(settings: &Settings, target: &str) -> io::Result<()> {
    let dir = Path::new("tmp/deploy/images").join(&settings.machine);
    fs::create_dir_all(&dir)?;
    let base = format!("{target}-{}", settings.machine);
    for kind in ["rootfs.ext4", "rootfs.wic"] {
        fs::write(
            dir.join(format!("{base}.{kind}")),
            image_bytes(&base, kind, settings.image_bytes),
        )?;
    }
    let manifest: String = RECIPES
        .iter()
        .map(|(recipe, version, _)| format!("{recipe} {} {version}\n", settings.machine))
        .collect();
    fs::write(dir.join(format!("{base}.rootfs.manifest")), manifest)
}

/// `size` bytes that start with a readable header and go on with a pattern of `name`.
fn image_bytes(name: &str, kind: &str, size: usize) -> Vec<u8> {
    let mut bytes = format!("fake-bitbake image {name}.{kind}\n").into_bytes();
    let mut state: u32 = name
        .bytes()
        .chain(kind.bytes())
        .fold(2166136261, |h, b| (h ^ u32::from(b)).wrapping_mul(16777619));
    while bytes.len() < size {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(size);
    bytes
}

/// How BitBake writes its output: to a pipe, or to a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// Each phase as `NAME...done.`, every task's `Running` and `recipe` lines.
    Pipe,
    /// Progress bars, colours, and a footer of the running tasks in place of the tasks'
    /// lines.
    Terminal,
}

/// Standard output, copied to the cooker log once it is open (without colours, as
/// BitBake's cooker log is).
struct Output {
    stdout: io::Stdout,
    cooker_log: Option<fs::File>,
    form: Form,
}

impl Output {
    fn new() -> Self {
        Self {
            stdout: io::stdout(),
            cooker_log: None,
            form: Form::Pipe,
        }
    }

    /// Opens `tmp/log/cooker/<machine>/<time>.log`, as BitBake does for each run.
    fn start_cooker_log(&mut self, machine: &str) -> io::Result<()> {
        let dir = Path::new("tmp/log/cooker").join(machine);
        fs::create_dir_all(&dir)?;
        let name = chrono::Utc::now().format("%Y%m%d%H%M%S%.3f").to_string();
        self.cooker_log = Some(fs::File::create(dir.join(format!("{name}.log")))?);
        Ok(())
    }

    fn line(&mut self, text: &str) -> io::Result<()> {
        self.write(text, text)
    }

    /// Writes `text` to standard output only: a terminal's footer, which the cooker log has
    /// none of.
    fn show(&mut self, text: &str) -> io::Result<()> {
        let mut stdout = self.stdout.lock();
        writeln!(stdout, "{text}")?;
        stdout.flush()
    }

    /// Writes `shown` to standard output and `logged` to the cooker log.
    fn write(&mut self, shown: &str, logged: &str) -> io::Result<()> {
        let mut stdout = self.stdout.lock();
        writeln!(stdout, "{shown}")?;
        stdout.flush()?;
        if let Some(log) = &mut self.cooker_log {
            writeln!(log, "{logged}")?;
        }
        Ok(())
    }

    /// `LEVEL: text`, its level in colour on a terminal, as BitBake's log formatter does.
    fn message(&mut self, level: &str, text: &str) -> io::Result<()> {
        let plain = format!("{level}: {text}");
        if self.form == Form::Pipe {
            return self.line(&plain);
        }
        let colour = if level == "ERROR" { 31 } else { 33 };
        self.write(
            &format!("\u{1b}[1;{colour}m{level}\u{1b}[0m: {text}"),
            &plain,
        )
    }

    /// A phase that runs `work`: `NAME...done.` on a pipe, a progress bar on a terminal.
    fn phase(&mut self, name: &str, work: impl FnOnce()) -> io::Result<()> {
        if self.form == Form::Pipe {
            let mut stdout = self.stdout.lock();
            write!(stdout, "{name}...")?;
            stdout.flush()?;
            drop(stdout);
            work();
            return self.line_after(name, "done.");
        }
        let bar = |percent: usize| {
            format!(
                "{name}: {percent:3}% |{:<43}| {}",
                "#".repeat(percent * 43 / 100),
                if percent == 100 {
                    "Time: 0:00:02"
                } else {
                    "ETA:  0:00:01"
                }
            )
        };
        let mut stdout = self.stdout.lock();
        write!(stdout, "{}\r{}", bar(0), bar(50))?;
        stdout.flush()?;
        drop(stdout);
        work();
        let done = bar(100);
        self.write(&format!("\r{done}"), &done)
    }

    /// Ends a line begun as `name...` with `rest`.
    fn line_after(&mut self, name: &str, rest: &str) -> io::Result<()> {
        let mut stdout = self.stdout.lock();
        writeln!(stdout, "{rest}")?;
        stdout.flush()?;
        if let Some(log) = &mut self.cooker_log {
            writeln!(log, "{name}...{rest}")?;
        }
        Ok(())
    }

    /// Task `number` of `total` (`kind` is `task` or `setscene task`) starts: on a pipe its
    /// `Running` and `Started` lines, on a terminal the footer of running tasks.
    fn start(&mut self, kind: &str, number: usize, total: usize, step: &Step) -> io::Result<()> {
        if self.form == Form::Pipe {
            self.line(&format!(
                "NOTE: Running {kind} {number} of {total} (/poky/{}:{})",
                step.file, step.task
            ))?;
            return self.task_line(step, "Started");
        }
        let footer = if kind == "task" {
            format!("Currently  1 running tasks ({number} of {total}):")
        } else {
            format!("Setscene tasks: {number} of {total}")
        };
        self.show(&format!("\u{1b}[2K{footer}"))?;
        self.show(&format!(
            "\u{1b}[2K0: {}-{} {} - 0s (pid {})",
            step.recipe,
            step.version,
            step.task,
            std::process::id()
        ))
    }

    /// `NOTE: recipe PF: task do_x: STATE`, which BitBake leaves off a terminal.
    fn task_line(&mut self, step: &Step, state: &str) -> io::Result<()> {
        if self.form == Form::Terminal {
            return Ok(());
        }
        self.line(&format!(
            "NOTE: recipe {}-{}: task {}: {state}",
            step.recipe, step.version, step.task
        ))
    }

    /// On a terminal, the footer once no task runs.
    fn footer(&mut self, number: usize, total: usize) -> io::Result<()> {
        if self.form == Form::Pipe {
            return Ok(());
        }
        self.show(&format!(
            "\u{1b}[2KNo currently running tasks ({number} of {total})"
        ))
    }
}
