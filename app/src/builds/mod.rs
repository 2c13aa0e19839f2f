//! Builds as Kiln understands them apart from storage: what a build is made from, the states
//! it goes through, what a build tool's output says, and how its log lines are shown.

pub mod ansi;
// Read on the server only, where build logs arrive.
#[cfg(feature = "ssr")]
pub mod bitbake_output;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::configuration::Configuration;

/// The definition a project's builds run: the project's own of this name, else the global
/// one Kiln ships.
pub const BUILD_DEFINITION: &str = "standard-build";

/// What a build was built from, frozen when it started; secrets are masked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The project's configuration revision it was started from.
    pub revision: u32,
    pub configuration: Configuration,
    /// The commit each git layer resolved to, by layer name, once the build was prepared.
    #[serde(default)]
    pub layer_commits: BTreeMap<String, String>,
}

/// Where a build stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildState {
    /// Waiting for a worker.
    Queued,
    /// Fetching layers and writing its configuration on a worker.
    Preparing,
    /// Running the build command.
    Building,
    /// Collecting and uploading artifacts.
    Collecting,
    Succeeded,
    Failed,
    Cancelled,
}

impl BuildState {
    pub const ALL: [Self; 7] = [
        Self::Queued,
        Self::Preparing,
        Self::Building,
        Self::Collecting,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Preparing => "preparing",
            Self::Building => "building",
            Self::Collecting => "collecting",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == text)
    }

    /// Whether nothing more happens to the build (a failed one may still be retried from
    /// its process).
    pub fn is_over(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    /// A build's state from its process's status and the newest step of participant
    /// `build` the process handed out (`step`, and whether it still waits in the queue).
    pub fn of(process_status: &str, step: Option<(&str, bool)>) -> Self {
        match process_status {
            "finished" => Self::Succeeded,
            "error" => Self::Failed,
            "cancelled" | "killed" | "cancelling" => Self::Cancelled,
            _ => match step {
                None | Some(("prepare", true)) => Self::Queued,
                Some(("prepare", false)) => Self::Preparing,
                Some(("collect", _)) => Self::Collecting,
                Some(_) => Self::Building,
            },
        }
    }
}

/// A build as lists show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildSummary {
    pub id: i64,
    pub project: String,
    pub project_name: String,
    pub number: i32,
    pub state: BuildState,
    /// Its place in the queue of builds waiting for a worker, from 1.
    pub queue_position: Option<u32>,
    /// A queued build waiting for its build directory: the number of the earlier build of
    /// the project using it, or 0 when a build of another project uses it.
    pub waiting_for_directory: Option<i32>,
    pub targets: String,
    pub machine: String,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Parsing progress in percent, then setscene tasks (restored from shared state) done of
    /// their total, then tasks done of the total.
    pub parse_percent: u8,
    pub setscene_done: u32,
    pub setscene_total: u32,
    pub tasks_done: u32,
    pub tasks_total: u32,
    /// The furthest the progress bar got, in percent: it never goes back.
    pub progress: u8,
    pub errors: u32,
    pub warnings: u32,
    pub hidden: bool,
    pub pinned: bool,
    pub archived: bool,
}

impl BuildSummary {
    /// How far the build got, 0 to 100, never less than it once showed.
    pub fn percent(&self) -> u8 {
        if self.state == BuildState::Succeeded {
            return 100;
        }
        Ord::max(
            self.progress.min(100),
            progress_percent(
                self.parse_percent,
                (self.setscene_done, self.setscene_total),
                (self.tasks_done, self.tasks_total),
            ),
        )
    }
}

/// How far a build got, 0 to 100, from its parsing progress and its setscene and task
/// counts (done, total): parsing counts for the first tenth, setscene tasks for the next
/// fifth and tasks for the rest. Each part only grows while BitBake runs, so the sum does
/// too, though BitBake's task numbers start again low once setscene tasks are over.
pub fn progress_percent(parse_percent: u8, setscene: (u32, u32), tasks: (u32, u32)) -> u8 {
    let part = |(done, total): (u32, u32), weight: u64| {
        (u64::from(done.min(total)) * weight)
            .checked_div(u64::from(total))
            .unwrap_or(0)
    };
    let parsing = u64::from(parse_percent.min(100)) / 10;
    // Setscene tasks come first; a build that never had any has that part behind it once
    // its tasks run.
    let setscene = if setscene.1 == 0 && tasks.1 > 0 {
        20
    } else {
        part(setscene, 20)
    };
    u8::try_from(parsing + setscene + part(tasks, 70)).unwrap_or(100)
}

