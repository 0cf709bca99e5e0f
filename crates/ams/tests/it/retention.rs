//! Retention: whole old segments go, and subscriptions behind them catch up.

use crate::helpers::{spawn_in, spawn_with};

#[tokio::test]
async fn subscriptions_behind_dropped_segments_continue_at_the_oldest_retained_message() {
    let app = spawn_with(|c| c.segment_bytes = 1024).await;
    app.setup("P", "t", "s").await;
    let payload = "x".repeat(200);
    for _ in 0..40 {
        app.publish("P", "t", &[payload.as_str()]).await;
    }
    // A pull leaves an ack pending at offset 0.
    let (acks, _) = app.pull("P", "s", 1).await;
    assert_eq!(acks, ["projects/P/subscriptions/s:0"]);
    let dir = app.stop().await;

    // Restart with a per-topic size limit: start-up drops the oldest segments.
    let app = spawn_in(dir, |c| {
        c.segment_bytes = 1024;
        c.retention_max_bytes = Some(2048);
    })
    .await;
    let (max, min, current) = app.offsets("P", "s").await;
    assert_eq!(max, 40);
    assert!(min > 0 && min < 40, "min {min}");
    assert_eq!(current, min, ":offsets moves the cursor up to min");
    // The pending ack was dropped with the catch-up.
    app.ack("P", "s", &["projects/P/subscriptions/s:0"])
        .await
        .assert_error(500, "no ack pending", "INTERNAL_SERVER_ERROR");
    let (acks, _) = app.pull("P", "s", 1).await;
    assert_eq!(acks, [format!("projects/P/subscriptions/s:{min}")]);
    // Seeking below min is out of bounds now.
    app.post(
        "/v1/projects/P/subscriptions/s:modifyOffset",
        r#"{"offset":0}"#,
    )
    .await
    .assert_error(400, "Offset out of bounds", "INVALID_ARGUMENT");
}

#[tokio::test]
async fn a_pull_below_min_starts_at_min() {
    let app = spawn_with(|c| c.segment_bytes = 1024).await;
    app.setup("P", "t", "s").await;
    let payload = "y".repeat(200);
    for _ in 0..40 {
        app.publish("P", "t", &[payload.as_str()]).await;
    }
    let dir = app.stop().await;
    let app = spawn_in(dir, |c| {
        c.segment_bytes = 1024;
        c.retention_max_bytes = Some(2048);
    })
    .await;
    // The subscription was created at offset 0, now below min.
    let (acks, _) = app.pull("P", "s", 1).await;
    let id: u64 = acks[0].rsplit(':').next().unwrap().parse().unwrap();
    assert!(id > 0);
    app.ack("P", "s", &[acks[0].as_str()]).await.assert_ok("{}");
    let (_, min, current) = app.offsets("P", "s").await;
    assert_eq!((min as u64, current as u64), (id, id + 1));
}
