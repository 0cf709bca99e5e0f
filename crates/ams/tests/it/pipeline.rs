//! The request pipeline (contract §0, §1.1, §1.2): routing, CORS, path-name
//! validation, token extraction and the order of pipeline errors, plus the
//! Go-style request-body decoding every route shares.

use crate::helpers::{JSON, TEXT, TestApp, spawn_app, spawn_with};

const UNAUTHORIZED: (u16, &str, &str) = (401, "Unauthorized", "UNAUTHORIZED");

async fn ready() -> TestApp {
    let app = spawn_app().await;
    app.setup("ARGO", "t1", "s1").await;
    app
}

#[track_caller]
fn assert_unauthorized(r: &crate::helpers::Resp) {
    r.assert_error(UNAUTHORIZED.0, UNAUTHORIZED.1, UNAUTHORIZED.2);
    assert_eq!(r.content_type(), TEXT);
}

// ------------------------------------------------------------------ routing --

#[tokio::test]
async fn unknown_paths_are_a_plain_text_404() {
    let app = spawn_app().await;
    for path in [
        "/v1/nothing",
        "/v1/projects/",
        "/v2/projects",
        "/",
        "/v1/projects/ARGO/topics/",
        "/v1/projects/ARGO/unknown/x",
    ] {
        let r = app.get(path).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (404, "404 page not found\n"),
            "{path}"
        );
        assert_eq!(r.content_type(), TEXT, "{path}");
    }
    // Routing comes before authentication.
    let r = app.call_as("GET", "/v1/nothing", None, None).await;
    assert_eq!((r.status, r.body.as_str()), (404, "404 page not found\n"));
}

#[tokio::test]
async fn known_path_wrong_method_is_an_empty_405() {
    let app = ready().await;
    for (method, path) in [
        ("PATCH", "/v1/projects"),
        ("POST", "/v1/projects"),
        ("DELETE", "/v1/projects"),
        ("POST", "/v1/projects/ARGO/topics/t1"),
        ("PATCH", "/v1/projects/ARGO"),
        (
            "POST",
            "/v1/projects/ARGO/subscriptions/s1:modifyPushStatus",
        ),
    ] {
        for token in [Some("S3CR3T"), None] {
            let r = app.call_as(method, path, Some("{}"), token).await;
            assert_eq!((r.status, r.body.as_str()), (405, ""), "{method} {path}");
        }
    }
}

#[tokio::test]
async fn unknown_verbs_fall_through_to_name_validation() {
    let app = ready().await;
    let cases = [
        ("GET", "/v1/projects/ARGO/topics/t1:foo", "topic"),
        ("DELETE", "/v1/projects/ARGO/topics/t1:publish", "topic"),
        (
            "PUT",
            "/v1/projects/ARGO/subscriptions/s:pull",
            "subscription",
        ),
        (
            "GET",
            "/v1/projects/ARGO/subscriptions/s1:pull",
            "subscription",
        ),
        (
            "PUT",
            "/v1/projects/ARGO/subscriptions/s1:offsets",
            "subscription",
        ),
        ("GET", "/v1/projects/ARGO/topics/t1:publish", "topic"),
    ];
    for (method, path, var) in cases {
        let r = app.call(method, path, Some("{}")).await;
        r.assert_error(400, &format!("Invalid {var} name"), "INVALID_ARGUMENT");
        assert_eq!(r.content_type(), TEXT, "{method} {path}");
    }
}

#[tokio::test]
async fn double_slashes_are_redirected() {
    let app = spawn_app().await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, location) in [
        ("/v1//projects", "/v1/projects"),
        ("//v1/projects", "/v1/projects"),
        ("/v1/projects//ARGO?key=abc", "/v1/projects/ARGO?key=abc"),
        // A decoded `%3F` is re-encoded: it must not become a query string.
        (
            "//v1/projects/P/topics/t%3Fkey=zzz",
            "/v1/projects/P/topics/t%3Fkey=zzz",
        ),
        ("//v1/projects/a%20b", "/v1/projects/a%20b"),
    ] {
        let r = client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 301, "{path}");
        assert_eq!(r.headers()["location"], location, "{path}");
    }
}

