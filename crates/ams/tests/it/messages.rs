//! The message flow (contract §6, §12): publish, pull, acknowledge, ack deadlines,
//! offsets, modifyOffset, timeToOffset and lifecycle interactions.

use std::time::{Duration, Instant};

use ams_types::Timestamp;
use serde_json::{Value, json};

use crate::helpers::{JSON, START, TestApp, spawn_app, spawn_with};

const SUB: &str = "/v1/projects/ARGO/subscriptions/s1";
const PUBLISH: &str = "/v1/projects/ARGO/topics/t1:publish";
const EMPTY_PULL: &str = "{\n   \"receivedMessages\": []\n}";

fn ack_id(n: u64) -> String {
    format!("projects/ARGO/subscriptions/s1:{n}")
}

async fn ready() -> TestApp {
    let app = spawn_app().await;
    app.setup("ARGO", "t1", "s1").await;
    app
}

async fn pull_body(app: &TestApp, body: &str) -> Value {
    let r = app.post(&format!("{SUB}:pull"), body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn datas(v: &Value) -> Vec<String> {
    v["receivedMessages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"]["data"].as_str().unwrap().to_owned())
        .collect()
}

// ------------------------------------------------------------------ publish --

#[tokio::test]
async fn publish_answers_the_ids_indented() {
    let app = ready().await;
    let r = app
        .post(
            PUBLISH,
            r#"{"messages":[{"data":"YQ=="},{"attributes":{"k":"v"},"data":"Yg=="}]}"#,
        )
        .await;
    r.assert_ok("{\n   \"messageIds\": [\n      \"0\",\n      \"1\"\n   ]\n}");
    assert_eq!(r.content_type(), JSON);
}

#[tokio::test]
async fn ids_are_dense_offsets_across_batches() {
    let app = ready().await;
    assert_eq!(app.publish("ARGO", "t1", &["a", "b"]).await, ["0", "1"]);
    assert_eq!(app.publish("ARGO", "t1", &["c"]).await, ["2"]);
    assert_eq!(
        app.publish("ARGO", "t1", &["d", "e", "f"]).await,
        ["3", "4", "5"]
    );
    assert_eq!(app.offsets("ARGO", "s1").await, (6, 0, 0));
}

#[tokio::test]
async fn ids_are_per_topic() {
    let app = ready().await;
    app.put("/v1/projects/ARGO/topics/t2", "").await;
    assert_eq!(app.publish("ARGO", "t1", &["a", "b"]).await, ["0", "1"]);
    assert_eq!(app.publish("ARGO", "t2", &["x"]).await, ["0"]);
}

#[tokio::test]
async fn publishing_no_messages() {
    let app = ready().await;
    for body in [
        "{}",
        r#"{"messages":[]}"#,
        r#"{"messages":null}"#,
        r#"{"other":1}"#,
    ] {
        app.post(PUBLISH, body)
            .await
            .assert_ok("{\n   \"messageIds\": []\n}");
    }
    assert_eq!(app.publish("ARGO", "t1", &["first"]).await, ["0"]);
}

#[tokio::test]
async fn publish_missing_topic_beats_a_bad_body() {
    let app = ready().await;
    for body in ["", "garbage", r#"{"messages":[{"data":"x"}]}"#] {
        let r = app
            .post("/v1/projects/ARGO/topics/nope:publish", body)
            .await;
        r.assert_error(404, "Topic doesn't exist", "NOT_FOUND");
        assert_eq!(r.content_type(), JSON);
    }
}

#[tokio::test]
async fn publish_body_errors_publish_nothing() {
    let app = ready().await;
    for body in [
        "",
        "garbage",
        r#"{"messages":"x"}"#,
        r#"{"messages":{"data":"x"}}"#,
        r#"{"messages":[{"data":5}]}"#,
        r#"{"messages":[{"data":"x","attributes":{"a":1}}]}"#,
        r#"{"messages":[{"data":"x","attributes":[{"key":"a","value":"b"}]}]}"#,
        r#"{"messages":[{"data":"ok"},{"data":"x","attributes":{"a":true}}]}"#,
        r#"{"messages":[{"data":"x","messageId":5}]}"#,
    ] {
        let r = app.post(PUBLISH, body).await;
        r.assert_error(400, "Invalid Message Arguments", "INVALID_ARGUMENT");
        assert_eq!(r.content_type(), JSON, "{body}");
    }
    assert_eq!(app.offsets("ARGO", "s1").await, (0, 0, 0));
}

#[tokio::test]
async fn client_message_id_and_publish_time_are_ignored() {
    let app = ready().await;
    let r = app
        .post(
            PUBLISH,
            r#"{"messages":[{"messageId":"77","publishTime":"2000-01-01T00:00:00Z","data":"d"}]}"#,
        )
        .await;
    r.assert_ok("{\n   \"messageIds\": [\n      \"0\"\n   ]\n}");
    let v = pull_body(&app, "{}").await;
    assert_eq!(v["receivedMessages"][0]["message"]["messageId"], "0");
    assert_eq!(
        v["receivedMessages"][0]["message"]["publishTime"],
        "2024-01-01T10:00:00Z"
    );
}

#[tokio::test]
async fn oversized_message_publishes_nothing_of_the_batch() {
    let app = ready().await;
    let big = "x".repeat(1_500_000);
    let body = json!({"messages": [{"data": "small"}, {"data": big}]}).to_string();
    let r = app.post(PUBLISH, &body).await;
    r.assert_error(413, "Message size is too large", "INVALID_ARGUMENT");
    assert_eq!(r.content_type(), JSON);
    assert_eq!(app.offsets("ARGO", "s1").await, (0, 0, 0));
    assert_eq!(app.publish("ARGO", "t1", &["next"]).await, ["0"]);
    let (_, data) = app.pull("ARGO", "s1", 10).await;
    assert_eq!(data, ["next"]);
}

#[tokio::test]
async fn message_size_counts_attributes() {
    let app = ready().await;
    let data = "x".repeat(1_499_000);
    let ok = json!({"messages": [{"data": data}]}).to_string();
    app.post(PUBLISH, &ok)
        .await
        .assert_ok("{\n   \"messageIds\": [\n      \"0\"\n   ]\n}");
    let too_big =
        json!({"messages": [{"data": data, "attributes": {"k": "v".repeat(1000)}}]}).to_string();
    app.post(PUBLISH, &too_big).await.assert_error(
        413,
        "Message size is too large",
        "INVALID_ARGUMENT",
    );
    assert_eq!(app.offsets("ARGO", "s1").await.0, 1);
}

// --------------------------------------------------------------------- pull --

#[tokio::test]
async fn pull_exact_body() {
    let app = ready().await;
    app.post(
        PUBLISH,
        r#"{"messages":[{"attributes":{"foo":"bar"},"data":"YmFzZTY0ZW5jb2RlZA=="},{"data":"bm8gYXR0cnM="}]}"#,
    )
    .await;
    let r = app
        .post(&format!("{SUB}:pull"), r#"{"maxMessages":"2"}"#)
        .await;
    r.assert_ok(
        "{\n   \"receivedMessages\": [\n      {\n         \"ackId\": \"projects/ARGO/subscriptions/s1:0\",\n         \"message\": {\n            \"messageId\": \"0\",\n            \"attributes\": {\n               \"foo\": \"bar\"\n            },\n            \"data\": \"YmFzZTY0ZW5jb2RlZA==\",\n            \"publishTime\": \"2024-01-01T10:00:00Z\"\n         }\n      },\n      {\n         \"ackId\": \"projects/ARGO/subscriptions/s1:1\",\n         \"message\": {\n            \"messageId\": \"1\",\n            \"data\": \"bm8gYXR0cnM=\",\n            \"publishTime\": \"2024-01-01T10:00:00Z\"\n         }\n      }\n   ]\n}",
    );
    assert_eq!(r.content_type(), JSON);
}

#[tokio::test]
async fn pull_with_nothing_to_read() {
    let app = ready().await;
    let r = app.post(&format!("{SUB}:pull"), "{}").await;
    r.assert_ok(EMPTY_PULL);
    assert_eq!(r.content_type(), JSON);
}

#[tokio::test]
async fn publish_time_trims_the_fraction() {
    let app = ready().await;
    app.clock.advance_millis(500);
    app.publish("ARGO", "t1", &["half"]).await;
    app.clock.set(Timestamp::from_nanos(
        START * 1_000_000_000 + 61_786_127_994,
    ));
    app.publish("ARGO", "t1", &["nanos"]).await;
    app.clock.set(Timestamp::from_secs(START + 3600));
    app.publish("ARGO", "t1", &["whole"]).await;
    let v = pull_body(&app, r#"{"maxMessages":"3"}"#).await;
    let times: Vec<&str> = v["receivedMessages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"]["publishTime"].as_str().unwrap())
        .collect();
    assert_eq!(
        times,
        [
            "2024-01-01T10:00:00.5Z",
            "2024-01-01T10:01:01.786127994Z",
            "2024-01-01T11:00:00Z"
        ]
    );
}

#[tokio::test]
async fn attributes_are_sorted_escaped_and_round_trip() {
    let app = ready().await;
    let value = r#"he said "hi" <b>&amp;</b> \ end"#;
    let body = json!({"messages": [{
        "attributes": {"zeta": "1", "alpha": value, "Key": "v"},
        "data": "<p>&</p>"
    }]})
    .to_string();
    assert_eq!(app.post(PUBLISH, &body).await.status, 200);
    let r = app.post(&format!("{SUB}:pull"), "{}").await;
    assert!(
        r.body.contains(
            "\"attributes\": {\n               \"Key\": \"v\",\n               \"alpha\": \"he said \\\"hi\\\" \\u003cb\\u003e\\u0026amp;\\u003c/b\\u003e \\\\ end\",\n               \"zeta\": \"1\"\n            },\n            \"data\": \"\\u003cp\\u003e\\u0026\\u003c/p\\u003e\","
        ),
        "{}",
        r.body
    );
    let v = r.json();
    let m = &v["receivedMessages"][0]["message"];
    assert_eq!(m["attributes"]["alpha"], value);
    assert_eq!(m["data"], "<p>&</p>");
    // A quote in an attribute does not wedge the subscription.
    app.publish("ARGO", "t1", &["after"]).await;
    let (acks, data) = app.pull("ARGO", "s1", 5).await;
    assert_eq!(data, ["<p>&</p>", "after"]);
    app.ack("ARGO", "s1", &[&acks[1]]).await.assert_ok("{}");
}

#[tokio::test]
async fn empty_attributes_are_omitted_and_line_separators_escaped() {
    let app = ready().await;
    let body = json!({"messages": [{"attributes": {}, "data": "a\u{2028}b\u{2029}"}]}).to_string();
    assert_eq!(app.post(PUBLISH, &body).await.status, 200);
    let r = app.post(&format!("{SUB}:pull"), "{}").await;
    assert!(
        r.body.contains(
            "\"message\": {\n            \"messageId\": \"0\",\n            \"data\": \"a\\u2028b\\u2029\","
        ),
        "{}",
        r.body
    );
    assert_eq!(
        r.json()["receivedMessages"][0]["message"]["data"],
        "a\u{2028}b\u{2029}"
    );
}

#[tokio::test]
async fn data_is_opaque() {
    let app = ready().await;
    let payloads = ["msg 1", "not base64 !!", "", "héllo ✓", "{\"json\":true}"];
    app.publish("ARGO", "t1", &payloads).await;
    let (_, data) = app.pull("ARGO", "s1", 10).await;
    assert_eq!(data, payloads);
}

#[tokio::test]
async fn pull_missing_subscription_beats_a_bad_body() {
    let app = ready().await;
    for body in ["", r#"{"maxMessages":5}"#] {
        let r = app
            .post("/v1/projects/ARGO/subscriptions/nope:pull", body)
            .await;
        r.assert_error(404, "Subscription doesn't exist", "NOT_FOUND");
        assert_eq!(r.content_type(), JSON);
    }
}

#[tokio::test]
async fn pull_body_errors() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a"]).await;
    for body in [
        "",
        "nope",
        "[]",
        r#"{"maxMessages":10}"#,
        r#"{"returnImmediately":true}"#,
        r#"{"returnImmediately":false}"#,
        r#"{"maxMessages":["1"]}"#,
    ] {
        let r = app.post(&format!("{SUB}:pull"), body).await;
        r.assert_error(400, "Invalid Pull Parameters Arguments", "INVALID_ARGUMENT");
        assert_eq!(r.content_type(), JSON);
    }
    // None of the failures counted as a pull.
    app.ack("ARGO", "s1", &[&ack_id(0)]).await.assert_error(
        500,
        "no ack pending",
        "INTERNAL_SERVER_ERROR",
    );
}

#[tokio::test]
async fn pull_after_topic_deletion_is_a_conflict_before_the_body_check() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a"]).await;
    app.delete("/v1/projects/ARGO/topics/t1")
        .await
        .assert_ok("");
    for body in ["{}", "", r#"{"maxMessages":1}"#] {
        let r = app.post(&format!("{SUB}:pull"), body).await;
        r.assert_error(409, "Subscription's topic doesn't exist", "CONFLICT");
        assert_eq!(r.content_type(), JSON);
    }
}

