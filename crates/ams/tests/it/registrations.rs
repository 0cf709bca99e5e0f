//! User registrations (contract §3.6, §5.3): submit, list with filters, show,
//! accept (creates the user), decline, delete. Service admins only.

use serde_json::{Value, json};

use crate::helpers::{
    JSON, TestApp, assert_unauthorized, indent3, is_token, is_uuid_v4, spawn_app,
};

const T0: &str = "2024-01-01T10:00:00Z";
const GONE: &str = "User registration doesn't exist";

const FULL: &str = r#"{"name":"new-register-user","first_name":"first-name","last_name":"last-name","email":"test@example.com","organization":"org1","description":"desc1"}"#;

/// A server with a service-admin user `admin`; returns its token too.
async fn with_admin() -> (TestApp, String) {
    let app = spawn_app().await;
    let v = app
        .create_user("admin", json!({"service_roles":["service_admin"]}))
        .await;
    let token = v["token"].as_str().unwrap().to_owned();
    (app, token)
}

async fn register(app: &TestApp, body: &str) -> Value {
    let r = app.post("/v1/registrations", body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn uuid_of(v: &Value) -> &str {
    v["uuid"].as_str().unwrap()
}

#[tokio::test]
async fn submit_returns_the_pending_registration() {
    let (app, _) = with_admin().await;
    let r = app.post("/v1/registrations", FULL).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type(), JSON);
    let v = r.json();
    assert!(is_uuid_v4(uuid_of(&v)));
    assert!(is_token(v["activation_token"].as_str().unwrap()));
    let expected = json!({
        "uuid": v["uuid"],
        "name": "new-register-user",
        "first_name": "first-name",
        "last_name": "last-name",
        "organization": "org1",
        "description": "desc1",
        "email": "test@example.com",
        "status": "pending",
        "activation_token": v["activation_token"],
        "registered_at": T0
    });
    r.assert_ok(&indent3(&expected));
    app.clock.advance_secs(10);
    app.get(&format!("/v1/registrations/{}", uuid_of(&v)))
        .await
        .assert_ok(&r.body);
    // Every one gets its own uuid and token; empty fields are present as "".
    let w = register(&app, "{}").await;
    assert_ne!(w["uuid"], v["uuid"]);
    assert_ne!(w["activation_token"], v["activation_token"]);
    let expected = json!({
        "uuid": w["uuid"],
        "name": "",
        "first_name": "",
        "last_name": "",
        "organization": "",
        "description": "",
        "email": "",
        "status": "pending",
        "activation_token": w["activation_token"],
        "registered_at": "2024-01-01T10:00:10Z"
    });
    assert_eq!(
        app.get(&format!("/v1/registrations/{}", uuid_of(&w)))
            .await
            .body,
        indent3(&expected)
    );
}

#[tokio::test]
async fn submit_errors() {
    let (app, _) = with_admin().await;
    for body in ["", "nope", r#"{"name":5}"#, "[]"] {
        let r = app.post("/v1/registrations", body).await;
        r.assert_error(400, "Invalid User Arguments", "INVALID_ARGUMENT");
        assert_eq!(r.content_type(), JSON);
    }
    // A *user* with the name exists: 409. Registrations are not compared.
    let r = app.post("/v1/registrations", r#"{"name":"admin"}"#).await;
    r.assert_error(409, "User already exists", "ALREADY_EXISTS");
    register(&app, r#"{"name":"twice"}"#).await;
    register(&app, r#"{"name":"twice"}"#).await;
    let list = app.get("/v1/registrations?name=twice").await.json();
    assert_eq!(list["user_registrations"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn accept_creates_a_usable_user() {
    let (app, admin) = with_admin().await;
    let reg = register(&app, FULL).await;
    let uuid = uuid_of(&reg);
    app.clock.advance_secs(60);
    let r = app
        .call_as(
            "POST",
            &format!("/v1/registrations/{uuid}:accept"),
            None,
            Some(&admin),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type(), JSON);
    let user = r.json();
    assert!(is_uuid_v4(uuid_of(&user)));
    assert_ne!(user["uuid"], reg["uuid"]);
    let token = user["token"].as_str().unwrap();
    assert!(is_token(token));
    assert_ne!(user["token"], reg["activation_token"]);
    // The privileged user, without `projects` (no memberships).
    let expected = json!({
        "uuid": user["uuid"],
        "name": "new-register-user",
        "first_name": "first-name",
        "last_name": "last-name",
        "organization": "org1",
        "description": "desc1",
        "token": token,
        "email": "test@example.com",
        "service_roles": [],
        "created_on": "2024-01-01T10:01:00Z",
        "modified_on": "2024-01-01T10:01:00Z",
        "created_by": "admin"
    });
    r.assert_ok(&indent3(&expected));
    app.get("/v1/users/new-register-user")
        .await
        .assert_ok(&r.body);
    // The token works at once.
    app.call_as("GET", "/v1/users/profile", None, Some(token))
        .await
        .assert_ok(&r.body);
    // The registration is accepted, by whom and when, without its token.
    let expected = json!({
        "uuid": uuid,
        "name": "new-register-user",
        "first_name": "first-name",
        "last_name": "last-name",
        "organization": "org1",
        "description": "desc1",
        "email": "test@example.com",
        "status": "accepted",
        "registered_at": T0,
        "modified_by": "admin",
        "modified_at": "2024-01-01T10:01:00Z"
    });
    app.get(&format!("/v1/registrations/{uuid}"))
        .await
        .assert_ok(&indent3(&expected));
    // Only pending registrations can be accepted or declined.
    for verb in ["accept", "decline"] {
        let r = app
            .post(&format!("/v1/registrations/{uuid}:{verb}"), "{}")
            .await;
        r.assert_error(404, GONE, "NOT_FOUND");
        assert_eq!(r.content_type(), JSON);
    }
}

#[tokio::test]
async fn accept_by_the_service_token_and_name_clashes() {
    let (app, _) = with_admin().await;
    let a = register(&app, r#"{"name":"dup"}"#).await;
    let b = register(&app, r#"{"name":"dup"}"#).await;
    // By the service token: no `created_by`, no `modified_by`.
    let r = app
        .post(&format!("/v1/registrations/{}:accept", uuid_of(&a)), "")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let user = r.json();
    assert!(user.get("created_by").is_none(), "{user}");
    let shown = app
        .get(&format!("/v1/registrations/{}", uuid_of(&a)))
        .await
        .json();
    assert_eq!(shown["status"], "accepted");
    assert!(shown.get("modified_by").is_none(), "{shown}");
    assert_eq!(shown["modified_at"], T0);
    // The second one clashes with the user now existing and stays pending.
    let r = app
        .post(&format!("/v1/registrations/{}:accept", uuid_of(&b)), "")
        .await;
    r.assert_error(409, "User already exists", "ALREADY_EXISTS");
    let shown = app.get(&format!("/v1/registrations/{}", uuid_of(&b))).await;
    assert_eq!(shown.json()["status"], "pending");
    assert_eq!(shown.json()["activation_token"], b["activation_token"]);
    // A fresh submission with that name is refused too.
    app.post("/v1/registrations", r#"{"name":"dup"}"#)
        .await
        .assert_error(409, "User already exists", "ALREADY_EXISTS");
}

#[tokio::test]
async fn decline_needs_an_object_and_records_the_comment() {
    let (app, admin) = with_admin().await;
    let reg = register(&app, FULL).await;
    let uuid = uuid_of(&reg);
    let path = format!("/v1/registrations/{uuid}:decline");
    for body in [None, Some(""), Some("nope"), Some(r#"{"comment":1}"#)] {
        let r = app.call_as("POST", &path, body, Some(&admin)).await;
        r.assert_error(400, "Invalid Request Body", "BAD_REQUEST");
        assert_eq!(r.content_type(), JSON);
    }
    app.clock.advance_secs(5);
    let r = app
        .call_as(
            "POST",
            &path,
            Some(r#"{"comment":"not eligible"}"#),
            Some(&admin),
        )
        .await;
    r.assert_ok("{}");
    assert_eq!(r.content_type(), JSON);
    let expected = json!({
        "uuid": uuid,
        "name": "new-register-user",
        "first_name": "first-name",
        "last_name": "last-name",
        "organization": "org1",
        "description": "desc1",
        "email": "test@example.com",
        "status": "declined",
        "decline_comment": "not eligible",
        "registered_at": T0,
        "modified_by": "admin",
        "modified_at": "2024-01-01T10:00:05Z"
    });
    app.get(&format!("/v1/registrations/{uuid}"))
        .await
        .assert_ok(&indent3(&expected));
    // No user was created; a declined registration cannot be accepted, nor
    // declined again (404 before the body is looked at).
    app.get("/v1/users/new-register-user").await.assert_error(
        404,
        "User doesn't exist",
        "NOT_FOUND",
    );
    app.post(&format!("/v1/registrations/{uuid}:accept"), "")
        .await
        .assert_error(404, GONE, "NOT_FOUND");
    app.post(&path, "")
        .await
        .assert_error(404, GONE, "NOT_FOUND");
    // `{}` is enough: no comment.
    let other = register(&app, r#"{"name":"x"}"#).await;
    app.post(
        &format!("/v1/registrations/{}:decline", uuid_of(&other)),
        "{}",
    )
    .await
    .assert_ok("{}");
    let shown = app
        .get(&format!("/v1/registrations/{}", uuid_of(&other)))
        .await
        .json();
    assert_eq!(shown["status"], "declined");
    assert!(shown.get("decline_comment").is_none(), "{shown}");
    assert!(shown.get("activation_token").is_none(), "{shown}");
}

#[tokio::test]
async fn unknown_registrations_are_404() {
    let (app, _) = with_admin().await;
    let unknown = "0b3a1e5c-9d2f-4c1a-8e7b-2f6d5c4b3a21";
    for uuid in [unknown, "not-a-uuid"] {
        for (method, path, body) in [
            ("GET", format!("/v1/registrations/{uuid}"), None),
            ("DELETE", format!("/v1/registrations/{uuid}"), None),
            ("POST", format!("/v1/registrations/{uuid}:accept"), None),
            (
                "POST",
                format!("/v1/registrations/{uuid}:decline"),
                Some("{}"),
            ),
            (
                "POST",
                format!("/v1/registrations/{uuid}:decline"),
                Some(""),
            ),
        ] {
            let r = app.call(method, &path, body).await;
            r.assert_error(404, GONE, "NOT_FOUND");
            assert_eq!(r.content_type(), JSON, "{method} {path}");
        }
    }
}

#[tokio::test]
async fn delete_removes_any_registration() {
    let (app, _) = with_admin().await;
    let pending = register(&app, r#"{"name":"p"}"#).await;
    let accepted = register(&app, r#"{"name":"a"}"#).await;
    app.post(
        &format!("/v1/registrations/{}:accept", uuid_of(&accepted)),
        "",
    )
    .await;
    for reg in [&pending, &accepted] {
        let path = format!("/v1/registrations/{}", uuid_of(reg));
        let r = app.delete(&path).await;
        assert_eq!((r.status, r.body.as_str()), (200, ""));
        app.get(&path).await.assert_error(404, GONE, "NOT_FOUND");
        app.delete(&path).await.assert_error(404, GONE, "NOT_FOUND");
    }
    // The accepted user stays.
    assert_eq!(app.get("/v1/users/a").await.status, 200);
    app.get("/v1/registrations")
        .await
        .assert_ok(&indent3(&json!({"user_registrations": []})));
}

#[tokio::test]
async fn list_with_exact_match_filters() {
    let (app, _) = with_admin().await;
    app.get("/v1/registrations")
        .await
        .assert_ok(&indent3(&json!({"user_registrations": []})));
    let a = register(
        &app,
        r#"{"name":"a","email":"a@example.com","organization":"org1"}"#,
    )
    .await;
    let b = register(
        &app,
        r#"{"name":"b","email":"b@example.com","organization":"org1"}"#,
    )
    .await;
    let c = register(
        &app,
        r#"{"name":"c","email":"c@example.com","organization":"org2"}"#,
    )
    .await;
    app.post(&format!("/v1/registrations/{}:accept", uuid_of(&b)), "")
        .await;
    app.post(&format!("/v1/registrations/{}:decline", uuid_of(&c)), "{}")
        .await;
    let shown = |r: &Value| {
        let app = &app;
        let path = format!("/v1/registrations/{}", uuid_of(r));
        async move { app.get(&path).await.json() }
    };
    let (a, b, c) = (shown(&a).await, shown(&b).await, shown(&c).await);
    let names = |query: &str| {
        let app = &app;
        let path = format!("/v1/registrations{query}");
        async move {
            let r = app.get(&path).await;
            assert_eq!(r.status, 200, "{}", r.body);
            let mut names: Vec<String> = r.json()["user_registrations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["name"].as_str().unwrap().to_owned())
                .collect();
            names.sort();
            names
        }
    };
    assert_eq!(names("").await, ["a", "b", "c"]);
    assert_eq!(names("?status=pending").await, ["a"]);
    assert_eq!(names("?status=accepted").await, ["b"]);
    assert_eq!(names("?status=declined").await, ["c"]);
    assert_eq!(names("?status=PENDING").await, Vec::<String>::new());
    assert_eq!(names("?organization=org1").await, ["a", "b"]);
    assert_eq!(names("?organization=org1&status=pending").await, ["a"]);
    assert_eq!(names("?name=c").await, ["c"]);
    assert_eq!(names("?email=b@example.com").await, ["b"]);
    assert_eq!(names("?email=b@example").await, Vec::<String>::new());
    let token = a["activation_token"].as_str().unwrap();
    assert_eq!(names(&format!("?activation_token={token}")).await, ["a"]);
    // Each listed registration is shown as by `GET /v1/registrations/{uuid}`.
    let r = app.get("/v1/registrations?name=a").await;
    r.assert_ok(&indent3(&json!({"user_registrations": [a]})));
    assert_eq!(r.content_type(), JSON);
    let all = app.get("/v1/registrations").await.json();
    for reg in [&b, &c] {
        assert!(
            all["user_registrations"].as_array().unwrap().contains(reg),
            "{reg}"
        );
    }
}

#[tokio::test]
async fn only_service_admins_handle_registrations() {
    let (app, _) = with_admin().await;
    app.post("/v1/projects/ARGO", "{}").await;
    let pa = app
        .create_user(
            "pa",
            json!({"projects":[{"project":"ARGO","roles":["project_admin"]}]}),
        )
        .await;
    let viewer = app
        .create_user("viewer", json!({"service_roles":["admin_viewer"]}))
        .await;
    let reg = register(&app, r#"{"name":"n"}"#).await;
    let path = format!("/v1/registrations/{}:accept", uuid_of(&reg));
    assert_unauthorized(&app.call_as("POST", &path, None, pa["token"].as_str()).await);
    assert_unauthorized(
        &app.call_as("POST", "/v1/registrations", Some("{}"), None)
            .await,
    );
    let r = app
        .call_as("GET", "/v1/registrations", None, viewer["token"].as_str())
        .await;
    r.assert_error(403, "Access to this resource is forbidden", "FORBIDDEN");
    // Still pending.
    let shown = app
        .get(&format!("/v1/registrations/{}", uuid_of(&reg)))
        .await
        .json();
    assert_eq!(shown["status"], "pending");
}
