//! The semantics of every expression and option, driven through the interpreter alone.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};

use super::*;
use crate::workflow::parse::{KnownNames, parse_definition};

/// Participants the test definitions may use besides the built-in ones.
const OUTSIDE: &[&str] = &["shell", "approve", "build", "a", "b", "c"];

/// An instance and everything it asked of the outside world.
struct Harness {
    instance: Instance,
    library: Vec<Arc<Definition>>,
    now: DateTime<Utc>,
    /// Workitems out with participants, in dispatch order.
    out: Vec<Workitem>,
    retracted: Vec<u64>,
    scheduled: Vec<(DateTime<Utc>, Message)>,
    events: Vec<Event>,
    /// Transitions (calls to `handle`) so far.
    calls: usize,
    /// Messages the instance handed back to be delivered again ([`Effect::Enqueue`]).
    pending: std::collections::VecDeque<Message>,
}

/// Most transitions one `send` runs before it leaves the rest pending.
const CALLS_PER_SEND: usize = 50;

fn fields(value: Value) -> Fields {
    value.as_object().cloned().unwrap()
}

/// Starts `main`, with `others` stored as definitions it can call.
fn launch_with(main: &str, others: &[&str], launch: Value) -> Harness {
    let mut harness = prepare(main, others, launch);
    harness.send(Message::Launch);
    harness
}

/// An instance of `main` ready to launch.
fn prepare(main: &str, others: &[&str], launch: Value) -> Harness {
    let mut known = KnownNames {
        participants: BUILT_IN_PARTICIPANTS
            .iter()
            .chain(OUTSIDE)
            .map(|s| s.to_string())
            .collect(),
        definitions: Default::default(),
    };
    let mut library = Vec::new();
    for source in others {
        known
            .definitions
            .insert(parse_definition(source, &known).unwrap().name);
    }
    library.push(Arc::new(parse_definition(main, &known).unwrap()));
    for source in others {
        library.push(Arc::new(parse_definition(source, &known).unwrap()));
    }
    let names = library.iter().map(|d| d.name.clone()).collect();
    let mut start = library[0].fields.clone();
    start.extend(fields(launch));
    Harness {
        instance: Instance::new(names, start),
        library,
        now: Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap(),
        out: Vec::new(),
        retracted: Vec::new(),
        scheduled: Vec::new(),
        events: Vec::new(),
        calls: 0,
        pending: Default::default(),
    }
}

fn launch(process: &str) -> Harness {
    launch_with(&format!("name: t\nprocess:\n{process}"), &[], json!({}))
}

impl Harness {
    fn send(&mut self, message: Message) {
        self.pending.push_back(message);
        let mut calls = 0;
        while calls < CALLS_PER_SEND
            && let Some(message) = self.pending.pop_front()
        {
            calls += 1;
            self.handle(message);
        }
    }

    fn handle(&mut self, message: Message) {
        self.calls += 1;
        let effects = self.instance.handle(&self.library, message, self.now);
        // The state must survive a round trip through its stored form at every step.
        let stored = serde_json::to_string(&self.instance).unwrap();
        assert_eq!(
            serde_json::from_str::<Instance>(&stored).unwrap(),
            self.instance
        );
        for effect in effects {
            match effect {
                Effect::Dispatch(workitem) => {
                    self.out.retain(|w| w.workitem != workitem.workitem);
                    self.out.push(workitem);
                }
                Effect::Retract { workitem } => {
                    self.out.retain(|w| w.workitem != workitem);
                    self.retracted.push(workitem);
                }
                Effect::Schedule { at, message } => self.scheduled.push((at, message)),
                Effect::Enqueue(message) => self.pending.push_back(message),
                Effect::Record(event) => self.events.push(event),
            }
        }
    }

    fn take(&mut self, participant: &str) -> Workitem {
        let index = self
            .out
            .iter()
            .position(|w| w.participant == participant)
            .unwrap_or_else(|| panic!("no workitem for {participant}; out: {:?}", self.out));
        self.out.remove(index)
    }

    fn reply_to(&mut self, workitem: &Workitem, outcome: Outcome) {
        self.send(Message::Workitem {
            workitem: workitem.workitem,
            attempt: workitem.attempt,
            outcome,
            by: "worker-1".into(),
        });
    }

