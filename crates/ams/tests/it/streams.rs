//! Live streams over WebSocket and Server-Sent Events against the real
//! server: live arrival, the window, acknowledgements over the socket,
//! redelivery on the injected clock, topic replay, refusals, a client that
//! stops reading, and shutdown.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::*;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Guards against a hang only: every wait below completes as soon as the
/// server does its part.
const HANG: Duration = Duration::from_secs(20);

async fn ws(app: &TestApp, path: &str) -> Ws {
    let url = format!("{}{path}", app.base.replacen("http", "ws", 1));
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// The HTTP status a refused WebSocket handshake got.
async fn ws_refused(app: &TestApp, path: &str) -> u16 {
    let url = format!("{}{path}", app.base.replacen("http", "ws", 1));
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
}

/// The next JSON text frame (control frames skipped).
async fn frame(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(HANG, ws.next())
            .await
            .expect("a frame in time")
            .expect("the stream is open")
            .unwrap();
        match m {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// The close frame's code.
async fn closed(ws: &mut Ws) -> CloseCode {
    loop {
        match tokio::time::timeout(HANG, ws.next())
            .await
            .expect("a frame in time")
        {
            Some(Ok(Message::Close(Some(f)))) => return f.code,
            Some(Ok(Message::Text(t))) => panic!("unexpected text {t}"),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

fn key(path: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}key=S3CR3T")
}

async fn ack_frame(ws: &mut Ws, id: &str) -> Value {
    let body = json!({ "ackIds": [id] }).to_string();
    ws.send(Message::Text(body.into())).await.unwrap();
    frame(ws).await
}

async fn consumed(app: &TestApp, p: &str, s: &str) -> i64 {
    let v = app
        .get(&format!("/v1/projects/{p}/subscriptions/{s}:metrics"))
        .await
        .json();
    v["metrics"][0]["timeseries"][0]["value"].as_i64().unwrap()
}

#[tokio::test]
async fn websocket_delivers_live_messages_and_takes_acks() {
    let app = spawn_app().await;
    app.setup("P", "t", "s").await;
    let mut ws = ws(&app, &key("/v1/projects/P/subscriptions/s:stream")).await;
    app.publish("P", "t", &["YQ==", "Yg==", "Yw=="]).await;
    for (i, data) in ["YQ==", "Yg==", "Yw=="].iter().enumerate() {
        let f = frame(&mut ws).await;
        assert_eq!(f["ackId"], format!("projects/P/subscriptions/s:{i}"));
        assert_eq!(f["message"]["messageId"], i.to_string());
        assert_eq!(f["message"]["data"], *data);
        assert!(f["message"]["publishTime"].is_string());
    }
    let reply = ack_frame(&mut ws, "projects/P/subscriptions/s:2").await;
    assert_eq!(
        reply,
        json!({"acknowledged": ["projects/P/subscriptions/s:2"]})
    );
    assert_eq!(app.offsets("P", "s").await, (3, 0, 3));
    // A bad ack gets the AMS error as a frame; the stream stays open.
    let reply = ack_frame(&mut ws, "projects/P/subscriptions/other:1").await;
    assert_eq!(
        reply,
        json!({"error": {"code": 400, "message": "Invalid ack id", "status": "INVALID_ARGUMENT"}})
    );
    app.publish("P", "t", &["ZA=="]).await;
    assert_eq!(frame(&mut ws).await["message"]["messageId"], "3");
}

#[tokio::test]
async fn the_window_bounds_unacknowledged_messages() {
    let app = spawn_app().await;
    app.setup("P", "t", "s").await;
    app.publish("P", "t", &["a", "b", "c", "d", "e"]).await;
    let mut ws = ws(&app, &key("/v1/projects/P/subscriptions/s:stream?window=2")).await;
    assert_eq!(frame(&mut ws).await["message"]["messageId"], "0");
    assert_eq!(frame(&mut ws).await["message"]["messageId"], "1");
    // Only the window was read and handed out.
    assert_eq!(consumed(&app, "P", "s").await, 2);
    ack_frame(&mut ws, "projects/P/subscriptions/s:0").await;
    assert_eq!(frame(&mut ws).await["message"]["messageId"], "2");
    assert_eq!(consumed(&app, "P", "s").await, 3);
    // An acknowledgement through the REST API opens the window too.
    assert_eq!(
        app.ack("P", "s", &["projects/P/subscriptions/s:2"])
            .await
            .status,
        200
    );
    assert_eq!(frame(&mut ws).await["message"]["messageId"], "3");
    assert_eq!(frame(&mut ws).await["message"]["messageId"], "4");
}

#[tokio::test]
async fn unacknowledged_messages_come_again_after_the_deadline() {
    let app = spawn_app().await;
    app.setup("P", "t", "s").await;
    let mut ws = ws(&app, &key("/v1/projects/P/subscriptions/s:stream")).await;
    app.publish("P", "t", &["a"]).await;
    let first = frame(&mut ws).await;
    assert_eq!(first["ackId"], "projects/P/subscriptions/s:0");
    // The default ack deadline is 10 s; at 10 s it is still in time.
    app.clock.advance_secs(10);
    app.publish("P", "t", &["b"]).await;
    assert_eq!(frame(&mut ws).await["message"]["messageId"], "1");
    app.clock.advance_secs(11);
    let again = frame(&mut ws).await;
    assert_eq!(again, first, "redelivered as it was");
    assert_eq!(frame(&mut ws).await["message"]["messageId"], "1");
    ack_frame(&mut ws, "projects/P/subscriptions/s:1").await;
    assert_eq!(app.offsets("P", "s").await.2, 2);
}

#[tokio::test]
async fn no_redelivery_while_an_acknowledgement_is_still_accepted() {
    let app = spawn_app().await;
    app.setup("P", "t", "s").await;
    let mut ws = ws(&app, &key("/v1/projects/P/subscriptions/s:stream")).await;
    // Handed out half a second into a second: the pull's bookkeeping keeps
    // whole seconds, and an ack is refused only once 11 of them have passed.
    app.clock.advance_millis(500);
    app.publish("P", "t", &["a"]).await;
    assert_eq!(frame(&mut ws).await["message"]["messageId"], "0");
    app.clock.advance_secs(10);
    app.publish("P", "t", &["b"]).await;
    assert_eq!(
        frame(&mut ws).await["message"]["messageId"],
        "1",
        "0 is still in time: not sent again"
    );
    let reply = ack_frame(&mut ws, "projects/P/subscriptions/s:0").await;
    assert_eq!(reply["acknowledged"][0], "projects/P/subscriptions/s:0");
}

/// Reads server-sent events until `n` were parsed: (event, id, data).
pub(crate) async fn events(
    resp: &mut reqwest::Response,
    buf: &mut String,
    n: usize,
) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    loop {
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let (mut event, mut id, mut data) = (String::new(), String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    event = v.into();
                } else if let Some(v) = line.strip_prefix("id: ") {
                    id = v.into();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = v.into();
                }
            }
            if !event.is_empty() {
                out.push((event, id, serde_json::from_str(&data).unwrap()));
                if out.len() == n {
                    return out;
                }
            }
        }
        let chunk = tokio::time::timeout(HANG, resp.chunk())
            .await
            .expect("an event in time")
            .unwrap()
            .expect("the stream is open");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

async fn sse(app: &TestApp, path: &str) -> reqwest::Response {
    let r = app
        .client
        .get(format!("{}{path}", app.base))
        .header("accept", "text/event-stream")
        .header("x-api-key", &app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    r
}

#[tokio::test]
async fn server_sent_events_with_auto_ack_and_with_rest_acks() {
    let app = spawn_app().await;
    app.setup("P", "t", "s").await;
    let mut buf = String::new();
    let mut r = sse(&app, "/v1/projects/P/subscriptions/s:stream?autoAck=true").await;
    app.publish("P", "t", &["eA==", "eQ=="]).await;
    let got = events(&mut r, &mut buf, 2).await;
    assert_eq!(got[0].0, "message");
    assert_eq!(got[0].1, "0");
    assert_eq!(got[0].2["ackId"], "projects/P/subscriptions/s:0");
    assert_eq!(got[1].2["message"]["data"], "eQ==");
    assert_eq!(
        app.offsets("P", "s").await.2,
        2,
        "acknowledged as handed out"
    );
    drop(r);

    let mut buf = String::new();
    let mut r = sse(&app, "/v1/projects/P/subscriptions/s:stream?window=1").await;
    app.publish("P", "t", &["eg==", "dw=="]).await;
    let got = events(&mut r, &mut buf, 1).await;
    assert_eq!(got[0].1, "2");
    assert_eq!(
        app.ack("P", "s", &["projects/P/subscriptions/s:2"])
            .await
            .status,
        200
    );
    let got = events(&mut r, &mut buf, 1).await;
    assert_eq!(got[0].1, "3");
}

#[tokio::test]
async fn topic_tails_replay_and_follow() {
    let app = spawn_app().await;
    app.setup("P", "t", "s").await;
    app.publish("P", "t", &["m0", "m1", "m2", "m3", "m4"]).await;
    let ids = |frames: &[Value]| -> Vec<String> {
        frames
            .iter()
            .map(|f| f["messageId"].as_str().unwrap().to_owned())
            .collect()
    };

    // The last two, then live.
    let mut tail = ws(&app, &key("/v1/projects/P/topics/t:stream?last=2")).await;
    let got = [frame(&mut tail).await, frame(&mut tail).await];
    assert_eq!(ids(&got), ["3", "4"]);
    assert_eq!(got[0]["data"], "m3");
    assert!(got[0].get("ackId").is_none());
    app.publish("P", "t", &["m5"]).await;
    assert_eq!(frame(&mut tail).await["messageId"], "5");

    // From an offset, at most two, then a normal close.
    let mut from = ws(&app, &key("/v1/projects/P/topics/t:stream?from=1&max=2")).await;
    let got = [frame(&mut from).await, frame(&mut from).await];
    assert_eq!(ids(&got), ["1", "2"]);
    assert_eq!(closed(&mut from).await, CloseCode::Normal);

    // From a time: only what was published at or after it.
    app.clock.advance_secs(60);
    app.publish("P", "t", &["late"]).await;
    let mut timed = ws(
        &app,
        &key("/v1/projects/P/topics/t:stream?time=2024-01-01T10:00:30Z"),
    )
    .await;
    assert_eq!(frame(&mut timed).await["data"], "late");

    // An event stream resumes after Last-Event-ID.
    let r = app
        .client
        .get(format!("{}/v1/projects/P/topics/t:stream?last=1", app.base))
        .header("accept", "text/event-stream")
        .header("last-event-id", "4")
        .header("x-api-key", &app.token)
        .send()
        .await
        .unwrap();
    let mut r = r;
    let mut buf = String::new();
    let got = events(&mut r, &mut buf, 2).await;
    assert_eq!((got[0].1.as_str(), got[1].1.as_str()), ("5", "6"));
    // An id past every offset resumes at the end (no overflow).
    let mut r = app
        .client
        .get(format!("{}/v1/projects/P/topics/t:stream", app.base))
        .header("accept", "text/event-stream")
        .header("last-event-id", u64::MAX.to_string())
        .header("x-api-key", &app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.publish("P", "t", &["next"]).await;
    let mut buf = String::new();
    assert_eq!(events(&mut r, &mut buf, 1).await[0].1, "7");
    // Subscriptions are untouched by tails.
    assert_eq!(consumed(&app, "P", "s").await, 0);
}

#[tokio::test]
async fn streams_refuse_what_a_pull_would_and_bad_parameters() {
    let app = spawn_with(|c| c.auth_option = ams_http::AuthOption::Header).await;
    app.setup("P", "t", "s").await;
    let outsider = app
        .member_token("outsider", "P", &["consumer", "publisher"])
        .await;
    let admin = app.member_token("admin", "P", &["project_admin"]).await;
    let sub = "/v1/projects/P/subscriptions/s:stream";
    // `?key=` is accepted even where the API takes tokens from headers only.
    ws(&app, &key(sub)).await;
    assert_eq!(ws_refused(&app, sub).await, 401);
    assert_eq!(
        ws_refused(&app, &format!("{sub}?key={outsider}")).await,
        403
    );
    assert_eq!(
        ws_refused(&app, &key("/v1/projects/P/subscriptions/nope:stream")).await,
        404
    );
    // Topic tails are for admins.
    let tail = "/v1/projects/P/topics/t:stream";
    assert_eq!(
        ws_refused(&app, &format!("{tail}?key={outsider}")).await,
        403
    );
    ws(&app, &format!("{tail}?key={admin}")).await;

    for (path, message) in [
        (
            format!("{sub}?window=0"),
            "window must be between 1 and 10000",
        ),
        (
            format!("{sub}?window=x"),
            "window must be between 1 and 10000",
        ),
        (
            format!("{sub}?autoAck=yes"),
            "autoAck must be true or false",
        ),
        (
            format!("{tail}?from=1&last=2"),
            "give at most one of from, time and last",
        ),
        (
            format!("{tail}?time=yesterday"),
            "time must be an RFC 3339 time such as 2024-01-01T10:00:00Z",
        ),
    ] {
        let r = app
            .client
            .get(format!("{}{path}", app.base))
            .header("accept", "text/event-stream")
            .header("x-api-key", &app.token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        let want = format!(
            "{{\n   \"error\": {{\n      \"code\": 400,\n      \"message\": \"Invalid stream parameter: {message}\",\n      \"status\": \"INVALID_ARGUMENT\"\n   }}\n}}"
        );
        assert_eq!((status, body.as_str()), (400, want.as_str()), "{path}");
    }
    // Neither an upgrade nor an event-stream Accept.
    let r = app.call("GET", sub, None).await;
    r.assert_error(
        400,
        "Invalid stream parameter: a stream needs a WebSocket upgrade or Accept: text/event-stream",
        "INVALID_ARGUMENT",
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_holds_the_stream_not_the_server() {
    let app = spawn_app().await;
    app.setup("P", "t", "s").await;
    // A window as wide as allowed: only the client's reading can hold the
    // server back.
    let ws = ws(
        &app,
        &key("/v1/projects/P/subscriptions/s:stream?window=10000"),
    )
    .await;
    let data = "x".repeat(8 << 10);
    let batch: Vec<&str> = vec![data.as_str(); 100];
    // 80 MB published while the client reads nothing: every publish is answered.
    for _ in 0..100 {
        app.publish("P", "t", &batch).await;
    }
    let handed_out = consumed(&app, "P", "s").await;
    // What was read from the log is what the socket buffers took (a few MB),
    // not the 10,000 messages available.
    assert!(handed_out < 5_000, "{handed_out} messages handed out");
    drop(ws);
}

#[tokio::test]
async fn shutdown_closes_streams() {
    let app = spawn_app().await;
    app.setup("P", "t", "s").await;
    let mut sub = ws(&app, &key("/v1/projects/P/subscriptions/s:stream")).await;
    let mut tail = ws(&app, &key("/v1/projects/P/topics/t:stream")).await;
    let mut events = sse(&app, "/v1/projects/P/subscriptions/s:stream").await;
    let stopping = tokio::spawn(app.stop());
    assert_eq!(closed(&mut sub).await, CloseCode::Away);
    assert_eq!(closed(&mut tail).await, CloseCode::Away);
    // The event stream ends.
    loop {
        let chunk = tokio::time::timeout(HANG, events.chunk())
            .await
            .expect("the end in time");
        if chunk.map(|c| c.is_none()).unwrap_or(true) {
            break;
        }
    }
    tokio::time::timeout(HANG, stopping)
        .await
        .expect("stopped in time")
        .unwrap();
}

#[tokio::test]
async fn deleting_the_subscription_or_the_topic_ends_its_streams() {
    let app = spawn_app().await;
    app.setup("P", "t", "s").await;
    let body = r#"{"topic":"projects/P/topics/t"}"#;
    assert_eq!(
        app.put("/v1/projects/P/subscriptions/s2", body)
            .await
            .status,
        200
    );
    let mut sub = ws(&app, &key("/v1/projects/P/subscriptions/s:stream")).await;
    let mut sub2 = ws(&app, &key("/v1/projects/P/subscriptions/s2:stream")).await;
    let mut tail = ws(&app, &key("/v1/projects/P/topics/t:stream")).await;
    assert_eq!(
        app.delete("/v1/projects/P/subscriptions/s").await.status,
        200
    );
    assert_eq!(
        frame(&mut sub).await,
        json!({"error": {"code": 404, "message": "Subscription doesn't exist", "status": "NOT_FOUND"}})
    );
    assert_eq!(closed(&mut sub).await, CloseCode::Normal);
    assert_eq!(app.delete("/v1/projects/P/topics/t").await.status, 200);
    assert_eq!(
        frame(&mut sub2).await,
        json!({"error": {"code": 409, "message": "Subscription's topic doesn't exist", "status": "CONFLICT"}})
    );
    assert_eq!(closed(&mut sub2).await, CloseCode::Normal);
    assert_eq!(closed(&mut tail).await, CloseCode::Normal);
}

#[tokio::test]
async fn acks_one_by_one_keep_the_rest_pending_and_a_seek_replays() {
    let app = spawn_app().await;
    app.setup("P", "t", "s").await;
    app.publish("P", "t", &["a", "b", "c"]).await;
    let mut ws = ws(&app, &key("/v1/projects/P/subscriptions/s:stream")).await;
    for i in 0..3 {
        assert_eq!(frame(&mut ws).await["message"]["messageId"], i.to_string());
    }
    // A pull's cumulative ack would leave 1 and 2 unacknowledgeable until
    // the next pull; a stream keeps what it sent pending instead.
    assert_eq!(
        app.ack("P", "s", &["projects/P/subscriptions/s:0"])
            .await
            .status,
        200
    );
    assert_eq!(
        app.ack("P", "s", &["projects/P/subscriptions/s:1"])
            .await
            .status,
        200
    );
    let reply = ack_frame(&mut ws, "projects/P/subscriptions/s:2").await;
    assert_eq!(reply["acknowledged"][0], "projects/P/subscriptions/s:2");
    assert_eq!(consumed(&app, "P", "s").await, 3, "nothing was sent twice");
    // Seeking back replays.
    let r = app
        .post(
            "/v1/projects/P/subscriptions/s:modifyOffset",
            r#"{"offset":1}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(frame(&mut ws).await["message"]["messageId"], "1");
    assert_eq!(frame(&mut ws).await["message"]["messageId"], "2");
}

/// A consumer that acknowledges each streamed message through the REST API
/// while the stream hands out the next ones (what `ams sub` does): every
/// acknowledgement is accepted and nothing is sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rest_acks_racing_the_stream_are_all_accepted() {
    const N: usize = 400;
    let app = std::sync::Arc::new(spawn_app().await);
    app.setup("P", "t", "s").await;
    let mut r = sse(&app, "/v1/projects/P/subscriptions/s:stream").await;
    let publisher = {
        let app = app.clone();
        tokio::spawn(async move {
            for _ in 0..N {
                app.publish("P", "t", &["eA=="]).await;
            }
        })
    };
    let mut buf = String::new();
    for want in 0..N {
        let got = events(&mut r, &mut buf, 1).await.remove(0);
        assert_eq!(got.1, want.to_string(), "in order, once each");
        let id = got.2["ackId"].as_str().unwrap().to_owned();
        let ack = app.ack("P", "s", &[id.as_str()]).await;
        assert_eq!(ack.status, 200, "ack of {want}: {}", ack.body);
    }
    publisher.await.unwrap();
}

#[tokio::test]
async fn deleting_the_topic_ends_a_stream_whose_window_is_full() {
    let app = spawn_app().await;
    app.setup("P", "t", "s").await;
    app.publish("P", "t", &["a", "b"]).await;
    let mut ws = ws(&app, &key("/v1/projects/P/subscriptions/s:stream?window=1")).await;
    assert_eq!(frame(&mut ws).await["message"]["messageId"], "0");
    // The window is full: the stream waits for an ack, not for a publish.
    assert_eq!(app.delete("/v1/projects/P/topics/t").await.status, 200);
    assert_eq!(
        frame(&mut ws).await,
        json!({"error": {"code": 409, "message": "Subscription's topic doesn't exist", "status": "CONFLICT"}})
    );
    assert_eq!(closed(&mut ws).await, CloseCode::Normal);
}
