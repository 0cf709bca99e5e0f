//! The records the domain keeps: projects, topics, subscriptions and their
//! cursors. Plain data; the rules that change them live in the resource modules
//! ([`crate::projects`], [`crate::topics`], [`crate::subscriptions`]) and, for the
//! cursor, in [`Cursor`]'s own methods so that they can be tested without I/O.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use ams_types::Timestamp;

/// Default ack deadline of a subscription (seconds), also used when a create asks for 0.
pub const DEFAULT_ACK_DEADLINE: i64 = 10;

/// A project: the tenant that owns topics and subscriptions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// Internal identity; stays the same across renames, never exposed on the wire.
    pub uuid: Uuid,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Creation time.
    pub created_on: Timestamp,
    /// Last change.
    pub modified_on: Timestamp,
    /// UUID of the user who created it; `None` for the service token.
    pub created_by: Option<Uuid>,
}

/// A topic and the log that holds its messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    /// Owning project.
    pub project: Uuid,
    /// Name, unique in the project.
    pub name: String,
    /// The message log of this incarnation of the topic.
    pub log_id: Uuid,
    /// Creation time.
    pub created_on: Timestamp,
    /// Creation sequence number, assigned by the store: the pagination cursor.
    pub seq: u64,
    /// UUIDs of the users allowed to publish when they hold `publisher` (in order).
    #[serde(default)]
    pub acl: Vec<Uuid>,
    /// The attached schema (by identity, so a renamed schema stays attached).
    #[serde(default)]
    pub schema: Option<Uuid>,
    /// What has been published to this incarnation (contract §9).
    #[serde(default)]
    pub published: Tally,
}

/// Cumulative message and byte counts of a stream of events (publishes to a
/// topic, pulls from a subscription) with the two latest event times, from
/// which the rate of contract §9 follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Messages, cumulative.
    pub messages: u64,
    /// Bytes of `data` strings, cumulative.
    pub bytes: u64,
    /// When the latest event happened (ns since the epoch); 0: never.
    pub latest_ns: i64,
    /// Messages of the latest event.
    pub latest_count: u64,
    /// When the event before it happened; 0: there was none.
    pub previous_ns: i64,
}

impl Tally {
    /// Counts one event of `count` messages and `bytes` bytes at `at_ns`.
    pub fn record(&mut self, count: u64, bytes: u64, at_ns: i64) {
        self.messages = self.messages.saturating_add(count);
        self.bytes = self.bytes.saturating_add(bytes);
        self.previous_ns = self.latest_ns;
        self.latest_ns = at_ns;
        self.latest_count = count;
    }

    /// Messages per second between the last two events: the latest event's
    /// count over the seconds since the one before (1 s for the first), 0
    /// before any event.
    pub fn rate(&self) -> f64 {
        if self.latest_ns == 0 {
            return 0.0;
        }
        let seconds = if self.previous_ns == 0 {
            1.0
        } else {
            // Two events in the same instant would divide by zero (the original
            // then failed to render the metric); a nanosecond apart is as close
            // as two real events get.
            ((self.latest_ns - self.previous_ns) as f64 / 1e9).max(1e-9)
        };
        self.latest_count as f64 / seconds
    }

    /// Adds the counts of `later`, a tally of events recorded after this one's
    /// (and seeded with this one's latest time), taking its latest events.
    pub fn absorb(&mut self, later: &Tally) {
        self.messages = self.messages.saturating_add(later.messages);
        self.bytes = self.bytes.saturating_add(later.bytes);
        if later.latest_ns > self.latest_ns {
            self.latest_ns = later.latest_ns;
            self.latest_count = later.latest_count;
            self.previous_ns = later.previous_ns;
        }
    }

    /// An empty tally whose next event follows this one's latest (for counting
    /// new events apart and [`Tally::absorb`]ing them later).
    pub fn continuation(&self) -> Tally {
        Tally {
            latest_ns: self.latest_ns,
            ..Tally::default()
        }
    }
}

/// A schema's language (contract §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemaKind {
    /// JSON Schema (drafts 4, 6, 7).
    Json,
    /// Apache Avro.
    Avro,
}

