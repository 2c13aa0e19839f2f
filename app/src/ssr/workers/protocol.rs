//! The worker protocol: the JSON text frames a worker and the server exchange over the
//! `/worker` websocket.
//!
//! A worker opens the socket with `Authorization: Bearer <token>`, sends [`WorkerFrame::Hello`]
//! and gets [`ServerFrame::Welcome`]. From then on it heartbeats every `heartbeat_ms`, takes
//! [`ServerFrame::Workitem`]s up to its capacity, streams log lines and progress for them, and
//! replies. A workitem is named by its id and attempt everywhere; anything about an attempt
//! that is no longer current is refused. A reply is sent again after a reconnect until the
//! server has answered it with [`ServerFrame::Replied`] or [`ServerFrame::Refused`].

use serde::{Deserialize, Serialize};

use crate::workflow::definition::Fields;
use crate::workflow::engine::Outcome;

/// The protocol version; a worker speaking another one is refused with a clear reason.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest frame either side accepts.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// The most participants one worker may serve.
pub const MAX_PARTICIPANTS: usize = 64;

/// The most workitems one worker may run at once.
pub const MAX_CAPACITY: u32 = 256;

/// The longest log line kept; longer ones are cut and marked.
pub const MAX_LOG_LINE_BYTES: usize = 64 * 1024;

/// The longest progress text kept.
pub const MAX_PROGRESS_CHARS: usize = 256;

/// One attempt of one workitem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Attempt {
    /// The workitem's id (stable across attempts).
    pub workitem: i64,
    pub attempt: i32,
}

/// What a worker sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerFrame {
    /// The first frame: who the worker is and what it serves. `running` lists the attempts it
    /// is still running from an earlier connection, so that they are not lost.
    Hello {
        protocol: u32,
        name: String,
        host: String,
        version: String,
        participants: Vec<String>,
        capacity: u32,
        #[serde(default)]
        running: Vec<Attempt>,
    },
    Heartbeat,
    /// Output lines of a running attempt, oldest first.
    Log {
        #[serde(flatten)]
        attempt: Attempt,
        lines: Vec<String>,
    },
    Progress {
        #[serde(flatten)]
        attempt: Attempt,
        text: String,
    },
    Reply {
        #[serde(flatten)]
        attempt: Attempt,
        outcome: Outcome,
    },
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Welcome {
        worker_id: i64,
        heartbeat_ms: u64,
    },
    /// Run this attempt.
    Workitem {
        #[serde(flatten)]
        attempt: Attempt,
        instance: i64,
        participant: String,
        params: Fields,
        fields: Fields,
    },
    /// Stop this attempt: it was cancelled, timed out, or handed elsewhere. No reply is taken.
    Retract {
        #[serde(flatten)]
        attempt: Attempt,
    },
    /// The reply was taken.
    Replied {
        #[serde(flatten)]
        attempt: Attempt,
    },
    /// The reply (or a log line) was not taken, and why; the attempt is over for the worker.
    Refused {
        #[serde(flatten)]
        attempt: Attempt,
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_read_back_as_written() {
        let frame = WorkerFrame::Reply {
            attempt: Attempt {
                workitem: 7,
                attempt: 2,
            },
            outcome: Outcome::Error {
                message: "exit 2".into(),
            },
        };
        let text = serde_json::to_string(&frame).unwrap_or_default();
        assert!(text.contains(r#""type":"reply""#), "{text}");
        assert!(text.contains(r#""workitem":7"#), "{text}");
        assert_eq!(serde_json::from_str::<WorkerFrame>(&text).ok(), Some(frame));
    }

    #[test]
    fn unknown_frames_are_refused() {
        assert!(serde_json::from_str::<WorkerFrame>(r#"{"type":"shutdown"}"#).is_err());
        assert!(serde_json::from_str::<WorkerFrame>(r#"{"type":"heartbeat"}"#).is_ok());
    }
}
