//! Build logs: what a build's steps print, with secrets masked, appended to the build's own
//! file under the data directory, and read as it arrives for parsing progress, tasks, errors
//! and warnings, which are stored with the build.
//!
//! Every frame of lines reaches the file at once. What the lines said reaches the database
//! at most every [`WRITE_INTERVAL`] per build, in one transaction for all the frames since
//! the last one, and whenever a step replies; viewers are told after each write. The file
//! is the truth about the log's length: a server started again counts it from there.

use crate::ssr::secrets::Keyring;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter,
};
use serde_json::Value;

use super::log_reader::{self, LINE_INDEX_STRIDE};
use crate::builds::bitbake_output::{Event, Level, LinePrefix, Reader, TaskEvent, TaskState};
use crate::builds::progress_percent;
use crate::configuration::MASK;
use crate::error::AppError;
use crate::live::Topic;
use crate::ssr::entities::build_messages::{self, Entity as Messages};
use crate::ssr::entities::build_tasks::{self, Column as TaskColumn};
use crate::ssr::entities::builds::{Column, Entity as Builds};
use crate::ssr::entities::workitems::Entity as Workitems;
use crate::ssr::files::project_dir;
use crate::ssr::live::LiveBus;
use crate::ssr::workers::logs::push_line;
use crate::ssr::{begin_write, db_error};
use crate::types::ProjectId;
use crate::workflow::engine::Outcome;

/// The most bytes one build's log keeps; lines past it are dropped, with one notice.
pub const MAX_BUILD_LOG_BYTES: u64 = 1024 * 1024 * 1024;

/// The most errors and warnings stored for one build; the log keeps every one.
pub const MAX_MESSAGES: i32 = 10_000;

/// The longest failure text kept with a failed task; the log has it whole.
const MAX_FAILURE_CHARS: usize = 4096;

const FULL_NOTICE: &str = "[kiln] the build log reached its size limit; later lines are dropped";

/// Workitems remembered before the cache starts over.
const REMEMBERED: usize = 4096;

/// Rows per insert statement, well under the databases' limits on bound values.
const INSERT_CHUNK: usize = 256;

/// How often, at most, what a build's log said is written to the database.
pub const WRITE_INTERVAL: Duration = Duration::from_millis(100);

/// Where the log of build `number` of `project` lives.
pub fn path(data_dir: &Path, project: i64, number: i32) -> PathBuf {
    build_dir(data_dir, project, number).join("build.log")
}

/// Where the files of build `number` of `project` live.
pub fn build_dir(data_dir: &Path, project: i64, number: i32) -> PathBuf {
    project_dir(data_dir, ProjectId(project))
        .join("builds")
        .join(number.to_string())
}

/// The last lines of build `number` of `project`'s log, within its last `max_bytes` (from
/// a line start), invalid UTF-8 shown as replacement characters; empty when it has none.
pub async fn tail(
    data_dir: &Path,
    project: i64,
    number: i32,
    max_bytes: u64,
) -> std::io::Result<Vec<String>> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = match tokio::fs::File::open(path(data_dir, project, number)).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let size = file.metadata().await?.len();
    let start = size.saturating_sub(max_bytes);
    file.seek(std::io::SeekFrom::Start(start)).await?;
    let mut bytes = Vec::with_capacity(usize::try_from(size - start).unwrap_or(0));
    file.take(max_bytes).read_to_end(&mut bytes).await?;
    let mut slice = bytes.as_slice();
    if start > 0 {
        slice = slice
            .iter()
            .position(|b| *b == b'\n')
            .map_or(&[][..], |i| &slice[i + 1..]);
    }
    Ok(String::from_utf8_lossy(slice)
        .lines()
        .map(str::to_owned)
        .collect())
}

/// A build whose log is being written, and how far it has got.
struct Target {
    build: i64,
    project: i64,
    number: i32,
    secrets: Vec<String>,
    /// The build was deleted: nothing more of it is written.
    gone: AtomicBool,
    written: tokio::sync::Mutex<Written>,
}

struct Written {
    lines: i64,
    bytes: i64,
    /// Errors and warnings kept, written or not.
    messages: i32,
    /// The log reached its limit and says so: later lines are dropped.
    full: bool,
    /// Reads the build's lines as they come, with what earlier lines left open.
    reader: Reader,
    /// The build's progress as read so far; the database has it as of the last write.
    counts: Counts,
    /// What the lines not yet written to the database said.
    pending: Reading,
    /// The log's length the database holds.
    stored_bytes: i64,
    /// When the database was last written; `None`: not since this server started.
    written_at: Option<Instant>,
    /// A write of `pending` is on its way.
    scheduled: bool,
}