impl SchemaKind {
    /// From the wire's `type`, any case.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Some(Self::Json),
            "avro" => Some(Self::Avro),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Avro => "avro",
        }
    }
}

/// A schema of a project, which topics may attach to validate publishes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    /// Identity (v4), shown on the wire.
    pub uuid: Uuid,
    /// Owning project.
    pub project: Uuid,
    /// Name, unique in the project.
    pub name: String,
    /// Language.
    pub kind: SchemaKind,
    /// The schema document as JSON text, keys sorted at every level.
    pub body: String,
    /// Creation sequence number, assigned by the store (listing order).
    pub seq: u64,
}

/// A subscription: a cursor over one topic's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// Owning project.
    pub project: Uuid,
    /// Name, unique in the project.
    pub name: String,
    /// Name of the topic (in the same project) it reads. The topic may have been
    /// deleted, or deleted and re-created, since.
    pub topic: String,
    /// Seconds a pull's messages may stay unacknowledged. Stored as given on create
    /// (the original does not range-check it there); `:modifyAckDeadline` keeps it in 0..=600.
    pub ack_deadline: i64,
    /// Creation time.
    pub created_on: Timestamp,
    /// Creation sequence number, assigned by the store: the pagination cursor.
    pub seq: u64,
    /// Where the subscription stands in its topic's log.
    pub cursor: Cursor,
    /// UUIDs of the users allowed to consume when they hold `consumer` (in order).
    #[serde(default)]
    pub acl: Vec<Uuid>,
    /// Push settings; `None` for a pull subscription.
    #[serde(default)]
    pub push: Option<Push>,
    /// Extension: where messages go after too many failed deliveries.
    #[serde(default)]
    pub dead_letter: Option<DeadLetter>,
}

impl Subscription {
    /// Applies a settings change ([`crate::storage::MetadataStore::update_subscription`]):
    /// only `push`, `dead_letter` and `acl` are taken from it, whatever else
    /// it touched (the cursor, identity and topic have their own operations).
    /// Returns `false`, leaving `self` as it was, when `change` refused.
    pub fn apply_settings(&mut self, change: crate::storage::SubscriptionUpdate<'_>) -> bool {
        let mut draft = self.clone();
        if !change(&mut draft) {
            return false;
        }
        self.push = draft.push;
        self.dead_letter = draft.dead_letter;
        self.acl = draft.acl;
        true
    }

    /// Whether the pusher delivers it: a verified http endpoint or a mattermost
    /// webhook (contract §7.4-§7.5).
    pub fn push_active(&self) -> bool {
        self.push.as_ref().is_some_and(Push::active)
    }
}

/// How a push subscription delivers (contract §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushKind {
    /// `POST` to an https endpoint the owner verified.
    HttpEndpoint,
    /// `POST` of `{"text": …}` to a Mattermost incoming webhook.
    Mattermost,
}

impl PushKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HttpEndpoint => "http_endpoint",
            Self::Mattermost => "mattermost",
        }
    }
}

/// When a failed (or, for `linear`, any) delivery cycle is followed by the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum RetryPolicy {
    /// A fixed `period_ms` between cycles.
    Linear {
        /// Milliseconds.
        period_ms: u32,
    },
    /// 1 s at first, halved after a success (floor 300 ms), doubled after a
    /// failure (ceiling one day).
    Slowstart,
    /// Extension: no wait after a success; after the n-th consecutive failure
    /// `min * 2^(n-1)` capped at `max`, with jitter.
    Exponential {
        /// First back-off (ms).
        min_backoff_ms: u32,
        /// Longest back-off (ms).
        max_backoff_ms: u32,
    },
}

/// A subscription's push settings, as stored (contract §3.4 renders them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Push {
    /// Delivery kind.
    pub kind: PushKind,
    /// The http endpoint (empty for mattermost).
    pub endpoint: String,
    /// Messages per request (1 for mattermost).
    pub max_messages: i64,
    /// `autogen`, `disabled` or empty (as the original records it).
    pub authorization_type: String,
    /// The `Authorization` header value sent with each delivery (autogen only).
    pub authorization_value: String,
    /// Scheduling of delivery cycles.
    pub retry: RetryPolicy,
    /// What `GET /ams_verification_hash` must answer (http only).
    pub verification_hash: String,
    /// Whether the endpoint proved ownership (always true for mattermost).
    pub verified: bool,
    /// Mattermost webhook.
    pub mattermost_url: String,
    /// Mattermost user name (optional).
    pub mattermost_username: String,
    /// Mattermost channel (optional).
    pub mattermost_channel: String,
    /// Decode `data` from base64 before delivering it.
    pub base64_decode: bool,
}