    /// The oldest workitem for `participant` replies with its fields plus `changes`.
    fn reply(&mut self, participant: &str, changes: Value) -> Workitem {
        let workitem = self.take(participant);
        let mut out = workitem.fields.clone();
        out.extend(fields(changes));
        self.reply_to(
            &workitem,
            Outcome::Done {
                fields: out,
                command: None,
            },
        );
        workitem
    }

    fn command(&mut self, participant: &str, command: CursorCommand) {
        let workitem = self.take(participant);
        let out = workitem.fields.clone();
        self.reply_to(
            &workitem,
            Outcome::Done {
                fields: out,
                command: Some(command),
            },
        );
    }

    fn error(&mut self, participant: &str, message: &str) -> Workitem {
        let workitem = self.take(participant);
        self.reply_to(
            &workitem,
            Outcome::Error {
                message: message.into(),
            },
        );
        workitem
    }

    /// Moves the clock and delivers the timers that fall due, in time order.
    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.scheduled.sort_by_key(|(at, _)| *at);
        while let Some(index) = self.scheduled.iter().position(|(at, _)| *at <= self.now) {
            let (_, message) = self.scheduled.remove(index);
            self.send(message);
        }
    }

    fn participants_out(&self) -> Vec<&str> {
        self.out.iter().map(|w| w.participant.as_str()).collect()
    }

    /// The messages of the recorded events of `kind`, in order.
    fn messages(&self, kind: EventKind) -> Vec<&str> {
        self.events
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.message.as_str())
            .collect()
    }

    fn count(&self, kind: EventKind) -> usize {
        self.events.iter().filter(|e| e.kind == kind).count()
    }

    fn result(&self) -> Value {
        assert_eq!(
            self.instance.status,
            Status::Finished,
            "events: {:#?}",
            self.events
        );
        Value::Object(self.instance.fields.clone())
    }
}

#[test]
fn sequence_passes_each_reply_to_the_next_step() {
    let mut h = launch("  sequence:\n    - participant: a\n    - participant: b\n");
    assert_eq!(h.participants_out(), ["a"]);
    h.reply("a", json!({ "x": 1 }));
    let b = h.reply("b", json!({ "y": 2 }));
    assert_eq!(b.fields["x"], json!(1));
    assert_eq!(h.result(), json!({ "x": 1, "y": 2 }));
    assert_eq!(h.count(EventKind::Completed), 2);
}

#[test]
fn forty_built_in_steps_run_in_one_transition() {
    let steps = "    - participant: noop\n".repeat(40);
    let h = launch(&format!("  sequence:\n{steps}"));
    assert_eq!(h.calls, 1);
    assert_eq!(h.count(EventKind::Completed), 40);
    h.result();
}

#[test]
fn participant_params_take_field_references() {
    let h = launch_with(
        "name: t\nfields: { branch: main }\nprocess:\n  participant: shell\n  params: { command: [git, checkout, \"${branch}\"], dir: \"/src/${branch}\" }\n",
        &[],
        json!({ "branch": "next" }),
    );
    assert_eq!(
        h.out[0].params,
        fields(json!({ "command": ["git", "checkout", "next"], "dir": "/src/next" }))
    );
    assert_eq!(h.out[0].fields["branch"], json!("next"));
}

#[test]
fn concurrence_joins_all_and_mixes_fields_by_default() {
    let mut h = launch("  concurrence:\n    - participant: a\n    - participant: b\n");
    assert_eq!(h.participants_out(), ["a", "b"]);
    h.reply("b", json!({ "same": "b", "from_b": true }));
    assert_eq!(h.instance.status, Status::Running);
    h.reply("a", json!({ "same": "a", "from_a": true }));
    assert_eq!(
        h.result(),
        json!({ "same": "a", "from_a": true, "from_b": true })
    );
}

#[test]
fn concurrence_join_first_cancels_the_other_branches() {
    let mut h = launch(
        "  concurrence:\n    - participant: a\n    - participant: b\n      on_cancel: { participant: log, params: { message: b gave up } }\n  join: first\n",
    );
    h.reply("a", json!({ "winner": "a" }));
    assert_eq!(h.result(), json!({ "winner": "a" }));
    assert_eq!(h.retracted.len(), 1, "b's workitem is retracted");
    assert!(h.out.is_empty());
    assert!(h.messages(EventKind::Log).contains(&"b gave up"));
}