/// Takes in build logs; cheap to clone. It remembers which workitems are steps of which
/// build, so a line costs no lookup once its build is known.
#[derive(Clone)]
pub struct BuildLogs {
    workitems: Arc<Mutex<HashMap<i64, Option<i64>>>>,
    builds: Arc<Mutex<HashMap<i64, Arc<Target>>>>,
    /// Told of every build whose log was written.
    live: LiveBus,
    /// Opens the secrets a log must not show.
    keys: Keyring,
    /// The most bytes a log keeps.
    limit: u64,
}

/// What [`BuildLogs::ingest`] took in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    pub build: i64,
    pub project: i64,
}

impl BuildLogs {
    /// Build logs that tell `live` of what they write, masking the secrets `keys` open.
    pub fn new(live: LiveBus, keys: Keyring) -> Self {
        Self::with_limit(live, keys, MAX_BUILD_LOG_BYTES)
    }

    /// Build logs that keep at most `limit` bytes each.
    pub fn with_limit(live: LiveBus, keys: Keyring, limit: u64) -> Self {
        Self {
            workitems: Default::default(),
            builds: Default::default(),
            live,
            keys,
            limit,
        }
    }

    /// The build workitem `workitem` is a step of, if it is one.
    pub async fn build_of(
        &self,
        db: &DatabaseConnection,
        workitem: i64,
    ) -> Result<Option<i64>, AppError> {
        if let Some(known) = self
            .workitems
            .lock()
            .ok()
            .and_then(|m| m.get(&workitem).copied())
        {
            return Ok(known);
        }
        let build = match Workitems::find_by_id(workitem)
            .one(db)
            .await
            .map_err(db_error)?
        {
            Some(row) if row.participant == "build" => Builds::find()
                .filter(Column::InstanceId.eq(row.instance_id))
                .one(db)
                .await
                .map_err(db_error)?
                .map(|b| b.id),
            _ => None,
        };
        if let Ok(mut map) = self.workitems.lock() {
            if map.len() >= REMEMBERED {
                map.clear();
            }
            map.insert(workitem, build);
        }
        Ok(build)
    }

    async fn target(
        &self,
        db: &DatabaseConnection,
        data_dir: &Path,
        build: i64,
    ) -> Result<Arc<Target>, AppError> {
        if let Some(target) = self.builds.lock().ok().and_then(|m| m.get(&build).cloned()) {
            return Ok(target);
        }
        let row = Builds::find_by_id(build)
            .one(db)
            .await
            .map_err(db_error)?
            .ok_or(AppError::NotFound)?;
        let secrets = super::jobs::secrets(db, &self.keys, &row).await?;
        let file_path = path(data_dir, row.project_id, row.number);
        let full = ends_with_notice(&file_path).await;
        let (lines, bytes) = log_reader::extent(&file_path).await.map_err(|error| {
            tracing::error!(%error, build = row.id, "cannot read a build log's length");
            AppError::Internal
        })?;
        let messages = Messages::find()
            .filter(build_messages::Column::BuildId.eq(row.id))
            .count(db)
            .await
            .map_err(db_error)?;
        let prefix = line_prefix(db, row.project_id).await?;
        let lines = i64::try_from(lines).unwrap_or(i64::MAX);
        let counts = Counts {
            parse_percent: u8::try_from(row.parse_percent.clamp(0, 100)).unwrap_or(0),
            setscene: (count(row.setscene_done), count(row.setscene_total)),
            tasks: (count(row.tasks_done), count(row.tasks_total)),
            progress: u8::try_from(row.progress.clamp(0, 100)).unwrap_or(0),
        };
        let target = Arc::new(Target {
            build: row.id,
            project: row.project_id,
            number: row.number,
            secrets,
            gone: AtomicBool::new(false),
            written: tokio::sync::Mutex::new(Written {
                lines,
                bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
                messages: i32::try_from(messages).unwrap_or(i32::MAX),
                full,
                reader: Reader::new(prefix, u64::try_from(lines).unwrap_or(0)),
                counts,
                pending: Reading::default(),
                stored_bytes: row.log_bytes,
                written_at: None,
                scheduled: false,
            }),
        });
        if let Ok(mut map) = self.builds.lock() {
            if map.len() >= REMEMBERED {
                map.clear();
            }
            map.insert(build, target.clone());
        }
        Ok(target)
    }

