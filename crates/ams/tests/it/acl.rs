//! Per-resource ACLs (contract §1.5, §3.7, §5.6/§5.7 `:acl`/`:modifyAcl`):
//! showing and replacing them, enforcement on publish and pull with
//! `per_resource_auth`, ACL-filtered lists, and the scrub on user deletion.

use ams_core::MetadataStore as _;
use serde_json::{Value, json};

use crate::helpers::{JSON, Resp, TestApp, assert_forbidden, indent3, spawn_app, spawn_with};

/// Tokens of the users the fixtures create in ARGO.
struct Users {
    /// publisher + consumer.
    member: String,
    /// publisher only.
    publisher: String,
    /// consumer only.
    consumer: String,
    /// project_admin + publisher + consumer.
    admin_member: String,
    /// project_admin only.
    admin: String,
    /// service_admin service role, no membership.
    service_admin: String,
}

/// ARGO with topic `t1` and subscription `s1`; OTHER with `outsider`; the users
/// of [`Users`] (named `member`, `publisher`, `consumer`, `admin_member`,
/// `admin`, `sa`), no ACL entries.
async fn fixtures(app: &TestApp) -> Users {
    app.setup("ARGO", "t1", "s1").await;
    assert_eq!(app.post("/v1/projects/OTHER", "{}").await.status, 200);
    app.member_token("outsider", "OTHER", &["publisher", "consumer"])
        .await;
    let sa = app
        .create_user("sa", json!({"service_roles":["service_admin"]}))
        .await;
    Users {
        member: app
            .member_token("member", "ARGO", &["publisher", "consumer"])
            .await,
        publisher: app.member_token("publisher", "ARGO", &["publisher"]).await,
        consumer: app.member_token("consumer", "ARGO", &["consumer"]).await,
        admin_member: app
            .member_token(
                "admin_member",
                "ARGO",
                &["project_admin", "publisher", "consumer"],
            )
            .await,
        admin: app.member_token("admin", "ARGO", &["project_admin"]).await,
        service_admin: sa["token"].as_str().unwrap().to_owned(),
    }
}

fn acl_body(users: &[&str]) -> String {
    indent3(&json!({ "authorized_users": users }))
}

// ------------------------------------------------------- show and modify --

