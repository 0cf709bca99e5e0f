//! The README's walk-through, end to end.

use std::sync::{Arc, Mutex};

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

/// Records the field names of every access line logged on this thread.
struct AccessFields(Arc<Mutex<Vec<Vec<&'static str>>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for AccessFields {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let meta = event.metadata();
        if meta.target() == ams_http::ACCESS_LOG_TARGET {
            let names = meta.fields().iter().map(|f| f.name()).collect();
            self.0.lock().unwrap().push(names);
        }
    }
}

/// The binary writes access lines by a shortcut only when their fields are
/// exactly `ams_http::ACCESS_LOG_FIELDS` (others take the general, slower
/// formatter, with the same text): the line `ams_http::handle` logs must keep
/// to that list.
#[tokio::test]
async fn access_lines_have_exactly_the_listed_fields() {
    use tracing_subscriber::layer::SubscriberExt;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry().with(AccessFields(seen.clone()));
    // The test's runtime is single-threaded: the server's tasks, the access
    // line's included, run on this thread and log to this subscriber.
    let _default = tracing::subscriber::set_default(subscriber);
    let app = spawn_app().await;
    app.setup("ARGO", "t1", "s1").await;
    app.publish("ARGO", "t1", &["m"]).await;
    // The line is logged by a task of its own once the answer is out.
    for _ in 0..10_000 {
        if seen.lock().unwrap().len() >= 4 {
            break;
        }
        tokio::task::yield_now().await;
    }
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() >= 4, "{seen:?}");
    let mut expected = ams_http::ACCESS_LOG_FIELDS.to_vec();
    expected.sort_unstable();
    for mut names in seen {
        names.sort_unstable();
        assert_eq!(names, expected);
    }
}
