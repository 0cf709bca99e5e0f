//! The operator workflow end to end (issue 4): the service token sets up a
//! project and its admin; the admin, with its own token, creates a member, a
//! topic and a subscription and grants both ACLs; the member publishes, pulls
//! and acknowledges; cleanup removes everything.

use serde_json::json;

use crate::helpers::{TestApp, assert_unauthorized, indent3, is_token, spawn_app};

async fn as_user(
    app: &TestApp,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> String {
    let r = app.call_as(method, path, body, Some(token)).await;
    assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
    r.body
}

#[tokio::test]
async fn the_whole_operator_workflow() {
    let app = spawn_app().await;

    // The service token creates the project and its admin.
    app.post("/v1/projects/ARGO", r#"{"description":"ops"}"#)
        .await
        .assert_ok("{\n   \"name\": \"ARGO\",\n   \"created_on\": \"2024-01-01T10:00:00Z\",\n   \"modified_on\": \"2024-01-01T10:00:00Z\",\n   \"description\": \"ops\"\n}");
    let admin = app
        .create_user(
            "ops-admin",
            json!({"email":"admin@example.com","projects":[{"project":"ARGO","roles":["project_admin"]}]}),
        )
        .await;
    let admin_token = admin["token"].as_str().unwrap().to_owned();
    assert!(is_token(&admin_token));

    // The project admin creates a member; the answer carries its token.
    let body = as_user(
        &app,
        &admin_token,
        "POST",
        "/v1/projects/ARGO/members/worker",
        Some(r#"{"email":"worker@example.com","projects":[{"project":"ARGO","roles":["publisher","consumer"]}]}"#),
    )
    .await;
    let member: serde_json::Value = serde_json::from_str(&body).unwrap();
    let member_token = member["token"].as_str().unwrap().to_owned();
    assert!(is_token(&member_token));
    assert_eq!(member["created_by"], "ops-admin");
    assert_eq!(
        member["projects"][0]["roles"],
        json!(["publisher", "consumer"])
    );

    // ... a topic and a subscription, and grants the member both ACLs.
    as_user(
        &app,
        &admin_token,
        "PUT",
        "/v1/projects/ARGO/topics/alerts",
        None,
    )
    .await;
    as_user(
        &app,
        &admin_token,
        "PUT",
        "/v1/projects/ARGO/subscriptions/alerts-sub",
        Some(r#"{"topic":"projects/ARGO/topics/alerts"}"#),
    )
    .await;
    let acl = r#"{"authorized_users":["worker"]}"#;
    let granted = as_user(
        &app,
        &admin_token,
        "POST",
        "/v1/projects/ARGO/topics/alerts:modifyAcl",
        Some(acl),
    )
    .await;
    assert_eq!(granted, "");
    as_user(
        &app,
        &admin_token,
        "POST",
        "/v1/projects/ARGO/subscriptions/alerts-sub:modifyAcl",
        Some(acl),
    )
    .await;
    let shown = as_user(
        &app,
        &admin_token,
        "GET",
        "/v1/projects/ARGO/topics/alerts:acl",
        None,
    )
    .await;
    assert_eq!(shown, indent3(&json!({"authorized_users": ["worker"]})));

    // The member sees its grants in its profile.
    let profile = as_user(&app, &member_token, "GET", "/v1/users/profile", None).await;
    let profile: serde_json::Value = serde_json::from_str(&profile).unwrap();
    assert_eq!(
        profile["projects"],
        json!([{"project":"ARGO","roles":["publisher","consumer"],"topics":["alerts"],"subscriptions":["alerts-sub"]}])
    );

    // The member publishes two messages ...
    let published = as_user(
        &app,
        &member_token,
        "POST",
        "/v1/projects/ARGO/topics/alerts:publish",
        Some(r#"{"messages":[{"data":"MA=="},{"data":"MQ=="}]}"#),
    )
    .await;
    assert_eq!(published, indent3(&json!({"messageIds": ["0", "1"]})));
    let pull = |expect_id: &'static str, expect_data: &'static str| {
        let app = &app;
        let member_token = member_token.clone();
        async move {
            let body = as_user(
                app,
                &member_token,
                "POST",
                "/v1/projects/ARGO/subscriptions/alerts-sub:pull",
                Some(r#"{"maxMessages":"1"}"#),
            )
            .await;
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let msgs = v["receivedMessages"].as_array().unwrap().clone();
            assert_eq!(msgs.len(), 1, "{body}");
            assert_eq!(msgs[0]["message"]["messageId"], expect_id);
            assert_eq!(msgs[0]["message"]["data"], expect_data);
            msgs[0]["ackId"].as_str().unwrap().to_owned()
        }
    };
    // ... pulls one, acknowledges it, pulls the next.
    let ack_id = pull("0", "MA==").await;
    assert_eq!(ack_id, "projects/ARGO/subscriptions/alerts-sub:0");
    let acked = as_user(
        &app,
        &member_token,
        "POST",
        "/v1/projects/ARGO/subscriptions/alerts-sub:acknowledge",
        Some(&json!({ "ackIds": [ack_id] }).to_string()),
    )
    .await;
    assert_eq!(acked, "{}");
    let ack_id = pull("1", "MQ==").await;
    assert_eq!(ack_id, "projects/ARGO/subscriptions/alerts-sub:1");

    // Cleanup: the admin removes the member, the service token the rest.
    let r = app
        .call_as("DELETE", "/v1/users/worker", None, Some(&admin_token))
        .await;
    // users:delete is service-wide: the project admin has no roles there.
    assert_unauthorized(&r);
    for path in [
        "/v1/users/worker",
        "/v1/users/ops-admin",
        "/v1/projects/ARGO",
    ] {
        let r = app.delete(path).await;
        assert_eq!((r.status, r.body.as_str()), (200, ""), "{path}");
    }
    // The tokens are dead and nothing is left.
    assert_unauthorized(
        &app.call_as("GET", "/v1/users/profile", None, Some(&member_token))
            .await,
    );
    app.get("/v1/users").await.assert_ok(&indent3(
        &json!({"users": [], "nextPageToken": "", "totalSize": 0}),
    ));
    app.get("/v1/projects").await.assert_ok("{}");
}