#[test]
fn concurrence_count_with_remaining_wait_waits_but_merges_only_the_joined() {
    let mut h = launch(
        "  concurrence:\n    - participant: a\n    - participant: b\n    - participant: c\n  join: 2\n  remaining: wait\n",
    );
    h.reply("c", json!({ "c": 1 }));
    h.reply("a", json!({ "a": 1 }));
    assert_eq!(h.instance.status, Status::Running, "b is still awaited");
    assert!(h.retracted.is_empty());
    h.reply("b", json!({ "b": 1 }));
    assert_eq!(h.result(), json!({ "c": 1, "a": 1 }));
}

#[test]
fn concurrence_merge_policies() {
    for (merge, expected) in [
        ("first", json!({ "n": 0, "who": "b" })),
        ("last", json!({ "n": 0, "who": "a" })),
        (
            "isolate",
            json!({ "n": 0, "branches": [{ "n": 0, "who": "a" }, { "n": 0, "who": "b" }] }),
        ),
    ] {
        let mut h = launch_with(
            &format!(
                "name: t\nprocess:\n  concurrence:\n    - participant: a\n    - participant: b\n  merge: {merge}\n"
            ),
            &[],
            json!({ "n": 0 }),
        );
        h.reply("b", json!({ "who": "b" }));
        h.reply("a", json!({ "who": "a" }));
        assert_eq!(h.result(), expected, "merge: {merge}");
    }
}

#[test]
fn if_applies_then_or_else() {
    for (outcome, expected) in [("passed", "notify"), ("failed", "approve")] {
        let mut h = launch_with(
            "name: t\nprocess:\n  sequence:\n    - participant: shell\n    - if: \"${outcome} == 'passed'\"\n      then: { participant: set, params: { went: notify } }\n      else: { participant: approve }\n",
            &[],
            json!({}),
        );
        h.reply("shell", json!({ "outcome": outcome }));
        if expected == "approve" {
            h.reply("approve", json!({ "went": "approve" }));
        }
        assert_eq!(h.result()["went"], json!(expected));
    }
    // Without `else`, a false condition just goes on.
    let h = launch("  if: \"${missing}\"\n  then: { participant: a }\n");
    assert_eq!(h.result(), json!({}));
}

#[test]
fn a_condition_that_cannot_be_evaluated_fails_the_flow_and_replay_retries_it() {
    let mut h = launch_with(
        "name: t\nprocess:\n  if: \"${n} > 2\"\n  then: { participant: a }\n",
        &[],
        json!({ "n": "three" }),
    );
    assert_eq!(h.instance.status, Status::Error);
    let failed = h.messages(EventKind::Failed)[0];
    assert!(
        failed.contains("cannot order text and a number"),
        "{failed}"
    );
    // Replay applies it again with the same fields: same error.
    h.send(Message::Replay { flow: None });
    assert_eq!(h.instance.status, Status::Error);
    assert_eq!(h.count(EventKind::Failed), 2);
}

#[test]
fn participant_timeout_skip_goes_on_with_the_applied_fields() {
    let mut h = launch(
        "  sequence:\n    - participant: a\n      timeout: 10m\n      on_timeout: skip\n    - participant: b\n",
    );
    let a = h.out[0].workitem;
    h.advance(Duration::minutes(9));
    assert_eq!(h.participants_out(), ["a"]);
    h.advance(Duration::minutes(2));
    assert_eq!(h.participants_out(), ["b"]);
    assert_eq!(h.retracted, [a]);
    assert_eq!(h.count(EventKind::TimedOut), 1);
    assert_eq!(h.count(EventKind::Skipped), 1);
}

#[test]
fn on_error_retries_then_fails_and_replay_runs_it_again() {
    let mut h = launch(
        "  sequence:\n    - participant: shell\n      on_error: { retry: 2, then: fail }\n    - participant: noop\n",
    );
    let first = h.error("shell", "exit status 2");
    let second = h.error("shell", "exit status 2");
    assert_eq!(
        second.workitem, first.workitem,
        "a retry is a new attempt of the same workitem"
    );
    assert_eq!((first.attempt, second.attempt), (1, 2));
    let third = h.error("shell", "exit status 2");
    assert_eq!(third.attempt, 3);
    assert_eq!(h.instance.status, Status::Error);
    assert!(h.out.is_empty());
    assert_eq!(h.count(EventKind::Retried), 2);
    assert_eq!(
        h.messages(EventKind::Failed).last(),
        Some(&"exit status 2 (on worker-1)")
    );

    h.send(Message::Replay { flow: None });
    assert_eq!(h.instance.status, Status::Running);
    h.reply("shell", json!({ "fixed": true }));
    assert_eq!(h.result()["fixed"], json!(true));
}