impl Push {
    /// Whether the pusher delivers it.
    pub fn active(&self) -> bool {
        self.verified
    }
}

/// Extension: after `max_delivery_attempts` failed deliveries a message is
/// published to `topic` (same project) and acknowledged on its subscription.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Topic name in the subscription's project.
    pub topic: String,
    /// Failed deliveries before a message is dead-lettered (at least 1).
    pub max_delivery_attempts: u32,
}

/// A user: service-wide, with per-project memberships.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Identity (v4), stable across renames.
    pub uuid: Uuid,
    /// Unique name.
    pub name: String,
    /// Secret: 64 lowercase hex characters.
    pub token: String,
    /// Contact address (not validated, as in the original).
    pub email: String,
    /// Profile field.
    pub first_name: String,
    /// Profile field.
    pub last_name: String,
    /// Profile field.
    pub organization: String,
    /// Profile field.
    pub description: String,
    /// Roles valid in every project.
    pub service_roles: Vec<String>,
    /// Project memberships, in the order they were granted.
    pub projects: Vec<Membership>,
    /// Creation time.
    pub created_on: Timestamp,
    /// Last change.
    pub modified_on: Timestamp,
    /// UUID of the user who created it; `None` for the service token.
    pub created_by: Option<Uuid>,
    /// Creation sequence number, assigned by the store: the pagination cursor.
    pub seq: u64,
}

impl User {
    /// A new user with empty profile fields, no roles and no memberships.
    pub fn new(name: &str, token: String, now: Timestamp, created_by: Option<Uuid>) -> Self {
        Self {
            uuid: Uuid::new_v4(),
            name: name.to_owned(),
            token,
            email: String::new(),
            first_name: String::new(),
            last_name: String::new(),
            organization: String::new(),
            description: String::new(),
            service_roles: Vec::new(),
            projects: Vec::new(),
            created_on: now,
            modified_on: now,
            created_by,
            seq: 0,
        }
    }

    /// The membership in `project`, if any.
    pub fn membership(&self, project: Uuid) -> Option<&Membership> {
        self.projects.iter().find(|m| m.project == project)
    }
}

/// A user's roles in one project.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The project's UUID.
    pub project: Uuid,
    /// Project roles (`project_admin`, `publisher`, `consumer`, ...).
    pub roles: Vec<String>,
}

/// Where a registration stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationStatus {
    /// Waiting for an admin.
    Pending,
    /// Accepted: a user was created from it.
    Accepted,
    /// Declined by an admin.
    Declined,
}

impl RegistrationStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Declined => "declined",
        }
    }
}

/// A request for an account (contract §5.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// Identity (v4).
    pub uuid: Uuid,
    /// Requested user name.
    pub name: String,
    /// Profile field.
    pub first_name: String,
    /// Profile field.
    pub last_name: String,
    /// Profile field.
    pub organization: String,
    /// Profile field.
    pub description: String,
    /// Contact address.
    pub email: String,
    /// Where it stands.
    pub status: RegistrationStatus,
    /// Why it was declined.
    pub decline_comment: String,
    /// 64 hex characters while pending; cleared once handled.
    pub activation_token: String,
    /// Submission time.
    pub registered_at: Timestamp,
    /// The admin who accepted or declined it.
    pub modified_by: Option<Uuid>,
    /// When it was accepted or declined.
    pub modified_at: Option<Timestamp>,
    /// Creation sequence number, assigned by the store.
    pub seq: u64,
}

/// A node's latest operational sample (`GET /v1/metrics`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeSample {
    /// The node's host name.
    pub host: String,
    /// CPU time over wall time since the process started, in percent (as `ps %cpu`).
    pub cpu_percent: f64,
    /// Resident memory over the machine's memory, in percent (as `ps %mem`).
    pub memory_percent: f64,
}

