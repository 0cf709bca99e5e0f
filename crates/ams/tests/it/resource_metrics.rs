//! AMS resource metrics (contract §9, §5.1): exact values after known
//! traffic, daily counts across day boundaries on the injected clock,
//! durability across a restart, ACL rules, the VA report and the usage report.

use serde_json::{Value, json};

use crate::helpers::*;

/// 2024-01-01T10:00:00Z as the metrics render it.
const START_Z: &str = "2024-01-01T10:00:00Z";

/// Go's `json.MarshalIndent(v, "", " ")`.
fn indent1(v: &Value) -> String {
    use serde::Serialize as _;
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    v.serialize(&mut ser).unwrap();
    String::from_utf8(out).unwrap()
}

fn metric(name: &str, kind: &str, rtype: &str, resource: &str, points: Value, desc: &str) -> Value {
    json!({
        "metric": name,
        "metric_type": kind,
        "value_type": if kind == "counter" { "int64" } else { "float64" },
        "resource_type": rtype,
        "resource_name": resource,
        "timeseries": points,
        "description": desc,
    })
}

fn point(timestamp: &str, value: Value) -> Value {
    json!([{ "timestamp": timestamp, "value": value }])
}

fn days(points: &[(&str, i64)]) -> Value {
    Value::Array(
        points
            .iter()
            .map(|(d, n)| json!({ "timestamp": d, "value": n }))
            .collect(),
    )
}

/// The clock's current time as `YYYY-MM-DDTHH:MM:SSZ`.
fn now_z(app: &TestApp) -> String {
    use ams_core::Clock as _;
    app.clock.now().to_rfc3339_seconds()
}

fn topic_metrics(
    t: &str,
    subs: i64,
    messages: i64,
    bytes: i64,
    daily: Value,
    (rate, rate_at): (f64, &str),
    now: &str,
) -> String {
    indent3(&json!({ "metrics": [
        metric("topic.number_of_subscriptions", "counter", "topic", t, point(now, json!(subs)),
            "Counter that displays the number of subscriptions belonging to a specific topic"),
        metric("topic.number_of_messages", "counter", "topic", t, point(now, json!(messages)),
            "Counter that displays the number of messages published to the specific topic"),
        metric("topic.number_of_bytes", "counter", "topic", t, point(now, json!(bytes)),
            "Counter that displays the total size of data (in bytes) published to the specific topic"),
        metric("topic.number_of_daily_messages", "counter", "topic", t, daily,
            "A collection of counters that represents the total number of messages published each day to a specific topic"),
        metric("topic.publishing_rate", "rate", "topic", t, point(rate_at, json!(rate)),
            "A rate that displays how many messages were published per second between the last two publish events"),
    ]}))
}

fn subscription_metrics(
    s: &str,
    messages: i64,
    bytes: i64,
    rate: f64,
    at: &str,
    now: &str,
) -> String {
    indent3(&json!({ "metrics": [
        metric("subscription.number_of_messages", "counter", "subscription", s, point(now, json!(messages)),
            "Counter that displays the number of messages consumed from the specific subscription"),
        metric("subscription.number_of_bytes", "counter", "subscription", s, point(now, json!(bytes)),
            "Counter that displays the total size of data (in bytes) consumed from the specific subscription"),
        metric("subscription.consumption_rate", "rate", "subscription", s, point(at, json!(rate)),
            "A rate that displays how many messages were consumed per second between the last two consume events"),
    ]}))
}