/// One task of a build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildTask {
    pub recipe: String,
    pub version: String,
    pub task: String,
    /// `started`, `succeeded` or `failed`.
    pub outcome: String,
    pub started_at: DateTime<Utc>,
    pub duration_ms: Option<i64>,
    /// For a failed task, what BitBake said of its failure: where its log is, its exit code.
    #[serde(default)]
    pub failure: Option<String>,
}

/// An error or warning of a build, with the log line it is on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildMessage {
    /// `error` or `warning`.
    pub level: String,
    pub text: String,
    pub line: i64,
}

/// Everything the build page shows but the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildView {
    pub summary: BuildSummary,
    pub process: Option<i64>,
    /// Why the process stopped, when it failed.
    pub failure: Option<String>,
    pub host: Option<String>,
    pub directory: Option<String>,
    pub snapshot: Snapshot,
    pub rebuild_of: Option<i32>,
    /// How many tasks ran; the task table loads them when opened.
    pub task_count: u64,
    pub failed_tasks: Vec<BuildTask>,
    pub messages: Vec<BuildMessage>,
    pub log_bytes: u64,
    pub log_lines: u64,
    pub artifacts: Vec<Artifact>,
    /// When retention removed the build's artifacts.
    pub artifacts_expired_at: Option<DateTime<Utc>>,
    /// Whether the user may download the artifacts.
    pub can_download: bool,
    pub can_build: bool,
    pub can_delete: bool,
}

/// What the All builds page is narrowed to; empty fields do not narrow it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildFilter {
    /// A project's slug.
    #[serde(default)]
    pub project: String,
    /// `running` (queued to collecting), `succeeded`, `failed` or `cancelled`.
    #[serde(default)]
    pub state: String,
    /// The username of who started the builds.
    #[serde(default)]
    pub user: String,
    /// An image target the builds built.
    #[serde(default)]
    pub target: String,
    /// First day, `YYYY-MM-DD` (UTC), inclusive.
    #[serde(default)]
    pub from: String,
    /// Last day, `YYYY-MM-DD` (UTC), inclusive.
    #[serde(default)]
    pub to: String,
    /// Hidden builds too.
    #[serde(default)]
    pub hidden: bool,
}

/// The states the All builds page filters by, with their labels.
pub const STATE_FILTERS: [(&str, &str); 4] = [
    ("running", "In progress"),
    ("succeeded", "Succeeded"),
    ("failed", "Failed"),
    ("cancelled", "Cancelled"),
];

/// The longest text in a build filter field.
pub const BUILD_FILTER_MAX: usize = 128;

/// Which definition a project's builds run, and which it could; and where they run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildWorkflow {
    pub current: String,
    /// The definitions the project may run: its own and the global ones.
    pub choices: Vec<String>,
    pub can_edit: bool,
    /// The build directory the project's builds share on a worker, one build at a time;
    /// `None`: each build gets a directory of its own.
    pub build_directory: Option<String>,
    /// Whether the user may set the build directory (administrators).
    pub can_set_directory: bool,
    /// The pattern taken off the start of each line of the build's output before it is
    /// read, for a wrapper's prefix (see [`KAS_LINE_PREFIX`]); `None`: lines are read as
    /// they are. Set with `configure`, like the workflow.
    pub line_prefix: Option<String>,
}

/// The longest line prefix pattern, in bytes.
pub const MAX_LINE_PREFIX_BYTES: usize = 256;

/// The prefix kas puts before each line of BitBake's output, `2023-09-20 16:16:43 - INFO
/// - `, as a line prefix pattern.
pub const KAS_LINE_PREFIX: &str = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} - [A-Z]+ +- ";

/// The longest configured build directory, in bytes.
pub const MAX_BUILD_DIRECTORY_BYTES: usize = 1024;

/// `text` as a project's build directory: empty is none (each build gets its own);
/// otherwise an absolute path on the workers, without `.` or `..` components, written
/// back without repeated or trailing slashes.
pub fn parse_build_directory(text: &str) -> Result<Option<String>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > MAX_BUILD_DIRECTORY_BYTES {
        return Err(format!("At most {MAX_BUILD_DIRECTORY_BYTES} bytes."));
    }
    if !text.starts_with('/') {
        return Err("An absolute path on the workers, such as /srv/yocto/my-project/build.".into());
    }
    if text.chars().any(char::is_control) {
        return Err("A path without control characters.".into());
    }
    let parts: Vec<&str> = text.split('/').filter(|part| !part.is_empty()).collect();
    if parts.iter().any(|part| matches!(*part, "." | "..")) {
        return Err("A path without `.` or `..`.".into());
    }
    if parts.is_empty() {
        return Err(
            "Not the root directory: layers are checked out beside the build directory.".into(),
        );
    }
    Ok(Some(format!("/{}", parts.join("/"))))
}