/// A subscription's position, with the pending-ack bookkeeping of AMS (contract §6.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Committed position: the next message to deliver; everything below is acknowledged.
    pub offset: u64,
    /// One past the last message returned by the latest pull; `0` means "nothing pending".
    pub next_offset: u64,
    /// Second (Unix time) of the latest pull; `None` when nothing is pending.
    pub pending_since: Option<i64>,
    /// How many pulls returned the message at `offset` since it became the
    /// committed position: its delivery attempts, for dead-lettering.
    #[serde(default)]
    pub deliveries: u32,
    /// What pulls have handed out, redeliveries included (contract §9). Kept
    /// on the cursor so that a pull records it in the write it makes anyway.
    #[serde(default)]
    pub consumed: Tally,
}

/// Why a cursor change was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CursorRefusal {
    /// No pull is waiting for an acknowledgement.
    #[error("no ack pending")]
    NoAckPending,
    /// The id is already acknowledged or beyond the latest pull.
    #[error("wrong ack")]
    WrongAck,
    /// The latest pull's ack deadline has passed.
    #[error("ack timeout")]
    AckTimeout,
    /// The committed offset moved since the caller read it (a concurrent ack or
    /// seek); the caller should read again.
    #[error("cursor moved")]
    Moved,
}

impl Cursor {
    /// A cursor that starts at `offset` with nothing pending.
    pub fn at(offset: u64) -> Self {
        Self {
            offset,
            next_offset: 0,
            pending_since: None,
            deliveries: 0,
            consumed: Tally::default(),
        }
    }

    /// The cursor at `offset` with nothing pending, keeping the consumption tally.
    fn restart_at(&mut self, offset: u64) {
        *self = Cursor {
            consumed: self.consumed,
            ..Cursor::at(offset)
        };
    }

    /// Records a pull at `now_secs` that returned the offsets `start..end`
    /// (`start == end` for an empty pull). `start` is the first message returned,
    /// at or above the committed offset (raised past expired or missing
    /// messages). Refuses with [`CursorRefusal::Moved`] if the committed offset is
    /// no longer `expected_offset`, so that a pull racing an ack re-reads.
    pub fn record_pull(
        &mut self,
        expected_offset: u64,
        start: u64,
        end: u64,
        now_secs: i64,
    ) -> Result<(), CursorRefusal> {
        if self.offset != expected_offset {
            return Err(CursorRefusal::Moved);
        }
        if start < end {
            self.deliveries = if start == self.offset {
                self.deliveries.saturating_add(1)
            } else {
                1
            };
        }
        self.offset = start;
        self.next_offset = end;
        self.pending_since = Some(now_secs);
        Ok(())
    }

    /// Cumulative acknowledgement of every offset up to and including
    /// `highest_id`, with the checks of contract §6.4 step 6, in their order.
    pub fn acknowledge(
        &mut self,
        highest_id: u64,
        ack_deadline: i64,
        now_secs: i64,
    ) -> Result<(), CursorRefusal> {
        if self.next_offset == 0 {
            return Err(CursorRefusal::NoAckPending);
        }
        let n = highest_id.saturating_add(1);
        if n <= self.offset || n > self.next_offset {
            return Err(CursorRefusal::WrongAck);
        }
        let pulled_at = self.pending_since.unwrap_or(i64::MIN);
        if now_secs.saturating_sub(pulled_at) > ack_deadline {
            return Err(CursorRefusal::AckTimeout);
        }
        self.restart_at(n);
        Ok(())
    }

    /// Moves the committed offset (`:modifyOffset`), dropping whatever was pending.
    pub fn seek(&mut self, offset: u64) {
        self.restart_at(offset);
    }

