//! One adapter per system behind a small trait: create a topic and
//! subscriptions, publish a batch, consume up to n messages, acknowledge them.
//! The workloads in `workloads.rs` only speak this trait.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use async_nats::jetstream;
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt as _, Full};
use rskafka::client::partition::Compression;
use serde::Deserialize;

use crate::server::Kind;

/// A batch ready to send: the per-system encoding is done before timing
/// starts where a workload pre-builds its batches.
pub enum Prepared {
    /// ams: the JSON request body and its message count.
    Json {
        /// `{"messages":[{"data":"<base64>"},...]}`
        body: Bytes,
        /// How many messages it holds.
        count: usize,
    },
    /// NATS and Redis: the raw payloads.
    Raw(Vec<Bytes>),
}

/// What an acknowledgement needs.
pub enum AckToken {
    /// ams: the highest ack id of the pull (acks are cumulative).
    Ams(String),
    /// NATS: the messages, each acked explicitly.
    Nats(Vec<jetstream::Message>),
    /// Redis: the entry ids for XACK.
    Redis(Vec<String>),
    /// Kafka: the offset after the last delivered record (the consumer's
    /// next committed offset, kept client-side).
    Kafka(i64),
}

/// Messages handed out by one consume call.
pub struct Delivered {
    /// The payloads, decoded, in delivery order.
    pub payloads: Vec<Bytes>,
    /// How to acknowledge them (`None` when nothing was delivered).
    pub ack: Option<AckToken>,
}

/// One client connection to a system under test. There is one topic per
/// server; subscriptions are named.
#[async_trait]
pub trait Conn: Send + Sync {
    /// Creates the topic.
    async fn create_topic(&self) -> Result<()>;
    /// Creates a subscription that starts at the topic's current end.
    async fn create_sub(&self, sub: &str) -> Result<()>;
    /// Encodes payloads for [`Conn::publish`].
    fn prepare(&self, payloads: &[Bytes]) -> Prepared;
    /// Publishes a batch; returns how many messages the server acknowledged
    /// (an error unless all of them).
    async fn publish(&self, batch: &Prepared) -> Result<usize>;
    /// Takes up to `max` messages from a subscription without waiting.
    async fn consume(&self, sub: &str, max: usize) -> Result<Delivered>;
    /// Acknowledges what a consume call delivered.
    async fn ack(&self, sub: &str, token: AckToken) -> Result<()>;
}

/// Connects to a server at `addr` (see `Server::addr`).
pub async fn connect(kind: Kind, addr: &str, token: &str) -> Result<Arc<dyn Conn>> {
    Ok(match kind {
        Kind::Ams | Kind::AmsKp => Arc::new(Ams::new(addr, token)?),
        Kind::Nats => Arc::new(Nats::connect(addr).await?),
        Kind::Redis => Arc::new(Redis::connect(addr).await?),
        Kind::Kafka => Arc::new(Kafka::connect(addr).await?),
    })
}

// ---------------------------------------------------------------- ams

const PROJECT: &str = "BENCH";
const TOPIC: &str = "t";

/// The ams HTTP API over plain HTTP/1.1 (hyper's connection API, no
/// client-side pool logic beyond a stack of idle keep-alive connections: one
/// connection per concurrent request, reused).
pub struct Ams {
    addr: String,
    host: http::HeaderValue,
    token: http::HeaderValue,
    base: String,
    publish_path: String,
    idle: Mutex<Vec<hyper::client::conn::http1::SendRequest<Full<Bytes>>>>,
}

#[derive(Deserialize)]
struct Ids<'a> {
    #[serde(borrow, rename = "messageIds")]
    ids: Vec<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Pulled<'a> {
    #[serde(borrow, rename = "receivedMessages")]
    received: Vec<Received<'a>>,
}

#[derive(Deserialize)]
struct Received<'a> {
    #[serde(borrow, rename = "ackId")]
    ack_id: Cow<'a, str>,
    #[serde(borrow)]
    message: PulledMessage<'a>,
}

#[derive(Deserialize)]
struct PulledMessage<'a> {
    #[serde(borrow)]
    data: Cow<'a, str>,
}

