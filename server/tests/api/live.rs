//! The `/ws` live socket as a browser tab uses it: refused without a session or from another
//! origin, topics checked by the policy, changes forwarded only to those who may see them,
//! and a misbehaving socket closed alone.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::helpers::{Client, TestApp, on_each_database};
use crate::projects::create_project;

on_each_database!(
    configure = |settings| settings.embedded_workers = 1;
    live_topics_go_through_the_policy,
    a_misbehaving_socket_is_closed_alone,
    losing_access_stops_a_followed_topic,
);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const WAITER: &str =
    "name: waiter\nprocess:\n  sequence:\n    - wait: 2s\n    - set: { done: yes }\n";

/// Opens `/ws` as `client`'s browser tab would (its cookie, `origin`).
async fn open(
    app: &TestApp,
    client: Option<&Client>,
    origin: &str,
) -> Result<Socket, tungstenite::Error> {
    let mut request = format!("{}/ws", app.base.replacen("http", "ws", 1))
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert("origin", HeaderValue::from_str(origin).unwrap());
    if let Some(id) = client.and_then(Client::session_id) {
        headers.insert(
            "cookie",
            HeaderValue::from_str(&format!("kiln_session={id}")).unwrap(),
        );
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .unwrap();
}

/// The next message within `wait`, if any.
async fn next(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(wait, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Some(serde_json::from_str(&text).unwrap()),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return None,
        }
    }
}

/// Waits up to ten seconds for "changed" of `topic`, skipping other topics.
async fn changed(socket: &mut Socket, topic: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        if let Some(message) = next(socket, Duration::from_secs(10)).await
            && message == json!({ "changed": topic })
        {
            return;
        }
    }
    panic!("no change of {topic}");
}

