//! The storage boundary: what the domain needs from a backend.
//!
//! Two traits, as in the original (Kafka for messages, MongoDB for the rest):
//! [`MessageLog`] holds every topic's append-only message log, and
//! [`MetadataStore`] holds projects, topics, subscriptions and cursors. Nothing
//! outside a backend crate may assume that state lives in this process, so the
//! same domain code runs over the embedded store and, later, Kafka + PostgreSQL.
//! Each backend must pass [`crate::conformance`].

use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use crate::model::{
    Cursor, CursorRefusal, NodeSample, Project, Registration, Schema, Subscription, Tally, Topic,
    User,
};

/// An error a backend reports. The domain maps every one of them to a 500
/// `Backend Error`/`Internal error while querying datastore`; users never cause these.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct StoreError {
    /// What the backend was doing.
    pub context: String,
    /// The underlying cause (I/O, corruption, engine error).
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl StoreError {
    /// Wraps a cause with a short description of the operation that failed.
    pub fn new(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            context: context.into(),
            source: source.into(),
        }
    }
}

/// Result type of storage operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Names one topic's log. The embedded log keys its files by `id`; a Kafka log
/// derives its topic name from `project` and `topic` as the original does
/// (see [`LogNaming`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LogRef {
    /// Unique per topic incarnation: re-creating a deleted topic gets a new id and
    /// therefore a fresh log starting at offset 0.
    pub id: Uuid,
    /// The owning project's UUID (stable across project renames).
    pub project: Uuid,
    /// The topic's name within the project.
    pub topic: String,
}

/// What identifies a log in a backend, and so what [`MessageLog::list`] can
/// report of the logs it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogNaming {
    /// By [`LogRef::id`]: every topic incarnation has its own log.
    ById,
    /// By [`LogRef::project`] and [`LogRef::topic`] (Kafka topics named
    /// `<projectUUID>.<topic>`, the original's layout); listed logs carry a nil id.
    ByTopic,
}

/// The identity of a log under a [`LogNaming`], for comparing listed logs
/// with the topics that exist.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LogKey {
    /// See [`LogNaming::ById`].
    Id(Uuid),
    /// See [`LogNaming::ByTopic`].
    Topic(Uuid, String),
}

impl LogRef {
    /// This log's identity under `naming`.
    pub fn key(&self, naming: LogNaming) -> LogKey {
        match naming {
            LogNaming::ById => LogKey::Id(self.id),
            LogNaming::ByTopic => LogKey::Topic(self.project, self.topic.clone()),
        }
    }
}

/// One message handed to [`MessageLog::append`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMessage {
    /// Attributes, sorted by key (the wire renders them sorted).
    pub attributes: Vec<(String, String)>,
    /// The `data` string exactly as the publisher sent it (opaque, usually base64).
    pub data: String,
}

/// A message read back from a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    /// The message's offset in its topic log (= its messageId).
    pub offset: u64,
    /// Publish time, nanoseconds since the Unix epoch, UTC.
    pub publish_time_ns: i64,
    /// Attributes, sorted by key.
    pub attributes: Vec<(String, String)>,
    /// The `data` string as published.
    pub data: String,
}

/// Where a log starts and ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LogBounds {
    /// Oldest retained offset.
    pub min: u64,
    /// One past the newest offset: the next offset to be written.
    pub max: u64,
}

/// What [`MessageLog::append`] assigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// Offset of the first message of the batch; the others follow densely.
    pub first_offset: u64,
    /// Publish time recorded for the batch (never earlier than the previous batch's).
    pub publish_time_ns: i64,
}

