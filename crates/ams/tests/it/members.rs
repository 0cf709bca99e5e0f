//! Project members (contract §3.2, §5.5): project-scoped user management, in
//! the privileged view for service admins and the unprivileged one for project
//! admins.

use serde_json::{Value, json};

use crate::helpers::{
    JSON, Resp, TestApp, assert_unauthorized, indent3, is_token, is_uuid_v4, spawn_app,
};

const T0: &str = "2024-01-01T10:00:00Z";
const NOT_A_MEMBER: &str =
    "Access to this resource is forbidden. User is not a member of the project";

/// ARGO and OTHER; `pa` administers ARGO; `both` is a consumer in ARGO and a
/// publisher in OTHER with a service role.
struct Fx {
    app: TestApp,
    pa: String,
}

impl Fx {
    async fn as_pa(&self, method: &str, path: &str, body: Option<&str>) -> Resp {
        self.app.call_as(method, path, body, Some(&self.pa)).await
    }
}

async fn fixtures() -> Fx {
    let app = spawn_app().await;
    for p in ["ARGO", "OTHER"] {
        assert_eq!(
            app.post(&format!("/v1/projects/{p}"), "{}").await.status,
            200
        );
    }
    let v = app
        .create_user(
            "pa",
            json!({"projects":[{"project":"ARGO","roles":["project_admin"]}]}),
        )
        .await;
    app.create_user(
        "both",
        json!({"first_name":"B","projects":[{"project":"ARGO","roles":["consumer"]},{"project":"OTHER","roles":["publisher"]}],"service_roles":["metrics_viewer"]}),
    )
    .await;
    Fx {
        pa: v["token"].as_str().unwrap().to_owned(),
        app,
    }
}

/// The unprivileged view of a user: no token, no creator, no service roles,
/// only this project's membership.
fn unprivileged(mut v: Value, project: &str) -> Value {
    let o = v.as_object_mut().unwrap();
    o.shift_remove("token");
    o.shift_remove("created_by");
    o["service_roles"] = json!([]);
    if let Some(Value::Array(ps)) = o.get_mut("projects") {
        ps.retain(|p| p["project"] == project);
    }
    v
}

// ---------------------------------------------------------------- create --