#[tokio::test]
async fn max_messages_parsing() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["0", "1", "2", "3", "4"]).await;
    for (body, n) in [
        ("{}", 1),
        (r#"{"maxMessages":"0"}"#, 1),
        (r#"{"maxMessages":"-1"}"#, 1),
        (r#"{"maxMessages":"abc"}"#, 1),
        (r#"{"maxMessages":""}"#, 1),
        (r#"{"maxMessages":null}"#, 1),
        (r#"{"maxMessages":"3"}"#, 3),
        (r#"{"maxMessages":"100"}"#, 5),
        (r#"{"MaxMessages":"2"}"#, 2),
        (r#"{"maxMessages":"1","maxMessages":"4"}"#, 4),
    ] {
        let v = pull_body(&app, body).await;
        let expected: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        assert_eq!(datas(&v), expected, "{body}");
    }
}

#[tokio::test]
async fn pull_never_moves_the_cursor() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a", "b", "c"]).await;
    let first = app
        .post(&format!("{SUB}:pull"), r#"{"maxMessages":"2"}"#)
        .await;
    let again = app
        .post(&format!("{SUB}:pull"), r#"{"maxMessages":"2"}"#)
        .await;
    assert_eq!(first.status, 200);
    again.assert_ok(&first.body);
    assert_eq!(app.offsets("ARGO", "s1").await, (3, 0, 0));
    // A bigger pull returns the same messages and more.
    let (acks, data) = app.pull("ARGO", "s1", 10).await;
    assert_eq!(data, ["a", "b", "c"]);
    assert_eq!(acks, [ack_id(0), ack_id(1), ack_id(2)]);
}

#[tokio::test]
async fn new_subscription_starts_at_the_topic_end() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["old1", "old2"]).await;
    app.put(
        "/v1/projects/ARGO/subscriptions/late",
        r#"{"topic":"projects/ARGO/topics/t1"}"#,
    )
    .await;
    assert_eq!(app.offsets("ARGO", "late").await, (2, 0, 2));
    let r = app
        .post("/v1/projects/ARGO/subscriptions/late:pull", "{}")
        .await;
    r.assert_ok(EMPTY_PULL);
    app.publish("ARGO", "t1", &["new"]).await;
    let (acks, data) = app.pull("ARGO", "late", 10).await;
    assert_eq!(data, ["new"]);
    assert_eq!(acks, ["projects/ARGO/subscriptions/late:2"]);
    // The older subscription still sees everything.
    let (_, data) = app.pull("ARGO", "s1", 10).await;
    assert_eq!(data, ["old1", "old2", "new"]);
}

#[tokio::test]
async fn subscriptions_have_independent_cursors() {
    let app = ready().await;
    app.put(
        "/v1/projects/ARGO/subscriptions/s2",
        r#"{"topic":"projects/ARGO/topics/t1"}"#,
    )
    .await;
    app.publish("ARGO", "t1", &["a", "b"]).await;
    let (acks, _) = app.pull("ARGO", "s1", 2).await;
    app.ack("ARGO", "s1", &[&acks[1]]).await.assert_ok("{}");
    let (acks2, data) = app.pull("ARGO", "s2", 2).await;
    assert_eq!(data, ["a", "b"]);
    assert_eq!(acks2[0], "projects/ARGO/subscriptions/s2:0");
    // An ack id of another subscription is malformed here.
    app.ack("ARGO", "s2", &[&ack_id(0)]).await.assert_error(
        400,
        "Invalid ack id",
        "INVALID_ARGUMENT",
    );
    assert_eq!(app.offsets("ARGO", "s1").await, (2, 0, 2));
    assert_eq!(app.offsets("ARGO", "s2").await, (2, 0, 0));
}

// ---------------------------------------------------------- acknowledgement --

#[tokio::test]
async fn ack_answers_literal_braces_and_moves_the_cursor() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a", "b", "c"]).await;
    app.pull("ARGO", "s1", 1).await;
    let r = app.ack("ARGO", "s1", &[&ack_id(0)]).await;
    r.assert_ok("{}");
    assert_eq!(r.content_type(), JSON);
    assert_eq!(app.offsets("ARGO", "s1").await, (3, 0, 1));
    let (_, data) = app.pull("ARGO", "s1", 10).await;
    assert_eq!(data, ["b", "c"]);
}

#[tokio::test]
async fn ack_is_cumulative_on_the_highest_id() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a", "b", "c", "d"]).await;
    app.pull("ARGO", "s1", 3).await;
    app.ack("ARGO", "s1", &[&ack_id(2), &ack_id(0)])
        .await
        .assert_ok("{}");
    let (acks, data) = app.pull("ARGO", "s1", 10).await;
    assert_eq!(data, ["d"]);
    assert_eq!(acks, [ack_id(3)]);
}

#[tokio::test]
async fn acking_a_lower_id_redelivers_the_rest() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a", "b", "c"]).await;
    app.pull("ARGO", "s1", 3).await;
    app.ack("ARGO", "s1", &[&ack_id(0)]).await.assert_ok("{}");
    let (acks, data) = app.pull("ARGO", "s1", 10).await;
    assert_eq!(data, ["b", "c"]);
    assert_eq!(acks, [ack_id(1), ack_id(2)]);
}

#[tokio::test]
async fn double_ack_is_no_ack_pending() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a", "b"]).await;
    app.pull("ARGO", "s1", 2).await;
    app.ack("ARGO", "s1", &[&ack_id(1)]).await.assert_ok("{}");
    let r = app.ack("ARGO", "s1", &[&ack_id(1)]).await;
    r.assert_error(500, "no ack pending", "INTERNAL_SERVER_ERROR");
    assert_eq!(r.content_type(), JSON);
}

#[tokio::test]
async fn ack_without_a_pull_is_no_ack_pending() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a"]).await;
    app.ack("ARGO", "s1", &[&ack_id(0)]).await.assert_error(
        500,
        "no ack pending",
        "INTERNAL_SERVER_ERROR",
    );
    assert_eq!(app.offsets("ARGO", "s1").await, (1, 0, 0));
}

#[tokio::test]
async fn ack_beyond_the_latest_pull_is_wrong_ack() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a", "b", "c"]).await;
    app.pull("ARGO", "s1", 1).await;
    app.ack("ARGO", "s1", &[&ack_id(1)]).await.assert_error(
        500,
        "wrong ack",
        "INTERNAL_SERVER_ERROR",
    );
    // An id from an older, longer pull after a newer, shorter one.
    app.pull("ARGO", "s1", 3).await;
    app.pull("ARGO", "s1", 1).await;
    app.ack("ARGO", "s1", &[&ack_id(2)]).await.assert_error(
        500,
        "wrong ack",
        "INTERNAL_SERVER_ERROR",
    );
    // The refusals changed nothing; the pending pull can still be acked.
    app.ack("ARGO", "s1", &[&ack_id(0)]).await.assert_ok("{}");
    assert_eq!(app.offsets("ARGO", "s1").await, (3, 0, 1));
}

#[tokio::test]
async fn ack_of_an_already_acknowledged_id_is_wrong_ack() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a", "b", "c"]).await;
    app.pull("ARGO", "s1", 2).await;
    app.ack("ARGO", "s1", &[&ack_id(1)]).await.assert_ok("{}");
    app.pull("ARGO", "s1", 1).await;
    app.ack("ARGO", "s1", &[&ack_id(1)]).await.assert_error(
        500,
        "wrong ack",
        "INTERNAL_SERVER_ERROR",
    );
    app.ack("ARGO", "s1", &[&ack_id(0)]).await.assert_error(
        500,
        "wrong ack",
        "INTERNAL_SERVER_ERROR",
    );
    app.ack("ARGO", "s1", &[&ack_id(2)]).await.assert_ok("{}");
}