impl Ams {
    /// A client for the server at `base` (`http://host:port`).
    pub fn new(base: &str, token: &str) -> Result<Ams> {
        let addr = base
            .strip_prefix("http://")
            .context("ams address is http://host:port")?
            .trim_end_matches('/')
            .to_string();
        Ok(Ams {
            host: http::HeaderValue::from_str(&addr)?,
            token: http::HeaderValue::from_str(token)?,
            base: format!("/v1/projects/{PROJECT}"),
            publish_path: format!("/v1/projects/{PROJECT}/topics/{TOPIC}:publish"),
            addr,
            idle: Mutex::default(),
        })
    }

    async fn sender(&self) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
        loop {
            let Some(s) = self.idle.lock().expect("lock").pop() else {
                break;
            };
            if !s.is_closed() {
                return Ok(s);
            }
        }
        let stream = tokio::net::TcpStream::connect(&self.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    async fn call(&self, method: http::Method, path: &str, body: Bytes) -> Result<(u16, Bytes)> {
        let mut sender = self.sender().await?;
        sender.ready().await?;
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, self.host.clone())
            .header("x-api-key", self.token.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))?;
        let resp = tokio::time::timeout(Duration::from_secs(120), async {
            let resp = sender.send_request(req).await?;
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, anyhow::Error>((status, body))
        })
        .await
        .map_err(|_| anyhow::anyhow!("{path}: no answer within 120 s"))??;
        self.idle.lock().expect("lock").push(sender);
        Ok(resp)
    }

    /// Creates push subscription `sub` delivering to `endpoint` with
    /// `maxMessages` and no waits after successes; returns its verification hash.
    pub async fn create_push_sub(&self, sub: &str, endpoint: &str, max: usize) -> Result<String> {
        let body = serde_json::json!({
            "topic": format!("projects/{PROJECT}/topics/{TOPIC}"),
            "ackDeadlineSeconds": 300,
            "pushConfig": {
                "type": "http_endpoint",
                "pushEndpoint": endpoint,
                "maxMessages": max,
                "authorizationHeader": {"type": "disabled"},
                "retryPolicy": {"type": "exponential", "minBackoff": 10, "maxBackoff": 1000},
            },
        });
        let created = self
            .expect_ok(
                http::Method::PUT,
                &format!("{}/subscriptions/{sub}", self.base),
                body.to_string().into(),
            )
            .await?;
        let v: serde_json::Value = serde_json::from_slice(&created)?;
        v["pushConfig"]["verificationHash"]
            .as_str()
            .map(str::to_owned)
            .context("no verificationHash in the created subscription")
    }

    /// `:verifyPushEndpoint` of `sub`.
    pub async fn verify_push(&self, sub: &str) -> Result<()> {
        self.expect_ok(
            http::Method::POST,
            &format!("{}/subscriptions/{sub}:verifyPushEndpoint", self.base),
            Bytes::new(),
        )
        .await?;
        Ok(())
    }

    async fn expect_ok(&self, method: http::Method, path: &str, body: Bytes) -> Result<Bytes> {
        let (status, body) = self.call(method, path, body).await?;
        if status != 200 {
            bail!("{path}: HTTP {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(body)
    }
}

#[async_trait]
impl Conn for Ams {
    async fn create_topic(&self) -> Result<()> {
        let (status, body) = self
            .call(http::Method::POST, &self.base, Bytes::from_static(b"{}"))
            .await?;
        ensure!(
            status == 200 || status == 409,
            "create project: HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        );
        self.expect_ok(
            http::Method::PUT,
            &format!("{}/topics/{TOPIC}", self.base),
            Bytes::from_static(b"{}"),
        )
        .await?;
        Ok(())
    }

    async fn create_sub(&self, sub: &str) -> Result<()> {
        let body =
            format!(r#"{{"topic":"projects/{PROJECT}/topics/{TOPIC}","ackDeadlineSeconds":300}}"#);
        self.expect_ok(
            http::Method::PUT,
            &format!("{}/subscriptions/{sub}", self.base),
            body.into(),
        )
        .await?;
        Ok(())
    }

    fn prepare(&self, payloads: &[Bytes]) -> Prepared {
        let cap = payloads.iter().map(|p| p.len() * 4 / 3 + 16).sum::<usize>() + 16;
        let mut body = String::with_capacity(cap);
        body.push_str(r#"{"messages":["#);
        for (i, p) in payloads.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(r#"{"data":""#);
            STANDARD.encode_string(p, &mut body);
            body.push_str(r#""}"#);
        }
        body.push_str("]}");
        Prepared::Json {
            body: body.into(),
            count: payloads.len(),
        }
    }

    async fn publish(&self, batch: &Prepared) -> Result<usize> {
        let Prepared::Json { body, count } = batch else {
            bail!("ams takes JSON batches");
        };
        let answer = self
            .expect_ok(http::Method::POST, &self.publish_path, body.clone())
            .await?;
        let ids: Ids = serde_json::from_slice(&answer)?;
        ensure!(
            ids.ids.len() == *count,
            "publish of {count} answered {} ids",
            ids.ids.len()
        );
        Ok(*count)
    }

    async fn consume(&self, sub: &str, max: usize) -> Result<Delivered> {
        let answer = self
            .expect_ok(
                http::Method::POST,
                &format!("{}/subscriptions/{sub}:pull", self.base),
                format!(r#"{{"maxMessages":"{max}"}}"#).into(),
            )
            .await?;
        let pulled: Pulled = serde_json::from_slice(&answer)?;
        let mut payloads = Vec::with_capacity(pulled.received.len());
        for r in &pulled.received {
            payloads.push(Bytes::from(
                STANDARD
                    .decode(r.message.data.as_bytes())
                    .context("data is not base64")?,
            ));
        }
        let ack = pulled
            .received
            .last()
            .map(|r| AckToken::Ams(r.ack_id.to_string()));
        Ok(Delivered { payloads, ack })
    }

    async fn ack(&self, sub: &str, token: AckToken) -> Result<()> {
        let AckToken::Ams(id) = token else {
            bail!("not an ams ack");
        };
        self.expect_ok(
            http::Method::POST,
            &format!("{}/subscriptions/{sub}:acknowledge", self.base),
            format!(r#"{{"ackIds":["{id}"]}}"#).into(),
        )
        .await?;
        Ok(())
    }
}

// ---------------------------------------------------------------- NATS

const STREAM: &str = "BENCH";
const SUBJECT: &str = "bench.t";

/// NATS JetStream: a file-backed stream, durable pull consumers with
/// explicit acks; a batch is that many publishes in flight at once.
pub struct Nats {
    js: jetstream::Context,
    consumers: Mutex<HashMap<String, jetstream::consumer::PullConsumer>>,
}

impl Nats {
    async fn connect(addr: &str) -> Result<Nats> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(2))
            .request_timeout(Some(Duration::from_secs(60)))
            .connect(addr)
            .await?;
        let js = jetstream::context::ContextBuilder::new()
            .timeout(Duration::from_secs(60))
            .build(client);
        Ok(Nats {
            js,
            consumers: Mutex::default(),
        })
    }

    async fn consumer(&self, sub: &str) -> Result<jetstream::consumer::PullConsumer> {
        if let Some(c) = self.consumers.lock().expect("lock").get(sub) {
            return Ok(c.clone());
        }
        let stream = self.js.get_stream(STREAM).await?;
        let c: jetstream::consumer::PullConsumer = stream
            .get_consumer(sub)
            .await
            .map_err(|e| anyhow::anyhow!("get consumer {sub}: {e}"))?;
        self.consumers
            .lock()
            .expect("lock")
            .insert(sub.into(), c.clone());
        Ok(c)
    }
}

#[async_trait]
impl Conn for Nats {
    async fn create_topic(&self) -> Result<()> {
        self.js
            .create_stream(jetstream::stream::Config {
                name: STREAM.into(),
                subjects: vec![SUBJECT.into()],
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    async fn create_sub(&self, sub: &str) -> Result<()> {
        let stream = self.js.get_stream(STREAM).await?;
        stream
            .create_consumer(jetstream::consumer::pull::Config {
                durable_name: Some(sub.into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                deliver_policy: jetstream::consumer::DeliverPolicy::New,
                ack_wait: Duration::from_secs(300),
                max_ack_pending: 1_000_000,
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    fn prepare(&self, payloads: &[Bytes]) -> Prepared {
        Prepared::Raw(payloads.to_vec())
    }

    async fn publish(&self, batch: &Prepared) -> Result<usize> {
        let Prepared::Raw(payloads) = batch else {
            bail!("nats takes raw batches");
        };
        let mut acks = Vec::with_capacity(payloads.len());
        for p in payloads {
            acks.push(self.js.publish(SUBJECT, p.clone()).await?);
        }
        for a in acks {
            a.await?;
        }
        Ok(payloads.len())
    }

    async fn consume(&self, sub: &str, max: usize) -> Result<Delivered> {
        let consumer = self.consumer(sub).await?;
        let mut batch = consumer
            .fetch()
            .max_messages(max)
            .messages()
            .await
            .map_err(|e| anyhow::anyhow!("fetch: {e}"))?;
        let mut payloads = Vec::new();
        let mut msgs = Vec::new();
        while let Some(m) = batch.next().await {
            let m = m.map_err(|e| anyhow::anyhow!("fetch: {e}"))?;
            payloads.push(m.payload.clone());
            msgs.push(m);
        }
        let ack = (!msgs.is_empty()).then_some(AckToken::Nats(msgs));
        Ok(Delivered { payloads, ack })
    }

    async fn ack(&self, _sub: &str, token: AckToken) -> Result<()> {
        let AckToken::Nats(msgs) = token else {
            bail!("not a nats ack");
        };
        for m in msgs {
            m.ack().await.map_err(|e| anyhow::anyhow!("ack: {e}"))?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- Redis

const KEY: &str = "bench:t";

/// Redis streams: XADD pipelined per batch, consumer groups with
/// XREADGROUP and XACK.
pub struct Redis {
    conn: redis::aio::MultiplexedConnection,
}

impl Redis {
    async fn connect(addr: &str) -> Result<Redis> {
        let client = redis::Client::open(addr)?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(120)));
        let conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        Ok(Redis { conn })
    }
}

#[async_trait]
impl Conn for Redis {
    async fn create_topic(&self) -> Result<()> {
        Ok(()) // the stream is created with its first group (MKSTREAM) or entry
    }

    async fn create_sub(&self, sub: &str) -> Result<()> {
        let _: String = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(KEY)
            .arg(sub)
            .arg("$")
            .arg("MKSTREAM")
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    fn prepare(&self, payloads: &[Bytes]) -> Prepared {
        Prepared::Raw(payloads.to_vec())
    }

    async fn publish(&self, batch: &Prepared) -> Result<usize> {
        let Prepared::Raw(payloads) = batch else {
            bail!("redis takes raw batches");
        };
        let mut pipe = redis::pipe();
        for p in payloads {
            pipe.cmd("XADD").arg(KEY).arg("*").arg("d").arg(p.as_ref());
        }
        let ids: Vec<String> = pipe.query_async(&mut self.conn.clone()).await?;
        ensure!(
            ids.len() == payloads.len(),
            "XADD answered {} ids",
            ids.len()
        );
        Ok(ids.len())
    }

    async fn consume(&self, sub: &str, max: usize) -> Result<Delivered> {
        let reply: Option<redis::streams::StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(sub)
            .arg("bench")
            .arg("COUNT")
            .arg(max)
            .arg("STREAMS")
            .arg(KEY)
            .arg(">")
            .query_async(&mut self.conn.clone())
            .await?;
        let mut payloads = Vec::new();
        let mut ids = Vec::new();
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            for entry in key.ids {
                let mut entry = entry;
                match entry.map.remove("d") {
                    Some(redis::Value::BulkString(b)) => payloads.push(Bytes::from(b)),
                    other => bail!("entry {} has no payload: {other:?}", entry.id),
                }
                ids.push(entry.id);
            }
        }
        let ack = (!ids.is_empty()).then_some(AckToken::Redis(ids));
        Ok(Delivered { payloads, ack })
    }

    async fn ack(&self, sub: &str, token: AckToken) -> Result<()> {
        let AckToken::Redis(ids) = token else {
            bail!("not a redis ack");
        };
        let n: usize = redis::cmd("XACK")
            .arg(KEY)
            .arg(sub)
            .arg(&ids)
            .query_async(&mut self.conn.clone())
            .await?;
        ensure!(n == ids.len(), "XACK acknowledged {n} of {}", ids.len());
        Ok(())
    }
}

// ---------------------------------------------------------------- Kafka

const KAFKA_TOPIC: &str = "bench.t";

/// Largest record batch of one produce request: a batch above it is sent as
/// several, as ams-kafka does (the broker's `message.max.bytes` is 1 MiB by
/// default).
const KAFKA_MAX_BATCH_BYTES: usize = 1_000_000;

/// Bytes one fetch asks for: the Java consumer's default
/// `max.partition.fetch.bytes` (1 MiB); grown when a batch does not fit.
const KAFKA_FETCH_BYTES: i32 = 1 << 20;

/// The most one fetch asks for after growing.
const KAFKA_MAX_FETCH_BYTES: i32 = 256 << 20;

/// A subscription of the Kafka peer: a consumer's offsets, kept by the
/// client (rskafka has no consumer groups, so there is no offset commit to
/// the broker).
#[derive(Clone, Copy, Debug, Default)]
struct KafkaSub {
    /// The next offset to deliver.
    next: i64,
    /// The acknowledged ("committed") offset.
    committed: i64,
}

/// What the connections to one broker instance share, as ams-kp's ams shares
/// them among its HTTP connections: one rskafka client (one TCP connection,
/// requests pipelined), its partition client, and the consumers' offsets
/// (the application's offset store: the connection that creates a
/// subscription and the one consuming it share its position, as they share
/// a subscription's cursor on the other systems).
struct KafkaShared {
    client: rskafka::client::Client,
    partition: tokio::sync::OnceCell<rskafka::client::partition::PartitionClient>,
    subs: Mutex<HashMap<String, KafkaSub>>,
}

/// The shared state of each broker instance this process talks to, by
/// address (`host:port#pid`, so that a broker started later on the same
/// port gets a client of its own); dropped with its last connection.
static KAFKA: std::sync::LazyLock<Mutex<HashMap<String, std::sync::Weak<KafkaShared>>>> =
    std::sync::LazyLock::new(Mutex::default);

/// The Kafka-protocol broker itself, through rskafka: one single-partition
/// topic; a batch is one produce request (acks = -1); a consume is one fetch
/// from the subscription's offset without waiting; an acknowledgement moves
/// the client-side committed offset.
pub struct Kafka {
    shared: Arc<KafkaShared>,
}

impl Kafka {
    /// Connects to the broker at `addr` (`host:port`, optionally `#instance`),
    /// or joins the connection already open to it.
    async fn connect(addr: &str) -> Result<Kafka> {
        let existing = || {
            KAFKA
                .lock()
                .expect("lock")
                .get(addr)
                .and_then(std::sync::Weak::upgrade)
        };
        if let Some(shared) = existing() {
            return Ok(Kafka { shared });
        }
        let bootstrap = addr.split_once('#').map_or(addr, |(a, _)| a);
        let client = rskafka::client::ClientBuilder::new(vec![bootstrap.to_string()])
            .client_id("ams-bench")
            .backoff_config(rskafka::BackoffConfig {
                init_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_secs(1),
                base: 2.0,
                deadline: Some(Duration::from_secs(10)),
            })
            .build()
            .await
            .with_context(|| format!("connecting to Kafka at {bootstrap}"))?;
        // The broker answers metadata requests: it is ready.
        client.list_topics().await.context("listing Kafka topics")?;
        let mut all = KAFKA.lock().expect("lock");
        all.retain(|_, w| w.strong_count() > 0);
        if let Some(shared) = all.get(addr).and_then(std::sync::Weak::upgrade) {
            return Ok(Kafka { shared }); // another connection was faster
        }
        let shared = Arc::new(KafkaShared {
            client,
            partition: tokio::sync::OnceCell::new(),
            subs: Mutex::default(),
        });
        all.insert(addr.to_string(), Arc::downgrade(&shared));
        Ok(Kafka { shared })
    }

    async fn partition(&self) -> Result<&rskafka::client::partition::PartitionClient> {
        self.shared
            .partition
            .get_or_try_init(|| async {
                self.shared
                    .client
                    .partition_client(
                        KAFKA_TOPIC,
                        0,
                        rskafka::client::partition::UnknownTopicHandling::Retry,
                    )
                    .await
                    .context("Kafka partition client")
            })
            .await
    }

    /// Fetches from `offset` without waiting. tansu returns nothing when the
    /// batch at `offset` is larger than the limit (Kafka returns it anyway),
    /// so the limit grows until a batch comes back or the end is reached.
    async fn fetch(&self, offset: i64) -> Result<Vec<rskafka::record::RecordAndOffset>> {
        let p = self.partition().await?;
        let mut limit = KAFKA_FETCH_BYTES;
        loop {
            let (records, high_watermark) = p
                .fetch_records(offset, 1..limit, 0)
                .await
                .context("Kafka fetch")?;
            if !records.is_empty() || offset >= high_watermark || limit >= KAFKA_MAX_FETCH_BYTES {
                return Ok(records);
            }
            limit = limit.saturating_mul(4).min(KAFKA_MAX_FETCH_BYTES);
        }
    }
}

/// A record as a producer makes it: the payload as its value, stamped now.
fn kafka_record(payload: &Bytes) -> rskafka::record::Record {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    rskafka::record::Record {
        key: None,
        value: Some(payload.to_vec()),
        headers: Default::default(),
        timestamp: rskafka::chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default(),
    }
}

#[async_trait]
impl Conn for Kafka {
    async fn create_topic(&self) -> Result<()> {
        let controller = self
            .shared
            .client
            .controller_client()
            .context("Kafka controller")?;
        controller
            .create_topic(KAFKA_TOPIC, 1, -1, 30_000)
            .await
            .context("creating the Kafka topic")?;
        Ok(())
    }

    async fn create_sub(&self, sub: &str) -> Result<()> {
        let end = self
            .partition()
            .await?
            .get_offset(rskafka::client::partition::OffsetAt::Latest)
            .await
            .context("Kafka latest offset")?;
        self.shared.subs.lock().expect("lock").insert(
            sub.to_string(),
            KafkaSub {
                next: end,
                committed: end,
            },
        );
        Ok(())
    }

    fn prepare(&self, payloads: &[Bytes]) -> Prepared {
        Prepared::Raw(payloads.to_vec())
    }

    async fn publish(&self, batch: &Prepared) -> Result<usize> {
        let Prepared::Raw(payloads) = batch else {
            bail!("kafka takes raw batches");
        };
        let p = self.partition().await?;
        let mut acked = 0;
        let mut records = Vec::new();
        let mut bytes = 0;
        for payload in payloads {
            let r = kafka_record(payload);
            let size = r.approximate_size() + 64;
            if !records.is_empty() && bytes + size > KAFKA_MAX_BATCH_BYTES {
                let n = records.len();
                let offsets = p
                    .produce(std::mem::take(&mut records), Compression::NoCompression)
                    .await
                    .context("Kafka produce")?;
                ensure!(
                    offsets.len() == n,
                    "produce of {n} answered {} offsets",
                    offsets.len()
                );
                acked += n;
                bytes = 0;
            }
            bytes += size;
            records.push(r);
        }
        let n = records.len();
        let offsets = p
            .produce(records, Compression::NoCompression)
            .await
            .context("Kafka produce")?;
        ensure!(
            offsets.len() == n,
            "produce of {n} answered {} offsets",
            offsets.len()
        );
        Ok(acked + n)
    }

    async fn consume(&self, sub: &str, max: usize) -> Result<Delivered> {
        let from = self
            .shared
            .subs
            .lock()
            .expect("lock")
            .get(sub)
            .with_context(|| format!("no Kafka subscription {sub}"))?
            .next;
        let records = self.fetch(from).await?;
        let mut payloads = Vec::new();
        let mut next = from;
        // A fetch returns whole batches: skip records before the offset.
        for r in records.into_iter().filter(|r| r.offset >= from).take(max) {
            next = r.offset + 1;
            payloads.push(Bytes::from(r.record.value.unwrap_or_default()));
        }
        if let Some(s) = self.shared.subs.lock().expect("lock").get_mut(sub) {
            s.next = next;
        }
        let ack = (!payloads.is_empty()).then_some(AckToken::Kafka(next));
        Ok(Delivered { payloads, ack })
    }

    async fn ack(&self, sub: &str, token: AckToken) -> Result<()> {
        let AckToken::Kafka(offset) = token else {
            bail!("not a kafka ack");
        };
        let mut subs = self.shared.subs.lock().expect("lock");
        let s = subs
            .get_mut(sub)
            .with_context(|| format!("no Kafka subscription {sub}"))?;
        ensure!(
            s.committed < offset && offset <= s.next,
            "ack of offset {offset} outside the delivered range {}..{}",
            s.committed,
            s.next
        );
        s.committed = offset;
        Ok(())
    }
}
