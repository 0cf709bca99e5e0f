//! AMS resource metrics (contract §9, §5.1): the `:metrics` lists of
//! projects, topics and subscriptions, the per-node operational metrics of
//! `GET /v1/metrics`, the VA report and the per-user usage report.
//!
//! What they count is durable. A subscription's consumption is a [`Tally`] on
//! its cursor, moved in the very write that records each pull. A topic's
//! publishes are counted in memory ([`Pending`]) and handed to the store by
//! [`Ams::flush_usage`] every second and at shutdown, as additive
//! [`UsageDelta`]s, so that publishing never waits on a metadata write and
//! several nodes' counts add up. Reads add this node's pending counts, so a
//! metric moves as soon as a publish is answered; a crash loses at most the
//! last second's publish counts (never messages).

use std::collections::{BTreeMap, HashMap};

use ams_types::{Timestamp, wire};
use parking_lot::Mutex;
use uuid::Uuid;

use crate::Ams;
use crate::auth::{Context, Role};
use crate::error::{Error, Result};
use crate::model::{NodeSample, Subscription, Tally, Topic};
use crate::storage::{PageRequest, UsageDelta};

/// How many days a daily-count metric shows at most.
const DAILY_POINTS: usize = 30;

/// The `timestamp` of a rate that never moved (Go's zero time).
const NEVER: &str = "0001-01-01T00:00:00Z";

/// Publish counts not yet handed to the store, by topic incarnation.
#[derive(Default)]
pub(crate) struct Pending {
    topics: Mutex<HashMap<Uuid, PendingTopic>>,
    /// Held shared by readers across their store read and pending read, and
    /// exclusively by a flush across taking the counts and storing them, so
    /// that a reader never sees counts in neither place.
    gate: tokio::sync::RwLock<()>,
}

/// One topic incarnation's counts since the last flush. It stays in the map
/// (emptied) for one flush period after its last publish, so that the next
/// publish's rate follows the latest publish even before the store has it.
struct PendingTopic {
    project: Uuid,
    topic: String,
    published: Tally,
    days: BTreeMap<i32, u64>,
}

impl PendingTopic {
    fn is_idle(&self) -> bool {
        self.published.messages == 0 && self.days.is_empty()
    }
}

/// The date window of a VA or usage report, as the query gave it.
#[derive(Debug, Default, Clone)]
pub struct ReportQuery {
    /// `start_date` (`YYYY-MM-DD`); 1970-01-01 when absent or empty.
    pub start_date: Option<String>,
    /// `end_date`; today when absent or empty.
    pub end_date: Option<String>,
    /// `projects`: comma-separated names; all projects when absent or empty.
    pub projects: Option<String>,
}

/// A validated report window: UTC days, both included.
struct Window {
    first: i32,
    last: i32,
}

impl Window {
    fn contains(&self, t: Timestamp) -> bool {
        (self.first..=self.last).contains(&t.day())
    }

    fn days(&self) -> i64 {
        i64::from(self.last) - i64::from(self.first) + 1
    }
}

impl Ams {
    /// Counts a publish of `count` messages (`bytes` of data) at `at`.
    pub(crate) fn count_publish(&self, topic: &Topic, count: u64, bytes: u64, at: Timestamp) {
        let mut pending = self.0.usage.topics.lock();
        let entry = pending.entry(topic.log_id).or_insert_with(|| PendingTopic {
            project: topic.project,
            topic: topic.name.clone(),
            published: topic.published.continuation(),
            days: BTreeMap::new(),
        });
        entry.published.record(count, bytes, at.nanos());
        *entry.days.entry(at.day()).or_default() += count;
    }

