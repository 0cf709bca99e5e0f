//! The README's walk-through, end to end.

use crate::helpers::spawn_app;

#[tokio::test]
async fn publish_pull_acknowledge() {
    let app = spawn_app().await;
    app.setup("ARGO", "t1", "s1").await;
    assert_eq!(
        app.publish("ARGO", "t1", &["msg 1", "msg 2"]).await,
        ["0", "1"]
    );
    let (acks, data) = app.pull("ARGO", "s1", 1).await;
    assert_eq!(data, ["msg 1"]);
    app.post(
        "/v1/projects/ARGO/subscriptions/s1:acknowledge",
        &format!(r#"{{"ackIds":["{}"]}}"#, acks[0]),
    )
    .await
    .assert_ok("{}");
    let (_, data) = app.pull("ARGO", "s1", 10).await;
    assert_eq!(data, ["msg 2"]);
}
