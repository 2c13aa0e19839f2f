//! The interpreter of process instances: a pure state machine.
//!
//! An [`Instance`] holds the running expressions ("flows") of one process. [`Instance::handle`]
//! takes one [`Message`] (a launch, a participant's reply, a timer, a control command) at a
//! given time and returns the [`Effect`]s the outside world must carry out: workitems to
//! dispatch or retract, timers to schedule, history to record. It does no I/O, so the runtime
//! can commit the new state together with those effects in one transaction, and tests can
//! drive every expression without a database.
//!
//! Built-in participants that need nothing from outside (`noop`, `log`, `set`, `notify`) run
//! inside the same call, so their steps commit with the transition that reached them.

mod interpreter;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::definition::{Definition, Fields, NodeId};

/// Internal messages one call to [`Instance::handle`] processes before it hands the rest back
/// as [`Effect::Enqueue`], so an endless loop of built-in steps cannot hold a transaction.
pub const MAX_STEPS_PER_CALL: usize = 2_000;

/// Most expressions running at once in one instance; beyond it, applying fails (this stops
/// a subprocess that calls itself without end).
pub const MAX_FLOWS: usize = 10_000;

/// The participants the interpreter runs itself.
pub const BUILT_IN_PARTICIPANTS: &[&str] = &["noop", "log", "set", "notify"];

/// A running expression's number within its instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FlowId(pub u64);

/// An expression of one of the instance's definitions: `definition` indexes
/// [`Instance::definitions`] (0 is the launched definition).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRef {
    pub definition: u16,
    pub node: NodeId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    /// A flow failed and waits to be replayed; the rest of the process goes on.
    Error,
    Paused,
    /// Cancelled; `on_cancel` handlers are still running.
    Cancelling,
    Finished,
    Cancelled,
    Killed,
}

impl Status {
    pub fn is_over(self) -> bool {
        matches!(self, Self::Finished | Self::Cancelled | Self::Killed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Error => "error",
            Self::Paused => "paused",
            Self::Cancelling => "cancelling",
            Self::Finished => "finished",
            Self::Cancelled => "cancelled",
            Self::Killed => "killed",
        }
    }
}

/// The persisted state of one process instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub status: Status,
    /// The definitions this instance runs, pinned at launch: the launched one first, then
    /// every subprocess it can reach, by name.
    pub definitions: Vec<String>,
    /// The fields given at launch, and once finished the fields the process ended with.
    pub fields: Fields,
    pub flows: BTreeMap<FlowId, Flow>,
    pub root: Option<FlowId>,
    next_flow: u64,
    next_workitem: u64,
    /// Messages that arrived while paused, handled on resume.
    deferred: Vec<Message>,
}

/// One running expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub node: NodeRef,
    /// `None` for the root and for `on_cancel` handlers, which reply to nobody.
    pub parent: Option<FlowId>,
    pub children: Vec<FlowId>,
    /// The fields it was applied with (used to skip it, replay it or re-apply it).
    pub applied: Fields,
    pub state: FlowState,
    pub started_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowState {
    /// Waiting for its only child (`if`, `subprocess`).
    Child,
    /// At child `index` (`sequence`, `cursor`, sequential `iterator`).
    Step { index: usize },
    /// Branches out (`concurrence`, concurrent `iterator`): `branch_of[i]` is the branch of
    /// `children[i]`; `replies` in arrival order.
    Branches {
        branch_of: BTreeMap<FlowId, usize>,
        replies: Vec<(usize, Fields)>,
        /// Set once joined, with the fields it will reply with.
        joined: Option<Fields>,
    },
    /// A workitem is out with a participant.
    Workitem {
        workitem: u64,
        attempt: u32,
        errors: u32,
        dispatched_at: DateTime<Utc>,
    },
    /// Waiting until a time.
    Sleeping { until: DateTime<Utc> },
    /// Stopped with an error; the process is in error until it is replayed.
    Failed { message: String },
}

/// A reply's request to the nearest enclosing `cursor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CursorCommand {
    /// Go back this many steps (1: redo the previous one).
    Back(u32),
    /// Skip this many of the following steps.
    Skip(u32),
    /// Start again from the first step.
    Rewind,
    /// Leave the cursor.
    Break,
}

/// What a participant answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Done {
        fields: Fields,
        command: Option<CursorCommand>,
    },
    Error {
        message: String,
    },
}

/// Everything an instance reacts to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Message {
    Launch,
    /// Apply an expression (internal; persisted only when a call runs out of steps).
    Apply {
        node: NodeRef,
        parent: Option<FlowId>,
        fields: Fields,
        /// Reuse this flow number (replay and re-apply keep the parent's reference valid).
        flow: Option<FlowId>,
    },
    /// A flow replies to its parent (internal, like `Apply`).
    Reply {
        flow: FlowId,
        fields: Fields,
        command: Option<CursorCommand>,
    },
    /// A participant's answer to attempt `attempt` of workitem `workitem`.
    Workitem {
        workitem: u64,
        attempt: u32,
        outcome: Outcome,
        /// Who answered (a worker's or user's name), for the history.
        by: String,
    },
    /// The worker holding the workitem is gone; `retry` says whether the participant's
    /// policy allows another attempt elsewhere.
    WorkitemLost {
        workitem: u64,
        attempt: u32,
        reason: String,
        retry: bool,
    },
    /// A participant's timeout, for the attempt it was set for.
    Timeout {
        flow: FlowId,
        attempt: u32,
    },
    /// A `wait` is over.
    Wake {
        flow: FlowId,
    },
    Cancel,
    Kill,
    Pause,
    Resume,
    /// Run failed flows again: one, or every one when `flow` is `None`.
    Replay {
        flow: Option<FlowId>,
    },
    /// Cancel a running flow and apply its expression again with the fields it had.
    Reapply {
        flow: FlowId,
    },
}