    /// `outcome`, a reply of a step of build `build`, with the build's secrets masked: an
    /// error quotes the step's last output, and goes into the process's history.
    pub async fn mask_outcome(
        &self,
        db: &DatabaseConnection,
        data_dir: &Path,
        build: i64,
        outcome: Outcome,
    ) -> Result<Outcome, AppError> {
        let target = self.target(db, data_dir, build).await?;
        // The step printed its last line: a message it left open takes no more.
        target.written.lock().await.reader.finish();
        // The build's page is up to date with its log before the step is over; a write
        // that fails is tried again with the next lines, and must not change the reply.
        if let Err(error) = self.write(db, &target).await {
            tracing::warn!(%error, build, "cannot record what a build log said");
        }
        let secrets = &target.secrets;
        Ok(match outcome {
            Outcome::Error { message } => Outcome::Error {
                message: mask(&message, secrets),
            },
            Outcome::Done { fields, command } => Outcome::Done {
                fields: fields
                    .into_iter()
                    .map(|(name, value)| (name, mask_value(value, secrets)))
                    .collect(),
                command,
            },
        })
    }

    /// Forgets build `build` (it was deleted).
    pub fn forget(&self, build: i64) {
        if let Some(target) = self
            .builds
            .lock()
            .ok()
            .and_then(|mut map| map.remove(&build))
        {
            target.gone.store(true, Ordering::Relaxed);
        }
        if let Ok(mut map) = self.workitems.lock() {
            map.retain(|_, b| *b != Some(build));
        }
    }

    /// Takes in `lines` printed by workitem `workitem`: when it is a step of a build, they
    /// are masked, appended to the build's log and read, and the build is returned. Lines
    /// of other workitems are left to the caller.
    pub async fn ingest(
        &self,
        db: &DatabaseConnection,
        data_dir: &Path,
        workitem: i64,
        lines: &[String],
    ) -> Result<Option<Ingested>, AppError> {
        let Some(build) = self.build_of(db, workitem).await? else {
            return Ok(None);
        };
        let target = match self.target(db, data_dir, build).await {
            Ok(target) => target,
            // Deleted while its step still printed.
            Err(AppError::NotFound) => return Ok(None),
            Err(error) => return Err(error),
        };
        let mut written = target.written.lock().await;
        let ingested = Ingested {
            build,
            project: target.project,
        };
        if written.full {
            return Ok(Some(ingested));
        }
        let mut text = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        let mut line_number = written.lines;
        let mut messages = written.messages;
        // Where every LINE_INDEX_STRIDE-th line starts, for reading the log by line.
        let mut index = Vec::new();
        let mut full = false;
        let mut reading = std::mem::take(&mut written.pending);
        let mut counts = written.counts;
        let now = Utc::now();
        for line in lines {
            let masked = mask(line, &target.secrets);
            let start = text.len();
            if line_number % LINE_INDEX_STRIDE == 0 {
                let offset = u64::try_from(written.bytes).unwrap_or(0) + start as u64;
                index.extend_from_slice(&offset.to_le_bytes());
            }
            push_line(&mut text, &masked);
            let room = self
                .limit
                .saturating_sub(u64::try_from(written.bytes).unwrap_or(u64::MAX))
                .saturating_sub(text.len() as u64);
            if room < FULL_NOTICE.len() as u64 + 1 {
                text.truncate(start);
                text.push_str(FULL_NOTICE);
                text.push('\n');
                line_number += 1;
                full = true;
                break;
            }
            line_number += 1;
            let shown = text[start..].trim_end_matches('\n');
            for event in written.reader.read(shown) {
                reading.take(event, now, &mut messages, &mut counts);
            }
        }
        written.counts = counts;
        let file_path = path(data_dir, target.project, target.number);
        let appended = append(file_path, text.as_bytes().to_vec(), index).await;
        written.pending = reading;
        appended.map_err(|error| {
            tracing::error!(%error, build = target.build, "cannot write a build log");
            AppError::Internal
        })?;
        written.lines = line_number;
        written.bytes += i64::try_from(text.len()).unwrap_or(i64::MAX);
        written.messages = messages;
        written.full = full;
        let due = written
            .written_at
            .is_none_or(|at| at.elapsed() >= WRITE_INTERVAL);
        if due {
            self.write_locked(db, &target, &mut written).await?;
        } else if !written.scheduled {
            written.scheduled = true;
            let wait = written.written_at.map_or(Duration::ZERO, |at| {
                WRITE_INTERVAL.saturating_sub(at.elapsed())
            });
            let (logs, db, target) = (self.clone(), db.clone(), target.clone());
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                if let Err(error) = logs.write(&db, &target).await {
                    tracing::warn!(%error, build = target.build, "cannot record what a build log said");
                }
            });
        }
        Ok(Some(ingested))
    }

    /// Writes what build `target`'s log said since the last write, if anything.
    async fn write(&self, db: &DatabaseConnection, target: &Target) -> Result<(), AppError> {
        let mut written = target.written.lock().await;
        self.write_locked(db, target, &mut written).await
    }

    async fn write_locked(
        &self,
        db: &DatabaseConnection,
        target: &Target,
        written: &mut Written,
    ) -> Result<(), AppError> {
        written.scheduled = false;
        if target.gone.load(Ordering::Relaxed) {
            written.pending = Reading::default();
            return Ok(());
        }
        if written.written_at.is_some()
            && written.pending.is_empty()
            && written.stored_bytes == written.bytes
        {
            return Ok(());
        }
        // On failure what was read stays pending for the next write.
        written
            .pending
            .write(
                db,
                target,
                &written.counts,
                written.lines,
                written.bytes,
                Utc::now(),
            )
            .await?;
        written.pending = Reading::default();
        written.stored_bytes = written.bytes;
        written.written_at = Some(Instant::now());
        self.live
            .publish(Topic::Build(target.build), Some(target.project));
        Ok(())
    }
}