/// Append-only, per-topic message logs with dense offsets starting at 0.
///
/// A log that was never appended to (or that does not exist) is empty with
/// bounds `0..0`. The domain calls [`MessageLog::create`] once a topic's record
/// exists and before the topic is reported created; appends to a log that was
/// deleted fail, so a publish racing a topic's deletion cannot bring it back.
#[async_trait]
pub trait MessageLog: Send + Sync + 'static {
    /// How this backend identifies logs (what [`MessageLog::list`] reports).
    fn naming(&self) -> LogNaming;

    /// Makes an empty log ready for a new topic incarnation, called once per
    /// incarnation. A backend that names logs by topic discards what a
    /// previous incarnation of the same name left behind (a crash between
    /// deleting its record and its log).
    async fn create(&self, log: &LogRef) -> StoreResult<()>;

    /// Appends `messages` as one batch and answers once the batch is durable in
    /// the backend's configured tier. Offsets are assigned atomically: concurrent
    /// appends never share an id. `publish_time_ns` is the domain clock's now; the
    /// log may raise it to keep publish times monotonic per topic.
    async fn append(
        &self,
        log: &LogRef,
        messages: Vec<NewMessage>,
        publish_time_ns: i64,
    ) -> StoreResult<Appended>;

    /// Reads messages with offsets `from..`, at most `max_messages` of them and,
    /// past the first message, at most about `max_bytes` (payload plus a fixed
    /// per-message cost, so that many tiny messages are bounded too). Returns fewer
    /// (possibly none) when the log ends. Offsets below `min` are not returned: the
    /// read starts at `max(from, min)`.
    async fn read(
        &self,
        log: &LogRef,
        from: u64,
        max_messages: usize,
        max_bytes: usize,
    ) -> StoreResult<Vec<StoredMessage>>;

    /// The log's current bounds.
    async fn bounds(&self, log: &LogRef) -> StoreResult<LogBounds>;

    /// The offset of the first retained message whose publish time, truncated to
    /// milliseconds, is at or after `time_ms`; `None` if every retained message is
    /// older (or the log is empty).
    async fn offset_at_time(&self, log: &LogRef, time_ms: i64) -> StoreResult<Option<u64>>;

    /// Waits until the log's `max` exceeds `offset` or `timeout` passes, without
    /// polling where the backend can be notified. Returns the bounds seen last.
    async fn wait_beyond(
        &self,
        log: &LogRef,
        offset: u64,
        timeout: Duration,
    ) -> StoreResult<LogBounds>;

    /// Deletes a log and its data. Deleting a missing log is not an error. Later
    /// appends to the same id fail (ids are unique per topic incarnation).
    async fn delete(&self, log: &LogRef) -> StoreResult<()>;

    /// Every log the backend holds, identified as [`MessageLog::naming`] says
    /// (the other fields may be nil or empty), so that start-up can delete logs
    /// whose topic no longer exists (a crash between the two deletes leaves one
    /// behind).
    async fn list(&self) -> StoreResult<Vec<LogRef>>;
}

/// Why a metadata write was refused. These are expected outcomes the domain turns
/// into AMS errors, not backend failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// A resource with that name already exists.
    #[error("already exists")]
    AlreadyExists,
    /// The resource to change does not exist.
    #[error("not found")]
    NotFound,
}

/// A metadata write that can be refused by a [`Conflict`] or fail in the backend.
pub type WriteResult<T> = StoreResult<Result<T, Conflict>>;

/// One page of a newest-first listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    /// The items of this page, newest first.
    pub items: Vec<T>,
    /// Cursor of the first item of the next page, if there is one.
    pub next: Option<u64>,
    /// Number of items in the whole (filtered) listing.
    pub total: u64,
}

/// Which page of a newest-first listing to return.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PageRequest {
    /// Page length; `None` returns everything.
    pub size: Option<usize>,
    /// Start at the item with this cursor (inclusive); `None` starts at the newest.
    pub from: Option<u64>,
    /// List only topics/subscriptions whose ACL contains this user (what pure
    /// publishers and consumers see); `total` counts the filtered listing.
    pub acl_member: Option<Uuid>,
}

/// How durable a metadata write must be before the call returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteDurability {
    /// In the backend's configured tier (fsync or handed to the OS): used for
    /// everything a client was told happened (creates, deletes, acks, seeks).
    Tier,
    /// Best effort: lost at worst in a crash, which only makes a client repeat a
    /// pull. Used for the bookkeeping of pulls.
    Relaxed,
}

/// A change applied atomically to a subscription's cursor. It may be called more
/// than once (a backend may retry on contention), so it must be a pure function of
/// the cursor it is given. Returning `Err` leaves the cursor unchanged.
pub type CursorUpdate<'a> = &'a mut (dyn FnMut(&mut Cursor) -> Result<(), CursorRefusal> + Send);

/// A change of a subscription's settings (see [`MetadataStore::update_subscription`]);
/// like [`CursorUpdate`] it may be called more than once.
pub type SubscriptionUpdate<'a> = &'a mut (dyn FnMut(&mut Subscription) -> bool + Send);

/// Publishes one node counted for one topic incarnation since it last handed
/// its counts to the store ([`MetadataStore::add_usage`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageDelta {
    /// The topic's project.
    pub project: Uuid,
    /// The topic's name (daily counts are kept by name, as the original does).
    pub topic: String,
    /// The incarnation whose totals the delta adds to.
    pub log_id: Uuid,
    /// The new events, seeded with the topic's latest publish time as the node
    /// knew it (see [`Tally::continuation`]).
    pub published: Tally,
    /// Messages per UTC day (days since 1970-01-01).
    pub days: Vec<(i32, u64)>,
}