#[tokio::test]
async fn empty_pull_at_offset_zero_leaves_nothing_pending() {
    let app = ready().await;
    app.post(&format!("{SUB}:pull"), "{}")
        .await
        .assert_ok(EMPTY_PULL);
    app.ack("ARGO", "s1", &[&ack_id(0)]).await.assert_error(
        500,
        "no ack pending",
        "INTERNAL_SERVER_ERROR",
    );
}

#[tokio::test]
async fn empty_pull_past_zero_makes_acks_wrong() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a"]).await;
    app.pull("ARGO", "s1", 1).await;
    app.ack("ARGO", "s1", &[&ack_id(0)]).await.assert_ok("{}");
    app.post(&format!("{SUB}:pull"), "{}")
        .await
        .assert_ok(EMPTY_PULL);
    for id in [0, 1] {
        app.ack("ARGO", "s1", &[&ack_id(id)]).await.assert_error(
            500,
            "wrong ack",
            "INTERNAL_SERVER_ERROR",
        );
    }
}

#[tokio::test]
async fn ack_at_exactly_the_deadline_is_accepted() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a"]).await;
    app.pull("ARGO", "s1", 1).await;
    app.clock.advance_secs(10);
    app.ack("ARGO", "s1", &[&ack_id(0)]).await.assert_ok("{}");
}

