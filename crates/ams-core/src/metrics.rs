//! Prometheus metrics: counters the HTTP edge, the domain and the pusher move
//! as traffic flows, and per-subscription gauges (backlog, age of the oldest
//! unacknowledged message) computed when scraped. Exposed as OpenMetrics text
//! by [`Ams::prometheus_text`] (served at `GET /metrics`).

use std::hash::{Hash, Hasher};

use hashbrown::{Equivalent, HashMap};
use parking_lot::RwLock;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::Ams;
use crate::error::Result;

/// A request's route (its name, e.g. `topics:publish`), method and status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Route name, or `-` when nothing matched.
    pub route: &'static str,
    /// HTTP method.
    pub method: &'static str,
    /// HTTP status code.
    pub status: u16,
}

/// A route alone (latency histograms).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Route name.
    pub route: &'static str,
}

/// A topic.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    /// Project name.
    pub project: String,
    /// Topic name.
    pub topic: String,
}

/// A subscription.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubscriptionLabels {
    /// Project name.
    pub project: String,
    /// Subscription name.
    pub subscription: String,
}

/// How a push delivery ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PushLabels {
    /// `delivered`, `failed` or `dead_lettered`.
    pub outcome: &'static str,
}

/// Which store a sync made durable.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SyncLabels {
    /// `log` (a segment's fdatasync) or `metadata` (the journal's).
    pub store: &'static str,
}

/// Storage sync latencies. Process-wide, because the stores that sync know
/// nothing of the domain handle; every server in the process shares it.
static SYNC_SECONDS: std::sync::LazyLock<SyncHistograms> =
    std::sync::LazyLock::new(|| Family::new_with_constructor(latency_histogram));

type SyncHistograms = Family<SyncLabels, Histogram, fn() -> Histogram>;

/// Records one storage sync (called by the stores).
pub fn observe_sync(store: &'static str, seconds: f64) {
    SYNC_SECONDS
        .get_or_create(&SyncLabels { store })
        .observe(seconds);
}

fn latency_histogram() -> Histogram {
    // 100 µs .. ~3.3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

type Histograms = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// Metric handles by label values, found without allocating. A [`Family`]
/// hashes its labels with SipHash and wants them owned (a topic's are two
/// `String`s), which cost a publish about 2.5k instructions, a twentieth of
/// its work (callgrind). A handle shares its value with the family's entry,
/// which the scrape encodes; like the families, the map only grows.
struct Handles<K, V>(RwLock<HashMap<K, V>>);

impl<K: Hash + Eq, V> Default for Handles<K, V> {
    fn default() -> Self {
        Self(RwLock::new(HashMap::new()))
    }
}

impl<K: Hash + Eq, V> Handles<K, V> {
    /// Runs `f` on the handles for `key`, made by `make` on first use.
    fn with<Q>(&self, key: &Q, make: impl FnOnce() -> (K, V), f: impl FnOnce(&V))
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        if let Some(v) = self.0.read().get(key) {
            return f(v);
        }
        let (k, v) = make();
        f(self.0.write().entry(k).or_insert(v));
    }
}

/// A (project, topic or subscription) pair, borrowed: looks up the owned
/// pair it equals (it hashes as a `(String, String)` does).
struct NamePair<'a>(&'a str, &'a str);

impl Hash for NamePair<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
        self.1.hash(state);
    }
}

impl Equivalent<(String, String)> for NamePair<'_> {
    fn equivalent(&self, key: &(String, String)) -> bool {
        self.0 == key.0 && self.1 == key.1
    }
}

/// Messages and bytes counters of one topic or subscription.
type Volume = (Counter, Counter);

/// The counters and histograms kept across scrapes.
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    request_seconds: Histograms,
    published_messages: Family<TopicLabels, Counter>,
    published_bytes: Family<TopicLabels, Counter>,
    consumed_messages: Family<SubscriptionLabels, Counter>,
    consumed_bytes: Family<SubscriptionLabels, Counter>,
    push_deliveries: Family<PushLabels, Counter>,
    request_handles: Handles<(&'static str, &'static str, u16), (Counter, Histogram)>,
    published_handles: Handles<(String, String), Volume>,
    consumed_handles: Handles<(String, String), Volume>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(latency_histogram),
            published_messages: Family::default(),
            published_bytes: Family::default(),
            consumed_messages: Family::default(),
            consumed_bytes: Family::default(),
            push_deliveries: Family::default(),
            request_handles: Handles::default(),
            published_handles: Handles::default(),
            consumed_handles: Handles::default(),
        }
    }
}