/// How long a project keeps its builds' artifacts; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRetention {
    /// Keep the artifacts of the newest this many builds.
    pub keep_builds: Option<u32>,
    /// Keep artifacts this many days.
    pub keep_days: Option<u32>,
    /// Keep at most this many bytes of artifacts, counted from the newest build.
    pub keep_bytes: Option<u64>,
}

/// What a project's builds keep on disk, and its limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildStorage {
    pub artifact_bytes: u64,
    pub artifacts: u64,
    pub log_bytes: u64,
    pub retention: BuildRetention,
    /// Whether the user may change the limits.
    pub can_edit: bool,
}

/// `text` as a number of bytes: a whole or decimal number with an optional binary unit
/// (`B`, `KiB`, `MiB`, `GiB`, `TiB`; `K`, `M`, `G`, `T` and `KB`... mean the same).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" | "bytes" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    let bytes = number * (1u64 << shift) as f64;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// What an artifact is, read from its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactKind {
    Image,
    Sdk,
    Manifest,
    Log,
    Other,
}

impl ArtifactKind {
    /// In the order the build page lists them.
    pub const ALL: [Self; 5] = [
        Self::Image,
        Self::Sdk,
        Self::Manifest,
        Self::Log,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Sdk => "sdk",
            Self::Manifest => "manifest",
            Self::Log => "log",
            Self::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// The heading the build page gives the kind.
    pub fn title(self) -> &'static str {
        match self {
            Self::Image => "Images",
            Self::Sdk => "SDKs",
            Self::Manifest => "Manifests",
            Self::Log => "Logs",
            Self::Other => "Other files",
        }
    }

    /// The kind of a file called `name`, as BitBake names what it deploys: SDK installers
    /// and toolchains, image manifests and package lists, logs (`*.log`, `log.do_*`), and
    /// disk and file-system images.
    pub fn of(name: &str) -> Self {
        const IMAGE_ENDINGS: &[&str] = &[
            ".wic",
            ".ext2",
            ".ext3",
            ".ext4",
            ".btrfs",
            ".squashfs",
            ".cpio",
            ".tar",
            ".iso",
            ".hddimg",
            ".img",
            ".vmdk",
            ".vdi",
            ".qcow2",
            ".ubi",
            ".ubifs",
            ".jffs2",
            ".bin",
            ".elf",
            ".dtb",
            ".itb",
            ".uimage",
            ".zimage",
            ".bzimage",
            ".efi",
        ];
        const COMPRESSIONS: &[&str] = &[".gz", ".bz2", ".xz", ".zst", ".lz4", ".bmap"];
        let lower = name.to_ascii_lowercase();
        let mut stem = lower.as_str();
        while let Some(shorter) = COMPRESSIONS.iter().find_map(|end| stem.strip_suffix(end)) {
            stem = shorter;
        }
        if lower.contains("toolchain") || lower.contains("-sdk") || lower.ends_with(".sh") {
            Self::Sdk
        } else if stem.ends_with(".manifest")
            || stem.ends_with(".testdata.json")
            || stem.ends_with(".spdx.json")
        {
            Self::Manifest
        } else if stem.ends_with(".log") || lower.starts_with("log.do_") {
            Self::Log
        } else if IMAGE_ENDINGS.iter().any(|end| stem.ends_with(end))
            || stem.starts_with("bzimage")
            || stem.starts_with("zimage")
        {
            Self::Image
        } else {
            Self::Other
        }
    }
}

/// A file a build produced, as the build page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    pub id: i64,
    pub name: String,
    pub kind: ArtifactKind,
    pub size: u64,
    pub sha256: String,
}

/// Lines of a build's log that contain a search text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildLogMatches {
    /// Line number and the line as styled runs of text.
    pub matches: Vec<(u64, Vec<ansi::Run>)>,
    /// The line to search on after, when there may be more.
    pub more_after: Option<u64>,
}

