//! How each expression is applied and how it takes its children's replies: the semantics of
//! the language, one message at a time.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    BUILT_IN_PARTICIPANTS, CursorCommand, Effect, Event, EventKind, Flow, FlowId, FlowState,
    Instance, Library, MAX_FLOWS, MAX_STEPS_PER_CALL, Message, NodeRef, Outcome, Status, Workitem,
    as_list,
};
use crate::workflow::definition::{
    AfterErrors, Expr, Fields, Join, Merge, Node, OnTimeout, Participant, Remaining, Wait,
};
use crate::workflow::fields::{lookup, substitute};

/// One call's working set: where effects go and the internal messages still to process.
struct Run<'a> {
    library: &'a Library,
    now: DateTime<Utc>,
    effects: Vec<Effect>,
    queue: VecDeque<Message>,
}

impl<'a> Run<'a> {
    /// The expression `node` refers to; borrowed from the library, not from the run, so it
    /// can be held while the run records effects.
    fn node(&self, node: NodeRef) -> Option<&'a Node> {
        let library: &'a Library = self.library;
        library
            .get(usize::from(node.definition))
            .and_then(|d| d.node(node.node))
    }

    fn record(
        &mut self,
        kind: EventKind,
        flow: Option<FlowId>,
        node: Option<NodeRef>,
        message: impl Into<String>,
    ) {
        self.record_event(Event::new(kind, flow, node, message));
    }

    fn record_event(&mut self, event: Event) {
        self.effects.push(Effect::Record(event));
    }
}

fn elapsed_ms(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    u64::try_from((to - from).num_milliseconds()).unwrap_or(0)
}

impl Instance {
    /// Handles `message` at time `now`; see the module documentation.
    pub fn handle(
        &mut self,
        library: &Library,
        message: Message,
        now: DateTime<Utc>,
    ) -> Vec<Effect> {
        let mut run = Run {
            library,
            now,
            effects: Vec::new(),
            queue: VecDeque::from([message]),
        };
        let mut steps = 0;
        while let Some(message) = run.queue.pop_front() {
            if steps == MAX_STEPS_PER_CALL {
                run.queue.push_front(message);
                break;
            }
            steps += 1;
            if self.status.is_over() {
                continue;
            }
            if self.status == Status::Paused && !message.is_control() {
                self.deferred.push(message);
                continue;
            }
            self.step(&mut run, message);
        }
        // Out of steps: the rest goes back to the queue, in order, for the next transaction.
        let rest: Vec<Effect> = run.queue.drain(..).map(Effect::Enqueue).collect();
        run.effects.extend(rest);
        self.settle_status(&mut run);
        run.effects
    }

    fn settle_status(&mut self, run: &mut Run) {
        match self.status {
            Status::Running | Status::Error => {
                if self.flows.is_empty() && self.root.is_some() {
                    self.status = Status::Finished;
                    self.root = None;
                    run.record(EventKind::Finished, None, None, "the process finished");
                } else if self.failed_flows().next().is_some() {
                    self.status = Status::Error;
                } else {
                    self.status = Status::Running;
                }
            }
            Status::Cancelling if self.flows.is_empty() => {
                self.status = Status::Cancelled;
                self.root = None;
                run.record(
                    EventKind::Cancelled,
                    None,
                    None,
                    "the process was cancelled",
                );
            }
            _ => {}
        }
    }

