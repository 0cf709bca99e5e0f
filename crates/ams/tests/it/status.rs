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