/// The end of a build's log, as the build page shows it, or any stretch of its lines.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildLogTail {
    /// The number of the first line shown, from 1.
    pub first_line: u64,
    /// Each line as styled runs of text.
    pub lines: Vec<Vec<ansi::Run>>,
    pub total_lines: u64,
    pub total_bytes: u64,
    /// The build was archived and its log removed.
    pub archived: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_directories_are_absolute_plain_paths() {
        assert_eq!(parse_build_directory("  "), Ok(None));
        assert_eq!(
            parse_build_directory("/srv//yocto/demo/build/"),
            Ok(Some("/srv/yocto/demo/build".into()))
        );
        for bad in [
            "srv/build",
            "/srv/../etc",
            "/srv/./build",
            "/",
            "//",
            "/srv/a\nb",
        ] {
            assert!(parse_build_directory(bad).is_err(), "{bad:?}");
        }
        let long = format!("/{}", "d".repeat(MAX_BUILD_DIRECTORY_BYTES));
        assert!(parse_build_directory(&long).is_err());
    }

    #[test]
    fn sizes_are_read_with_binary_units() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("20 GiB"), Some(20 << 30));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(parse_size("500 MB"), Some(500 << 20));
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("ten GiB"), None);
        assert_eq!(parse_size("5 parsecs"), None);
        assert_eq!(parse_size("-1"), None);
    }

    #[test]
    fn artifacts_are_sorted_by_what_their_names_say() {
        for (name, kind) in [
            (
                "core-image-minimal-qemux86-64.rootfs.wic",
                ArtifactKind::Image,
            ),
            (
                "core-image-minimal-qemux86-64.rootfs.ext4",
                ArtifactKind::Image,
            ),
            (
                "core-image-minimal-qemux86-64.rootfs.tar.bz2",
                ArtifactKind::Image,
            ),
            (
                "core-image-minimal-qemux86-64.rootfs.wic.bmap",
                ArtifactKind::Image,
            ),
            ("bzImage-qemux86-64.bin", ArtifactKind::Image),
            (
                "core-image-minimal-qemux86-64.rootfs.manifest",
                ArtifactKind::Manifest,
            ),
            ("core-image-minimal.testdata.json", ArtifactKind::Manifest),
            (
                "poky-glibc-x86_64-core-image-minimal-core2-64-qemux86-64-toolchain-5.0.sh",
                ArtifactKind::Sdk,
            ),
            ("20261128101500.log", ArtifactKind::Log),
            ("log.do_compile.4242", ArtifactKind::Log),
            ("README", ArtifactKind::Other),
            ("modules-qemux86-64.tgz", ArtifactKind::Other),
        ] {
            assert_eq!(ArtifactKind::of(name), kind, "{name}");
        }
        for kind in ArtifactKind::ALL {
            assert_eq!(ArtifactKind::parse(kind.as_str()), Some(kind));
        }
    }

    #[test]
    fn state_follows_the_process_and_its_step() {
        assert_eq!(BuildState::of("running", None), BuildState::Queued);
        assert_eq!(
            BuildState::of("running", Some(("prepare", true))),
            BuildState::Queued
        );
        assert_eq!(
            BuildState::of("running", Some(("prepare", false))),
            BuildState::Preparing
        );
        assert_eq!(
            BuildState::of("running", Some(("bitbake", true))),
            BuildState::Building
        );
        assert_eq!(
            BuildState::of("paused", Some(("collect", false))),
            BuildState::Collecting
        );
        assert_eq!(
            BuildState::of("finished", Some(("collect", false))),
            BuildState::Succeeded
        );
        assert_eq!(
            BuildState::of("error", Some(("bitbake", false))),
            BuildState::Failed
        );
        assert_eq!(BuildState::of("killed", None), BuildState::Cancelled);
        for state in BuildState::ALL {
            assert_eq!(BuildState::parse(state.as_str()), Some(state));
        }
    }

    #[test]
    fn progress_counts_parsing_then_setscene_tasks_then_tasks() {
        let mut build = BuildSummary {
            id: 1,
            project: "p".into(),
            project_name: "P".into(),
            number: 1,
            state: BuildState::Building,
            queue_position: None,
            waiting_for_directory: None,
            targets: String::new(),
            machine: String::new(),
            requested_by: String::new(),
            created_at: Utc::now(),
            finished_at: None,
            parse_percent: 50,
            setscene_done: 0,
            setscene_total: 0,
            tasks_done: 0,
            tasks_total: 0,
            progress: 0,
            errors: 0,
            warnings: 0,
            hidden: false,
            pinned: false,
            archived: false,
        };
        assert_eq!(build.percent(), 5);
        (
            build.parse_percent,
            build.setscene_done,
            build.setscene_total,
        ) = (100, 4028, 4851);
        assert_eq!(build.percent(), 26);
        // Setscene tasks over, tasks counted from where BitBake numbers them: ahead.
        build.setscene_done = 4851;
        (build.tasks_done, build.tasks_total) = (1958, 11164);
        assert_eq!(build.percent(), 42);
        // Without setscene tasks, that part is behind a build once its tasks run.
        (build.setscene_done, build.setscene_total) = (0, 0);
        (build.tasks_done, build.tasks_total) = (30, 60);
        assert_eq!(build.percent(), 65);
        build.tasks_done = 90;
        assert_eq!(build.percent(), 100);
        // The furthest it got stays, whatever the counts say since.
        (build.progress, build.tasks_done) = (80, 0);
        assert_eq!(build.percent(), 80);
        build.state = BuildState::Succeeded;
        assert_eq!(build.percent(), 100);
    }
}