impl Metrics {
    /// One answered request.
    pub fn request(&self, route: &'static str, method: &'static str, status: u16, seconds: f64) {
        let key = (route, method, status);
        let make = || {
            let labels = RequestLabels {
                route,
                method,
                status,
            };
            let counter = self.requests.get_or_create(&labels).clone();
            let histogram = self
                .request_seconds
                .get_or_create(&RouteLabels { route })
                .clone();
            (key, (counter, histogram))
        };
        self.request_handles.with(&key, make, |(count, latency)| {
            count.inc();
            latency.observe(seconds);
        });
    }

    /// Messages stored by a publish.
    pub(crate) fn published(&self, project: &str, topic: &str, messages: u64, bytes: u64) {
        let labels = || TopicLabels {
            project: project.to_owned(),
            topic: topic.to_owned(),
        };
        let families = (&self.published_messages, &self.published_bytes);
        let key = NamePair(project, topic);
        add_volume(
            &self.published_handles,
            families,
            key,
            labels,
            messages,
            bytes,
        );
    }

    /// Messages handed out by a pull (redeliveries included).
    pub(crate) fn consumed(&self, project: &str, subscription: &str, messages: u64, bytes: u64) {
        let labels = || SubscriptionLabels {
            project: project.to_owned(),
            subscription: subscription.to_owned(),
        };
        let families = (&self.consumed_messages, &self.consumed_bytes);
        let key = NamePair(project, subscription);
        add_volume(
            &self.consumed_handles,
            families,
            key,
            labels,
            messages,
            bytes,
        );
    }

    /// One push delivery attempt's outcome.
    pub fn push_delivery(&self, outcome: &'static str) {
        self.push_deliveries
            .get_or_create(&PushLabels { outcome })
            .inc();
    }

    /// Registers the counters and histograms (the scrape adds its gauges).
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "http_requests",
            "Requests answered, by route name, method and status",
            self.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request, by route name",
            self.request_seconds.clone(),
        );
        registry.register(
            "published_messages",
            "Messages stored by publishes",
            self.published_messages.clone(),
        );
        registry.register(
            "published_bytes",
            "Bytes of message data stored by publishes",
            self.published_bytes.clone(),
        );
        registry.register(
            "consumed_messages",
            "Messages handed out by pulls (redeliveries included)",
            self.consumed_messages.clone(),
        );
        registry.register(
            "consumed_bytes",
            "Bytes of message data handed out by pulls",
            self.consumed_bytes.clone(),
        );
        registry.register(
            "push_deliveries",
            "Push delivery attempts, by outcome",
            self.push_deliveries.clone(),
        );
        registry.register(
            "storage_sync_duration_seconds",
            "Time of one fdatasync, by store (each makes a group of writes durable)",
            SYNC_SECONDS.clone(),
        );
    }
}

/// Adds a publish's or a pull's messages and bytes to the two counters of
/// `key` (a project and a topic or subscription), whose families' entries
/// are made from `labels` on first use.
fn add_volume<L: Clone + Hash + Eq>(
    handles: &Handles<(String, String), Volume>,
    (messages_family, bytes_family): (&Family<L, Counter>, &Family<L, Counter>),
    key: NamePair<'_>,
    labels: impl FnOnce() -> L,
    messages: u64,
    bytes: u64,
) {
    let make = || {
        let labels = labels();
        let counters = (
            messages_family.get_or_create(&labels).clone(),
            bytes_family.get_or_create(&labels).clone(),
        );
        ((key.0.to_owned(), key.1.to_owned()), counters)
    };
    handles.with(&key, make, |(count, size)| {
        count.inc_by(messages);
        size.inc_by(bytes);
    });
}

