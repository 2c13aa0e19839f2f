//! `/ws`: one socket per browser tab, for live pages.
//!
//! The browser subscribes to topics; each subscription is checked by the permission policy,
//! as the topic's page would be, and answered with "changed" once, so that the page reads
//! again what changed between its first read and the subscription. The socket forwards
//! "changed" for the topics it follows, at most once per topic every `COALESCE_MS`, and
//! only changes of processes the user may see. A message that is too large, unreadable, or
//! one too many in the flood window closes this socket alone. The session is checked again
//! every minute.

use std::collections::{BTreeSet, HashMap};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use app::error::AppError;
use app::live::{
    COALESCE_MS, ClientMessage, FLOOD_WINDOW_SECS, MAX_CLIENT_MESSAGE_BYTES, MAX_CLIENT_MESSAGES,
    MAX_SUBSCRIPTIONS, ServerMessage, Topic,
};
use app::ssr::live::{self, Change};
use app::ssr::request::{RequestContext, Visitor};
use app::ssr::state::AppState;
use app::types::CurrentUser;
use axum::Extension;
use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, Sleep};
use tower_sessions::Session;

use crate::http::layers::OriginPolicy;
use crate::http::worker_socket::close;

/// How often an open socket asks again whether its session is open and its user may still
/// follow each topic it follows: a user who loses access (removed from a group, a project
/// made private, a session ended, an account disabled) stops hearing within this time.
const ACCESS_RECHECK: Duration = Duration::from_secs(3);

/// The close code for a session that ended while the socket was open.
pub const CLOSE_SIGNED_OUT: u16 = 4001;

pub async fn upgrade(
    State(state): State<AppState>,
    Extension(policy): Extension<Arc<OriginPolicy>>,
    Extension(visitor): Extension<Visitor>,
    session: Session,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // Browsers always send an Origin with a websocket handshake; another site's page must
    // not ride on the user's cookie.
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .unwrap_or_default();
    if !policy.allows(origin, &headers) {
        return (StatusCode::FORBIDDEN, "Cross-origin socket refused.").into_response();
    }
    let Some(user) = visitor.user.clone() else {
        return (StatusCode::UNAUTHORIZED, "You need to log in.").into_response();
    };
    let Some(session_id) = session.id().map(|id| id.to_string()) else {
        return (StatusCode::UNAUTHORIZED, "You need to log in.").into_response();
    };
    ws.max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        .max_frame_size(MAX_CLIENT_MESSAGE_BYTES)
        .on_upgrade(move |socket| {
            let follower = Follower {
                ctx: RequestContext {
                    state,
                    visitor,
                    session: Some(session),
                },
                user,
                session_id,
                followed: BTreeSet::new(),
                visible: HashMap::new(),
            };
            follower.serve(socket)
        })
}

fn text(message: &ServerMessage) -> Message {
    Message::Text(Utf8Bytes::from(
        serde_json::to_string(message).unwrap_or_default(),
    ))
}

struct Follower {
    ctx: RequestContext,
    user: CurrentUser,
    session_id: String,
    followed: BTreeSet<Topic>,
    /// Which projects' process changes the user may hear of, until the next recheck.
    visible: HashMap<Option<i64>, bool>,
}

