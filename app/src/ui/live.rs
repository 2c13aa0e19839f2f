//! Live pages: one `/ws` socket per tab, shared by every component that follows a topic.
//!
//! [`use_live`] gives a counter that goes up whenever the server says the topic changed. The
//! server also says so once for each subscription, after a reconnection too, so nothing that
//! happened while the page was not subscribed is missed. A page puts the counter in its
//! resource's source, so it reads its data again through its server function. While
//! rendering on the server it stays 0.

use crate::live::Topic;
use leptos::prelude::*;

/// Follows `topic` (none: nothing) for as long as the calling component lives.
pub fn use_live(topic: impl Fn() -> Option<Topic> + Send + Sync + 'static) -> Signal<u64> {
    #[cfg(feature = "hydrate")]
    {
        let topic = Memo::new(move |_| topic());
        let followed = StoredValue::new(None::<Topic>);
        Effect::new(move |_| {
            let next = topic.get();
            let previous = followed.get_value();
            if previous != next {
                if let Some(previous) = previous {
                    client::unfollow(previous);
                }
                if let Some(next) = next {
                    client::follow(next);
                }
                followed.set_value(next);
            }
        });
        on_cleanup(move || {
            if let Some(topic) = followed.try_get_value().flatten() {
                client::unfollow(topic);
            }
        });
        Signal::derive(move || topic.get().map_or(0, |t| client::version(t).get()))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = topic;
        Signal::stored(0)
    }
}

#[cfg(feature = "hydrate")]
mod client {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::time::Duration;

    use leptos::prelude::*;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    use web_sys::{MessageEvent, WebSocket};

    use crate::live::{ClientMessage, ServerMessage, Topic};

    /// The longest wait before connecting again.
    const MAX_BACKOFF_MS: u64 = 30_000;

    #[derive(Default)]
    struct Client {
        socket: Option<WebSocket>,
        open: bool,
        failures: u32,
        /// How many components follow each topic.
        followers: HashMap<Topic, usize>,
        versions: HashMap<Topic, ArcRwSignal<u64>>,
    }

    thread_local! {
        static CLIENT: RefCell<Client> = RefCell::new(Client::default());
    }

    pub fn version(topic: Topic) -> ArcRwSignal<u64> {
        CLIENT.with_borrow_mut(|c| c.versions.entry(topic).or_default().clone())
    }

    fn bump(topic: Topic) {
        version(topic).update(|v| *v += 1);
    }

    pub fn follow(topic: Topic) {
        let first = CLIENT.with_borrow_mut(|c| {
            let count = c.followers.entry(topic).or_default();
            *count += 1;
            *count == 1
        });
        if first {
            send(&ClientMessage::Subscribe(topic.to_string()));
        }
        if CLIENT.with_borrow(|c| c.socket.is_none()) {
            connect();
        }
    }

    pub fn unfollow(topic: Topic) {
        let last = CLIENT.with_borrow_mut(|c| match c.followers.get_mut(&topic) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                c.followers.remove(&topic);
                true
            }
            None => false,
        });
        if last {
            send(&ClientMessage::Unsubscribe(topic.to_string()));
        }
    }

    fn send(message: &ClientMessage) {
        let Ok(text) = serde_json::to_string(message) else {
            return;
        };
        CLIENT.with_borrow(|c| {
            if let (true, Some(socket)) = (c.open, &c.socket) {
                let _ = socket.send_with_str(&text);
            }
        });
    }

    fn connect() {
        let location = window().location();
        let scheme = if location.protocol().as_deref() == Ok("https:") {
            "wss:"
        } else {
            "ws:"
        };
        let Ok(host) = location.host() else {
            return;
        };
        let Ok(socket) = WebSocket::new(&format!("{scheme}//{host}/ws")) else {
            return;
        };
        let on_open = Closure::<dyn FnMut()>::new(move || {
            let topics = CLIENT.with_borrow_mut(|c| {
                c.open = true;
                c.failures = 0;
                c.followers.keys().copied().collect::<Vec<_>>()
            });
            for topic in topics {
                send(&ClientMessage::Subscribe(topic.to_string()));
            }
        });
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let Some(text) = event.data().as_string() else {
                return;
            };
            if let Ok(ServerMessage::Changed(name)) = serde_json::from_str(&text)
                && let Ok(topic) = name.parse::<Topic>()
            {
                bump(topic);
            }
        });
        let on_close = Closure::<dyn FnMut()>::new(move || {
            let (failures, followed) = CLIENT.with_borrow_mut(|c| {
                c.socket = None;
                c.open = false;
                c.failures += 1;
                (c.failures, !c.followers.is_empty())
            });
            if followed {
                let wait = (500u64 << failures.min(6)).min(MAX_BACKOFF_MS);
                set_timeout(
                    || {
                        if CLIENT.with_borrow(|c| c.socket.is_none()) {
                            connect();
                        }
                    },
                    Duration::from_millis(wait),
                );
            }
        });
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        // The handlers live as long as the socket, which the page keeps until it closes.
        on_open.forget();
        on_message.forget();
        on_close.forget();
        CLIENT.with_borrow_mut(|c| c.socket = Some(socket));
    }
}