/// The id of the embedded worker, once it is connected.
async fn embedded_worker(admin: &Client) -> String {
    for _ in 0..200 {
        let overview: Value = admin.call("list_workers", &[]).await.json().await.unwrap();
        if let Some(id) = overview["workers"][0]["id"].as_i64() {
            return id.to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the embedded worker never connected");
}

/// Drains the embedded worker, as an administrator on the Workers page.
async fn drain_embedded_worker(admin: &Client) {
    let worker = embedded_worker(admin).await;
    let response = admin
        .call(
            "drain_worker",
            &[("id", worker.as_str()), ("draining", "true")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

fn status_of(error: tungstenite::Error) -> u16 {
    match error {
        tungstenite::Error::Http(response) => response.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

async fn live_topics_go_through_the_policy(app: TestApp) {
    app.create_user("olga", "olga-password-1", false).await;
    let olga = app.logged_in("olga", "olga-password-1").await;
    create_project(&olga, "secret-os", &[]).await;
    let saved = olga
        .call(
            "save_definition",
            &[("project", "secret-os"), ("source", WAITER)],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::OK);
    app.create_user("vic", "vic-password-1", false).await;
    let vic = app.logged_in("vic", "vic-password-1").await;

    // No session, or another site's page: refused before any socket exists.
    let refused = open(&app, None, &app.origin).await.unwrap_err();
    assert_eq!(status_of(refused), 401);
    let refused = open(&app, Some(&olga), "http://evil.example")
        .await
        .unwrap_err();
    assert_eq!(status_of(refused), 403);

    let mut olga_tab = open(&app, Some(&olga), &app.origin).await.unwrap();
    let mut vic_tab = open(&app, Some(&vic), &app.origin).await.unwrap();
    // A subscription is answered with one "changed", so that the page reads again what
    // happened before it subscribed.
    send(&mut olga_tab, json!({ "subscribe": "processes" })).await;
    assert_eq!(
        next(&mut olga_tab, Duration::from_secs(5)).await,
        Some(json!({ "changed": "processes" }))
    );
    send(&mut vic_tab, json!({ "subscribe": "processes" })).await;
    assert_eq!(
        next(&mut vic_tab, Duration::from_secs(5)).await,
        Some(json!({ "changed": "processes" }))
    );
    send(&mut vic_tab, json!({ "subscribe": "bogus" })).await;
    let denied = next(&mut vic_tab, Duration::from_secs(5)).await.unwrap();
    assert_eq!(denied["denied"]["topic"], "bogus");

    let launched = olga
        .call(
            "launch_process",
            &[("project", "secret-os"), ("name", "waiter")],
        )
        .await;
    assert_eq!(launched.status(), StatusCode::OK);
    let id: i64 = launched.json().await.unwrap();
    changed(&mut olga_tab, "processes").await;
    let topic = format!("process:{id}");
    send(&mut olga_tab, json!({ "subscribe": topic })).await;
    changed(&mut olga_tab, &topic).await;
    send(&mut vic_tab, json!({ "subscribe": topic })).await;

    // Vic may not see the process: the subscription is refused as the page would be.
    let denied = next(&mut vic_tab, Duration::from_secs(5)).await.unwrap();
    assert_eq!(denied["denied"]["topic"], topic);
    assert_eq!(denied["denied"]["reason"], "Not found.");

    // The wait ends: Olga hears of it; Vic hears nothing of a project he cannot see.
    changed(&mut olga_tab, &topic).await;
    assert_eq!(next(&mut vic_tab, Duration::from_millis(1500)).await, None);

    // The workers page hears of a drained worker.
    let admin = app.admin().await;
    let mut admin_tab = open(&app, Some(&admin), &app.origin).await.unwrap();
    send(&mut admin_tab, json!({ "subscribe": "workers" })).await;
    changed(&mut admin_tab, "workers").await;
    drain_embedded_worker(&admin).await;
    changed(&mut admin_tab, "workers").await;
}

async fn a_misbehaving_socket_is_closed_alone(app: TestApp) {
    let admin = app.admin().await;
    let mut calm = open(&app, Some(&admin), &app.origin).await.unwrap();
    send(&mut calm, json!({ "subscribe": "workers" })).await;
    changed(&mut calm, "workers").await;

    // A flood closes the socket that floods.
    let mut flood = open(&app, Some(&admin), &app.origin).await.unwrap();
    for _ in 0..=app::live::MAX_CLIENT_MESSAGES {
        if flood
            .send(Message::text(r#"{"unsubscribe":"workers"}"#))
            .await
            .is_err()
        {
            break;
        }
    }
    let mut closed = false;
    while let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(5), flood.next()).await {
        match message {
            Ok(Message::Close(frame)) => {
                assert_eq!(u16::from(frame.unwrap().code), 1008);
                closed = true;
                break;
            }
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    assert!(closed, "the flooding socket stays open");

    // So does a message over the limit.
    let mut large = open(&app, Some(&admin), &app.origin).await.unwrap();
    let huge = "x".repeat(app::live::MAX_CLIENT_MESSAGE_BYTES + 1);
    let _ = large.send(Message::text(huge)).await;
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match large.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the socket with the oversized message stays open"
    );

    // The calm socket still hears its topic.
    drain_embedded_worker(&admin).await;
    changed(&mut calm, "workers").await;
}

/// A user who loses access to what a socket follows stops hearing of it within seconds:
/// the socket asks the policy again and says the topic is refused.
async fn losing_access_stops_a_followed_topic(app: TestApp) {
    app.create_user("olga", "olga-password-1", false).await;
    let olga = app.logged_in("olga", "olga-password-1").await;
    create_project(&olga, "shared-os", &[("other_permissions[view]", "true")]).await;
    let long = "name: long\nprocess:\n  sequence:\n    - wait: 60s\n";
    let saved = olga
        .call(
            "save_definition",
            &[("project", "shared-os"), ("source", long)],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::OK);
    let launched = olga
        .call(
            "launch_process",
            &[("project", "shared-os"), ("name", "long")],
        )
        .await;
    let id: i64 = launched.json().await.unwrap();
    let topic = format!("process:{id}");

    app.create_user("vic", "vic-password-1", false).await;
    let vic = app.logged_in("vic", "vic-password-1").await;
    let mut vic_tab = open(&app, Some(&vic), &app.origin).await.unwrap();
    send(&mut vic_tab, json!({ "subscribe": topic })).await;
    changed(&mut vic_tab, &topic).await;
    send(&mut vic_tab, json!({ "subscribe": "builds" })).await;
    changed(&mut vic_tab, "builds").await;

    // Olga makes the project private again: Vic's tab is told within a few seconds.
    let private = olga
        .call(
            "set_project_sharing",
            &[("slug", "shared-os"), ("group", "")],
        )
        .await;
    assert_eq!(private.status(), StatusCode::OK);
    let started = std::time::Instant::now();
    let denied = loop {
        let message = next(&mut vic_tab, Duration::from_secs(10))
            .await
            .expect("a refusal within 10 s");
        if message.get("denied").is_some() {
            break message;
        }
    };
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(denied["denied"]["topic"], topic);
    assert_eq!(denied["denied"]["reason"], "Not found.");

    // The process changes; Vic hears nothing of it.
    let cancelled = olga
        .call(
            "control_process",
            &[("id", &id.to_string()), ("command", "cancel")],
        )
        .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    while let Some(message) = next(&mut vic_tab, Duration::from_millis(1500)).await {
        assert_ne!(
            message,
            json!({ "changed": topic }),
            "heard after losing access"
        );
    }

    // A disabled account's socket is closed.
    let admin = app.admin().await;
    let users: Value = admin
        .call("list_users", &[("search", "vic"), ("page", "1")])
        .await
        .json()
        .await
        .unwrap();
    let vic_id = users["items"][0]["id"].to_string();
    let off = admin
        .call("change_user", &[("id", &vic_id), ("change", "Disable")])
        .await;
    assert_eq!(off.status(), StatusCode::OK);
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match vic_tab.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await
    .expect("the socket closes within 10 s");
    assert_eq!(closed, Some(server::http::live_socket::CLOSE_SIGNED_OUT));
}
