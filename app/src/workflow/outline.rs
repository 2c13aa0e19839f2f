//! A definition as an indented outline, one row per expression, for pages to draw the tree
//! and mark each node's state in a running instance.

use serde::{Deserialize, Serialize};

use super::definition::{Definition, Expr, Node, Wait};

/// Where an instance is with one expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Not reached (or not shown: an outline without an instance).
    Pending,
    Running,
    /// Waiting for a participant's reply.
    Waiting,
    Done,
    Skipped,
    Failed,
}

impl NodeState {
    pub fn label(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Waiting => "waiting",
            Self::Done => "done",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
        }
    }
}

/// One expression of the outline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutlineRow {
    pub node: u32,
    pub depth: u16,
    pub line: u32,
    /// The keyword and what it is about, e.g. `participant shell`, `if ${x} == 1`.
    pub label: String,
    pub state: NodeState,
}

fn label(node: &Node) -> String {
    let keyword = node.expr.keyword();
    match &node.expr {
        Expr::Participant(p) => format!("{keyword} {}", p.name),
        Expr::If { condition, .. } => format!("{keyword} {}", condition.source()),
        Expr::Cursor { .. } | Expr::Sequence(_) | Expr::Concurrence { .. } => keyword.to_owned(),
        Expr::Iterator {
            over,
            each,
            concurrent,
            ..
        } => format!(
            "{keyword} over ${{{over}}} as {each}{}",
            if *concurrent { " (concurrent)" } else { "" }
        ),
        Expr::Wait(Wait::For(ms)) => format!("{keyword} {}", humanize(*ms)),
        Expr::Wait(Wait::Until(at)) => {
            format!("{keyword} until {}", at.format("%Y-%m-%d %H:%M:%S UTC"))
        }
        Expr::Set(fields) => format!(
            "{keyword} {}",
            fields.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
        Expr::Unset(names) => format!("{keyword} {}", names.join(", ")),
        Expr::Subprocess { name, .. } => format!("{keyword} {name}"),
        Expr::Error(message) => format!("{keyword} “{message}”"),
    }
}

fn humanize(ms: u64) -> String {
    match ms {
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

/// The definition's expressions in document order, indented by depth, all `Pending`.
/// An `on_cancel` handler is shown below its expression, labelled as such.
pub fn outline(definition: &Definition) -> Vec<OutlineRow> {
    let mut rows = Vec::new();
    let mut stack: Vec<(&Node, u16, bool)> = vec![(&definition.process, 0, false)];
    while let Some((node, depth, is_handler)) = stack.pop() {
        let mut text = label(node);
        if is_handler {
            text = format!("on cancel: {text}");
        }
        rows.push(OutlineRow {
            node: node.id.0,
            depth,
            line: node.position.line,
            label: text,
            state: NodeState::Pending,
        });
        let children = node.children();
        let handler = node.on_cancel.as_deref();
        for child in children.into_iter().rev() {
            let is_handler = handler.is_some_and(|h| std::ptr::eq(h, child));
            stack.push((child, depth.saturating_add(1), is_handler));
        }
    }
    rows
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use crate::workflow::parse::{KnownNames, parse_definition};

    #[test]
    fn outline_follows_the_document() {
        let known = KnownNames {
            participants: ["shell".to_owned(), "noop".to_owned()].into(),
            definitions: Default::default(),
        };
        let source = "name: x\nprocess:\n  sequence:\n    - participant: shell\n    - if: \"${a} == 1\"\n      then: { wait: 90s }\n    - participant: noop\n      on_cancel: { error: stop }\n";
        let definition = parse_definition(source, &known).unwrap();
        let rows: Vec<(u16, String, u32)> = outline(&definition)
            .into_iter()
            .map(|r| (r.depth, r.label, r.line))
            .collect();
        assert_eq!(
            rows,
            [
                (0, "sequence".to_owned(), 3),
                (1, "participant shell".to_owned(), 4),
                (1, "if ${a} == 1".to_owned(), 5),
                (2, "wait 90s".to_owned(), 6),
                (1, "participant noop".to_owned(), 7),
                (2, "on cancel: error “stop”".to_owned(), 8),
            ]
        );
    }
}
