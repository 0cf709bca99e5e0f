//! The Kafka message-log backend: [`KafkaLog`] keeps every AMS topic in one
//! single-partition Kafka topic, named `<projectUUID>.<topicName>` and holding
//! records in the original's JSON format, so that an existing AMS deployment's
//! topics read back unchanged.
//!
//! Message ids are Kafka offsets (dense within one partition); publishTime is
//! the record's (milliseconds, for time lookups) and the value's (full
//! precision); `:timeToOffset` is ListOffsets by timestamp; min/max are the
//! earliest/latest offsets; retention is the Kafka topic's configuration.
//! rskafka produces with `acks = -1`: a publish is answered once every
//! in-sync replica has the batch.
//!
//! # Layout
//! * this file: [`KafkaLog`], the [`MessageLog`] over an rskafka client.
//! * [`record`]: the record format (the original's JSON value).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ams_core::storage::{
    Appended, LogBounds, LogNaming, LogRef, MessageLog, NewMessage, StoreError, StoreResult,
    StoredMessage,
};
use async_trait::async_trait;
use parking_lot::Mutex;
use rskafka::client::error::{Error as KafkaError, ProtocolError};
use rskafka::client::partition::{Compression, OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use tokio::sync::Notify;
use uuid::Uuid;

mod record;

/// How the log talks to the cluster.
#[derive(Clone, Debug)]
pub struct KafkaOptions {
    /// `host:port` of one or more brokers to bootstrap from.
    pub brokers: Vec<String>,
    /// Replication factor of the topics this log creates; `-1` takes the
    /// broker's `default.replication.factor`.
    pub replication_factor: i16,
    /// Largest record batch one produce request carries (the broker's
    /// `message.max.bytes`, 1 MiB by default); a publish larger than this is
    /// sent as several batches.
    pub max_batch_bytes: usize,
    /// How long a request may be retried (broker restarts, leader changes)
    /// before the operation fails.
    pub retry_deadline: Duration,
}

impl Default for KafkaOptions {
    fn default() -> Self {
        Self {
            brokers: vec!["127.0.0.1:9092".into()],
            replication_factor: -1,
            max_batch_bytes: 1_000_000,
            retry_deadline: Duration::from_secs(10),
        }
    }
}

/// The most one fetch asks for (the broker's batches are smaller: a publish
/// is at most `max_batch_bytes` per batch).
const MAX_FETCH_BYTES: i32 = 256 << 20;

/// How long an append waits for a topic the cluster does not know (yet).
const UNKNOWN_TOPIC_GRACE: Duration = Duration::from_secs(2);

/// Longest single broker-side wait of [`MessageLog::wait_beyond`]; longer
/// waits are several of these.
const LONG_POLL: Duration = Duration::from_secs(5);

/// The rskafka error of a failed operation, with what was being done.
fn kafka_error(context: &str, topic: &str) -> impl FnOnce(KafkaError) -> StoreError {
    let context = format!("{context} (Kafka topic {topic})");
    move |e| StoreError::new(context, e)
}

/// Whether the broker said the topic does not exist.
fn is_unknown_topic(e: &KafkaError) -> bool {
    matches!(
        e,
        KafkaError::ServerError {
            protocol_error: ProtocolError::UnknownTopicOrPartition,
            ..
        }
    )
}

/// Whether the broker said the offset is outside the partition's range.
fn is_out_of_range(e: &KafkaError) -> bool {
    matches!(
        e,
        KafkaError::ServerError {
            protocol_error: ProtocolError::OffsetOutOfRange,
            ..
        }
    )
}

/// The Kafka topic of an AMS topic: `<projectUUID>.<topic>`, as the original names it.
pub fn topic_name(log: &LogRef) -> String {
    format!("{}.{}", log.project, log.topic)
}

/// The AMS topic of a Kafka topic named as [`topic_name`] does, if it is one.
fn parse_topic_name(name: &str) -> Option<LogRef> {
    let (project, topic) = name.split_at_checked(36)?;
    let topic = topic.strip_prefix('.')?;
    if topic.is_empty() {
        return None;
    }
    Some(LogRef {
        id: Uuid::nil(),
        project: Uuid::parse_str(project).ok()?,
        topic: topic.to_owned(),
    })
}

/// Per-topic state this node keeps.
#[derive(Default)]
struct Local {
    /// Rings when this node appends to, creates or deletes the topic.
    changed: Arc<Notify>,
    /// The latest publish time this node wrote (publish times never go back
    /// on one node; across nodes they follow the nodes' clocks).
    last_publish_ns: i64,
}

/// Message logs in Kafka topics.
pub struct KafkaLog {
    client: Client,
    options: KafkaOptions,
    /// Partition clients by Kafka topic (each keeps a connection to the leader).
    partitions: Mutex<HashMap<String, Arc<PartitionClient>>>,
    local: Mutex<HashMap<String, Local>>,
    /// Incarnations this node deleted: a publish that looked its topic up
    /// before the deletion must not recreate it.
    deleted: Mutex<HashSet<Uuid>>,
}

impl KafkaLog {
    /// Connects to the cluster (retrying until `retry_deadline`).
    pub async fn connect(options: KafkaOptions) -> StoreResult<Arc<KafkaLog>> {
        let client = ClientBuilder::new(options.brokers.clone())
            .client_id("ams")
            .backoff_config(rskafka::BackoffConfig {
                init_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_secs(1),
                base: 2.0,
                deadline: Some(options.retry_deadline),
            })
            .build()
            .await
            .map_err(|e| {
                StoreError::new(
                    format!("connecting to Kafka at {}", options.brokers.join(",")),
                    e,
                )
            })?;
        Ok(Arc::new(KafkaLog {
            client,
            options,
            partitions: Mutex::default(),
            local: Mutex::default(),
            deleted: Mutex::default(),
        }))
    }

    /// The partition client of `topic`; `None` when the topic does not exist.
    async fn partition(&self, topic: &str) -> StoreResult<Option<Arc<PartitionClient>>> {
        if let Some(p) = self.partitions.lock().get(topic) {
            return Ok(Some(p.clone()));
        }
        match self
            .client
            .partition_client(topic.to_owned(), 0, UnknownTopicHandling::Error)
            .await
        {
            Ok(p) => {
                let p = Arc::new(p);
                self.partitions.lock().insert(topic.to_owned(), p.clone());
                Ok(Some(p))
            }
            Err(e) if is_unknown_topic(&e) => Ok(None),
            Err(e) => Err(kafka_error("finding the partition leader", topic)(e)),
        }
    }

    /// The partition to append to. Right after another node created the
    /// topic, a Kafka cluster's brokers may not all know it yet, so a missing
    /// topic is asked for again for up to [`UNKNOWN_TOPIC_GRACE`] before the
    /// append fails (a deleted topic stays missing).
    async fn partition_for_append(
        &self,
        log: &LogRef,
        topic: &str,
    ) -> StoreResult<Option<Arc<PartitionClient>>> {
        let deadline = tokio::time::Instant::now() + UNKNOWN_TOPIC_GRACE;
        let mut pause = Duration::from_millis(50);
        loop {
            if let Some(p) = self.partition(topic).await? {
                return Ok(Some(p));
            }
            if self.deleted.lock().contains(&log.id) || tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(400));
        }
    }

    /// Forgets a partition client after the topic disappeared under it.
    fn forget(&self, topic: &str) {
        self.partitions.lock().remove(topic);
    }

    /// Rings this node's waiters on `topic`.
    fn ring(&self, topic: &str) {
        if let Some(local) = self.local.lock().get(topic) {
            local.changed.notify_waiters();
        }
    }

    /// Earliest and latest offsets of an existing partition.
    async fn partition_bounds(p: &PartitionClient) -> Result<LogBounds, KafkaError> {
        let (min, max) = tokio::try_join!(
            p.get_offset(OffsetAt::Earliest),
            p.get_offset(OffsetAt::Latest)
        )?;
        let max = u64::try_from(max).unwrap_or(0);
        Ok(LogBounds {
            min: u64::try_from(min).unwrap_or(0).min(max),
            max,
        })
    }

    /// Produces one batch; returns its first offset.
    async fn produce(
        &self,
        topic: &str,
        p: &PartitionClient,
        records: Vec<rskafka::record::Record>,
    ) -> StoreResult<u64> {
        let offsets = p
            .produce(records, Compression::NoCompression)
            .await
            .map_err(|e| {
                if is_unknown_topic(&e) {
                    self.forget(topic);
                }
                kafka_error("producing", topic)(e)
            })?;
        let first = offsets.first().copied().unwrap_or(0);
        u64::try_from(first)
            .map_err(|_| StoreError::new(format!("producing to {topic}"), "negative offset"))
    }

    /// Fetches records from `offset` with about `max_bytes`, without waiting.
    /// A broker may return nothing when the batch at `offset` is larger than
    /// the limit (tansu does; Kafka returns the batch anyway), so the limit
    /// grows until a batch comes back or the end is reached.
    async fn fetch(
        p: &PartitionClient,
        offset: i64,
        max_bytes: usize,
    ) -> Result<(Vec<rskafka::record::RecordAndOffset>, i64), KafkaError> {
        let mut limit = i32::try_from(max_bytes.clamp(64 << 10, 32 << 20)).unwrap_or(i32::MAX);
        loop {
            let (records, high_watermark) = p.fetch_records(offset, 1..limit, 0).await?;
            if !records.is_empty() || offset >= high_watermark || limit >= MAX_FETCH_BYTES {
                return Ok((records, high_watermark));
            }
            limit = limit.saturating_mul(4).min(MAX_FETCH_BYTES);
        }
    }

    /// The timestamp (ms) of the record at `offset`; `i64::MAX` past the end,
    /// so that a search treats the end as "late enough".
    async fn record_time_ms(
        &self,
        topic: &str,
        p: &PartitionClient,
        offset: u64,
    ) -> StoreResult<i64> {
        let at = i64::try_from(offset).unwrap_or(i64::MAX);
        match Self::fetch(p, at, 1).await {
            Ok((records, _)) => Ok(records
                .iter()
                .find(|r| r.offset == at)
                .map_or(i64::MAX, |r| r.record.timestamp.timestamp_millis())),
            Err(e) if is_out_of_range(&e) => Ok(i64::MAX),
            Err(e) => Err(kafka_error("fetching", topic)(e)),
        }
    }

    /// Deletes a Kafka topic; a missing one is not an error.
    async fn delete_topic(&self, topic: &str) -> StoreResult<()> {
        self.forget(topic);
        let controller = self
            .client
            .controller_client()
            .map_err(kafka_error("reaching the controller", topic))?;
        match controller.delete_topic(topic.to_owned(), 30_000).await {
            Ok(()) => Ok(()),
            Err(e) if is_unknown_topic(&e) => Ok(()),
            Err(e) => Err(kafka_error("deleting the topic", topic)(e)),
        }
    }
}

