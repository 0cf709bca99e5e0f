//! Prometheus metrics: counters the HTTP edge, the domain and the pusher move
//! as traffic flows, and per-subscription gauges (backlog, age of the oldest
//! unacknowledged message) computed when scraped. Exposed as OpenMetrics text
//! by [`Ams::prometheus_text`] (served at `GET /metrics`).

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

/// The counters and histograms kept across scrapes.
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    request_seconds: Histograms,
    published_messages: Family<TopicLabels, Counter>,
    published_bytes: Family<TopicLabels, Counter>,
    consumed_messages: Family<SubscriptionLabels, Counter>,
    consumed_bytes: Family<SubscriptionLabels, Counter>,
    push_deliveries: Family<PushLabels, Counter>,
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
        }
    }
}

impl Metrics {
    /// One answered request (static labels: nothing is allocated per request).
    pub fn request(&self, route: &'static str, method: &'static str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method,
                status,
            })
            .inc();
        self.request_seconds
            .get_or_create(&RouteLabels { route })
            .observe(seconds);
    }

    /// Messages stored by a publish.
    pub(crate) fn published(&self, project: &str, topic: &str, messages: u64, bytes: u64) {
        let labels = TopicLabels {
            project: project.to_owned(),
            topic: topic.to_owned(),
        };
        self.published_messages
            .get_or_create(&labels)
            .inc_by(messages);
        self.published_bytes.get_or_create(&labels).inc_by(bytes);
    }

    /// Messages handed out by a pull (redeliveries included).
    pub(crate) fn consumed(&self, project: &str, subscription: &str, messages: u64, bytes: u64) {
        let labels = SubscriptionLabels {
            project: project.to_owned(),
            subscription: subscription.to_owned(),
        };
        self.consumed_messages
            .get_or_create(&labels)
            .inc_by(messages);
        self.consumed_bytes.get_or_create(&labels).inc_by(bytes);
    }

    /// One push delivery attempt's outcome.
    pub fn push_delivery(&self, outcome: &'static str) {
        self.push_deliveries
            .get_or_create(&PushLabels { outcome })
            .inc();
    }
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
        registry.register(
            "http_requests",
            "Requests answered, by route name, method and status",
            m.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request, by route name",
            m.request_seconds.clone(),
        );
        registry.register(
            "published_messages",
            "Messages stored by publishes",
            m.published_messages.clone(),
        );
        registry.register(
            "published_bytes",
            "Bytes of message data stored by publishes",
            m.published_bytes.clone(),
        );
        registry.register(
            "consumed_messages",
            "Messages handed out by pulls (redeliveries included)",
            m.consumed_messages.clone(),
        );
        registry.register(
            "consumed_bytes",
            "Bytes of message data handed out by pulls",
            m.consumed_bytes.clone(),
        );
        registry.register(
            "push_deliveries",
            "Push delivery attempts, by outcome",
            m.push_deliveries.clone(),
        );
        registry.register(
            "storage_sync_duration_seconds",
            "Time of one fdatasync, by store (each makes a group of writes durable)",
            SYNC_SECONDS.clone(),
        );
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