impl Follower {
    async fn serve(mut self, socket: WebSocket) {
        let (mut sink, mut stream) = socket.split();
        let mut bus = self.ctx.state.live.subscribe();
        let coalesce = Duration::from_millis(COALESCE_MS);
        let mut pending = BTreeSet::new();
        let mut last_sent = Instant::now() - coalesce;
        let mut flush: Option<Pin<Box<Sleep>>> = None;
        let mut window = (Instant::now(), 0usize);
        let mut recheck = tokio::time::interval_at(Instant::now() + ACCESS_RECHECK, ACCESS_RECHECK);
        loop {
            let mut changed = false;
            tokio::select! {
                message = stream.next() => {
                    let received = match message {
                        Some(Ok(Message::Text(received))) => received,
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                        Some(Ok(Message::Binary(_))) => {
                            let _ = sink.send(close(close_code::UNSUPPORTED, "text messages only")).await;
                            return;
                        }
                        // Closed, or too large (the socket refuses it and ends).
                        _ => return,
                    };
                    if window.0.elapsed() > Duration::from_secs(FLOOD_WINDOW_SECS) {
                        window = (Instant::now(), 0);
                    }
                    window.1 += 1;
                    if window.1 > MAX_CLIENT_MESSAGES {
                        let _ = sink.send(close(close_code::POLICY, "too many messages")).await;
                        return;
                    }
                    let Ok(message) = serde_json::from_str::<ClientMessage>(&received) else {
                        let _ = sink.send(close(close_code::POLICY, "unreadable message")).await;
                        return;
                    };
                    match self.handle(message).await {
                        // What changed between the page's first read and now is news too.
                        Ok(Some(topic)) => changed |= pending.insert(topic),
                        Ok(None) => {}
                        Err(refusal) => {
                            if sink.send(text(&refusal)).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                change = bus.recv() => match change {
                    Ok(change) => {
                        if self.followed.contains(&change.topic) && self.may_hear(change).await {
                            changed |= pending.insert(change.topic);
                        }
                    }
                    // Fell behind: whatever it follows may have changed.
                    Err(RecvError::Lagged(_)) => {
                        pending.extend(self.followed.iter().copied());
                        changed = !pending.is_empty();
                    }
                    Err(RecvError::Closed) => return,
                },
                () = async { if let Some(flush) = flush.as_mut() { flush.await } }, if flush.is_some() => {
                    flush = None;
                    changed = !pending.is_empty();
                }
                _ = recheck.tick() => {
                    if !self.refresh_user().await {
                        let _ = sink.send(close(CLOSE_SIGNED_OUT, "signed out")).await;
                        return;
                    }
                    for refusal in self.recheck_topics().await {
                        if let ServerMessage::Denied { topic, .. } = &refusal
                            && let Ok(topic) = topic.parse::<Topic>()
                        {
                            pending.remove(&topic);
                        }
                        if sink.send(text(&refusal)).await.is_err() {
                            return;
                        }
                    }
                }
            }
            if changed && flush.is_none() {
                if last_sent.elapsed() >= coalesce {
                    for topic in std::mem::take(&mut pending) {
                        if sink
                            .send(text(&ServerMessage::Changed(topic.to_string())))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    last_sent = Instant::now();
                } else {
                    flush = Some(Box::pin(tokio::time::sleep_until(last_sent + coalesce)));
                }
            }
        }
    }

    /// Follows or stops following a topic; returns the topic newly followed, or the refusal
    /// to send.
    async fn handle(&mut self, message: ClientMessage) -> Result<Option<Topic>, ServerMessage> {
        let name = match message {
            ClientMessage::Unsubscribe(name) => {
                if let Ok(topic) = name.parse() {
                    self.followed.remove(&topic);
                }
                return Ok(None);
            }
            ClientMessage::Subscribe(name) => name,
        };
        let denied = |reason: String| ServerMessage::Denied {
            topic: name.chars().take(64).collect(),
            reason,
        };
        let topic: Topic = match name.parse() {
            Ok(topic) => topic,
            Err(reason) => return Err(denied(reason)),
        };
        if self.followed.contains(&topic) {
            return Ok(None);
        }
        if self.followed.len() >= MAX_SUBSCRIPTIONS {
            return Err(denied(format!(
                "a page follows at most {MAX_SUBSCRIPTIONS} topics"
            )));
        }
        match app::ssr::access::topic(&self.ctx, topic).await {
            Ok(()) => {
                self.followed.insert(topic);
                Ok(Some(topic))
            }
            Err(error) => Err(denied(error.to_string())),
        }
    }

    /// Reads the user again, so that a lost administrator right or a disabled account
    /// counts at once; false when the session ended or the account was disabled.
    async fn refresh_user(&mut self) -> bool {
        let db = &self.ctx.state.db;
        match live::signed_in_user(db, &self.session_id, self.user.id).await {
            Ok(Some(user)) => {
                self.ctx.visitor.user = Some(user.clone());
                self.user = user;
                self.visible.clear();
                true
            }
            Ok(None) => false,
            // The database did not answer: keep the socket, ask again next time.
            Err(_) => true,
        }
    }

    /// Asks the policy again about every followed topic; stops following those the user may
    /// no longer see and returns a refusal for each.
    async fn recheck_topics(&mut self) -> Vec<ServerMessage> {
        let mut refusals = Vec::new();
        for topic in self.followed.clone() {
            match app::ssr::access::topic(&self.ctx, topic).await {
                Ok(()) | Err(AppError::Internal) => {}
                Err(error) => {
                    self.followed.remove(&topic);
                    refusals.push(ServerMessage::Denied {
                        topic: topic.to_string(),
                        reason: error.to_string(),
                    });
                }
            }
        }
        refusals
    }

    /// Whether the user may hear of `change`: the process and build lists only carry
    /// changes of projects they may see; a followed topic was checked when it was followed
    /// and is checked again at every recheck.
    async fn may_hear(&mut self, change: Change) -> bool {
        if !matches!(change.topic, Topic::Processes | Topic::Builds) {
            return true;
        }
        if let Some(answer) = self.visible.get(&change.project) {
            return *answer;
        }
        let answer = live::may_see(&self.ctx.state.db, &self.user, change.project)
            .await
            .unwrap_or(false);
        self.visible.insert(change.project, answer);
        answer
    }
}
