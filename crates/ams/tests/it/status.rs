//! `GET /v1/status` (contract §5.1) with the built-in pusher.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn push_disabled_reports_so_without_a_token() {
    let app = spawn_app().await;
    let r = app.call_as("GET", "/v1/status", None, None).await;
    r.assert_ok("{\n \"status\": \"ok\",\n \"push_functionality\": \"disabled\"\n}");
    assert_eq!(r.content_type(), JSON);
}

#[tokio::test]
async fn push_enabled_reports_the_built_in_pusher() {
    let app = spawn_with(|c| c.push.enabled = true).await;
    let r = app.call_as("GET", "/v1/status", None, None).await;
    r.assert_ok(
        "{\n \"status\": \"ok\",\n \"push_servers\": [\n  {\n   \"endpoint\": \"built-in\",\n   \"status\": \"SERVING\"\n  }\n ]\n}",
    );
}

#[tokio::test]
async fn a_missing_push_worker_user_is_a_warning() {
    let app = spawn_with(|c| {
        c.push.enabled = true;
        c.push.worker_token = Some("no-such-user-token".into());
    })
    .await;
    let r = app.call_as("GET", "/v1/status", None, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "warning");
}

#[tokio::test]
async fn details_need_an_admin_user_with_the_inverted_codes() {
    let app = spawn_with(|c| c.push.enabled = true).await;
    let admin = app
        .create_user(
            "viewer",
            serde_json::json!({"service_roles": ["admin_viewer"]}),
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post("/v1/projects/P", "{}").await;
    let member = app.member_token("member", "P", &["consumer"]).await;
    let path = "/v1/status?details=true";
    // Unknown or absent token, and the service token: 403.
    for token in [None, Some("nope"), Some(app.token.as_str())] {
        let r = app.call_as("GET", path, None, token).await;
        r.assert_error(403, "Access to this resource is forbidden", "FORBIDDEN");
    }
    // A user without service_admin/admin_viewer: 401.
    let r = app.call_as("GET", path, None, Some(&member)).await;
    r.assert_error(401, "Unauthorized", "UNAUTHORIZED");
    let r = app.call_as("GET", path, None, Some(&admin)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["push_servers"][0]["status"], "SERVING");
}

#[tokio::test]
async fn version_shows_the_release_only_to_admin_users() {
    let app = spawn_with(|c| c.proxy_hostname = "ams.example.org".into()).await;
    let viewer = app.service_user_token("viewer", &["admin_viewer"]).await;
    let plain = app.service_user_token("plain", &["metrics_viewer"]).await;
    let keys =
        |r: &Resp| -> Vec<String> { r.json().as_object().unwrap().keys().cloned().collect() };
    let r = app.call_as("GET", "/v1/version", None, None).await;
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with("{\n \"build_time\": \""), "{}", r.body);
    let v = r.json();
    assert!(v["golang"].as_str().unwrap().starts_with("rustc "), "{v}");
    assert_eq!(v["compiler"], "rustc");
    assert_eq!(v["os"], std::env::consts::OS);
    assert_eq!(v["architecture"], std::env::consts::ARCH);
    assert_eq!(v["hostname"], "ams.example.org");
    assert!(!keys(&r).contains(&"release".to_string()));
    // Neither the service token nor a user without the admin roles sees it.
    for token in [app.token.as_str(), plain.as_str()] {
        let r = app.call_as("GET", "/v1/version", None, Some(token)).await;
        assert!(!keys(&r).contains(&"release".to_string()), "{}", r.body);
    }
    let r = app.call_as("GET", "/v1/version", None, Some(&viewer)).await;
    assert_eq!(r.json()["release"], env!("CARGO_PKG_VERSION"));
    let order = keys(&r);
    let want: Vec<&str> = [
        "build_time",
        "golang",
        "compiler",
        "os",
        "architecture",
        "release",
        "distro",
        "hostname",
    ]
    .into_iter()
    .filter(|k| order.iter().any(|o| o == k))
    .collect();
    assert_eq!(order, want, "key order");
}

#[tokio::test]
async fn the_openapi_document_lists_every_served_route() {
    let app = spawn_app().await;
    let r = app.call_as("GET", "/v1/openapi.json", None, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type(), JSON);
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    for entry in ams_http::routes::table() {
        let op = &doc["paths"][entry.pattern][entry.method.as_str().to_lowercase()];
        assert_eq!(op["operationId"], entry.route.name(), "{}", entry.pattern);
    }
    assert_eq!(
        doc["paths"]["/v1/projects/{project}/topics/{topic}:publish"]["post"]["description"],
        "Roles: service_admin, project_admin, publisher."
    );
    // Query parameters are listed with the path variables.
    let names = |path: &str, kind: &str| -> Vec<String> {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == kind)
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names("/v1/projects/{project}/topics/{topic}:stream", "query"),
        ["from", "time", "last", "max"]
    );
    assert_eq!(
        names("/v1/projects/{project}/topics/{topic}:stream", "path"),
        ["project", "topic"]
    );
    assert_eq!(
        names("/v1/metrics/va_metrics", "query"),
        ["start_date", "end_date", "projects"]
    );
    assert_eq!(
        names("/v1/projects/{project}/topics", "query"),
        ["pageSize", "pageToken"]
    );
    assert!(names("/v1/projects/{project}/topics/{topic}", "query").is_empty());
}