/// Whether the log at `file_path` ends with the notice that it is full.
async fn ends_with_notice(file_path: &Path) -> bool {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let Ok(mut file) = tokio::fs::File::open(file_path).await else {
        return false;
    };
    let tail = FULL_NOTICE.len() as u64 + 1;
    let Ok(size) = file.metadata().await.map(|m| m.len()) else {
        return false;
    };
    if size < tail
        || file
            .seek(std::io::SeekFrom::End(-(tail as i64)))
            .await
            .is_err()
    {
        return false;
    }
    let mut end = Vec::new();
    file.read_to_end(&mut end).await.is_ok() && end == format!("{FULL_NOTICE}\n").as_bytes()
}

/// `line` with every secret replaced by the mask.
fn mask(line: &str, secrets: &[String]) -> String {
    let mut line = line.to_owned();
    for secret in secrets {
        if line.contains(secret.as_str()) {
            line = line.replace(secret.as_str(), MASK);
        }
    }
    line
}

/// `value` with every secret in its strings masked.
fn mask_value(value: Value, secrets: &[String]) -> Value {
    match value {
        Value::String(text) => Value::String(mask(&text, secrets)),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| mask_value(item, secrets))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(name, item)| (name, mask_value(item, secrets)))
                .collect(),
        ),
        other => other,
    }
}

/// Appends `bytes` to the log at `file_path` and `index` to its index, on one blocking
/// thread: a frame of lines costs one hand-over, not one per file operation.
async fn append(file_path: PathBuf, bytes: Vec<u8>, index: Vec<u8>) -> std::io::Result<()> {
    fn add(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
        };
        let mut file = match open() {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                open()?
            }
            other => other?,
        };
        file.write_all(bytes)
    }
    tokio::task::spawn_blocking(move || {
        add(&file_path, &bytes)?;
        if !index.is_empty() {
            add(&log_reader::index_path(&file_path), &index)?;
        }
        Ok(())
    })
    .await
    .map_err(std::io::Error::other)?
}

/// The project's line prefix, checked again: one stored before a limit changed is
/// skipped, with a note in the server's log.
async fn line_prefix(
    db: &DatabaseConnection,
    project: i64,
) -> Result<Option<LinePrefix>, AppError> {
    use crate::ssr::entities::projects::Entity as Projects;
    let pattern = Projects::find_by_id(project)
        .one(db)
        .await
        .map_err(db_error)?
        .and_then(|p| p.line_prefix);
    let Some(pattern) = pattern else {
        return Ok(None);
    };
    Ok(LinePrefix::parse(&pattern).unwrap_or_else(|problem| {
        tracing::warn!(project, %problem, "a project's line prefix no longer holds; lines are read as they are");
        None
    }))
}

fn count(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

/// A build's progress as its lines told it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    parse_percent: u8,
    /// Done and total.
    setscene: (u32, u32),
    tasks: (u32, u32),
    /// The furthest the bar got.
    progress: u8,
}

