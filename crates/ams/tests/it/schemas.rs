//! Schemas end to end (contract §8, §5.6): CRUD with exact bodies, topic
//! links, the `:validate` endpoint and publish-time validation.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::helpers::*;

const USER_SCHEMA: &str = r#"{"type":"json","schema":{"type":"object","required":["name","email"],"properties":{"name":{"type":"string"},"email":{"type":"string"},"telephone":{"type":"string"}}}}"#;

const AVRO_SCHEMA: &str = r#"{"type":"AVRO","schema":{"type":"record","namespace":"user.avro","name":"User","fields":[{"name":"username","type":"string"},{"name":"phone","type":"int"}]}}"#;

async fn with_schemas() -> TestApp {
    let app = spawn_app().await;
    app.setup("P", "t", "s").await;
    let r = app.post("/v1/projects/P/schemas/users", USER_SCHEMA).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app.post("/v1/projects/P/schemas/avro", AVRO_SCHEMA).await;
    assert_eq!(r.status, 200, "{}", r.body);
    app
}

fn b64(s: &[u8]) -> String {
    STANDARD.encode(s)
}

#[tokio::test]
async fn create_show_list_with_sorted_keys_and_one_space_indentation() {
    let app = with_schemas().await;
    let r = app.get("/v1/projects/P/schemas/users").await;
    let uuid = r.json()["uuid"].as_str().unwrap().to_owned();
    assert!(is_uuid_v4(&uuid), "{uuid}");
    r.assert_ok(&format!(
        "{{\n \"uuid\": \"{uuid}\",\n \"name\": \"projects/P/schemas/users\",\n \"type\": \"json\",\n \"schema\": {{\n  \"properties\": {{\n   \"email\": {{\n    \"type\": \"string\"\n   }},\n   \"name\": {{\n    \"type\": \"string\"\n   }},\n   \"telephone\": {{\n    \"type\": \"string\"\n   }}\n  }},\n  \"required\": [\n   \"name\",\n   \"email\"\n  ],\n  \"type\": \"object\"\n }}\n}}"
    ));
    assert_eq!(r.content_type(), JSON);
    let list = app.get("/v1/projects/P/schemas").await.json();
    let names: Vec<&str> = list["schemas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["projects/P/schemas/users", "projects/P/schemas/avro"]
    );
    assert_eq!(list["schemas"][1]["type"], "avro", "stored lower-case");
    app.post("/v1/projects/Q", "{}").await;
    app.get("/v1/projects/Q/schemas")
        .await
        .assert_ok("{\n \"schemas\": []\n}");
    app.get("/v1/projects/P/schemas/nope").await.assert_error(
        404,
        "Schema doesn't exist",
        "NOT_FOUND",
    );
}

