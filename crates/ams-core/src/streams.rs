//! Live streams: a subscription's messages handed out as they are published,
//! within a window of unacknowledged messages, and a topic's tail with replay.
//! Transports (WebSocket, Server-Sent Events) drive them; the rules are the
//! pull's (contract §6.3): the same checks, the same cursor bookkeeping, the
//! same ack deadlines and redelivery, so streaming and pulling clients mix.
//!
//! A stream never polls: it sleeps on the log's append notification, on its
//! subscription's cursor notification (acknowledgements and seeks on this
//! node) and on the injected clock (the ack deadline), whichever comes first.
//! It reads from the log only what it is about to send, so a client that stops
//! reading holds the stream still (its socket buffer fills) instead of growing
//! server memory, and publishers never wait for it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use ams_types::{Timestamp, wire};
use parking_lot::Mutex;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::Ams;
use crate::auth::{Context, Role};
use crate::error::{Error, Result};
use crate::model::{Subscription, Topic};
use crate::storage::{LogRef, StoredMessage, WriteDurability};

/// Largest window a subscription stream may ask for.
pub const MAX_WINDOW: u64 = 10_000;
/// Window of a subscription stream that names none.
pub const DEFAULT_WINDOW: u64 = 100;
/// Messages a topic stream reads at once.
const TAIL_BATCH: usize = 500;
/// Longest a stream sleeps before looking again (a safety net for changes
/// no notification reaches, such as a deleted topic or another node's ack).
const RECHECK: Duration = Duration::from_secs(30);

/// How a subscription stream runs.
#[derive(Debug, Clone, Copy)]
pub struct StreamOptions {
    /// Most messages handed out and not yet acknowledged (1..=10000).
    pub window: u64,
    /// Acknowledge every message as it is handed out (fire and forget).
    pub auto_ack: bool,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            window: DEFAULT_WINDOW,
            auto_ack: false,
        }
    }
}

/// Wakes the streams of subscriptions whose cursor moved on this node, and
/// tells acknowledgements how far they have sent.
#[derive(Default)]
pub(crate) struct CursorWatch {
    by_subscription: Mutex<HashMap<(Uuid, String), Weak<Watch>>>,
}

/// One subscription's open streams on this node.
#[derive(Default)]
pub(crate) struct Watch {
    /// Fired when the committed offset moves (or the subscription goes).
    notify: Notify,
    /// Each open stream's "sent up to here" (exclusive offset).
    sent: Mutex<Vec<Weak<AtomicU64>>>,
}

