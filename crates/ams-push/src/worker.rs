//! The delivery loop of one push subscription: pull a batch (from the
//! committed offset, so a failed batch comes back unchanged), deliver it,
//! acknowledge it as a whole, then wait as the retry policy says. A batch that
//! keeps failing is dead-lettered when the subscription has a policy for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::FutureExt as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use ams_core::Error;
use ams_core::model::Push;
use ams_core::push::{active_status, full_name};
use ams_types::Timestamp;
use ams_types::wire;

use crate::schedule::Schedule;
use crate::{Key, Pusher, deliver};

/// How one cycle ended.
enum Cycle {
    /// Delivered and acknowledged.
    Delivered,
    /// Nothing to deliver.
    Empty,
    /// Something failed; the status line says what.
    Failed,
    /// The subscription is gone: the next load confirms it and stops.
    Stop,
}

/// How the supervisor reaches a worker.
pub(crate) struct Signals {
    /// Re-read the subscription (its settings changed, or it may be gone).
    pub(crate) changed: Arc<Notify>,
    /// Set by the worker when it decided to stop (see `Running`).
    pub(crate) exiting: Arc<AtomicBool>,
    /// Stop now (shutdown): an unacknowledged delivery is simply repeated later.
    pub(crate) cancel: CancellationToken,
}

/// Runs until the subscription stops being an active push subscription, the
/// lease is lost, or `cancel` fires.
pub(crate) async fn run(pusher: Arc<Pusher>, key: Key, signals: Signals) {
    let Signals {
        changed,
        exiting,
        cancel,
    } = signals;
    let lease_key = Pusher::lease_key(&key);
    let node = pusher.options.node_id.clone();
    let mut worker = Worker {
        pusher: pusher.clone(),
        key: key.clone(),
        schedule: None,
        push: None,
        attempts: (u64::MAX, 0),
        next_cycle: pusher.ams.clock().now(),
        lease_renew_at: Timestamp::from_nanos(i64::MIN),
    };
    loop {
        if cancel.is_cancelled() {
            break;
        }
        if !worker.hold_lease(&lease_key, &node).await {
            break;
        }
        let Some((project, sub)) = worker.load().await else {
            // About to stop: a wake-up that arrived meanwhile means "look again".
            exiting.store(true, Ordering::SeqCst);
            if changed.notified().now_or_never().is_some() {
                exiting.store(false, Ordering::SeqCst);
                continue;
            }
            break;
        };
        // Wait for the cycle's time, waking to renew the lease on the way; a
        // change of the subscription re-reads it.
        if worker.next_cycle > worker.now() {
            let until = worker.next_cycle.min(worker.lease_renew_at);
            tokio::select! {
                () = pusher.ams.clock().sleep_until(until) => {}
                () = changed.notified() => {}
                () = cancel.cancelled() => break,
            }
            continue;
        }
        let outcome = tokio::select! {
            outcome = worker.cycle(&project, &sub) => outcome,
            () = cancel.cancelled() => break,
        };
        match outcome {
            Cycle::Stop => continue,
            Cycle::Empty => {
                let wait = pusher.options.lease / 3;
                tokio::select! {
                    r = pusher.ams.wait_for_messages(&sub, sub.cursor.offset, wait) => {
                        if let Err(e) = r {
                            warn!(subscription = %key.1, error = %e, "push: waiting for messages failed");
                            worker.next_cycle = worker.later(Duration::from_secs(1));
                        }
                    }
                    () = changed.notified() => {}
                    () = cancel.cancelled() => break,
                }
            }
            Cycle::Delivered | Cycle::Failed => {}
        }
    }
    let _ = pusher.ams.release_lease(&lease_key, &node).await;
    pusher.statuses.lock().remove(&key);
}

struct Worker {
    pusher: Arc<Pusher>,
    key: Key,
    schedule: Option<Schedule>,
    /// The settings of the previous cycle (a change restarts the schedule).
    push: Option<Push>,
    /// Failed deliveries of the batch starting at this offset.
    attempts: (u64, u32),
    next_cycle: Timestamp,
    lease_renew_at: Timestamp,
}

impl Worker {
    fn now(&self) -> Timestamp {
        self.pusher.ams.clock().now()
    }

    fn later(&self, d: Duration) -> Timestamp {
        Timestamp::from_nanos(
            self.now()
                .nanos()
                .saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        )
    }

    /// Whether this node (still) owns the subscription, renewing the lease
    /// when a third of it has passed. An error counts as not owning it: the
    /// supervisor's rescan starts a worker again later.
    async fn hold_lease(&mut self, lease_key: &str, node: &str) -> bool {
        if self.now() < self.lease_renew_at {
            return true;
        }
        let lease = self.pusher.options.lease;
        match self.pusher.ams.acquire_lease(lease_key, node, lease).await {
            Ok(true) => {
                self.lease_renew_at = self.later(lease / 3);
                true
            }
            Ok(false) => {
                debug!(subscription = %self.key.1, "push: delivered by another node");
                false
            }
            Err(e) => {
                warn!(subscription = %self.key.1, error = %e, "push: lease renewal failed");
                false
            }
        }
    }

