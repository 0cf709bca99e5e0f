//! The authorization matrix (contract §1.2-§1.4, §12 items 22-24): every served
//! route against every kind of caller, with the expected status derived from
//! the route → roles table itself (`Route::roles`), so the test follows the
//! table instead of restating it.
//!
//! Each (route, caller) pair runs on a fresh server with the same fixtures, so
//! an allowed call (which may delete or change things) never affects another.
//! Allowed calls must succeed (200): the fixtures make every request valid.

use ams_core::auth::{Role, Route};
use serde_json::json;

use crate::helpers::{JSON, TEXT, TestApp, assert_forbidden, assert_unauthorized, spawn_app};

/// A user the fixtures create: name, memberships, service roles.
struct UserSpec {
    name: &'static str,
    projects: &'static [(&'static str, &'static [&'static str])],
    service_roles: &'static [&'static str],
}

/// The callers that are users. `target` and `outsider` are acted upon.
const USERS: &[UserSpec] = &[
    UserSpec {
        name: "sa",
        projects: &[],
        service_roles: &["service_admin"],
    },
    UserSpec {
        name: "pa",
        projects: &[("P", &["project_admin"])],
        service_roles: &[],
    },
    UserSpec {
        name: "pub",
        projects: &[("P", &["publisher"])],
        service_roles: &[],
    },
    UserSpec {
        name: "con",
        projects: &[("P", &["consumer"])],
        service_roles: &[],
    },
    UserSpec {
        name: "other",
        projects: &[("Q", &["project_admin", "publisher", "consumer"])],
        service_roles: &[],
    },
    UserSpec {
        name: "target",
        projects: &[("P", &["consumer"])],
        service_roles: &[],
    },
    UserSpec {
        name: "outsider",
        projects: &[],
        service_roles: &[],
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    ServiceToken,
    User(&'static str),
    NoToken,
    BadToken,
}

const CALLERS: &[Caller] = &[
    Caller::User("sa"),
    Caller::ServiceToken,
    Caller::User("pa"),
    Caller::User("pub"),
    Caller::User("con"),
    Caller::User("other"),
    Caller::NoToken,
    Caller::BadToken,
];

#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Allowed,
    Unauthorized,
    Forbidden,
}

struct Fixture {
    tokens: Vec<(&'static str, String)>,
    target_uuid: String,
    target_token: String,
    registration: String,
}

impl Fixture {
    fn token(&self, user: &str) -> &str {
        &self.tokens.iter().find(|(n, _)| *n == user).unwrap().1
    }
}

/// Projects P and Q; the users above; topic `t` (ACL: pub) and subscription
/// `s` (ACL: con) in P, one message in `t` pulled by the service token so an
/// ack is pending; a pending registration.
async fn fixtures(app: &TestApp) -> Fixture {
    app.setup("P", "t", "s").await;
    assert_eq!(app.post("/v1/projects/Q", "{}").await.status, 200);
    let mut tokens = Vec::new();
    let (mut target_uuid, mut target_token) = (String::new(), String::new());
    for u in USERS {
        let projects: Vec<_> = u
            .projects
            .iter()
            .map(|(p, roles)| json!({"project": p, "roles": roles}))
            .collect();
        let v = app
            .create_user(
                u.name,
                json!({"projects": projects, "service_roles": u.service_roles}),
            )
            .await;
        let token = v["token"].as_str().unwrap().to_owned();
        if u.name == "target" {
            target_uuid = v["uuid"].as_str().unwrap().to_owned();
            target_token = token.clone();
        }
        tokens.push((u.name, token));
    }
    app.set_acl("P", "topics", "t", &["pub"]).await;
    app.set_acl("P", "subscriptions", "s", &["con"]).await;
    let r = app
        .post(
            "/v1/projects/P/schemas/sc",
            r#"{"type":"json","schema":{"type":"object"}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    app.publish("P", "t", &["m"]).await;
    let (ack_ids, _) = app.pull("P", "s", 1).await;
    assert_eq!(ack_ids, ["projects/P/subscriptions/s:0"]);
    let r = app
        .post("/v1/registrations", r#"{"name":"applicant"}"#)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    Fixture {
        tokens,
        target_uuid,
        target_token,
        registration: r.json()["uuid"].as_str().unwrap().to_owned(),
    }
}

/// The request that exercises `route` successfully: the pattern with real
/// names (fresh ones where the route creates something), a query and a body.
fn request(route: Route, pattern: &str, f: &Fixture) -> (String, Option<&'static str>) {
    let (project, topic, sub, user) = match route {
        Route::ProjectsCreate => ("NEW", "t", "s", "target"),
        Route::TopicsCreate => ("P", "t2", "s", "target"),
        Route::SubscriptionsCreate => ("P", "t", "s2", "target"),
        Route::UsersCreate | Route::ProjectsCreateUser => ("P", "t", "s", "newbie"),
        Route::ProjectsAddUser => ("P", "t", "s", "outsider"),
        _ => ("P", "t", "s", "target"),
    };
    let uuid = if pattern.starts_with("/v1/registrations") {
        f.registration.as_str()
    } else {
        f.target_uuid.as_str()
    };
    let mut path = pattern
        .replace("{project}", project)
        .replace("{topic}", topic)
        .replace("{subscription}", sub)
        .replace("{user}", user)
        .replace("{uuid}", uuid)
        .replace("{token}", &f.target_token)
        .replace(
            "{schema}",
            if route == Route::SchemasCreate {
                "sc2"
            } else {
                "sc"
            },
        );
    assert!(!path.contains('{'), "unfilled variable in {pattern}");
    let body = match route {
        Route::UsersByToken
        | Route::UsersByUuid
        | Route::UsersList
        | Route::UsersProfile
        | Route::UsersShow
        | Route::UsersRefreshToken
        | Route::UsersDelete
        | Route::RegistrationsAccept
        | Route::RegistrationsDelete
        | Route::RegistrationsShow
        | Route::RegistrationsList
        | Route::ProjectsList
        | Route::ProjectsRemoveUser
        | Route::ProjectsShowUser
        | Route::ProjectsListUsers
        | Route::ProjectsShow
        | Route::ProjectsDelete
        | Route::SubscriptionsList
        | Route::SubscriptionsListByTopic
        | Route::SubscriptionsOffsets
        | Route::SubscriptionsAcl
        | Route::SubscriptionsShow
        | Route::SubscriptionsDelete
        | Route::TopicsList
        | Route::TopicsAcl
        | Route::TopicsShow
        | Route::TopicsCreate
        | Route::TopicsDelete
        | Route::TopicsDetachSchema
        | Route::SchemasShow
        | Route::SchemasList
        | Route::SchemasDelete
        | Route::AmsMetrics
        | Route::AmsVaMetrics
        | Route::UsersUsageReport
        | Route::ProjectsMetrics
        | Route::TopicsMetrics
        | Route::SubscriptionsMetrics
        | Route::SubscriptionsStream
        | Route::TopicsStream => None,
        Route::TopicsAttachSchema => Some(r#"{"schema":"projects/P/schemas/sc"}"#),
        Route::SchemasValidateMessage => Some(r#"{"any":"object"}"#),
        Route::SchemasCreate => Some(r#"{"type":"json","schema":{"type":"object"}}"#),
        Route::SchemasUpdate => Some(r#"{"type":"json"}"#),
        Route::SubscriptionsTimeToOffset => {
            path.push_str("?time=2024-01-01T10:00:00.000Z");
            None
        }
        Route::UsersCreate | Route::RegistrationsDecline | Route::ProjectsCreate => Some("{}"),
        Route::UsersUpdate => Some(r#"{"email":"t@example.com"}"#),
        Route::RegistrationsNewUser => Some(r#"{"name":"applicant2"}"#),
        Route::ProjectsAddUser => Some(r#"{"roles":["consumer"]}"#),
        Route::ProjectsCreateUser => Some(r#"{"projects":[{"project":"P","roles":["consumer"]}]}"#),
        Route::ProjectsUpdateUser => {
            Some(r#"{"projects":[{"project":"P","roles":["publisher"]}]}"#)
        }
        Route::ProjectsUpdate => Some(r#"{"description":"d"}"#),
        Route::SubscriptionsCreate => Some(r#"{"topic":"projects/P/topics/t"}"#),
        Route::SubscriptionsPull => Some(r#"{"maxMessages":"1"}"#),
        Route::SubscriptionsAcknowledge => Some(r#"{"ackIds":["projects/P/subscriptions/s:0"]}"#),
        Route::SubscriptionsModifyAckDeadline => Some(r#"{"ackDeadlineSeconds":30}"#),
        // Push is off in this server: allowed callers get the 409 of contract §7.4.
        Route::SubscriptionsVerifyPushEndpoint => None,
        Route::SubscriptionsModifyPushConfig => Some(r#"{"pushConfig":{}}"#),
        Route::SubscriptionsModifyOffset => Some(r#"{"offset":0}"#),
        Route::SubscriptionsModifyAcl => Some(r#"{"authorized_users":["con"]}"#),
        Route::TopicsPublish => Some(r#"{"messages":[{"data":"eA=="}]}"#),
        Route::TopicsModifyAcl => Some(r#"{"authorized_users":["pub"]}"#),
        other => panic!("the matrix has no request for {} yet", other.name()),
    };
    (path, body)
}

/// What the table says `caller` gets on `route` for a path naming `project`.
fn expected(route: Route, project: Option<&str>, caller: Caller) -> Expect {
    let user = match caller {
        Caller::NoToken | Caller::BadToken => return Expect::Unauthorized,
        // The open route checks the token itself: only users have a profile.
        Caller::ServiceToken if route.is_open() => return Expect::Unauthorized,
        Caller::ServiceToken => return Expect::Allowed,
        Caller::User(name) => USERS.iter().find(|u| u.name == name).unwrap(),
    };
    if route.is_open() {
        return Expect::Allowed;
    }
    let here = user
        .projects
        .iter()
        .filter(|(p, _)| Some(*p) == project)
        .flat_map(|(_, roles)| roles.iter());
    let roles: Vec<Role> = here
        .chain(user.service_roles)
        .filter_map(|r| Role::parse(r))
        .collect();
    if roles.is_empty() {
        Expect::Unauthorized
    } else if roles.iter().any(|r| route.roles().contains(r)) {
        Expect::Allowed
    } else {
        Expect::Forbidden
    }
}

/// Runs the matrix for the served routes whose pattern `family` accepts.
async fn matrix(family: impl Fn(&str) -> bool) {
    let mut covered = 0;
    for entry in ams_http::routes::table() {
        if !family(entry.pattern) {
            continue;
        }
        covered += 1;
        for &caller in CALLERS {
            let app = spawn_app().await;
            let f = fixtures(&app).await;
            let (path, body) = request(entry.route, entry.pattern, &f);
            let project = path
                .strip_prefix("/v1/projects/")
                .map(|rest| rest.split(['/', ':', '?']).next().unwrap());
            let want = expected(entry.route, project, caller);
            let token = match caller {
                Caller::ServiceToken => Some(app.token.as_str()),
                Caller::User(name) => Some(f.token(name)),
                Caller::NoToken => None,
                Caller::BadToken => Some("not-a-token"),
            };
            let r = app.call_as(entry.method.as_str(), &path, body, token).await;
            let what = format!("{} {path} as {caller:?}", entry.method);
            match want {
                // Push is off here: past authorization, verification meets the 409.
                Expect::Allowed if entry.route == Route::SubscriptionsVerifyPushEndpoint => {
                    assert_eq!(r.status, 409, "{what}: {}", r.body);
                    assert!(r.body.contains("Push functionality is currently disabled"));
                }
                // A plain GET asks for neither WebSocket nor event stream:
                // past authorization, the stream route says so (streams.rs
                // tests the streams themselves).
                Expect::Allowed
                    if matches!(
                        entry.route,
                        Route::SubscriptionsStream | Route::TopicsStream
                    ) =>
                {
                    assert_eq!(r.status, 400, "{what}: {}", r.body);
                    assert!(r.body.contains("a stream needs a WebSocket upgrade"));
                }
                Expect::Allowed => {
                    assert_eq!(r.status, 200, "{what}: {}", r.body);
                }
                Expect::Unauthorized => {
                    assert_eq!(r.status, 401, "{what}: {}", r.body);
                    assert_unauthorized(&r);
                    if !entry.route.is_open() {
                        assert_eq!(r.content_type(), TEXT, "{what}");
                    }
                }
                Expect::Forbidden => {
                    assert_eq!(r.status, 403, "{what}: {}", r.body);
                    assert_forbidden(&r);
                    assert_eq!(r.content_type(), TEXT, "{what}");
                }
            }
        }
    }
    assert!(covered > 0, "the family matched no route");
}

/// For the family's routes under `/projects/{project}`: an invalid project
/// name is a 400 before the token is looked at; an unknown project is a 404
/// for every token (even a bad one), but a missing token is a 401 first.
/// `projects:create` skips the existence check.
async fn unknown_projects(family: impl Fn(&str) -> bool) {
    let app = spawn_app().await;
    let f = fixtures(&app).await;
    for entry in ams_http::routes::table() {
        if !family(entry.pattern) || !entry.pattern.starts_with("/v1/projects/{project}") {
            continue;
        }
        let (path, body) = request(entry.route, entry.pattern, &f);
        let rest = path.strip_prefix("/v1/projects/P").unwrap_or_else(|| {
            assert_eq!(entry.route, Route::ProjectsCreate);
            ""
        });
        let method = entry.method.as_str();
        if entry.route != Route::ProjectsCreate {
            let invalid = format!("/v1/projects/P.x{rest}");
            let r = app.call_as(method, &invalid, body, None).await;
            r.assert_error(400, "Invalid project name", "INVALID_ARGUMENT");
            assert_eq!(r.content_type(), TEXT, "{method} {invalid}");
            let unknown = format!("/v1/projects/NOPE{rest}");
            assert_unauthorized(&app.call_as(method, &unknown, body, None).await);
            for token in [
                "not-a-token",
                app.token.as_str(),
                f.token("sa"),
                f.token("pa"),
                f.token("other"),
            ] {
                let r = app.call_as(method, &unknown, body, Some(token)).await;
                r.assert_error(404, "project doesn't exist", "NOT_FOUND");
                assert_eq!(r.content_type(), TEXT, "{method} {unknown}");
            }
        }
    }
}

fn users_family(p: &str) -> bool {
    p.starts_with("/v1/users")
}
fn registrations_family(p: &str) -> bool {
    p.starts_with("/v1/registrations")
}
fn projects_family(p: &str) -> bool {
    p.starts_with("/v1/projects")
        && !p.contains("/topics")
        && !p.contains("/subscriptions")
        && !p.contains("/members")
        && !p.contains("/schemas")
}
fn schemas_family(p: &str) -> bool {
    p.contains("/schemas")
}
fn members_family(p: &str) -> bool {
    p.contains("/members")
}
fn topics_family(p: &str) -> bool {
    p.contains("/topics")
}
fn subscriptions_family(p: &str) -> bool {
    p.contains("/subscriptions") && !p.contains("/topics")
}

/// Service routes (`/v1/status`, `/v1/version`, `/v1/openapi.json`): open,
/// with their own tests in `status.rs`.
fn service_family(p: &str) -> bool {
    ["/v1/status", "/v1/version", "/v1/openapi.json"].contains(&p)
}

/// Service-wide metrics (`/v1/metrics`, `/v1/metrics/va_metrics`).
fn metrics_family(p: &str) -> bool {
    p.starts_with("/v1/metrics")
}

const FAMILIES: &[fn(&str) -> bool] = &[
    service_family,
    metrics_family,
    users_family,
    registrations_family,
    projects_family,
    members_family,
    schemas_family,
    topics_family,
    subscriptions_family,
];

#[test]
fn every_served_route_is_in_exactly_one_family() {
    let table = ams_http::routes::table();
    let served = ams_http::served_routes();
    assert_eq!(table.len(), served.len());
    for (entry, (method, route)) in table.iter().zip(&served) {
        assert_eq!((&entry.method, entry.route), (method, *route));
        let families = FAMILIES.iter().filter(|f| f(entry.pattern)).count();
        assert_eq!(families, 1, "{}", entry.pattern);
    }
}

#[tokio::test]
async fn matrix_metrics() {
    matrix(metrics_family).await;
}

#[tokio::test]
async fn matrix_users() {
    matrix(users_family).await;
}

#[tokio::test]
async fn matrix_registrations() {
    matrix(registrations_family).await;
}

#[tokio::test]
async fn matrix_projects() {
    matrix(projects_family).await;
    unknown_projects(projects_family).await;
}

#[tokio::test]
async fn matrix_members() {
    matrix(members_family).await;
    unknown_projects(members_family).await;
}

#[tokio::test]
async fn matrix_schemas() {
    matrix(schemas_family).await;
    unknown_projects(schemas_family).await;
}

#[tokio::test]
async fn matrix_topics() {
    matrix(topics_family).await;
    unknown_projects(topics_family).await;
}

#[tokio::test]
async fn matrix_subscriptions() {
    matrix(subscriptions_family).await;
    unknown_projects(subscriptions_family).await;
}

// ------------------------------------------------------- pipeline order --

#[tokio::test]
async fn pipeline_order_name_then_token_then_project_then_roles() {
    let app = spawn_app().await;
    let f = fixtures(&app).await;
    // 1. Name validation before anything, even without a token.
    let r = app
        .call_as("GET", "/v1/projects/P/members/bad.name", None, None)
        .await;
    r.assert_error(400, "Invalid user name", "INVALID_ARGUMENT");
    assert_eq!(r.content_type(), TEXT);
    let r = app
        .call_as("GET", "/v1/users:byUUID/not.a.uuid", None, None)
        .await;
    r.assert_error(400, "Invalid uuid name", "INVALID_ARGUMENT");
    let r = app
        .call_as("GET", "/v1/users:byToken/a.b", None, None)
        .await;
    r.assert_error(400, "Invalid token name", "INVALID_ARGUMENT");
    // `project` is checked before `user`.
    let r = app
        .call_as("GET", "/v1/projects/b.d/members/x.y", None, None)
        .await;
    r.assert_error(400, "Invalid project name", "INVALID_ARGUMENT");
    // 2. Missing token before the unknown project.
    assert_unauthorized(
        &app.call_as("GET", "/v1/projects/NOPE/members", None, None)
            .await,
    );
    // 3. Unknown project before the token is checked: bad, other-project and
    //    role-less tokens all get the 404.
    for token in [
        "not-a-token",
        f.token("other"),
        f.token("outsider"),
        f.token("pub"),
    ] {
        let r = app
            .call_as("GET", "/v1/projects/NOPE/members", None, Some(token))
            .await;
        r.assert_error(404, "project doesn't exist", "NOT_FOUND");
        assert_eq!(r.content_type(), TEXT);
    }
    // 5. A known user without roles here is a 401, not a 403.
    assert_unauthorized(
        &app.call_as("GET", "/v1/projects/P/topics", None, Some(f.token("other")))
            .await,
    );
    assert_unauthorized(
        &app.call_as("GET", "/v1/users", None, Some(f.token("pa")))
            .await,
    );
    assert_unauthorized(
        &app.call_as("GET", "/v1/projects", None, Some(f.token("outsider")))
            .await,
    );
    // 6. Roles here, but not the route's: 403.
    assert_forbidden(
        &app.call_as("GET", "/v1/projects/P/members", None, Some(f.token("pub")))
            .await,
    );
    // Handler checks only after authorization: the consumer may not even learn
    // that a topic is missing.
    assert_forbidden(
        &app.call_as(
            "GET",
            "/v1/projects/P/topics/nope",
            None,
            Some(f.token("con")),
        )
        .await,
    );
}

#[tokio::test]
async fn service_roles_apply_in_every_project() {
    let app = spawn_app().await;
    let f = fixtures(&app).await;
    // `sa` is a member of no project, yet administers Q.
    let r = app
        .call_as("GET", "/v1/projects/Q", None, Some(f.token("sa")))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A service role is added to the roles of the membership.
    let v = app
        .create_user(
            "mixed",
            json!({"projects":[{"project":"P","roles":["publisher"]}],"service_roles":["metrics_viewer"]}),
        )
        .await;
    let mixed = v["token"].as_str().unwrap();
    assert_eq!(
        app.call_as("GET", "/v1/projects/P/topics", None, Some(mixed))
            .await
            .status,
        200
    );
    // metrics_viewer gives no project route: a 403, not a 401, in Q.
    assert_forbidden(
        &app.call_as("GET", "/v1/projects/Q/topics", None, Some(mixed))
            .await,
    );
    // Legacy role names are accepted but grant nothing.
    let v = app
        .create_user(
            "legacy",
            json!({"projects":[{"project":"P","roles":["admin","viewer","producer"]}]}),
        )
        .await;
    assert_unauthorized(
        &app.call_as("GET", "/v1/projects/P/topics", None, v["token"].as_str())
            .await,
    );
    // push_worker may show a subscription and look users up by token.
    let v = app
        .create_user("pusher", json!({"service_roles":["push_worker"]}))
        .await;
    let pusher = v["token"].as_str().unwrap();
    let path = format!("/v1/users:byToken/{}", f.token("pub"));
    let r = app.call_as("GET", &path, None, Some(pusher)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["name"], "pub");
    assert_eq!(
        app.call_as("GET", "/v1/projects/P/subscriptions/s", None, Some(pusher))
            .await
            .status,
        200
    );
    assert_forbidden(
        &app.call_as("GET", "/v1/projects/P/topics/t", None, Some(pusher))
            .await,
    );
    // argo_api_authn looks users up by UUID, nothing else.
    let v = app
        .create_user("authn", json!({"service_roles":["argo_api_authn"]}))
        .await;
    let authn = v["token"].as_str().unwrap();
    let path = format!("/v1/users:byUUID/{}", f.target_uuid);
    let r = app.call_as("GET", &path, None, Some(authn)).await;
    assert_eq!((r.status, r.json()["name"].as_str()), (200, Some("target")));
    assert_forbidden(&app.call_as("GET", "/v1/users", None, Some(authn)).await);
}

#[tokio::test]
async fn a_project_admin_may_not_create_its_own_project_again() {
    // projects:create skips the project-existence check, but a member of an
    // existing project still has its roles there: a 403 (not a 401).
    let app = spawn_app().await;
    let f = fixtures(&app).await;
    assert_forbidden(
        &app.call_as("POST", "/v1/projects/P", Some("{}"), Some(f.token("pa")))
            .await,
    );
    assert_unauthorized(
        &app.call_as("POST", "/v1/projects/P", Some("{}"), Some(f.token("other")))
            .await,
    );
    let r = app
        .call_as("POST", "/v1/projects/P", Some("{}"), Some(f.token("sa")))
        .await;
    r.assert_error(409, "Project already exists", "ALREADY_EXISTS");
    assert_eq!(r.content_type(), JSON);
}

#[tokio::test]
async fn roles_follow_membership_changes_at_once() {
    let app = spawn_app().await;
    let f = fixtures(&app).await;
    let con = Some(f.token("con"));
    assert_forbidden(&app.call_as("GET", "/v1/projects/P/topics", None, con).await);
    let r = app
        .put(
            "/v1/projects/P/members/con",
            r#"{"projects":[{"project":"P","roles":["consumer","publisher"]}]}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        app.call_as("GET", "/v1/projects/P/topics", None, con)
            .await
            .status,
        200
    );
    let r = app.post("/v1/projects/P/members/con:remove", "").await;
    r.assert_ok("{}");
    assert_unauthorized(&app.call_as("GET", "/v1/projects/P/topics", None, con).await);
}
