//! Subscription management (contract §3.4, §4, §5.7): create, show, list, delete,
//! modifyAckDeadline.

use crate::helpers::{JSON, TestApp, spawn_app};
use crate::topics::urlencode;

fn sub_body(project: &str, name: &str, topic: &str, ack: i64, created: &str) -> String {
    format!(
        "{{\n   \"name\": \"/projects/{project}/subscriptions/{name}\",\n   \"topic\": \"/projects/{project}/topics/{topic}\",\n   \"pushConfig\": {{\n      \"type\": \"\",\n      \"pushEndpoint\": \"\",\n      \"maxMessages\": 0,\n      \"authorizationHeader\": {{}},\n      \"retryPolicy\": {{}},\n      \"verificationHash\": \"\",\n      \"verified\": false,\n      \"mattermostUrl\": \"\",\n      \"mattermostUsername\": \"\",\n      \"mattermostChannel\": \"\",\n      \"base64Decode\": false\n   }},\n   \"ackDeadlineSeconds\": {ack},\n   \"createdOn\": \"{created}\"\n}}"
    )
}

const T0: &str = "2024-01-01T10:00:00Z";
const SUB: &str = "/v1/projects/ARGO/subscriptions/s1";

async fn with_topic() -> TestApp {
    let app = spawn_app().await;
    assert_eq!(app.post("/v1/projects/ARGO", "{}").await.status, 200);
    assert_eq!(app.put("/v1/projects/ARGO/topics/t1", "").await.status, 200);
    app
}