#[tokio::test]
async fn ack_after_the_deadline_times_out_and_changes_nothing() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a", "b"]).await;
    app.pull("ARGO", "s1", 2).await;
    app.clock.advance_secs(11);
    let r = app.ack("ARGO", "s1", &[&ack_id(1)]).await;
    r.assert_error(408, "ack timeout", "TIMEOUT");
    assert_eq!(r.content_type(), JSON);
    assert_eq!(app.offsets("ARGO", "s1").await, (2, 0, 0));
    app.ack("ARGO", "s1", &[&ack_id(0)])
        .await
        .assert_error(408, "ack timeout", "TIMEOUT");
    // A new pull redelivers and restarts the clock.
    let (_, data) = app.pull("ARGO", "s1", 2).await;
    assert_eq!(data, ["a", "b"]);
    app.clock.advance_secs(5);
    app.ack("ARGO", "s1", &[&ack_id(1)]).await.assert_ok("{}");
}

#[tokio::test]
async fn the_deadline_counts_whole_seconds() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a"]).await;
    // Pulled at 10:00:00.900, acked at 10:00:10.999: ten whole seconds.
    app.clock.advance_millis(900);
    app.pull("ARGO", "s1", 1).await;
    app.clock.advance_millis(10_099);
    app.ack("ARGO", "s1", &[&ack_id(0)]).await.assert_ok("{}");
    // Pulled at 10:00:10.999, acked at 10:00:21.000: only 10.001 s later, but
    // second 21 minus second 10 is eleven.
    app.publish("ARGO", "t1", &["b"]).await;
    app.pull("ARGO", "s1", 1).await;
    app.clock.advance_millis(10_001);
    app.ack("ARGO", "s1", &[&ack_id(1)])
        .await
        .assert_error(408, "ack timeout", "TIMEOUT");
}