#[tokio::test]
async fn a_project_admin_creates_a_member_and_gets_its_token() {
    let fx = fixtures().await;
    let r = fx
        .as_pa(
            "POST",
            "/v1/projects/ARGO/members/m1",
            Some(
                r#"{"email":"m1@example.com","first_name":"ignored","name":"ignored","service_roles":["service_admin"],"projects":[{"project":"OTHER","roles":["project_admin"]},{"project":"NOPE"},{"project":"ARGO","roles":["publisher","consumer"]}]}"#,
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type(), JSON);
    let v = r.json();
    assert!(is_uuid_v4(v["uuid"].as_str().unwrap()));
    assert!(is_token(v["token"].as_str().unwrap()));
    // Only the email and this project's roles count; the answer is privileged.
    let expected = json!({
        "uuid": v["uuid"],
        "projects": [{"project": "ARGO", "roles": ["publisher", "consumer"], "topics": [], "subscriptions": []}],
        "name": "m1",
        "token": v["token"],
        "email": "m1@example.com",
        "service_roles": [],
        "created_on": T0,
        "modified_on": T0,
        "created_by": "pa"
    });
    r.assert_ok(&indent3(&expected));
    // The token works for the new member's roles.
    let m1 = v["token"].as_str();
    assert_eq!(
        fx.app
            .call_as("GET", "/v1/projects/ARGO/topics", None, m1)
            .await
            .status,
        200
    );
    // The service admin sees the same record.
    fx.app.get("/v1/users/m1").await.assert_ok(&r.body);
}

#[tokio::test]
async fn a_member_created_without_an_entry_has_no_roles() {
    let fx = fixtures().await;
    let r = fx.app.post("/v1/projects/ARGO/members/m1", "{}").await;
    let v = r.json();
    // By the service token: no `created_by`.
    let expected = json!({
        "uuid": v["uuid"],
        "projects": [{"project": "ARGO", "roles": [], "topics": [], "subscriptions": []}],
        "name": "m1",
        "token": v["token"],
        "email": "",
        "service_roles": [],
        "created_on": T0,
        "modified_on": T0
    });
    r.assert_ok(&indent3(&expected));
    // A member without roles has no access.
    assert_unauthorized(
        &fx.app
            .call_as("GET", "/v1/projects/ARGO", None, v["token"].as_str())
            .await,
    );
}

#[tokio::test]
async fn create_errors_in_order() {
    let fx = fixtures().await;
    for body in [
        "",
        "nope",
        r#"{"projects":{"project":"ARGO"}}"#,
        r#"{"email":1}"#,
    ] {
        let r = fx
            .as_pa("POST", "/v1/projects/ARGO/members/m1", Some(body))
            .await;
        r.assert_error(400, "Invalid User Arguments", "INVALID_ARGUMENT");
        assert_eq!(r.content_type(), JSON);
    }
    fx.as_pa(
        "POST",
        "/v1/projects/ARGO/members/m1",
        Some(r#"{"projects":[{"project":"ARGO","roles":["publisher","boss"]}]}"#),
    )
    .await
    .assert_error(400, "invalid role: boss", "INVALID_ARGUMENT");
    // Other projects' entries are not validated at all.
    fx.app
        .get("/v1/users/m1")
        .await
        .assert_error(404, "User doesn't exist", "NOT_FOUND");
    // Any existing user name clashes, member or not, before the roles.
    for name in ["both", "pa"] {
        let r = fx
            .as_pa(
                "POST",
                &format!("/v1/projects/ARGO/members/{name}"),
                Some(r#"{"projects":[{"project":"ARGO","roles":["boss"]}]}"#),
            )
            .await;
        r.assert_error(409, "User already exists", "ALREADY_EXISTS");
    }
    fx.app.create_user("loner", json!({})).await;
    fx.as_pa("POST", "/v1/projects/ARGO/members/loner", Some("{}"))
        .await
        .assert_error(409, "User already exists", "ALREADY_EXISTS");
}

// ------------------------------------------------------------ list, show --

#[tokio::test]
async fn list_in_both_views() {
    let fx = fixtures().await;
    fx.app.clock.advance_secs(1);
    fx.app.create_user("loner", json!({})).await;
    fx.app.clock.advance_secs(1);
    fx.as_pa(
        "POST",
        "/v1/projects/ARGO/members/m1",
        Some(r#"{"projects":[{"project":"ARGO","roles":["publisher"]}]}"#),
    )
    .await;
    let full = |name: &str| {
        let app = &fx.app;
        let path = format!("/v1/users/{name}");
        async move { app.get(&path).await.json() }
    };
    let (m1, both, pa) = (full("m1").await, full("both").await, full("pa").await);
    let without_projects = |v: &Value| {
        let mut v = v.clone();
        v.as_object_mut().unwrap().shift_remove("projects");
        v
    };
    // Service token: privileged, every membership with details; newest first;
    // `loner` is no member.
    let r = fx.app.get("/v1/projects/ARGO/members?details=true").await;
    r.assert_ok(&indent3(&json!({
        "users": [m1, both, pa],
        "nextPageToken": "",
        "totalSize": 3
    })));
    assert_eq!(r.content_type(), JSON);
    fx.app
        .get("/v1/projects/ARGO/members")
        .await
        .assert_ok(&indent3(&json!({
            "users": [without_projects(&m1), without_projects(&both), without_projects(&pa)],
            "nextPageToken": "",
            "totalSize": 3
        })));
    // Project admin: unprivileged, only this project's membership.
    let view = |v: &Value| unprivileged(v.clone(), "ARGO");
    fx.as_pa("GET", "/v1/projects/ARGO/members?details=true", None)
        .await
        .assert_ok(&indent3(&json!({
            "users": [view(&m1), view(&both), view(&pa)],
            "nextPageToken": "",
            "totalSize": 3
        })));
    let plain = fx.as_pa("GET", "/v1/projects/ARGO/members", None).await;
    plain.assert_ok(&indent3(&json!({
        "users": [without_projects(&view(&m1)), without_projects(&view(&both)), without_projects(&view(&pa))],
        "nextPageToken": "",
        "totalSize": 3
    })));
    assert!(!plain.body.contains("token"), "{}", plain.body);
    // Pages.
    let first = fx
        .as_pa("GET", "/v1/projects/ARGO/members?pageSize=2", None)
        .await
        .json();
    assert_eq!(first["users"][0]["name"], "m1");
    assert_eq!(first["users"][1]["name"], "both");
    assert_eq!(first["totalSize"], 3);
    let next = first["nextPageToken"].as_str().unwrap();
    assert!(!next.is_empty());
    let second = fx
        .as_pa(
            "GET",
            &format!("/v1/projects/ARGO/members?pageSize=2&pageToken={next}"),
            None,
        )
        .await;
    second.assert_ok(&indent3(&json!({
        "users": [without_projects(&view(&pa))],
        "nextPageToken": "",
        "totalSize": 3
    })));
    fx.as_pa("GET", "/v1/projects/ARGO/members?pageSize=x", None)
        .await
        .assert_error(400, "Invalid page size", "INVALID_ARGUMENT");
    fx.as_pa("GET", "/v1/projects/ARGO/members?pageToken=@", None)
        .await
        .assert_error(400, "Invalid page token", "INVALID_ARGUMENT");
    // A project with no members.
    fx.app.post("/v1/projects/EMPTY", "{}").await;
    fx.app
        .get("/v1/projects/EMPTY/members")
        .await
        .assert_ok(&indent3(
            &json!({"users": [], "nextPageToken": "", "totalSize": 0}),
        ));
}

#[tokio::test]
async fn show_in_both_views() {
    let fx = fixtures().await;
    let full = fx.app.get("/v1/users/both").await;
    fx.app
        .get("/v1/projects/ARGO/members/both")
        .await
        .assert_ok(&full.body);
    let r = fx
        .as_pa("GET", "/v1/projects/ARGO/members/both", None)
        .await;
    r.assert_ok(&indent3(&unprivileged(full.json(), "ARGO")));
    assert_eq!(r.content_type(), JSON);
    assert!(!r.body.contains("OTHER") && !r.body.contains("metrics_viewer"));
    // A user holding the service_admin service role gets the privileged view.
    let sa = fx
        .app
        .create_user("sa", json!({"service_roles":["service_admin"]}))
        .await;
    fx.app
        .call_as(
            "GET",
            "/v1/projects/ARGO/members/both",
            None,
            sa["token"].as_str(),
        )
        .await
        .assert_ok(&full.body);
    // Not a member here, or no such user: 404.
    fx.app.create_user("loner", json!({})).await;
    for name in ["loner", "nobody"] {
        fx.as_pa("GET", &format!("/v1/projects/ARGO/members/{name}"), None)
            .await
            .assert_error(404, "User doesn't exist", "NOT_FOUND");
    }
    fx.app
        .get("/v1/projects/OTHER/members/pa")
        .await
        .assert_error(404, "User doesn't exist", "NOT_FOUND");
}

// ---------------------------------------------------------------- update --

#[tokio::test]
async fn update_replaces_only_this_projects_roles() {
    let fx = fixtures().await;
    fx.app.clock.advance_secs(60);
    let r = fx
        .as_pa(
            "PUT",
            "/v1/projects/ARGO/members/both",
            Some(r#"{"email":"ignored@example.com","service_roles":[],"projects":[{"project":"OTHER","roles":[]},{"project":"ARGO","roles":["publisher","project_admin"]}]}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let full = fx.app.get("/v1/users/both").await.json();
    assert_eq!(
        full["projects"],
        json!([
            {"project": "ARGO", "roles": ["publisher", "project_admin"], "topics": [], "subscriptions": []},
            {"project": "OTHER", "roles": ["publisher"], "topics": [], "subscriptions": []}
        ])
    );
    assert_eq!(full["email"], "");
    assert_eq!(full["service_roles"], json!(["metrics_viewer"]));
    assert_eq!(full["modified_on"], "2024-01-01T10:01:00Z");
    // The answer is in the caller's view.
    r.assert_ok(&indent3(&unprivileged(full.clone(), "ARGO")));
    // By the service token: privileged.
    let r = fx
        .app
        .put(
            "/v1/projects/ARGO/members/both",
            r#"{"projects":[{"project":"ARGO","roles":["consumer"]}]}"#,
        )
        .await;
    let full = fx.app.get("/v1/users/both").await;
    r.assert_ok(&full.body);
}

#[tokio::test]
async fn update_errors_in_order() {
    let fx = fixtures().await;
    fx.app.create_user("loner", json!({})).await;
    let put = |user: &'static str, body: &'static str| {
        fx.as_pa(
            "PUT",
            Box::leak(format!("/v1/projects/ARGO/members/{user}").into_boxed_str()),
            Some(body),
        )
    };
    for body in ["", "[]", r#"{"projects":"ARGO"}"#] {
        put("both", body)
            .await
            .assert_error(400, "Invalid User Arguments", "INVALID_ARGUMENT");
    }
    // Decoding before the user.
    put("nobody", "")
        .await
        .assert_error(400, "Invalid User Arguments", "INVALID_ARGUMENT");
    put(
        "nobody",
        r#"{"projects":[{"project":"ARGO","roles":["bad"]}]}"#,
    )
    .await
    .assert_error(404, "User doesn't exist", "NOT_FOUND");
    // No entry for this project, or not a member: 403, before the roles.
    for (user, body) in [
        ("both", "{}"),
        (
            "both",
            r#"{"projects":[{"project":"OTHER","roles":["consumer"]}]}"#,
        ),
        (
            "loner",
            r#"{"projects":[{"project":"ARGO","roles":["bad"]}]}"#,
        ),
    ] {
        let r = put(user, body).await;
        r.assert_error(403, NOT_A_MEMBER, "FORBIDDEN");
        assert_eq!(r.content_type(), JSON);
    }
    put(
        "both",
        r#"{"projects":[{"project":"ARGO","roles":["consumer","bad"]}]}"#,
    )
    .await
    .assert_error(400, "invalid role: bad", "INVALID_ARGUMENT");
    // Nothing changed.
    let v = fx.app.get("/v1/users/both").await.json();
    assert_eq!(v["projects"][0]["roles"], json!(["consumer"]));
    assert_eq!(v["modified_on"], T0);
}

// ------------------------------------------------------------ add, remove --

#[tokio::test]
async fn add_makes_an_existing_user_a_member() {
    let fx = fixtures().await;
    let v = fx
        .app
        .create_user(
            "loner",
            json!({"projects":[{"project":"OTHER","roles":["consumer"]}]}),
        )
        .await;
    let loner = v["token"].as_str();
    assert_unauthorized(
        &fx.app
            .call_as("GET", "/v1/projects/ARGO/subscriptions", None, loner)
            .await,
    );
    fx.app.clock.advance_secs(5);
    let r = fx
        .as_pa(
            "POST",
            "/v1/projects/ARGO/members/loner:add",
            Some(r#"{"roles":["consumer"]}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type(), JSON);
    let full = fx.app.get("/v1/users/loner").await.json();
    // Appended after the existing membership.
    assert_eq!(
        full["projects"],
        json!([
            {"project": "OTHER", "roles": ["consumer"], "topics": [], "subscriptions": []},
            {"project": "ARGO", "roles": ["consumer"], "topics": [], "subscriptions": []}
        ])
    );
    assert_eq!(full["modified_on"], "2024-01-01T10:00:05Z");
    r.assert_ok(&indent3(&unprivileged(full, "ARGO")));
    assert_eq!(
        fx.app
            .call_as("GET", "/v1/projects/ARGO/subscriptions", None, loner)
            .await
            .status,
        200
    );
    // By the service token, with `{}`: privileged, no roles.
    fx.app.create_user("loner2", json!({})).await;
    let r = fx
        .app
        .post("/v1/projects/ARGO/members/loner2:add", "{}")
        .await;
    let full = fx.app.get("/v1/users/loner2").await;
    r.assert_ok(&full.body);
    assert_eq!(full.json()["projects"][0]["roles"], json!([]));
}

#[tokio::test]
async fn add_errors_in_order() {
    let fx = fixtures().await;
    fx.app.create_user("loner", json!({})).await;
    let add = |user: &str, body: &'static str| {
        let path = format!("/v1/projects/ARGO/members/{user}:add");
        let fx = &fx;
        async move { fx.as_pa("POST", &path, Some(body)).await }
    };
    // The user first, even before the body.
    add("nobody", "")
        .await
        .assert_error(404, "User doesn't exist", "NOT_FOUND");
    for body in ["", "nope", r#"{"roles":"consumer"}"#] {
        let r = add("loner", body).await;
        r.assert_error(400, "Invalid Request Body", "BAD_REQUEST");
        assert_eq!(r.content_type(), JSON);
    }
    // Already a member, before the roles.
    let r = add("both", r#"{"roles":["bad"]}"#).await;
    r.assert_error(409, "User is already a member of the project", "CONFLICT");
    assert_eq!(r.content_type(), JSON);
    add("loner", r#"{"roles":["consumer","bad"]}"#)
        .await
        .assert_error(400, "invalid role: bad", "INVALID_ARGUMENT");
    let v = fx.app.get("/v1/users/loner").await.json();
    assert!(v.get("projects").is_none(), "{v}");
}

#[tokio::test]
async fn remove_ends_the_membership_only() {
    let fx = fixtures().await;
    let both = fx.app.get("/v1/users/both").await.json();
    let token = both["token"].as_str();
    assert_eq!(
        fx.app
            .call_as("GET", "/v1/projects/ARGO/subscriptions", None, token)
            .await
            .status,
        200
    );
    // No body needed; the answer is a literal `{}`.
    let r = fx
        .as_pa("POST", "/v1/projects/ARGO/members/both:remove", None)
        .await;
    r.assert_ok("{}");
    assert_eq!(r.content_type(), JSON);
    // The user stays, with its other membership and its token.
    let v = fx.app.get("/v1/users/both").await.json();
    assert_eq!(
        v["projects"],
        json!([{"project": "OTHER", "roles": ["publisher"], "topics": [], "subscriptions": []}])
    );
    assert_eq!(v["token"], both["token"]);
    // In ARGO it now has only its service role: forbidden, not unauthorized.
    let r = fx
        .app
        .call_as("GET", "/v1/projects/ARGO/subscriptions", None, token)
        .await;
    r.assert_error(403, "Access to this resource is forbidden", "FORBIDDEN");
    fx.as_pa("GET", "/v1/projects/ARGO/members/both", None)
        .await
        .assert_error(404, "User doesn't exist", "NOT_FOUND");
    let names: Vec<Value> = fx.app.get("/v1/projects/ARGO/members").await.json()["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].clone())
        .collect();
    assert_eq!(names, [json!("pa")]);
    // Again: not a member (403); unknown user: 404.
    let r = fx
        .as_pa("POST", "/v1/projects/ARGO/members/both:remove", Some("{}"))
        .await;
    r.assert_error(403, NOT_A_MEMBER, "FORBIDDEN");
    fx.as_pa("POST", "/v1/projects/ARGO/members/nobody:remove", None)
        .await
        .assert_error(404, "User doesn't exist", "NOT_FOUND");
    // A project admin may remove itself; then it has no access.
    fx.as_pa("POST", "/v1/projects/ARGO/members/pa:remove", None)
        .await
        .assert_ok("{}");
    assert_unauthorized(&fx.as_pa("GET", "/v1/projects/ARGO/members", None).await);
}