/// The `$ref`s of the document, each with where it occurs.
fn refs<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push((at.clone(), r)),
                    _ => refs(v, format!("{at}/{k}"), out),
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                refs(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Follows a local `$ref` (`#/components/schemas/X`).
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => doc
            .pointer(r.strip_prefix('#').expect("a local $ref"))
            .unwrap_or_else(|| panic!("{r} does not resolve")),
        None => schema,
    }
}

/// The schema a request body or 200 response names in `application/json`.
fn named<'a>(doc: &'a Value, holder: &'a Value) -> &'a Value {
    let schema = &holder["content"]["application/json"]["schema"];
    assert!(schema["$ref"].is_string(), "{holder}");
    resolve(doc, schema)
}

/// Checks an actual body against its schema: every key declared, in the
/// declared order, every required key present; objects and arrays recursively.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = resolve(doc, schema);
    // `T | null` is `oneOf: [T, {type: null}]`.
    if let Some(one_of) = schema["oneOf"].as_array()
        && !value.is_null()
        && one_of.len() == 2
        && one_of[1]["type"] == "null"
    {
        return conforms(doc, &one_of[0], value, at);
    }
    match value {
        Value::Object(map) => {
            let Some(props) = schema["properties"].as_object() else {
                // A free-form object (attributes, a schema document).
                return;
            };
            let declared: Vec<&String> = props.keys().collect();
            let mut last = 0;
            for (k, v) in map {
                let i = declared
                    .iter()
                    .position(|d| *d == k)
                    .unwrap_or_else(|| panic!("{at}: {k} is not in the schema {schema}"));
                assert!(i >= last, "{at}: {k} out of the declared order");
                last = i;
                conforms(doc, &props[k], v, &format!("{at}.{k}"));
            }
            for required in schema["required"].as_array().into_iter().flatten() {
                let required = required.as_str().unwrap();
                assert!(map.contains_key(required), "{at}: {required} missing");
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                conforms(doc, &schema["items"], item, &format!("{at}[{i}]"));
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn the_openapi_document_describes_request_and_response_bodies() {
    let app = spawn_app().await;
    let doc = app
        .call_as("GET", "/v1/openapi.json", None, None)
        .await
        .json();
    let schemas = doc["components"]["schemas"].as_object().unwrap();

    // Every reference resolves (and there are some).
    let mut all = Vec::new();
    refs(&doc, String::new(), &mut all);
    assert!(all.len() > 60, "{}", all.len());
    for (at, r) in &all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{at}: {r} is not a schema component"));
        assert!(schemas.contains_key(name), "{at}: {r} does not resolve");
    }

    // Every POST/PUT that reads a JSON body (contract §0.3) names its schema;
    // the routes that read no body have none.
    const NO_BODY: [&str; 5] = [
        "subscriptions:verifyPushEndpoint",
        "topics:detachSchema",
        "users:refreshToken",
        "projects:removeUser",
        "registrations:acceptNewUser",
    ];
    const OPTIONAL_BODY: [&str; 2] = ["topics:create", "topics:attachSchema"];
    for entry in ams_http::routes::table() {
        let (method, name) = (entry.method.as_str(), entry.route.name());
        let op = &doc["paths"][entry.pattern][method.to_lowercase()];
        let body = &op["requestBody"];
        if !["POST", "PUT"].contains(&method) || NO_BODY.contains(&name) {
            assert!(body.is_null(), "{name} reads no body: {body}");
        } else if name == "schemas:validateMessage" {
            // The instance to validate: any JSON.
            assert!(body["content"]["application/json"].is_object(), "{body}");
        } else {
            let required = !OPTIONAL_BODY.contains(&name);
            assert_eq!(body["required"], required, "{name}: {body}");
            assert_eq!(named(&doc, body)["type"], "object", "{name}");
        }
        assert!(op["responses"]["200"].is_object(), "{name}");
    }

    let op = |pattern: &str, method: &str| &doc["paths"][pattern][method];
    let publish = op("/v1/projects/{project}/topics/{topic}:publish", "post");
    let request = named(&doc, &publish["requestBody"]);
    assert_eq!(request["properties"]["messages"]["type"], "array");
    let message = resolve(&doc, &request["properties"]["messages"]["items"]);
    assert_eq!(
        message["properties"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["messageId", "attributes", "data", "publishTime"]
    );
    assert_eq!(
        message["properties"]["attributes"]["additionalProperties"]["type"],
        "string"
    );
    assert!(
        request["required"].is_null(),
        "Go decoding: nothing is required"
    );
    let answer = named(&doc, &publish["responses"]["200"]);
    assert_eq!(
        answer["properties"]["messageIds"]["items"]["type"],
        "string"
    );

    let pull = op(
        "/v1/projects/{project}/subscriptions/{subscription}:pull",
        "post",
    );
    let answer = named(&doc, &pull["responses"]["200"]);
    assert_eq!(answer["required"], serde_json::json!(["receivedMessages"]));
    assert_eq!(answer["properties"]["receivedMessages"]["type"], "array");

    let metrics = op("/v1/projects/{project}/topics/{topic}:metrics", "get");
    let list = named(&doc, &metrics["responses"]["200"]);
    assert_eq!(list, &schemas["MetricList"]);
    assert_eq!(list["properties"]["metrics"]["type"], "array");
    let metric = resolve(&doc, &list["properties"]["metrics"]["items"]);
    let point = resolve(&doc, &metric["properties"]["timeseries"]["items"]);
    let value = resolve(&doc, &point["properties"]["value"]);
    let types: Vec<&Value> = value["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["type"])
        .collect();
    assert_eq!(types, ["integer", "number"], "int64 or float64 values");

    // Empty answers say so: `{}` or no content at all.
    let ack = op(
        "/v1/projects/{project}/subscriptions/{subscription}:acknowledge",
        "post",
    );
    assert_eq!(
        ack["responses"]["200"]["content"]["application/json"]["schema"]["maxProperties"],
        0
    );
    let delete = op("/v1/projects/{project}/topics/{topic}", "delete");
    assert!(delete["responses"]["200"]["content"].is_null(), "{delete}");
    let modify = op("/v1/projects/{project}/topics/{topic}:modifyAcl", "post");
    assert!(modify["responses"]["200"]["content"].is_null(), "{modify}");
}

#[tokio::test]
async fn actual_bodies_conform_to_the_openapi_schemas() {
    let app = spawn_app().await;
    let doc = app
        .call_as("GET", "/v1/openapi.json", None, None)
        .await
        .json();
    let answer = |pattern: &str, method: &str| {
        doc["paths"][pattern][method]["responses"]["200"]["content"]["application/json"]["schema"]
            .clone()
    };
    let check = |pattern: &str, method: &str, r: Resp| {
        assert_eq!(r.status, 200, "{pattern}: {}", r.body);
        conforms(&doc, &answer(pattern, method), &r.json(), pattern);
    };
    let project = app.post("/v1/projects/P", r#"{"description":"d"}"#).await;
    check("/v1/projects/{project}", "post", project);
    let topic = app.put("/v1/projects/P/topics/t", "").await;
    check("/v1/projects/{project}/topics/{topic}", "put", topic);
    assert_eq!(app.put("/v1/projects/P/topics/dl", "").await.status, 200);
    let sub = app
        .put(
            "/v1/projects/P/subscriptions/s",
            r#"{"topic":"projects/P/topics/t","deadLetterPolicy":{"deadLetterTopic":"projects/P/topics/dl","maxDeliveryAttempts":5}}"#,
        )
        .await;
    check(
        "/v1/projects/{project}/subscriptions/{subscription}",
        "put",
        sub,
    );
    let body = r#"{"messages":[{"data":"YQ==","attributes":{"k":"v"}}]}"#;
    let published = app.post("/v1/projects/P/topics/t:publish", body).await;
    check(
        "/v1/projects/{project}/topics/{topic}:publish",
        "post",
        published,
    );
    let pulled = app
        .post(
            "/v1/projects/P/subscriptions/s:pull",
            r#"{"maxMessages":"1"}"#,
        )
        .await;
    assert!(pulled.body.contains("attributes"), "{}", pulled.body);
    check(
        "/v1/projects/{project}/subscriptions/{subscription}:pull",
        "post",
        pulled,
    );
    let metrics = app.get("/v1/projects/P/topics/t:metrics").await;
    check(
        "/v1/projects/{project}/topics/{topic}:metrics",
        "get",
        metrics,
    );
    let roles = serde_json::json!({"projects": [{"project": "P", "roles": ["consumer"]}]});
    app.create_user("u1", roles).await;
    check("/v1/users/{user}", "get", app.get("/v1/users/u1").await);
    check("/v1/users", "get", app.get("/v1/users").await);
    check("/v1/version", "get", app.get("/v1/version").await);
    check("/v1/status", "get", app.get("/v1/status").await);
    check(
        "/v1/metrics/va_metrics",
        "get",
        app.get("/v1/metrics/va_metrics").await,
    );
}