#[tokio::test]
async fn state_errors_are_checked_before_the_deadline() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a", "b"]).await;
    app.ack("ARGO", "s1", &[&ack_id(0)]).await.assert_error(
        500,
        "no ack pending",
        "INTERNAL_SERVER_ERROR",
    );
    app.pull("ARGO", "s1", 1).await;
    app.clock.advance_secs(60);
    app.ack("ARGO", "s1", &[&ack_id(1)]).await.assert_error(
        500,
        "wrong ack",
        "INTERNAL_SERVER_ERROR",
    );
    app.ack("ARGO", "s1", &[&ack_id(0)])
        .await
        .assert_error(408, "ack timeout", "TIMEOUT");
}

#[tokio::test]
async fn a_repeated_pull_restarts_the_deadline() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a"]).await;
    app.pull("ARGO", "s1", 1).await;
    app.clock.advance_secs(8);
    app.pull("ARGO", "s1", 1).await;
    app.clock.advance_secs(8);
    app.ack("ARGO", "s1", &[&ack_id(0)]).await.assert_ok("{}");
}

#[tokio::test]
async fn custom_deadline_from_create() {
    let app = ready().await;
    app.put(
        "/v1/projects/ARGO/subscriptions/slow",
        r#"{"topic":"projects/ARGO/topics/t1","ackDeadlineSeconds":60}"#,
    )
    .await;
    app.publish("ARGO", "t1", &["a"]).await;
    app.pull("ARGO", "slow", 1).await;
    app.clock.advance_secs(45);
    app.ack("ARGO", "slow", &["projects/ARGO/subscriptions/slow:0"])
        .await
        .assert_ok("{}");
}

#[tokio::test]
async fn modify_ack_deadline_applies_to_the_pending_pull() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a", "b"]).await;
    app.pull("ARGO", "s1", 1).await;
    app.post(
        &format!("{SUB}:modifyAckDeadline"),
        r#"{"ackDeadlineSeconds":30}"#,
    )
    .await
    .assert_ok("");
    app.clock.advance_secs(25);
    app.ack("ARGO", "s1", &[&ack_id(0)]).await.assert_ok("{}");
    // Shortening works too.
    app.pull("ARGO", "s1", 1).await;
    app.post(
        &format!("{SUB}:modifyAckDeadline"),
        r#"{"ackDeadlineSeconds":0}"#,
    )
    .await
    .assert_ok("");
    app.clock.advance_secs(1);
    app.ack("ARGO", "s1", &[&ack_id(1)])
        .await
        .assert_error(408, "ack timeout", "TIMEOUT");
}

#[tokio::test]
async fn ack_deadline_zero_needs_the_same_second() {
    let app = ready().await;
    app.post(
        &format!("{SUB}:modifyAckDeadline"),
        r#"{"ackDeadlineSeconds":0}"#,
    )
    .await
    .assert_ok("");
    app.publish("ARGO", "t1", &["a"]).await;
    app.pull("ARGO", "s1", 1).await;
    app.clock.advance_millis(900);
    app.ack("ARGO", "s1", &[&ack_id(0)]).await.assert_ok("{}");
}

#[tokio::test]
async fn ack_body_errors_come_before_the_subscription_check() {
    let app = ready().await;
    for body in ["", "x", r#"{"ackIds":"a"}"#, r#"{"ackIds":[1]}"#, "[]"] {
        for sub in ["s1", "nope"] {
            let r = app
                .post(
                    &format!("/v1/projects/ARGO/subscriptions/{sub}:acknowledge"),
                    body,
                )
                .await;
            r.assert_error(400, "Invalid ack parameter", "INVALID_ARGUMENT");
            assert_eq!(r.content_type(), JSON);
        }
    }
    // A decodable body on a missing subscription is a 404, even without ids.
    for body in ["{}", r#"{"ackIds":["projects/ARGO/subscriptions/nope:0"]}"#] {
        app.post("/v1/projects/ARGO/subscriptions/nope:acknowledge", body)
            .await
            .assert_error(404, "Subscription doesn't exist", "NOT_FOUND");
    }
}