#[tokio::test]
async fn topic_and_subscription_metrics_count_exactly() {
    let app = spawn_app().await;
    app.setup("P", "t", "s").await;
    let topic = "/v1/projects/P/topics/t:metrics";
    let sub = "/v1/projects/P/subscriptions/s:metrics";

    // Nothing yet: zero counters, an empty series, rates at Go's zero time
    // rendered as the integer-looking float `0`.
    let r = app.get(topic).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type(), JSON);
    let expected = topic_metrics(
        "t",
        1,
        0,
        0,
        json!([]),
        (0.5, "0001-01-01T00:00:00Z"),
        START_Z,
    )
    .replace("\"value\": 0.5", "\"value\": 0");
    assert_eq!(r.body, expected);
    let r = app.get(sub).await;
    assert_eq!(
        r.body,
        subscription_metrics("s", 0, 0, 0.5, "0001-01-01T00:00:00Z", START_Z)
            .replace("\"value\": 0.5", "\"value\": 0")
    );

    // 2 messages (8 + 8 bytes of data string), then 1 (4 bytes) two seconds later.
    app.publish("P", "t", &["aGVsbG8=", "d29ybGQ="]).await;
    app.clock.advance_secs(2);
    app.publish("P", "t", &["YQ=="]).await;
    let at = now_z(&app);
    let r = app.get(topic).await;
    assert_eq!(
        r.body,
        topic_metrics("t", 1, 3, 20, days(&[("2024-01-01", 3)]), (0.5, &at), &at)
    );

    // Pulls count every delivery (redeliveries too) and the data bytes.
    app.pull("P", "s", 2).await;
    app.clock.advance_secs(4);
    let (acks, _) = app.pull("P", "s", 10).await;
    assert_eq!(acks.len(), 3, "unacknowledged messages come again");
    let at = now_z(&app);
    let r = app.get(sub).await;
    assert_eq!(r.body, subscription_metrics("s", 5, 36, 0.75, &at, &at));

    // Acknowledging and seeking leave the counters alone; an empty pull
    // moves the rate to 0 (as every pull records one).
    assert_eq!(app.ack("P", "s", &[acks[2].as_str()]).await.status, 200);
    app.clock.advance_secs(1);
    let (none, _) = app.pull("P", "s", 10).await;
    assert!(none.is_empty());
    let v = app.get(sub).await.json();
    assert_eq!(v["metrics"][0]["timeseries"][0]["value"], 5);
    assert_eq!(v["metrics"][1]["timeseries"][0]["value"], 36);
    assert_eq!(v["metrics"][2]["timeseries"][0]["value"], 0.0);

    // A second subscription on the topic shows in its count.
    let body = r#"{"topic":"projects/P/topics/t"}"#;
    assert_eq!(
        app.put("/v1/projects/P/subscriptions/s2", body)
            .await
            .status,
        200
    );
    let v = app.get(topic).await.json();
    assert_eq!(v["metrics"][0]["timeseries"][0]["value"], 2);
}