/// Projects, topics, subscriptions and cursors.
///
/// Names are unique per kind (projects globally, topics and subscriptions per
/// project). Listings are newest first with stable cursors (creation sequence
/// numbers) for pagination.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    // -- projects --

    /// Creates a project; `AlreadyExists` if the name is taken.
    async fn create_project(&self, project: Project) -> WriteResult<()>;
    /// Looks a project up by name.
    async fn project_by_name(&self, name: &str) -> StoreResult<Option<Project>>;
    /// Looks a project up by UUID.
    async fn project_by_uuid(&self, uuid: Uuid) -> StoreResult<Option<Project>>;
    /// All projects, oldest first.
    async fn list_projects(&self) -> StoreResult<Vec<Project>>;
    /// Replaces a project record (rename included); `AlreadyExists` if the new name
    /// belongs to another project, `NotFound` if the project is gone.
    async fn update_project(&self, project: Project) -> WriteResult<()>;
    /// Deletes a project with its topics and subscriptions and returns the deleted
    /// topics (their logs are the caller's to delete); `NotFound` if missing.
    async fn delete_project(&self, uuid: Uuid) -> WriteResult<Vec<Topic>>;

    // -- topics --

    /// Creates a topic and returns it with its listing cursor (`seq`) assigned;
    /// `AlreadyExists` if the name is taken in the project.
    async fn create_topic(&self, topic: Topic) -> WriteResult<Topic>;
    /// Looks a topic up.
    async fn topic(&self, project: Uuid, name: &str) -> StoreResult<Option<Topic>>;
    /// A page of the project's topics, newest first.
    async fn list_topics(&self, project: Uuid, page: PageRequest) -> StoreResult<Page<Topic>>;
    /// Deletes a topic and returns it; `NotFound` if missing. Subscriptions stay.
    async fn delete_topic(&self, project: Uuid, name: &str) -> WriteResult<Topic>;

    // -- subscriptions --

    /// Creates a subscription and returns it with its listing cursor (`seq`)
    /// assigned; `AlreadyExists` if the name is taken in the project.
    async fn create_subscription(&self, subscription: Subscription) -> WriteResult<Subscription>;
    /// Looks a subscription up.
    async fn subscription(&self, project: Uuid, name: &str) -> StoreResult<Option<Subscription>>;
    /// A page of the project's subscriptions, newest first.
    async fn list_subscriptions(
        &self,
        project: Uuid,
        page: PageRequest,
    ) -> StoreResult<Page<Subscription>>;
    /// Names of the project's subscriptions attached to a topic, oldest first.
    async fn subscriptions_of_topic(&self, project: Uuid, topic: &str) -> StoreResult<Vec<String>>;
    /// Deletes a subscription and returns it; `NotFound` if missing.
    async fn delete_subscription(&self, project: Uuid, name: &str) -> WriteResult<Subscription>;
    /// Sets a subscription's ack deadline; `NotFound` if missing.
    async fn set_ack_deadline(&self, project: Uuid, name: &str, seconds: i64) -> WriteResult<()>;
    /// Applies `update` to the subscription's cursor atomically with respect to every
    /// other cursor update of that subscription, on this node and any other.
    /// Returns `Ok(Ok(Ok(cursor)))` with the new cursor, `Ok(Ok(Err(e)))` when
    /// `update` refused, `Ok(Err(NotFound))` when the subscription is gone.
    async fn update_cursor(
        &self,
        project: Uuid,
        name: &str,
        durability: WriteDurability,
        update: CursorUpdate<'_>,
    ) -> WriteResult<Result<Cursor, CursorRefusal>>;

    /// Subscriptions whose committed offset moved (or that were deleted) on
    /// any node sharing this store, as `(project, name)`; `None` when only
    /// this process writes the store (the domain then knows every change).
    /// Events may be lost or repeated: they only wake streams early.
    fn cursor_events(&self) -> Option<tokio::sync::broadcast::Receiver<(Uuid, String)>> {
        None
    }

    /// Applies `change` to a subscription atomically with respect to every other
    /// change of it. `change` may alter only `push`, `dead_letter` and `acl`
    /// (the cursor has [`MetadataStore::update_cursor`]); returning `false`
    /// leaves the record unchanged. Returns the subscription as it now is, with
    /// `false` when `change` refused; `NotFound` when it is gone.
    async fn update_subscription(
        &self,
        project: Uuid,
        name: &str,
        change: SubscriptionUpdate<'_>,
    ) -> WriteResult<(Subscription, bool)>;

    // -- schemas --

    /// Creates a schema with `seq` assigned; `AlreadyExists` if the name is
    /// taken in the project, `NotFound` if the project is gone.
    async fn create_schema(&self, schema: Schema) -> WriteResult<Schema>;
    /// Looks a schema up by name.
    async fn schema(&self, project: Uuid, name: &str) -> StoreResult<Option<Schema>>;
    /// Looks a schema up by identity.
    async fn schema_by_uuid(&self, project: Uuid, uuid: Uuid) -> StoreResult<Option<Schema>>;
    /// The project's schemas, oldest first.
    async fn list_schemas(&self, project: Uuid) -> StoreResult<Vec<Schema>>;
    /// Replaces schema `name` (rename included); `AlreadyExists` if the new
    /// name belongs to another schema, `NotFound` if it is gone.
    async fn update_schema(&self, project: Uuid, name: &str, schema: Schema) -> WriteResult<()>;
    /// Deletes a schema and, atomically, detaches it from every topic.
    async fn delete_schema(&self, project: Uuid, name: &str) -> WriteResult<Schema>;
    /// Attaches a schema to a topic (`None` detaches); `NotFound` if the topic is gone.
    async fn set_topic_schema(
        &self,
        project: Uuid,
        topic: &str,
        schema: Option<Uuid>,
    ) -> WriteResult<()>;

    // -- leases --

    /// Takes or renews lease `key` for `holder` until `until_ms` (Unix ms).
    /// Refused (`false`) while another holder's lease has not expired at
    /// `now_ms`. Nodes sharing a backend use it to agree on one owner per push
    /// subscription.
    async fn acquire_lease(
        &self,
        key: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<bool>;
    /// Gives up lease `key` if `holder` holds it.
    async fn release_lease(&self, key: &str, holder: &str) -> StoreResult<()>;

    // -- usage counters (contract §9) --

    /// Adds publish counts: each delta's tally to its topic when that
    /// incarnation still exists, and its days to the daily counters of
    /// `(project, topic name)`, which outlive the topic (they are usage
    /// history) but not the project. Deltas of several nodes add up.
    async fn add_usage(&self, deltas: &[UsageDelta]) -> StoreResult<()>;
    /// The project's daily publish counts (only topic `topic`'s if given)
    /// for the days in `days`, summed per day, newest first.
    async fn daily_counts(
        &self,
        project: Uuid,
        topic: Option<&str>,
        days: std::ops::RangeInclusive<i32>,
    ) -> StoreResult<Vec<(i32, u64)>>;
    /// Records a node's latest operational sample, replacing its previous one.
    async fn put_node_sample(&self, sample: NodeSample) -> StoreResult<()>;
    /// Every node's latest sample, by host name.
    async fn node_samples(&self) -> StoreResult<Vec<NodeSample>>;

    // -- access control lists --

    /// Replaces a topic's ACL (user UUIDs, in order); `NotFound` if missing.
    async fn set_topic_acl(&self, project: Uuid, name: &str, acl: Vec<Uuid>) -> WriteResult<()>;
    /// Replaces a subscription's ACL; `NotFound` if missing.
    async fn set_subscription_acl(
        &self,
        project: Uuid,
        name: &str,
        acl: Vec<Uuid>,
    ) -> WriteResult<()>;

    // -- users --

    /// Creates a user and returns it with `seq` assigned; `AlreadyExists` if the
    /// name (or, impossibly, the token) is taken.
    async fn create_user(&self, user: User) -> WriteResult<User>;
    /// Looks a user up by name.
    async fn user_by_name(&self, name: &str) -> StoreResult<Option<User>>;
    /// Looks a user up by token (exact match).
    async fn user_by_token(&self, token: &str) -> StoreResult<Option<User>>;
    /// Looks a user up by UUID.
    async fn user_by_uuid(&self, uuid: Uuid) -> StoreResult<Option<User>>;
    /// A page of users, newest first, optionally only members of `project`.
    async fn list_users(&self, project: Option<Uuid>, page: PageRequest)
    -> StoreResult<Page<User>>;
    /// Replaces a user record (rename, profile, token, memberships);
    /// `AlreadyExists` if the new name belongs to another user, `NotFound` if gone.
    async fn update_user(&self, user: User) -> WriteResult<()>;
    /// Makes `user` a member of `project` without roles unless it already is
    /// one, atomically with respect to other changes of the user (the push
    /// worker joins the projects of the subscriptions it delivers this way).
    async fn add_membership(&self, user: Uuid, project: Uuid) -> WriteResult<()>;
    /// Deletes a user, removing its UUID from every topic and subscription ACL in
    /// the same atomic write; returns the deleted user.
    async fn delete_user(&self, uuid: Uuid) -> WriteResult<User>;

    // -- registrations --

    /// Stores a new registration, assigning `seq`.
    async fn create_registration(&self, registration: Registration) -> WriteResult<Registration>;
    /// Looks a registration up.
    async fn registration(&self, uuid: Uuid) -> StoreResult<Option<Registration>>;
    /// All registrations, oldest first.
    async fn list_registrations(&self) -> StoreResult<Vec<Registration>>;
    /// Replaces a registration; `NotFound` if gone.
    async fn update_registration(&self, registration: Registration) -> WriteResult<()>;
    /// Deletes a registration; `NotFound` if missing.
    async fn delete_registration(&self, uuid: Uuid) -> WriteResult<()>;
}