#[tokio::test]
async fn malformed_ack_ids() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a", "b"]).await;
    app.pull("ARGO", "s1", 2).await;
    for body in [
        "{}".to_owned(),
        r#"{"ackIds":null}"#.to_owned(),
        r#"{"ackIds":[]}"#.to_owned(),
        json!({"ackIds": ["projects/OTHER/subscriptions/s1:0"]}).to_string(),
        json!({"ackIds": ["projects/ARGO/subscriptions/s2:0"]}).to_string(),
        json!({"ackIds": ["/projects/ARGO/subscriptions/s1:0"]}).to_string(),
        json!({"ackIds": ["projects/ARGO/subscriptions/s1"]}).to_string(),
        json!({"ackIds": ["projects/ARGO/subscriptions/s1:x"]}).to_string(),
        json!({"ackIds": ["projects/ARGO/subscriptions/s1:1:2"]}).to_string(),
        json!({"ackIds": ["projects/ARGO/topics/s1:0"]}).to_string(),
        json!({"ackIds": ["projects/ARGO/subscriptions/s1:-1"]}).to_string(),
        // One bad id spoils the lot.
        json!({"ackIds": [ack_id(0), "garbage"]}).to_string(),
    ] {
        let r = app.post(&format!("{SUB}:acknowledge"), &body).await;
        r.assert_error(400, "Invalid ack id", "INVALID_ARGUMENT");
        assert_eq!(r.content_type(), JSON, "{body}");
    }
    // The pending pull is intact.
    app.ack("ARGO", "s1", &[&ack_id(1)]).await.assert_ok("{}");
}

#[tokio::test]
async fn negative_ids_are_ignored_next_to_valid_ones() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a", "b"]).await;
    app.pull("ARGO", "s1", 2).await;
    app.ack(
        "ARGO",
        "s1",
        &["projects/ARGO/subscriptions/s1:-5", &ack_id(0)],
    )
    .await
    .assert_ok("{}");
    assert_eq!(app.offsets("ARGO", "s1").await, (2, 0, 1));
}

#[tokio::test]
async fn ack_keys_are_case_insensitive() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a"]).await;
    app.pull("ARGO", "s1", 1).await;
    app.post(
        &format!("{SUB}:acknowledge"),
        &format!(r#"{{"ACKIDS":["{}"]}}"#, ack_id(0)),
    )
    .await
    .assert_ok("{}");
}

// ------------------------------------------------------------------ offsets --

#[tokio::test]
async fn offsets_exact_body() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a", "b", "c"]).await;
    app.pull("ARGO", "s1", 1).await;
    app.ack("ARGO", "s1", &[&ack_id(0)]).await;
    let r = app.get(&format!("{SUB}:offsets")).await;
    r.assert_ok("{\n   \"max\": 3,\n   \"min\": 0,\n   \"current\": 1\n}");
    assert_eq!(r.content_type(), JSON);
}

#[tokio::test]
async fn offsets_of_a_missing_subscription() {
    let app = ready().await;
    app.get("/v1/projects/ARGO/subscriptions/nope:offsets")
        .await
        .assert_error(404, "Subscription doesn't exist", "NOT_FOUND");
}

#[tokio::test]
async fn modify_offset_back_replays() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a", "b", "c"]).await;
    app.pull("ARGO", "s1", 3).await;
    app.ack("ARGO", "s1", &[&ack_id(2)]).await.assert_ok("{}");
    let r = app
        .post(&format!("{SUB}:modifyOffset"), r#"{"offset":1}"#)
        .await;
    r.assert_ok("");
    assert_eq!(r.content_type(), JSON);
    assert_eq!(app.offsets("ARGO", "s1").await, (3, 0, 1));
    let (acks, data) = app.pull("ARGO", "s1", 10).await;
    assert_eq!(data, ["b", "c"]);
    assert_eq!(acks, [ack_id(1), ack_id(2)]);
}

#[tokio::test]
async fn modify_offset_to_max_skips_everything() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a", "b", "c"]).await;
    app.post(&format!("{SUB}:modifyOffset"), r#"{"offset":3}"#)
        .await
        .assert_ok("");
    app.post(&format!("{SUB}:pull"), "{}")
        .await
        .assert_ok(EMPTY_PULL);
    app.publish("ARGO", "t1", &["d"]).await;
    let (_, data) = app.pull("ARGO", "s1", 10).await;
    assert_eq!(data, ["d"]);
}

