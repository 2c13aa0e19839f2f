//! Live updates: the topics a page can follow over `/ws`, and the messages both ends send.
//!
//! The socket carries only "this topic changed"; the page then reads the data again through
//! its server functions, so everything it shows still passes the permission policy. A
//! subscription is checked by the same policy when it is made.

use serde::{Deserialize, Serialize};

/// Largest message a browser may send.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 4 * 1024;

/// Most topics one socket follows at once.
pub const MAX_SUBSCRIPTIONS: usize = 64;

/// Most messages a browser may send in [`FLOOD_WINDOW_SECS`]; one more closes its socket.
pub const MAX_CLIENT_MESSAGES: usize = 100;
pub const FLOOD_WINDOW_SECS: u64 = 10;

/// Changes of one topic are sent at most this often.
pub const COALESCE_MS: u64 = 200;

/// Something a page can follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// One process: its state, history, workitems and output.
    Process(i64),
    /// The processes the reader may see: one started, moved on or ended.
    Processes,
    /// The workers and participants pages.
    Workers,
    /// People's tasks: one was handed out or answered.
    Inbox,
    /// One build: its progress, tasks, messages and log.
    Build(i64),
    /// The builds the reader may see: one started, changed or went.
    Builds,
}

impl std::fmt::Display for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Process(id) => write!(f, "process:{id}"),
            Self::Processes => f.write_str("processes"),
            Self::Workers => f.write_str("workers"),
            Self::Inbox => f.write_str("inbox"),
            Self::Build(id) => write!(f, "build:{id}"),
            Self::Builds => f.write_str("builds"),
        }
    }
}

impl std::str::FromStr for Topic {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "processes" => Ok(Self::Processes),
            "workers" => Ok(Self::Workers),
            "inbox" => Ok(Self::Inbox),
            "builds" => Ok(Self::Builds),
            _ => None
                .or_else(|| {
                    text.strip_prefix("process:")
                        .and_then(|id| id.parse().ok())
                        .map(Self::Process)
                })
                .or_else(|| {
                    text.strip_prefix("build:")
                        .and_then(|id| id.parse().ok())
                        .map(Self::Build)
                })
                .ok_or_else(|| format!("`{text}` is not a topic")),
        }
    }
}

/// What a browser sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientMessage {
    Subscribe(String),
    Unsubscribe(String),
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerMessage {
    /// The topic changed: read it again.
    Changed(String),
    /// The subscription was refused, and why.
    Denied { topic: String, reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_read_back_as_written() {
        for topic in [
            Topic::Process(42),
            Topic::Processes,
            Topic::Workers,
            Topic::Inbox,
            Topic::Build(7),
            Topic::Builds,
        ] {
            assert_eq!(topic.to_string().parse::<Topic>(), Ok(topic));
        }
        assert!("process:x".parse::<Topic>().is_err());
        assert!("build:../1".parse::<Topic>().is_err());
        assert!("build".parse::<Topic>().is_err());
    }

    #[test]
    fn messages_are_small_json() {
        let text = serde_json::to_string(&ClientMessage::Subscribe("process:7".into())).unwrap();
        assert_eq!(text, r#"{"subscribe":"process:7"}"#);
        let text = serde_json::to_string(&ServerMessage::Changed("workers".into())).unwrap();
        assert_eq!(text, r#"{"changed":"workers"}"#);
    }
}
