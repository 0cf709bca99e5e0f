//! `GET /metrics`: OpenMetrics text that moves with traffic, optionally
//! behind a bearer token; the request id of every answer.

use crate::helpers::*;

/// The value of the sample `series` (name and labels exactly as exposed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

/// Every line is a comment, `# EOF`, or `name{labels} value`.
fn assert_parses(text: &str) {
    assert!(text.ends_with("# EOF\n"), "{text}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        assert!(value.parse::<f64>().is_ok(), "value of {line}");
        let name = series.split('{').next().unwrap();
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "{line}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "{line}"
            );
        }
    }
}

#[tokio::test]
async fn counters_and_gauges_move_with_traffic() {
    let app = spawn_app().await;
    app.setup("P", "t", "s").await;
    let scrape = || async {
        let r = app.call_as("GET", "/metrics", None, None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.content_type(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        assert_parses(&r.body);
        r.body
    };
    let backlog = r#"ams_subscription_backlog_messages{project="P",subscription="s"}"#;
    let age = r#"ams_subscription_oldest_unacked_age_seconds{project="P",subscription="s"}"#;
    let text = scrape().await;
    assert_eq!(sample(&text, backlog), Some(0.0));

    app.publish("P", "t", &["YWJj", "ZGVmZw=="]).await;
    app.clock.advance_secs(5);
    let text = scrape().await;
    assert_eq!(
        sample(
            &text,
            r#"ams_published_messages_total{project="P",topic="t"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, r#"ams_published_bytes_total{project="P",topic="t"}"#),
        Some(12.0)
    );
    assert_eq!(sample(&text, backlog), Some(2.0));
    assert_eq!(sample(&text, age), Some(5.0));
    assert_eq!(
        sample(
            &text,
            r#"ams_http_requests_total{route="topics:publish",method="POST",status="200"}"#
        ),
        Some(1.0)
    );
    assert!(
        text.contains(r#"ams_http_request_duration_seconds_count{route="topics:publish"} 1"#),
        "{text}"
    );

    let (acks, _) = app.pull("P", "s", 10).await;
    let text = scrape().await;
    assert_eq!(
        sample(
            &text,
            r#"ams_consumed_messages_total{project="P",subscription="s"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, backlog),
        Some(2.0),
        "pulled is not acknowledged"
    );
    app.ack("P", "s", &[&acks[1]]).await.assert_ok("{}");
    let text = scrape().await;
    assert_eq!(sample(&text, backlog), Some(0.0));
    assert_eq!(sample(&text, age), Some(0.0));
}

#[tokio::test]
async fn a_configured_token_guards_the_scrape() {
    let app = spawn_with(|c| c.metrics_token = Some("scraper-secret".into())).await;
    let r = app.call_as("GET", "/metrics", None, None).await;
    assert_eq!((r.status, r.body.as_str()), (401, "Unauthorized"));
    let r = app
        .client
        .get(format!("{}/metrics", app.base))
        .bearer_auth("scraper-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().ends_with("# EOF\n"));
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let app = spawn_app().await;
    let r = app.get("/v1/projects").await;
    let id = r.header("x-request-id").unwrap().to_owned();
    assert_eq!(id.len(), 16);
    assert!(
        id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "{id}"
    );
    let again = app.get("/v1/projects").await;
    assert_ne!(again.header("x-request-id").unwrap(), id);
    let r = app
        .client
        .get(format!("{}/v1/nope", app.base))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-42");
    // Anything but a short token is replaced.
    let r = app
        .client
        .get(format!("{}/v1/nope", app.base))
        .header("x-request-id", "has spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "has spaces");
}

#[tokio::test]
async fn storage_syncs_are_timed_in_the_fsync_tier() {
    let app = spawn_with(|c| c.durability = ams_store::Durability::Fsync).await;
    app.setup("P", "t", "s").await;
    app.publish("P", "t", &["eA=="]).await;
    let text = app.call_as("GET", "/metrics", None, None).await.body;
    for store in ["log", "metadata"] {
        let count = sample(
            &text,
            &format!(r#"ams_storage_sync_duration_seconds_count{{store="{store}"}}"#),
        );
        assert!(count.is_some_and(|n| n >= 1.0), "{store}: {text}");
    }
}