#[test]
fn timeout_as_error_uses_the_retry_budget() {
    let mut h = launch("  participant: a\n  timeout: 1m\n  on_error: { retry: 1, then: skip }\n");
    h.advance(Duration::seconds(61));
    assert_eq!(h.out[0].attempt, 2, "the timeout led to a retry");
    h.advance(Duration::seconds(61));
    assert_eq!(h.result(), json!({}));
    assert_eq!(h.count(EventKind::TimedOut), 2);
    assert_eq!(h.count(EventKind::Skipped), 1);
}

#[test]
fn a_reply_for_an_old_attempt_is_refused() {
    let mut h = launch("  participant: a\n  on_error: { retry: 1 }\n");
    let first = h.error("a", "lost the network");
    // The first attempt answers late; the second is current.
    h.reply_to(
        &first,
        Outcome::Done {
            fields: fields(json!({ "late": true })),
            command: None,
        },
    );
    assert_eq!(h.instance.status, Status::Running);
    assert_eq!(h.count(EventKind::Stale), 1);
    h.reply("a", json!({ "ok": true }));
    assert_eq!(h.result(), json!({ "ok": true }));
    assert_eq!(h.count(EventKind::Completed), 1);
}

#[test]
fn a_lost_worker_retries_or_fails_as_told() {
    let mut h = launch("  participant: build\n");
    let first = h.take("build");
    h.send(Message::WorkitemLost {
        workitem: first.workitem,
        attempt: 1,
        reason: "worker w1 lost".into(),
        retry: true,
    });
    assert_eq!(h.out[0].attempt, 2);
    let second = h.take("build");
    h.send(Message::WorkitemLost {
        workitem: second.workitem,
        attempt: 2,
        reason: "worker w2 lost".into(),
        retry: false,
    });
    assert_eq!(h.instance.status, Status::Error);
    assert!(h.messages(EventKind::Failed).contains(&"worker w2 lost"));
}

#[test]
fn cursor_commands_move_back_skip_rewind_and_break() {
    let process = "  cursor:\n    - participant: a\n    - participant: b\n    - participant: c\n";
    // back: b asks to redo a.
    let mut h = launch(process);
    h.reply("a", json!({}));
    h.command("b", CursorCommand::Back(1));
    assert_eq!(h.participants_out(), ["a"]);
    // skip: a skips b.
    let mut h = launch(process);
    h.command("a", CursorCommand::Skip(1));
    assert_eq!(h.participants_out(), ["c"]);
    // rewind: c starts over.
    h.command("c", CursorCommand::Rewind);
    assert_eq!(h.participants_out(), ["a"]);
    // break: leaves the cursor at once.
    h.command("a", CursorCommand::Break);
    h.result();
}

#[test]
fn cursor_commands_reach_the_cursor_through_nested_expressions() {
    let mut h = launch(
        "  cursor:\n    - participant: a\n    - sequence:\n        - participant: b\n        - participant: c\n",
    );
    h.reply("a", json!({}));
    h.command("b", CursorCommand::Back(1));
    assert_eq!(
        h.participants_out(),
        ["a"],
        "the sequence ended and the cursor went back"
    );
    // Outside a cursor a command is ignored and the flow goes on.
    let mut h = launch("  sequence:\n    - participant: a\n    - participant: b\n");
    h.command("a", CursorCommand::Break);
    assert_eq!(h.participants_out(), ["b"]);
}

#[test]
fn cursor_rewind_if_and_break_if() {
    let mut h = launch(
        "  cursor:\n    - participant: a\n    - participant: b\n  rewind_if: \"${again}\"\n  break_if: \"${stop}\"\n",
    );
    h.reply("a", json!({ "again": true }));
    assert_eq!(h.participants_out(), ["a"], "rewound");
    h.reply("a", json!({ "again": false }));
    h.reply("b", json!({ "again": true, "stop": true }));
    assert_eq!(
        h.result()["stop"],
        json!(true),
        "break_if wins over rewind_if"
    );
}