    fn step(&mut self, run: &mut Run, message: Message) {
        match message {
            Message::Launch => {
                // Launched already (flows are numbered from the launch on).
                if self.next_flow > 0 {
                    return;
                }
                let Some(definition) = run.library.first() else {
                    return;
                };
                let node = NodeRef {
                    definition: 0,
                    node: definition.process.id,
                };
                run.record(
                    EventKind::Launched,
                    None,
                    None,
                    format!("launched {}", definition.name),
                );
                let flow = self.new_flow_id();
                self.root = Some(flow);
                run.queue.push_back(Message::Apply {
                    node,
                    parent: None,
                    fields: self.fields.clone(),
                    flow: Some(flow),
                });
            }
            Message::Apply {
                node,
                parent,
                fields,
                flow,
            } => self.apply(run, node, parent, fields, flow),
            Message::Reply {
                flow,
                fields,
                command,
            } => self.reply(run, flow, fields, command),
            Message::Workitem {
                workitem,
                attempt,
                outcome,
                by,
            } => self.workitem_reply(run, workitem, attempt, outcome, by),
            Message::WorkitemLost {
                workitem,
                attempt,
                reason,
                retry,
            } => {
                let Some((flow, _)) = self.workitem_flow(workitem).filter(|(_, a)| *a == attempt)
                else {
                    run.record(EventKind::Stale, None, None, format!("loss of workitem {workitem} attempt {attempt} ignored: no longer current"));
                    return;
                };
                if retry {
                    self.redispatch(run, flow, &format!("{reason}; trying again"));
                } else {
                    self.participant_error(run, flow, reason);
                }
            }
            Message::Timeout { flow, attempt } => self.timeout(run, flow, attempt),
            Message::Wake { flow } => {
                if let Some(f) = self.flows.get(&flow)
                    && matches!(f.state, FlowState::Sleeping { .. })
                {
                    let fields = f.applied.clone();
                    self.reply_later(run, flow, fields, None);
                }
            }
            Message::Cancel => {
                if self.status == Status::Cancelling {
                    return;
                }
                self.status = Status::Cancelling;
                run.record(EventKind::Cancelled, None, None, "cancel requested");
                let running: Vec<FlowId> = self
                    .flows
                    .iter()
                    .filter(|(_, f)| f.parent.is_none())
                    .map(|(id, _)| *id)
                    .collect();
                for flow in running {
                    self.cancel(run, flow, true);
                }
            }
            Message::Kill => {
                for (_, flow) in std::mem::take(&mut self.flows) {
                    if let FlowState::Workitem { workitem, .. } = flow.state {
                        run.effects.push(Effect::Retract { workitem });
                    }
                }
                run.queue.clear();
                self.deferred.clear();
                self.root = None;
                self.status = Status::Killed;
                run.record(EventKind::Killed, None, None, "the process was killed");
            }
            Message::Pause => {
                if matches!(self.status, Status::Running | Status::Error) {
                    self.status = Status::Paused;
                    run.record(EventKind::Paused, None, None, "paused");
                }
            }
            Message::Resume => {
                if self.status == Status::Paused {
                    self.status = Status::Running;
                    run.record(EventKind::Resumed, None, None, "resumed");
                    run.queue.extend(self.deferred.drain(..));
                }
            }
            Message::Replay { flow } => {
                let failed: Vec<FlowId> = self
                    .failed_flows()
                    .map(|(id, _)| id)
                    .filter(|id| flow.is_none_or(|f| f == *id))
                    .collect();
                for id in failed {
                    self.restart(run, id, EventKind::Replayed, "replayed after the error");
                }
            }
            Message::Reapply { flow } => {
                self.restart(run, flow, EventKind::Reapplied, "applied again")
            }
        }
    }

    fn new_flow_id(&mut self) -> FlowId {
        let id = FlowId(self.next_flow);
        self.next_flow += 1;
        id
    }