impl Message {
    /// Control messages act on a paused instance; the others wait for it to resume.
    fn is_control(&self) -> bool {
        matches!(
            self,
            Self::Cancel
                | Self::Kill
                | Self::Pause
                | Self::Resume
                | Self::Replay { .. }
                | Self::Reapply { .. }
        )
    }
}

/// A workitem for a participant outside the interpreter (a worker or a person).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workitem {
    pub workitem: u64,
    pub attempt: u32,
    pub flow: FlowId,
    pub node: NodeRef,
    pub participant: String,
    pub params: Fields,
    pub fields: Fields,
    /// Whether the definition gave the step a timeout (else the participant's default
    /// timeout, if it has one, applies).
    #[serde(default)]
    pub timed: bool,
}

/// What the runtime must do after a call, in order, in the same transaction as the new state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    Dispatch(Workitem),
    /// The workitem is no longer wanted (cancelled, timed out, superseded).
    Retract {
        workitem: u64,
    },
    /// Deliver `message` to this instance at `at`.
    Schedule {
        at: DateTime<Utc>,
        message: Message,
    },
    /// Deliver `message` to this instance as soon as possible.
    Enqueue(Message),
    Record(Event),
}

/// One line of an instance's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub flow: Option<FlowId>,
    pub node: Option<NodeRef>,
    pub participant: Option<String>,
    /// Who did it: a worker, a user, or empty for the engine.
    pub by: String,
    pub message: String,
    pub duration_ms: Option<u64>,
}

impl Event {
    pub fn new(
        kind: EventKind,
        flow: Option<FlowId>,
        node: Option<NodeRef>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            flow,
            node,
            participant: None,
            by: String::new(),
            message: message.into(),
            duration_ms: None,
        }
    }

    pub fn participant(mut self, name: &str) -> Self {
        self.participant = Some(name.to_owned());
        self
    }

    pub fn by(mut self, by: String) -> Self {
        self.by = by;
        self
    }

    pub fn duration_ms(mut self, ms: u64) -> Self {
        self.duration_ms = Some(ms);
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Launched,
    Dispatched,
    /// A participant step completed (exactly one per step the process ran).
    Completed,
    Retried,
    TimedOut,
    Skipped,
    Failed,
    Log,
    Notified,
    Cancelled,
    Paused,
    Resumed,
    Replayed,
    Reapplied,
    /// A reply or timer for an attempt or flow that no longer exists, ignored.
    Stale,
    Finished,
    Killed,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Launched => "launched",
            Self::Dispatched => "dispatched",
            Self::Completed => "completed",
            Self::Retried => "retried",
            Self::TimedOut => "timed_out",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
            Self::Log => "log",
            Self::Notified => "notified",
            Self::Cancelled => "cancelled",
            Self::Paused => "paused",
            Self::Resumed => "resumed",
            Self::Replayed => "replayed",
            Self::Reapplied => "reapplied",
            Self::Stale => "stale",
            Self::Finished => "finished",
            Self::Killed => "killed",
        }
    }
}

/// The definitions an instance runs, by the index used in [`NodeRef::definition`].
pub type Library = [Arc<Definition>];

impl Instance {
    /// A new instance of `definitions[0]`, which [`Message::Launch`] starts. `fields` are the
    /// launch fields over the definition's defaults; `definitions` are the names pinned for it.
    pub fn new(definitions: Vec<String>, fields: Fields) -> Self {
        Self {
            status: Status::Running,
            definitions,
            fields,
            flows: BTreeMap::new(),
            root: None,
            next_flow: 0,
            next_workitem: 0,
            deferred: Vec::new(),
        }
    }

    /// Flows stopped in error.
    pub fn failed_flows(&self) -> impl Iterator<Item = (FlowId, &Flow)> {
        self.flows
            .iter()
            .filter(|(_, flow)| matches!(flow.state, FlowState::Failed { .. }))
            .map(|(id, flow)| (*id, flow))
    }

    /// The flow waiting for `workitem`, and the attempt it waits for.
    pub fn workitem_flow(&self, workitem: u64) -> Option<(FlowId, u32)> {
        self.flows.iter().find_map(|(id, flow)| match flow.state {
            FlowState::Workitem {
                workitem: w,
                attempt,
                ..
            } if w == workitem => Some((*id, attempt)),
            _ => None,
        })
    }
}

/// `value` when it is a list; used by `iterator`.
fn as_list(value: Option<&Value>) -> Result<Vec<Value>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(other) => Err(format!("expected a list, found {other}")),
    }
}