#[tokio::test]
async fn create_pull_subscription_exact_body() {
    let app = with_topic().await;
    app.clock.advance_secs(2);
    let r = app.put(SUB, r#"{"topic":"projects/ARGO/topics/t1"}"#).await;
    r.assert_ok(&sub_body("ARGO", "s1", "t1", 10, "2024-01-01T10:00:02Z"));
    assert_eq!(r.content_type(), JSON);
    app.clock.advance_secs(2);
    app.get(SUB)
        .await
        .assert_ok(&sub_body("ARGO", "s1", "t1", 10, "2024-01-01T10:00:02Z"));
}

#[tokio::test]
async fn ack_deadline_on_create_is_not_range_checked() {
    let app = with_topic().await;
    for (name, given, stored) in [
        ("a", "30", 30),
        ("b", "0", 10),
        ("c", "-5", -5),
        ("d", "700", 700),
    ] {
        let body = format!(r#"{{"topic":"projects/ARGO/topics/t1","ackDeadlineSeconds":{given}}}"#);
        app.put(&format!("/v1/projects/ARGO/subscriptions/{name}"), &body)
            .await
            .assert_ok(&sub_body("ARGO", name, "t1", stored, T0));
    }
}

#[tokio::test]
async fn empty_push_config_is_a_pull_subscription() {
    let app = with_topic().await;
    let body = r#"{"topic":"projects/ARGO/topics/t1","pushConfig":{}}"#;
    app.put(SUB, body)
        .await
        .assert_ok(&sub_body("ARGO", "s1", "t1", 10, T0));
    let body = r#"{"topic":"projects/ARGO/topics/t1","pushConfig":null}"#;
    app.put("/v1/projects/ARGO/subscriptions/s2", body)
        .await
        .assert_ok(&sub_body("ARGO", "s2", "t1", 10, T0));
    // Output-only fields do not make it push.
    let body =
        r#"{"topic":"projects/ARGO/topics/t1","pushConfig":{"verified":true,"retryPolicy":{}}}"#;
    app.put("/v1/projects/ARGO/subscriptions/s3", body)
        .await
        .assert_ok(&sub_body("ARGO", "s3", "t1", 10, T0));
}

#[tokio::test]
async fn push_config_is_refused_while_push_is_disabled() {
    let app = with_topic().await;
    for push in [
        r#"{"pushEndpoint":"https://example.com/push","type":"http_endpoint","retryPolicy":{"type":"linear","period":300}}"#,
        r#"{"type":"mattermost","mattermostUrl":"https://mm.example.com/hooks/x"}"#,
        r#"{"maxMessages":5}"#,
    ] {
        let body = format!(r#"{{"topic":"projects/ARGO/topics/t1","pushConfig":{push}}}"#);
        let r = app.put(SUB, &body).await;
        r.assert_error(409, "Push functionality is currently disabled", "CONFLICT");
        assert_eq!(r.content_type(), JSON);
    }
    app.get(SUB)
        .await
        .assert_error(404, "Subscription doesn't exist", "NOT_FOUND");
}

#[tokio::test]
async fn create_body_errors() {
    let app = with_topic().await;
    for body in [
        "",
        "nope",
        r#"{"topic":5}"#,
        r#"{"topic":"projects/ARGO/topics/t1","ackDeadlineSeconds":"10"}"#,
        r#"{"topic":"projects/ARGO/topics/t1","ackDeadlineSeconds":1.5}"#,
        r#"{"topic":"projects/ARGO/topics/t1","pushConfig":"x"}"#,
    ] {
        app.put(SUB, body).await.assert_error(
            400,
            "Invalid Subscription Arguments",
            "INVALID_ARGUMENT",
        );
    }
}

#[tokio::test]
async fn create_topic_reference_errors() {
    let app = with_topic().await;
    for topic in [
        "",
        "t1",
        "/projects/ARGO/topics/t1",
        "projects/ARGO/topics",
        "projects/ARGO/topics/t1/x",
        "x/ARGO/y/t1",
    ] {
        let body = format!(r#"{{"topic":"{topic}"}}"#);
        app.put(SUB, &body)
            .await
            .assert_error(400, "Invalid Topic name", "INVALID_ARGUMENT");
    }
    app.put(SUB, "{}")
        .await
        .assert_error(400, "Invalid Topic name", "INVALID_ARGUMENT");
}

#[tokio::test]
async fn topic_reference_project_segment_is_ignored() {
    let app = with_topic().await;
    app.put(SUB, r#"{"topic":"projects/SOMEWHERE/topics/t1"}"#)
        .await
        .assert_ok(&sub_body("ARGO", "s1", "t1", 10, T0));
    // Like the original, one wrong literal segment alone is tolerated.
    app.put(
        "/v1/projects/ARGO/subscriptions/s2",
        r#"{"topic":"projects/ARGO/other/t1"}"#,
    )
    .await
    .assert_ok(&sub_body("ARGO", "s2", "t1", 10, T0));
    app.put(
        "/v1/projects/ARGO/subscriptions/s3",
        r#"{"topic":"other/ARGO/topics/t1"}"#,
    )
    .await
    .assert_ok(&sub_body("ARGO", "s3", "t1", 10, T0));
}

#[tokio::test]
async fn missing_topic_is_checked_before_push_config() {
    let app = with_topic().await;
    app.put(
        SUB,
        r#"{"topic":"projects/ARGO/topics/nope","pushConfig":{"type":"http_endpoint"}}"#,
    )
    .await
    .assert_error(404, "Topic doesn't exist", "NOT_FOUND");
}

#[tokio::test]
async fn created_on_is_truncated_to_seconds() {
    let app = with_topic().await;
    app.clock.advance_millis(1999);
    app.put(SUB, r#"{"topic":"projects/ARGO/topics/t1"}"#)
        .await
        .assert_ok(&sub_body("ARGO", "s1", "t1", 10, "2024-01-01T10:00:01Z"));
}

#[tokio::test]
async fn create_missing_topic() {
    let app = with_topic().await;
    let r = app
        .put(SUB, r#"{"topic":"projects/ARGO/topics/nope"}"#)
        .await;
    r.assert_error(404, "Topic doesn't exist", "NOT_FOUND");
    assert_eq!(r.content_type(), JSON);
    // Topics of other projects are not reachable.
    app.post("/v1/projects/OTHER", "{}").await;
    app.put("/v1/projects/OTHER/topics/only", "").await;
    app.put(SUB, r#"{"topic":"projects/OTHER/topics/only"}"#)
        .await
        .assert_error(404, "Topic doesn't exist", "NOT_FOUND");
}

#[tokio::test]
async fn create_clash_is_the_last_check() {
    let app = with_topic().await;
    app.put(SUB, r#"{"topic":"projects/ARGO/topics/t1"}"#).await;
    app.put(
        SUB,
        r#"{"topic":"projects/ARGO/topics/t1","ackDeadlineSeconds":20}"#,
    )
    .await
    .assert_error(409, "Subscription already exists", "ALREADY_EXISTS");
    app.put(SUB, "")
        .await
        .assert_error(400, "Invalid Subscription Arguments", "INVALID_ARGUMENT");
    app.put(SUB, r#"{"topic":"/projects/ARGO/topics/t1"}"#)
        .await
        .assert_error(400, "Invalid Topic name", "INVALID_ARGUMENT");
    app.put(SUB, r#"{"topic":"projects/ARGO/topics/nope"}"#)
        .await
        .assert_error(404, "Topic doesn't exist", "NOT_FOUND");
    app.put(
        SUB,
        r#"{"topic":"projects/ARGO/topics/t1","pushConfig":{"type":"http_endpoint"}}"#,
    )
    .await
    .assert_error(409, "Push functionality is currently disabled", "CONFLICT");
    // The original is unchanged.
    app.get(SUB)
        .await
        .assert_ok(&sub_body("ARGO", "s1", "t1", 10, T0));
}

#[tokio::test]
async fn create_keys_are_case_insensitive() {
    let app = with_topic().await;
    app.put(
        SUB,
        r#"{"TOPIC":"projects/ARGO/topics/t1","ackdeadlineseconds":42}"#,
    )
    .await
    .assert_ok(&sub_body("ARGO", "s1", "t1", 42, T0));
}

#[tokio::test]
async fn show_missing() {
    let app = with_topic().await;
    let r = app.get(SUB).await;
    r.assert_error(404, "Subscription doesn't exist", "NOT_FOUND");
    assert_eq!(r.content_type(), JSON);
}

#[tokio::test]
async fn delete_subscription() {
    let app = with_topic().await;
    app.put(SUB, r#"{"topic":"projects/ARGO/topics/t1"}"#).await;
    let r = app.delete(SUB).await;
    r.assert_ok("");
    assert_eq!(r.content_type(), JSON);
    app.get(SUB)
        .await
        .assert_error(404, "Subscription doesn't exist", "NOT_FOUND");
    app.delete(SUB)
        .await
        .assert_error(404, "Subscription doesn't exist", "NOT_FOUND");
    // The topic is untouched and the name can be reused.
    assert_eq!(app.get("/v1/projects/ARGO/topics/t1").await.status, 200);
    app.put(SUB, r#"{"topic":"projects/ARGO/topics/t1"}"#)
        .await
        .assert_ok(&sub_body("ARGO", "s1", "t1", 10, T0));
}

#[tokio::test]
async fn empty_list() {
    let app = with_topic().await;
    app.get("/v1/projects/ARGO/subscriptions").await.assert_ok(
        "{\n   \"subscriptions\": [],\n   \"nextPageToken\": \"\",\n   \"totalSize\": 0\n}",
    );
}

#[tokio::test]
async fn list_full_body_newest_first() {
    let app = with_topic().await;
    app.put(
        "/v1/projects/ARGO/subscriptions/a",
        r#"{"topic":"projects/ARGO/topics/t1"}"#,
    )
    .await;
    app.clock.advance_secs(1);
    app.put(
        "/v1/projects/ARGO/subscriptions/b",
        r#"{"topic":"projects/ARGO/topics/t1","ackDeadlineSeconds":20}"#,
    )
    .await;
    let indent = |s: String| s.replace('\n', "\n      ");
    let expected = format!(
        "{{\n   \"subscriptions\": [\n      {},\n      {}\n   ],\n   \"nextPageToken\": \"\",\n   \"totalSize\": 2\n}}",
        indent(sub_body("ARGO", "b", "t1", 20, "2024-01-01T10:00:01Z")),
        indent(sub_body("ARGO", "a", "t1", 10, T0)),
    );
    app.get("/v1/projects/ARGO/subscriptions")
        .await
        .assert_ok(&expected);
}

fn names(v: &serde_json::Value) -> Vec<String> {
    crate::helpers::listed_names(v, "subscriptions")
}

#[tokio::test]
async fn list_pagination() {
    let app = with_topic().await;
    for s in ["s1", "s2", "s3"] {
        app.put(
            &format!("/v1/projects/ARGO/subscriptions/{s}"),
            r#"{"topic":"projects/ARGO/topics/t1"}"#,
        )
        .await;
    }
    let p1 = app
        .get("/v1/projects/ARGO/subscriptions?pageSize=2")
        .await
        .json();
    assert_eq!(names(&p1), ["s3", "s2"]);
    assert_eq!(p1["totalSize"], 3);
    let token = p1["nextPageToken"].as_str().unwrap();
    assert!(!token.is_empty());
    let p2 = app
        .get(&format!(
            "/v1/projects/ARGO/subscriptions?pageSize=2&pageToken={}",
            urlencode(token)
        ))
        .await
        .json();
    assert_eq!(names(&p2), ["s1"]);
    assert_eq!(p2["nextPageToken"], "");
    assert_eq!(p2["totalSize"], 3);
    app.get("/v1/projects/ARGO/subscriptions?pageSize=two")
        .await
        .assert_error(400, "Invalid page size", "INVALID_ARGUMENT");
    app.get("/v1/projects/ARGO/subscriptions?pageToken=%25%25")
        .await
        .assert_error(400, "Invalid page token", "INVALID_ARGUMENT");
}

#[tokio::test]
async fn list_is_per_project() {
    let app = with_topic().await;
    app.setup("OTHER", "t1", "x").await;
    app.put(SUB, r#"{"topic":"projects/ARGO/topics/t1"}"#).await;
    let v = app.get("/v1/projects/ARGO/subscriptions").await.json();
    assert_eq!(names(&v), ["s1"]);
    assert_eq!(v["totalSize"], 1);
}

#[tokio::test]
async fn modify_ack_deadline_updates_the_subscription() {
    let app = with_topic().await;
    app.put(SUB, r#"{"topic":"projects/ARGO/topics/t1"}"#).await;
    for n in [0, 600, 35] {
        let r = app
            .post(
                &format!("{SUB}:modifyAckDeadline"),
                &format!(r#"{{"ackDeadlineSeconds":{n}}}"#),
            )
            .await;
        r.assert_ok("");
        assert_eq!(r.content_type(), JSON);
        app.get(SUB)
            .await
            .assert_ok(&sub_body("ARGO", "s1", "t1", n, T0));
    }
}

#[tokio::test]
async fn modify_ack_deadline_body_errors() {
    let app = with_topic().await;
    app.put(
        SUB,
        r#"{"topic":"projects/ARGO/topics/t1","ackDeadlineSeconds":15}"#,
    )
    .await;
    for body in [
        "",
        "x",
        r#"{"ackDeadlineSeconds":601}"#,
        r#"{"ackDeadlineSeconds":-1}"#,
        r#"{"ackDeadlineSeconds":"30"}"#,
        r#"{"ackDeadlineSeconds":2.5}"#,
    ] {
        let r = app.post(&format!("{SUB}:modifyAckDeadline"), body).await;
        r.assert_error(
            400,
            "Invalid ackDeadlineSeconds(needs value between 0 and 600) Arguments",
            "INVALID_ARGUMENT",
        );
        assert_eq!(r.content_type(), JSON);
    }
    app.get(SUB)
        .await
        .assert_ok(&sub_body("ARGO", "s1", "t1", 15, T0));
}

#[tokio::test]
async fn modify_ack_deadline_checks_the_body_before_the_subscription() {
    let app = with_topic().await;
    let missing = "/v1/projects/ARGO/subscriptions/nope:modifyAckDeadline";
    app.post(missing, r#"{"ackDeadlineSeconds":601}"#)
        .await
        .assert_error(
            400,
            "Invalid ackDeadlineSeconds(needs value between 0 and 600) Arguments",
            "INVALID_ARGUMENT",
        );
    app.post(missing, r#"{"ackDeadlineSeconds":60}"#)
        .await
        .assert_error(404, "Subscription doesn't exist", "NOT_FOUND");
}

#[tokio::test]
async fn subscription_names_follow_a_project_rename() {
    let app = with_topic().await;
    app.put(SUB, r#"{"topic":"projects/ARGO/topics/t1"}"#).await;
    app.put("/v1/projects/ARGO", r#"{"name":"RENAMED"}"#).await;
    app.get("/v1/projects/RENAMED/subscriptions/s1")
        .await
        .assert_ok(&sub_body("RENAMED", "s1", "t1", 10, T0));
    app.get("/v1/projects/RENAMED/topics/t1/subscriptions")
        .await
        .assert_ok(r#"{"subscriptions":["/projects/RENAMED/subscriptions/s1"]}"#);
}