impl Ams {
    /// The watch of a subscription's streams on this node.
    fn watch_cursor(&self, project: Uuid, name: &str) -> Arc<Watch> {
        let mut map = self.0.cursors.by_subscription.lock();
        let key = (project, name.to_owned());
        if let Some(live) = map.get(&key).and_then(Weak::upgrade) {
            return live;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let watch = Arc::new(Watch::default());
        map.insert(key, Arc::downgrade(&watch));
        watch
    }

    fn live_watch(&self, project: Uuid, name: &str) -> Option<Arc<Watch>> {
        let key = (project, name.to_owned());
        self.0
            .cursors
            .by_subscription
            .lock()
            .get(&key)
            .and_then(Weak::upgrade)
    }

    /// Wakes this node's streams on cursor changes made by other nodes
    /// ([`crate::MetadataStore::cursor_events`]); returns at once when the
    /// store has no such events. Run by the server for its lifetime.
    pub async fn run_cursor_events(&self) {
        let Some(mut events) = self.meta().cursor_events() else {
            return;
        };
        loop {
            match events.recv().await {
                Ok((project, name)) => self.cursor_moved(project, &name),
                // Missed some: wake every stream; each re-reads its cursor.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let watches: Vec<_> = self
                        .0
                        .cursors
                        .by_subscription
                        .lock()
                        .values()
                        .filter_map(Weak::upgrade)
                        .collect();
                    for watch in watches {
                        watch.notify.notify_waiters();
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// Tells the subscription's streams that its cursor moved.
    pub(crate) fn cursor_moved(&self, project: Uuid, name: &str) {
        if let Some(watch) = self.live_watch(project, name) {
            watch.notify.notify_waiters();
        }
    }

    /// Wakes every stream of the project's subscriptions on this node (a
    /// topic went: its subscriptions' streams end now, even those waiting
    /// with a full window, which no publish would wake).
    pub(crate) fn project_streams_check(&self, project: Uuid) {
        let live: Vec<Arc<Watch>> = self
            .0
            .cursors
            .by_subscription
            .lock()
            .iter()
            .filter(|((p, _), _)| *p == project)
            .filter_map(|(_, w)| w.upgrade())
            .collect();
        for watch in live {
            watch.notify.notify_waiters();
        }
    }

    /// How far this node's streams of the subscription have sent (exclusive
    /// offset), if any is open. An acknowledgement keeps what they sent past
    /// the acknowledged id pending (see [`Ams::acknowledge`]): a streaming
    /// client acknowledges message by message, and the rest of what it holds
    /// must stay acknowledgeable without being sent again.
    pub(crate) fn streamed_until(&self, project: Uuid, name: &str) -> Option<u64> {
        let watch = self.live_watch(project, name)?;
        let mut sent = watch.sent.lock();
        sent.retain(|w| w.strong_count() > 0);
        sent.iter()
            .filter_map(Weak::upgrade)
            .map(|a| a.load(Ordering::Acquire))
            .max()
    }

    /// Opens a stream of subscription `name` with the pull's checks, in its
    /// order: the subscription (404), push mode (403/409), the consumer ACL
    /// (403), its topic (409).
    pub async fn subscription_stream(
        &self,
        ctx: &Context,
        name: &str,
        options: StreamOptions,
    ) -> Result<SubscriptionStream> {
        if !(1..=MAX_WINDOW).contains(&options.window) {
            return Err(Error::InvalidStreamParameter(
                "window must be between 1 and 10000",
            ));
        }
        let sub = self.subscription(ctx, name).await?;
        self.check_push_pull(ctx, &sub)?;
        self.check_acl(ctx, Role::Consumer, &sub.acl)?;
        self.meta()
            .topic(sub.project, &sub.topic)
            .await?
            .ok_or(Error::SubscriptionTopicMissing)?;
        let watch = self.watch_cursor(ctx.project().uuid, name);
        let sent_until = Arc::new(AtomicU64::new(0));
        {
            // Streams of this subscription that ended leave dead entries.
            let mut sent = watch.sent.lock();
            sent.retain(|w| w.strong_count() > 0);
            sent.push(Arc::downgrade(&sent_until));
        }
        Ok(SubscriptionStream {
            ams: self.clone(),
            ctx: ctx.clone(),
            prefix: format!("projects/{}/subscriptions/{}", ctx.project().name, name),
            name: name.to_owned(),
            options,
            sent_until,
            watch,
        })
    }

    /// Opens a tail of topic `name` starting where `from` says.
    pub async fn topic_stream(
        &self,
        ctx: &Context,
        name: &str,
        from: TailStart,
        max: Option<u64>,
    ) -> Result<TopicStream> {
        let topic = self.topic(ctx, name).await?;
        let log = topic.log_ref();
        let bounds = self.log().bounds(&log).await?;
        let position = match from {
            TailStart::End => bounds.max,
            TailStart::Offset(o) => o.clamp(bounds.min, bounds.max),
            TailStart::Last(n) => bounds.max.saturating_sub(n).max(bounds.min),
            TailStart::Time(ms) => self
                .log()
                .offset_at_time(&log, ms)
                .await?
                .unwrap_or(bounds.max),
        };
        Ok(TopicStream {
            ams: self.clone(),
            topic,
            log,
            position,
            remaining: max,
        })
    }
}

/// Where a topic stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailStart {
    /// After the newest message: only what is published from now on.
    End,
    /// At this offset (clamped to the retained range).
    Offset(u64),
    /// At the last `n` messages.
    Last(u64),
    /// At the first message published at or after this time (Unix ms).
    Time(i64),
}

/// What a subscription stream does next.
pub enum Next {
    /// Messages to send, in offset order.
    Messages(Vec<wire::ReceivedMessage>),
    /// Nothing to send yet: wait with [`SubscriptionStream::ready`].
    Idle,
    /// The subscription or its topic is gone: end the stream with this error.
    End(Error),
}

/// A subscription being streamed to one client.
pub struct SubscriptionStream {
    ams: Ams,
    ctx: Context,
    prefix: String,
    name: String,
    options: StreamOptions,
    /// One past the last offset sent to this client since the committed
    /// offset last moved or the deadline last expired (shared with the
    /// subscription's [`Watch`], which acknowledgements read).
    sent_until: Arc<AtomicU64>,
    watch: Arc<Watch>,
}

/// The state a stream decides on.
struct View {
    sub: Subscription,
    topic: Topic,
    /// The committed offset, raised to the log's first retained message.
    start: u64,
    max: u64,
    /// The first instant (ns) at which the pending messages' ack deadline
    /// has passed, if any are pending.
    deadline: Option<i64>,
}

impl SubscriptionStream {
    /// The subscription's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn sent(&self) -> u64 {
        self.sent_until.load(Ordering::Acquire)
    }

    fn set_sent(&self, until: u64) {
        self.sent_until.store(until, Ordering::Release);
    }

    async fn view(&self) -> Result<std::result::Result<View, Error>> {
        let ams = &self.ams;
        let Some(sub) = ams
            .meta()
            .subscription(self.ctx.project().uuid, &self.name)
            .await?
        else {
            return Ok(Err(Error::SubscriptionNotFound));
        };
        let Some(topic) = ams.meta().topic(sub.project, &sub.topic).await? else {
            return Ok(Err(Error::SubscriptionTopicMissing));
        };
        let bounds = ams.log().bounds(&topic.log_ref()).await?;
        let start = sub.cursor.offset.max(bounds.min);
        // The acknowledgement's rule, in whole seconds: refused once
        // `now_secs - pending_since > ack_deadline`, that is from the second
        // after `pending_since + ack_deadline` on. Redelivering earlier would
        // resend messages whose acknowledgement is still accepted.
        let deadline = sub
            .cursor
            .pending_since
            .filter(|_| sub.cursor.next_offset > start)
            .map(|at| {
                Timestamp::from_secs(at.saturating_add(sub.ack_deadline).saturating_add(1)).nanos()
            });
        Ok(Ok(View {
            sub,
            topic,
            start,
            max: bounds.max,
            deadline,
        }))
    }

    /// Where this client's next message starts, given the cursor: past what
    /// it was sent while that is still pending; from the committed offset
    /// when nothing is pending (a seek, or an acknowledgement of everything)
    /// or the pending messages' deadline passed (they are handed out again,
    /// as a pull would).
    fn resume_at(&self, view: &View, now_ns: i64) -> u64 {
        let pending_until = view.sub.cursor.next_offset;
        let expired = view.deadline.is_some_and(|d| now_ns >= d);
        if pending_until <= view.start || expired {
            view.start
        } else {
            self.sent().min(pending_until).max(view.start)
        }
    }

    /// Hands out what the window allows: reads, records the delivery on the
    /// cursor (a pull of everything pending, so deadlines and redelivery are
    /// the pull's), and acknowledges at once with `autoAck`. Not
    /// cancellation-safe: run it to completion once [`Self::ready`] returns.
    pub async fn next(&mut self) -> Result<Next> {
        let ams = self.ams.clone();
        for _ in 0..8 {
            let view = match self.view().await? {
                Ok(v) => v,
                Err(gone) => return Ok(Next::End(gone)),
            };
            let sub = ams
                .retire_exhausted_head(&self.ctx, view.sub.clone(), &view.topic)
                .await?;
            if sub.cursor.offset != view.sub.cursor.offset {
                continue;
            }
            let from = self.resume_at(&view, ams.now().nanos());
            let limit = view.start.saturating_add(self.options.window).min(view.max);
            if from >= limit {
                self.set_sent(from);
                return Ok(Next::Idle);
            }
            let wanted = usize::try_from(limit - from).unwrap_or(usize::MAX);
            let messages = ams
                .log()
                .read(
                    &view.topic.log_ref(),
                    from,
                    wanted,
                    ams.settings().max_pull_bytes,
                )
                .await?;
            let Some(last) = messages.last().map(|m| m.offset) else {
                continue; // retention ran between the bounds and the read
            };
            // Marked before the delivery is recorded: an acknowledgement that
            // sees the recorded delivery must see this too, or it would drop
            // what this stream is about to send from the pending range (and
            // the client's acknowledgement of it would be refused). The mark
            // counts only up to the cursor's pending range, so an unrecorded
            // delivery does no harm.
            self.set_sent(last + 1);
            // The pull's bookkeeping covers everything pending from the
            // committed offset; only the new tail is sent (and counted).
            let expected = view.sub.cursor.offset;
            if !ams
                .record_delivery(&self.ctx, &sub, expected, view.start..last + 1, &messages)
                .await?
            {
                continue;
            }
            if self.options.auto_ack {
                let (deadline, now) = (sub.ack_deadline, ams.now().secs());
                ams.meta()
                    .update_cursor(sub.project, &sub.name, WriteDurability::Tier, &mut |c| {
                        c.acknowledge(last, deadline, now)
                    })
                    .await?
                    .map_err(|_| Error::SubscriptionNotFound)?
                    .ok();
            }
            return Ok(Next::Messages(
                messages
                    .into_iter()
                    .map(|m| crate::messages::received(&self.prefix, m))
                    .collect(),
            ));
        }
        Ok(Next::Idle)
    }

    /// Waits until [`Self::next`] may have something to do: a publish past
    /// what was sent, a moved cursor, the ack deadline, or the recheck period.
    /// Cancellation-safe.
    pub async fn ready(&self) -> Result<()> {
        let moved = self.watch.notify.notified();
        tokio::pin!(moved);
        moved.as_mut().enable();
        let view = match self.view().await? {
            Ok(v) => v,
            Err(_) => return Ok(()),
        };
        let now = self.ams.now();
        let from = self.resume_at(&view, now.nanos());
        let window_full = from >= view.start.saturating_add(self.options.window);
        if !window_full && from < view.max {
            return Ok(());
        }
        let log = view.topic.log_ref();
        let published = async {
            if window_full {
                std::future::pending::<()>().await;
            }
            let _ = self.ams.log().wait_beyond(&log, from, RECHECK).await;
        };
        let deadline = async {
            match view.deadline {
                Some(d) => self.ams.clock().sleep_until(Timestamp::from_nanos(d)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = moved => {}
            () = published => {}
            () = deadline => {}
            () = tokio::time::sleep(RECHECK) => {}
        }
        Ok(())
    }

    /// An acknowledgement sent over the stream: the `:acknowledge` rules.
    pub async fn acknowledge(
        &self,
        body: std::result::Result<wire::Acknowledge, ams_types::json::DecodeError>,
    ) -> Result<()> {
        self.ams.acknowledge(&self.ctx, &self.name, body).await
    }
}

/// A topic's messages from a start position on, following new publishes.
pub struct TopicStream {
    ams: Ams,
    topic: Topic,
    log: LogRef,
    position: u64,
    remaining: Option<u64>,
}

impl TopicStream {
    /// The next messages, waiting for a publish when there are none; `None`
    /// when `max` messages were sent or the topic was deleted.
    /// Cancellation-safe (nothing is recorded).
    pub async fn next(&mut self) -> Result<Option<Vec<wire::Message>>> {
        loop {
            if self.remaining == Some(0) {
                return Ok(None);
            }
            let current = self
                .ams
                .meta()
                .topic(self.topic.project, &self.topic.name)
                .await?;
            if current.is_none_or(|t| t.log_id != self.topic.log_id) {
                return Ok(None);
            }
            let bounds = self.ams.log().bounds(&self.log).await?;
            self.position = self.position.max(bounds.min);
            if self.position >= bounds.max {
                self.ams
                    .log()
                    .wait_beyond(&self.log, self.position, RECHECK)
                    .await?;
                continue;
            }
            let batch = self
                .remaining
                .map_or(TAIL_BATCH, |r| usize::try_from(r).unwrap_or(TAIL_BATCH))
                .min(TAIL_BATCH);
            let messages: Vec<StoredMessage> = self
                .ams
                .log()
                .read(
                    &self.log,
                    self.position,
                    batch,
                    self.ams.settings().max_pull_bytes,
                )
                .await?;
            let Some(last) = messages.last().map(|m| m.offset) else {
                continue;
            };
            self.position = last + 1;
            if let Some(r) = &mut self.remaining {
                *r = r.saturating_sub(messages.len() as u64);
            }
            return Ok(Some(
                messages
                    .into_iter()
                    .map(|m| crate::messages::received("", m).message)
                    .collect(),
            ));
        }
    }
}