    /// Hands the pending publish counts to the store. On failure they stay
    /// pending (merged with any counted meanwhile) for the next flush.
    pub async fn flush_usage(&self) -> Result<()> {
        let _gate = self.0.usage.gate.write().await;
        let deltas: Vec<UsageDelta> = {
            let mut pending = self.0.usage.topics.lock();
            let mut deltas = Vec::new();
            pending.retain(|log_id, p| {
                if p.is_idle() {
                    return false;
                }
                deltas.push(UsageDelta {
                    project: p.project,
                    topic: p.topic.clone(),
                    log_id: *log_id,
                    published: p.published,
                    days: std::mem::take(&mut p.days).into_iter().collect(),
                });
                p.published = p.published.continuation();
                true
            });
            deltas
        };
        if deltas.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.meta().add_usage(&deltas).await {
            let mut pending = self.0.usage.topics.lock();
            for delta in deltas {
                // Retained above, and only flushes remove entries.
                if let Some(p) = pending.get_mut(&delta.log_id) {
                    let mut restored = delta.published;
                    restored.absorb(&p.published);
                    p.published = restored;
                    for (day, n) in delta.days {
                        *p.days.entry(day).or_default() += n;
                    }
                }
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// Flushes the usage counts every `every` (wall-clock time: when counts
    /// reach the store is not a domain rule, and tests' injected clocks stay
    /// free of this timer) until cancelled; the caller flushes once more
    /// after cancelling.
    pub async fn run_usage_flusher(&self, every: std::time::Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // immediate
        loop {
            tick.tick().await;
            if let Err(e) = self.flush_usage().await {
                tracing::warn!(error = %e, "cannot store usage counters; will retry");
            }
        }
    }

    /// The topic's publish tally as stored now, with this node's pending counts.
    async fn published(&self, topic: &Topic) -> Result<Tally> {
        let _gate = self.0.usage.gate.read().await;
        let mut tally = self
            .meta()
            .topic(topic.project, &topic.name)
            .await?
            .filter(|t| t.log_id == topic.log_id)
            .map_or(topic.published, |t| t.published);
        if let Some(p) = self.0.usage.topics.lock().get(&topic.log_id) {
            tally.absorb(&p.published);
        }
        Ok(tally)
    }

    /// Daily counts (newest first, at most 30) of a project or one topic
    /// name, with this node's pending counts.
    async fn daily(&self, project: Uuid, topic: Option<&str>) -> Result<Vec<wire::Timepoint>> {
        self.daily_in(project, topic, i32::MIN..=i32::MAX)
            .await
            .map(|days| {
                days.into_iter()
                    .take(DAILY_POINTS)
                    .map(|(day, n)| wire::Timepoint {
                        timestamp: Timestamp::start_of_day(day).to_date(),
                        value: wire::MetricValue::Int(int(n)),
                    })
                    .collect()
            })
    }

    async fn daily_in(
        &self,
        project: Uuid,
        topic: Option<&str>,
        days: std::ops::RangeInclusive<i32>,
    ) -> Result<Vec<(i32, u64)>> {
        let _gate = self.0.usage.gate.read().await;
        let mut sums: BTreeMap<i32, u64> = self
            .meta()
            .daily_counts(project, topic, days.clone())
            .await?
            .into_iter()
            .collect();
        for p in self.0.usage.topics.lock().values() {
            if p.project == project && topic.is_none_or(|t| t == p.topic) {
                for (day, n) in p.days.range(days.clone()) {
                    *sums.entry(*day).or_default() += n;
                }
            }
        }
        Ok(sums.into_iter().rev().collect())
    }

    /// Every topic and subscription of a project.
    async fn resources(&self, project: Uuid) -> Result<(Vec<Topic>, Vec<Subscription>)> {
        let all = PageRequest::default();
        Ok((
            self.meta().list_topics(project, all).await?.items,
            self.meta().list_subscriptions(project, all).await?.items,
        ))
    }

    /// `GET /v1/projects/{p}:metrics`.
    pub async fn project_metrics(&self, ctx: &Context) -> Result<wire::MetricList> {
        let project = ctx.project();
        let now = self.now().to_rfc3339_seconds();
        let all = PageRequest::default();
        let (topics, subs) = self.resources(project.uuid).await?;
        let mut metrics = vec![
            counter(
                "project.number_of_topics",
                "project",
                &project.name,
                &now,
                topics.len() as u64,
            ),
            counter(
                "project.number_of_subscriptions",
                "project",
                &project.name,
                &now,
                subs.len() as u64,
            ),
        ];
        // Members oldest first, as the original's natural order lists them.
        let mut members = self.meta().list_users(Some(project.uuid), all).await?.items;
        members.reverse();
        for (name, acls) in [
            (
                "project.user.number_of_topics",
                topics.iter().map(|t| &t.acl).collect::<Vec<_>>(),
            ),
            (
                "project.user.number_of_subscriptions",
                subs.iter().map(|s| &s.acl).collect(),
            ),
        ] {
            for user in &members {
                let n = acls.iter().filter(|acl| acl.contains(&user.uuid)).count() as u64;
                if n > 0 {
                    let resource = format!("{}.{}", project.name, user.name);
                    metrics.push(counter(name, "project.user", &resource, &now, n));
                }
            }
        }
        metrics.push(series(
            "project.number_of_daily_messages",
            "project",
            &project.name,
            self.daily(project.uuid, None).await?,
        ));
        Ok(wire::MetricList { metrics })
    }

    /// `GET …/topics/{t}:metrics`. A publisher outside the topic's ACL is
    /// refused before the topic's existence is checked (contract §1.5).
    pub async fn topic_metrics(&self, ctx: &Context, name: &str) -> Result<wire::MetricList> {
        let project = ctx.project();
        let found = self.meta().topic(project.uuid, name).await?;
        self.check_acl(
            ctx,
            Role::Publisher,
            found.as_ref().map_or(&[][..], |t| &t.acl),
        )?;
        let topic = found.ok_or(Error::TopicNotFound)?;
        let now = self.now().to_rfc3339_seconds();
        let subscriptions = self
            .meta()
            .subscriptions_of_topic(project.uuid, name)
            .await?
            .len() as u64;
        let published = self.published(&topic).await?;
        Ok(wire::MetricList {
            metrics: vec![
                counter(
                    "topic.number_of_subscriptions",
                    "topic",
                    name,
                    &now,
                    subscriptions,
                ),
                counter(
                    "topic.number_of_messages",
                    "topic",
                    name,
                    &now,
                    published.messages,
                ),
                counter(
                    "topic.number_of_bytes",
                    "topic",
                    name,
                    &now,
                    published.bytes,
                ),
                series(
                    "topic.number_of_daily_messages",
                    "topic",
                    name,
                    self.daily(project.uuid, Some(name)).await?,
                ),
                rate("topic.publishing_rate", "topic", name, &published),
            ],
        })
    }

    /// `GET …/subscriptions/{s}:metrics`. A consumer outside the
    /// subscription's ACL is refused before its existence is checked.
    pub async fn subscription_metrics(
        &self,
        ctx: &Context,
        name: &str,
    ) -> Result<wire::MetricList> {
        let found = self.meta().subscription(ctx.project().uuid, name).await?;
        self.check_acl(
            ctx,
            Role::Consumer,
            found.as_ref().map_or(&[][..], |s| &s.acl),
        )?;
        let consumed = found.ok_or(Error::SubscriptionNotFound)?.cursor.consumed;
        let now = self.now().to_rfc3339_seconds();
        Ok(wire::MetricList {
            metrics: vec![
                counter(
                    "subscription.number_of_messages",
                    "subscription",
                    name,
                    &now,
                    consumed.messages,
                ),
                counter(
                    "subscription.number_of_bytes",
                    "subscription",
                    name,
                    &now,
                    consumed.bytes,
                ),
                rate(
                    "subscription.consumption_rate",
                    "subscription",
                    name,
                    &consumed,
                ),
            ],
        })
    }

    /// `GET /v1/metrics`: samples this node, stores the sample, and lists
    /// every node's latest CPU and memory percentages.
    pub async fn operational_metrics(&self) -> Result<wire::MetricList> {
        if let Some(sample) = sample_node() {
            self.meta().put_node_sample(sample).await?;
        }
        let now = self.now().to_rfc3339_seconds();
        let mut metrics = Vec::new();
        for node in self.meta().node_samples().await? {
            for (name, value) in [
                ("ams_node.cpu_usage", node.cpu_percent),
                ("ams_node.memory_usage", node.memory_percent),
            ] {
                metrics.push(metric(
                    name,
                    "percentage",
                    "ams_node",
                    &node.host,
                    vec![wire::Timepoint {
                        timestamp: now.clone(),
                        value: wire::MetricValue::Float(value),
                    }],
                ));
            }
        }
        Ok(wire::MetricList { metrics })
    }

    /// `GET /v1/metrics/va_metrics`.
    pub async fn va_report(&self, query: &ReportQuery) -> Result<wire::VaReport> {
        let window = self.window(query)?;
        let mut projects = Vec::new();
        match query.projects.as_deref().filter(|p| !p.is_empty()) {
            None => projects = self.meta().list_projects().await?,
            Some(names) => {
                for name in names.split(',') {
                    let project = self
                        .meta()
                        .project_by_name(name)
                        .await?
                        .ok_or_else(|| Error::ReportProjectMissing(name.to_owned()))?;
                    if !projects
                        .iter()
                        .any(|p: &crate::model::Project| p.uuid == project.uuid)
                    {
                        projects.push(project);
                    }
                }
            }
        }
        self.report(&projects, &window).await
    }

    /// `GET /v1/users/usageReport`: the VA report of the projects where the
    /// token's user is a project admin (optionally only those named in
    /// `projects`), with the operational metrics. Needs a user's token.
    pub async fn usage_report(
        &self,
        token: Option<&str>,
        query: &ReportQuery,
    ) -> Result<wire::UsageReport> {
        let token = token.filter(|t| !t.is_empty()).ok_or(Error::Unauthorized)?;
        let user = self
            .user_by_token(token)
            .await?
            .ok_or(Error::Unauthorized)?;
        let window = self.window(query)?;
        let filter: Option<Vec<&str>> = query
            .projects
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(|p| p.split(',').collect());
        let mut projects = Vec::new();
        for membership in &user.projects {
            if !membership.roles.iter().any(|r| r == "project_admin") {
                continue;
            }
            let Some(project) = self.meta().project_by_uuid(membership.project).await? else {
                continue;
            };
            if filter
                .as_ref()
                .is_none_or(|f| f.contains(&project.name.as_str()))
            {
                projects.push(project);
            }
        }
        if projects.is_empty() {
            return Ok(wire::UsageReport::default());
        }
        Ok(wire::UsageReport {
            va_metrics: self.report(&projects, &window).await?,
            operational_metrics: self.operational_metrics().await?,
        })
    }

    /// Validates a report's dates in the original's order.
    fn window(&self, query: &ReportQuery) -> Result<Window> {
        let day = |given: &Option<String>, default: i32, bad: Error| match given
            .as_deref()
            .filter(|s| !s.is_empty())
        {
            None => Ok(default),
            Some(s) => ams_types::time::parse_date(s).ok_or(bad),
        };
        let first = day(&query.start_date, 0, Error::InvalidStartDate)?;
        let last = day(&query.end_date, self.now().day(), Error::InvalidEndDate)?;
        if first > last {
            return Err(Error::StartAfterEnd);
        }
        Ok(Window { first, last })
    }

    /// The VA report of `projects` over `window`: only projects with
    /// messages in the window are listed.
    async fn report(
        &self,
        projects: &[crate::model::Project],
        window: &Window,
    ) -> Result<wire::VaReport> {
        let mut report = wire::VaReport::default();
        let all = PageRequest::default();
        for project in projects {
            let days = self
                .daily_in(project.uuid, None, window.first..=window.last)
                .await?;
            if days.is_empty() {
                continue;
            }
            let messages: u64 = days.iter().map(|(_, n)| n).sum();
            // Rounded up to two decimals, as the original does.
            let average = (messages as f64 / window.days() as f64 * 100.0).ceil() / 100.0;
            let (topics, subs) = self.resources(project.uuid).await?;
            let users = self.meta().list_users(Some(project.uuid), all).await?.items;
            let entry = wire::ProjectMetrics {
                project: project.name.clone(),
                message_count: int(messages),
                average_daily_messages: average,
                topics_count: count(topics.iter().filter(|t| window.contains(t.created_on))),
                subscriptions_count: count(subs.iter().filter(|s| window.contains(s.created_on))),
                users_count: count(users.iter().filter(|u| window.contains(u.created_on))),
            };
            let totals = &mut report.projects_metrics;
            totals.total_message_count += entry.message_count;
            totals.average_daily_messages += entry.average_daily_messages;
            report.total_topics_count += entry.topics_count;
            report.total_subscriptions_count += entry.subscriptions_count;
            report.total_users_count += entry.users_count;
            totals.projects.push(entry);
        }
        Ok(report)
    }
}

/// This process's CPU (lifetime average) and memory percentages, as `ps`
/// reports `%cpu` and `%mem` (one decimal); `None` where the platform does
/// not tell.
fn sample_node() -> Option<NodeSample> {
    let (cpu, memory) = process_usage()?;
    Some(NodeSample {
        host: sysinfo::System::host_name().unwrap_or_else(|_| "localhost".to_owned()),
        cpu_percent: one_decimal(cpu),
        memory_percent: one_decimal(memory),
    })
}

/// Unrounded CPU and memory percentages of this process.
fn process_usage() -> Option<(f64, f64)> {
    use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};
    let pid = sysinfo::get_current_pid().ok()?;
    let mut system = System::new().ok()?;
    system.refresh_memory();
    system.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        false,
        ProcessRefreshKind::nothing().with_cpu().with_memory(),
    );
    let process = system.process(pid)?;
    let total = system.total_memory().max(1);
    let memory = process.memory() as f64 / total as f64 * 100.0;
    let cpu =
        process.accumulated_cpu_time() as f64 / (process.run_time().max(1) as f64 * 1000.0) * 100.0;
    Some((cpu, memory))
}

fn one_decimal(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn count<T>(items: impl Iterator<Item = T>) -> i64 {
    int(items.count() as u64)
}

fn metric(
    name: &str,
    metric_type: &str,
    resource_type: &str,
    resource: &str,
    timeseries: Vec<wire::Timepoint>,
) -> wire::Metric {
    wire::Metric {
        metric: name.to_owned(),
        metric_type: metric_type.to_owned(),
        value_type: if metric_type == "counter" {
            "int64"
        } else {
            "float64"
        }
        .to_owned(),
        resource_type: resource_type.to_owned(),
        resource_name: resource.to_owned(),
        timeseries,
        description: description(name).to_owned(),
    }
}

/// A counter with one point at `now`.
fn counter(name: &str, resource_type: &str, resource: &str, now: &str, n: u64) -> wire::Metric {
    series(
        name,
        resource_type,
        resource,
        vec![wire::Timepoint {
            timestamp: now.to_owned(),
            value: wire::MetricValue::Int(int(n)),
        }],
    )
}

/// A counter with the given points.
fn series(
    name: &str,
    resource_type: &str,
    resource: &str,
    points: Vec<wire::Timepoint>,
) -> wire::Metric {
    metric(name, "counter", resource_type, resource, points)
}

/// A rate, stamped with its latest event's time.
fn rate(name: &str, resource_type: &str, resource: &str, tally: &Tally) -> wire::Metric {
    let timestamp = if tally.latest_ns == 0 {
        NEVER.to_owned()
    } else {
        Timestamp::from_nanos(tally.latest_ns).to_rfc3339_seconds()
    };
    metric(
        name,
        "rate",
        resource_type,
        resource,
        vec![wire::Timepoint {
            timestamp,
            value: wire::MetricValue::Float(tally.rate()),
        }],
    )
}

/// The catalogue's exact descriptions (contract §9).
fn description(name: &str) -> &'static str {
    match name {
        "project.number_of_topics" => {
            "Counter that displays the number of topics belonging to the specific project"
        }
        "project.number_of_subscriptions" => {
            "Counter that displays the number of subscriptions belonging to the specific project"
        }
        "project.user.number_of_topics" => {
            "Counter that displays the number of topics that a user has access to the specific project"
        }
        "project.user.number_of_subscriptions" => {
            "Counter that displays the number of subscriptions that a user has access to the specific project"
        }
        "project.number_of_daily_messages" => {
            "A collection of counters that represents the total number of messages published each day to all of the project's topics"
        }
        "topic.number_of_subscriptions" => {
            "Counter that displays the number of subscriptions belonging to a specific topic"
        }
        "topic.number_of_messages" => {
            "Counter that displays the number of messages published to the specific topic"
        }
        "topic.number_of_bytes" => {
            "Counter that displays the total size of data (in bytes) published to the specific topic"
        }
        "topic.number_of_daily_messages" => {
            "A collection of counters that represents the total number of messages published each day to a specific topic"
        }
        "topic.publishing_rate" => {
            "A rate that displays how many messages were published per second between the last two publish events"
        }
        "subscription.number_of_messages" => {
            "Counter that displays the number of messages consumed from the specific subscription"
        }
        "subscription.number_of_bytes" => {
            "Counter that displays the total size of data (in bytes) consumed from the specific subscription"
        }
        "subscription.consumption_rate" => {
            "A rate that displays how many messages were consumed per second between the last two consume events"
        }
        "ams_node.cpu_usage" => {
            "Percentage value that displays the CPU usage of ams service in the specific node"
        }
        "ams_node.memory_usage" => {
            "Percentage value that displays the Memory usage of ams service in the specific node"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_follow_the_last_two_events() {
        let mut t = Tally::default();
        assert_eq!(t.rate(), 0.0);
        t.record(4, 40, 10_000_000_000);
        assert_eq!(t.rate(), 4.0, "the first event counts over one second");
        t.record(3, 30, 12_000_000_000);
        assert_eq!(t.rate(), 1.5);
        assert_eq!((t.messages, t.bytes), (7, 70));
        let mut later = t.continuation();
        later.record(5, 1, 12_500_000_000);
        t.absorb(&later);
        assert_eq!(t.rate(), 10.0);
        assert_eq!(t.messages, 12);
        t.record(1, 1, 12_500_000_000);
        assert!(t.rate().is_finite(), "two events in one instant");
    }

    #[test]
    fn every_metric_has_its_description() {
        for name in [
            "project.number_of_topics",
            "project.number_of_subscriptions",
            "project.user.number_of_topics",
            "project.user.number_of_subscriptions",
            "project.number_of_daily_messages",
            "topic.number_of_subscriptions",
            "topic.number_of_messages",
            "topic.number_of_bytes",
            "topic.number_of_daily_messages",
            "topic.publishing_rate",
            "subscription.number_of_messages",
            "subscription.number_of_bytes",
            "subscription.consumption_rate",
            "ams_node.cpu_usage",
            "ams_node.memory_usage",
        ] {
            assert!(!description(name).is_empty(), "{name}");
        }
    }

    #[test]
    fn this_node_can_be_sampled() {
        let (cpu, memory) = process_usage().expect("Linux reports process statistics");
        assert!(memory > 0.0 && memory < 100.0, "{memory}");
        assert!(cpu >= 0.0, "{cpu}");
        let sample = sample_node().unwrap();
        assert!(!sample.host.is_empty());
        assert_eq!(sample.memory_percent, one_decimal(sample.memory_percent));
        assert_eq!(one_decimal(12.345), 12.3);
    }
}