impl Ams {
    /// The metrics the transports and the pusher record into.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// Every metric as OpenMetrics text, with the per-subscription gauges
    /// computed now.
    pub async fn prometheus_text(&self) -> Result<String> {
        let m = self.metrics();
        let mut registry = Registry::with_prefix("ams");
        m.register(&mut registry);
        let backlog = Family::<SubscriptionLabels, Gauge>::default();
        let oldest =
            Family::<SubscriptionLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        let now = self.now();
        for (project, sub) in self.all_subscriptions().await? {
            let Some(topic) = self.meta().topic(project.uuid, &sub.topic).await? else {
                continue;
            };
            let bounds = self.log().bounds(&topic.log_ref()).await?;
            let committed = sub.cursor.offset.max(bounds.min);
            let labels = SubscriptionLabels {
                project: project.name.clone(),
                subscription: sub.name.clone(),
            };
            let waiting = bounds.max.saturating_sub(committed);
            backlog
                .get_or_create(&labels)
                .set(i64::try_from(waiting).unwrap_or(i64::MAX));
            let age = if waiting == 0 {
                0.0
            } else {
                self.log()
                    .read(&topic.log_ref(), committed, 1, 1)
                    .await?
                    .first()
                    .map_or(0.0, |m| {
                        (now.nanos().saturating_sub(m.publish_time_ns)) as f64 / 1e9
                    })
            };
            oldest.get_or_create(&labels).set(age.max(0.0));
        }
        registry.register(
            "subscription_backlog_messages",
            "Messages published to a subscription's topic and not yet acknowledged",
            backlog,
        );
        registry.register(
            "subscription_oldest_unacked_age_seconds",
            "Age of the oldest message a subscription has not acknowledged",
            oldest,
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)
            .map_err(|e| crate::storage::StoreError::new("encode metrics", e))?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    fn text(m: &Metrics) -> String {
        let mut registry = Registry::with_prefix("ams");
        m.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        text
    }

    /// Asserts that each of `lines` is a line of `text`.
    fn has(text: &str, lines: &[&str]) {
        for line in lines {
            assert!(text.lines().any(|l| l == *line), "no `{line}` in:\n{text}");
        }
    }

    #[test]
    fn repeated_labels_add_up_in_the_scraped_families() {
        let m = Metrics::default();
        for _ in 0..3 {
            m.published("p", "t", 2, 10);
            m.consumed("p", "s", 1, 5);
            m.request("topics:publish", "POST", 200, 0.001);
        }
        m.request("topics:publish", "POST", 404, 0.001);
        m.request("topics:get", "GET", 200, 0.001);
        let text = text(&m);
        has(
            &text,
            &[
                r#"ams_published_messages_total{project="p",topic="t"} 6"#,
                r#"ams_published_bytes_total{project="p",topic="t"} 30"#,
                r#"ams_consumed_messages_total{project="p",subscription="s"} 3"#,
                r#"ams_consumed_bytes_total{project="p",subscription="s"} 15"#,
                r#"ams_http_requests_total{route="topics:publish",method="POST",status="200"} 3"#,
                r#"ams_http_requests_total{route="topics:publish",method="POST",status="404"} 1"#,
                r#"ams_http_request_duration_seconds_count{route="topics:publish"} 4"#,
                r#"ams_http_request_duration_seconds_count{route="topics:get"} 1"#,
            ],
        );
    }

    #[test]
    fn names_that_concatenate_alike_are_kept_apart() {
        let m = Metrics::default();
        m.published("ab", "c", 1, 1);
        m.published("a", "bc", 2, 2);
        m.published("ab", "c", 4, 4);
        let text = text(&m);
        has(
            &text,
            &[
                r#"ams_published_messages_total{project="ab",topic="c"} 5"#,
                r#"ams_published_messages_total{project="a",topic="bc"} 2"#,
            ],
        );
    }

    #[test]
    fn a_borrowed_pair_hashes_as_the_owned_one() {
        let owned = (String::from("proj"), String::from("topic"));
        let build = hashbrown::DefaultHashBuilder::default();
        assert_eq!(
            build.hash_one(NamePair("proj", "topic")),
            build.hash_one(&owned)
        );
        assert!(NamePair("proj", "topic").equivalent(&owned));
        assert!(!NamePair("pro", "jtopic").equivalent(&owned));
    }
}
