//! `GET /v1/status` (contract §5.1) with the built-in pusher.

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
}