    /// Applies `node`: creates its flow (numbered `reuse`, or anew) and starts it.
    fn apply(
        &mut self,
        run: &mut Run,
        node_ref: NodeRef,
        parent: Option<FlowId>,
        fields: Fields,
        reuse: Option<FlowId>,
    ) {
        let id = reuse.unwrap_or_else(|| self.new_flow_id());
        if let Some(parent) = parent.and_then(|p| self.flows.get_mut(&p))
            && !parent.children.contains(&id)
        {
            parent.children.push(id);
        }
        let Some(node) = run.node(node_ref) else {
            self.insert(run, id, node_ref, parent, fields, FlowState::Child);
            self.fail(run, id, "the definition has no such expression".into());
            return;
        };
        if self.flows.len() >= MAX_FLOWS {
            self.insert(run, id, node_ref, parent, fields, FlowState::Child);
            self.fail(run, id, format!("more than {MAX_FLOWS} expressions would run at once (endless subprocess recursion?)"));
            return;
        }
        match &node.expr {
            Expr::Sequence(children) | Expr::Cursor { children, .. } => {
                self.insert(
                    run,
                    id,
                    node_ref,
                    parent,
                    fields.clone(),
                    FlowState::Step { index: 0 },
                );
                self.apply_child(run, id, node_ref, children[0].id, fields);
            }
            Expr::Concurrence { branches, .. } => {
                let children = branches.iter().map(|b| (b.id, fields.clone())).collect();
                self.branch_out(run, id, node_ref, parent, fields, children);
            }
            Expr::Participant(participant) => {
                // A built-in replies at once; only a workitem sent out changes the state.
                self.insert(run, id, node_ref, parent, fields.clone(), FlowState::Child);
                self.start_participant(run, id, participant, fields);
            }
            Expr::If {
                condition,
                then,
                otherwise,
            } => {
                self.insert(run, id, node_ref, parent, fields.clone(), FlowState::Child);
                match condition.evaluate(&fields) {
                    Ok(true) => {
                        self.apply_child(run, id, node_ref, then.id, fields);
                    }
                    Ok(false) => match otherwise {
                        Some(otherwise) => {
                            self.apply_child(run, id, node_ref, otherwise.id, fields);
                        }
                        None => self.reply_later(run, id, fields, None),
                    },
                    Err(message) => self.fail(
                        run,
                        id,
                        format!("condition `{}`: {message}", condition.source()),
                    ),
                }
            }
            Expr::Iterator {
                over,
                each,
                concurrent,
                body,
            } => match as_list(lookup(&fields, over)) {
                Err(message) => {
                    self.insert(run, id, node_ref, parent, fields, FlowState::Child);
                    self.fail(run, id, format!("iterator over `{over}`: {message}"));
                }
                Ok(items) if items.is_empty() => {
                    self.insert(run, id, node_ref, parent, fields.clone(), FlowState::Child);
                    self.reply_later(run, id, fields, None);
                }
                Ok(items) if *concurrent => {
                    let children = items
                        .into_iter()
                        .map(|item| {
                            let mut f = fields.clone();
                            f.insert(each.clone(), item);
                            (body.id, f)
                        })
                        .collect();
                    self.branch_out(run, id, node_ref, parent, fields, children);
                }
                Ok(items) => {
                    self.insert(
                        run,
                        id,
                        node_ref,
                        parent,
                        fields.clone(),
                        FlowState::Step { index: 0 },
                    );
                    let mut f = fields;
                    f.insert(each.clone(), items[0].clone());
                    self.apply_child(run, id, node_ref, body.id, f);
                }
            },
            Expr::Wait(wait) => {
                let until = match wait {
                    Wait::For(ms) => run.now + duration(*ms),
                    Wait::Until(at) => *at,
                };
                self.insert(
                    run,
                    id,
                    node_ref,
                    parent,
                    fields.clone(),
                    FlowState::Sleeping { until },
                );
                if until <= run.now {
                    self.reply_later(run, id, fields, None);
                } else {
                    run.effects.push(Effect::Schedule {
                        at: until,
                        message: Message::Wake { flow: id },
                    });
                }
            }
            Expr::Set(values) => {
                self.insert(run, id, node_ref, parent, fields.clone(), FlowState::Child);
                let mut out = fields.clone();
                for (key, value) in values {
                    out.insert(key.clone(), substitute(value, &fields));
                }
                self.reply_later(run, id, out, None);
            }
            Expr::Unset(paths) => {
                self.insert(run, id, node_ref, parent, fields.clone(), FlowState::Child);
                let mut out = fields;
                for path in paths {
                    remove_path(&mut out, path);
                }
                self.reply_later(run, id, out, None);
            }
            Expr::Subprocess {
                name,
                fields: extra,
            } => {
                self.insert(run, id, node_ref, parent, fields.clone(), FlowState::Child);
                let Some(index) = self.definitions.iter().position(|d| d == name) else {
                    self.fail(
                        run,
                        id,
                        format!("subprocess `{name}` was not pinned at launch"),
                    );
                    return;
                };
                let Some(root) = run.library.get(index).map(|d| d.process.id) else {
                    self.fail(run, id, format!("subprocess `{name}` is not loaded"));
                    return;
                };
                let mut f = fields.clone();
                for (key, value) in extra {
                    f.insert(key.clone(), substitute(value, &fields));
                }
                let child_ref = NodeRef {
                    definition: u16::try_from(index).unwrap_or(u16::MAX),
                    node: root,
                };
                self.apply_later(run, id, child_ref, f);
            }
            Expr::Error(message) => {
                self.insert(run, id, node_ref, parent, fields, FlowState::Child);
                self.fail(run, id, message.clone());
            }
        }
    }

    fn insert(
        &mut self,
        run: &Run,
        id: FlowId,
        node: NodeRef,
        parent: Option<FlowId>,
        applied: Fields,
        state: FlowState,
    ) {
        self.flows.insert(
            id,
            Flow {
                node,
                parent,
                children: Vec::new(),
                applied,
                state,
                started_at: run.now,
            },
        );
    }

