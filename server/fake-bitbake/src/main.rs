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
//! - `FAKE_BITBAKE_IMAGE_KB`: the size of each image file (default 256, at most 1048576).

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

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
    let started = Instant::now();
    out.line("Loading cache: 100% |###########################################| Time: 0:00:00")?;
    out.line("Loaded 1834 entries from dependency cache.")?;
    for percent in [0, 25, 50, 75] {
        out.line(&format!(
            "Parsing recipes: {percent:3}% |{:<43}| ETA:  0:00:0{}",
            "#".repeat(percent * 43 / 100),
            (100 - percent) / 25
        ))?;
        std::thread::sleep(settings.task_time / 2);
    }
    out.line("Parsing recipes: 100% |###########################################| Time: 0:00:02")?;
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
    out.line("WARNING: Host distribution \"fake-1\" has not been validated with this version of the build system; you may possibly experience unexpected failures.")?;
    out.line("Initialising tasks: 100% |########################################| Time: 0:00:00")?;
    out.line("NOTE: Executing Tasks")?;

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
                out.line(&format!("WARNING: FAKE_BITBAKE_FAIL: no task {recipe}:{task} in this build; nothing fails"))?;
            }
            at
        }
    };
    for (n, step) in steps.iter().enumerate() {
        let name = format!("{}-{}", step.recipe, step.version);
        out.line(&format!(
            "NOTE: Running task {} of {total} (/poky/{}:{})",
            n + 1,
            step.file,
            step.task
        ))?;
        out.line(&format!("NOTE: recipe {name}: task {}: Started", step.task))?;
        std::thread::sleep(settings.task_time);
        if failing == Some(n) {
            let log = fail_log(settings, step)?;
            out.line(&format!("ERROR: {name} {}: oe_runmake failed", step.task))?;
            out.line(&format!(
                "ERROR: Logfile of failure stored in: {}",
                log.display()
            ))?;
            out.line("Log data follows:")?;
            for line in FAILURE_LOG {
                out.line(&format!("| {line}"))?;
            }
            out.line(&format!("NOTE: recipe {name}: task {}: Failed", step.task))?;
            out.line(&format!(
                "ERROR: Task (/poky/{}:{}) failed with exit code '1'",
                step.file, step.task
            ))?;
            out.line(&format!("NOTE: Tasks Summary: Attempted {} tasks of which 0 didn't need to be rerun and 1 failed.", n + 1))?;
            out.line("")?;
            out.line("Summary: 1 task failed:")?;
            out.line(&format!("  /poky/{}:{}", step.file, step.task))?;
            out.line("Summary: There was 1 WARNING message.")?;
            out.line("Summary: There were 3 ERROR messages, returning a non-zero exit code.")?;
            return Ok(ExitCode::from(1));
        }
        if step.task == "do_image_complete" {
            write_images(settings, &step.recipe)?;
        }
        out.line(&format!(
            "NOTE: recipe {name}: task {}: Succeeded",
            step.task
        ))?;
    }
    out.line(&format!("NOTE: Tasks Summary: Attempted {total} tasks of which 0 didn't need to be rerun and all succeeded."))?;
    out.line("")?;
    out.line(&format!(
        "Summary: There was 1 WARNING message. Build took {:.1} s.",
        started.elapsed().as_secs_f64()
    ))?;
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

/// Standard output, copied to the cooker log once it is open.
struct Output {
    stdout: io::Stdout,
    cooker_log: Option<fs::File>,
}

impl Output {
    fn new() -> Self {
        Self {
            stdout: io::stdout(),
            cooker_log: None,
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
        let mut stdout = self.stdout.lock();
        writeln!(stdout, "{text}")?;
        stdout.flush()?;
        if let Some(log) = &mut self.cooker_log {
            writeln!(log, "{text}")?;
        }
        Ok(())
    }
}