/// What lines said since they were last written to the database.
#[derive(Default)]
struct Reading {
    /// The build's counts changed.
    counted: bool,
    /// By recipe and task, what was seen of it.
    tasks: BTreeMap<(String, String), TaskSeen>,
    /// By recipe and task, the lines BitBake grouped with a failed task.
    failures: BTreeMap<(String, String), Vec<String>>,
    /// Level, text and line of each message kept.
    messages: Vec<(&'static str, String, i64)>,
    /// The whole text of messages written already that gained lines since, by line.
    grown: BTreeMap<i64, String>,
    errors: i32,
    warnings: i32,
    /// BitBake's own count of errors and of warnings, when its summary gave it: the build
    /// takes it, plus what was counted since.
    reported_errors: Option<i32>,
    reported_warnings: Option<i32>,
}

/// A task as lines since the last write showed it.
struct TaskSeen {
    version: String,
    state: TaskState,
    /// When it started, if it was seen starting.
    started: Option<DateTime<Utc>>,
    ended: Option<DateTime<Utc>>,
}

impl Reading {
    /// Takes in `event`, seen at `now`, into what is pending and into the build's `counts`;
    /// an error or warning is kept while `kept`, the build's count of them, is below
    /// [`MAX_MESSAGES`].
    fn take(&mut self, event: Event, now: DateTime<Utc>, kept: &mut i32, counts: &mut Counts) {
        let before = *counts;
        match event {
            Event::Parsing { percent } => {
                counts.parse_percent = Ord::max(counts.parse_percent, percent);
            }
            Event::Setscene { number, total } => counts.setscene = (number, total),
            Event::SetsceneCompleted => counts.setscene.0 = counts.setscene.1,
            Event::Running { number, total } => counts.tasks = (number, total),
            Event::TasksSummary { attempted, .. } => {
                counts.tasks = (attempted, Ord::max(counts.tasks.1, attempted));
            }
            Event::Task(task) => self.task(task, now),
            Event::TaskFailure { recipe, task, text } => {
                let key = (recipe, task);
                if let Some(text) = text {
                    self.failures.entry(key.clone()).or_default().push(text);
                }
                // Failed, without changing when it started or ended as its own lines tell.
                self.tasks
                    .entry(key)
                    .or_insert(TaskSeen {
                        version: String::new(),
                        state: TaskState::Failed,
                        started: None,
                        ended: None,
                    })
                    .state = TaskState::Failed;
            }
            Event::Counted { level, count } => {
                let count = i32::try_from(count).unwrap_or(i32::MAX);
                // What was counted of the level so far is in BitBake's count.
                match level {
                    Level::Error => (self.reported_errors, self.errors) = (Some(count), 0),
                    Level::Warning => (self.reported_warnings, self.warnings) = (Some(count), 0),
                }
            }
            Event::Message(message) => {
                match message.level {
                    Level::Error => self.errors += 1,
                    Level::Warning => self.warnings += 1,
                }
                if *kept < MAX_MESSAGES {
                    *kept += 1;
                    let line = i64::try_from(message.line).unwrap_or(i64::MAX);
                    self.messages
                        .push((message.level.as_str(), message.text, line));
                }
            }
            Event::MessageText { line, text } => {
                let line = i64::try_from(line).unwrap_or(i64::MAX);
                match self.messages.iter_mut().rev().find(|m| m.2 == line) {
                    Some(pending) => pending.1 = text,
                    // Written already, or not kept (then there is nothing to change).
                    None => {
                        self.grown.insert(line, text);
                    }
                }
            }
        }
        counts.progress = Ord::max(
            counts.progress,
            progress_percent(counts.parse_percent, counts.setscene, counts.tasks),
        );
        self.counted |= *counts != before;
    }

    fn task(&mut self, task: TaskEvent, now: DateTime<Utc>) {
        let seen = self
            .tasks
            .entry((task.recipe, task.task))
            .or_insert(TaskSeen {
                version: String::new(),
                state: task.state,
                started: None,
                ended: None,
            });
        seen.version = task.version;
        seen.state = task.state;
        if task.state == TaskState::Started {
            // Started again (the build was retried): it starts over.
            seen.started = Some(now);
            seen.ended = None;
        } else {
            seen.ended = Some(now);
        }
    }

