//! `ams-client` against the real server (a round trip through every route
//! group, errors, streams) and against a scripted fake server (which failures
//! are retried, and how often).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ams_client::{Client, Error, RegistrationQuery, TailStart, wire};
use serde_json::json;

use crate::helpers::*;

/// Guards against a hang only: every wait completes as soon as the server
/// does its part.
const HANG: Duration = Duration::from_secs(20);

fn client(app: &TestApp) -> Client {
    client_with(&app.base, "S3CR3T")
}

fn client_with(base: &str, token: &str) -> Client {
    Client::builder(base)
        .token(token)
        .retries(0)
        .build()
        .unwrap()
}

fn message(data: &str, attributes: &[(&str, &str)]) -> wire::PublishMessage {
    wire::PublishMessage {
        data: data.to_owned(),
        attributes: (!attributes.is_empty()).then(|| {
            attributes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        }),
        ..Default::default()
    }
}

#[track_caller]
fn assert_api(result: Result<impl std::fmt::Debug, Error>, code: u16, message: &str, status: &str) {
    match result {
        Err(Error::Api {
            code: c,
            message: m,
            status: s,
        }) => assert_eq!((c, m.as_str(), s.as_str()), (code, message, status)),
        other => panic!("expected {code} {message:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn client_round_trip_through_projects_topics_subscriptions_and_messages() {
    let app = spawn_app().await;
    // `/v1` in the base is accepted too.
    let c = client_with(&format!("{}/v1", app.base), "S3CR3T");

    assert_eq!(c.status().await.unwrap().status, "ok");
    assert!(!c.version().await.unwrap().compiler.is_empty());

    // projects
    let p = c.create_project("P", Some("first")).await.unwrap();
    assert_eq!((p.name.as_str(), p.description.as_str()), ("P", "first"));
    assert_eq!(c.get_project("P").await.unwrap(), p);
    let p = c.update_project("P", None, Some("second")).await.unwrap();
    assert_eq!((p.name.as_str(), p.description.as_str()), ("P", "second"));
    c.create_project("Q", None).await.unwrap();
    let names: Vec<String> = c
        .list_projects()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["P", "Q"]);
    let q = c.update_project("Q", Some("R"), None).await.unwrap();
    assert_eq!(q.name, "R");
    c.delete_project("R").await.unwrap();
    assert_api(
        c.get_project("R").await,
        404,
        "project doesn't exist",
        "NOT_FOUND",
    );

    // topics
    let t = c.create_topic("P", "t", None).await.unwrap();
    assert_eq!(
        (t.name.as_str(), t.schema.as_str()),
        ("/projects/P/topics/t", "")
    );
    assert_eq!(c.get_topic("P", "t").await.unwrap(), t);
    c.create_topic("P", "t2", None).await.unwrap();
    let listed: Vec<String> = c
        .list_topics("P")
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(listed, ["/projects/P/topics/t2", "/projects/P/topics/t"]);
    let page = c.list_topics_page("P", Some(1), "").await.unwrap();
    assert_eq!((page.topics.len(), page.total_size), (1, 2));
    let next = c
        .list_topics_page("P", Some(1), &page.next_page_token)
        .await
        .unwrap();
    assert_eq!(next.topics[0].name, "/projects/P/topics/t");
    assert_eq!(next.next_page_token, "");
    c.delete_topic("P", "t2").await.unwrap();

    // subscriptions
    let s = c
        .create_subscription("P", "s", "t", Some(30))
        .await
        .unwrap();
    assert_eq!(
        (s.name.as_str(), s.topic.as_str(), s.ack_deadline_seconds),
        ("/projects/P/subscriptions/s", "/projects/P/topics/t", 30)
    );
    assert!(s.push_config.is_pull());
    assert_eq!(c.get_subscription("P", "s").await.unwrap(), s);
    let body = wire::SubscriptionCreate {
        topic: "projects/P/topics/t".into(),
        ..Default::default()
    };
    let s2 = c.create_subscription_with("P", "s2", &body).await.unwrap();
    assert_eq!(s2.ack_deadline_seconds, 10);
    assert_eq!(c.list_subscriptions("P").await.unwrap(), [s2, s.clone()]);
    let page = c.list_subscriptions_page("P", Some(1), "").await.unwrap();
    assert_eq!((page.subscriptions.len(), page.total_size), (1, 2));
    assert_eq!(
        c.topic_subscriptions("P", "t").await.unwrap(),
        [
            "/projects/P/subscriptions/s",
            "/projects/P/subscriptions/s2"
        ]
    );
    c.delete_subscription("P", "s2").await.unwrap();
    c.modify_ack_deadline("P", "s", 60).await.unwrap();
    assert_eq!(
        c.get_subscription("P", "s")
            .await
            .unwrap()
            .ack_deadline_seconds,
        60
    );

    // publish, pull, acknowledge, offsets
    let ids = c
        .publish(
            "P",
            "t",
            &[message("aGVsbG8=", &[("k", "v")]), message("d29ybGQ=", &[])],
        )
        .await
        .unwrap();
    assert_eq!(ids, ["0", "1"]);
    assert!(c.publish("P", "t", &[]).await.unwrap().is_empty());
    let pulled = c.pull("P", "s", 10, true).await.unwrap();
    assert_eq!(pulled.len(), 2);
    assert_eq!(pulled[0].ack_id, "projects/P/subscriptions/s:0");
    assert_eq!(pulled[0].message.data, "aGVsbG8=");
    assert_eq!(
        pulled[0].message.attributes,
        BTreeMap::from([("k".to_owned(), "v".to_owned())])
    );
    assert!(pulled[1].message.attributes.is_empty());
    assert_eq!(pulled[1].message.publish_time, "2024-01-01T10:00:00Z");
    c.acknowledge("P", "s", &[pulled[1].ack_id.clone()])
        .await
        .unwrap();
    let offsets = c.offsets("P", "s").await.unwrap();
    assert_eq!(
        (offsets.max, offsets.min, offsets.current),
        (2, 0, 2),
        "{offsets:?}"
    );
    assert!(c.pull("P", "s", 10, true).await.unwrap().is_empty());
    c.modify_offset("P", "s", 1).await.unwrap();
    assert_eq!(c.offsets("P", "s").await.unwrap().current, 1);
    // A long-poll answers at once when there is something to read.
    let again = c.pull("P", "s", 10, false).await.unwrap();
    assert_eq!(again[0].message.message_id, "1");
    assert_eq!(
        c.time_to_offset("P", "s", "2024-01-01T10:00:00.000Z")
            .await
            .unwrap(),
        0
    );
    assert_api(
        c.time_to_offset("P", "s", "2024-01-01T10:00:00Z").await,
        400,
        "Time is not in valid Zulu format.",
        "INVALID_ARGUMENT",
    );

    // metrics
    let names = |list: wire::MetricList| -> Vec<String> {
        list.metrics.into_iter().map(|m| m.metric).collect()
    };
    assert!(
        names(c.project_metrics("P").await.unwrap())
            .contains(&"project.number_of_topics".to_owned())
    );
    let topic_metrics = c.topic_metrics("P", "t").await.unwrap();
    let published = topic_metrics
        .metrics
        .iter()
        .find(|m| m.metric == "topic.number_of_messages")
        .unwrap();
    assert_eq!(published.timeseries[0].value, wire::MetricValue::Int(2));
    assert!(
        names(c.subscription_metrics("P", "s").await.unwrap())
            .contains(&"subscription.number_of_messages".to_owned())
    );
    assert!(!c.operational_metrics().await.unwrap().metrics.is_empty());
    let va = c
        .va_report(Some("2024-01-01"), Some("2024-01-02"), &["P"])
        .await
        .unwrap();
    assert_eq!(va.projects_metrics.total_message_count, 2);

    c.delete_subscription("P", "s").await.unwrap();
    c.delete_topic("P", "t").await.unwrap();
    assert_api(
        c.get_topic("P", "t").await,
        404,
        "Topic doesn't exist",
        "NOT_FOUND",
    );
    app.stop().await;
}

#[tokio::test]
async fn client_round_trip_through_users_members_acls_schemas_and_registrations() {
    let app = spawn_app().await;
    let c = client(&app);
    c.create_project("P", None).await.unwrap();
    c.create_topic("P", "t", None).await.unwrap();
    c.create_subscription("P", "s", "projects/P/topics/t", None)
        .await
        .unwrap();

    // users
    let body = wire::UserBody {
        email: Some("alice@example.org".into()),
        projects: Some(vec![wire::ProjectRoles {
            project: "P".into(),
            roles: Some(vec!["project_admin".into()]),
        }]),
        ..Default::default()
    };
    let alice = c.create_user("alice", &body).await.unwrap();
    assert_eq!(alice.name, "alice");
    assert!(is_token(&alice.token));
    assert_eq!(alice.projects[0].roles, ["project_admin"]);
    assert_eq!(c.get_user("alice").await.unwrap().uuid, alice.uuid);
    assert_eq!(c.user_by_token(&alice.token).await.unwrap().name, "alice");
    assert_eq!(c.user_by_uuid(&alice.uuid).await.unwrap().name, "alice");
    let update = wire::UserBody {
        first_name: Some("Alice".into()),
        ..Default::default()
    };
    let updated = c.update_user("alice", &update).await.unwrap();
    assert_eq!(
        (updated.first_name.as_str(), updated.email.as_str()),
        ("Alice", "alice@example.org")
    );
    let refreshed = c.refresh_token("alice").await.unwrap();
    assert!(is_token(&refreshed.token));
    assert_ne!(refreshed.token, alice.token);
    let as_alice = client_with(&app.base, &refreshed.token);
    assert_eq!(as_alice.profile().await.unwrap().name, "alice");
    let usage = as_alice.usage_report(None, None, &[]).await.unwrap();
    assert!(!usage.operational_metrics.metrics.is_empty());
    let old = client_with(&app.base, &alice.token);
    assert_api(old.profile().await, 401, "Unauthorized", "UNAUTHORIZED");
    let users: Vec<String> = c
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert!(users.contains(&"alice".to_owned()), "{users:?}");
    let page = c
        .list_users_page(Some(1), "", Some("P"), true)
        .await
        .unwrap();
    assert_eq!(page.users.len(), 1);

    // members
    let bob = c.create_member("P", "bob", &["consumer"]).await.unwrap();
    assert!(is_token(&bob.token));
    assert_eq!(bob.projects[0].roles, ["consumer"]);
    assert_eq!(c.get_member("P", "bob").await.unwrap().name, "bob");
    let members: Vec<String> = c
        .list_members("P")
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(members, ["bob", "alice"]);
    assert_eq!(
        c.list_members_page("P", Some(1), "", false)
            .await
            .unwrap()
            .users
            .len(),
        1
    );
    let bob2 = c
        .update_member("P", "bob", &["consumer", "publisher"])
        .await
        .unwrap();
    assert_eq!(bob2.projects[0].roles, ["consumer", "publisher"]);
    c.remove_member("P", "bob").await.unwrap();
    assert_api(
        c.get_member("P", "bob").await,
        404,
        "User doesn't exist",
        "NOT_FOUND",
    );
    let bob3 = c.add_member("P", "bob", &["publisher"]).await.unwrap();
    assert_eq!(bob3.projects[0].roles, ["publisher"]);

    // ACLs
    c.modify_topic_acl("P", "t", &["bob", "alice"])
        .await
        .unwrap();
    assert_eq!(c.topic_acl("P", "t").await.unwrap(), ["bob", "alice"]);
    c.modify_subscription_acl("P", "s", &["bob"]).await.unwrap();
    assert_eq!(c.subscription_acl("P", "s").await.unwrap(), ["bob"]);
    assert_api(
        c.modify_topic_acl("P", "t", &["nobody"]).await,
        404,
        "User(s): nobody do not exist",
        "NOT_FOUND",
    );

    // schemas
    let document = json!({
        "type": "object",
        "properties": {"name": {"type": "string"}},
        "required": ["name"]
    });
    let schema = c
        .create_schema("P", "people", "json", &document)
        .await
        .unwrap();
    assert_eq!(
        (schema.name.as_str(), schema.kind.as_str()),
        ("projects/P/schemas/people", "json")
    );
    assert_eq!(schema.schema["required"], json!(["name"]));
    assert_eq!(c.get_schema("P", "people").await.unwrap().uuid, schema.uuid);
    assert_eq!(c.list_schemas("P").await.unwrap().len(), 1);
    assert_eq!(
        c.validate_schema("P", "people", &json!({"name": "x"}))
            .await
            .unwrap(),
        "Message validated successfully"
    );
    let invalid = c.validate_schema("P", "people", &json!({"x": 1})).await;
    assert_eq!(invalid.as_ref().map_err(Error::code).err(), Some(Some(400)));
    c.attach_schema("P", "t", "people").await.unwrap();
    assert_eq!(
        c.get_topic("P", "t").await.unwrap().schema,
        "projects/P/schemas/people"
    );
    c.detach_schema("P", "t").await.unwrap();
    assert_eq!(c.get_topic("P", "t").await.unwrap().schema, "");
    let t2 = c.create_topic("P", "t2", Some("people")).await.unwrap();
    assert_eq!(t2.schema, "projects/P/schemas/people");
    let renamed = c
        .update_schema(
            "P",
            "people",
            &wire::SchemaBody {
                name: Some("projects/P/schemas/persons".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name, "projects/P/schemas/persons");
    c.delete_schema("P", "persons").await.unwrap();
    assert_api(
        c.get_schema("P", "persons").await,
        404,
        "Schema doesn't exist",
        "NOT_FOUND",
    );

    // registrations
    let carol = c
        .register(&wire::RegistrationBody {
            name: "carol".into(),
            email: "carol@example.org".into(),
            organization: "org".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(carol.status, "pending");
    let pending = c
        .list_registrations(&RegistrationQuery {
            status: Some("pending"),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pending, std::slice::from_ref(&carol));
    assert_eq!(c.get_registration(&carol.uuid).await.unwrap(), carol);
    let user = c.accept_registration(&carol.uuid).await.unwrap();
    assert_eq!(user.name, "carol");
    assert_eq!(
        c.get_registration(&carol.uuid).await.unwrap().status,
        "accepted"
    );
    let dave = c
        .register(&wire::RegistrationBody {
            name: "dave".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    c.decline_registration(&dave.uuid, Some("no"))
        .await
        .unwrap();
    let declined = c.get_registration(&dave.uuid).await.unwrap();
    assert_eq!(
        (declined.status.as_str(), declined.decline_comment.as_str()),
        ("declined", "no")
    );
    c.delete_registration(&dave.uuid).await.unwrap();
    assert_api(
        c.get_registration(&dave.uuid).await,
        404,
        "User registration doesn't exist",
        "NOT_FOUND",
    );

    c.delete_user("bob").await.unwrap();
    assert_api(
        c.get_user("bob").await,
        404,
        "User doesn't exist",
        "NOT_FOUND",
    );
    app.stop().await;
}

#[tokio::test]
async fn client_errors_carry_the_ams_message() {
    let app = spawn_app().await;
    let c = client(&app);
    c.create_project("P", None).await.unwrap();
    c.create_topic("P", "t", None).await.unwrap();
    let e = c.get_topic("P", "nope").await.unwrap_err();
    assert_eq!(e.code(), Some(404));
    assert_eq!(e.to_string(), "Topic doesn't exist (HTTP 404 NOT_FOUND)");
    assert_api(
        c.create_topic("P", "t", None).await,
        409,
        "Topic already exists",
        "ALREADY_EXISTS",
    );
    assert_api(
        c.publish("P", "nope", &[message("eA==", &[])]).await,
        404,
        "Topic doesn't exist",
        "NOT_FOUND",
    );
    assert_api(
        c.get_subscription("P", "nope").await,
        404,
        "Subscription doesn't exist",
        "NOT_FOUND",
    );
    // Name validation happens before anything else.
    assert_api(
        c.get_topic("P", "a.b").await,
        400,
        "Invalid topic name",
        "INVALID_ARGUMENT",
    );
    let stranger = client_with(&app.base, "wrong");
    assert_api(
        stranger.list_projects().await,
        401,
        "Unauthorized",
        "UNAUTHORIZED",
    );
    let anonymous = Client::builder(&app.base).retries(0).build().unwrap();
    assert_api(
        anonymous.list_projects().await,
        401,
        "Unauthorized",
        "UNAUTHORIZED",
    );
    // Streams refuse like the other routes.
    assert!(matches!(
        c.stream_subscription("P", "nope", None, false).await,
        Err(Error::Api { code: 404, .. })
    ));
    assert!(matches!(
        c.tail_topic("P", "nope", TailStart::End, None).await,
        Err(Error::Api { code: 404, .. })
    ));
    // Bad settings are configuration errors, not requests.
    assert!(matches!(
        Client::builder("localhost:8080").build(),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        Client::builder(&app.base)
            .ca_file(app.dir.path().join("missing.pem"))
            .build(),
        Err(Error::Config(_))
    ));
    // Debug output never shows the token.
    assert!(!format!("{c:?}").contains("S3CR3T"));
    app.stop().await;
}

#[tokio::test]
async fn client_speaks_https_trusting_an_extra_ca() {
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let app = spawn_with(|c| c.tls = Some((cert_path.clone(), key_path.clone()))).await;
    let https = app.base.replacen("http://", "https://", 1);
    let trusting = Client::builder(&https)
        .token("S3CR3T")
        .ca_file(&cert_path)
        .build()
        .unwrap();
    trusting.create_project("P", None).await.unwrap();
    assert_eq!(trusting.list_projects().await.unwrap().len(), 1);
    // Without the CA the server is not trusted.
    let r = client_with(&https, "S3CR3T").list_projects().await;
    assert!(matches!(r, Err(Error::Connection(_))), "{r:?}");
    // A file that is not PEM is refused when building.
    assert!(matches!(
        Client::builder(&https).ca_file(&key_path).build(),
        Err(Error::Config(_))
    ));
    app.stop().await;
}

async fn next<T>(item: impl Future<Output = Option<Result<T, Error>>>) -> T {
    tokio::time::timeout(HANG, item)
        .await
        .expect("an event in time")
        .expect("the stream is open")
        .expect("a message")
}

#[tokio::test]
async fn client_subscription_streams_with_auto_ack_and_with_acknowledge() {
    let app = spawn_app().await;
    let c = client(&app);
    app.setup("P", "t", "s").await;

    let mut stream = c.stream_subscription("P", "s", None, true).await.unwrap();
    c.publish(
        "P",
        "t",
        &[message("eA==", &[("a", "1")]), message("eQ==", &[])],
    )
    .await
    .unwrap();
    let first = next(stream.next()).await;
    assert_eq!(first.ack_id, "projects/P/subscriptions/s:0");
    assert_eq!(first.message.attributes["a"], "1");
    let second = next(stream.next()).await;
    assert_eq!(second.message.data, "eQ==");
    assert_eq!(
        c.offsets("P", "s").await.unwrap().current,
        2,
        "acknowledged as sent"
    );
    drop(stream);

    // A window of one: the next message comes after the acknowledgement.
    let mut stream = c
        .stream_subscription("P", "s", Some(1), false)
        .await
        .unwrap();
    c.publish("P", "t", &[message("eg==", &[]), message("dw==", &[])])
        .await
        .unwrap();
    let third = next(stream.next()).await;
    assert_eq!(third.message.message_id, "2");
    assert_eq!(c.offsets("P", "s").await.unwrap().current, 2);
    c.acknowledge("P", "s", &[third.ack_id]).await.unwrap();
    let fourth = next(stream.next()).await;
    assert_eq!(fourth.message.message_id, "3");
    c.acknowledge("P", "s", &[fourth.ack_id]).await.unwrap();
    assert_eq!(c.offsets("P", "s").await.unwrap().current, 4);

    // A server shutdown closes the stream: it ends.
    let (_, end) = tokio::join!(app.stop(), async {
        tokio::time::timeout(HANG, stream.next()).await.unwrap()
    });
    assert!(end.is_none(), "{end:?}");
}

#[tokio::test]
async fn client_topic_tails_replay_the_last_messages_then_follow() {
    let app = spawn_app().await;
    let c = client(&app);
    app.setup("P", "t", "s").await;
    let all: Vec<_> = ["MA==", "MQ==", "Mg==", "Mw=="]
        .iter()
        .map(|d| message(d, &[]))
        .collect();
    c.publish("P", "t", &all).await.unwrap();

    let mut tail = c
        .tail_topic("P", "t", TailStart::Last(2), Some(3))
        .await
        .unwrap();
    assert_eq!(next(tail.next()).await.message_id, "2");
    assert_eq!(next(tail.next()).await.data, "Mw==");
    assert_eq!(tail.last_id(), Some("3"));
    c.publish("P", "t", &[message("NA==", &[])]).await.unwrap();
    assert_eq!(next(tail.next()).await.message_id, "4");
    // `max` reached: the server closes the stream.
    assert!(
        tokio::time::timeout(HANG, tail.next())
            .await
            .unwrap()
            .is_none()
    );

    let mut from = c
        .tail_topic("P", "t", TailStart::Offset(1), Some(1))
        .await
        .unwrap();
    assert_eq!(next(from.next()).await.message_id, "1");
    let mut at = c
        .tail_topic(
            "P",
            "t",
            TailStart::Time("2024-01-01T10:00:00Z".into()),
            Some(1),
        )
        .await
        .unwrap();
    assert_eq!(next(at.next()).await.message_id, "0");
    // Tails consume nothing.
    assert_eq!(c.offsets("P", "s").await.unwrap().current, 0);
    app.stop().await;
}

// ------------------------------------------------------------- retries --

/// What the fake server does with one request.
#[derive(Clone, Copy)]
enum Step {
    /// Answers with this status and an empty body.
    Status(u16),
    /// Never answers.
    Hang,
    /// Closes the connection without answering.
    Close,
    /// Answers 200 as an event stream, then sends nothing more.
    SilentStream,
}

/// A server on 127.0.0.1:0 that plays `script` (one step per request, in
/// order) and then answers 200 with `ok`; counts the requests it gets.
struct Fake {
    base: String,
    hits: Arc<AtomicUsize>,
}

impl Fake {
    async fn start(script: &[Step], ok: &'static str) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let script = script.to_vec();
        let counter = hits.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let step = script.get(n).copied();
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    // Read the request head (and whatever body came with it).
                    let mut buf = vec![0u8; 64 << 10];
                    let mut read = 0;
                    while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf[read..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => read += k,
                        }
                    }
                    let (status, body) = match step {
                        Some(Step::Hang) => return std::future::pending().await,
                        Some(Step::Close) => return,
                        Some(Step::SilentStream) => {
                            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n";
                            let _ = socket.write_all(head.as_bytes()).await;
                            return std::future::pending().await;
                        }
                        Some(Step::Status(code)) => (code, ""),
                        None => (200, ok),
                    };
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Fake { base, hits }
    }

    fn client(&self, retries: u32) -> Client {
        Client::builder(&self.base)
            .token("S3CR3T")
            .retries(retries)
            .backoff(Duration::from_millis(1))
            .build()
            .unwrap()
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

const TOPIC: &str = r#"{"name":"/projects/P/topics/t","created_on":"2024-01-01T10:00:00Z"}"#;
const IDS: &str = r#"{"messageIds":["0"]}"#;

#[tokio::test]
async fn client_retries_idempotent_calls_after_503_until_success() {
    let fake = Fake::start(&[Step::Status(503), Step::Status(503)], TOPIC).await;
    let topic = fake.client(3).get_topic("P", "t").await.unwrap();
    assert_eq!(topic.name, "/projects/P/topics/t");
    assert_eq!(fake.hits(), 3);
}

#[tokio::test]
async fn client_never_retries_a_publish() {
    let fake = Fake::start(&[Step::Status(503), Step::Status(503)], IDS).await;
    let r = fake
        .client(3)
        .publish("P", "t", &[message("eA==", &[])])
        .await;
    assert!(
        matches!(&r, Err(Error::Api { code: 503, status, .. }) if status == "SERVICE_UNAVAILABLE"),
        "{r:?}"
    );
    assert_eq!(fake.hits(), 1);
    let fake = Fake::start(&[Step::Close], IDS).await;
    let r = fake
        .client(3)
        .publish("P", "t", &[message("eA==", &[])])
        .await;
    assert!(matches!(r, Err(Error::Connection(_))), "{r:?}");
    assert_eq!(fake.hits(), 1);
    let fake = Fake::start(&[Step::Status(502)], "{}").await;
    let r = fake.client(3).acknowledge("P", "s", &["x".into()]).await;
    assert_eq!(r.unwrap_err().code(), Some(502));
    assert_eq!(fake.hits(), 1);
}

#[tokio::test]
async fn client_retries_408_502_504_and_broken_connections_but_not_400() {
    let fake = Fake::start(
        &[Step::Status(408), Step::Status(502), Step::Status(504)],
        TOPIC,
    )
    .await;
    fake.client(3).get_topic("P", "t").await.unwrap();
    assert_eq!(fake.hits(), 4);

    // Retries run out: the last failure surfaces.
    let fake = Fake::start(&[Step::Status(504); 3], TOPIC).await;
    let r = fake.client(2).delete_topic("P", "t").await;
    assert_eq!(r.unwrap_err().code(), Some(504));
    assert_eq!(fake.hits(), 3);

    let fake = Fake::start(&[Step::Close, Step::Close], TOPIC).await;
    fake.client(3).create_topic("P", "t", None).await.unwrap();
    assert_eq!(fake.hits(), 3);

    let fake = Fake::start(&[Step::Status(400)], TOPIC).await;
    let r = fake.client(3).get_topic("P", "t").await;
    assert!(
        matches!(&r, Err(Error::Api { code: 400, message, .. }) if message == "Bad Request"),
        "{r:?}"
    );
    assert_eq!(fake.hits(), 1);

    // `pull` is retried: a lost answer only means redelivery.
    let fake = Fake::start(&[Step::Status(503)], r#"{"receivedMessages":[]}"#).await;
    assert!(
        fake.client(3)
            .pull("P", "s", 1, true)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(fake.hits(), 2);
}

#[tokio::test]
async fn client_retries_timeouts_of_idempotent_calls_only() {
    let fake = Fake::start(&[Step::Hang], TOPIC).await;
    let c = Client::builder(&fake.base)
        .retries(3)
        .backoff(Duration::from_millis(1))
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    c.get_topic("P", "t").await.unwrap();
    assert_eq!(fake.hits(), 2);

    let fake = Fake::start(&[Step::Hang], IDS).await;
    let c = Client::builder(&fake.base)
        .retries(3)
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let r = c.publish("P", "t", &[message("eA==", &[])]).await;
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    assert_eq!(fake.hits(), 1);
}

#[tokio::test]
async fn client_retries_refused_connections_then_reports_them() {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let c = Client::builder(&base)
        .retries(2)
        .backoff(Duration::from_millis(1))
        .build()
        .unwrap();
    let r = c.get_topic("P", "t").await;
    match r {
        Err(Error::Connection(text)) => assert!(text.starts_with(&base), "{text}"),
        other => panic!("expected a connection error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_silent_stream_ends_with_a_timeout() {
    let fake = Fake::start(&[Step::SilentStream], TOPIC).await;
    let client = Client::builder(&fake.base)
        .token("S3CR3T")
        .stream_idle(Duration::from_millis(200))
        .build()
        .unwrap();
    let mut stream = client
        .stream_subscription("P", "s", None, false)
        .await
        .unwrap();
    let next = tokio::time::timeout(HANG, stream.next())
        .await
        .expect("the idle limit ends the wait");
    assert!(matches!(next, Some(Err(Error::Timeout))), "{next:?}");
    assert!(stream.next().await.is_none(), "the stream is over");
}