#[tokio::test]
async fn daily_counts_split_at_utc_midnight_and_keep_thirty_days() {
    let app = spawn_app().await;
    app.setup("P", "t", "s").await;
    assert_eq!(app.put("/v1/projects/P/topics/u", "").await.status, 200);
    // 2024-01-01T23:59:59Z: three messages; two seconds later (the next UTC
    // day) two more, and one to another topic.
    app.clock.advance_secs(14 * 3600 - 1);
    app.publish("P", "t", &["a", "b", "c"]).await;
    app.clock.advance_secs(2);
    app.publish("P", "t", &["d", "e"]).await;
    app.publish("P", "u", &["f"]).await;
    let v = app.get("/v1/projects/P/topics/t:metrics").await.json();
    assert_eq!(
        v["metrics"][3]["timeseries"],
        days(&[("2024-01-02", 2), ("2024-01-01", 3)])
    );
    let v = app.get("/v1/projects/P:metrics").await.json();
    let daily = v["metrics"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(daily["metric"], "project.number_of_daily_messages");
    assert_eq!(
        daily["timeseries"],
        days(&[("2024-01-02", 3), ("2024-01-01", 3)])
    );

    // One message a day for 31 more days: only the 30 newest days show.
    for _ in 0..31 {
        app.clock.advance_secs(86_400);
        app.publish("P", "t", &["x"]).await;
    }
    let v = app.get("/v1/projects/P/topics/t:metrics").await.json();
    let series = v["metrics"][3]["timeseries"].as_array().unwrap().clone();
    assert_eq!(series.len(), 30);
    assert_eq!(series[0], json!({"timestamp": "2024-02-02", "value": 1}));
    assert_eq!(series[29], json!({"timestamp": "2024-01-04", "value": 1}));
    assert_eq!(v["metrics"][1]["timeseries"][0]["value"], 36);
}

#[tokio::test]
async fn counters_survive_a_restart_and_history_outlives_the_topic() {
    let app = spawn_app().await;
    app.setup("P", "t", "s").await;
    app.publish("P", "t", &["aGVsbG8=", "d29ybGQ="]).await;
    app.clock.advance_secs(2);
    app.publish("P", "t", &["YQ=="]).await;
    app.pull("P", "s", 10).await;
    let topic_before = app.get("/v1/projects/P/topics/t:metrics").await.json();
    let sub_before = app
        .get("/v1/projects/P/subscriptions/s:metrics")
        .await
        .json();

    let dir = app.stop().await;
    let app = spawn_in(dir, |_| {}).await;
    let topic_after = app.get("/v1/projects/P/topics/t:metrics").await.json();
    let sub_after = app
        .get("/v1/projects/P/subscriptions/s:metrics")
        .await
        .json();
    // The restarted clock is back at START; only the counter stamps differ.
    for (before, after) in [(&topic_before, &topic_after), (&sub_before, &sub_after)] {
        for (b, a) in before["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .zip(after["metrics"].as_array().unwrap())
        {
            assert_eq!(b["metric"], a["metric"]);
            assert_eq!(
                b["timeseries"].as_array().unwrap().len(),
                a["timeseries"].as_array().unwrap().len()
            );
            for (pb, pa) in b["timeseries"]
                .as_array()
                .unwrap()
                .iter()
                .zip(a["timeseries"].as_array().unwrap())
            {
                assert_eq!(pb["value"], pa["value"], "{}", b["metric"]);
            }
        }
    }
    assert_eq!(topic_after["metrics"][1]["timeseries"][0]["value"], 3);
    assert_eq!(topic_after["metrics"][4]["timeseries"][0]["value"], 0.5);
    assert_eq!(sub_after["metrics"][0]["timeseries"][0]["value"], 3);

    // Deleting the topic keeps the project's history; a new topic of the same
    // name starts its totals at 0 but shares the name's daily counts (the
    // original keys them by name).
    assert_eq!(app.delete("/v1/projects/P/topics/t").await.status, 200);
    let v = app.get("/v1/projects/P:metrics").await.json();
    let daily = v["metrics"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(daily["timeseries"], days(&[("2024-01-01", 3)]));
    assert_eq!(app.put("/v1/projects/P/topics/t", "").await.status, 200);
    let v = app.get("/v1/projects/P/topics/t:metrics").await.json();
    assert_eq!(v["metrics"][1]["timeseries"][0]["value"], 0);
    assert_eq!(v["metrics"][3]["timeseries"], days(&[("2024-01-01", 3)]));
}

#[tokio::test]
async fn project_metrics_count_resources_and_members_acls() {
    let app = spawn_app().await;
    assert_eq!(app.post("/v1/projects/P", "{}").await.status, 200);
    for t in ["t1", "t2"] {
        assert_eq!(
            app.put(&format!("/v1/projects/P/topics/{t}"), "")
                .await
                .status,
            200
        );
    }
    let body = r#"{"topic":"projects/P/topics/t1"}"#;
    assert_eq!(
        app.put("/v1/projects/P/subscriptions/s1", body)
            .await
            .status,
        200
    );
    app.member_token("alice", "P", &["publisher"]).await;
    app.member_token("bob", "P", &["consumer"]).await;
    app.member_token("carol", "P", &["consumer"]).await;
    app.set_acl("P", "topics", "t1", &["alice"]).await;
    app.set_acl("P", "topics", "t2", &["bob", "alice"]).await;
    app.set_acl("P", "subscriptions", "s1", &["bob"]).await;

    let r = app.get("/v1/projects/P:metrics").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let now = START_Z;
    let expected = indent3(&json!({ "metrics": [
        metric("project.number_of_topics", "counter", "project", "P", point(now, json!(2)),
            "Counter that displays the number of topics belonging to the specific project"),
        metric("project.number_of_subscriptions", "counter", "project", "P", point(now, json!(1)),
            "Counter that displays the number of subscriptions belonging to the specific project"),
        metric("project.user.number_of_topics", "counter", "project.user", "P.alice", point(now, json!(2)),
            "Counter that displays the number of topics that a user has access to the specific project"),
        metric("project.user.number_of_topics", "counter", "project.user", "P.bob", point(now, json!(1)),
            "Counter that displays the number of topics that a user has access to the specific project"),
        metric("project.user.number_of_subscriptions", "counter", "project.user", "P.bob", point(now, json!(1)),
            "Counter that displays the number of subscriptions that a user has access to the specific project"),
        metric("project.number_of_daily_messages", "counter", "project", "P", json!([]),
            "A collection of counters that represents the total number of messages published each day to all of the project's topics"),
    ]}));
    assert_eq!(r.body, expected);
}

#[tokio::test]
async fn resource_acls_are_checked_before_existence() {
    let app = spawn_app().await;
    app.setup("P", "t", "s").await;
    let alice = app
        .member_token("alice", "P", &["publisher", "consumer"])
        .await;
    let admin = app.member_token("admin", "P", &["project_admin"]).await;
    let get = |path: &'static str, token: String| {
        let app = &app;
        async move { app.call_as("GET", path, None, Some(&token)).await }
    };
    // Outside the ACL, an existing and a missing resource are both 403.
    for path in [
        "/v1/projects/P/topics/t:metrics",
        "/v1/projects/P/topics/nope:metrics",
        "/v1/projects/P/subscriptions/s:metrics",
        "/v1/projects/P/subscriptions/nope:metrics",
    ] {
        get(path, alice.clone()).await.assert_error(
            403,
            "Access to this resource is forbidden",
            "FORBIDDEN",
        );
    }
    app.set_acl("P", "topics", "t", &["alice"]).await;
    app.set_acl("P", "subscriptions", "s", &["alice"]).await;
    assert_eq!(
        get("/v1/projects/P/topics/t:metrics", alice.clone())
            .await
            .status,
        200
    );
    assert_eq!(
        get("/v1/projects/P/subscriptions/s:metrics", alice.clone())
            .await
            .status,
        200
    );
    // Callers the ACL does not bind get the 404.
    get("/v1/projects/P/topics/nope:metrics", admin.clone())
        .await
        .assert_error(404, "Topic doesn't exist", "NOT_FOUND");
    get("/v1/projects/P/subscriptions/nope:metrics", admin.clone())
        .await
        .assert_error(404, "Subscription doesn't exist", "NOT_FOUND");
    // Project metrics are for admins only.
    get("/v1/projects/P:metrics", alice.clone())
        .await
        .assert_error(403, "Access to this resource is forbidden", "FORBIDDEN");
    assert_eq!(get("/v1/projects/P:metrics", admin).await.status, 200);
}

#[tokio::test]
async fn operational_metrics_report_this_node() {
    let app = spawn_app().await;
    let viewer = app.service_user_token("viewer", &["metrics_viewer"]).await;
    assert_eq!(app.post("/v1/projects/P", "{}").await.status, 200);
    let member = app.member_token("member", "P", &["project_admin"]).await;
    for token in [app.token.clone(), viewer] {
        let r = app.call_as("GET", "/v1/metrics", None, Some(&token)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.starts_with("{\n   \"metrics\": [\n"), "{}", r.body);
        let v = r.json();
        let metrics = v["metrics"].as_array().unwrap();
        assert_eq!(metrics.len(), 2, "one node, one pair: {v}");
        let host = metrics[0]["resource_name"].as_str().unwrap();
        assert!(!host.is_empty());
        for (m, (name, what)) in metrics.iter().zip([
            ("ams_node.cpu_usage", "CPU"),
            ("ams_node.memory_usage", "Memory"),
        ]) {
            assert_eq!(m["metric"], name);
            assert_eq!(m["metric_type"], "percentage");
            assert_eq!(m["value_type"], "float64");
            assert_eq!(m["resource_type"], "ams_node");
            assert_eq!(m["resource_name"], host);
            assert_eq!(
                m["description"],
                format!(
                    "Percentage value that displays the {what} usage of ams service in the specific node"
                )
            );
            assert_eq!(m["timeseries"][0]["timestamp"], START_Z);
            let value = m["timeseries"][0]["value"].as_f64().unwrap();
            assert!((0.0..=100.0 * 64.0).contains(&value), "{value}");
        }
    }
    // A project admin has no service role here: unknown to this route.
    let r = app.call_as("GET", "/v1/metrics", None, Some(&member)).await;
    assert_unauthorized(&r);
}

/// P1: a topic and a subscription created on 2024-01-01, a member created
/// then, 3 messages that day and 4 the next. P2: a topic and no messages.
async fn report_fixture() -> (TestApp, String) {
    let app = spawn_app().await;
    app.setup("P1", "t", "s").await;
    let admin = app.member_token("admin1", "P1", &["project_admin"]).await;
    assert_eq!(app.post("/v1/projects/P2", "{}").await.status, 200);
    assert_eq!(app.put("/v1/projects/P2/topics/t", "").await.status, 200);
    app.publish("P1", "t", &["a", "b", "c"]).await;
    app.clock.advance_secs(86_400);
    app.publish("P1", "t", &["d", "e", "f", "g"]).await;
    (app, admin)
}

#[tokio::test]
async fn va_metrics_validate_the_window_in_order() {
    let (app, _) = report_fixture().await;
    let va = |q: &str| format!("/v1/metrics/va_metrics{q}");
    for (q, message) in [
        ("?start_date=2024-1-01", "Start date is not in valid format"),
        (
            "?start_date=2024-02-30&end_date=bad",
            "Start date is not in valid format",
        ),
        (
            "?start_date=2024-01-01&end_date=2024-01-1x",
            "End date is not in valid format",
        ),
        (
            "?start_date=2024-01-03&end_date=2024-01-02",
            "Start date cannot be after the end date",
        ),
        // The default end is today (2024-01-02 on the test clock).
        (
            "?start_date=2024-01-03",
            "Start date cannot be after the end date",
        ),
        (
            "?end_date=2024-01-02T00:00:00Z",
            "End date is not in valid format",
        ),
    ] {
        let r = app.get(&va(q)).await;
        r.assert_error(400, message, "INVALID_ARGUMENT");
    }
    let r = app.get(&va("?projects=P1,nope,other")).await;
    r.assert_error(404, "Project nope doesn't exist", "NOT_FOUND");
    // Dates are checked before projects.
    let r = app.get(&va("?projects=nope&start_date=x")).await;
    r.assert_error(400, "Start date is not in valid format", "INVALID_ARGUMENT");
}

#[tokio::test]
async fn va_metrics_sum_the_window_and_round_averages_up() {
    let (app, _) = report_fixture().await;
    // Three days (2024-01-01..03): 7 messages, 2.333… a day, rounded up.
    let r = app
        .get("/v1/metrics/va_metrics?start_date=2024-01-01&end_date=2024-01-03")
        .await;
    assert_eq!(r.content_type(), JSON);
    let expected = indent1(&json!({
        "projects_metrics": {
            "projects": [{
                "project": "P1", "message_count": 7, "average_daily_messages": 2.34,
                "topics_count": 1, "subscriptions_count": 1, "users_count": 1,
            }],
            "total_message_count": 7,
            "average_daily_messages": 2.34,
        },
        "total_users_count": 1,
        "total_topics_count": 1,
        "total_subscriptions_count": 1,
    }));
    r.assert_ok(&expected);

    // Only the second day: 4 messages, and nothing was created that day.
    let v = app
        .get("/v1/metrics/va_metrics?start_date=2024-01-02&end_date=2024-01-02&projects=P1,P2,P1")
        .await
        .json();
    assert_eq!(
        v["projects_metrics"]["projects"],
        json!([{
            "project": "P1", "message_count": 4, "average_daily_messages": 4,
            "topics_count": 0, "subscriptions_count": 0, "users_count": 0,
        }])
    );
    // A project without messages in the window is not listed, even by name.
    let r = app.get("/v1/metrics/va_metrics?projects=P2").await;
    r.assert_ok(
        "{\n \"projects_metrics\": {\n  \"projects\": [],\n  \"total_message_count\": 0,\n  \"average_daily_messages\": 0\n },\n \"total_users_count\": 0,\n \"total_topics_count\": 0,\n \"total_subscriptions_count\": 0\n}",
    );
    // The default window runs from 1970-01-01 to today: 19725 days.
    let v = app.get("/v1/metrics/va_metrics").await.json();
    assert_eq!(
        v["projects_metrics"]["projects"][0]["average_daily_messages"],
        0.01
    );
    assert_eq!(v["projects_metrics"]["total_message_count"], 7);
}

#[tokio::test]
async fn usage_report_covers_the_callers_admin_projects() {
    let (app, admin) = report_fixture().await;
    let path = "/v1/users/usageReport?start_date=2024-01-01&end_date=2024-01-03";
    // Its own token check: absent, unknown and the service token are 401.
    for token in [None, Some("nope"), Some(app.token.as_str())] {
        assert_unauthorized(&app.call_as("GET", path, None, token).await);
    }
    let r = app
        .call_as(
            "GET",
            "/v1/users/usageReport?end_date=x",
            None,
            Some(&admin),
        )
        .await;
    r.assert_error(400, "End date is not in valid format", "INVALID_ARGUMENT");

    let r = app.call_as("GET", path, None, Some(&admin)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.starts_with("{\n   \"va_metrics\": {\n"),
        "{}",
        r.body
    );
    let v = r.json();
    assert_eq!(
        v["va_metrics"]["projects_metrics"]["projects"][0]["project"],
        "P1"
    );
    assert_eq!(
        v["va_metrics"]["projects_metrics"]["total_message_count"],
        7
    );
    let ops = v["operational_metrics"]["metrics"].as_array().unwrap();
    assert_eq!(ops.len(), 2);
    assert_eq!(ops[0]["metric"], "ams_node.cpu_usage");

    // Filtering to a project the caller does not administer, or a user who
    // administers nothing: the empty report.
    let empty = "{\n   \"va_metrics\": {\n      \"projects_metrics\": {\n         \"projects\": [],\n         \"total_message_count\": 0,\n         \"average_daily_messages\": 0\n      },\n      \"total_users_count\": 0,\n      \"total_topics_count\": 0,\n      \"total_subscriptions_count\": 0\n   },\n   \"operational_metrics\": {\n      \"metrics\": []\n   }\n}";
    let r = app
        .call_as(
            "GET",
            "/v1/users/usageReport?projects=P2,unknown",
            None,
            Some(&admin),
        )
        .await;
    r.assert_ok(empty);
    let consumer = app.member_token("consumer", "P1", &["consumer"]).await;
    let r = app
        .call_as("GET", "/v1/users/usageReport", None, Some(&consumer))
        .await;
    r.assert_ok(empty);
}
