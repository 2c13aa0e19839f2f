//! Request and response types that travel between browser and server.
//!
//! Database models never cross the wire; the data layer maps them into these.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The id of a user account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The logged-in user, as the pages see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub is_admin: bool,
}

/// A user account as shown in lists and on the profile page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub is_admin: bool,
    pub is_disabled: bool,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// One page of a server-side paginated list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// 1-based page number actually returned (clamped to the last page).
    pub page: u64,
    pub per_page: u64,
    pub total: u64,
}

impl<T> Page<T> {
    /// The same page with each item turned into something else.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            page: self.page,
            per_page: self.per_page,
            total: self.total,
        }
    }

    pub fn page_count(&self) -> u64 {
        self.total.div_ceil(self.per_page).max(1)
    }

    /// 1-based index of the first item on this page, 0 when empty.
    pub fn first_index(&self) -> u64 {
        if self.items.is_empty() {
            0
        } else {
            (self.page - 1) * self.per_page + 1
        }
    }

    pub fn last_index(&self) -> u64 {
        self.first_index() + self.items.len() as u64 - u64::from(!self.items.is_empty())
    }

    /// Where this page stands in the list, for the navigation under it.
    pub fn position(&self) -> PagePosition {
        PagePosition {
            page: self.page,
            pages: self.page_count(),
            summary: format!(
                "Showing {}–{} of {}",
                self.first_index(),
                self.last_index(),
                self.total
            ),
        }
    }
}

/// A page's number, the number of pages, and what the page shows ("Showing 26–50 of 120").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagePosition {
    pub page: u64,
    pub pages: u64,
    pub summary: String,
}

/// What an administrator may change about another account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserChange {
    Disable,
    Enable,
    GrantAdmin,
    RevokeAdmin,
}

impl UserChange {
    /// The audit action recorded for this change.
    pub fn audit_action(self) -> &'static str {
        match self {
            Self::Disable => "user.disable",
            Self::Enable => "user.enable",
            Self::GrantAdmin => "user.grant_admin",
            Self::RevokeAdmin => "user.revoke_admin",
        }
    }
}

/// One audit record, as administrators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The username at the time, `system` or `anonymous`.
    pub actor: String,
    pub client_addr: Option<String>,
    pub action: String,
    pub object_type: String,
    pub object_id: Option<String>,
    pub summary: String,
    /// A JSON object, as text.
    pub details: String,
}

/// Which audit records to show, as typed into the filter form; empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditFilter {
    /// Actor name, exactly (case-insensitive).
    pub actor: String,
    /// Action, or its prefix up to a dot: `login` matches `login.success` and `login.failure`.
    pub action: String,
    /// Object type, or `type:id`.
    pub object: String,
    /// First day, `YYYY-MM-DD` (UTC), inclusive.
    pub from: String,
    /// Last day, `YYYY-MM-DD` (UTC), inclusive.
    pub to: String,
}

/// The id of a group of users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GroupId(pub i64);

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The id of a project; URLs use its slug instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProjectId(pub i64);

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A group as listed to administrators and on profiles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupView {
    pub id: GroupId,
    pub name: String,
    pub member_count: u64,
    pub created_at: DateTime<Utc>,
}

/// A group one user belongs to, and whether they maintain it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub group: GroupId,
    pub name: String,
    pub is_maintainer: bool,
}

/// A group as a project names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRef {
    pub id: GroupId,
    pub name: String,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    pub user: UserId,
    pub username: String,
    pub display_name: String,
    pub is_maintainer: bool,
}

/// A group with its members, and what the viewer may change about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDetail {
    pub group: GroupView,
    pub members: Vec<GroupMember>,
    /// The viewer may add and remove members (a maintainer or an administrator).
    pub can_manage_members: bool,
    /// The viewer may rename and delete the group and choose maintainers (an administrator).
    pub can_administer: bool,
}

/// One project permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Permission {
    View,
    Build,
    Configure,
    Download,
}

impl Permission {
    pub const ALL: [Self; 4] = [Self::View, Self::Build, Self::Configure, Self::Download];

    pub fn name(self) -> &'static str {
        match self {
            Self::View => "view",
            Self::Build => "build",
            Self::Configure => "configure",
            Self::Download => "download",
        }
    }

    /// Its bit in the stored bit set.
    pub fn bit(self) -> i16 {
        match self {
            Self::View => 1,
            Self::Build => 2,
            Self::Configure => 4,
            Self::Download => 8,
        }
    }
}

