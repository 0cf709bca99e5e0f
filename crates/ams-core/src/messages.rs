//! The message flow (contract §6): publish, pull, acknowledge, offsets, seeks.
//!
//! Ids are log offsets assigned by the [`crate::MessageLog`] atomically. A pull
//! reads from the committed offset and never moves it; only an acknowledgement
//! or a seek does. Cursor changes go through [`crate::MetadataStore::update_cursor`]
//! with the pure rules of [`Cursor`], so concurrent pulls and acks on one
//! subscription resolve as if serialized, on one node or many.

use ams_types::json::DecodeError;
use ams_types::{Timestamp, wire};

use crate::Ams;
use crate::auth::{Context, Role};
use crate::error::{Body, Error, Result};
use crate::model::{Cursor, CursorRefusal, Subscription, Topic};
use crate::storage::{LogBounds, NewMessage, StoredMessage, WriteDurability};

/// Bytes a message costs beyond its data and attributes when the original
/// serializes it for the broker (`messageId`, `publishTime`, JSON punctuation).
const MESSAGE_OVERHEAD: usize = 96;

/// How often a pull retries when acknowledgements keep moving the cursor under it.
const PULL_ATTEMPTS: usize = 8;

impl Ams {
    /// `:publish`. Checks in the contract's order: topic, publisher ACL, body. Every message is
    /// size-checked before anything is written, so a 413 publishes nothing (the
    /// original kept the messages before the oversized one; we do not).
    pub async fn publish(
        &self,
        ctx: &Context,
        topic: &str,
        body: Result<wire::Publish, DecodeError>,
    ) -> Result<wire::PublishResponse> {
        let topic = self.topic(ctx, topic).await?;
        self.check_acl(ctx, Role::Publisher, &topic.acl)?;
        let body = body.map_err(|_| Error::InvalidBody(Body::Message))?;
        if body.messages.is_empty() {
            return Ok(wire::PublishResponse {
                message_ids: Vec::new(),
            });
        }
        self.check_against_topic_schema(&topic, body.messages.iter().map(|m| m.data.as_str()))
            .await?;
        let limit = self.settings().max_message_bytes;
        let mut batch = Vec::with_capacity(body.messages.len());
        for m in body.messages {
            let attributes: Vec<(String, String)> =
                m.attributes.unwrap_or_default().into_iter().collect();
            let size = m.data.len()
                + attributes
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 6)
                    .sum::<usize>()
                + MESSAGE_OVERHEAD;
            if size > limit {
                return Err(Error::MessageTooLarge);
            }
            batch.push(NewMessage {
                attributes,
                data: m.data,
            });
        }
        let count = batch.len() as u64;
        let bytes: u64 = batch.iter().map(|m| m.data.len() as u64).sum();
        let appended = match self
            .log()
            .append(&topic.log_ref(), batch, self.now().nanos())
            .await
        {
            Ok(appended) => appended,
            // A publish that raced its topic's deletion: the topic is gone.
            Err(_)
                if self
                    .meta()
                    .topic(topic.project, &topic.name)
                    .await?
                    .as_ref()
                    .is_none_or(|t| t.log_id != topic.log_id) =>
            {
                return Err(Error::TopicNotFound);
            }
            Err(e) => return Err(e.into()),
        };
        self.metrics()
            .published(&ctx.project().name, &topic.name, count, bytes);
        self.count_publish(
            &topic,
            count,
            bytes,
            Timestamp::from_nanos(appended.publish_time_ns),
        );
        Ok(wire::PublishResponse {
            message_ids: (appended.first_offset..appended.first_offset + count)
                .map(|o| o.to_string())
                .collect(),
        })
    }

    /// `:pull`. Checks: subscription, consumer ACL, its topic (409 if deleted), body. Reads from
    /// the committed offset (raised to the log's min if messages expired), then
    /// records the pull on the cursor. With `returnImmediately: "false"` and
    /// nothing to read, waits for a first message up to the long-poll limit.
    pub async fn pull(
        &self,
        ctx: &Context,
        name: &str,
        body: Result<wire::Pull, DecodeError>,
    ) -> Result<wire::PullResponse> {
        let sub = self.subscription(ctx, name).await?;
        self.check_push_pull(ctx, &sub)?;
        self.check_acl(ctx, Role::Consumer, &sub.acl)?;
        let topic = self
            .meta()
            .topic(sub.project, &sub.topic)
            .await?
            .ok_or(Error::SubscriptionTopicMissing)?;
        let body = body.map_err(|_| Error::InvalidBody(Body::PullParameters))?;
        let max_messages = body
            .max_messages
            .as_deref()
            .and_then(|s| s.parse::<i64>().ok())
            .map_or(1, |n| usize::try_from(n).unwrap_or(1).max(1));
        let long_poll = body.return_immediately.as_deref() == Some("false");
        let sub = self.retire_exhausted_head(ctx, sub, &topic).await?;
        let log = topic.log_ref();
        let mut expected = sub.cursor.offset;
        for _ in 0..PULL_ATTEMPTS {
            let mut bounds = self.log().bounds(&log).await?;
            let start = expected.max(bounds.min);
            if long_poll && start >= bounds.max {
                bounds = self
                    .log()
                    .wait_beyond(&log, start, self.settings().long_poll_max)
                    .await?;
            }
            let messages = if start < bounds.max {
                self.log()
                    .read(&log, start, max_messages, self.settings().max_pull_bytes)
                    .await?
            } else {
                Vec::new()
            };
            // The log may have started later than `start` (retention ran since
            // the bounds were read, or offsets are missing): record what it returned.
            let first = messages.first().map_or(start, |m| m.offset);
            let end = messages.last().map_or(start, |m| m.offset + 1);
            if self
                .record_delivery(ctx, &sub, expected, first..end, &messages)
                .await?
            {
                let prefix = format!("projects/{}/subscriptions/{}", ctx.project().name, name);
                return Ok(wire::PullResponse {
                    received_messages: messages.into_iter().map(|m| received(&prefix, m)).collect(),
                });
            }
            // An ack or seek moved the cursor while we read: read again from
            // where it is now.
            expected = self.subscription(ctx, name).await?.cursor.offset;
        }
        Err(Error::Backend(crate::storage::StoreError::new(
            "pull",
            "the cursor kept moving under concurrent acknowledgements",
        )))
    }

    /// Records that `messages` were handed out: the pull bookkeeping of the
    /// cursor (`pending` becomes the range awaiting acknowledgement, and the
    /// head's delivery count grows if the head was among them), the
    /// consumption tally and the Prometheus counters. `false` when an ack or
    /// seek moved the committed offset away from `expected` meanwhile (the
    /// caller reads again).
    pub(crate) async fn record_delivery(
        &self,
        ctx: &Context,
        sub: &Subscription,
        expected: u64,
        pending: std::ops::Range<u64>,
        messages: &[StoredMessage],
    ) -> Result<bool> {
        let now = self.now();
        let bytes: u64 = messages.iter().map(|m| m.data.len() as u64).sum();
        let head_sent = messages.first().is_some_and(|m| m.offset == pending.start);
        let outcome = self
            .meta()
            .update_cursor(sub.project, &sub.name, WriteDurability::Relaxed, &mut |c| {
                let deliveries = c.deliveries;
                c.record_pull(expected, pending.start, pending.end, now.secs())?;
                if !head_sent {
                    c.deliveries = deliveries;
                }
                c.consumed.record(messages.len() as u64, bytes, now.nanos());
                Ok(())
            })
            .await?
            .map_err(|_| Error::SubscriptionNotFound)?;
        // `record_pull` refuses for no other reason than a moved cursor.
        if outcome.is_err() {
            return Ok(false);
        }
        self.metrics()
            .consumed(&ctx.project().name, &sub.name, messages.len() as u64, bytes);
        Ok(true)
    }

    /// `:acknowledge`: cumulative on the highest id (contract §6.4).
    pub async fn acknowledge(
        &self,
        ctx: &Context,
        name: &str,
        body: Result<wire::Acknowledge, DecodeError>,
    ) -> Result<()> {
        let body = body.map_err(|_| Error::InvalidAckParameter)?;
        let sub = self.subscription(ctx, name).await?;
        let ids = body.ack_ids.ok_or(Error::InvalidAckId)?;
        let project = &ctx.project().name;
        let mut highest: Option<u64> = None;
        for id in &ids {
            let offset = parse_ack_id(id, project, name).ok_or(Error::InvalidAckId)?;
            if let Ok(offset) = u64::try_from(offset) {
                highest = Some(highest.map_or(offset, |h| h.max(offset)));
            }
        }
        let highest = highest.ok_or(Error::InvalidAckId)?;
        let deadline = sub.ack_deadline;
        let now = self.now().secs();
        self.meta()
            .update_cursor(sub.project, &sub.name, WriteDurability::Tier, &mut |c| {
                let pending = (c.next_offset, c.pending_since);
                c.acknowledge(highest, deadline, now)?;
                // What an open stream sent past the acknowledged id stays
                // pending (same deadline), instead of coming again. Read
                // here, with the cursor: a stream marks what it sends before
                // it records the delivery, so a cursor that shows a delivery
                // comes with the stream's mark of it.
                let streamed = self.streamed_until(sub.project, &sub.name);
                if let Some(until) = streamed.map(|u| u.min(pending.0))
                    && until > c.offset
                {
                    c.next_offset = until;
                    c.pending_since = pending.1;
                    c.deliveries = 1;
                }
                Ok(())
            })
            .await?
            .map_err(|_| Error::SubscriptionNotFound)?
            .map_err(|refusal| match refusal {
                CursorRefusal::NoAckPending => Error::NoAckPending,
                CursorRefusal::AckTimeout => Error::AckTimeout,
                CursorRefusal::WrongAck | CursorRefusal::Moved => Error::WrongAck,
            })?;
        self.cursor_moved(sub.project, &sub.name);
        Ok(())
    }

    /// `:offsets`: the topic's bounds and the committed offset, catching the
    /// cursor up to `min` (persisted, pending ack dropped) if messages expired.
    pub async fn offsets(&self, ctx: &Context, name: &str) -> Result<wire::Offsets> {
        let sub = self.subscription(ctx, name).await?;
        let bounds = self.bounds_of(&sub).await?;
        let mut current = sub.cursor.offset;
        if current < bounds.min {
            let cursor = self
                .meta()
                .update_cursor(sub.project, &sub.name, WriteDurability::Tier, &mut |c| {
                    c.catch_up(bounds.min);
                    Ok(())
                })
                .await?
                .map_err(|_| Error::SubscriptionNotFound)?;
            current = cursor.map_or(bounds.min, |c: Cursor| c.offset);
        }
        Ok(wire::Offsets {
            max: clamp(bounds.max),
            min: clamp(bounds.min),
            current: clamp(current),
        })
    }

    /// `:modifyOffset`: body, subscription, then `[min, max]` (inclusive). A
    /// refused offset changes nothing (the original applied it anyway).
    pub async fn modify_offset(
        &self,
        ctx: &Context,
        name: &str,
        body: Result<wire::ModifyOffset, DecodeError>,
    ) -> Result<()> {
        let body = body.map_err(|_| Error::InvalidBody(Body::Offset))?;
        let sub = self.subscription(ctx, name).await?;
        let bounds = self.bounds_of(&sub).await?;
        let offset = u64::try_from(body.offset)
            .ok()
            .filter(|o| (bounds.min..=bounds.max).contains(o))
            .ok_or(Error::OffsetOutOfBounds)?;
        self.meta()
            .update_cursor(sub.project, &sub.name, WriteDurability::Tier, &mut |c| {
                c.seek(offset);
                Ok(())
            })
            .await?
            .map_err(|_| Error::SubscriptionNotFound)?
            .map_err(|_| Error::OffsetOutOfBounds)?;
        self.cursor_moved(sub.project, &sub.name);
        Ok(())
    }

    /// `:timeToOffset?time=…`: the first offset published at or after `time`.
    pub async fn time_to_offset(
        &self,
        ctx: &Context,
        name: &str,
        time: Option<&str>,
    ) -> Result<wire::TimeToOffset> {
        let sub = self.subscription(ctx, name).await?;
        let millis = time
            .and_then(ams_types::time::parse_zulu_millis)
            .ok_or(Error::InvalidZuluTime)?;
        let offset = match self.topic_of(&sub).await? {
            Some(topic) => self.log().offset_at_time(&topic.log_ref(), millis).await?,
            None => None,
        };
        let offset = offset.ok_or(Error::TimestampOutOfBounds)?;
        Ok(wire::TimeToOffset {
            offset: clamp(offset),
        })
    }

    async fn topic_of(&self, sub: &Subscription) -> Result<Option<Topic>> {
        Ok(self.meta().topic(sub.project, &sub.topic).await?)
    }

    /// Bounds of the subscription's topic; a deleted topic reads as empty.
    async fn bounds_of(&self, sub: &Subscription) -> Result<LogBounds> {
        Ok(match self.topic_of(sub).await? {
            Some(topic) => self.log().bounds(&topic.log_ref()).await?,
            None => LogBounds::default(),
        })
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Parses `projects/{project}/subscriptions/{subscription}:{integer}`, which must
/// name the URL's project and subscription. The integer may be negative (Go's
/// `Atoi`); callers ignore negative ids.
fn parse_ack_id(id: &str, project: &str, subscription: &str) -> Option<i64> {
    let parts: Vec<&str> = id.split('/').collect();
    let [literal_p, p, literal_s, last] = parts.as_slice() else {
        return None;
    };
    let (s, offset) = last.split_once(':')?;
    if *literal_p != "projects"
        || *literal_s != "subscriptions"
        || *p != project
        || s != subscription
        || offset.contains(':')
    {
        return None;
    }
    offset.parse().ok()
}

pub(crate) fn received(prefix: &str, m: StoredMessage) -> wire::ReceivedMessage {
    wire::ReceivedMessage {
        ack_id: format!("{prefix}:{}", m.offset),
        message: wire::Message {
            message_id: m.offset.to_string(),
            attributes: m.attributes.into_iter().collect(),
            data: m.data,
            publish_time: Timestamp::from_nanos(m.publish_time_ns).to_rfc3339_nanos(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_ids() {
        assert_eq!(
            parse_ack_id("projects/P/subscriptions/s:3", "P", "s"),
            Some(3)
        );
        assert_eq!(
            parse_ack_id("projects/P/subscriptions/s:-1", "P", "s"),
            Some(-1)
        );
        assert_eq!(
            parse_ack_id("projects/P/subscriptions/s:+4", "P", "s"),
            Some(4)
        );
        for bad in [
            "projects/Q/subscriptions/s:3",
            "projects/P/subscriptions/t:3",
            "/projects/P/subscriptions/s:3",
            "projects/P/subscriptions/s:3:4",
            "projects/P/subscriptions/s",
            "projects/P/subscriptions/s:x",
            "projects/P/subscriptions/s:",
            "projects/P/subs/s:3",
            "",
            "projects/P/subscriptions/s:99999999999999999999",
        ] {
            assert_eq!(parse_ack_id(bad, "P", "s"), None, "{bad}");
        }
    }
}
