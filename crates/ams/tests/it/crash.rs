//! Crash safety: the built binary under concurrent publishers, `kill -9`ed
//! mid-stream and restarted on the same data directory, loses no answered
//! publish and no acknowledgement, in both durability tiers.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const TOKEN: &str = "S3CR3T";

/// A server process started from the built binary.
pub(crate) struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
}

impl Server {
    /// Starts `ams serve` on port 0 and learns its address from the log line.
    async fn start(data_dir: &std::path::Path, durability: &str) -> Server {
        Self::start_with(data_dir, &["--durability", durability]).await
    }

    /// Starts `ams serve` on port 0 with token `S3CR3T` and `args`.
    pub(crate) async fn start_with(data_dir: &std::path::Path, args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ams"))
            .args(["serve", "--port", "0", "--service-token", TOKEN])
            .args(args)
            .arg("--data-dir")
            .arg(data_dir)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("binary starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let base = loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("server printed its address before exiting");
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Server { child, base }
    }

    pub(crate) async fn kill9(mut self) {
        self.child.kill().await.unwrap(); // SIGKILL
    }
}

async fn call(
    client: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let resp = client
        .request(method, format!("{base}/v1{path}"))
        .header("x-api-key", TOKEN)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn crash_and_recover(durability: &str) {
    let dir = tempfile::tempdir().unwrap();
    let client = crate::helpers::http_client();
    let server = Server::start(dir.path(), durability).await;
    let base = server.base.clone();
    use reqwest::Method as M;
    assert_eq!(
        call(&client, &base, M::POST, "/projects/P", json!({}))
            .await
            .0,
        200
    );
    assert_eq!(
        call(&client, &base, M::PUT, "/projects/P/topics/t", json!({}))
            .await
            .0,
        200
    );
    let sub = json!({"topic": "projects/P/topics/t"});
    assert_eq!(
        call(&client, &base, M::PUT, "/projects/P/subscriptions/s", sub)
            .await
            .0,
        200
    );

    // Ten messages; acknowledge the first five.
    let first: Vec<Value> = (0..10)
        .map(|i| json!({"data": format!("pre-{i}")}))
        .collect();
    let (status, _) = call(
        &client,
        &base,
        M::POST,
        "/projects/P/topics/t:publish",
        json!({"messages": first}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, pulled) = call(
        &client,
        &base,
        M::POST,
        "/projects/P/subscriptions/s:pull",
        json!({"maxMessages": "5"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(pulled["receivedMessages"].as_array().unwrap().len(), 5);
    let ack = json!({"ackIds": ["projects/P/subscriptions/s:4"]});
    assert_eq!(
        call(
            &client,
            &base,
            M::POST,
            "/projects/P/subscriptions/s:acknowledge",
            ack
        )
        .await
        .0,
        200
    );

    // Concurrent publishers; every answered id is recorded with its data.
    let answered: Arc<parking_lot::Mutex<BTreeMap<u64, String>>> = Arc::default();
    for i in 0..10 {
        answered.lock().insert(i, format!("pre-{i}"));
    }
    let successes = Arc::new(AtomicUsize::new(0));
    let enough = Arc::new(tokio::sync::Notify::new());
    let publishers: Vec<_> = (0..6)
        .map(|client_no| {
            let (client, base, answered, successes, enough) = (
                client.clone(),
                base.clone(),
                answered.clone(),
                successes.clone(),
                enough.clone(),
            );
            tokio::spawn(async move {
                for round in 0.. {
                    let datas: Vec<String> = (0..20)
                        .map(|j| format!("c{client_no}-{round}-{j}"))
                        .collect();
                    let msgs: Vec<Value> = datas.iter().map(|d| json!({"data": d})).collect();
                    let sent = client
                        .post(format!("{base}/v1/projects/P/topics/t:publish"))
                        .header("x-api-key", TOKEN)
                        .body(json!({"messages": msgs}).to_string())
                        .send()
                        .await;
                    let Ok(resp) = sent else { return };
                    if resp.status() != 200 {
                        return;
                    }
                    let Ok(body) = resp.json::<Value>().await else {
                        return;
                    };
                    let ids = body["messageIds"].as_array().unwrap().clone();
                    let mut map = answered.lock();
                    for (id, data) in ids.iter().zip(datas) {
                        let id: u64 = id.as_str().unwrap().parse().unwrap();
                        assert!(map.insert(id, data).is_none(), "id {id} answered twice");
                    }
                    drop(map);
                    if successes.fetch_add(1, Ordering::SeqCst) + 1 == 60 {
                        enough.notify_one();
                    }
                }
            })
        })
        .collect();
    enough.notified().await;
    server.kill9().await;
    for p in publishers {
        p.await.unwrap();
    }
    let answered = answered.lock().clone();
    assert!(answered.len() >= 10 + 60 * 20);

    let server = Server::start(dir.path(), durability).await;
    let base = server.base.clone();
    let (status, offsets) = call(
        &client,
        &base,
        M::GET,
        "/projects/P/subscriptions/s:offsets",
        Value::Null,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(offsets["current"], 5, "the acknowledged cursor survived");
    let max = offsets["max"].as_u64().unwrap();
    let highest = *answered.keys().last().unwrap();
    assert!(
        max > highest,
        "max {max} covers every answered id (highest {highest})"
    );

    // Replay everything: ids dense from 0, every answered message intact.
    let seek = json!({"offset": 0});
    assert_eq!(
        call(
            &client,
            &base,
            M::POST,
            "/projects/P/subscriptions/s:modifyOffset",
            seek
        )
        .await
        .0,
        200
    );
    let (status, pulled) = call(
        &client,
        &base,
        M::POST,
        "/projects/P/subscriptions/s:pull",
        json!({"maxMessages": (max + 10).to_string()}),
    )
    .await;
    assert_eq!(status, 200);
    let msgs = pulled["receivedMessages"].as_array().unwrap();
    assert_eq!(msgs.len() as u64, max);
    for (i, m) in msgs.iter().enumerate() {
        let id: u64 = m["message"]["messageId"].as_str().unwrap().parse().unwrap();
        assert_eq!(id, i as u64, "ids are dense");
        if let Some(data) = answered.get(&id) {
            assert_eq!(
                m["message"]["data"].as_str().unwrap(),
                data,
                "message {id} intact"
            );
        }
    }
    // And publishing continues right after the recovered end.
    let (status, ids) = call(
        &client,
        &base,
        M::POST,
        "/projects/P/topics/t:publish",
        json!({"messages": [{"data": "after"}]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(ids["messageIds"][0], max.to_string());
    server.kill9().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_nothing_answered_in_fsync_tier() {
    crash_and_recover("fsync").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_nothing_answered_in_write_tier() {
    crash_and_recover("write").await;
}