/// The permissions a project gives its group, or everyone else: Unix-style, one set each.
///
/// Form fields are `group[view]=true` and so on; an unchecked box is absent, hence false.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Permissions {
    pub view: bool,
    pub build: bool,
    pub configure: bool,
    pub download: bool,
}

impl Permissions {
    pub const NONE: Self = Self {
        view: false,
        build: false,
        configure: false,
        download: false,
    };

    pub fn has(self, permission: Permission) -> bool {
        match permission {
            Permission::View => self.view,
            Permission::Build => self.build,
            Permission::Configure => self.configure,
            Permission::Download => self.download,
        }
    }

    /// Every other permission needs `view`: a project one may build but not see makes no
    /// sense, so granting any of them grants `view` too.
    pub fn normalized(self) -> Self {
        Self {
            view: self.view || self.build || self.configure || self.download,
            ..self
        }
    }

    pub fn union(self, other: Self) -> Self {
        Self {
            view: self.view || other.view,
            build: self.build || other.build,
            configure: self.configure || other.configure,
            download: self.download || other.download,
        }
    }

    /// The stored form: view 1, build 2, configure 4, download 8.
    pub fn bits(self) -> i16 {
        Permission::ALL
            .iter()
            .filter(|p| self.has(**p))
            .map(|p| p.bit())
            .sum()
    }

    pub fn from_bits(bits: i16) -> Self {
        Self {
            view: bits & Permission::View.bit() != 0,
            build: bits & Permission::Build.bit() != 0,
            configure: bits & Permission::Configure.bit() != 0,
            download: bits & Permission::Download.bit() != 0,
        }
    }

    pub fn is_empty(self) -> bool {
        self == Self::NONE
    }
}

impl fmt::Display for Permissions {
    /// `view, build` or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = Permission::ALL
            .iter()
            .filter(|p| self.has(**p))
            .map(|p| p.name())
            .collect();
        f.write_str(&names.join(", "))
    }
}

/// What the viewer may do with a project, as the policy decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectAccess {
    pub permissions: Permissions,
    /// Change permissions, group and owner; archive and delete (the owner and administrators).
    pub admin: bool,
}

/// A project as listed on the projects page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectSummary {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub owner: String,
    pub group: Option<String>,
    pub group_permissions: Permissions,
    pub other_permissions: Permissions,
    pub archived: bool,
    pub updated_at: DateTime<Utc>,
}

/// A project as its page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectView {
    pub id: ProjectId,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub owner: String,
    pub owner_display_name: String,
    pub group: Option<GroupRef>,
    pub group_permissions: Permissions,
    pub other_permissions: Permissions,
    pub archived_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub access: ProjectAccess,
}

/// Which projects the projects page lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProjectTab {
    /// Projects the viewer owns.
    #[default]
    Mine,
    /// Projects of the viewer's groups that the group may view, owned by someone else.
    Shared,
    /// Every project the viewer may view.
    All,
}

impl ProjectTab {
    pub const ALL: [Self; 3] = [Self::Mine, Self::Shared, Self::All];

    pub fn key(self) -> &'static str {
        match self {
            Self::Mine => "mine",
            Self::Shared => "shared",
            Self::All => "all",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Mine => "Mine",
            Self::Shared => "Shared with my groups",
            Self::All => "All I can see",
        }
    }

    /// The tab named in a URL; anything else is the default tab.
    pub fn from_key(key: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|tab| tab.key() == key)
            .unwrap_or_default()
    }
}

/// The order of the projects list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProjectSort {
    #[default]
    Name,
    /// Most recently changed first.
    Updated,
    /// Newest first.
    Created,
}

impl ProjectSort {
    pub const ALL: [Self; 3] = [Self::Name, Self::Updated, Self::Created];

    pub fn key(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Updated => "updated",
            Self::Created => "created",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Name => "Name",
            Self::Updated => "Recently changed",
            Self::Created => "Newest",
        }
    }

    pub fn from_key(key: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|sort| sort.key() == key)
            .unwrap_or_default()
    }
}