    /// Applies node `child` of the same definition as `parent_ref` below flow `parent`.
    fn apply_child(
        &mut self,
        run: &mut Run,
        parent: FlowId,
        parent_ref: NodeRef,
        child: crate::workflow::NodeId,
        fields: Fields,
    ) -> FlowId {
        let node = NodeRef {
            definition: parent_ref.definition,
            node: child,
        };
        self.apply_later(run, parent, node, fields)
    }

    /// Numbers a child flow of `parent` now and queues its application, so that deep trees
    /// and recursive subprocesses do not recurse here.
    fn apply_later(
        &mut self,
        run: &mut Run,
        parent: FlowId,
        node: NodeRef,
        fields: Fields,
    ) -> FlowId {
        let flow = self.new_flow_id();
        if let Some(p) = self.flows.get_mut(&parent) {
            p.children.push(flow);
        }
        run.queue.push_back(Message::Apply {
            node,
            parent: Some(parent),
            fields,
            flow: Some(flow),
        });
        flow
    }

    /// Creates flow `id` and applies each of `children` (a node and its fields) below it as
    /// one branch.
    fn branch_out(
        &mut self,
        run: &mut Run,
        id: FlowId,
        node_ref: NodeRef,
        parent: Option<FlowId>,
        applied: Fields,
        children: Vec<(crate::workflow::NodeId, Fields)>,
    ) {
        let state = FlowState::Branches {
            branch_of: BTreeMap::new(),
            replies: Vec::new(),
            joined: None,
        };
        self.insert(run, id, node_ref, parent, applied, state);
        for (branch, (node, fields)) in children.into_iter().enumerate() {
            let child = self.apply_child(run, id, node_ref, node, fields);
            if let Some(Flow {
                state: FlowState::Branches { branch_of, .. },
                ..
            }) = self.flows.get_mut(&id)
            {
                branch_of.insert(child, branch);
            }
        }
    }

    /// Queues `flow`'s reply to its parent, so that deep chains of immediate replies do not
    /// recurse.
    fn reply_later(
        &mut self,
        run: &mut Run,
        flow: FlowId,
        fields: Fields,
        command: Option<CursorCommand>,
    ) {
        run.queue.push_back(Message::Reply {
            flow,
            fields,
            command,
        });
    }

    fn fail(&mut self, run: &mut Run, flow: FlowId, message: String) {
        let node = self.flows.get(&flow).map(|f| f.node);
        run.record(EventKind::Failed, Some(flow), node, message.clone());
        if let Some(f) = self.flows.get_mut(&flow) {
            f.state = FlowState::Failed { message };
        }
    }

    // ----- participants -------------------------------------------------------------------

    fn start_participant(
        &mut self,
        run: &mut Run,
        flow: FlowId,
        participant: &Participant,
        fields: Fields,
    ) {
        if !BUILT_IN_PARTICIPANTS.contains(&participant.name.as_str()) {
            let workitem = self.next_workitem;
            self.next_workitem += 1;
            if let Some(f) = self.flows.get_mut(&flow) {
                f.state = FlowState::Workitem {
                    workitem,
                    attempt: 1,
                    errors: 0,
                    dispatched_at: run.now,
                };
            }
            self.dispatch(run, flow);
            return;
        }
        let node = self.flows.get(&flow).map(|f| f.node);
        let params = params(participant, &fields);
        let mut out = fields;
        match participant.name.as_str() {
            "log" => run.record(
                EventKind::Log,
                Some(flow),
                node,
                text_param(&params, "message"),
            ),
            "notify" => {
                let message = format!(
                    "to {}: {}",
                    text_param(&params, "to"),
                    text_param(&params, "message")
                );
                run.record(EventKind::Notified, Some(flow), node, message);
            }
            "set" => out.extend(params),
            _ => {}
        }
        run.record_event(
            Event::new(EventKind::Completed, Some(flow), node, "")
                .participant(&participant.name)
                .duration_ms(0),
        );
        self.reply_later(run, flow, out, None);
    }