    /// The subscription, if it is still an active push subscription; a
    /// changed configuration restarts the schedule and the next cycle is due now.
    async fn load(&mut self) -> Option<(ams_core::model::Project, ams_core::model::Subscription)> {
        if !self.pusher.ams.settings().push_enabled {
            return None;
        }
        let (project, sub) = match self
            .pusher
            .ams
            .subscription_by_uuid(self.key.0, &self.key.1)
            .await
        {
            Ok(found) => found?,
            Err(e) => {
                warn!(subscription = %self.key.1, error = %e, "push: cannot read subscription");
                return None;
            }
        };
        let push = sub.push.clone().filter(Push::active)?;
        if self.push.as_ref() != Some(&push) {
            if self.push.is_some() {
                info!(subscription = %self.key.1, "push: settings changed");
            }
            self.schedule = Some(Schedule::new(push.retry));
            self.next_cycle = self.now();
            self.push = Some(push);
        }
        Some((project, sub))
    }

    fn fail(&mut self, full: &str, what: &str, error: &str) -> Cycle {
        let status = format!(
            "{} - Could not {what} message, {error}",
            self.now().to_rfc3339_seconds()
        );
        debug!(subscription = %full, %status, "push: cycle failed");
        self.pusher.set_status(&self.key, status);
        let jitter = rand::random::<f64>();
        let wait = self
            .schedule
            .as_mut()
            .map_or(Duration::from_secs(1), |s| s.after_failure(jitter));
        self.next_cycle = self.later(wait);
        Cycle::Failed
    }

    async fn cycle(
        &mut self,
        project: &ams_core::model::Project,
        sub: &ams_core::model::Subscription,
    ) -> Cycle {
        let Some(push) = self.push.clone() else {
            return Cycle::Stop;
        };
        let full = full_name(&project.name, &sub.name);
        let ams = &self.pusher.ams;
        let ctx = match ams.push_context(project.clone()).await {
            Ok(ctx) => ctx,
            Err(e) => return self.fail(&full, "consume", &e.to_string()),
        };
        let pull = wire::Pull {
            max_messages: Some(push.max_messages.max(1).to_string()),
            return_immediately: Some("true".into()),
        };
        let received = match ams.pull(&ctx, &sub.name, Ok(pull)).await {
            Ok(r) => r.received_messages,
            Err(Error::SubscriptionNotFound | Error::ProjectMissing) => return Cycle::Stop,
            Err(e) => return self.fail(&full, "consume", &e.to_string()),
        };
        let Some(first) = received.first() else {
            return Cycle::Empty;
        };
        let first_offset: u64 = first.message.message_id.parse().unwrap_or(u64::MAX);
        // Within the ack deadline, so that a slow success is still acknowledged.
        let deadline = Duration::from_secs(u64::try_from(sub.ack_deadline).unwrap_or(0));
        let timeout = self
            .pusher
            .options
            .client
            .timeout
            .min(deadline.saturating_sub(Duration::from_secs(1)))
            .max(Duration::from_secs(1));
        if let Err(failure) =
            deliver::deliver(&self.pusher.client, &push, &full, &received, timeout).await
        {
            let attempts = if self.attempts.0 == first_offset {
                self.attempts.1 + 1
            } else {
                1
            };
            self.attempts = (first_offset, attempts);
            ams.metrics().push_delivery("failed");
            let reason = failure.to_string();
            let limit = sub.dead_letter.as_ref().map(|d| d.max_delivery_attempts);
            if limit.is_some_and(|max| attempts >= max) {
                match ams
                    .dead_letter(&ctx, &sub.name, &received, attempts, &reason)
                    .await
                {
                    Ok(true) => {
                        ams.metrics().push_delivery("dead_lettered");
                        info!(subscription = %full, count = received.len(), attempts,
                            "push: dead-lettered messages");
                        self.attempts = (u64::MAX, 0);
                        return self.fail(
                            &full,
                            "send",
                            &format!("{reason} (dead-lettered after {attempts} attempts)"),
                        );
                    }
                    Ok(false) => {}
                    Err(e) => {
                        return self.fail(
                            &full,
                            "send",
                            &format!("{reason}; dead-lettering failed: {e}"),
                        );
                    }
                }
            }
            return self.fail(&full, "send", &reason);
        }
        ams.metrics().push_delivery("delivered");
        let last = received
            .last()
            .map(|r| r.ack_id.clone())
            .unwrap_or_default();
        let ack = wire::Acknowledge {
            ack_ids: Some(vec![last]),
        };
        if let Err(e) = ams.acknowledge(&ctx, &sub.name, Ok(ack)).await {
            return self.fail(&full, "acknowledge", &e.to_string());
        }
        self.attempts = (u64::MAX, 0);
        self.pusher.set_status(&self.key, active_status(&full));
        let wait = self
            .schedule
            .as_mut()
            .map_or(Duration::ZERO, Schedule::after_success);
        self.next_cycle = self.later(wait);
        Cycle::Delivered
    }
}