#[async_trait]
impl MessageLog for KafkaLog {
    fn naming(&self) -> LogNaming {
        LogNaming::ByTopic
    }

    async fn create(&self, log: &LogRef) -> StoreResult<()> {
        let topic = topic_name(log);
        let controller = self
            .client
            .controller_client()
            .map_err(kafka_error("reaching the controller", &topic))?;
        // A topic of that name is what a previous incarnation left behind (its
        // record is gone, or this one could not have been created), possibly
        // still being deleted: remove it and try again.
        let deadline = tokio::time::Instant::now() + self.options.retry_deadline;
        loop {
            let created = controller
                .create_topic(topic.clone(), 1, self.options.replication_factor, 30_000)
                .await;
            match created {
                Ok(()) => break,
                Err(KafkaError::ServerError {
                    protocol_error: ProtocolError::TopicAlreadyExists,
                    ..
                }) if tokio::time::Instant::now() < deadline => {
                    tracing::info!(topic, "removing a previous incarnation's Kafka topic");
                    self.delete_topic(&topic).await?;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(kafka_error("creating the topic", &topic)(e)),
            }
        }
        self.deleted.lock().remove(&log.id);
        self.local.lock().entry(topic.clone()).or_default();
        self.ring(&topic);
        Ok(())
    }

    async fn append(
        &self,
        log: &LogRef,
        messages: Vec<NewMessage>,
        publish_time_ns: i64,
    ) -> StoreResult<Appended> {
        let topic = topic_name(log);
        if self.deleted.lock().contains(&log.id) {
            return Err(StoreError::new(
                format!("producing to {topic}"),
                "the topic was deleted",
            ));
        }
        let publish_time_ns = {
            let mut local = self.local.lock();
            let local = local.entry(topic.clone()).or_default();
            local.last_publish_ns = local.last_publish_ns.max(publish_time_ns);
            local.last_publish_ns
        };
        let Some(p) = self.partition_for_append(log, &topic).await? else {
            return Err(StoreError::new(
                format!("producing to {topic}"),
                "the Kafka topic does not exist (deleted)",
            ));
        };
        // One batch keeps the publish's ids contiguous; only a publish larger
        // than a broker batch is split (and then another publisher's batch may
        // land between its parts, as with the original's per-message sends).
        let mut first = None;
        let mut batch = Vec::new();
        let mut batch_bytes = 0;
        for m in &messages {
            let r = record::encode(m, publish_time_ns);
            let size = r.approximate_size() + 64;
            if !batch.is_empty() && batch_bytes + size > self.options.max_batch_bytes {
                let at = self.produce(&topic, &p, std::mem::take(&mut batch)).await?;
                first.get_or_insert(at);
                batch_bytes = 0;
            }
            batch_bytes += size;
            batch.push(r);
        }
        let at = self.produce(&topic, &p, batch).await?;
        let first = *first.get_or_insert(at);
        self.ring(&topic);
        Ok(Appended {
            first_offset: first,
            publish_time_ns,
        })
    }

    async fn read(
        &self,
        log: &LogRef,
        from: u64,
        max_messages: usize,
        max_bytes: usize,
    ) -> StoreResult<Vec<StoredMessage>> {
        let topic = topic_name(log);
        let Some(p) = self.partition(&topic).await? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut next = from;
        let mut bytes = 0usize;
        'fetch: while out.len() < max_messages {
            let offset = i64::try_from(next).unwrap_or(i64::MAX);
            let (records, high_watermark) = match Self::fetch(&p, offset, max_bytes).await {
                Ok(got) => got,
                Err(e) if is_out_of_range(&e) => {
                    // Below the earliest retained offset: start there; past the end: done.
                    let bounds = Self::partition_bounds(&p)
                        .await
                        .map_err(kafka_error("reading offsets", &topic))?;
                    if next < bounds.min {
                        next = bounds.min;
                        continue;
                    }
                    break;
                }
                Err(e) if is_unknown_topic(&e) => {
                    self.forget(&topic);
                    break;
                }
                Err(e) => return Err(kafka_error("fetching", &topic)(e)),
            };
            if records.is_empty() {
                break;
            }
            for r in records {
                if r.offset < offset {
                    continue;
                }
                let m = record::decode(r)
                    .map_err(|e| StoreError::new(format!("reading {topic}"), e))?;
                let cost = record::read_cost(&m);
                if out.len() >= max_messages || (!out.is_empty() && bytes + cost > max_bytes) {
                    break 'fetch;
                }
                bytes += cost;
                next = m.offset + 1;
                out.push(m);
            }
            if i64::try_from(next).unwrap_or(i64::MAX) >= high_watermark {
                break;
            }
        }
        Ok(out)
    }