#[tokio::test]
async fn modify_offset_bounds_are_inclusive_and_refusals_do_not_apply() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a", "b", "c"]).await;
    app.post(&format!("{SUB}:modifyOffset"), r#"{"offset":2}"#)
        .await
        .assert_ok("");
    for offset in ["4", "-1", "1000000"] {
        let r = app
            .post(
                &format!("{SUB}:modifyOffset"),
                &format!(r#"{{"offset":{offset}}}"#),
            )
            .await;
        r.assert_error(400, "Offset out of bounds", "INVALID_ARGUMENT");
        assert_eq!(r.content_type(), JSON);
        assert_eq!(
            app.offsets("ARGO", "s1").await,
            (3, 0, 2),
            "offset {offset}"
        );
    }
    app.post(&format!("{SUB}:modifyOffset"), r#"{"offset":0}"#)
        .await
        .assert_ok("");
    assert_eq!(app.offsets("ARGO", "s1").await, (3, 0, 0));
    app.post(&format!("{SUB}:modifyOffset"), r#"{"offset":3}"#)
        .await
        .assert_ok("");
    assert_eq!(app.offsets("ARGO", "s1").await, (3, 0, 3));
}

#[tokio::test]
async fn modify_offset_body_errors_come_before_the_subscription_check() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a"]).await;
    for body in ["", "x", r#"{"offset":"0"}"#, r#"{"offset":0.5}"#] {
        for sub in ["s1", "nope"] {
            app.post(
                &format!("/v1/projects/ARGO/subscriptions/{sub}:modifyOffset"),
                body,
            )
            .await
            .assert_error(400, "Invalid Offset Arguments", "INVALID_ARGUMENT");
        }
    }
    app.post(
        "/v1/projects/ARGO/subscriptions/nope:modifyOffset",
        r#"{"offset":0}"#,
    )
    .await
    .assert_error(404, "Subscription doesn't exist", "NOT_FOUND");
    // `{}` and null mean offset 0.
    app.post(&format!("{SUB}:modifyOffset"), r#"{"offset":1}"#)
        .await
        .assert_ok("");
    app.post(&format!("{SUB}:modifyOffset"), r#"{"offset":null}"#)
        .await
        .assert_ok("");
    assert_eq!(app.offsets("ARGO", "s1").await, (1, 0, 0));
}

#[tokio::test]
async fn modify_offset_clears_the_pending_ack() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a", "b"]).await;
    app.pull("ARGO", "s1", 2).await;
    app.post(&format!("{SUB}:modifyOffset"), r#"{"offset":0}"#)
        .await
        .assert_ok("");
    app.ack("ARGO", "s1", &[&ack_id(0)]).await.assert_error(
        500,
        "no ack pending",
        "INTERNAL_SERVER_ERROR",
    );
}

// ------------------------------------------------------------- timeToOffset --

/// Publishes `a` at 10:00:00.000, `b`,`c` (one batch) at 10:00:01.500 and `d` at
/// 10:00:02.500.
async fn timeline() -> TestApp {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a"]).await;
    app.clock.advance_millis(1500);
    app.publish("ARGO", "t1", &["b", "c"]).await;
    app.clock.advance_millis(1000);
    app.publish("ARGO", "t1", &["d"]).await;
    app
}

async fn time_to_offset(app: &TestApp, time: &str) -> crate::helpers::Resp {
    app.get(&format!("{SUB}:timeToOffset?time={time}")).await
}

#[tokio::test]
async fn time_to_offset_exact_and_between_matches() {
    let app = timeline().await;
    for (time, offset) in [
        ("2024-01-01T10:00:00.000Z", 0),
        ("2024-01-01T10:00:00.001Z", 1),
        ("2024-01-01T10:00:01.499Z", 1),
        ("2024-01-01T10:00:01.500Z", 1),
        ("2024-01-01T10:00:01.501Z", 3),
        ("2024-01-01T10:00:02.500Z", 3),
    ] {
        let r = time_to_offset(&app, time).await;
        r.assert_ok(&format!(r#"{{"offset":{offset}}}"#));
        assert_eq!(r.content_type(), JSON);
    }
}

#[tokio::test]
async fn time_to_offset_before_everything_is_min() {
    let app = timeline().await;
    for time in [
        "2023-12-31T23:59:59.999Z",
        "2024-01-01T9:00:00.000Z",
        "1970-01-01T00:00:00.000Z",
    ] {
        time_to_offset(&app, time)
            .await
            .assert_ok(r#"{"offset":0}"#);
    }
}

#[tokio::test]
async fn time_to_offset_after_everything_is_a_conflict() {
    let app = timeline().await;
    let r = time_to_offset(&app, "2024-01-01T10:00:02.501Z").await;
    r.assert_error(
        409,
        "Timestamp is out of bounds for the subscription's topic/partition",
        "CONFLICT",
    );
    assert_eq!(r.content_type(), JSON);
}

#[tokio::test]
async fn time_to_offset_is_read_only() {
    let app = timeline().await;
    time_to_offset(&app, "2024-01-01T10:00:01.500Z")
        .await
        .assert_ok(r#"{"offset":1}"#);
    // The subscription was created before any message: still at 0.
    assert_eq!(app.offsets("ARGO", "s1").await, (4, 0, 0));
    app.post(&format!("{SUB}:modifyOffset"), r#"{"offset":1}"#)
        .await
        .assert_ok("");
    let (_, data) = app.pull("ARGO", "s1", 10).await;
    assert_eq!(data, ["b", "c", "d"]);
}

#[tokio::test]
async fn time_to_offset_format_errors() {
    let app = timeline().await;
    for time in [
        "",
        "2024-01-01T10:00:01Z",
        "2024-01-01T10:00:01.5Z",
        "2024-01-01T10:00:01.5000Z",
        "2024-01-01T10:00:01.500",
        "2024-01-01T10:00:01.500%2B01:00",
        "2024-01-01%2010:00:01.500Z",
        "yesterday",
    ] {
        let r = time_to_offset(&app, time).await;
        r.assert_error(400, "Time is not in valid Zulu format.", "INVALID_ARGUMENT");
        assert_eq!(r.content_type(), JSON, "{time}");
    }
    app.get(&format!("{SUB}:timeToOffset")).await.assert_error(
        400,
        "Time is not in valid Zulu format.",
        "INVALID_ARGUMENT",
    );
}

#[tokio::test]
async fn time_to_offset_missing_subscription_comes_first() {
    let app = timeline().await;
    app.get("/v1/projects/ARGO/subscriptions/nope:timeToOffset?time=bad")
        .await
        .assert_error(404, "Subscription doesn't exist", "NOT_FOUND");
}

// --------------------------------------------------------------- lifecycle --

#[tokio::test]
async fn surviving_subscription_of_a_recreated_topic_waits_for_the_log_to_catch_up() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a", "b"]).await;
    app.pull("ARGO", "s1", 2).await;
    app.ack("ARGO", "s1", &[&ack_id(1)]).await.assert_ok("{}");
    app.delete("/v1/projects/ARGO/topics/t1")
        .await
        .assert_ok("");
    app.put("/v1/projects/ARGO/topics/t1", "").await;
    assert_eq!(app.publish("ARGO", "t1", &["n0"]).await, ["0"]);
    app.post(&format!("{SUB}:pull"), r#"{"maxMessages":"10"}"#)
        .await
        .assert_ok(EMPTY_PULL);
    app.publish("ARGO", "t1", &["n1", "n2"]).await;
    let (acks, data) = app.pull("ARGO", "s1", 10).await;
    assert_eq!(data, ["n2"]);
    assert_eq!(acks, [ack_id(2)]);
}

// ---------------------------------------------------------------- long-poll --

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_with_nothing_to_read_times_out_empty() {
    let app = spawn_with(|c| c.long_poll_max = Duration::from_millis(300)).await;
    app.setup("ARGO", "t1", "s1").await;
    let started = Instant::now();
    let r = app
        .post(&format!("{SUB}:pull"), r#"{"returnImmediately":"false"}"#)
        .await;
    let elapsed = started.elapsed();
    r.assert_ok(EMPTY_PULL);
    assert!(
        elapsed >= Duration::from_millis(250),
        "returned after {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "returned after {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_string_false_long_polls() {
    let app = spawn_with(|c| c.long_poll_max = Duration::from_secs(30)).await;
    app.setup("ARGO", "t1", "s1").await;
    for body in [
        "{}",
        r#"{"returnImmediately":"true"}"#,
        r#"{"returnImmediately":"False"}"#,
        r#"{"returnImmediately":""}"#,
    ] {
        let started = Instant::now();
        app.post(&format!("{SUB}:pull"), body)
            .await
            .assert_ok(EMPTY_PULL);
        assert!(started.elapsed() < Duration::from_secs(10), "{body} waited");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_returns_available_messages_without_waiting() {
    let app = spawn_with(|c| c.long_poll_max = Duration::from_secs(30)).await;
    app.setup("ARGO", "t1", "s1").await;
    app.publish("ARGO", "t1", &["here"]).await;
    let started = Instant::now();
    let v = pull_body(&app, r#"{"returnImmediately":"false","maxMessages":"5"}"#).await;
    assert_eq!(datas(&v), ["here"]);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_pull_returns_as_soon_as_a_message_is_published() {
    let app = spawn_with(|c| c.long_poll_max = Duration::from_secs(30)).await;
    app.setup("ARGO", "t1", "s1").await;
    let client = app.client.clone();
    let url = format!("{}{SUB}:pull", app.base);
    let token = app.token.clone();
    let started = Instant::now();
    let waiter = tokio::spawn(async move {
        let resp = client
            .post(url)
            .header("x-api-key", token)
            .body(r#"{"returnImmediately":"false","maxMessages":"5"}"#)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    });
    // A few round trips give the waiting pull a head start (no sleeping).
    for _ in 0..10 {
        app.get(&format!("{SUB}:offsets")).await;
    }
    assert!(!waiter.is_finished(), "the pull did not wait");
    app.publish("ARGO", "t1", &["wake up"]).await;
    let (status, body) = waiter.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(datas(&v), ["wake up"]);
    assert_eq!(v["receivedMessages"][0]["ackId"], ack_id(0));
    // The woken pull is the pending one.
    app.ack("ARGO", "s1", &[&ack_id(0)]).await.assert_ok("{}");
}

// -------------------------------------------------------------- concurrency --

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_get_distinct_contiguous_ids() {
    let app = ready().await;
    let mut tasks = Vec::new();
    for batch in 0..8 {
        let client = app.client.clone();
        let url = format!("{}{PUBLISH}", app.base);
        let token = app.token.clone();
        tasks.push(tokio::spawn(async move {
            let msgs: Vec<Value> = (0..5)
                .map(|i| json!({"data": format!("{batch}-{i}")}))
                .collect();
            let resp = client
                .post(url)
                .header("x-api-key", token)
                .body(json!({ "messages": msgs }).to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            let v: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
            let ids: Vec<u64> = v["messageIds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|id| id.as_str().unwrap().parse().unwrap())
                .collect();
            (batch, ids)
        }));
    }
    let mut all = Vec::new();
    let mut first_ids = std::collections::HashMap::new();
    for t in tasks {
        let (batch, ids) = t.await.unwrap();
        assert_eq!(ids.len(), 5);
        assert!(
            ids.windows(2).all(|w| w[1] == w[0] + 1),
            "batch {batch}: {ids:?}"
        );
        first_ids.insert(ids[0], batch);
        all.extend(ids);
    }
    all.sort_unstable();
    assert_eq!(all, (0..40).collect::<Vec<u64>>());
    // Every id names the message stored at that offset.
    let v = pull_body(&app, r#"{"maxMessages":"40"}"#).await;
    let msgs = v["receivedMessages"].as_array().unwrap();
    assert_eq!(msgs.len(), 40);
    for (offset, batch) in first_ids {
        let m = &msgs[offset as usize]["message"];
        assert_eq!(m["messageId"], offset.to_string());
        assert_eq!(m["data"], format!("{batch}-0"));
    }
}
