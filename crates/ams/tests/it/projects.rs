//! Projects (contract §3.1, §5.4): list, show, create, update/rename, delete.

use crate::helpers::{JSON, TEXT, spawn_app};

fn project_body(name: &str, created: &str, modified: &str, description: Option<&str>) -> String {
    let mut s = format!(
        "{{\n   \"name\": \"{name}\",\n   \"created_on\": \"{created}\",\n   \"modified_on\": \"{modified}\""
    );
    if let Some(d) = description {
        s.push_str(&format!(",\n   \"description\": \"{d}\""));
    }
    s.push_str("\n}");
    s
}

const T0: &str = "2024-01-01T10:00:00Z";

#[tokio::test]
async fn create_returns_the_project_without_created_by() {
    let app = spawn_app().await;
    let r = app
        .post("/v1/projects/ARGO", r#"{"description":"simple project"}"#)
        .await;
    r.assert_ok(&project_body("ARGO", T0, T0, Some("simple project")));
    assert_eq!(r.content_type(), JSON);
}

#[tokio::test]
async fn create_without_description_omits_the_key() {
    let app = spawn_app().await;
    app.post("/v1/projects/P1", "{}")
        .await
        .assert_ok(&project_body("P1", T0, T0, None));
    // `null` is the same as absent; unknown keys are ignored.
    app.post("/v1/projects/P2", r#"{"description":null,"foo":[1,2]}"#)
        .await
        .assert_ok(&project_body("P2", T0, T0, None));
}

#[tokio::test]
async fn show_returns_what_create_returned() {
    let app = spawn_app().await;
    let created = app
        .post("/v1/projects/ARGO", r#"{"description":"d"}"#)
        .await;
    app.clock.advance_secs(60);
    let shown = app.get("/v1/projects/ARGO").await;
    shown.assert_ok(&created.body);
}

#[tokio::test]
async fn create_errors() {
    let app = spawn_app().await;
    app.post("/v1/projects/ARGO", "").await.assert_error(
        400,
        "Invalid Project Arguments",
        "INVALID_ARGUMENT",
    );
    app.post("/v1/projects/ARGO", "not json")
        .await
        .assert_error(400, "Invalid Project Arguments", "INVALID_ARGUMENT");
    app.post("/v1/projects/ARGO", r#"{"description":5}"#)
        .await
        .assert_error(400, "Invalid Project Arguments", "INVALID_ARGUMENT");
    // Nothing was created by the failures.
    assert_eq!(app.get("/v1/projects/ARGO").await.status, 404);
    app.post("/v1/projects/ARGO", "{}")
        .await
        .assert_ok(&project_body("ARGO", T0, T0, None));
    let r = app
        .post("/v1/projects/ARGO", r#"{"description":"again"}"#)
        .await;
    r.assert_error(409, "Project already exists", "ALREADY_EXISTS");
    assert_eq!(r.content_type(), JSON);
    // The existing project is unchanged.
    app.get("/v1/projects/ARGO")
        .await
        .assert_ok(&project_body("ARGO", T0, T0, None));
}

#[tokio::test]
async fn create_checks_the_body_before_the_name_clash() {
    let app = spawn_app().await;
    app.post("/v1/projects/ARGO", "{}").await;
    app.post("/v1/projects/ARGO", "").await.assert_error(
        400,
        "Invalid Project Arguments",
        "INVALID_ARGUMENT",
    );
}

#[tokio::test]
async fn list_is_empty_object_when_there_are_none() {
    let app = spawn_app().await;
    app.get("/v1/projects").await.assert_ok("{}");
}

#[tokio::test]
async fn list_is_in_insertion_order() {
    let app = spawn_app().await;
    app.post("/v1/projects/ZETA", r#"{"description":"z"}"#)
        .await;
    app.clock.advance_secs(1);
    app.post("/v1/projects/ALPHA", "{}").await;
    let expected = "{\n   \"projects\": [\n      {\n         \"name\": \"ZETA\",\n         \"created_on\": \"2024-01-01T10:00:00Z\",\n         \"modified_on\": \"2024-01-01T10:00:00Z\",\n         \"description\": \"z\"\n      },\n      {\n         \"name\": \"ALPHA\",\n         \"created_on\": \"2024-01-01T10:00:01Z\",\n         \"modified_on\": \"2024-01-01T10:00:01Z\"\n      }\n   ]\n}";
    app.get("/v1/projects").await.assert_ok(expected);
}

#[tokio::test]
async fn show_of_a_missing_project_is_the_pipeline_404() {
    let app = spawn_app().await;
    let r = app.get("/v1/projects/NOPE").await;
    r.assert_error(404, "project doesn't exist", "NOT_FOUND");
    assert_eq!(r.content_type(), TEXT);
}

#[tokio::test]
async fn update_changes_description_and_modified_on() {
    let app = spawn_app().await;
    app.post("/v1/projects/ARGO", r#"{"description":"old"}"#)
        .await;
    app.clock.advance_secs(90);
    let r = app
        .put("/v1/projects/ARGO", r#"{"description":"new"}"#)
        .await;
    r.assert_ok(&project_body(
        "ARGO",
        T0,
        "2024-01-01T10:01:30Z",
        Some("new"),
    ));
    app.get("/v1/projects/ARGO").await.assert_ok(&r.body);
}

#[tokio::test]
async fn update_with_empty_fields_keeps_them() {
    let app = spawn_app().await;
    app.post("/v1/projects/ARGO", r#"{"description":"keep"}"#)
        .await;
    app.clock.advance_secs(5);
    app.put("/v1/projects/ARGO", r#"{"name":"","description":""}"#)
        .await
        .assert_ok(&project_body(
            "ARGO",
            T0,
            "2024-01-01T10:00:05Z",
            Some("keep"),
        ));
    app.put("/v1/projects/ARGO", "{}")
        .await
        .assert_ok(&project_body(
            "ARGO",
            T0,
            "2024-01-01T10:00:05Z",
            Some("keep"),
        ));
}

#[tokio::test]
async fn update_errors() {
    let app = spawn_app().await;
    app.post("/v1/projects/ARGO", r#"{"description":"a"}"#)
        .await;
    app.post("/v1/projects/OTHER", "{}").await;
    app.put("/v1/projects/ARGO", "")
        .await
        .assert_error(400, "Invalid Request Body", "BAD_REQUEST");
    app.put("/v1/projects/ARGO", r#"{"name":1}"#)
        .await
        .assert_error(400, "Invalid Request Body", "BAD_REQUEST");
    let r = app
        .put("/v1/projects/ARGO", r#"{"name":"OTHER","description":"b"}"#)
        .await;
    r.assert_error(
        400,
        "invalid project name change, name already exists",
        "INVALID_ARGUMENT",
    );
    assert_eq!(r.content_type(), JSON);
    // The refused update changed nothing.
    app.get("/v1/projects/ARGO")
        .await
        .assert_ok(&project_body("ARGO", T0, T0, Some("a")));
    app.put("/v1/projects/NOPE", "{}").await.assert_error(
        404,
        "project doesn't exist",
        "NOT_FOUND",
    );
}

#[tokio::test]
async fn renaming_to_its_own_name_is_allowed() {
    let app = spawn_app().await;
    app.post("/v1/projects/ARGO", "{}").await;
    let r = app.put("/v1/projects/ARGO", r#"{"name":"ARGO"}"#).await;
    r.assert_ok(&project_body("ARGO", T0, T0, None));
}

#[tokio::test]
async fn rename_moves_topics_subscriptions_and_messages() {
    let app = spawn_app().await;
    app.setup("ARGO", "t1", "s1").await;
    app.publish("ARGO", "t1", &["m0", "m1"]).await;
    app.clock.advance_secs(1);
    app.put("/v1/projects/ARGO", r#"{"name":"NEW"}"#)
        .await
        .assert_ok(&project_body("NEW", T0, "2024-01-01T10:00:01Z", None));
    app.get("/v1/projects/ARGO")
        .await
        .assert_error(404, "project doesn't exist", "NOT_FOUND");
    app.get("/v1/projects/NEW/topics/t1")
        .await
        .assert_ok("{\n   \"name\": \"/projects/NEW/topics/t1\",\n   \"created_on\": \"2024-01-01T10:00:00Z\"\n}");
    let sub = app.get("/v1/projects/NEW/subscriptions/s1").await.json();
    assert_eq!(sub["name"], "/projects/NEW/subscriptions/s1");
    assert_eq!(sub["topic"], "/projects/NEW/topics/t1");
    let (acks, data) = app.pull("NEW", "s1", 10).await;
    assert_eq!(data, ["m0", "m1"]);
    assert_eq!(acks[1], "projects/NEW/subscriptions/s1:1");
    // The old name is free again.
    app.post("/v1/projects/ARGO", "{}")
        .await
        .assert_ok(&project_body(
            "ARGO",
            "2024-01-01T10:00:01Z",
            "2024-01-01T10:00:01Z",
            None,
        ));
    let list = app.get("/v1/projects/ARGO/topics").await.json();
    assert_eq!(list["totalSize"], 0);
}

#[tokio::test]
async fn delete_answers_an_empty_200_and_removes_the_project() {
    let app = spawn_app().await;
    app.post("/v1/projects/ARGO", "{}").await;
    let r = app.delete("/v1/projects/ARGO").await;
    r.assert_ok("");
    assert_eq!(r.content_type(), JSON);
    app.get("/v1/projects/ARGO")
        .await
        .assert_error(404, "project doesn't exist", "NOT_FOUND");
    app.get("/v1/projects").await.assert_ok("{}");
    app.delete("/v1/projects/ARGO")
        .await
        .assert_error(404, "project doesn't exist", "NOT_FOUND");
}

#[tokio::test]
async fn delete_cascades_to_topics_and_subscriptions() {
    let app = spawn_app().await;
    app.setup("ARGO", "t1", "s1").await;
    app.publish("ARGO", "t1", &["a", "b"]).await;
    app.setup("KEEP", "t1", "s1").await;
    app.publish("KEEP", "t1", &["k"]).await;
    app.delete("/v1/projects/ARGO").await.assert_ok("");
    app.get("/v1/projects/ARGO/topics/t1").await.assert_error(
        404,
        "project doesn't exist",
        "NOT_FOUND",
    );
    // Re-created, the project is empty, and the old names are free.
    app.post("/v1/projects/ARGO", "{}").await;
    app.get("/v1/projects/ARGO/topics")
        .await
        .assert_ok("{\n   \"topics\": [],\n   \"nextPageToken\": \"\",\n   \"totalSize\": 0\n}");
    app.get("/v1/projects/ARGO/subscriptions").await.assert_ok(
        "{\n   \"subscriptions\": [],\n   \"nextPageToken\": \"\",\n   \"totalSize\": 0\n}",
    );
    app.get("/v1/projects/ARGO/topics/t1").await.assert_error(
        404,
        "Topic doesn't exist",
        "NOT_FOUND",
    );
    app.get("/v1/projects/ARGO/subscriptions/s1")
        .await
        .assert_error(404, "Subscription doesn't exist", "NOT_FOUND");
    // A new topic of the same name starts a fresh log.
    assert_eq!(app.put("/v1/projects/ARGO/topics/t1", "").await.status, 200);
    assert_eq!(app.publish("ARGO", "t1", &["fresh"]).await, ["0"]);
    // The other project is untouched.
    let (_, data) = app.pull("KEEP", "s1", 10).await;
    assert_eq!(data, ["k"]);
}

#[tokio::test]
async fn data_survives_a_restart() {
    let app = spawn_app().await;
    app.setup("ARGO", "t1", "s1").await;
    app.publish("ARGO", "t1", &["a"]).await;
    let before = app.get("/v1/projects/ARGO").await.body;
    let dir = app.stop().await;
    let app = crate::helpers::spawn_in(dir, |_| {}).await;
    app.get("/v1/projects/ARGO").await.assert_ok(&before);
    let (_, data) = app.pull("ARGO", "s1", 10).await;
    assert_eq!(data, ["a"]);
}

#[tokio::test]
async fn a_renamed_project_keeps_its_place_in_the_list() {
    let app = spawn_app().await;
    for p in ["A", "B", "C"] {
        app.post(&format!("/v1/projects/{p}"), "{}").await;
    }
    app.put("/v1/projects/A", r#"{"name":"Z"}"#).await;
    let v = app.get("/v1/projects").await.json();
    let names: Vec<&str> = v["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Z", "B", "C"]);
}