/// What the projects page asks for; the URL's query string in typed form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProjectQuery {
    pub tab: ProjectTab,
    /// Part of the name or slug, case-insensitive.
    pub search: String,
    pub sort: ProjectSort,
    /// List archived projects too.
    pub archived: bool,
    pub page: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(items: usize, page: u64, total: u64) -> Page<u8> {
        Page {
            items: vec![0; items],
            page,
            per_page: 25,
            total,
        }
    }

    #[test]
    fn page_ranges() {
        assert_eq!(page(0, 1, 0).page_count(), 1);
        assert_eq!(
            (page(0, 1, 0).first_index(), page(0, 1, 0).last_index()),
            (0, 0)
        );
        assert_eq!(
            (page(25, 1, 30).first_index(), page(25, 1, 30).last_index()),
            (1, 25)
        );
        assert_eq!(
            (page(5, 2, 30).first_index(), page(5, 2, 30).last_index()),
            (26, 30)
        );
        assert_eq!(page(5, 2, 30).page_count(), 2);
        assert_eq!(page(25, 2, 50).page_count(), 2);
    }

    #[test]
    fn permissions_round_trip_through_bits() {
        for bits in 0..16 {
            assert_eq!(Permissions::from_bits(bits).bits(), bits);
        }
        let build_only = Permissions {
            build: true,
            ..Permissions::NONE
        };
        assert_eq!(build_only.normalized().to_string(), "view, build");
        assert_eq!(Permissions::NONE.to_string(), "none");
    }

    #[test]
    fn unknown_tab_and_sort_keys_fall_back_to_defaults() {
        assert_eq!(ProjectTab::from_key("shared"), ProjectTab::Shared);
        assert_eq!(ProjectTab::from_key("nope"), ProjectTab::Mine);
        assert_eq!(ProjectSort::from_key("created"), ProjectSort::Created);
        assert_eq!(ProjectSort::from_key(""), ProjectSort::Name);
    }
}

/// A worker token as administrators see it; the secret itself is never shown again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerTokenView {
    pub id: i64,
    pub name: String,
    /// The token's first characters.
    pub prefix: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A token just created: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewWorkerToken {
    pub token: WorkerTokenView,
    pub secret: String,
}

/// Whether a worker can take workitems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    Online,
    /// Connected, finishing what it runs, taking nothing new.
    Draining,
    Offline,
}

impl WorkerState {
    pub fn label(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Draining => "draining",
            Self::Offline => "offline",
        }
    }
}

/// A workitem a worker is running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningWorkitem {
    pub workitem: i64,
    pub attempt: i32,
    pub instance: i64,
    pub participant: String,
    pub progress: Option<String>,
}

/// A worker on the Workers page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerView {
    pub id: i64,
    pub name: String,
    pub host: String,
    pub version: String,
    pub participants: Vec<String>,
    pub capacity: i32,
    pub embedded: bool,
    pub token: Option<String>,
    pub state: WorkerState,
    pub last_seen_at: DateTime<Utc>,
    /// Workitems it runs now.
    pub load: usize,
    /// What it runs (for administrators only: it names other people's processes).
    pub running: Vec<RunningWorkitem>,
}

/// The Workers page: every worker, and whether the reader may manage them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkersOverview {
    pub workers: Vec<WorkerView>,
    /// The reader may drain, resume and disconnect workers and manage tokens.
    pub manage: bool,
}

/// A participant on the Participants page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantView {
    pub name: String,
    /// `built_in`, `worker` or `human`.
    pub kind: String,
    pub description: String,
    pub default_timeout_ms: Option<i64>,
    /// Attempts elsewhere after a lost worker, before the step fails.
    pub worker_loss_retries: i32,
    /// Connected workers that serve it (not draining).
    pub workers: Vec<String>,
    pub queued: i64,
    pub running: i64,
    /// Median time from dispatch to reply over its last completed steps.
    pub recent_median_ms: Option<i64>,
    /// The projects it is kept to (their slugs); empty when every project may use it.
    pub projects: Vec<String>,
    /// The users and groups it is kept to; both empty when everyone who may run a process
    /// may use it.
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

/// A process instance in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSummary {
    pub id: i64,
    pub definition: String,
    /// The project's slug; `None` for a process of a global definition.
    pub project: Option<String>,
    pub status: String,
    pub launched_by: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// One step of a process's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRow {
    pub at: DateTime<Utc>,
    pub kind: String,
    /// The expression it is about, as the outline labels it.
    pub node: Option<String>,
    pub participant: Option<String>,
    pub by: String,
    pub message: String,
    pub duration_ms: Option<i64>,
}