    fn is_empty(&self) -> bool {
        !self.counted
            && self.tasks.is_empty()
            && self.messages.is_empty()
            && self.grown.is_empty()
            && self.errors == 0
            && self.warnings == 0
            && self.reported_errors.is_none()
            && self.reported_warnings.is_none()
    }

    /// Writes what was read, with the build's counts and the log's length, in one
    /// transaction.
    async fn write(
        &self,
        db: &DatabaseConnection,
        target: &Target,
        counts: &Counts,
        lines: i64,
        bytes: i64,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let txn = begin_write(db).await?;
        let number = |n: u32| Expr::value(i32::try_from(n).unwrap_or(i32::MAX));
        let tally = |column: Column, reported: Option<i32>, counted: i32| match reported {
            Some(reported) => Expr::value(reported.saturating_add(counted)),
            None => Expr::col(column).add(counted),
        };
        let mut update = Builds::update_many()
            .col_expr(Column::LogLines, Expr::value(lines))
            .col_expr(Column::LogBytes, Expr::value(bytes))
            .col_expr(Column::UpdatedAt, Expr::value(now))
            .col_expr(
                Column::Errors,
                tally(Column::Errors, self.reported_errors, self.errors),
            )
            .col_expr(
                Column::Warnings,
                tally(Column::Warnings, self.reported_warnings, self.warnings),
            );
        if self.counted {
            update = update
                .col_expr(
                    Column::ParsePercent,
                    Expr::value(i16::from(counts.parse_percent)),
                )
                .col_expr(Column::SetsceneDone, number(counts.setscene.0))
                .col_expr(Column::SetsceneTotal, number(counts.setscene.1))
                .col_expr(Column::TasksDone, number(counts.tasks.0))
                .col_expr(Column::TasksTotal, number(counts.tasks.1))
                .col_expr(Column::Progress, Expr::value(i16::from(counts.progress)));
        }
        update
            .filter(Column::Id.eq(target.build))
            .exec(&txn)
            .await
            .map_err(db_error)?;
        if !self.messages.is_empty() {
            let rows =
                self.messages
                    .iter()
                    .map(|(level, text, line)| build_messages::ActiveModel {
                        build_id: Set(target.build),
                        level: Set((*level).to_owned()),
                        text: Set(text.clone()),
                        line: Set(*line),
                        ..Default::default()
                    });
            insert_chunks(&txn, rows.collect(), None).await?;
        }
        // A build's messages are told apart by their line.
        for (line, text) in &self.grown {
            Messages::update_many()
                .col_expr(build_messages::Column::Text, Expr::value(text.clone()))
                .filter(build_messages::Column::BuildId.eq(target.build))
                .filter(build_messages::Column::Line.eq(*line))
                .exec(&txn)
                .await
                .map_err(db_error)?;
        }
        // Tasks seen starting take their start from here; the others keep the one they have.
        // Tasks seen starting, tasks seen ending, and tasks only known to have failed.
        type Groups = (
            Vec<build_tasks::ActiveModel>,
            Vec<build_tasks::ActiveModel>,
            Vec<build_tasks::ActiveModel>,
        );
        let (restarted, ended, failed): Groups = self
            .tasks
            .iter()
            .map(|((recipe, task), seen)| {
                let outcome = match seen.state {
                    TaskState::Started => "started",
                    TaskState::Succeeded => "succeeded",
                    TaskState::Failed => "failed",
                };
                let row = build_tasks::ActiveModel {
                    build_id: Set(target.build),
                    recipe: Set(recipe.chars().take(255).collect()),
                    version: Set(seen.version.chars().take(255).collect()),
                    task: Set(task.chars().take(255).collect()),
                    outcome: Set(outcome.to_owned()),
                    started_at: Set(seen.started.or(seen.ended).unwrap_or(now)),
                    ended_at: Set(seen.ended),
                    ..Default::default()
                };
                (seen.started.is_some(), seen.ended.is_some(), row)
            })
            .fold(
                Default::default(),
                |(mut restarted, mut ended, mut failed): Groups, (started, over, row)| {
                    match (started, over) {
                        (true, _) => restarted.push(row),
                        (false, true) => ended.push(row),
                        (false, false) => failed.push(row),
                    }
                    (restarted, ended, failed)
                },
            );
        let key = [TaskColumn::BuildId, TaskColumn::Recipe, TaskColumn::Task];
        for (rows, updated) in [
            (
                restarted,
                &[
                    TaskColumn::Outcome,
                    TaskColumn::StartedAt,
                    TaskColumn::EndedAt,
                    TaskColumn::Version,
                ][..],
            ),
            (ended, &[TaskColumn::Outcome, TaskColumn::EndedAt][..]),
            // Known failed only from the lines BitBake groups with it.
            (failed, &[TaskColumn::Outcome][..]),
        ] {
            let on_conflict = OnConflict::columns(key)
                .update_columns(updated.iter().copied())
                .to_owned();
            insert_chunks(&txn, rows, Some(&on_conflict)).await?;
        }
        // A failed task's lines join those it has; failures are few, so one at a time.
        for ((recipe, task), lines) in &self.failures {
            let recipe: String = recipe.chars().take(255).collect();
            let task: String = task.chars().take(255).collect();
            let row = build_tasks::Entity::find()
                .filter(TaskColumn::BuildId.eq(target.build))
                .filter(TaskColumn::Recipe.eq(recipe.as_str()))
                .filter(TaskColumn::Task.eq(task.as_str()))
                .one(&txn)
                .await
                .map_err(db_error)?;
            let Some(row) = row else { continue };
            let mut failure = row.failure.unwrap_or_default();
            for line in lines {
                if !failure.is_empty() {
                    failure.push('\n');
                }
                failure.push_str(line);
            }
            build_tasks::Entity::update_many()
                .col_expr(
                    TaskColumn::Failure,
                    Expr::value(failure.chars().take(MAX_FAILURE_CHARS).collect::<String>()),
                )
                .filter(TaskColumn::Id.eq(row.id))
                .exec(&txn)
                .await
                .map_err(db_error)?;
        }
        txn.commit().await.map_err(db_error)?;
        Ok(())
    }
}

/// Inserts `rows` a chunk at a time, each with `on_conflict` when given.
async fn insert_chunks<A>(
    conn: &impl ConnectionTrait,
    rows: Vec<A>,
    on_conflict: Option<&OnConflict>,
) -> Result<(), AppError>
where
    A: sea_orm::ActiveModelTrait,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut insert = <A::Entity as EntityTrait>::insert_many(rows.by_ref().take(INSERT_CHUNK));
        if let Some(on_conflict) = on_conflict {
            insert = insert.on_conflict(on_conflict.clone());
        }
        insert
            .exec_without_returning(conn)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_longest_first() {
        let secrets = vec!["hunter22".to_owned(), "hunter2".to_owned()];
        assert_eq!(
            mask("token=hunter22 and hunter2", &secrets),
            format!("token={MASK} and {MASK}")
        );
        assert_eq!(mask("nothing here", &secrets), "nothing here");
    }