    /// Sends the current attempt of `flow`'s workitem, with its timeout.
    fn dispatch(&mut self, run: &mut Run, flow: FlowId) {
        let Some(participant) = self.participant_of(run, flow) else {
            return;
        };
        let Some(f) = self.flows.get(&flow) else {
            return;
        };
        let FlowState::Workitem {
            workitem, attempt, ..
        } = f.state
        else {
            return;
        };
        let message = format!("attempt {attempt}");
        run.record_event(
            Event::new(EventKind::Dispatched, Some(flow), Some(f.node), message)
                .participant(&participant.name),
        );
        run.effects.push(Effect::Dispatch(Workitem {
            workitem,
            attempt,
            flow,
            node: f.node,
            participant: participant.name.clone(),
            params: params(participant, &f.applied),
            fields: f.applied.clone(),
            timed: participant.timeout_ms.is_some(),
        }));
        if let Some(ms) = participant.timeout_ms {
            run.effects.push(Effect::Schedule {
                at: run.now + duration(ms),
                message: Message::Timeout { flow, attempt },
            });
        }
    }

    fn participant_of<'a>(&self, run: &Run<'a>, flow: FlowId) -> Option<&'a Participant> {
        let f = self.flows.get(&flow)?;
        match run.node(f.node).map(|n| &n.expr) {
            Some(Expr::Participant(p)) => Some(p),
            _ => None,
        }
    }

    /// A new attempt of `flow`'s workitem (after an error to retry or a lost worker).
    fn redispatch(&mut self, run: &mut Run, flow: FlowId, why: &str) {
        let Some(participant) = self.participant_of(run, flow) else {
            return;
        };
        let Some(f) = self.flows.get_mut(&flow) else {
            return;
        };
        let FlowState::Workitem {
            workitem,
            attempt,
            errors,
            ..
        } = f.state
        else {
            return;
        };
        f.state = FlowState::Workitem {
            workitem,
            attempt: attempt + 1,
            errors,
            dispatched_at: run.now,
        };
        let node = f.node;
        run.effects.push(Effect::Retract { workitem });
        run.record_event(
            Event::new(EventKind::Retried, Some(flow), Some(node), why)
                .participant(&participant.name),
        );
        self.dispatch(run, flow);
    }

    fn workitem_reply(
        &mut self,
        run: &mut Run,
        workitem: u64,
        attempt: u32,
        outcome: Outcome,
        by: String,
    ) {
        let Some((flow, current)) = self.workitem_flow(workitem) else {
            run.record(
                EventKind::Stale,
                None,
                None,
                format!(
                    "reply to workitem {workitem} attempt {attempt} refused: it is no longer out"
                ),
            );
            return;
        };
        let Some(f) = self.flows.get(&flow) else {
            return;
        };
        if current != attempt {
            run.record(
                EventKind::Stale,
                Some(flow),
                Some(f.node),
                format!("reply to attempt {attempt} refused: attempt {current} is current"),
            );
            return;
        }
        let FlowState::Workitem { dispatched_at, .. } = f.state else {
            return;
        };
        let node = f.node;
        let participant = self
            .participant_of(run, flow)
            .map_or("", |p| p.name.as_str());
        match outcome {
            Outcome::Done { fields, command } => {
                run.record_event(
                    Event::new(EventKind::Completed, Some(flow), Some(node), "")
                        .participant(participant)
                        .by(by)
                        .duration_ms(elapsed_ms(dispatched_at, run.now)),
                );
                self.reply_later(run, flow, fields, command);
            }
            Outcome::Error { message } => {
                let message = if by.is_empty() {
                    message
                } else {
                    format!("{message} (on {by})")
                };
                self.participant_error(run, flow, message);
            }
        }
    }

    fn timeout(&mut self, run: &mut Run, flow: FlowId, attempt: u32) {
        let Some(f) = self.flows.get(&flow) else {
            return;
        };
        let FlowState::Workitem {
            workitem,
            attempt: current,
            ..
        } = f.state
        else {
            return;
        };
        if current != attempt {
            return;
        }
        let Some(participant) = self.participant_of(run, flow) else {
            return;
        };
        let after = participant
            .timeout_ms
            .map(|ms| humantime::format_duration(std::time::Duration::from_millis(ms)).to_string())
            .unwrap_or_default();
        let node = f.node;
        run.effects.push(Effect::Retract { workitem });
        run.record_event(
            Event::new(
                EventKind::TimedOut,
                Some(flow),
                Some(node),
                format!("no reply after {after}"),
            )
            .participant(&participant.name),
        );
        match participant.on_timeout {
            OnTimeout::Skip => {
                let fields = f.applied.clone();
                run.record(
                    EventKind::Skipped,
                    Some(flow),
                    Some(node),
                    "skipped after the timeout",
                );
                self.reply_later(run, flow, fields, None);
            }
            OnTimeout::Error => {
                self.participant_error(run, flow, format!("timed out after {after}"))
            }
        }
    }

    /// An error of `flow`'s participant: retry, skip or fail, as its `on_error` says.
    fn participant_error(&mut self, run: &mut Run, flow: FlowId, message: String) {
        let Some(participant) = self.participant_of(run, flow) else {
            return;
        };
        let Some(f) = self.flows.get_mut(&flow) else {
            return;
        };
        let FlowState::Workitem { errors, .. } = &mut f.state else {
            return;
        };
        *errors += 1;
        let errors = *errors;
        if errors <= participant.on_error.retry {
            let why = format!(
                "{message}; retry {errors} of {}",
                participant.on_error.retry
            );
            self.redispatch(run, flow, &why);
            return;
        }
        match participant.on_error.then {
            AfterErrors::Skip => {
                let (node, fields) = (f.node, f.applied.clone());
                run.record(
                    EventKind::Skipped,
                    Some(flow),
                    Some(node),
                    format!("skipped after the error: {message}"),
                );
                self.reply_later(run, flow, fields, None);
            }
            AfterErrors::Fail => self.fail(run, flow, message),
        }
    }

    fn retract_own_workitem(&mut self, run: &mut Run, flow: FlowId) {
        if let Some(FlowState::Workitem { workitem, .. }) = self.flows.get(&flow).map(|f| &f.state)
        {
            run.effects.push(Effect::Retract {
                workitem: *workitem,
            });
        }
    }

    /// Ends `flow` (without its `on_cancel`) and applies its expression again, under the same
    /// number and parent, with the fields it was applied with.
    fn restart(&mut self, run: &mut Run, flow: FlowId, kind: EventKind, why: &str) {
        let Some(f) = self.flows.get(&flow) else {
            return;
        };
        let (node, parent, fields) = (f.node, f.parent, f.applied.clone());
        for child in f.children.clone() {
            self.cancel(run, child, false);
        }
        self.retract_own_workitem(run, flow);
        self.flows.remove(&flow);
        run.queue
            .retain(|m| !matches!(m, Message::Reply { flow: f, .. } if *f == flow));
        run.record(kind, Some(flow), Some(node), why);
        self.apply(run, node, parent, fields, Some(flow));
    }

    // ----- replies ------------------------------------------------------------------------

    /// `flow` is done with `fields`: remove it and give its reply to its parent.
    fn reply(
        &mut self,
        run: &mut Run,
        flow: FlowId,
        fields: Fields,
        command: Option<CursorCommand>,
    ) {
        let Some(done) = self.flows.remove(&flow) else {
            return;
        };
        let Some(parent_id) = done.parent else {
            if Some(flow) == self.root {
                self.fields = fields;
            }
            return;
        };
        let Some(parent) = self.flows.get_mut(&parent_id) else {
            return;
        };
        parent.children.retain(|c| *c != flow);
        let parent_ref = parent.node;
        let Some(node) = run.node(parent_ref) else {
            return;
        };

        // A cursor command travels up to the nearest cursor, ending what lies between.
        if let Some(command) = command
            && !matches!(node.expr, Expr::Cursor { .. })
        {
            if self.has_cursor_above(run, parent_id) {
                for child in self
                    .flows
                    .get(&parent_id)
                    .map(|f| f.children.clone())
                    .unwrap_or_default()
                {
                    self.cancel(run, child, true);
                }
                self.reply_later(run, parent_id, fields, Some(command));
                return;
            }
            run.record(
                EventKind::Stale,
                Some(flow),
                Some(done.node),
                format!("{command:?} ignored: no cursor encloses this step"),
            );
        }

        match &node.expr {
            Expr::Sequence(children) => {
                let next = self.advance(parent_id);
                if let Some(child) = children.get(next) {
                    self.apply_child(run, parent_id, parent_ref, child.id, fields);
                } else {
                    self.reply_later(run, parent_id, fields, None);
                }
            }
            Expr::Cursor {
                children,
                rewind_if,
                break_if,
            } => {
                let Some(FlowState::Step { index }) =
                    self.flows.get(&parent_id).map(|f| f.state.clone())
                else {
                    return;
                };
                let mut next = index + 1;
                let mut leave = false;
                match command {
                    Some(CursorCommand::Back(n)) => next = index.saturating_sub(n as usize),
                    Some(CursorCommand::Skip(n)) => next = index + 1 + n as usize,
                    Some(CursorCommand::Rewind) => next = 0,
                    Some(CursorCommand::Break) => leave = true,
                    None => {}
                }
                for (condition, is_break) in [(break_if, true), (rewind_if, false)] {
                    let Some(condition) = condition else { continue };
                    if leave {
                        break;
                    }
                    match condition.evaluate(&fields) {
                        Ok(true) if is_break => leave = true,
                        Ok(true) => next = 0,
                        Ok(false) => {}
                        Err(message) => {
                            self.fail(
                                run,
                                parent_id,
                                format!("condition `{}`: {message}", condition.source()),
                            );
                            return;
                        }
                    }
                }
                if leave || next >= children.len() {
                    self.reply_later(run, parent_id, fields, None);
                } else {
                    if let Some(f) = self.flows.get_mut(&parent_id) {
                        f.state = FlowState::Step { index: next };
                    }
                    self.apply_child(run, parent_id, parent_ref, children[next].id, fields);
                }
            }
            Expr::Concurrence {
                branches,
                join,
                remaining,
                merge,
            } => {
                let needed = match join {
                    Join::All => branches.len(),
                    Join::First => 1,
                    Join::Count(n) => *n as usize,
                };
                self.branch_reply(
                    run,
                    parent_id,
                    flow,
                    fields,
                    needed,
                    *remaining,
                    *merge,
                    branches.len(),
                );
            }
            Expr::Iterator {
                over,
                each,
                concurrent: false,
                body,
            } => {
                let items = self.iterated(parent_id, over);
                let next = self.advance(parent_id);
                if let Some(item) = items.get(next) {
                    let mut f = fields;
                    f.insert(each.clone(), item.clone());
                    self.apply_child(run, parent_id, parent_ref, body.id, f);
                } else {
                    self.reply_later(run, parent_id, fields, None);
                }
            }
            Expr::Iterator { over, .. } => {
                let count = self.iterated(parent_id, over).len();
                self.branch_reply(
                    run,
                    parent_id,
                    flow,
                    fields,
                    count,
                    Remaining::Cancel,
                    Merge::Mix,
                    count,
                );
            }
            Expr::If { .. } | Expr::Subprocess { .. } => {
                self.reply_later(run, parent_id, fields, None)
            }
            Expr::Participant(_)
            | Expr::Wait(_)
            | Expr::Set(_)
            | Expr::Unset(_)
            | Expr::Error(_) => {}
        }
    }

    /// The list an iterator flow goes over.
    fn iterated(&self, flow: FlowId, over: &str) -> Vec<Value> {
        self.flows
            .get(&flow)
            .and_then(|f| as_list(lookup(&f.applied, over)).ok())
            .unwrap_or_default()
    }

    /// Moves a stepping flow to its next child and returns that child's index.
    fn advance(&mut self, flow: FlowId) -> usize {
        match self.flows.get_mut(&flow).map(|f| &mut f.state) {
            Some(FlowState::Step { index }) => {
                *index += 1;
                *index
            }
            _ => usize::MAX,
        }
    }

    fn has_cursor_above(&self, run: &Run, mut flow: FlowId) -> bool {
        loop {
            let Some(f) = self.flows.get(&flow) else {
                return false;
            };
            if matches!(run.node(f.node).map(|n| &n.expr), Some(Expr::Cursor { .. })) {
                return true;
            }
            match f.parent {
                Some(parent) => flow = parent,
                None => return false,
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn branch_reply(
        &mut self,
        run: &mut Run,
        parent: FlowId,
        child: FlowId,
        fields: Fields,
        needed: usize,
        remaining: Remaining,
        merge: Merge,
        branch_count: usize,
    ) {
        let Some(f) = self.flows.get_mut(&parent) else {
            return;
        };
        let applied = f.applied.clone();
        let children_left = f.children.clone();
        let FlowState::Branches {
            branch_of,
            replies,
            joined,
        } = &mut f.state
        else {
            return;
        };
        let branch = branch_of.remove(&child).unwrap_or(0);
        if joined.is_none() {
            replies.push((branch, fields));
            if replies.len() >= needed {
                *joined = Some(merged(&applied, replies, merge, branch_count));
                if remaining == Remaining::Cancel {
                    for c in children_left.clone() {
                        self.cancel(run, c, true);
                    }
                }
            }
        }
        let Some(Flow {
            state: FlowState::Branches { joined, .. },
            children,
            ..
        }) = self.flows.get(&parent)
        else {
            return;
        };
        if let Some(out) = joined
            && children.is_empty()
        {
            let out = out.clone();
            self.reply_later(run, parent, out, None);
        }
    }

    // ----- cancelling ---------------------------------------------------------------------

    /// Ends `flow` and everything below it, deepest first; with `handlers`, applies the
    /// `on_cancel` expressions of the flows it ends. Iterative, since a subprocess that calls
    /// itself can nest flows thousands deep.
    fn cancel(&mut self, run: &mut Run, flow: FlowId, handlers: bool) {
        let mut subtree = vec![flow];
        let mut next = 0;
        while let Some(id) = subtree.get(next).copied() {
            subtree.extend(
                self.flows
                    .get(&id)
                    .map(|f| f.children.clone())
                    .unwrap_or_default(),
            );
            next += 1;
        }
        for id in subtree.into_iter().rev() {
            self.end_flow(run, id, handlers);
        }
    }

    /// Removes one flow whose children have ended, and what is still queued for it.
    fn end_flow(&mut self, run: &mut Run, flow: FlowId, handlers: bool) {
        // A flow whose application is still queued never started and only leaves its parent.
        let mut queued_parent = None;
        run.queue.retain(|m| match m {
            Message::Apply {
                flow: Some(f),
                parent,
                ..
            } if *f == flow => {
                queued_parent = *parent;
                false
            }
            Message::Reply { flow: f, .. } => *f != flow,
            _ => true,
        });
        self.retract_own_workitem(run, flow);
        let Some(f) = self.flows.remove(&flow) else {
            self.detach(queued_parent, flow);
            return;
        };
        self.detach(f.parent, flow);
        run.record(EventKind::Cancelled, Some(flow), Some(f.node), "cancelled");
        let handler = run
            .node(f.node)
            .and_then(|n| n.on_cancel.as_deref())
            .map(|n| n.id);
        if handlers && let Some(handler) = handler {
            let node = NodeRef {
                definition: f.node.definition,
                node: handler,
            };
            self.apply(run, node, None, f.applied, None);
        }
    }

    fn detach(&mut self, parent: Option<FlowId>, flow: FlowId) {
        if let Some(parent) = parent.and_then(|p| self.flows.get_mut(&p)) {
            parent.children.retain(|c| *c != flow);
            if let FlowState::Branches { branch_of, .. } = &mut parent.state {
                branch_of.remove(&flow);
            }
        }
    }
}

/// The fields a joined concurrence replies with.
fn merged(
    applied: &Fields,
    replies: &[(usize, Fields)],
    merge: Merge,
    branch_count: usize,
) -> Fields {
    match merge {
        Merge::Mix => {
            let mut out = applied.clone();
            for (_, fields) in replies {
                out.extend(fields.clone());
            }
            out
        }
        Merge::First => replies
            .first()
            .map(|(_, f)| f.clone())
            .unwrap_or_else(|| applied.clone()),
        Merge::Last => replies
            .last()
            .map(|(_, f)| f.clone())
            .unwrap_or_else(|| applied.clone()),
        Merge::Isolate => {
            let mut branches = vec![Value::Null; branch_count];
            for (branch, fields) in replies {
                if let Some(slot) = branches.get_mut(*branch) {
                    *slot = Value::Object(fields.clone());
                }
            }
            let mut out = applied.clone();
            out.insert("branches".to_owned(), Value::Array(branches));
            out
        }
    }
}

/// A participant's params with the `${field}` references of `fields` filled in.
fn params(participant: &Participant, fields: &Fields) -> Fields {
    participant
        .params
        .iter()
        .map(|(key, value)| (key.clone(), substitute(value, fields)))
        .collect()
}

/// A definition's milliseconds as a time span (definitions allow at most a year).
fn duration(ms: u64) -> chrono::Duration {
    chrono::Duration::milliseconds(i64::try_from(ms).unwrap_or(i64::MAX / 2))
}

fn text_param(params: &Fields, key: &str) -> String {
    match params.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Removes the field at a dotted path, if it is there.
fn remove_path(fields: &mut Fields, path: &str) {
    match path.rsplit_once('.') {
        None => {
            fields.remove(path);
        }
        Some((parent, last)) => {
            let mut segments = parent.split('.');
            let Some(mut value) = segments.next().and_then(|s| fields.get_mut(s)) else {
                return;
            };
            for segment in segments {
                let Some(next) = value.as_object_mut().and_then(|m| m.get_mut(segment)) else {
                    return;
                };
                value = next;
            }
            if let Some(map) = value.as_object_mut() {
                map.remove(last);
            }
        }
    }
}