/// `kind` is `topics` or `subscriptions`, `word` `Topic` or `Subscription`.
async fn show_and_modify(kind: &str, word: &str, name: &str) {
    let app = spawn_app().await;
    fixtures(&app).await;
    let acl = format!("/v1/projects/ARGO/{kind}/{name}:acl");
    let modify = format!("/v1/projects/ARGO/{kind}/{name}:modifyAcl");
    let r = app.get(&acl).await;
    r.assert_ok(&acl_body(&[]));
    assert_eq!(r.content_type(), JSON);
    // Replace: order kept.
    let r = app
        .post(
            &modify,
            r#"{"authorized_users":["publisher","member","consumer"]}"#,
        )
        .await;
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    app.get(&acl)
        .await
        .assert_ok(&acl_body(&["publisher", "member", "consumer"]));
    // A project admin may do the same; keys are case-insensitive.
    let admin = app.get("/v1/users/admin").await.json();
    let r = app
        .call_as(
            "POST",
            &modify,
            Some(r#"{"Authorized_Users":["consumer","admin"]}"#),
            admin["token"].as_str(),
        )
        .await;
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    let r = app
        .call_as("GET", &acl, None, admin["token"].as_str())
        .await;
    r.assert_ok(&acl_body(&["consumer", "admin"]));

    // Bad bodies.
    let invalid = format!("Invalid {word} ACL Arguments");
    for body in [
        "",
        "nope",
        "[]",
        "{}",
        r#"{"authorized_users":null}"#,
        r#"{"authorized_users":"member"}"#,
        r#"{"authorized_users":[1]}"#,
    ] {
        let r = app.post(&modify, body).await;
        r.assert_error(400, &invalid, "INVALID_ARGUMENT");
        assert_eq!(r.content_type(), JSON);
    }
    // Names that are not members of this project, listed in the body's order
    // (`outsider` exists, but in OTHER).
    let r = app
        .post(
            &modify,
            r#"{"authorized_users":["member","nobody","outsider","ghost"]}"#,
        )
        .await;
    r.assert_error(
        404,
        "User(s): nobody, outsider, ghost do not exist",
        "NOT_FOUND",
    );
    assert_eq!(r.content_type(), JSON);
    app.post(&modify, r#"{"authorized_users":["x"]}"#)
        .await
        .assert_error(404, "User(s): x do not exist", "NOT_FOUND");
    // Nothing changed by the failures.
    app.get(&acl)
        .await
        .assert_ok(&acl_body(&["consumer", "admin"]));
    // `[]` clears.
    assert_eq!(
        app.post(&modify, r#"{"authorized_users":[]}"#).await.status,
        200
    );
    app.get(&acl).await.assert_ok(&acl_body(&[]));

    // A missing resource: body first, then the names, then the resource.
    let missing = format!("Invalid {word} ACL Arguments");
    let nope_modify = format!("/v1/projects/ARGO/{kind}/nope:modifyAcl");
    app.post(&nope_modify, "")
        .await
        .assert_error(400, &missing, "INVALID_ARGUMENT");
    app.post(&nope_modify, r#"{"authorized_users":["ghost"]}"#)
        .await
        .assert_error(404, "User(s): ghost do not exist", "NOT_FOUND");
    let gone = format!("{word} doesn't exist");
    let r = app
        .post(&nope_modify, r#"{"authorized_users":["member"]}"#)
        .await;
    r.assert_error(404, &gone, "NOT_FOUND");
    assert_eq!(r.content_type(), JSON);
    app.get(&format!("/v1/projects/ARGO/{kind}/nope:acl"))
        .await
        .assert_error(404, &gone, "NOT_FOUND");
}

#[tokio::test]
async fn topic_acl_show_and_modify() {
    show_and_modify("topics", "Topic", "t1").await;
}

#[tokio::test]
async fn subscription_acl_show_and_modify() {
    show_and_modify("subscriptions", "Subscription", "s1").await;
}

#[tokio::test]
async fn acl_routes_are_for_admins_only() {
    let app = spawn_app().await;
    let u = fixtures(&app).await;
    for (method, path, body) in [
        ("GET", "/v1/projects/ARGO/topics/t1:acl", None),
        (
            "POST",
            "/v1/projects/ARGO/topics/t1:modifyAcl",
            Some(r#"{"authorized_users":["member"]}"#),
        ),
        ("GET", "/v1/projects/ARGO/subscriptions/s1:acl", None),
        (
            "POST",
            "/v1/projects/ARGO/subscriptions/s1:modifyAcl",
            Some(r#"{"authorized_users":["member"]}"#),
        ),
    ] {
        for token in [&u.member, &u.publisher, &u.consumer] {
            assert_forbidden(&app.call_as(method, path, body, Some(token)).await);
        }
        for token in [&u.admin, &u.admin_member, &u.service_admin] {
            let r = app.call_as(method, path, body, Some(token)).await;
            assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
        }
    }
}

// ----------------------------------------------------------- enforcement --

const MSG: &str = r#"{"messages":[{"data":"aGk="}]}"#;

async fn publish_as(app: &TestApp, token: &str, topic: &str, body: &str) -> Resp {
    app.call_as(
        "POST",
        &format!("/v1/projects/ARGO/topics/{topic}:publish"),
        Some(body),
        Some(token),
    )
    .await
}

async fn pull_as(app: &TestApp, token: &str, sub: &str, body: &str) -> Resp {
    app.call_as(
        "POST",
        &format!("/v1/projects/ARGO/subscriptions/{sub}:pull"),
        Some(body),
        Some(token),
    )
    .await
}

#[tokio::test]
async fn publish_needs_the_topic_acl_for_anyone_holding_publisher() {
    let app = spawn_app().await;
    let u = fixtures(&app).await;
    // Not in the ACL: 403 for publishers, project admins who publish too.
    for token in [&u.publisher, &u.member, &u.admin_member] {
        let r = publish_as(&app, token, "t1", MSG).await;
        assert_forbidden(&r);
        // Raised by the route, not the pipeline.
        assert_eq!(r.content_type(), JSON);
        // The 404 of a missing topic comes first; the ACL before the body.
        publish_as(&app, token, "nope", MSG).await.assert_error(
            404,
            "Topic doesn't exist",
            "NOT_FOUND",
        );
        assert_forbidden(&publish_as(&app, token, "t1", "garbage").await);
    }
    // Without the publisher role there is no ACL check.
    for token in [&u.admin, &u.service_admin, &app.token] {
        let r = publish_as(&app, token, "t1", MSG).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // Other topic routes are role-only.
    let r = app
        .call_as(
            "GET",
            "/v1/projects/ARGO/topics/t1",
            None,
            Some(&u.publisher),
        )
        .await;
    assert_eq!(r.status, 200);
    // In the ACL: allowed; then the body is checked.
    app.set_acl("ARGO", "topics", "t1", &["publisher", "admin_member"])
        .await;
    for token in [&u.publisher, &u.admin_member] {
        let r = publish_as(&app, token, "t1", MSG).await;
        assert_eq!(r.status, 200, "{}", r.body);
        publish_as(&app, token, "t1", "garbage").await.assert_error(
            400,
            "Invalid Message Arguments",
            "INVALID_ARGUMENT",
        );
    }
    assert_forbidden(&publish_as(&app, &u.member, "t1", MSG).await);
    // Removal takes effect at once.
    app.set_acl("ARGO", "topics", "t1", &["admin_member"]).await;
    assert_forbidden(&publish_as(&app, &u.publisher, "t1", MSG).await);
}

#[tokio::test]
async fn pull_needs_the_subscription_acl_for_anyone_holding_consumer() {
    let app = spawn_app().await;
    let u = fixtures(&app).await;
    app.publish("ARGO", "t1", &["m0", "m1", "m2"]).await;
    let pull = r#"{"maxMessages":"1"}"#;
    for token in [&u.consumer, &u.member, &u.admin_member] {
        let r = pull_as(&app, token, "s1", pull).await;
        assert_forbidden(&r);
        assert_eq!(r.content_type(), JSON);
        pull_as(&app, token, "nope", pull).await.assert_error(
            404,
            "Subscription doesn't exist",
            "NOT_FOUND",
        );
        assert_forbidden(&pull_as(&app, token, "s1", r#"{"maxMessages":1}"#).await);
    }
    // Nothing was delivered by the refusals.
    assert_eq!(app.offsets("ARGO", "s1").await, (3, 0, 0));
    // Other subscription routes are role-only: offsets, show, acknowledge.
    for path in [
        "/v1/projects/ARGO/subscriptions/s1:offsets",
        "/v1/projects/ARGO/subscriptions/s1",
    ] {
        let r = app.call_as("GET", path, None, Some(&u.consumer)).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    for token in [&u.admin, &u.service_admin, &app.token] {
        let r = pull_as(&app, token, "s1", pull).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["receivedMessages"].as_array().unwrap().len(), 1);
    }
    let r = app
        .call_as(
            "POST",
            "/v1/projects/ARGO/subscriptions/s1:acknowledge",
            Some(r#"{"ackIds":["projects/ARGO/subscriptions/s1:0"]}"#),
            Some(&u.consumer),
        )
        .await;
    r.assert_ok("{}");
    app.set_acl("ARGO", "subscriptions", "s1", &["consumer"])
        .await;
    let r = pull_as(&app, &u.consumer, "s1", pull).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["receivedMessages"][0]["message"]["data"], "m1");
    pull_as(&app, &u.consumer, "s1", r#"{"maxMessages":1}"#)
        .await
        .assert_error(400, "Invalid Pull Parameters Arguments", "INVALID_ARGUMENT");
    assert_forbidden(&pull_as(&app, &u.admin_member, "s1", pull).await);
}

#[tokio::test]
async fn without_per_resource_auth_roles_are_enough() {
    let app = spawn_with(|c| c.per_resource_auth = false).await;
    let u = fixtures(&app).await;
    for token in [&u.publisher, &u.member, &u.admin_member] {
        let r = publish_as(&app, token, "t1", MSG).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    for token in [&u.consumer, &u.member, &u.admin_member] {
        let r = pull_as(&app, token, "s1", "{}").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["receivedMessages"].as_array().unwrap().len(), 1);
    }
    // Roles still count.
    assert_forbidden(&publish_as(&app, &u.consumer, "t1", MSG).await);
    assert_forbidden(&pull_as(&app, &u.publisher, "s1", "{}").await);
}

// -------------------------------------------------------- filtered lists --

fn names(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn list_as(app: &TestApp, token: &str, path: &str) -> Value {
    let r = app.call_as("GET", path, None, Some(token)).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json()
}

async fn lists_are_filtered(per_resource_auth: bool) {
    let app = spawn_with(|c| c.per_resource_auth = per_resource_auth).await;
    let u = fixtures(&app).await;
    for t in ["t2", "t3", "t4"] {
        app.put(&format!("/v1/projects/ARGO/topics/{t}"), "").await;
    }
    for s in ["s2", "s3", "s4"] {
        app.put(
            &format!("/v1/projects/ARGO/subscriptions/{s}"),
            r#"{"topic":"projects/ARGO/topics/t1"}"#,
        )
        .await;
    }
    for t in ["t1", "t3", "t4"] {
        app.set_acl("ARGO", "topics", t, &["publisher", "member"])
            .await;
    }
    for s in ["s2", "s4"] {
        app.set_acl("ARGO", "subscriptions", s, &["consumer", "member"])
            .await;
    }
    let topics = "/v1/projects/ARGO/topics";
    let subs = "/v1/projects/ARGO/subscriptions";

    // Pure publishers see only their topics, newest first, counted as such.
    let all_topics = app.get(topics).await.json();
    let mine: Vec<Value> = all_topics["topics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            [
                "/projects/ARGO/topics/t4",
                "/projects/ARGO/topics/t3",
                "/projects/ARGO/topics/t1",
            ]
            .contains(&t["name"].as_str().unwrap())
        })
        .cloned()
        .collect();
    let r = app.call_as("GET", topics, None, Some(&u.publisher)).await;
    r.assert_ok(&indent3(
        &json!({"topics": mine, "nextPageToken": "", "totalSize": 3}),
    ));
    // Pages of the filtered list.
    let first = list_as(&app, &u.member, &format!("{topics}?pageSize=2")).await;
    assert_eq!(
        names(&first, "topics"),
        ["/projects/ARGO/topics/t4", "/projects/ARGO/topics/t3"]
    );
    assert_eq!(first["totalSize"], 3);
    let next = first["nextPageToken"].as_str().unwrap();
    assert!(!next.is_empty());
    let second = list_as(
        &app,
        &u.member,
        &format!("{topics}?pageSize=2&pageToken={next}"),
    )
    .await;
    assert_eq!(names(&second, "topics"), ["/projects/ARGO/topics/t1"]);
    assert_eq!(
        (
            second["totalSize"].as_u64(),
            second["nextPageToken"].as_str()
        ),
        (Some(3), Some(""))
    );
    // Pure consumers likewise for subscriptions.
    let r = list_as(&app, &u.consumer, subs).await;
    assert_eq!(
        names(&r, "subscriptions"),
        [
            "/projects/ARGO/subscriptions/s4",
            "/projects/ARGO/subscriptions/s2"
        ]
    );
    assert_eq!(r["totalSize"], 2);
    let r = list_as(&app, &u.member, &format!("{subs}?pageSize=1")).await;
    assert_eq!(
        names(&r, "subscriptions"),
        ["/projects/ARGO/subscriptions/s4"]
    );
    assert_eq!(r["totalSize"], 2);
    assert_ne!(r["nextPageToken"], "");
    // Project admins (even those who publish and consume) and service admins
    // see everything.
    for token in [&u.admin, &u.admin_member, &u.service_admin] {
        let t = list_as(&app, token, topics).await;
        assert_eq!(t, all_topics);
        assert_eq!(t["totalSize"], 4);
        let s = list_as(&app, token, subs).await;
        assert_eq!(s["totalSize"], 4);
    }
    // With no ACL entries the list is empty.
    app.set_acl("ARGO", "subscriptions", "s2", &[]).await;
    app.set_acl("ARGO", "subscriptions", "s4", &[]).await;
    let r = app.call_as("GET", subs, None, Some(&u.consumer)).await;
    r.assert_ok(&indent3(
        &json!({"subscriptions": [], "nextPageToken": "", "totalSize": 0}),
    ));
}

#[tokio::test]
async fn lists_are_filtered_for_pure_publishers_and_consumers() {
    lists_are_filtered(true).await;
}

#[tokio::test]
async fn lists_are_filtered_even_without_per_resource_auth() {
    lists_are_filtered(false).await;
}

// ------------------------------------------------------- user deletion --

#[tokio::test]
async fn deleting_a_user_removes_it_from_every_acl() {
    let app = spawn_app().await;
    fixtures(&app).await;
    app.put("/v1/projects/OTHER/topics/o1", "").await;
    // `member` also belongs to OTHER.
    let r = app
        .post(
            "/v1/projects/OTHER/members/member:add",
            r#"{"roles":["publisher"]}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let member = app.get("/v1/users/member").await.json();
    let member_uuid = member["uuid"].as_str().unwrap().to_owned();
    app.set_acl("ARGO", "topics", "t1", &["member", "publisher"])
        .await;
    app.set_acl("ARGO", "subscriptions", "s1", &["consumer", "member"])
        .await;
    app.set_acl("OTHER", "topics", "o1", &["member"]).await;

    assert_eq!(app.delete("/v1/users/member").await.status, 200);
    for (path, users) in [
        ("/v1/projects/ARGO/topics/t1:acl", vec!["publisher"]),
        ("/v1/projects/ARGO/subscriptions/s1:acl", vec!["consumer"]),
        ("/v1/projects/OTHER/topics/o1:acl", vec![]),
    ] {
        app.get(path).await.assert_ok(&acl_body(&users));
    }
    // A new user with the old name is a new identity: not in any ACL.
    app.member_token("member", "ARGO", &["publisher"]).await;
    app.get("/v1/projects/ARGO/topics/t1:acl")
        .await
        .assert_ok(&acl_body(&["publisher"]));
    let v = app.get("/v1/users/member").await.json();
    assert_eq!(v["projects"][0]["topics"], json!([]));

    // The stored records no longer name the deleted user (not just hidden).
    let dir = app.stop().await;
    let meta =
        ams_store::EmbeddedMeta::open(&dir.path().join("meta"), ams_store::Durability::Write)
            .unwrap();
    let mut seen = 0;
    for project in ["ARGO", "OTHER"] {
        let p = meta.project_by_name(project).await.unwrap().unwrap();
        for topic in ["t1", "o1"] {
            if let Some(t) = meta.topic(p.uuid, topic).await.unwrap() {
                seen += 1;
                assert!(
                    t.acl.iter().all(|u| u.to_string() != member_uuid),
                    "{project}/{topic}"
                );
            }
        }
        if let Some(s) = meta.subscription(p.uuid, "s1").await.unwrap() {
            seen += 1;
            assert_eq!(s.acl.len(), 1);
            assert!(s.acl.iter().all(|u| u.to_string() != member_uuid));
        }
    }
    assert_eq!(seen, 3);
}
