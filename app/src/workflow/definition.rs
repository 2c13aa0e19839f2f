//! The parsed form of a process definition: a tree of expressions, each node numbered in
//! document order and carrying the line and column it was written at.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::condition::Condition;

/// Workitem fields: a JSON object.
pub type Fields = Map<String, Value>;

/// Most bytes of definition text accepted.
pub const MAX_SOURCE_BYTES: usize = 256 * 1024;
/// Deepest nesting of expressions accepted.
pub const MAX_DEPTH: usize = 64;
/// Most expressions in one definition.
pub const MAX_NODES: usize = 10_000;

/// A node's number within its definition: its position in document order, from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u32);

/// Where something was written: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// A whole definition: its name, the fields a launch starts from, and the expression tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    pub name: String,
    pub description: String,
    pub fields: Fields,
    pub process: Node,
}

impl Definition {
    /// Every node, in document order (so `nodes()[id]` is the node numbered `id`).
    pub fn nodes(&self) -> Vec<&Node> {
        let mut nodes = Vec::new();
        self.process.walk(&mut |node| nodes.push(node));
        nodes
    }

    /// The node numbered `id`.
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.process.find(id)
    }

    /// The participant names this definition dispatches to, sorted and without repeats.
    pub fn participants(&self) -> Vec<String> {
        let mut names = Vec::new();
        self.process.walk(&mut |node| {
            if let Expr::Participant(p) = &node.expr {
                names.push(p.name.clone());
            }
        });
        names.sort();
        names.dedup();
        names
    }

    /// The definitions this one calls as subprocesses, sorted and without repeats.
    pub fn subprocesses(&self) -> Vec<String> {
        let mut names = Vec::new();
        self.process.walk(&mut |node| {
            if let Expr::Subprocess { name, .. } = &node.expr {
                names.push(name.clone());
            }
        });
        names.sort();
        names.dedup();
        names
    }
}

/// One expression in the tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub id: NodeId,
    pub position: Position,
    pub expr: Expr,
    /// Applied when this expression is cancelled while it runs.
    pub on_cancel: Option<Box<Node>>,
}

impl Node {
    /// Calls `visit` on this node and every node below it, in document order.
    pub fn walk<'a>(&'a self, visit: &mut impl FnMut(&'a Node)) {
        visit(self);
        for child in self.children() {
            child.walk(visit);
        }
    }

    /// The node numbered `id` in this subtree.
    pub fn find(&self, id: NodeId) -> Option<&Node> {
        if self.id == id {
            return Some(self);
        }
        // Children are numbered after their parent and in order, so the wanted node is under
        // the last child whose number is not above it.
        self.children()
            .into_iter()
            .take_while(|child| child.id <= id)
            .last()
            .and_then(|child| child.find(id))
    }

    /// The nodes directly below this one, in document order (the `on_cancel` handler last).
    pub fn children(&self) -> Vec<&Node> {
        let mut children: Vec<&Node> = match &self.expr {
            Expr::Sequence(children) | Expr::Cursor { children, .. } => children.iter().collect(),
            Expr::Concurrence { branches, .. } => branches.iter().collect(),
            Expr::If {
                then, otherwise, ..
            } => std::iter::once(then.as_ref())
                .chain(otherwise.as_deref())
                .collect(),
            Expr::Iterator { body, .. } => vec![body.as_ref()],
            Expr::Participant(_)
            | Expr::Wait(_)
            | Expr::Set(_)
            | Expr::Unset(_)
            | Expr::Subprocess { .. }
            | Expr::Error(_) => Vec::new(),
        };
        children.extend(self.on_cancel.as_deref());
        children
    }
}

/// The expressions of the language; README's "Process definitions" documents each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expr {
    /// Children one after the other, each given the fields the previous one replied with.
    Sequence(Vec<Node>),
    /// Branches at the same time, each with a copy of the fields.
    Concurrence {
        branches: Vec<Node>,
        join: Join,
        remaining: Remaining,
        merge: Merge,
    },
    /// A workitem handed to a participant.
    Participant(Participant),
    If {
        condition: Condition,
        then: Box<Node>,
        otherwise: Option<Box<Node>>,
    },
    /// Children in order, like a sequence, but replies may move it back, forward, to the
    /// start or out.
    Cursor {
        children: Vec<Node>,
        rewind_if: Option<Condition>,
        break_if: Option<Condition>,
    },
    /// The body once per element of a list field.
    Iterator {
        over: String,
        each: String,
        concurrent: bool,
        body: Box<Node>,
    },
    Wait(Wait),
    /// Fields to set; string values may hold `${field}` references.
    Set(Fields),
    Unset(Vec<String>),
    /// Another definition, by name, applied with the current fields plus `fields`.
    Subprocess {
        name: String,
        fields: Fields,
    },
    /// Stops the process in the error state with this message.
    Error(String),
}

impl Expr {
    /// The keyword that introduces this expression in a definition.
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::Sequence(_) => "sequence",
            Self::Concurrence { .. } => "concurrence",
            Self::Participant(_) => "participant",
            Self::If { .. } => "if",
            Self::Cursor { .. } => "cursor",
            Self::Iterator { .. } => "iterator",
            Self::Wait(_) => "wait",
            Self::Set(_) => "set",
            Self::Unset(_) => "unset",
            Self::Subprocess { .. } => "subprocess",
            Self::Error(_) => "error",
        }
    }
}

/// When a concurrence has heard enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Join {
    All,
    First,
    Count(u32),
}

/// What happens to the branches still running once a concurrence has joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Remaining {
    /// They are cancelled and the concurrence replies at once.
    Cancel,
    /// They run to their end and the concurrence replies after them; their fields are not
    /// merged.
    Wait,
}

/// How the fields of the joined branches become the concurrence's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Merge {
    /// Key by key, in the order the replies came; a later reply wins a conflict.
    Mix,
    /// The first reply's fields, whole.
    First,
    /// The last joined reply's fields, whole.
    Last,
    /// The fields as applied, plus `branches`: each branch's reply in branch order (null for
    /// a branch that did not join).
    Isolate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    pub name: String,
    /// Given to the participant; string values may hold `${field}` references.
    pub params: Fields,
    pub timeout_ms: Option<u64>,
    pub on_timeout: OnTimeout,
    pub on_error: OnError,
}

/// What a participant's timeout leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// Counts as an error of the participant: `on_error` decides.
    Error,
    /// The process goes on with the fields as they were applied.
    Skip,
}

/// What an error reply (or a timeout treated as one) leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnError {
    /// New attempts before `then` applies.
    pub retry: u32,
    pub then: AfterErrors,
}

impl Default for OnError {
    fn default() -> Self {
        Self {
            retry: 0,
            then: AfterErrors::Fail,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterErrors {
    /// The process stops in the error state at this participant, ready to be replayed.
    Fail,
    /// The process goes on with the fields as they were applied.
    Skip,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wait {
    /// For this many milliseconds.
    For(u64),
    /// Until this time.
    Until(chrono::DateTime<chrono::Utc>),
}