/// Sends `GET path` over a raw connection (HTTP clients resolve `.` segments
/// themselves) and returns the response head.
async fn raw_get(app: &TestApp, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn dot_segments_are_redirected() {
    let app = spawn_app().await;
    for (path, location) in [
        ("/v1/./projects", "/v1/projects"),
        ("/v1/projects/x/../ARGO", "/v1/projects/ARGO"),
    ] {
        let head = raw_get(&app, path).await.to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 301"), "{path}: {head}");
        assert!(
            head.contains(&format!(
                "\r\nlocation: {}\r\n",
                location.to_ascii_lowercase()
            )),
            "{path}: {head}"
        );
    }
}

// --------------------------------------------------------------------- CORS --

#[tokio::test]
async fn options_without_origin_is_an_empty_200_and_never_routed() {
    let app = spawn_app().await;
    for path in ["/v1/projects", "/v1/nothing", "/v1/projects/bad.name"] {
        let r = app.call_with("OPTIONS", path, None, &[]).await;
        assert_eq!((r.status, r.body.as_str()), (200, ""), "{path}");
        assert_eq!(r.header("access-control-allow-origin"), None);
    }
}

#[tokio::test]
async fn preflight_errors() {
    let app = spawn_app().await;
    let origin = ("Origin", "https://ui.example.org");
    let r = app
        .call_with("OPTIONS", "/v1/projects", None, &[origin])
        .await;
    assert_eq!(r.status, 400);
    let r = app
        .call_with(
            "OPTIONS",
            "/v1/projects",
            None,
            &[origin, ("Access-Control-Request-Method", "PATCH")],
        )
        .await;
    assert_eq!(r.status, 405);
    let r = app
        .call_with(
            "OPTIONS",
            "/v1/projects",
            None,
            &[
                origin,
                ("Access-Control-Request-Method", "GET"),
                ("Access-Control-Request-Headers", "x-api-key, x-custom"),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn preflight_success_lists_headers_and_non_simple_methods() {
    let app = spawn_app().await;
    let origin = ("Origin", "https://ui.example.org");
    let r = app
        .call_with(
            "OPTIONS",
            "/v1/projects/ARGO/topics/t1",
            None,
            &[
                origin,
                ("Access-Control-Request-Method", "PUT"),
                (
                    "Access-Control-Request-Headers",
                    "x-api-key, content-type, accept, x-requested-with",
                ),
            ],
        )
        .await;
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("X-Api-Key,Content-Type,X-Requested-With")
    );
    assert_eq!(r.header("access-control-allow-methods"), Some("PUT"));
    for method in ["GET", "POST", "HEAD"] {
        let r = app
            .call_with(
                "OPTIONS",
                "/v1/projects",
                None,
                &[origin, ("Access-Control-Request-Method", method)],
            )
            .await;
        assert_eq!(r.status, 200, "{method}");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert_eq!(r.header("access-control-allow-methods"), None, "{method}");
        assert_eq!(r.header("access-control-allow-headers"), None, "{method}");
    }
    let r = app
        .call_with(
            "OPTIONS",
            "/v1/projects",
            None,
            &[origin, ("Access-Control-Request-Method", "DELETE")],
        )
        .await;
    assert_eq!(r.header("access-control-allow-methods"), Some("DELETE"));
}

#[tokio::test]
async fn requests_with_origin_get_allow_origin_on_every_answer() {
    let app = ready().await;
    let origin = ("Origin", "https://ui.example.org");
    let key = ("x-api-key", "S3CR3T");
    let r = app
        .call_with("GET", "/v1/projects/ARGO", None, &[origin, key])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    // Pipeline, handler and router errors too.
    let r = app
        .call_with("GET", "/v1/projects/ARGO", None, &[origin])
        .await;
    assert_unauthorized(&r);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let r = app
        .call_with("GET", "/v1/projects/ARGO/topics/nope", None, &[origin, key])
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let r = app.call_with("GET", "/v1/nothing", None, &[origin]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    // Without an Origin there are no CORS headers.
    let r = app
        .call_with("GET", "/v1/projects/ARGO", None, &[key])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);
}

// ---------------------------------------------------------- name validation --

#[tokio::test]
async fn invalid_names_are_refused_before_authentication() {
    let app = ready().await;
    let cases = [
        ("GET", "/v1/projects/bad.name", "project"),
        ("POST", "/v1/projects/bad%20name", "project"),
        ("GET", "/v1/projects/%C3%BC", "project"),
        ("GET", "/v1/projects/ARGO/topics/t.1", "topic"),
        ("POST", "/v1/projects/ARGO/topics/t.1:publish", "topic"),
        ("GET", "/v1/projects/ARGO/topics/t$/subscriptions", "topic"),
        (
            "POST",
            "/v1/projects/ARGO/subscriptions/s.1:pull",
            "subscription",
        ),
        (
            "GET",
            "/v1/projects/ARGO/subscriptions/s*:offsets",
            "subscription",
        ),
        // Even when the project does not exist.
        ("GET", "/v1/projects/NOPE/subscriptions/s.1", "subscription"),
    ];
    for (method, path, var) in cases {
        for token in [Some("S3CR3T"), Some("wrong"), None] {
            let r = app.call_as(method, path, Some("{}"), token).await;
            r.assert_error(400, &format!("Invalid {var} name"), "INVALID_ARGUMENT");
            assert_eq!(r.content_type(), TEXT, "{method} {path}");
        }
    }
}

#[tokio::test]
async fn names_are_checked_in_alphabetical_order() {
    let app = spawn_app().await;
    for path in [
        "/v1/projects/a.b/topics/c.d",
        "/v1/projects/a.b/subscriptions/c.d",
        "/v1/projects/a.b/topics/c.d/subscriptions",
        "/v1/projects/a.b/subscriptions/c.d:offsets",
    ] {
        app.get(path)
            .await
            .assert_error(400, "Invalid project name", "INVALID_ARGUMENT");
    }
}

#[tokio::test]
async fn valid_names_use_letters_digits_dash_and_underscore() {
    let app = spawn_app().await;
    app.post("/v1/projects/Proj_1-x", "{}").await.assert_ok(
        "{\n   \"name\": \"Proj_1-x\",\n   \"created_on\": \"2024-01-01T10:00:00Z\",\n   \"modified_on\": \"2024-01-01T10:00:00Z\"\n}",
    );
    assert_eq!(
        app.put("/v1/projects/Proj_1-x/topics/T-_9", "")
            .await
            .status,
        200
    );
}

// ------------------------------------------------------------------- tokens --

#[tokio::test]
async fn missing_or_bad_token_is_401() {
    let app = ready().await;
    for token in [None, Some(""), Some("wrong"), Some("s3cr3t")] {
        for (method, path) in [
            ("GET", "/v1/projects"),
            ("GET", "/v1/projects/ARGO"),
            ("POST", "/v1/projects/NEW"),
            ("GET", "/v1/projects/ARGO/topics/t1"),
            ("POST", "/v1/projects/ARGO/subscriptions/s1:pull"),
        ] {
            let r = app.call_as(method, path, Some("{}"), token).await;
            assert_unauthorized(&r);
        }
    }
    // Nothing was created.
    app.get("/v1/projects/NEW")
        .await
        .assert_error(404, "project doesn't exist", "NOT_FOUND");
}

#[tokio::test]
async fn missing_token_beats_missing_project_but_bad_token_does_not() {
    let app = spawn_app().await;
    assert_unauthorized(
        &app.call_as("GET", "/v1/projects/NOPE/topics", None, None)
            .await,
    );
    let r = app
        .call_as("GET", "/v1/projects/NOPE/topics", None, Some("wrong"))
        .await;
    r.assert_error(404, "project doesn't exist", "NOT_FOUND");
    assert_eq!(r.content_type(), TEXT);
    let r = app
        .call_as("DELETE", "/v1/projects/NOPE", None, Some("wrong"))
        .await;
    r.assert_error(404, "project doesn't exist", "NOT_FOUND");
    // Project existence precedes the handler's own checks.
    let r = app
        .post("/v1/projects/NOPE/subscriptions/s:acknowledge", "")
        .await;
    r.assert_error(404, "project doesn't exist", "NOT_FOUND");
    assert_eq!(r.content_type(), TEXT);
}

#[tokio::test]
async fn default_auth_option_reads_header_then_key() {
    let app = ready().await;
    let path = "/v1/projects/ARGO";
    assert_eq!(
        app.call_with("GET", path, None, &[("x-api-key", "S3CR3T")])
            .await
            .status,
        200
    );
    assert_eq!(
        app.call_with("GET", path, None, &[("X-API-KEY", "S3CR3T")])
            .await
            .status,
        200
    );
    assert_eq!(
        app.call_with("GET", &format!("{path}?key=S3CR3T"), None, &[])
            .await
            .status,
        200
    );
    // The header wins when present.
    assert_unauthorized(
        &app.call_with(
            "GET",
            &format!("{path}?key=S3CR3T"),
            None,
            &[("x-api-key", "wrong")],
        )
        .await,
    );
    assert_eq!(
        app.call_with(
            "GET",
            &format!("{path}?key=wrong"),
            None,
            &[("x-api-key", "S3CR3T")]
        )
        .await
        .status,
        200
    );
    // An empty header falls back to the key.
    assert_eq!(
        app.call_with(
            "GET",
            &format!("{path}?key=S3CR3T"),
            None,
            &[("x-api-key", "")]
        )
        .await
        .status,
        200
    );
    assert_unauthorized(
        &app.call_with("GET", &format!("{path}?key="), None, &[])
            .await,
    );
}

#[tokio::test]
async fn auth_option_key_reads_only_the_query() {
    let app = spawn_with(|c| c.auth_option = ams_http::AuthOption::Key).await;
    let r = app
        .call_with("POST", "/v1/projects/ARGO?key=S3CR3T", Some("{}"), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_unauthorized(
        &app.call_with("GET", "/v1/projects/ARGO", None, &[("x-api-key", "S3CR3T")])
            .await,
    );
    assert_unauthorized(
        &app.call_with(
            "GET",
            "/v1/projects/ARGO?key=wrong",
            None,
            &[("x-api-key", "S3CR3T")],
        )
        .await,
    );
    assert_eq!(
        app.call_with(
            "GET",
            "/v1/projects/ARGO?key=S3CR3T",
            None,
            &[("x-api-key", "wrong")]
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn auth_option_header_reads_only_the_header() {
    let app = spawn_with(|c| c.auth_option = ams_http::AuthOption::Header).await;
    assert_eq!(app.post("/v1/projects/ARGO", "{}").await.status, 200);
    assert_unauthorized(
        &app.call_with("GET", "/v1/projects/ARGO?key=S3CR3T", None, &[])
            .await,
    );
    assert_unauthorized(
        &app.call_with(
            "GET",
            "/v1/projects/ARGO?key=S3CR3T",
            None,
            &[("x-api-key", "")],
        )
        .await,
    );
    assert_eq!(
        app.call_with(
            "GET",
            "/v1/projects/ARGO?key=wrong",
            None,
            &[("x-api-key", "S3CR3T")]
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn auth_option_both_explicitly() {
    let app = spawn_with(|c| c.auth_option = ams_http::AuthOption::Both).await;
    assert_eq!(
        app.call_with("POST", "/v1/projects/A?key=S3CR3T", Some("{}"), &[])
            .await
            .status,
        200
    );
    assert_eq!(
        app.call_with("GET", "/v1/projects/A", None, &[("x-api-key", "S3CR3T")])
            .await
            .status,
        200
    );
}

// ------------------------------------------------------------ content types --

#[tokio::test]
async fn pipeline_errors_are_text_handler_errors_json() {
    let app = ready().await;
    let r = app.get("/v1/projects/NOPE").await;
    assert_eq!((r.status, r.content_type()), (404, TEXT));
    let r = app.get("/v1/projects/ARGO/topics/nope").await;
    assert_eq!((r.status, r.content_type()), (404, JSON));
    let r = app.get("/v1/projects/ARGO/topics").await;
    assert_eq!((r.status, r.content_type()), (200, JSON));
}

#[tokio::test]
async fn request_content_type_is_not_checked() {
    let app = ready().await;
    let r = app
        .call_with(
            "POST",
            "/v1/projects/ARGO/topics/t1:publish",
            Some(r#"{"messages":[{"data":"x"}]}"#),
            &[("x-api-key", "S3CR3T"), ("content-type", "text/xml")],
        )
        .await;
    r.assert_ok("{\n   \"messageIds\": [\n      \"0\"\n   ]\n}");
}

// ----------------------------------------------------------- JSON decoding --

#[tokio::test]
async fn empty_bodies_are_decode_errors() {
    let app = ready().await;
    let cases = [
        (
            "POST",
            "/v1/projects/NEW",
            400,
            "Invalid Project Arguments",
            "INVALID_ARGUMENT",
        ),
        (
            "PUT",
            "/v1/projects/ARGO",
            400,
            "Invalid Request Body",
            "BAD_REQUEST",
        ),
        (
            "PUT",
            "/v1/projects/ARGO/subscriptions/s2",
            400,
            "Invalid Subscription Arguments",
            "INVALID_ARGUMENT",
        ),
        (
            "POST",
            "/v1/projects/ARGO/topics/t1:publish",
            400,
            "Invalid Message Arguments",
            "INVALID_ARGUMENT",
        ),
        (
            "POST",
            "/v1/projects/ARGO/subscriptions/s1:pull",
            400,
            "Invalid Pull Parameters Arguments",
            "INVALID_ARGUMENT",
        ),
        (
            "POST",
            "/v1/projects/ARGO/subscriptions/s1:acknowledge",
            400,
            "Invalid ack parameter",
            "INVALID_ARGUMENT",
        ),
        (
            "POST",
            "/v1/projects/ARGO/subscriptions/s1:modifyAckDeadline",
            400,
            "Invalid ackDeadlineSeconds(needs value between 0 and 600) Arguments",
            "INVALID_ARGUMENT",
        ),
        (
            "POST",
            "/v1/projects/ARGO/subscriptions/s1:modifyOffset",
            400,
            "Invalid Offset Arguments",
            "INVALID_ARGUMENT",
        ),
    ];
    for (method, path, code, message, word) in cases {
        for body in [None, Some("")] {
            let r = app.call(method, path, body).await;
            r.assert_error(code, message, word);
            assert_eq!(r.content_type(), JSON, "{method} {path}");
        }
    }
    // Topic create is the exception.
    assert_eq!(
        app.call("PUT", "/v1/projects/ARGO/topics/t2", None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn json_keys_are_case_insensitive() {
    let app = ready().await;
    app.post("/v1/projects/P2", r#"{"DESCRIPTION":"upper"}"#)
        .await;
    assert_eq!(
        app.get("/v1/projects/P2").await.json()["description"],
        "upper"
    );
    app.put("/v1/projects/P2", r#"{"Name":"P3","Description":"mixed"}"#)
        .await;
    assert_eq!(
        app.get("/v1/projects/P3").await.json()["description"],
        "mixed"
    );
    let r = app
        .post(
            "/v1/projects/ARGO/topics/t1:publish",
            r#"{"MESSAGES":[{"DATA":"d0","Attributes":{"Key":"v"}},{"data":"d1"}]}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = app
        .post(
            "/v1/projects/ARGO/subscriptions/s1:pull",
            r#"{"MAXMESSAGES":"2","returnimmediately":"true"}"#,
        )
        .await
        .json();
    let msgs = v["receivedMessages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    // Attribute keys are data: kept verbatim.
    assert_eq!(
        msgs[0]["message"]["attributes"],
        serde_json::json!({"Key": "v"})
    );
    app.post(
        "/v1/projects/ARGO/subscriptions/s1:acknowledge",
        r#"{"AckIds":["projects/ARGO/subscriptions/s1:1"]}"#,
    )
    .await
    .assert_ok("{}");
    app.post(
        "/v1/projects/ARGO/subscriptions/s1:modifyOffset",
        r#"{"OFFSET":0}"#,
    )
    .await
    .assert_ok("");
    app.post(
        "/v1/projects/ARGO/subscriptions/s1:modifyAckDeadline",
        r#"{"ACKDEADLINESECONDS":99}"#,
    )
    .await
    .assert_ok("");
    assert_eq!(
        app.get("/v1/projects/ARGO/subscriptions/s1").await.json()["ackDeadlineSeconds"],
        99
    );
    assert_eq!(app.offsets("ARGO", "s1").await, (2, 0, 0));
}

#[tokio::test]
async fn unknown_keys_are_ignored() {
    let app = ready().await;
    app.post(
        "/v1/projects/P2",
        r#"{"description":"d","name":"ignored","x":{"y":[1]}}"#,
    )
    .await;
    assert_eq!(app.get("/v1/projects/P2").await.json()["name"], "P2");
    let r = app
        .put(
            "/v1/projects/ARGO/subscriptions/s2",
            r#"{"topic":"projects/ARGO/topics/t1","extra":true}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app
        .post(
            "/v1/projects/ARGO/topics/t1:publish",
            r#"{"messages":[{"data":"a","foo":1}],"bar":null}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = app
        .post(
            "/v1/projects/ARGO/subscriptions/s1:pull",
            r#"{"maxMessages":"1","foo":"bar"}"#,
        )
        .await
        .json();
    assert_eq!(v["receivedMessages"][0]["message"]["data"], "a");
    app.post(
        "/v1/projects/ARGO/subscriptions/s1:acknowledge",
        r#"{"ackIds":["projects/ARGO/subscriptions/s1:0"],"other":5}"#,
    )
    .await
    .assert_ok("{}");
    app.post(
        "/v1/projects/ARGO/subscriptions/s1:modifyOffset",
        r#"{"offset":0,"z":"z"}"#,
    )
    .await
    .assert_ok("");
    app.post(
        "/v1/projects/ARGO/subscriptions/s1:modifyAckDeadline",
        r#"{"ackDeadlineSeconds":5,"z":"z"}"#,
    )
    .await
    .assert_ok("");
}

#[tokio::test]
async fn duplicate_keys_last_wins() {
    let app = ready().await;
    app.post(
        "/v1/projects/P2",
        r#"{"description":"first","description":"second"}"#,
    )
    .await;
    assert_eq!(
        app.get("/v1/projects/P2").await.json()["description"],
        "second"
    );
    app.put(
        "/v1/projects/ARGO/subscriptions/s2",
        r#"{"topic":"projects/ARGO/topics/t1","ackDeadlineSeconds":5,"AckDeadlineSeconds":7}"#,
    )
    .await;
    assert_eq!(
        app.get("/v1/projects/ARGO/subscriptions/s2").await.json()["ackDeadlineSeconds"],
        7
    );
}

#[tokio::test]
async fn null_fields_are_absent() {
    let app = ready().await;
    app.publish("ARGO", "t1", &["a", "b"]).await;
    // maxMessages null → 1 message.
    let v = app
        .post(
            "/v1/projects/ARGO/subscriptions/s1:pull",
            r#"{"maxMessages":null,"returnImmediately":null}"#,
        )
        .await
        .json();
    assert_eq!(v["receivedMessages"].as_array().unwrap().len(), 1);
    // ackIds null → no ids.
    app.post(
        "/v1/projects/ARGO/subscriptions/s1:acknowledge",
        r#"{"ackIds":null}"#,
    )
    .await
    .assert_error(400, "Invalid ack id", "INVALID_ARGUMENT");
    // ackDeadlineSeconds null on create → default 10.
    app.put(
        "/v1/projects/ARGO/subscriptions/s2",
        r#"{"topic":"projects/ARGO/topics/t1","ackDeadlineSeconds":null,"pushConfig":null}"#,
    )
    .await;
    assert_eq!(
        app.get("/v1/projects/ARGO/subscriptions/s2").await.json()["ackDeadlineSeconds"],
        10
    );
    // topic null → empty reference.
    app.put("/v1/projects/ARGO/subscriptions/s3", r#"{"topic":null}"#)
        .await
        .assert_error(400, "Invalid Topic name", "INVALID_ARGUMENT");
    // data null → empty data.
    let r = app
        .post(
            "/v1/projects/ARGO/topics/t1:publish",
            r#"{"messages":[{"data":null,"attributes":null}]}"#,
        )
        .await;
    r.assert_ok("{\n   \"messageIds\": [\n      \"2\"\n   ]\n}");
    // A null body is an empty object.
    app.post("/v1/projects/P2", "null").await;
    assert_eq!(app.get("/v1/projects/P2").await.status, 200);
}

#[tokio::test]
async fn requests_with_an_origin_and_an_unlisted_method_are_routed_with_the_header() {
    let app = spawn_app().await;
    let r = app
        .call_with(
            "PATCH",
            "/v1/projects",
            None,
            &[("Origin", "http://example.org")],
        )
        .await;
    assert_eq!((r.status, r.body.as_str()), (405, ""));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let r = app
        .call_with(
            "PATCH",
            "/v1/nothing",
            None,
            &[("Origin", "http://example.org")],
        )
        .await;
    assert_eq!((r.status, r.body.as_str()), (404, "404 page not found\n"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
}