    async fn bounds(&self, log: &LogRef) -> StoreResult<LogBounds> {
        let topic = topic_name(log);
        let Some(p) = self.partition(&topic).await? else {
            return Ok(LogBounds::default());
        };
        match Self::partition_bounds(&p).await {
            Ok(bounds) => Ok(bounds),
            Err(e) if is_unknown_topic(&e) => {
                self.forget(&topic);
                Ok(LogBounds::default())
            }
            Err(e) => Err(kafka_error("reading offsets", &topic)(e)),
        }
    }

    async fn offset_at_time(&self, log: &LogRef, time_ms: i64) -> StoreResult<Option<u64>> {
        let topic = topic_name(log);
        let Some(p) = self.partition(&topic).await? else {
            return Ok(None);
        };
        let Some(at) = rskafka::chrono::DateTime::from_timestamp_millis(time_ms) else {
            return Ok(None);
        };
        let (found, bounds) = tokio::try_join!(
            p.get_offset(OffsetAt::Timestamp(at)),
            Self::partition_bounds(&p)
        )
        .map_err(kafka_error("looking up an offset by time", &topic))?;
        if bounds.min >= bounds.max {
            return Ok(None);
        }
        // Brokers differ at the edges (tansu answers 0 for a time past the
        // last record, Kafka -1): check the answer against the records and
        // search them when it is wrong.
        let time_at = |o: u64| self.record_time_ms(&topic, &p, o);
        if let Some(o) = u64::try_from(found)
            .ok()
            .filter(|o| (bounds.min..bounds.max).contains(o))
            && time_at(o).await? >= time_ms
            && (o == bounds.min || time_at(o - 1).await? < time_ms)
        {
            return Ok(Some(o));
        }
        let (mut lo, mut hi) = (bounds.min, bounds.max);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if time_at(mid).await? >= time_ms {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok((lo < bounds.max).then_some(lo))
    }

    async fn wait_beyond(
        &self,
        log: &LogRef,
        offset: u64,
        timeout: Duration,
    ) -> StoreResult<LogBounds> {
        let topic = topic_name(log);
        let deadline = tokio::time::Instant::now() + timeout;
        let changed = self
            .local
            .lock()
            .entry(topic.clone())
            .or_default()
            .changed
            .clone();
        loop {
            // Registered before reading the bounds, so a local append in
            // between still wakes this wait.
            let local = changed.notified();
            tokio::pin!(local);
            local.as_mut().enable();
            let bounds = self.bounds(log).await?;
            let now = tokio::time::Instant::now();
            if bounds.max > offset || now >= deadline {
                return Ok(bounds);
            }
            let Some(p) = self.partition(&topic).await? else {
                // No topic (yet): only a local create or append can change that.
                tokio::select! {
                    () = &mut local => {}
                    () = tokio::time::sleep_until(deadline) => {}
                }
                continue;
            };
            // Another node's append: the broker holds the fetch until a record
            // arrives past the end or the wait expires.
            let wait = (deadline - now).min(LONG_POLL);
            let wait_ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX).max(1);
            let at = i64::try_from(bounds.max).unwrap_or(i64::MAX);
            tokio::select! {
                () = &mut local => {}
                _ = p.fetch_records(at, 1..1, wait_ms) => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn delete(&self, log: &LogRef) -> StoreResult<()> {
        let topic = topic_name(log);
        self.deleted.lock().insert(log.id);
        self.delete_topic(&topic).await?;
        self.ring(&topic);
        // Waiters hold their own handle on the notification.
        self.local.lock().remove(&topic);
        Ok(())
    }

    async fn list(&self) -> StoreResult<Vec<LogRef>> {
        let topics = self
            .client
            .list_topics()
            .await
            .map_err(|e| StoreError::new("listing Kafka topics", e))?;
        Ok(topics
            .iter()
            .filter_map(|t| parse_topic_name(&t.name))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_are_the_originals() {
        let project = Uuid::parse_str("0a6e3b1c-66a2-4d40-9e31-6b1c0b3a3e11").unwrap();
        let log = LogRef {
            id: Uuid::new_v4(),
            project,
            topic: "alerts_v2-x".into(),
        };
        let name = topic_name(&log);
        assert_eq!(name, "0a6e3b1c-66a2-4d40-9e31-6b1c0b3a3e11.alerts_v2-x");
        let parsed = parse_topic_name(&name).unwrap();
        assert_eq!(
            (parsed.project, parsed.topic.as_str()),
            (project, "alerts_v2-x")
        );
        assert_eq!(parsed.id, Uuid::nil());
        for foreign in [
            "__consumer_offsets",
            "x.y",
            &format!("{project}."),
            &format!("{project}x"),
        ] {
            assert!(parse_topic_name(foreign).is_none(), "{foreign}");
        }
    }
}
