//! Topics (contract §3.3, §4, §5.6): create, show, list, delete, subscriptions of a topic.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::helpers::{JSON, TestApp, spawn_app};

fn topic_body(project: &str, name: &str, created: &str) -> String {
    format!(
        "{{\n   \"name\": \"/projects/{project}/topics/{name}\",\n   \"created_on\": \"{created}\"\n}}"
    )
}

async fn with_project() -> TestApp {
    let app = spawn_app().await;
    assert_eq!(app.post("/v1/projects/ARGO", "{}").await.status, 200);
    app
}

#[tokio::test]
async fn create_without_a_body() {
    let app = with_project().await;
    let r = app
        .call("PUT", "/v1/projects/ARGO/topics/topic1", None)
        .await;
    r.assert_ok(&topic_body("ARGO", "topic1", "2024-01-01T10:00:00Z"));
    assert_eq!(r.content_type(), JSON);
}

#[tokio::test]
async fn create_with_an_empty_object_or_empty_schema() {
    let app = with_project().await;
    app.clock.advance_secs(3);
    app.put("/v1/projects/ARGO/topics/t1", "{}")
        .await
        .assert_ok(&topic_body("ARGO", "t1", "2024-01-01T10:00:03Z"));
    app.put("/v1/projects/ARGO/topics/t2", r#"{"schema":""}"#)
        .await
        .assert_ok(&topic_body("ARGO", "t2", "2024-01-01T10:00:03Z"));
    app.put(
        "/v1/projects/ARGO/topics/t3",
        r#"{"schema":null,"other":true}"#,
    )
    .await
    .assert_ok(&topic_body("ARGO", "t3", "2024-01-01T10:00:03Z"));
}

#[tokio::test]
async fn create_with_an_invalid_body() {
    let app = with_project().await;
    for body in [
        "nope",
        r#"{"schema":5}"#,
        "[]",
        r#"{"schema":"x"} trailing"#,
    ] {
        app.put("/v1/projects/ARGO/topics/t1", body)
            .await
            .assert_error(400, "Invalid Request Body", "BAD_REQUEST");
    }
    app.get("/v1/projects/ARGO/topics/t1").await.assert_error(
        404,
        "Topic doesn't exist",
        "NOT_FOUND",
    );
}

#[tokio::test]
async fn create_with_a_malformed_schema_reference() {
    let app = with_project().await;
    for schema in [
        "schema-1",
        "/projects/ARGO/schemas/s1",
        "projects/ARGO/schemas",
        "projects/ARGO/schema/s1",
        "project/ARGO/schemas/s1",
        "projects/ARGO/schemas/s1/extra",
    ] {
        let body = format!(r#"{{"schema":"{schema}"}}"#);
        app.put("/v1/projects/ARGO/topics/t1", &body)
            .await
            .assert_error(400, "wrong schema name declaration", "INVALID_ARGUMENT");
    }
}

#[tokio::test]
async fn create_with_a_well_formed_schema_reference_finds_no_schema() {
    let app = with_project().await;
    // The project segment is ignored; no schema exists anywhere yet.
    for schema in ["projects/ARGO/schemas/s1", "projects/ANY/schemas/s1"] {
        let body = format!(r#"{{"schema":"{schema}"}}"#);
        app.put("/v1/projects/ARGO/topics/t1", &body)
            .await
            .assert_error(404, "Schema doesn't exist", "NOT_FOUND");
    }
    app.get("/v1/projects/ARGO/topics/t1").await.assert_error(
        404,
        "Topic doesn't exist",
        "NOT_FOUND",
    );
}

#[tokio::test]
async fn create_clash_comes_after_body_and_schema_checks() {
    let app = with_project().await;
    app.put("/v1/projects/ARGO/topics/t1", "").await;
    let r = app.put("/v1/projects/ARGO/topics/t1", "").await;
    r.assert_error(409, "Topic already exists", "ALREADY_EXISTS");
    assert_eq!(r.content_type(), JSON);
    app.put("/v1/projects/ARGO/topics/t1", "bad")
        .await
        .assert_error(400, "Invalid Request Body", "BAD_REQUEST");
    app.put("/v1/projects/ARGO/topics/t1", r#"{"schema":"bad"}"#)
        .await
        .assert_error(400, "wrong schema name declaration", "INVALID_ARGUMENT");
    app.put(
        "/v1/projects/ARGO/topics/t1",
        r#"{"schema":"projects/ARGO/schemas/s"}"#,
    )
    .await
    .assert_error(404, "Schema doesn't exist", "NOT_FOUND");
}

#[tokio::test]
async fn same_topic_name_in_two_projects() {
    let app = with_project().await;
    app.post("/v1/projects/OTHER", "{}").await;
    app.put("/v1/projects/ARGO/topics/t1", "").await;
    app.clock.advance_secs(1);
    app.put("/v1/projects/OTHER/topics/t1", "")
        .await
        .assert_ok(&topic_body("OTHER", "t1", "2024-01-01T10:00:01Z"));
    app.get("/v1/projects/ARGO/topics/t1")
        .await
        .assert_ok(&topic_body("ARGO", "t1", "2024-01-01T10:00:00Z"));
}

#[tokio::test]
async fn show_and_missing_topic() {
    let app = with_project().await;
    app.put("/v1/projects/ARGO/topics/t1", "").await;
    app.clock.advance_secs(100);
    app.get("/v1/projects/ARGO/topics/t1")
        .await
        .assert_ok(&topic_body("ARGO", "t1", "2024-01-01T10:00:00Z"));
    let r = app.get("/v1/projects/ARGO/topics/t2").await;
    r.assert_error(404, "Topic doesn't exist", "NOT_FOUND");
    assert_eq!(r.content_type(), JSON);
}

#[tokio::test]
async fn empty_list() {
    let app = with_project().await;
    app.get("/v1/projects/ARGO/topics")
        .await
        .assert_ok("{\n   \"topics\": [],\n   \"nextPageToken\": \"\",\n   \"totalSize\": 0\n}");
}

#[tokio::test]
async fn list_is_newest_first_and_per_project() {
    let app = with_project().await;
    app.post("/v1/projects/OTHER", "{}").await;
    app.put("/v1/projects/ARGO/topics/a", "").await;
    app.clock.advance_secs(1);
    app.put("/v1/projects/OTHER/topics/x", "").await;
    app.put("/v1/projects/ARGO/topics/b", "").await;
    let expected = "{\n   \"topics\": [\n      {\n         \"name\": \"/projects/ARGO/topics/b\",\n         \"created_on\": \"2024-01-01T10:00:01Z\"\n      },\n      {\n         \"name\": \"/projects/ARGO/topics/a\",\n         \"created_on\": \"2024-01-01T10:00:00Z\"\n      }\n   ],\n   \"nextPageToken\": \"\",\n   \"totalSize\": 2\n}";
    app.get("/v1/projects/ARGO/topics")
        .await
        .assert_ok(expected);
}

#[tokio::test]
async fn pagination_walks_newest_first_with_tokens() {
    let app = with_project().await;
    for t in ["t1", "t2", "t3", "t4", "t5"] {
        app.put(&format!("/v1/projects/ARGO/topics/{t}"), "").await;
    }
    let page1 = app.get("/v1/projects/ARGO/topics?pageSize=2").await.json();
    assert_eq!(crate::helpers::listed_names(&page1, "topics"), ["t5", "t4"]);
    assert_eq!(page1["totalSize"], 5);
    let token = page1["nextPageToken"].as_str().unwrap().to_owned();
    // Standard padded base64 of a decimal cursor.
    let decoded = String::from_utf8(STANDARD.decode(&token).unwrap()).unwrap();
    assert!(
        !decoded.is_empty() && decoded.bytes().all(|b| b.is_ascii_digit()),
        "{decoded}"
    );

    let page2 = app
        .get(&format!(
            "/v1/projects/ARGO/topics?pageSize=2&pageToken={}",
            urlencode(&token)
        ))
        .await
        .json();
    assert_eq!(crate::helpers::listed_names(&page2, "topics"), ["t3", "t2"]);
    assert_eq!(page2["totalSize"], 5);
    let token2 = page2["nextPageToken"].as_str().unwrap().to_owned();
    assert_ne!(token2, token);

    let page3 = app
        .get(&format!(
            "/v1/projects/ARGO/topics?pageSize=2&pageToken={}",
            urlencode(&token2)
        ))
        .await
        .json();
    assert_eq!(crate::helpers::listed_names(&page3, "topics"), ["t1"]);
    assert_eq!(page3["nextPageToken"], "");
    assert_eq!(page3["totalSize"], 5);

    // The token is inclusive: without a size, everything from it onwards.
    let rest = app
        .get(&format!(
            "/v1/projects/ARGO/topics?pageToken={}",
            urlencode(&token)
        ))
        .await
        .json();
    assert_eq!(
        crate::helpers::listed_names(&rest, "topics"),
        ["t3", "t2", "t1"]
    );
}

#[tokio::test]
async fn page_size_exactly_the_total_has_no_next_token() {
    let app = with_project().await;
    for t in ["t1", "t2"] {
        app.put(&format!("/v1/projects/ARGO/topics/{t}"), "").await;
    }
    let v = app.get("/v1/projects/ARGO/topics?pageSize=2").await.json();
    assert_eq!(crate::helpers::listed_names(&v, "topics"), ["t2", "t1"]);
    assert_eq!(v["nextPageToken"], "");
    let v = app.get("/v1/projects/ARGO/topics?pageSize=1").await.json();
    assert_eq!(crate::helpers::listed_names(&v, "topics"), ["t2"]);
    assert_ne!(v["nextPageToken"], "");
}

#[tokio::test]
async fn zero_or_negative_page_size_means_everything() {
    let app = with_project().await;
    for t in ["t1", "t2", "t3"] {
        app.put(&format!("/v1/projects/ARGO/topics/{t}"), "").await;
    }
    for size in ["0", "-1", ""] {
        let v = app
            .get(&format!("/v1/projects/ARGO/topics?pageSize={size}"))
            .await
            .json();
        assert_eq!(
            crate::helpers::listed_names(&v, "topics"),
            ["t3", "t2", "t1"],
            "pageSize={size}"
        );
        assert_eq!(v["nextPageToken"], "");
    }
}

#[tokio::test]
async fn invalid_page_size_and_token() {
    let app = with_project().await;
    app.put("/v1/projects/ARGO/topics/t1", "").await;
    for size in ["abc", "1.5", "2x"] {
        let r = app
            .get(&format!("/v1/projects/ARGO/topics?pageSize={size}"))
            .await;
        r.assert_error(400, "Invalid page size", "INVALID_ARGUMENT");
        assert_eq!(r.content_type(), JSON);
    }
    // Not base64, unpadded, or not a cursor.
    let not_a_cursor = urlencode(&STANDARD.encode("xyz"));
    for token in ["!!!", "MQ", not_a_cursor.as_str()] {
        app.get(&format!("/v1/projects/ARGO/topics?pageToken={token}"))
            .await
            .assert_error(400, "Invalid page token", "INVALID_ARGUMENT");
    }
}

#[tokio::test]
async fn delete_topic() {
    let app = with_project().await;
    app.put("/v1/projects/ARGO/topics/t1", "").await;
    let r = app.delete("/v1/projects/ARGO/topics/t1").await;
    r.assert_ok("");
    assert_eq!(r.content_type(), JSON);
    app.get("/v1/projects/ARGO/topics/t1").await.assert_error(
        404,
        "Topic doesn't exist",
        "NOT_FOUND",
    );
    app.delete("/v1/projects/ARGO/topics/t1")
        .await
        .assert_error(404, "Topic doesn't exist", "NOT_FOUND");
    let v = app.get("/v1/projects/ARGO/topics").await.json();
    assert_eq!(v["totalSize"], 0);
}

#[tokio::test]
async fn deleting_a_topic_keeps_its_subscriptions() {
    let app = spawn_app().await;
    app.setup("ARGO", "t1", "s1").await;
    let before = app.get("/v1/projects/ARGO/subscriptions/s1").await.body;
    app.delete("/v1/projects/ARGO/topics/t1")
        .await
        .assert_ok("");
    app.get("/v1/projects/ARGO/subscriptions/s1")
        .await
        .assert_ok(&before);
    let v = app.get("/v1/projects/ARGO/subscriptions").await.json();
    assert_eq!(v["totalSize"], 1);
}

#[tokio::test]
async fn recreated_topic_starts_at_offset_zero() {
    let app = with_project().await;
    app.put("/v1/projects/ARGO/topics/t1", "").await;
    assert_eq!(
        app.publish("ARGO", "t1", &["a", "b", "c"]).await,
        ["0", "1", "2"]
    );
    app.delete("/v1/projects/ARGO/topics/t1")
        .await
        .assert_ok("");
    app.clock.advance_secs(7);
    app.put("/v1/projects/ARGO/topics/t1", "")
        .await
        .assert_ok(&topic_body("ARGO", "t1", "2024-01-01T10:00:07Z"));
    assert_eq!(app.publish("ARGO", "t1", &["d"]).await, ["0"]);
    // A new subscription on it sees only what comes next.
    app.put(
        "/v1/projects/ARGO/subscriptions/s",
        r#"{"topic":"projects/ARGO/topics/t1"}"#,
    )
    .await;
    assert_eq!(app.offsets("ARGO", "s").await, (1, 0, 1));
}

#[tokio::test]
async fn subscriptions_of_a_topic_compact() {
    let app = with_project().await;
    app.put("/v1/projects/ARGO/topics/t1", "").await;
    app.put("/v1/projects/ARGO/topics/t2", "").await;
    let r = app.get("/v1/projects/ARGO/topics/t1/subscriptions").await;
    r.assert_ok(r#"{"subscriptions":[]}"#);
    assert_eq!(r.content_type(), JSON);
    for (s, t) in [("s1", "t1"), ("s2", "t2"), ("s3", "t1")] {
        let body = format!(r#"{{"topic":"projects/ARGO/topics/{t}"}}"#);
        assert_eq!(
            app.put(&format!("/v1/projects/ARGO/subscriptions/{s}"), &body)
                .await
                .status,
            200
        );
    }
    app.get("/v1/projects/ARGO/topics/t1/subscriptions")
        .await
        .assert_ok(r#"{"subscriptions":["/projects/ARGO/subscriptions/s1","/projects/ARGO/subscriptions/s3"]}"#);
    app.get("/v1/projects/ARGO/topics/t2/subscriptions")
        .await
        .assert_ok(r#"{"subscriptions":["/projects/ARGO/subscriptions/s2"]}"#);
    app.delete("/v1/projects/ARGO/subscriptions/s1")
        .await
        .assert_ok("");
    app.get("/v1/projects/ARGO/topics/t1/subscriptions")
        .await
        .assert_ok(r#"{"subscriptions":["/projects/ARGO/subscriptions/s3"]}"#);
}

#[tokio::test]
async fn subscriptions_of_a_missing_topic() {
    let app = with_project().await;
    let r = app.get("/v1/projects/ARGO/topics/nope/subscriptions").await;
    r.assert_error(404, "Topic doesn't exist", "NOT_FOUND");
    assert_eq!(r.content_type(), JSON);
}

/// Percent-encodes the base64 characters that mean something in a query.
pub fn urlencode(s: &str) -> String {
    s.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}