#[tokio::test]
async fn create_errors_in_order() {
    let app = with_schemas().await;
    let at = "/v1/projects/P/schemas/new";
    for bad in [
        "{",
        r#"{"type":"json","schema":"text"}"#,
        r#"{"type":"json"}"#,
    ] {
        app.post(at, bad)
            .await
            .assert_error(400, "Invalid Schema Arguments", "INVALID_ARGUMENT");
    }
    // The name clash comes before the type check.
    app.post(
        "/v1/projects/P/schemas/users",
        r#"{"type":"xml","schema":{}}"#,
    )
    .await
    .assert_error(409, "Schema already exists", "ALREADY_EXISTS");
    app.post(at, r#"{"type":"xml","schema":{}}"#)
        .await
        .assert_error(
            400,
            "Schema type can only be 'json' or 'avro'",
            "INVALID_ARGUMENT",
        );
    app.post(at, r#"{"type":"json","schema":{"type":"unknown"}}"#)
        .await
        .assert_error(
            400,
            "has a primitive type that is NOT VALID -- given: /unknown/ Expected valid values are:[array boolean integer number null object string]",
            "INVALID_ARGUMENT",
        );
    app.post(
        at,
        r#"{"type":"avro","schema":{"type":"record","name":"R","fields":[{"name":"f","type":"unknown"}]}}"#,
    )
    .await
    .assert_error(400, r#"unknown type name: \"unknown\""#, "INVALID_ARGUMENT");
    // Nothing was created by the refusals.
    app.get(at)
        .await
        .assert_error(404, "Schema doesn't exist", "NOT_FOUND");
}

#[tokio::test]
async fn update_renames_retypes_and_rechecks() {
    let app = with_schemas().await;
    let at = "/v1/projects/P/schemas/users";
    app.put("/v1/projects/P/schemas/nope", "{")
        .await
        .assert_error(404, "Schema doesn't exist", "NOT_FOUND");
    app.put(at, "{")
        .await
        .assert_error(400, "Invalid Schema Arguments", "INVALID_ARGUMENT");
    app.put(at, r#"{"name":"users2"}"#).await.assert_error(
        400,
        "wrong schema name declaration",
        "INVALID_ARGUMENT",
    );
    app.put(at, r#"{"name":"projects/P/schemas/avro"}"#)
        .await
        .assert_error(409, "Schema already exists", "ALREADY_EXISTS");
    app.put(at, r#"{"type":"yaml"}"#).await.assert_error(
        400,
        "Schema type can only be 'json' or 'avro'",
        "INVALID_ARGUMENT",
    );
    // A type change alone re-checks the stored document: not an AVRO schema.
    let r = app.put(at, r#"{"type":"avro"}"#).await;
    assert_eq!(r.status, 400, "{}", r.body);
    // A topic keeps its schema across a rename.
    app.put(
        "/v1/projects/P/topics/typed",
        r#"{"schema":"projects/P/schemas/users"}"#,
    )
    .await;
    let r = app
        .put(
            at,
            r#"{"name":"projects/P/schemas/people","schema":{"type":"object","required":["id"]}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["name"], "projects/P/schemas/people");
    assert_eq!(
        r.json()["schema"],
        json!({"required": ["id"], "type": "object"})
    );
    assert_eq!(
        app.get("/v1/projects/P/topics/typed").await.json()["schema"],
        "projects/P/schemas/people"
    );
    let r = app
        .post(
            "/v1/projects/P/topics/typed:publish",
            &json!({"messages": [{"data": b64(br#"{"name":"x"}"#)}]}).to_string(),
        )
        .await;
    r.assert_error(
        400,
        "Message 0 data is not valid,(root): id is required",
        "INVALID_ARGUMENT",
    );
}

#[tokio::test]
async fn topics_attach_detach_and_lose_deleted_schemas() {
    let app = with_schemas().await;
    let r = app
        .put(
            "/v1/projects/P/topics/typed",
            r#"{"schema":"projects/ANY/schemas/users"}"#,
        )
        .await;
    r.assert_ok("{\n   \"name\": \"/projects/P/topics/typed\",\n   \"schema\": \"projects/P/schemas/users\",\n   \"created_on\": \"2024-01-01T10:00:00Z\"\n}");
    app.put(
        "/v1/projects/P/topics/x",
        r#"{"schema":"projects/P/users"}"#,
    )
    .await
    .assert_error(400, "wrong schema name declaration", "INVALID_ARGUMENT");
    app.put(
        "/v1/projects/P/topics/x",
        r#"{"schema":"projects/P/schemas/nope"}"#,
    )
    .await
    .assert_error(404, "Schema doesn't exist", "NOT_FOUND");
    app.put("/v1/projects/P/topics/x", r#"{"schema":5}"#)
        .await
        .assert_error(400, "Invalid Request Body", "BAD_REQUEST");
    app.put(
        "/v1/projects/P/topics/typed",
        r#"{"schema":"projects/P/schemas/nope"}"#,
    )
    .await
    .assert_error(404, "Schema doesn't exist", "NOT_FOUND");

    // attach: topic first, then the body; an empty body detaches.
    app.post("/v1/projects/P/topics/nope:attachSchema", "{")
        .await
        .assert_error(404, "Topic doesn't exist", "NOT_FOUND");
    app.post(
        "/v1/projects/P/topics/t:attachSchema",
        r#"{"schema":"projects/P/schemas/avro"}"#,
    )
    .await
    .assert_ok("");
    assert_eq!(
        app.get("/v1/projects/P/topics/t").await.json()["schema"],
        "projects/P/schemas/avro"
    );
    app.post("/v1/projects/P/topics/t:attachSchema", "")
        .await
        .assert_ok("");
    assert!(
        app.get("/v1/projects/P/topics/t")
            .await
            .json()
            .get("schema")
            .is_none()
    );
    app.post(
        "/v1/projects/P/topics/t:attachSchema",
        r#"{"schema":"projects/P/schemas/avro"}"#,
    )
    .await
    .assert_ok("");
    app.post("/v1/projects/P/topics/t:detachSchema", "")
        .await
        .assert_ok("");
    assert!(
        app.get("/v1/projects/P/topics/t")
            .await
            .json()
            .get("schema")
            .is_none()
    );
    app.post("/v1/projects/P/topics/nope:detachSchema", "")
        .await
        .assert_error(404, "Topic doesn't exist", "NOT_FOUND");

    // Deleting a schema unlinks it; publishing is unchecked again.
    app.delete("/v1/projects/P/schemas/users")
        .await
        .assert_ok("");
    let topic = app.get("/v1/projects/P/topics/typed").await.json();
    assert!(topic.get("schema").is_none(), "{topic}");
    app.publish("P", "typed", &["not base64 at all"]).await;
    app.delete("/v1/projects/P/schemas/users")
        .await
        .assert_error(404, "Schema doesn't exist", "NOT_FOUND");
}

#[tokio::test]
async fn publish_validates_every_message_before_storing_any() {
    let app = with_schemas().await;
    app.post(
        "/v1/projects/P/topics/t:attachSchema",
        r#"{"schema":"projects/P/schemas/users"}"#,
    )
    .await
    .assert_ok("");
    let good = b64(br#"{"name":"a","email":"b"}"#);
    let publish = |msgs: Vec<String>| {
        let body = json!({"messages": msgs.iter().map(|d| json!({"data": d})).collect::<Vec<_>>()});
        let app = &app;
        async move {
            app.post("/v1/projects/P/topics/t:publish", &body.to_string())
                .await
        }
    };
    publish(vec![good.clone(), b64(br#"{"name":"a","telephone":7}"#)])
        .await
        .assert_error(
            400,
            "Message 1 data is not valid.1)(root): email is required.2)telephone: Invalid type. Expected: string, given: integer.",
            "INVALID_ARGUMENT",
        );
    publish(vec![good.clone(), b64(b"{\"name\":")])
        .await
        .assert_error(
            400,
            "Message 1 data is not valid JSON format,unexpected EOF",
            "INVALID_ARGUMENT",
        );
    publish(vec!["aGVsbG8*".into()]).await.assert_error(
        400,
        "Message 0 is not in valid base64 enocding,illegal base64 data at input byte 7",
        "INVALID_ARGUMENT",
    );
    // Nothing of the refused batches was stored.
    assert_eq!(app.offsets("P", "s").await, (0, 0, 0));
    let r = publish(vec![good.clone(), good]).await;
    assert_eq!(r.json()["messageIds"], json!(["0", "1"]));

    // AVRO: the binary encoding of one datum.
    app.post(
        "/v1/projects/P/topics/t:attachSchema",
        r#"{"schema":"projects/P/schemas/avro"}"#,
    )
    .await
    .assert_ok("");
    let bob = b64(&[0x06, b'b', b'o', b'b', 0x2a]);
    let r = publish(vec![bob.clone()]).await;
    assert_eq!(r.json()["messageIds"], json!(["2"]));
    let r = publish(vec![bob, b64(&[0x4f])]).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Message 1 is not valid."),
        "{}",
        r.body
    );
    assert_eq!(app.offsets("P", "s").await.0, 3);
}

#[tokio::test]
async fn the_validate_endpoint() {
    let app = with_schemas().await;
    let ok = "{\n \"message\": \"Message validated successfully\"\n}";
    app.post("/v1/projects/P/schemas/nope:validate", "{}")
        .await
        .assert_error(404, "Schema doesn't exist", "NOT_FOUND");
    app.post(
        "/v1/projects/P/schemas/users:validate",
        r#"{"name":"a","email":"b"}"#,
    )
    .await
    .assert_ok(ok);
    app.post("/v1/projects/P/schemas/users:validate", r#"{"name":"a"}"#)
        .await
        .assert_error(
            400,
            "Message 0 data is not valid,(root): email is required",
            "INVALID_ARGUMENT",
        );
    let datum = b64(&[0x06, b'b', b'o', b'b', 0x2a]);
    app.post(
        "/v1/projects/P/schemas/avro:validate",
        &json!({ "data": datum }).to_string(),
    )
    .await
    .assert_ok(ok);
    app.post("/v1/projects/P/schemas/avro:validate", r#"{"data":5}"#)
        .await
        .assert_error(400, "Invalid Request Body", "BAD_REQUEST");
    app.post("/v1/projects/P/schemas/avro:validate", r#"{"other":"x"}"#)
        .await
        .assert_error(400, "Invalid Schema Payload Arguments", "INVALID_ARGUMENT");
    let r = app
        .post(
            "/v1/projects/P/schemas/avro:validate",
            &json!({ "data": b64(&[0x4f]) }).to_string(),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("Message 0 is not valid."), "{}", r.body);
}

#[tokio::test]
async fn schemas_and_links_survive_a_restart_and_go_with_their_project() {
    let app = with_schemas().await;
    app.put(
        "/v1/projects/P/topics/typed",
        r#"{"schema":"projects/P/schemas/users"}"#,
    )
    .await;
    let before = app.get("/v1/projects/P/schemas/users").await.body;
    let dir = app.stop().await;
    let app = spawn_in(dir, |_| {}).await;
    assert_eq!(app.get("/v1/projects/P/schemas/users").await.body, before);
    assert_eq!(
        app.get("/v1/projects/P/topics/typed").await.json()["schema"],
        "projects/P/schemas/users"
    );
    app.delete("/v1/projects/P").await.assert_ok("");
    app.post("/v1/projects/P", "{}").await;
    app.get("/v1/projects/P/schemas/users").await.assert_error(
        404,
        "Schema doesn't exist",
        "NOT_FOUND",
    );
}