    /// `lines` read by a new reader and taken into `reading`, one second apart from `start`.
    fn take_all(
        reading: &mut Reading,
        lines: &[&str],
        start: DateTime<Utc>,
        kept: &mut i32,
    ) -> Counts {
        let mut reader = Reader::new(None, 0);
        let mut counts = Counts::default();
        for (n, line) in lines.iter().enumerate() {
            let at = start + chrono::TimeDelta::seconds(n as i64);
            for event in reader.read(line) {
                reading.take(event, at, kept, &mut counts);
            }
        }
        reader.finish();
        counts
    }

    #[test]
    fn a_batch_keeps_each_tasks_last_state_and_when_it_was_seen() {
        let mut reading = Reading::default();
        let start = Utc::now();
        let mut kept = MAX_MESSAGES - 1;
        let counts = take_all(
            &mut reading,
            &[
                "NOTE: recipe busybox-1.36.1-r0: task do_compile: Started",
                "NOTE: recipe busybox-1.36.1-r0: task do_compile: Succeeded",
                "NOTE: recipe zlib-1.3-r0: task do_fetch: Started",
                "NOTE: Running task 7 of 30 (/x/zlib_1.3.bb:do_fetch)",
                "WARNING: Host distribution \"x\" has not been validated",
                "Parsing recipes: 45% |####      | ETA:  0:00:10",
                "ERROR: one too many to keep",
            ],
            start,
            &mut kept,
        );
        let busybox = &reading.tasks[&("busybox".into(), "do_compile".into())];
        assert_eq!(
            (busybox.version.as_str(), busybox.state),
            ("1.36.1-r0", TaskState::Succeeded)
        );
        assert_eq!(busybox.started, Some(start));
        assert_eq!(busybox.ended, Some(start + chrono::TimeDelta::seconds(1)));
        let zlib = &reading.tasks[&("zlib".into(), "do_fetch".into())];
        assert_eq!((zlib.state, zlib.ended), (TaskState::Started, None));
        assert_eq!(counts.tasks, (7, 30));
        assert_eq!(counts.parse_percent, 45);
        assert!(reading.counted);
        assert_eq!((reading.warnings, reading.errors), (1, 1));
        // Only the first message fitted under the limit; both were counted.
        assert_eq!(reading.messages.len(), 1);
        assert_eq!(reading.messages[0].2, 5);
        assert_eq!(kept, MAX_MESSAGES);
    }

