//! Users, service-wide (contract §3.2, §4, §5.2): create, show, lookups by
//! token and UUID, list, update, delete, refresh token, own profile.

use ams_core::auth::ACCEPTED_ROLES;
use serde_json::{Value, json};

use crate::helpers::{
    JSON, TestApp, assert_forbidden, assert_unauthorized, indent3, is_token, is_uuid_v4, spawn_app,
};

const T0: &str = "2024-01-01T10:00:00Z";

async fn with_projects() -> TestApp {
    let app = spawn_app().await;
    for p in ["ARGO", "OTHER"] {
        assert_eq!(
            app.post(&format!("/v1/projects/{p}"), "{}").await.status,
            200
        );
    }
    app
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("no {key} in {v}"))
}

#[tokio::test]
async fn create_returns_the_privileged_user() {
    let app = with_projects().await;
    let r = app
        .post(
            "/v1/users/UserZ",
            r#"{"email":"z@example.com","first_name":"Zed","last_name":"Zulu","organization":"GRNET","description":"a user","projects":[{"project":"ARGO","roles":["publisher","consumer"]},{"project":"OTHER","roles":["project_admin"]}],"service_roles":["metrics_viewer"]}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type(), JSON);
    let v = r.json();
    assert!(is_uuid_v4(str_of(&v, "uuid")), "{v}");
    assert!(is_token(str_of(&v, "token")), "{v}");
    let expected = json!({
        "uuid": v["uuid"],
        "projects": [
            {"project": "ARGO", "roles": ["publisher", "consumer"], "topics": [], "subscriptions": []},
            {"project": "OTHER", "roles": ["project_admin"], "topics": [], "subscriptions": []}
        ],
        "name": "UserZ",
        "first_name": "Zed",
        "last_name": "Zulu",
        "organization": "GRNET",
        "description": "a user",
        "token": v["token"],
        "email": "z@example.com",
        "service_roles": ["metrics_viewer"],
        "created_on": T0,
        "modified_on": T0
    });
    // Created by the service token: no `created_by`.
    assert_eq!(r.body, indent3(&expected));
    // Show returns the same record, later too.
    app.clock.advance_secs(30);
    app.get("/v1/users/UserZ").await.assert_ok(&r.body);
}

#[tokio::test]
async fn create_with_an_empty_object_omits_what_is_empty() {
    let app = with_projects().await;
    for (name, body) in [
        ("u1", "{}"),
        // `null` is absent; unknown keys are ignored; keys are case-insensitive.
        (
            "u2",
            r#"{"projects":null,"service_roles":null,"email":null,"foo":1}"#,
        ),
    ] {
        let r = app.post(&format!("/v1/users/{name}"), body).await;
        let v = r.json();
        let expected = json!({
            "uuid": v["uuid"],
            "name": name,
            "token": v["token"],
            "email": "",
            "service_roles": [],
            "created_on": T0,
            "modified_on": T0
        });
        r.assert_ok(&indent3(&expected));
    }
    // Emails are not validated (the contract has no rule for them); a role-less
    // membership shows `roles: []`; entries without a project are skipped.
    let r = app
        .post(
            "/v1/users/u3",
            r#"{"EMAIL":"not an email","Projects":[{"project":"","roles":["bogus"]},{"project":"ARGO"}]}"#,
        )
        .await;
    let v = r.json();
    let expected = json!({
        "uuid": v["uuid"],
        "projects": [{"project": "ARGO", "roles": [], "topics": [], "subscriptions": []}],
        "name": "u3",
        "token": v["token"],
        "email": "not an email",
        "service_roles": [],
        "created_on": T0,
        "modified_on": T0
    });
    r.assert_ok(&indent3(&expected));
}

#[tokio::test]
async fn user_fields_are_html_escaped_like_go() {
    let app = with_projects().await;
    let r = app
        .post(
            "/v1/users/u1",
            r#"{"email":"a&b@example.com","description":"<b>\"hi\"</b>"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .contains(r#""description": "\u003cb\u003e\"hi\"\u003c/b\u003e","#),
        "{}",
        r.body
    );
    assert!(
        r.body.contains(r#""email": "a\u0026b@example.com","#),
        "{}",
        r.body
    );
    assert_eq!(r.json()["description"], "<b>\"hi\"</b>");
}

#[tokio::test]
async fn every_accepted_role_is_accepted_as_project_and_service_role() {
    let app = with_projects().await;
    let v = app
        .create_user(
            "all",
            json!({"projects":[{"project":"ARGO","roles":ACCEPTED_ROLES}],"service_roles":ACCEPTED_ROLES}),
        )
        .await;
    assert_eq!(v["service_roles"], json!(ACCEPTED_ROLES));
    assert_eq!(v["projects"][0]["roles"], json!(ACCEPTED_ROLES));
    // The same with any other spelling fails.
    for bad in ["Publisher", "superuser", " consumer", "_admin_"] {
        let body = json!({"service_roles": [bad]}).to_string();
        app.post("/v1/users/x", &body).await.assert_error(
            400,
            &format!("invalid role: {bad}"),
            "INVALID_ARGUMENT",
        );
    }
}

#[tokio::test]
async fn tokens_and_uuids_are_fresh_for_every_user() {
    let app = with_projects().await;
    let mut tokens = Vec::new();
    let mut uuids = Vec::new();
    for i in 0..10 {
        let v = app.create_user(&format!("u{i}"), json!({})).await;
        assert!(is_token(str_of(&v, "token")));
        assert!(is_uuid_v4(str_of(&v, "uuid")));
        tokens.push(str_of(&v, "token").to_owned());
        uuids.push(str_of(&v, "uuid").to_owned());
    }
    tokens.sort();
    tokens.dedup();
    uuids.sort();
    uuids.dedup();
    assert_eq!((tokens.len(), uuids.len()), (10, 10));
    // The service token is not a user's token.
    assert!(!tokens.contains(&app.token));
}

#[tokio::test]
async fn created_by_is_the_creators_current_name() {
    let app = with_projects().await;
    let sa = app
        .create_user("sa", json!({"service_roles":["service_admin"]}))
        .await;
    let sa_token = str_of(&sa, "token");
    let r = app
        .call_as("POST", "/v1/users/made", Some("{}"), Some(sa_token))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["created_by"], "sa");
    // `created_by` is the last key.
    assert!(
        r.body.ends_with(",\n   \"created_by\": \"sa\"\n}"),
        "{}",
        r.body
    );
    // The same for a project it creates.
    let r = app
        .call_as("POST", "/v1/projects/MINE", Some("{}"), Some(sa_token))
        .await;
    assert_eq!(r.json()["created_by"], "sa");
    // Renaming the creator renames it in `created_by`.
    let r = app.put("/v1/users/sa", r#"{"name":"boss"}"#).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.get("/v1/users/made").await.json()["created_by"], "boss");
    assert_eq!(
        app.get("/v1/projects/MINE").await.json()["created_by"],
        "boss"
    );
    // A deleted creator is omitted.
    assert_eq!(app.delete("/v1/users/boss").await.status, 200);
    let v = app.get("/v1/users/made").await.json();
    assert!(v.get("created_by").is_none(), "{v}");
    let v = app.get("/v1/projects/MINE").await.json();
    assert!(v.get("created_by").is_none(), "{v}");
}

#[tokio::test]
async fn create_errors_in_order() {
    let app = with_projects().await;
    let invalid = |r: crate::helpers::Resp| {
        r.assert_error(400, "Invalid User Arguments", "INVALID_ARGUMENT");
        assert_eq!(r.content_type(), JSON);
    };
    for body in [
        "",
        "nope",
        "[]",
        r#"{"email":5}"#,
        r#"{"projects":"ARGO"}"#,
        r#"{"projects":[{"project":"ARGO","roles":"publisher"}]}"#,
        r#"{"service_roles":"service_admin"}"#,
    ] {
        invalid(app.post("/v1/users/u1", body).await);
    }
    let err = |body: &'static str, message: &'static str| {
        let app = &app;
        async move {
            app.post("/v1/users/u1", body)
                .await
                .assert_error(400, message, "INVALID_ARGUMENT");
        }
    };
    err(
        r#"{"projects":[{"project":"ARGO"},{"project":"ARGO","roles":["bad"]}]}"#,
        "duplicate reference of project ARGO",
    )
    .await;
    err(
        r#"{"projects":[{"project":"NOPE","roles":["bad"]}]}"#,
        "invalid project: NOPE",
    )
    .await;
    err(
        r#"{"projects":[{"project":"ARGO","roles":["publisher","bad","worse"]}]}"#,
        "invalid role: bad",
    )
    .await;
    // Entries are checked one after the other.
    err(
        r#"{"projects":[{"project":"ARGO","roles":["bad"]},{"project":"NOPE"}]}"#,
        "invalid role: bad",
    )
    .await;
    err(
        r#"{"projects":[{"project":"NOPE"},{"project":"ARGO","roles":["bad"]}]}"#,
        "invalid project: NOPE",
    )
    .await;
    err(
        r#"{"projects":[{"project":"OTHER"},{"project":"NOPE"},{"project":"OTHER"}]}"#,
        "invalid project: NOPE",
    )
    .await;
    // Memberships before service roles.
    err(
        r#"{"projects":[{"project":"NOPE"}],"service_roles":["bad"]}"#,
        "invalid project: NOPE",
    )
    .await;
    err(
        r#"{"service_roles":["service_admin","root"]}"#,
        "invalid role: root",
    )
    .await;
    // Nothing was created by the failures.
    app.get("/v1/users/u1")
        .await
        .assert_error(404, "User doesn't exist", "NOT_FOUND");
    // The name clash comes after decoding but before the content checks.
    app.create_user("u1", json!({})).await;
    invalid(app.post("/v1/users/u1", "").await);
    let r = app
        .post("/v1/users/u1", r#"{"projects":[{"project":"NOPE"}]}"#)
        .await;
    r.assert_error(409, "User already exists", "ALREADY_EXISTS");
    assert_eq!(r.content_type(), JSON);
}

#[tokio::test]
async fn show_by_name_token_and_uuid() {
    let app = with_projects().await;
    let v = app
        .create_user(
            "u1",
            json!({"projects":[{"project":"ARGO","roles":["consumer"]}]}),
        )
        .await;
    let shown = app.get("/v1/users/u1").await;
    assert_eq!(shown.status, 200);
    let by_token = app
        .get(&format!("/v1/users:byToken/{}", str_of(&v, "token")))
        .await;
    by_token.assert_ok(&shown.body);
    let by_uuid = app
        .get(&format!("/v1/users:byUUID/{}", str_of(&v, "uuid")))
        .await;
    by_uuid.assert_ok(&shown.body);
    for path in [
        "/v1/users/nobody".to_owned(),
        format!("/v1/users:byToken/{}", "0".repeat(64)),
        "/v1/users:byToken/S3CR3T".to_owned(),
        format!("/v1/users:byUUID/{}", uuid_like()),
        "/v1/users:byUUID/not-a-uuid".to_owned(),
    ] {
        let r = app.get(&path).await;
        r.assert_error(404, "User doesn't exist", "NOT_FOUND");
        assert_eq!(r.content_type(), JSON, "{path}");
    }
}

fn uuid_like() -> &'static str {
    "0b3a1e5c-9d2f-4c1a-8e7b-2f6d5c4b3a21"
}

#[tokio::test]
async fn users_show_the_topics_and_subscriptions_whose_acl_names_them() {
    let app = with_projects().await;
    app.put("/v1/projects/ARGO/topics/t1", "").await;
    app.put("/v1/projects/ARGO/topics/t2", "").await;
    app.put("/v1/projects/ARGO/topics/t3", "").await;
    for s in ["s1", "s2"] {
        app.put(
            &format!("/v1/projects/ARGO/subscriptions/{s}"),
            r#"{"topic":"projects/ARGO/topics/t1"}"#,
        )
        .await;
    }
    let v = app
        .create_user(
            "u1",
            json!({"projects":[{"project":"OTHER","roles":["consumer"]},{"project":"ARGO","roles":["publisher","consumer"]}]}),
        )
        .await;
    app.create_user(
        "u2",
        json!({"projects":[{"project":"ARGO","roles":["publisher"]}]}),
    )
    .await;
    app.set_acl("ARGO", "topics", "t3", &["u1", "u2"]).await;
    app.set_acl("ARGO", "topics", "t1", &["u1"]).await;
    app.set_acl("ARGO", "topics", "t2", &["u2"]).await;
    app.set_acl("ARGO", "subscriptions", "s2", &["u1"]).await;
    let expected_projects = json!([
        {"project": "OTHER", "roles": ["consumer"], "topics": [], "subscriptions": []},
        {"project": "ARGO", "roles": ["publisher", "consumer"], "topics": ["t1", "t3"], "subscriptions": ["s2"]}
    ]);
    let shown = app.get("/v1/users/u1").await;
    assert_eq!(shown.json()["projects"], expected_projects);
    // The profile is the same privileged record.
    let token = str_of(&v, "token");
    app.call_as("GET", "/v1/users/profile", None, Some(token))
        .await
        .assert_ok(&shown.body);
}

#[tokio::test]
async fn memberships_follow_project_renames_and_deletions() {
    let app = with_projects().await;
    let v = app
        .create_user(
            "u1",
            json!({"projects":[{"project":"ARGO","roles":["consumer"]},{"project":"OTHER","roles":["publisher"]}]}),
        )
        .await;
    let token = v["token"].as_str();
    assert_eq!(
        app.put("/v1/projects/ARGO", r#"{"name":"RENAMED"}"#)
            .await
            .status,
        200
    );
    let shown = app.get("/v1/users/u1").await.json();
    assert_eq!(shown["projects"][0]["project"], "RENAMED");
    assert_eq!(
        app.call_as("GET", "/v1/projects/RENAMED/subscriptions", None, token)
            .await
            .status,
        200
    );
    let r = app.get("/v1/users?project=RENAMED").await.json();
    assert_eq!(r["totalSize"], 1);
    app.get("/v1/users?project=ARGO").await.assert_error(
        404,
        "ProjectUUID doesn't exist",
        "NOT_FOUND",
    );
    // A deleted project's membership is no longer shown, and a new project
    // with the same name does not inherit it.
    assert_eq!(app.delete("/v1/projects/OTHER").await.status, 200);
    app.post("/v1/projects/OTHER", "{}").await;
    let shown = app.get("/v1/users/u1").await.json();
    assert_eq!(
        shown["projects"],
        json!([{"project": "RENAMED", "roles": ["consumer"], "topics": [], "subscriptions": []}])
    );
    assert_unauthorized(
        &app.call_as("GET", "/v1/projects/OTHER/topics", None, token)
            .await,
    );
}

// --------------------------------------------------------------- profile --

#[tokio::test]
async fn profile_needs_a_user_token() {
    let app = with_projects().await;
    let v = app.create_user("me", json!({})).await;
    let token = str_of(&v, "token");
    for t in [None, Some(""), Some("nope"), Some("S3CR3T")] {
        assert_unauthorized(&app.call_as("GET", "/v1/users/profile", None, t).await);
    }
    let r = app
        .call_as("GET", "/v1/users/profile", None, Some(token))
        .await;
    r.assert_ok(&app.get("/v1/users/me").await.body);
    assert_eq!(r.content_type(), JSON);
    // `?key=` works as well (auth option `both`).
    let r = app
        .call_as("GET", &format!("/v1/users/profile?key={token}"), None, None)
        .await;
    assert_eq!((r.status, r.json()["name"].as_str()), (200, Some("me")));
}

// ------------------------------------------------------------------ list --

/// The show body of each user, without `projects` (what a list shows unless
/// `details=true`).
async fn listed(app: &TestApp, names: &[&str], details: bool) -> Vec<Value> {
    let mut out = Vec::new();
    for n in names {
        let mut v = app.get(&format!("/v1/users/{n}")).await.json();
        if !details {
            v.as_object_mut().unwrap().shift_remove("projects");
        }
        out.push(v);
    }
    out
}

#[tokio::test]
async fn list_is_newest_first_without_projects_unless_details() {
    let app = with_projects().await;
    app.get("/v1/users").await.assert_ok(&indent3(
        &json!({"users": [], "nextPageToken": "", "totalSize": 0}),
    ));
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        app.clock.advance_secs(i as i64);
        app.create_user(
            name,
            json!({"projects":[{"project":"ARGO","roles":["consumer"]}]}),
        )
        .await;
    }
    let r = app.get("/v1/users").await;
    let users = listed(&app, &["c", "b", "a"], false).await;
    r.assert_ok(&indent3(
        &json!({"users": users, "nextPageToken": "", "totalSize": 3}),
    ));
    assert_eq!(r.content_type(), JSON);
    let users = listed(&app, &["c", "b", "a"], true).await;
    app.get("/v1/users?details=true").await.assert_ok(&indent3(
        &json!({"users": users, "nextPageToken": "", "totalSize": 3}),
    ));
    // Only the literal `true` asks for details.
    let users = listed(&app, &["c", "b", "a"], false).await;
    app.get("/v1/users?details=TRUE").await.assert_ok(&indent3(
        &json!({"users": users, "nextPageToken": "", "totalSize": 3}),
    ));
}

#[tokio::test]
async fn list_pages_and_filters_by_project() {
    let app = with_projects().await;
    for name in ["a", "b", "c", "d", "e"] {
        let project = if name == "b" || name == "d" {
            "OTHER"
        } else {
            "ARGO"
        };
        app.create_user(
            name,
            json!({"projects":[{"project":project,"roles":["consumer"]}]}),
        )
        .await;
    }
    let names = |v: &Value| -> Vec<String> {
        v["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = app.get("/v1/users?pageSize=2").await.json();
    assert_eq!(names(&first), ["e", "d"]);
    assert_eq!(first["totalSize"], 5);
    let next = first["nextPageToken"].as_str().unwrap().to_owned();
    assert!(!next.is_empty());
    let second = app
        .get(&format!("/v1/users?pageSize=2&pageToken={next}"))
        .await
        .json();
    assert_eq!(names(&second), ["c", "b"]);
    assert_eq!(second["totalSize"], 5);
    let next = second["nextPageToken"].as_str().unwrap().to_owned();
    let third = app
        .get(&format!("/v1/users?pageSize=2&pageToken={next}"))
        .await
        .json();
    assert_eq!(names(&third), ["a"]);
    assert_eq!(third["nextPageToken"], "");
    // pageSize 0 or negative: everything.
    for size in ["0", "-1"] {
        let all = app.get(&format!("/v1/users?pageSize={size}")).await.json();
        assert_eq!(names(&all), ["e", "d", "c", "b", "a"]);
    }
    // The project filter: members only, totalSize counts them.
    let argo = app.get("/v1/users?project=ARGO&pageSize=1").await.json();
    assert_eq!(names(&argo), ["e"]);
    assert_eq!(argo["totalSize"], 3);
    let next = argo["nextPageToken"].as_str().unwrap().to_owned();
    let argo2 = app
        .get(&format!(
            "/v1/users?project=ARGO&pageSize=5&pageToken={next}"
        ))
        .await
        .json();
    assert_eq!(names(&argo2), ["c", "a"]);
    let other = app.get("/v1/users?project=OTHER&details=true").await.json();
    assert_eq!(names(&other), ["d", "b"]);
    assert_eq!(other["users"][0]["projects"][0]["project"], "OTHER");
    // Errors.
    app.get("/v1/users?project=NOPE").await.assert_error(
        404,
        "ProjectUUID doesn't exist",
        "NOT_FOUND",
    );
    app.get("/v1/users?pageSize=two").await.assert_error(
        400,
        "Invalid page size",
        "INVALID_ARGUMENT",
    );
    app.get("/v1/users?pageToken=%21%21%21").await.assert_error(
        400,
        "Invalid page token",
        "INVALID_ARGUMENT",
    );
}

// ---------------------------------------------------------------- update --

#[tokio::test]
async fn update_changes_what_is_given() {
    let app = with_projects().await;
    let v = app
        .create_user(
            "u1",
            json!({"email":"old@example.com","first_name":"First","organization":"Org","projects":[{"project":"ARGO","roles":["consumer"]}],"service_roles":["metrics_viewer"]}),
        )
        .await;
    let (uuid, token) = (str_of(&v, "uuid"), str_of(&v, "token"));
    app.clock.advance_secs(60);
    let r = app
        .put(
            "/v1/users/u1",
            r#"{"name":"renamed","email":"new@example.com","first_name":"","last_name":"Last","projects":[{"project":"OTHER","roles":["publisher"]}],"service_roles":["admin_viewer"]}"#,
        )
        .await;
    let expected = json!({
        "uuid": uuid,
        "projects": [{"project": "OTHER", "roles": ["publisher"], "topics": [], "subscriptions": []}],
        "name": "renamed",
        "first_name": "First",
        "last_name": "Last",
        "organization": "Org",
        "token": token,
        "email": "new@example.com",
        "service_roles": ["admin_viewer"],
        "created_on": T0,
        "modified_on": "2024-01-01T10:01:00Z"
    });
    r.assert_ok(&indent3(&expected));
    assert_eq!(r.content_type(), JSON);
    app.get("/v1/users/renamed").await.assert_ok(&r.body);
    app.get("/v1/users/u1")
        .await
        .assert_error(404, "User doesn't exist", "NOT_FOUND");
    // The token is unchanged; the roles moved to OTHER (in ARGO only the
    // service role remains, which allows no project route: 403).
    let t = Some(token);
    assert_forbidden(
        &app.call_as("GET", "/v1/projects/ARGO/subscriptions", None, t)
            .await,
    );
    assert_eq!(
        app.call_as("GET", "/v1/projects/OTHER/topics", None, t)
            .await
            .status,
        200
    );

    // Absent or null `projects`/`service_roles` keep them.
    app.clock.advance_secs(60);
    let r = app
        .put(
            "/v1/users/renamed",
            r#"{"projects":null,"description":"d"}"#,
        )
        .await;
    let v = r.json();
    assert_eq!(v["projects"], expected["projects"]);
    assert_eq!(v["service_roles"], json!(["admin_viewer"]));
    assert_eq!(v["description"], "d");
    assert_eq!(v["modified_on"], "2024-01-01T10:02:00Z");
    // `[]` removes them all.
    let r = app
        .put("/v1/users/renamed", r#"{"projects":[],"service_roles":[]}"#)
        .await;
    let v = r.json();
    assert!(v.get("projects").is_none(), "{v}");
    assert_eq!(v["service_roles"], json!([]));
    assert_unauthorized(
        &app.call_as("GET", "/v1/projects/OTHER/topics", None, t)
            .await,
    );
    // Renaming to its own name is no clash.
    assert_eq!(
        app.put("/v1/users/renamed", r#"{"name":"renamed"}"#)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn update_errors() {
    let app = with_projects().await;
    app.create_user(
        "u1",
        json!({"projects":[{"project":"ARGO","roles":["consumer"]}]}),
    )
    .await;
    app.create_user("u2", json!({})).await;
    let before = app.get("/v1/users/u1").await.body;
    for body in ["", "x", r#"{"name":7}"#, r#"{"projects":{}}"#] {
        app.put("/v1/users/u1", body).await.assert_error(
            400,
            "Invalid User Arguments",
            "INVALID_ARGUMENT",
        );
    }
    // Decoding first, then the user.
    app.put("/v1/users/nobody", "").await.assert_error(
        400,
        "Invalid User Arguments",
        "INVALID_ARGUMENT",
    );
    let r = app
        .put("/v1/users/nobody", r#"{"projects":[{"project":"NOPE"}]}"#)
        .await;
    r.assert_error(404, "User doesn't exist", "NOT_FOUND");
    assert_eq!(r.content_type(), JSON);
    for (body, message) in [
        (
            r#"{"name":"u2"}"#,
            "invalid user name change, name already exists",
        ),
        (
            r#"{"projects":[{"project":"NOPE"}]}"#,
            "invalid project: NOPE",
        ),
        (
            r#"{"projects":[{"project":"ARGO"},{"project":"ARGO"}]}"#,
            "duplicate reference of project ARGO",
        ),
        (
            r#"{"projects":[{"project":"ARGO","roles":["owner"]}]}"#,
            "invalid role: owner",
        ),
        (r#"{"service_roles":["owner"]}"#, "invalid role: owner"),
    ] {
        app.clock.advance_secs(1);
        app.put("/v1/users/u1", body)
            .await
            .assert_error(400, message, "INVALID_ARGUMENT");
    }
    // Nothing changed.
    app.get("/v1/users/u1").await.assert_ok(&before);
}

// --------------------------------------------------------- delete, token --

#[tokio::test]
async fn delete_removes_the_user_and_its_token() {
    let app = with_projects().await;
    let v = app
        .create_user(
            "u1",
            json!({"projects":[{"project":"ARGO","roles":["project_admin"]}]}),
        )
        .await;
    let token = str_of(&v, "token");
    let r = app.delete("/v1/users/u1").await;
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    app.get("/v1/users/u1")
        .await
        .assert_error(404, "User doesn't exist", "NOT_FOUND");
    app.get(&format!("/v1/users:byToken/{token}"))
        .await
        .assert_error(404, "User doesn't exist", "NOT_FOUND");
    assert_unauthorized(
        &app.call_as("GET", "/v1/projects/ARGO", None, Some(token))
            .await,
    );
    let r = app.delete("/v1/users/u1").await;
    r.assert_error(404, "User doesn't exist", "NOT_FOUND");
    assert_eq!(r.content_type(), JSON);
    // The name is free again, for a new user with a new identity.
    let again = app.create_user("u1", json!({})).await;
    assert_ne!(again["uuid"], v["uuid"]);
    assert_ne!(again["token"], v["token"]);
}

#[tokio::test]
async fn refresh_token_replaces_the_token_at_once() {
    let app = with_projects().await;
    let v = app
        .create_user(
            "u1",
            json!({"projects":[{"project":"ARGO","roles":["project_admin"]}]}),
        )
        .await;
    let old = str_of(&v, "token").to_owned();
    let before = app.get("/v1/users/u1").await.json();
    let r = app.post("/v1/users/u1:refreshToken", "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type(), JSON);
    let after = r.json();
    let new = str_of(&after, "token").to_owned();
    assert!(is_token(&new));
    assert_ne!(new, old);
    // Everything else is as it was (the clock did not move).
    let mut expected = before.clone();
    expected["token"] = json!(new);
    r.assert_ok(&indent3(&expected));
    // The old token is dead at once, the new one works.
    assert_unauthorized(
        &app.call_as("GET", "/v1/projects/ARGO", None, Some(&old))
            .await,
    );
    assert_unauthorized(
        &app.call_as("GET", "/v1/users/profile", None, Some(&old))
            .await,
    );
    app.get(&format!("/v1/users:byToken/{old}"))
        .await
        .assert_error(404, "User doesn't exist", "NOT_FOUND");
    assert_eq!(
        app.call_as("GET", "/v1/projects/ARGO", None, Some(&new))
            .await
            .status,
        200
    );
    app.get(&format!("/v1/users:byToken/{new}"))
        .await
        .assert_ok(&r.body);
    // No body is needed; an unknown user is a 404.
    let r = app.call("POST", "/v1/users/u1:refreshToken", None).await;
    assert_eq!(r.status, 200);
    assert_ne!(r.json()["token"], json!(new));
    app.post("/v1/users/nobody:refreshToken", "")
        .await
        .assert_error(404, "User doesn't exist", "NOT_FOUND");
}