#[test]
fn an_endless_built_in_loop_yields_between_transitions() {
    let mut h = launch("  cursor:\n    - participant: noop\n  rewind_if: \"true\"\n");
    // It never ends by itself, but every call returns after a bounded number of steps and
    // hands the rest on, so a kill gets in between two of them.
    assert_eq!(h.calls, CALLS_PER_SEND);
    assert!(!h.pending.is_empty());
    assert!(h.count(EventKind::Completed) > 1000);
    h.send(Message::Kill);
    assert_eq!(h.instance.status, Status::Killed);
    assert!(
        h.pending.is_empty(),
        "what was pending is dropped once killed"
    );
}

#[test]
fn iterator_runs_the_body_per_element_in_order() {
    let mut h = launch_with(
        "name: t\nprocess:\n  iterator: targets\n  as: target\n  do: { participant: build, params: { target: \"${target}\" } }\n",
        &[],
        json!({ "targets": ["core-image-minimal", "core-image-sato"] }),
    );
    assert_eq!(h.out[0].params["target"], json!("core-image-minimal"));
    h.reply("build", json!({ "built": 1 }));
    assert_eq!(h.out[0].params["target"], json!("core-image-sato"));
    h.reply("build", json!({ "built": 2 }));
    assert_eq!(h.result()["built"], json!(2));
}

#[test]
fn concurrent_iterator_and_iterator_errors() {
    let mut h = launch_with(
        "name: t\nprocess:\n  iterator: xs\n  concurrent: true\n  do: { participant: a }\n",
        &[],
        json!({ "xs": [1, 2, 3] }),
    );
    assert_eq!(h.participants_out(), ["a", "a", "a"]);
    let items: Vec<Value> = h.out.iter().map(|w| w.fields["item"].clone()).collect();
    assert_eq!(items, [json!(1), json!(2), json!(3)]);
    for _ in 0..3 {
        h.reply("a", json!({}));
    }
    h.result();

    let h = launch_with(
        "name: t\nprocess:\n  iterator: xs\n  do: { participant: a }\n",
        &[],
        json!({ "xs": "not a list" }),
    );
    assert_eq!(h.instance.status, Status::Error);
    let h = launch_with(
        "name: t\nprocess:\n  iterator: xs\n  do: { participant: a }\n",
        &[],
        json!({}),
    );
    h.result();
}

#[test]
fn wait_for_a_duration_and_until_a_time() {
    let mut h = launch("  sequence:\n    - wait: 1h\n    - participant: a\n");
    h.advance(Duration::minutes(59));
    assert!(h.out.is_empty());
    h.advance(Duration::minutes(1));
    assert_eq!(h.participants_out(), ["a"]);

    let mut h = launch(
        "  sequence:\n    - wait: { until: \"2026-11-27T13:30:00Z\" }\n    - participant: a\n",
    );
    h.advance(Duration::minutes(89));
    assert!(h.out.is_empty());
    h.advance(Duration::minutes(1));
    assert_eq!(h.participants_out(), ["a"]);
    // A time already past does not wait.
    let h = launch("  wait: { until: \"2020-01-01T00:00:00Z\" }\n");
    h.result();
}

#[test]
fn set_and_unset_fields() {
    let h = launch_with(
        "name: t\nprocess:\n  sequence:\n    - set: { greeting: \"hello ${who}\", copy: \"${nested}\" }\n    - unset: [who, nested.drop]\n",
        &[],
        json!({ "who": "kiln", "nested": { "keep": 1, "drop": 2 } }),
    );
    assert_eq!(
        h.result(),
        json!({ "greeting": "hello kiln", "copy": { "keep": 1, "drop": 2 }, "nested": { "keep": 1 } })
    );
}

#[test]
fn subprocess_runs_the_pinned_definition_with_extra_fields() {
    let publish = "name: publish\nprocess:\n  participant: shell\n  params: { to: \"${where}\" }\n";
    let mut h = launch_with(
        "name: t\nprocess:\n  sequence:\n    - subprocess: publish\n      fields: { where: \"mirror-${n}\" }\n    - participant: noop\n",
        &[publish],
        json!({ "n": 2 }),
    );
    assert_eq!(h.out[0].params["to"], json!("mirror-2"));
    h.reply("shell", json!({ "published": true }));
    assert_eq!(
        h.result(),
        json!({ "n": 2, "where": "mirror-2", "published": true })
    );
}