/// A process instance's page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessView {
    pub summary: ProcessSummary,
    /// The definition's versions it runs, `name vN`.
    pub versions: Vec<String>,
    /// The current fields (the final ones once it is over), as indented JSON.
    pub fields: String,
    pub outline: Vec<crate::workflow::outline::OutlineRow>,
    /// The latest steps, oldest first (at most [`crate::types::HISTORY_SHOWN`]).
    pub history: Vec<HistoryRow>,
    /// Steps before the ones shown.
    pub earlier_steps: u64,
    /// Why it is in error, one line per failed expression.
    pub errors: Vec<String>,
    /// Running expressions that can be re-applied: (flow, label).
    pub reapplicable: Vec<(u64, String)>,
    /// The reader may cancel, kill, pause, resume, replay and re-apply it.
    pub can_control: bool,
    /// What its latest workitems printed, newest first.
    pub outputs: Vec<WorkitemOutput>,
}

/// The end of one workitem's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkitemOutput {
    pub workitem: i64,
    pub attempt: i32,
    pub participant: String,
    pub state: String,
    /// The last [`OUTPUT_SHOWN_BYTES`] of its log (from a line start).
    pub text: String,
    /// Whether earlier output was left out.
    pub cut: bool,
}

/// Workitems whose output a process page shows.
pub const OUTPUTS_SHOWN: u64 = 20;

/// Bytes of each workitem's log a process page shows.
pub const OUTPUT_SHOWN_BYTES: usize = 64 * 1024;

/// History steps shown on a process page.
pub const HISTORY_SHOWN: u64 = 500;

/// A stored definition in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinitionSummary {
    pub name: String,
    pub version: i32,
    pub author: String,
    pub updated_at: DateTime<Utc>,
}

/// The definitions of a scope (a project, or global), and what the reader may do there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinitionList {
    /// The project's slug; empty for the global definitions.
    pub project: String,
    pub definitions: Vec<DefinitionSummary>,
    pub can_edit: bool,
    pub can_launch: bool,
}

/// A definition's latest version, for the editor and the launch form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinitionDetail {
    pub summary: DefinitionSummary,
    pub source: String,
    /// The fields a launch starts from, as indented JSON.
    pub fields: String,
    pub outline: Vec<crate::workflow::outline::OutlineRow>,
    /// Every version, newest first.
    pub versions: Vec<DefinitionSummary>,
    pub can_edit: bool,
    pub can_launch: bool,
}

/// One problem found in a definition's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinitionProblem {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

/// What checking a definition's text found: its problems, or its outline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinitionCheck {
    pub problems: Vec<DefinitionProblem>,
    pub name: String,
    pub outline: Vec<crate::workflow::outline::OutlineRow>,
}

/// A task in a user's Inbox: a workitem for a participant people serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskView {
    pub workitem: i64,
    pub attempt: i32,
    pub process: i64,
    pub definition: String,
    /// The project's slug; `None` for a global process.
    pub project: Option<String>,
    pub participant: String,
    pub message: String,
    /// Names of the fields the answer fills in.
    pub form: Vec<String>,
    /// The workitem's fields, as indented JSON.
    pub fields: String,
    /// Who it is for, as the definition says (`user x`, `group y`, or empty for anyone who
    /// may build).
    pub addressed_to: String,
    pub created_at: DateTime<Utc>,
}

/// What sets a trigger off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TriggerKind {
    /// A 5-field cron schedule read in an IANA time zone.
    Cron { schedule: String, time_zone: String },
    /// A signed HTTP call to `/hooks/ID`; `mapping` is field name to JSON pointer.
    Webhook {
        mapping: std::collections::BTreeMap<String, String>,
    },
}

/// One firing of a trigger, or one refused call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerRunView {
    pub at: DateTime<Utc>,
    /// `started`, `refused` or `failed`.
    pub outcome: String,
    pub process_id: Option<i64>,
    pub message: String,
}

/// A trigger as listed, with its latest runs (newest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerView {
    pub id: i64,
    /// The project's slug and name; empty for a global trigger.
    pub project: String,
    pub project_name: String,
    pub name: String,
    pub kind: TriggerKind,
    pub definition: String,
    /// The fields every launch starts with, as JSON.
    pub fields: String,
    pub enabled: bool,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub next_run_at: Option<DateTime<Utc>>,
    pub runs: Vec<TriggerRunView>,
    /// Whether the reader may change or delete it.
    pub can_edit: bool,
}

/// A trigger just created; a webhook's secret is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTrigger {
    pub trigger: TriggerView,
    pub secret: Option<String>,
}

/// The triggers of a scope, or every trigger the reader may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerList {
    /// The project's slug; empty for the global triggers or for all of them.
    pub project: String,
    pub triggers: Vec<TriggerView>,
    /// Whether the reader may add triggers to this scope.
    pub can_create: bool,
}