    /// Raises the committed offset to `min` when messages below it expired,
    /// dropping whatever was pending. Returns whether anything changed.
    pub fn catch_up(&mut self, min: u64) -> bool {
        if self.offset < min {
            self.seek(min);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_changes_take_only_push_dead_letter_and_acl() {
        let sub = Subscription {
            project: Uuid::new_v4(),
            name: "s".into(),
            topic: "t".into(),
            ack_deadline: 10,
            created_on: Timestamp::from_secs(1),
            seq: 7,
            cursor: Cursor::at(3),
            acl: Vec::new(),
            push: None,
            dead_letter: None,
        };
        let user = Uuid::new_v4();
        let mut changed = sub.clone();
        assert!(changed.apply_settings(&mut |s| {
            s.acl = vec![user];
            s.name = "other".into();
            s.topic = "other".into();
            s.ack_deadline = 99;
            s.seq = 1;
            s.cursor = Cursor::at(99);
            true
        }));
        assert_eq!(changed.acl, [user]);
        assert_eq!(
            Subscription {
                acl: Vec::new(),
                ..changed.clone()
            },
            sub,
            "nothing else moved"
        );
        // A refused change leaves everything as it was.
        assert!(!changed.apply_settings(&mut |s| {
            s.acl.clear();
            false
        }));
        assert_eq!(changed.acl, [user]);
    }

    #[test]
    fn deliveries_count_pulls_of_the_head_until_it_moves() {
        let mut c = Cursor::at(3);
        c.record_pull(3, 3, 3, 100).unwrap();
        assert_eq!(c.deliveries, 0, "an empty pull delivers nothing");
        c.record_pull(3, 3, 5, 100).unwrap();
        c.record_pull(3, 3, 4, 120).unwrap();
        assert_eq!(c.deliveries, 2);
        c.acknowledge(3, 10, 120).unwrap();
        assert_eq!((c.offset, c.deliveries), (4, 0));
        // Raised past expired messages: a new head, first delivery.
        c.record_pull(4, 9, 10, 130).unwrap();
        assert_eq!((c.offset, c.deliveries), (9, 1));
        c.seek(2);
        assert_eq!(c.deliveries, 0);
    }

    #[test]
    fn ack_of_a_pull_that_returned_nothing_at_zero_is_no_ack_pending() {
        let mut c = Cursor::at(0);
        c.record_pull(0, 0, 0, 100).unwrap();
        assert_eq!(c.acknowledge(0, 10, 100), Err(CursorRefusal::NoAckPending));
    }

    #[test]
    fn ack_of_an_empty_pull_past_zero_is_wrong_ack() {
        let mut c = Cursor::at(5);
        c.record_pull(5, 5, 5, 100).unwrap();
        assert_eq!(c.acknowledge(5, 10, 100), Err(CursorRefusal::WrongAck));
        assert_eq!(c.acknowledge(4, 10, 100), Err(CursorRefusal::WrongAck));
    }

    #[test]
    fn deadline_is_inclusive_in_whole_seconds() {
        let mut c = Cursor::at(0);
        c.record_pull(0, 0, 3, 100).unwrap();
        let before = c;
        assert_eq!(c.acknowledge(2, 10, 111), Err(CursorRefusal::AckTimeout));
        assert_eq!(c, before, "an expired ack changes nothing");
        c.acknowledge(2, 10, 110).unwrap();
        assert_eq!(c, Cursor::at(3));
    }

    #[test]
    fn ack_is_cumulative_and_may_be_lower_than_the_pull() {
        let mut c = Cursor::at(10);
        c.record_pull(10, 10, 15, 0).unwrap();
        c.acknowledge(11, 10, 0).unwrap();
        assert_eq!(c, Cursor::at(12));
        assert_eq!(c.acknowledge(11, 10, 0), Err(CursorRefusal::NoAckPending));
    }

    #[test]
    fn a_pull_that_skipped_missing_offsets_acknowledges_what_it_returned() {
        let mut c = Cursor::at(3);
        c.record_pull(3, 5, 7, 0).unwrap();
        assert_eq!(c.acknowledge(4, 10, 0), Err(CursorRefusal::WrongAck));
        c.acknowledge(6, 10, 0).unwrap();
        assert_eq!(c, Cursor::at(7));
    }

    #[test]
    fn a_pull_racing_an_ack_is_told_to_reread() {
        let mut c = Cursor::at(3);
        assert_eq!(c.record_pull(2, 2, 3, 0), Err(CursorRefusal::Moved));
    }

    #[test]
    fn catch_up_only_moves_forward() {
        let mut c = Cursor::at(5);
        c.record_pull(5, 5, 7, 0).unwrap();
        assert!(!c.catch_up(3));
        assert!(c.catch_up(6));
        assert_eq!(c, Cursor::at(6));
    }
}
