//! Two `ams serve` processes over one Kafka-protocol broker and one
//! PostgreSQL (both real, started by the test on free loopback ports): what
//! one node is told, the other knows; ids stay dense and unique whichever node
//! publishes; acknowledgements from both nodes never move a cursor backwards;
//! a push subscription is delivered by exactly one node and taken over by the
//! other within the lease period when its owner is killed with SIGKILL.

use std::process::Stdio;
use std::time::{Duration, Instant};

use ams_core::ManualClock;
use ams_testkit::{Kafka, Postgres};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::receiver::Receiver;

const TOKEN: &str = "cluster-S3CR3T";
/// Short, so that the takeover test is quick; the default is 30 s.
const LEASE_SECONDS: u64 = 3;

/// One `ams serve` process of the cluster.
struct Node {
    name: String,
    child: Child,
    base: String,
    http: reqwest::Client,
    _data: tempfile::TempDir,
}

impl Node {
    async fn start(name: &str, kafka: &Kafka, postgres: &Postgres) -> Node {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let data = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ams"))
            .args(["serve", "--port", "0", "--store", "kafka-postgres"])
            .args(["--kafka-brokers", &kafka.bootstrap()])
            .args(["--postgres-url", &postgres.url("ams")])
            .args(["--service-token", TOKEN, "--node-id", name])
            .args(["--push-enabled", "--push-allow-http"])
            .args(["--push-lease-seconds", &LEASE_SECONDS.to_string()])
            .args(["--log-level", "info"])
            .arg("--data-dir")
            .arg(data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen: Vec<String> = Vec::new();
        let port = loop {
            let Some(line) = lines.next_line().await.unwrap() else {
                panic!("node {name} exited before listening:\n{}", seen.join("\n"));
            };
            assert!(!line.contains(TOKEN), "the token is never logged");
            if let Some(rest) = line.split("listening on http://127.0.0.1:").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .parse::<u16>()
                    .unwrap();
            }
            seen.push(line);
        };
        // Keep draining the log so that the node never blocks on a full pipe.
        let prefix = name.to_owned();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                assert!(!line.contains(TOKEN), "the token is never logged");
                if line.contains("ERROR") || line.contains("WARN") {
                    eprintln!("[{prefix}] {line}");
                }
            }
        });
        Node {
            name: name.to_owned(),
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            _data: data,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("x-api-key", TOKEN);
        if let Some(body) = body {
            req = req.body(body.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method, path, body).await;
        assert_eq!(status, 200, "{} {method} {path}: {value}", self.name);
        value
    }

    async fn publish(&self, topic: &str, data: &[String]) -> Vec<u64> {
        let messages: Vec<Value> = data.iter().map(|d| json!({"data": d})).collect();
        let r = self
            .ok(
                "POST",
                &format!("/v1/projects/P/topics/{topic}:publish"),
                Some(json!({"messages": messages})),
            )
            .await;
        r["messageIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_str().unwrap().parse().unwrap())
            .collect()
    }

    /// Pulls (immediately) and returns (ids, data).
    async fn pull(&self, sub: &str, max: u32) -> (Vec<u64>, Vec<String>) {
        let r = self
            .ok(
                "POST",
                &format!("/v1/projects/P/subscriptions/{sub}:pull"),
                Some(json!({"maxMessages": max.to_string(), "returnImmediately": "true"})),
            )
            .await;
        let received = r["receivedMessages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let ids = received
            .iter()
            .map(|m| m["message"]["messageId"].as_str().unwrap().parse().unwrap())
            .collect();
        let data = received
            .iter()
            .map(|m| m["message"]["data"].as_str().unwrap().to_owned())
            .collect();
        (ids, data)
    }

    async fn ack(&self, sub: &str, id: u64) -> u16 {
        let body = json!({"ackIds": [format!("projects/P/subscriptions/{sub}:{id}")]});
        self.call(
            "POST",
            &format!("/v1/projects/P/subscriptions/{sub}:acknowledge"),
            Some(body),
        )
        .await
        .0
    }

    async fn current(&self, sub: &str) -> i64 {
        self.ok(
            "GET",
            &format!("/v1/projects/P/subscriptions/{sub}:offsets"),
            None,
        )
        .await["current"]
            .as_i64()
            .unwrap()
    }

    /// SIGKILL: no shutdown, no lease release.
    async fn kill(mut self) {
        let pid = self.child.id().unwrap().to_string();
        let status = Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .await
            .unwrap();
        assert!(status.success());
        let _ = self.child.wait().await;
    }
}

/// Which node holds the push lease of subscription `sub`, per PostgreSQL.
async fn lease_holder(postgres: &Postgres, sub: &str) -> Option<String> {
    let (client, connection) = tokio_postgres::connect(&postgres.url("ams"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .query_opt(
            "SELECT holder FROM leases WHERE key LIKE $1",
            &[&format!("push/%/{sub}")],
        )
        .await
        .unwrap()
        .map(|row| row.get(0))
}

/// The message ids of push deliveries, in arrival order.
fn pushed_ids(deliveries: &[crate::receiver::Delivery]) -> Vec<u64> {
    deliveries
        .iter()
        .map(|d| {
            d.json()["message"]["messageId"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

fn data(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_over_kafka_and_postgres() {
    let kafka = Kafka::start();
    let postgres = Postgres::start();
    postgres.ensure_database("ams").await;
    let a = Node::start("node-a", &kafka, &postgres).await;
    let b = Node::start("node-b", &kafka, &postgres).await;

    // Resources created on one node are there on the other.
    a.ok("POST", "/v1/projects/P", Some(json!({}))).await;
    b.ok("PUT", "/v1/projects/P/topics/t", None).await;
    a.ok(
        "PUT",
        "/v1/projects/P/subscriptions/s",
        Some(json!({"topic": "projects/P/topics/t"})),
    )
    .await;
    let (status, _) = b.call("PUT", "/v1/projects/P/topics/t", None).await;
    assert_eq!(status, 409, "the name is taken cluster-wide");

    // Publish on A, pull and acknowledge on B.
    let ids = a.publish("t", &data("first", 3)).await;
    assert_eq!(ids, [0, 1, 2]);
    let (pulled, got) = b.pull("s", 10).await;
    assert_eq!(pulled, ids);
    assert_eq!(got, data("first", 3));
    assert_eq!(b.ack("s", 2).await, 200);
    assert_eq!(a.current("s").await, 3, "B's ack is A's cursor");

    // Both nodes publishing at once: ids are unique and dense, each
    // publish's ids contiguous.
    let (from_a, from_b) = tokio::join!(
        async {
            let mut ids = Vec::new();
            for i in 0..20 {
                ids.push(a.publish("t", &data(&format!("a{i}"), 5)).await);
            }
            ids
        },
        async {
            let mut ids = Vec::new();
            for i in 0..20 {
                ids.push(b.publish("t", &data(&format!("b{i}"), 5)).await);
            }
            ids
        }
    );
    let mut all: Vec<u64> = Vec::new();
    for batch in from_a.iter().chain(&from_b) {
        assert!(
            batch.windows(2).all(|w| w[1] == w[0] + 1),
            "contiguous: {batch:?}"
        );
        all.extend(batch);
    }
    all.sort_unstable();
    assert_eq!(all, (3..203).collect::<Vec<u64>>());

    // Consumers on both nodes, acknowledging cumulatively: every message is
    // delivered, in order, and the cursor never moves backwards.
    let mut seen: Vec<u64> = Vec::new();
    let mut last_current = a.current("s").await;
    for round in 0.. {
        let node = if round % 2 == 0 { &a } else { &b };
        let other = if round % 2 == 0 { &b } else { &a };
        let (ids, _) = node.pull("s", 37).await;
        let Some(&last) = ids.last() else { break };
        seen.extend(&ids);
        assert_eq!(other.ack("s", last).await, 200);
        let current = node.current("s").await;
        assert!(
            current >= last_current,
            "cursor moved back: {last_current} -> {current}"
        );
        assert_eq!(current, i64::try_from(last).unwrap() + 1);
        last_current = current;
    }
    assert_eq!(seen, (3..203).collect::<Vec<u64>>());

    // What a node caches (here: users by token) is forgotten on every node
    // when another node changes it: a deleted user's token stops working on
    // B well within the cache's 5 s expiry. (No topic is deleted here: the
    // test broker's SQLite engine would delete them all.)
    let user = a
        .ok(
            "POST",
            "/v1/users/alice",
            Some(json!({"projects": [{"project": "P", "roles": ["consumer", "publisher"]}]})),
        )
        .await;
    let alice = user["token"].as_str().unwrap().to_owned();
    let as_alice = |node: &Node, path: &str| {
        node.http
            .get(format!("{}{path}", node.base))
            .header("x-api-key", alice.clone())
            .send()
    };
    assert_eq!(
        as_alice(&b, "/v1/projects/P/topics/t")
            .await
            .unwrap()
            .status(),
        200
    );
    a.ok("DELETE", "/v1/users/alice", None).await;
    let deleted_at = Instant::now();
    loop {
        let status = as_alice(&b, "/v1/projects/P/topics/t")
            .await
            .unwrap()
            .status();
        if status == 401 {
            break;
        }
        assert!(
            deleted_at.elapsed() < Duration::from_secs(2),
            "node B still accepts a deleted user's token ({status})"
        );
        tokio::task::yield_now().await;
    }

    // A stream on A whose window is full continues when B acknowledges
    // (B's ack reaches A through PostgreSQL's NOTIFY, well before A's own
    // 30 s recheck).
    a.ok(
        "PUT",
        "/v1/projects/P/subscriptions/live",
        Some(json!({"topic": "projects/P/topics/t"})),
    )
    .await;
    let mut stream = a
        .http
        .get(format!(
            "{}/v1/projects/P/subscriptions/live:stream?window=2",
            a.base
        ))
        .header("accept", "text/event-stream")
        .header("x-api-key", TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let live = b.publish("t", &data("live", 4)).await;
    let mut buf = String::new();
    let first = crate::streams::events(&mut stream, &mut buf, 2).await;
    let ids: Vec<String> = first.iter().map(|e| e.1.clone()).collect();
    assert_eq!(ids, [live[0].to_string(), live[1].to_string()]);
    let acked_at = Instant::now();
    assert_eq!(b.ack("live", live[1]).await, 200);
    let next = crate::streams::events(&mut stream, &mut buf, 2).await;
    let ids: Vec<String> = next.iter().map(|e| e.1.clone()).collect();
    assert_eq!(ids, [live[2].to_string(), live[3].to_string()]);
    assert!(
        acked_at.elapsed() < Duration::from_secs(10),
        "woken by the other node's ack, not the recheck: {:?}",
        acked_at.elapsed()
    );
    drop(stream);

    // Push: one verified http endpoint subscription, delivered by exactly one
    // node although both run a pusher.
    let clock = ManualClock::new(ams_types::Timestamp::from_secs(0));
    let rx = Receiver::start(&clock).await;
    a.ok(
        "PUT",
        "/v1/projects/P/subscriptions/push",
        Some(json!({
            "topic": "projects/P/topics/t",
            "pushConfig": {"type": "http_endpoint", "pushEndpoint": rx.url("/push"),
                           "retryPolicy": {"type": "linear", "period": 100}}
        })),
    )
    .await;
    let sub = b.ok("GET", "/v1/projects/P/subscriptions/push", None).await;
    rx.set_hash(200, sub["pushConfig"]["verificationHash"].as_str().unwrap());
    b.ok(
        "POST",
        "/v1/projects/P/subscriptions/push:verifyPushEndpoint",
        None,
    )
    .await;
    let pushed = b.publish("t", &data("push", 10)).await;
    let delivered = rx.wait_for(10).await;
    assert_eq!(
        pushed_ids(&delivered),
        pushed,
        "each message once, in order"
    );
    // The owner acknowledges after the endpoint answered; wait for that, so
    // that the kill below finds nothing in flight to deliver twice.
    let end = i64::try_from(pushed.last().unwrap() + 1).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while b.current("push").await != end {
        assert!(
            Instant::now() < deadline,
            "push acknowledgements did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Kill the owner; the other node takes over within the lease period
    // (plus its re-scan, a third of it) and nothing acknowledged is lost.
    let owner = lease_holder(&postgres, "push")
        .await
        .expect("someone holds the lease");
    let (killed, survivor) = if owner == a.name { (a, b) } else { (b, a) };
    killed.kill().await;
    let killed_at = Instant::now();
    let more = survivor.publish("t", &data("after", 5)).await;
    let after = rx.wait_for(15).await;
    let takeover = killed_at.elapsed();
    assert_eq!(
        pushed_ids(&after[10..]),
        more,
        "the survivor delivers the rest, once each"
    );
    let limit = Duration::from_secs(LEASE_SECONDS * 4 / 3 + 3);
    assert!(
        takeover < limit,
        "takeover took {takeover:?} (limit {limit:?})"
    );
    eprintln!("push takeover after SIGKILL: {takeover:?}");
    assert_eq!(
        lease_holder(&postgres, "push").await.as_deref(),
        Some(survivor.name.as_str())
    );
    // Everything acknowledged on the pull subscription stayed acknowledged.
    assert_eq!(survivor.current("s").await, 203);
}