    #[test]
    fn progress_never_goes_back_when_setscene_tasks_give_way_to_tasks() {
        let mut reading = Reading::default();
        let mut kept = 0;
        let mut reader = Reader::new(None, 0);
        let mut counts = Counts::default();
        let mut shown = Vec::new();
        for line in [
            "Parsing recipes...done.",
            "NOTE: Running setscene task 2000 of 4851 (/x/a_1.0.bb:do_populate_sysroot_setscene)",
            "NOTE: Running setscene task 4028 of 4851 (/x/a_1.0.bb:do_package_setscene)",
            "NOTE: Setscene tasks completed",
            "NOTE: Running task 1958 of 11164 (/x/b_1.0.bb:do_compile)",
            "NOTE: Running task 5000 of 11164 (/x/b_1.0.bb:do_install)",
        ] {
            for event in reader.read(line) {
                reading.take(event, Utc::now(), &mut kept, &mut counts);
            }
            shown.push(counts.progress);
        }
        assert_eq!(shown, [10, 18, 26, 30, 42, 61]);
        assert_eq!(counts.setscene, (4851, 4851));
        assert_eq!(counts.tasks, (5000, 11164));
    }

    #[test]
    fn bitbakes_count_of_errors_wins_and_failure_lines_go_with_their_task() {
        let mut reading = Reading::default();
        let mut kept = 0;
        take_all(
            &mut reading,
            &[
                "NOTE: Running task 3 of 9 (/x/busybox_1.36.1.bb:do_compile)",
                "NOTE: recipe busybox-1.36.1-r0: task do_compile: Started",
                "ERROR: busybox-1.36.1-r0 do_compile: oe_runmake failed",
                "ERROR: Logfile of failure stored in: /b/tmp/work/core2-64-poky-linux/busybox/1.36.1-r0/temp/log.do_compile.42",
                "NOTE: recipe busybox-1.36.1-r0: task do_compile: Failed",
                "ERROR: Task (/x/busybox_1.36.1.bb:do_compile) failed with exit code '1'",
                "Summary: 1 task failed:",
                "  /x/busybox_1.36.1.bb:do_compile",
                "Summary: There were 2 ERROR messages, returning a non-zero exit code.",
            ],
            Utc::now(),
            &mut kept,
        );
        assert_eq!((reading.reported_errors, reading.errors), (Some(2), 0));
        assert_eq!(reading.messages.len(), 1);
        let key = ("busybox".to_owned(), "do_compile".to_owned());
        assert_eq!(reading.tasks[&key].state, TaskState::Failed);
        assert_eq!(reading.tasks[&key].version, "1.36.1-r0");
        assert_eq!(reading.tasks.len(), 1);
        let failure = &reading.failures[&key];
        assert_eq!(failure.len(), 2);
        assert!(failure[1].starts_with("Task (/x/busybox_1.36.1.bb:do_compile) failed"));
    }

    #[test]
    fn a_message_written_already_takes_the_lines_that_follow_it() {
        let mut reader = Reader::new(None, 10);
        let (mut kept, mut counts) = (0, Counts::default());
        let mut first = Reading::default();
        for event in reader.read("ERROR: Fetcher failure: wget failed, output:") {
            first.take(event, Utc::now(), &mut kept, &mut counts);
        }
        assert_eq!(first.messages.len(), 1);
        assert_eq!(first.messages[0].2, 11);
        // The first batch was written; the next one brings its continuation lines.
        let mut next = Reading::default();
        for line in ["HTTP request sent, awaiting response... 404 Not Found", ""] {
            for event in reader.read(line) {
                next.take(event, Utc::now(), &mut kept, &mut counts);
            }
        }
        assert!(next.messages.is_empty());
        assert_eq!(
            next.grown[&11],
            "Fetcher failure: wget failed, output:\nHTTP request sent, awaiting response... 404 Not Found"
        );
        assert_eq!((first.errors, next.errors), (1, 0));
    }
}
