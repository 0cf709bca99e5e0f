//! Push subscriptions end to end (contract §7): the real server with push
//! enabled delivering to real receivers on 127.0.0.1 (see `receiver`).

use serde_json::{Value, json};

use crate::helpers::*;
use crate::receiver::{Receiver, Tls};

/// A server with push on and plain-http endpoints allowed. The lease is long
/// so that a worker's only sleeps on the clock are its retry waits.
pub(crate) async fn push_app() -> TestApp {
    spawn_with(|c| {
        c.push.enabled = true;
        c.push.allow_http = true;
        c.push.lease = std::time::Duration::from_secs(3600);
    })
    .await
}

/// Creates project P, topic t and push subscription `s` with `push_config`;
/// returns the created subscription.
pub(crate) async fn push_sub(app: &TestApp, s: &str, push_config: Value) -> Value {
    app.setup("P", "t", "pull-only").await;
    create_sub(app, s, push_config).await
}

pub(crate) async fn create_sub(app: &TestApp, s: &str, push_config: Value) -> Value {
    let body = json!({"topic": "projects/P/topics/t", "pushConfig": push_config});
    let r = app
        .put(
            &format!("/v1/projects/P/subscriptions/{s}"),
            &body.to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// Verifies `s` against `rx` (which answers the subscription's hash).
pub(crate) async fn verify(app: &TestApp, rx: &Receiver, s: &str) {
    let sub = app
        .get(&format!("/v1/projects/P/subscriptions/{s}"))
        .await
        .json();
    rx.set_hash(200, sub["pushConfig"]["verificationHash"].as_str().unwrap());
    let r = app
        .post(
            &format!("/v1/projects/P/subscriptions/{s}:verifyPushEndpoint"),
            "",
        )
        .await;
    r.assert_ok("");
}

/// An http endpoint subscription delivering to `rx` at `/push`, verified.
pub(crate) async fn verified_sub(app: &TestApp, rx: &Receiver, s: &str, extra: Value) -> Value {
    let mut cfg = json!({"type": "http_endpoint", "pushEndpoint": rx.url("/push")});
    cfg.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    push_sub(app, s, cfg).await;
    verify(app, rx, s).await;
    app.get(&format!("/v1/projects/P/subscriptions/{s}"))
        .await
        .json()
}

#[tokio::test]
async fn single_message_delivery_body_headers_and_acknowledgement() {
    let app = push_app().await;
    let rx = Receiver::start(&app.clock).await;
    let sub = verified_sub(&app, &rx, "s", json!({})).await;
    let auth = sub["pushConfig"]["authorizationHeader"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(is_token(&auth), "{sub}");
    assert_eq!(
        sub["pushStatus"],
        "Subscription /projects/P/subscriptions/s is currently active"
    );

    let r = app
        .post(
            "/v1/projects/P/topics/t:publish",
            r#"{"messages":[{"attributes":{"k":"v"},"data":"aGVsbG8="}]}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let got = rx.wait_for(1).await;
    let d = &got[0];
    assert_eq!(d.path, "/push");
    assert_eq!(d.header("content-type"), Some("application/json"));
    assert_eq!(d.header("authorization"), Some(auth.as_str()));
    let publish_time = d.json()["message"]["publishTime"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        d.body,
        format!(
            r#"{{"message":{{"messageId":"0","attributes":{{"k":"v"}},"data":"aGVsbG8=","publishTime":"{publish_time}"}},"subscription":"/projects/P/subscriptions/s"}}"#
        )
    );
    // Acknowledged through the cursor: the committed offset moves past it.
    wait_offset(&app, "s", 1).await;
}

/// Waits (bounded) until subscription `s`'s committed offset reaches `want`.
pub(crate) async fn wait_offset(app: &TestApp, s: &str, want: i64) {
    let ok = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            if app.offsets("P", s).await.2 >= want {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(ok.is_ok(), "offset of {s} never reached {want}");
}

#[tokio::test]
async fn batched_delivery_with_base64_decode_and_no_authorization_header() {
    let app = push_app().await;
    let rx = Receiver::start(&app.clock).await;
    verified_sub(
        &app,
        &rx,
        "s",
        json!({"maxMessages": 3, "authorizationHeader": {"type": "disabled"}, "base64Decode": true,
               "retryPolicy": {"type": "exponential"}}),
    )
    .await;
    app.publish("P", "t", &["b25l", "dHdv", "PHRocmVlPg=="])
        .await;
    let got = rx.wait_for(1).await;
    let d = &got[0];
    assert_eq!(d.header("authorization"), None);
    let v = d.json();
    let messages = v["messages"].as_array().unwrap();
    let datas: Vec<&str> = messages
        .iter()
        .map(|m| m["message"]["data"].as_str().unwrap())
        .collect();
    assert_eq!(datas, ["one", "two", "<three>"]);
    for (i, m) in messages.iter().enumerate() {
        assert_eq!(m["message"]["messageId"], i.to_string());
        assert_eq!(m["subscription"], "/projects/P/subscriptions/s");
    }
    // Go-compatible encoding: HTML characters escaped as the original does.
    assert!(
        d.body.contains(r#""data":"\u003cthree\u003e""#),
        "{}",
        d.body
    );
    wait_offset(&app, "s", 3).await;
}

#[tokio::test]
async fn failed_deliveries_are_retried_on_the_linear_period_in_order() {
    let app = push_app().await;
    let rx = Receiver::start(&app.clock).await;
    rx.script(&[500, 503]);
    verified_sub(
        &app,
        &rx,
        "s",
        json!({"retryPolicy": {"type": "linear", "period": 2500}}),
    )
    .await;
    app.publish("P", "t", &["MQ==", "Mg=="]).await;
    let t0 = rx.wait_for(1).await[0].at;
    // The failed message is offered again exactly one period later, twice.
    for k in 1..=2 {
        // A sleeper exists once the worker has handled failure k.
        let next = app.clock.next_sleeper().await;
        assert_eq!(next.nanos() - t0.nanos(), k * 2_500_000_000);
        let status = app.get("/v1/projects/P/subscriptions/s").await.json();
        let code = if k == 1 { 500 } else { 503 };
        assert_eq!(
            status["pushStatus"],
            format!(
                "2024-01-01T10:00:{:02}Z - Could not send message, endpoint responded with status {code}",
                (k - 1) * 5 / 2
            ),
        );
        app.clock.set(next);
        rx.wait_for(k as usize + 1).await;
    }
    // Third try succeeded; the next message follows a period later.
    let next = app.clock.next_sleeper().await;
    assert_eq!(next.nanos() - t0.nanos(), 3 * 2_500_000_000);
    app.clock.set(next);
    let got = rx.wait_for(4).await;
    let ids: Vec<String> = got
        .iter()
        .map(|d| {
            d.json()["message"]["messageId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, ["0", "0", "0", "1"]);
    wait_offset(&app, "s", 2).await;
    let status = app.get("/v1/projects/P/subscriptions/s").await.json();
    assert_eq!(
        status["pushStatus"],
        "Subscription /projects/P/subscriptions/s is currently active"
    );
}

#[tokio::test]
async fn slowstart_and_exponential_back_off_as_specified() {
    let app = push_app().await;
    let rx = Receiver::start(&app.clock).await;
    rx.script(&[500, 500, 500]);
    verified_sub(
        &app,
        &rx,
        "s",
        json!({"retryPolicy": {"type": "slowstart"}}),
    )
    .await;
    app.publish("P", "t", &["MQ=="]).await;
    let mut at = rx.wait_for(1).await[0].at;
    // Slowstart starts at 1 s and doubles after each failure.
    for (k, wait_ms) in [(2, 2000), (3, 4000), (4, 8000)] {
        let next = app.clock.next_sleeper().await;
        assert_eq!((next.nanos() - at.nanos()) / 1_000_000, wait_ms);
        app.clock.set(next);
        at = rx.wait_for(k).await[k - 1].at;
    }
    // The fourth attempt succeeded: halved to 4 s.
    let next = app.clock.next_sleeper().await;
    assert_eq!((next.nanos() - at.nanos()) / 1_000_000, 4000);

    // Exponential: min 1000, max 3000; each wait in the upper half of its step.
    let r = app
        .post(
            "/v1/projects/P/subscriptions/s:modifyPushConfig",
            &json!({"pushConfig": {"type": "http_endpoint", "pushEndpoint": rx.url("/push"),
                "retryPolicy": {"type": "exponential", "minBackoff": 1000, "maxBackoff": 3000}}})
            .to_string(),
        )
        .await;
    r.assert_ok("");
    rx.script(&[500, 500, 500, 500]);
    app.publish("P", "t", &["Mg=="]).await;
    let mut at = rx.wait_for(5).await[4].at;
    for (k, step) in [(6, 1000), (7, 2000), (8, 3000), (9, 3000)] {
        let next = app.clock.next_sleeper().await;
        let waited = (next.nanos() - at.nanos()) / 1_000_000;
        assert!(
            (step / 2..=step).contains(&waited),
            "attempt {k}: waited {waited} ms"
        );
        app.clock.set(next);
        at = rx.wait_for(k).await[k - 1].at;
    }
    wait_offset(&app, "s", 2).await;
}

#[tokio::test]
async fn endpoint_down_then_up_loses_nothing_and_keeps_order() {
    let app = push_app().await;
    let mut rx = Receiver::start(&app.clock).await;
    verified_sub(
        &app,
        &rx,
        "s",
        json!({"maxMessages": 2, "retryPolicy": {"type": "exponential", "minBackoff": 100, "maxBackoff": 100}}),
    )
    .await;
    rx.stop().await;
    let data: Vec<String> = (0..7).map(|i| format!("bSN7{i}")).collect();
    let refs: Vec<&str> = data.iter().map(String::as_str).collect();
    app.publish("P", "t", &refs).await;
    // Deliveries fail while it is down: the status says why.
    let failed = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let v = app.get("/v1/projects/P/subscriptions/s").await.json();
            if v["pushStatus"]
                .as_str()
                .unwrap()
                .contains("Could not send message")
            {
                return;
            }
            let t = app.clock.next_sleeper().await;
            app.clock.set(t);
        }
    })
    .await;
    assert!(failed.is_ok());
    rx.restart().await;
    let got = rx.pump(&app.clock, 4).await;
    let ids: Vec<String> = got
        .iter()
        .flat_map(|d| {
            d.json()["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["message"]["messageId"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(ids, ["0", "1", "2", "3", "4", "5", "6"]);
    wait_offset(&app, "s", 7).await;
}

#[tokio::test]
async fn https_endpoint_with_a_trusted_private_ca() {
    let tls = Tls::self_signed();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &tls.ca_pem).unwrap();
    let app = spawn_with(|c| {
        c.push.enabled = true;
        c.push.ca_files = vec![ca.clone()];
    })
    .await;
    let rx = Receiver::start_tls(&app.clock, tls).await;
    assert!(rx.base.starts_with("https://127.0.0.1:"));
    verified_sub(
        &app,
        &rx,
        "s",
        json!({"retryPolicy": {"type": "exponential"}}),
    )
    .await;
    app.publish("P", "t", &["c2VjdXJl"]).await;
    let got = rx.wait_for(1).await;
    assert_eq!(got[0].json()["message"]["data"], "c2VjdXJl");

    // Without the CA, verification fails with the TLS error.
    let untrusted = push_app().await;
    let tls2 = Tls::self_signed();
    let rx2 = Receiver::start_tls(&untrusted.clock, tls2).await;
    push_sub(
        &untrusted,
        "s",
        json!({"type": "http_endpoint", "pushEndpoint": rx2.url("/push")}),
    )
    .await;
    let r = untrusted
        .post("/v1/projects/P/subscriptions/s:verifyPushEndpoint", "")
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with("Endpoint verification failed.") && message.contains("certificate"),
        "{message}"
    );
}

#[tokio::test]
async fn pull_subscriptions_dead_letter_a_message_pulled_too_often_without_ack() {
    let app = spawn_app().await;
    app.setup("P", "t", "other").await;
    app.put("/v1/projects/P/topics/dlt", "").await;
    let r = app
        .put(
            "/v1/projects/P/subscriptions/dlq-reader",
            r#"{"topic":"projects/P/topics/dlt"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app
        .put(
            "/v1/projects/P/subscriptions/s",
            r#"{"topic":"projects/P/topics/t","deadLetterPolicy":{"deadLetterTopic":"projects/P/topics/dlt","maxDeliveryAttempts":2}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["deadLetterPolicy"],
        json!({"deadLetterTopic": "projects/P/topics/dlt", "maxDeliveryAttempts": 2})
    );
    app.post(
        "/v1/projects/P/topics/t:publish",
        r#"{"messages":[{"attributes":{"a":"1"},"data":"cG9pc29u"},{"data":"Z29vZA=="}]}"#,
    )
    .await;
    // Three deliveries of message 0 without an acknowledgement; pulls within
    // the ack deadline (consumers side by side) are no failures yet...
    for _ in 0..3 {
        let (acks, _) = app.pull("P", "s", 1).await;
        assert_eq!(acks, ["projects/P/subscriptions/s:0"]);
    }
    // ...but once the deadline passed, the next pull skips it to the dead-letter topic.
    app.clock.advance_secs(11);
    let (acks, datas) = app.pull("P", "s", 1).await;
    assert_eq!(
        (acks[0].as_str(), datas[0].as_str()),
        ("projects/P/subscriptions/s:1", "Z29vZA==")
    );
    app.ack("P", "s", &[&acks[0]]).await.assert_ok("{}");
    let r = app
        .post(
            "/v1/projects/P/subscriptions/dlq-reader:pull",
            r#"{"maxMessages":"10"}"#,
        )
        .await;
    let v = r.json();
    let got = &v["receivedMessages"].as_array().unwrap()[0]["message"];
    assert_eq!(got["data"], "cG9pc29u");
    let attrs = &got["attributes"];
    assert_eq!(attrs["a"], "1");
    assert_eq!(
        attrs["deadLetterSourceSubscription"],
        "/projects/P/subscriptions/s"
    );
    assert_eq!(attrs["deadLetterSourceMessageId"], "0");
    assert_eq!(attrs["deadLetterDeliveryAttempts"], "3");
    assert_eq!(
        attrs["deadLetterReason"],
        "not acknowledged after 3 deliveries"
    );
    assert_eq!(v["receivedMessages"].as_array().unwrap().len(), 1);
}