#[test]
fn endless_subprocess_recursion_stops_at_the_flow_limit() {
    let mut h = launch_with(
        "name: t\nprocess:\n  sequence:\n    - participant: noop\n    - subprocess: t\n",
        &[],
        json!({}),
    );
    assert_eq!(h.instance.status, Status::Error);
    let failed = h.messages(EventKind::Failed)[0];
    assert!(failed.contains("more than 10000 expressions"), "{failed}");
    // Cancelling walks the 10,000 nested flows without recursing.
    h.send(Message::Cancel);
    assert_eq!(h.instance.status, Status::Cancelled);
    assert!(h.instance.flows.is_empty());
}

#[test]
fn a_built_in_step_in_progress_is_never_taken_for_a_workitem() {
    // A thousand built-in branches and `a` take a few more steps than one call allows: the
    // call ends with `a`'s workitem (number 0) out and the last built-in replies queued.
    let branches = "    - participant: noop\n".repeat(1_000);
    let main = format!("name: t\nprocess:\n  concurrence:\n{branches}    - participant: a\n");
    let mut h = prepare(&main, &[], json!({}));
    h.handle(Message::Launch);
    assert!(!h.pending.is_empty(), "built-in replies are still queued");
    let a = h.take("a");
    assert_eq!(a.workitem, 0);
    // `a` answers before those replies are handled.
    h.handle(Message::Workitem {
        workitem: a.workitem,
        attempt: a.attempt,
        outcome: Outcome::Done {
            fields: Fields::new(),
            command: None,
        },
        by: "worker-1".into(),
    });
    assert_eq!(h.count(EventKind::Stale), 0);
    while let Some(message) = h.pending.pop_front() {
        h.handle(message);
    }
    h.result();
    assert_eq!(h.count(EventKind::Completed), 1_001);
}

#[test]
fn error_stops_the_flow_but_not_its_siblings() {
    let mut h = launch("  concurrence:\n    - error: no release name set\n    - participant: a\n");
    assert_eq!(h.instance.status, Status::Error);
    assert_eq!(h.participants_out(), ["a"]);
    h.reply("a", json!({}));
    assert_eq!(
        h.instance.status,
        Status::Error,
        "still waits for the failed branch"
    );
    assert!(
        h.messages(EventKind::Failed)
            .contains(&"no release name set")
    );
}

#[test]
fn cancel_retracts_work_and_runs_on_cancel_handlers() {
    let mut h = launch(
        "  sequence:\n    - participant: a\n      on_cancel: { participant: b }\n    - participant: c\n",
    );
    let a = h.out[0].workitem;
    h.send(Message::Cancel);
    assert_eq!(h.instance.status, Status::Cancelling);
    assert_eq!(h.retracted, [a]);
    assert_eq!(h.participants_out(), ["b"], "the handler runs");
    h.reply("b", json!({}));
    assert_eq!(h.instance.status, Status::Cancelled);
    assert!(h.out.is_empty());
}

#[test]
fn kill_ends_everything_without_handlers() {
    let mut h = launch(
        "  concurrence:\n    - participant: a\n      on_cancel: { participant: b }\n    - wait: 1h\n",
    );
    h.send(Message::Kill);
    assert_eq!(h.instance.status, Status::Killed);
    assert!(h.out.is_empty());
    assert_eq!(h.retracted.len(), 1);
    // Timers and replies that arrive later change nothing.
    h.advance(Duration::hours(2));
    assert_eq!(h.instance.status, Status::Killed);
}

#[test]
fn pause_holds_replies_until_resume() {
    let mut h = launch("  sequence:\n    - participant: a\n    - participant: b\n");
    h.send(Message::Pause);
    h.reply("a", json!({ "a": 1 }));
    assert!(h.out.is_empty(), "nothing moves while paused");
    assert_eq!(h.instance.status, Status::Paused);
    h.send(Message::Resume);
    assert_eq!(h.participants_out(), ["b"]);
    assert_eq!(h.out[0].fields["a"], json!(1));
}

#[test]
fn reapply_restarts_a_running_flow_with_the_fields_it_had() {
    let mut h = launch_with(
        "name: t\nprocess:\n  sequence:\n    - participant: a\n    - participant: b\n",
        &[],
        json!({ "v": 1 }),
    );
    h.reply("a", json!({ "v": 2 }));
    let flow = h.out[0].flow;
    let old = h.out[0].workitem;
    h.send(Message::Reapply { flow });
    assert_eq!(h.retracted, [old]);
    assert_eq!(h.participants_out(), ["b"]);
    assert_ne!(h.out[0].workitem, old, "a new workitem");
    assert_eq!(h.out[0].fields["v"], json!(2));
    h.reply("b", json!({}));
    h.result();
}
