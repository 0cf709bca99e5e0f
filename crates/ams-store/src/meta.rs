//! The embedded [`MetadataStore`]: projects, topics and subscriptions (with
//! their cursors) in one fjall keyspace, mirrored in memory.
//!
//! One process owns the data directory, so the in-memory mirror is the truth
//! for reads and fjall is the durable copy: every change is written to fjall
//! under the state lock (so disk and memory change in the same order), then, for
//! [`WriteDurability::Tier`] writes in the fsync tier, made durable through
//! [`GroupSync`] outside the lock. Records are JSON under keys
//! `<kind byte><creation sequence, big-endian>`; the sequence is also the
//! newest-first pagination cursor.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use async_trait::async_trait;
use parking_lot::RwLock;
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use ams_core::model::{
    Cursor, CursorRefusal, NodeSample, Project, Registration, Schema, Subscription, Topic, User,
};
use ams_core::storage::{
    Conflict, CursorUpdate, MetadataStore, Page, PageRequest, StoreError, StoreResult,
    SubscriptionUpdate, UsageDelta, WriteDurability, WriteResult,
};

use crate::Durability;
use crate::sync::GroupSync;

const PROJECT: u8 = b'P';
const TOPIC: u8 = b'T';
const SUBSCRIPTION: u8 = b'S';
const USER: u8 = b'U';
const REGISTRATION: u8 = b'R';
const SCHEMA: u8 = b'C';
const DAILY: u8 = b'D';

fn key(kind: u8, seq: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = kind;
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn fail(context: &'static str) -> impl FnOnce(fjall::Error) -> StoreError {
    move |e| StoreError::new(context, e)
}

/// A project as stored: the domain record plus its sequence number.
#[derive(serde::Serialize, serde::Deserialize)]
struct ProjectRecord {
    seq: u64,
    project: Project,
}

/// One day's publish count of one topic name, as stored.
#[derive(serde::Serialize, serde::Deserialize)]
struct DailyRecord {
    project: Uuid,
    topic: String,
    /// Days since 1970-01-01 (UTC).
    day: i32,
    count: u64,
}

/// A project's daily counts by (topic name, day): the record's key sequence
/// and the count.
type Daily = BTreeMap<(String, i32), (u64, u64)>;

/// Items of one kind in one project, by creation sequence and by name.
struct Items<T> {
    by_seq: BTreeMap<u64, T>,
    by_name: HashMap<String, u64>,
}

impl<T> Default for Items<T> {
    fn default() -> Self {
        Self {
            by_seq: BTreeMap::new(),
            by_name: HashMap::new(),
        }
    }
}

impl<T: Clone> Items<T> {
    fn get(&self, name: &str) -> Option<&T> {
        self.by_seq.get(self.by_name.get(name)?)
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut T> {
        self.by_seq.get_mut(self.by_name.get(name)?)
    }

    fn page(&self, req: PageRequest, keep: impl Fn(&T) -> bool) -> Page<T> {
        page(&self.by_seq, req, keep)
    }
}

/// A newest-first page of the items `keep` accepts, starting at cursor `req.from`.
fn page<T: Clone>(
    by_seq: &BTreeMap<u64, T>,
    req: PageRequest,
    keep: impl Fn(&T) -> bool,
) -> Page<T> {
    let total = by_seq.values().filter(|t| keep(t)).count() as u64;
    let upper = req.from.unwrap_or(u64::MAX);
    let mut items = Vec::new();
    let mut next = None;
    for (seq, item) in by_seq.range(..=upper).rev().filter(|(_, t)| keep(t)) {
        if req.size.is_some_and(|n| items.len() == n) {
            next = Some(*seq);
            break;
        }
        items.push(item.clone());
    }
    Page { items, next, total }
}

#[derive(Default)]
struct State {
    next_seq: u64,
    projects: BTreeMap<u64, Project>,
    project_names: HashMap<String, u64>,
    project_uuids: HashMap<Uuid, u64>,
    topics: HashMap<Uuid, Items<Topic>>,
    subscriptions: HashMap<Uuid, Items<Subscription>>,
    schemas: HashMap<Uuid, Items<Schema>>,
    users: BTreeMap<u64, User>,
    user_names: HashMap<String, u64>,
    user_uuids: HashMap<Uuid, u64>,
    user_tokens: HashMap<String, u64>,
    registrations: BTreeMap<u64, Registration>,
    registration_uuids: HashMap<Uuid, u64>,
    /// Leases by key: holder and expiry (Unix ms). Kept in memory only: one
    /// process owns the data directory, so a lease never has to outlive it.
    leases: HashMap<String, (String, i64)>,
    daily: HashMap<Uuid, Daily>,
    /// Node samples, in memory for the same reason as leases: the embedded
    /// store has exactly one node.
    nodes: BTreeMap<String, NodeSample>,
}

impl State {
    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn project_seq(&self, uuid: Uuid) -> Option<u64> {
        self.project_uuids.get(&uuid).copied()
    }

    fn mirror_user(&mut self, user: User) {
        self.user_names.insert(user.name.clone(), user.seq);
        self.user_uuids.insert(user.uuid, user.seq);
        self.user_tokens.insert(user.token.clone(), user.seq);
        self.users.insert(user.seq, user);
    }

    fn forget_user(&mut self, seq: u64) -> Option<User> {
        let user = self.users.remove(&seq)?;
        self.user_names.remove(&user.name);
        self.user_uuids.remove(&user.uuid);
        self.user_tokens.remove(&user.token);
        Some(user)
    }

    fn user(&self, seq: Option<&u64>) -> Option<User> {
        seq.and_then(|s| self.users.get(s)).cloned()
    }
}

/// Topics and subscriptions: records named within a project, kept in [`Items`].
trait Record: Clone + Serialize + DeserializeOwned {
    /// Key prefix in the keyspace.
    const KIND: u8;
    fn project(&self) -> Uuid;
    fn name(&self) -> &str;
    fn seq(&self) -> u64;
    fn set_seq(&mut self, seq: u64);
    fn acl(&self) -> &[Uuid];
    fn all(st: &State) -> &HashMap<Uuid, Items<Self>>;
    fn all_mut(st: &mut State) -> &mut HashMap<Uuid, Items<Self>>;

    /// Adds a record (loaded or created) to the in-memory mirror.
    fn mirror(self, st: &mut State) {
        let items = Self::all_mut(st).entry(self.project()).or_default();
        items.by_name.insert(self.name().to_owned(), self.seq());
        items.by_seq.insert(self.seq(), self);
    }
}

macro_rules! record {
    ($ty:ty, $kind:expr, $field:ident) => {
        record!($ty, $kind, $field, |r: &$ty| r.acl.as_slice());
    };
    ($ty:ty, $kind:expr, $field:ident, $acl:expr) => {
        impl Record for $ty {
            const KIND: u8 = $kind;
            fn project(&self) -> Uuid {
                self.project
            }
            fn name(&self) -> &str {
                &self.name
            }
            fn seq(&self) -> u64 {
                self.seq
            }
            fn set_seq(&mut self, seq: u64) {
                self.seq = seq;
            }
            fn acl(&self) -> &[Uuid] {
                let acl: fn(&Self) -> &[Uuid] = $acl;
                acl(self)
            }
            fn all(st: &State) -> &HashMap<Uuid, Items<Self>> {
                &st.$field
            }
            fn all_mut(st: &mut State) -> &mut HashMap<Uuid, Items<Self>> {
                &mut st.$field
            }
        }
    };
}

record!(Topic, TOPIC, topics);
record!(Subscription, SUBSCRIPTION, subscriptions);

// Schemas have no ACL.
record!(Schema, SCHEMA, schemas, |_: &Schema| &[]);

/// The embedded metadata store.
pub struct EmbeddedMeta {
    db: fjall::Database,
    records: fjall::Keyspace,
    state: RwLock<State>,
    durability: Durability,
    sync: GroupSync,
}

impl EmbeddedMeta {
    /// Opens (or creates) the store in `dir` and loads every record. Must be
    /// called within a tokio runtime (the group-sync task is spawned on it).
    pub fn open(dir: &Path, durability: Durability) -> StoreResult<Self> {
        let db = fjall::Database::builder(dir)
            .open()
            .map_err(fail("open metadata database"))?;
        let records = db
            .keyspace("records", fjall::KeyspaceCreateOptions::default)
            .map_err(fail("open metadata keyspace"))?;
        let mut state = State::default();
        for guard in records.iter() {
            let (k, v) = guard.into_inner().map_err(fail("read metadata"))?;
            let seq = u64::from_be_bytes(
                k.get(1..9)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| StoreError::new("read metadata", "malformed key"))?,
            );
            state.next_seq = state.next_seq.max(seq);
            match k.first() {
                Some(&PROJECT) => {
                    let r: ProjectRecord = decode(&v)?;
                    state.project_names.insert(r.project.name.clone(), seq);
                    state.project_uuids.insert(r.project.uuid, seq);
                    state.projects.insert(seq, r.project);
                }
                Some(&TOPIC) => decode::<Topic>(&v)?.mirror(&mut state),
                Some(&SUBSCRIPTION) => decode::<Subscription>(&v)?.mirror(&mut state),
                Some(&SCHEMA) => decode::<Schema>(&v)?.mirror(&mut state),
                Some(&USER) => {
                    let user: User = decode(&v)?;
                    state.mirror_user(user);
                }
                Some(&REGISTRATION) => {
                    let r: Registration = decode(&v)?;
                    state.registration_uuids.insert(r.uuid, r.seq);
                    state.registrations.insert(r.seq, r);
                }
                Some(&DAILY) => {
                    let r: DailyRecord = decode(&v)?;
                    state
                        .daily
                        .entry(r.project)
                        .or_default()
                        .insert((r.topic, r.day), (seq, r.count));
                }
                _ => return Err(StoreError::new("read metadata", "unknown record kind")),
            }
        }
        let sync = GroupSync::start(db.clone());
        Ok(Self {
            db,
            records,
            state: RwLock::new(state),
            durability,
            sync,
        })
    }

    fn put<T: Serialize>(&self, kind: u8, seq: u64, value: &T) -> StoreResult<()> {
        let bytes = encode(value)?;
        self.records
            .insert(key(kind, seq), bytes)
            .map_err(fail("write metadata"))
    }

    fn put_project(&self, seq: u64, project: &Project) -> StoreResult<()> {
        let record = ProjectRecord {
            seq,
            project: project.clone(),
        };
        self.put(PROJECT, seq, &record)
    }

    /// Applies `change` to a topic or subscription and writes it if it changed.
    /// `Ok(None)`: no such record; `Ok(Some(Err(e)))`: `change` refused.
    async fn modify<R: Record + PartialEq, T, E>(
        &self,
        project: Uuid,
        name: &str,
        durability: WriteDurability,
        change: impl FnOnce(&mut R) -> Result<T, E>,
    ) -> StoreResult<Option<Result<T, E>>> {
        let outcome = {
            let mut st = self.state.write();
            let Some(record) = R::all_mut(&mut st)
                .get_mut(&project)
                .and_then(|items| items.get_mut(name))
            else {
                return Ok(None);
            };
            let mut changed = record.clone();
            let outcome = match change(&mut changed) {
                Ok(t) => t,
                Err(e) => return Ok(Some(Err(e))),
            };
            if changed != *record {
                self.put(R::KIND, changed.seq(), &changed)?;
                *record = changed;
            }
            outcome
        };
        self.settle(durability).await?;
        Ok(Some(Ok(outcome)))
    }

    /// Sets fields of a topic or subscription that no rule can refuse;
    /// `NotFound` if it is gone.
    async fn set<R: Record + PartialEq>(
        &self,
        project: Uuid,
        name: &str,
        change: impl FnOnce(&mut R),
    ) -> WriteResult<()> {
        let outcome = self
            .modify(project, name, WriteDurability::Tier, |r: &mut R| {
                change(r);
                Ok::<(), Conflict>(())
            })
            .await?;
        Ok(outcome.map(|_| ()).ok_or(Conflict::NotFound))
    }

    fn remove(&self, kind: u8, seq: u64) -> StoreResult<()> {
        self.records
            .remove(key(kind, seq))
            .map_err(fail("delete metadata"))
    }

    fn get<R: Record>(&self, project: Uuid, name: &str) -> Option<R> {
        R::all(&self.state.read())
            .get(&project)
            .and_then(|items| items.get(name))
            .cloned()
    }

    fn page<R: Record>(&self, project: Uuid, req: PageRequest) -> Page<R> {
        let keep = |r: &R| req.acl_member.is_none_or(|u| r.acl().contains(&u));
        R::all(&self.state.read())
            .get(&project)
            .map(|items| items.page(req, keep))
            .unwrap_or_else(|| Items::default().page(req, keep))
    }

    async fn create<R: Record>(&self, mut record: R) -> WriteResult<R> {
        {
            let mut st = self.state.write();
            if st.project_seq(record.project()).is_none() {
                return Ok(Err(Conflict::NotFound));
            }
            if R::all(&st)
                .get(&record.project())
                .is_some_and(|items| items.by_name.contains_key(record.name()))
            {
                return Ok(Err(Conflict::AlreadyExists));
            }
            record.set_seq(st.seq());
            self.put(R::KIND, record.seq(), &record)?;
            record.clone().mirror(&mut st);
        }
        self.settle(WriteDurability::Tier).await?;
        Ok(Ok(record))
    }

    async fn delete<R: Record>(&self, project: Uuid, name: &str) -> WriteResult<R> {
        let removed = {
            let mut st = self.state.write();
            let Some(items) = R::all_mut(&mut st).get_mut(&project) else {
                return Ok(Err(Conflict::NotFound));
            };
            let Some(seq) = items.by_name.get(name).copied() else {
                return Ok(Err(Conflict::NotFound));
            };
            self.remove(R::KIND, seq)?;
            items.by_name.remove(name);
            items.by_seq.remove(&seq)
        };
        self.settle(WriteDurability::Tier).await?;
        Ok(removed.ok_or(Conflict::NotFound))
    }

    /// Makes the writes made so far durable as the tier requires.
    async fn settle(&self, durability: WriteDurability) -> StoreResult<()> {
        if durability == WriteDurability::Tier && self.durability == Durability::Fsync {
            self.sync.sync().await?;
        }
        Ok(())
    }
}

fn encode<T: Serialize>(value: &T) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::new("encode metadata", e))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::new("decode metadata", e))
}

#[async_trait]
impl MetadataStore for EmbeddedMeta {
    async fn create_project(&self, project: Project) -> WriteResult<()> {
        {
            let mut st = self.state.write();
            if st.project_names.contains_key(&project.name) {
                return Ok(Err(Conflict::AlreadyExists));
            }
            let seq = st.seq();
            self.put_project(seq, &project)?;
            st.project_names.insert(project.name.clone(), seq);
            st.project_uuids.insert(project.uuid, seq);
            st.projects.insert(seq, project);
        }
        self.settle(WriteDurability::Tier).await?;
        Ok(Ok(()))
    }

    async fn project_by_name(&self, name: &str) -> StoreResult<Option<Project>> {
        let st = self.state.read();
        Ok(st
            .project_names
            .get(name)
            .and_then(|seq| st.projects.get(seq))
            .cloned())
    }

    async fn project_by_uuid(&self, uuid: Uuid) -> StoreResult<Option<Project>> {
        let st = self.state.read();
        Ok(st
            .project_seq(uuid)
            .and_then(|seq| st.projects.get(&seq))
            .cloned())
    }

    async fn list_projects(&self) -> StoreResult<Vec<Project>> {
        Ok(self.state.read().projects.values().cloned().collect())
    }

    async fn update_project(&self, project: Project) -> WriteResult<()> {
        {
            let mut st = self.state.write();
            let Some(seq) = st.project_seq(project.uuid) else {
                return Ok(Err(Conflict::NotFound));
            };
            if st
                .project_names
                .get(&project.name)
                .is_some_and(|s| *s != seq)
            {
                return Ok(Err(Conflict::AlreadyExists));
            }
            self.put_project(seq, &project)?;
            if let Some(old) = st.projects.insert(seq, project.clone()) {
                st.project_names.remove(&old.name);
            }
            st.project_names.insert(project.name, seq);
        }
        self.settle(WriteDurability::Tier).await?;
        Ok(Ok(()))
    }

    async fn delete_project(&self, uuid: Uuid) -> WriteResult<Vec<Topic>> {
        let topics = {
            let mut st = self.state.write();
            let Some(seq) = st.project_seq(uuid) else {
                return Ok(Err(Conflict::NotFound));
            };
            let topics = st.topics.remove(&uuid).unwrap_or_default();
            let subs = st.subscriptions.remove(&uuid).unwrap_or_default();
            let schemas = st.schemas.remove(&uuid).unwrap_or_default();
            let daily = st.daily.remove(&uuid).unwrap_or_default();
            // One atomic batch: a crash never leaves half a project behind.
            let mut batch = self.db.batch();
            batch.remove(&self.records, key(PROJECT, seq));
            for (s, _) in daily.values() {
                batch.remove(&self.records, key(DAILY, *s));
            }
            for s in schemas.by_seq.keys() {
                batch.remove(&self.records, key(SCHEMA, *s));
            }
            for s in topics.by_seq.keys() {
                batch.remove(&self.records, key(TOPIC, *s));
            }
            for s in subs.by_seq.keys() {
                batch.remove(&self.records, key(SUBSCRIPTION, *s));
            }
            batch.commit().map_err(fail("delete project"))?;
            if let Some(p) = st.projects.remove(&seq) {
                st.project_names.remove(&p.name);
            }
            st.project_uuids.remove(&uuid);
            topics.by_seq.into_values().collect()
        };
        self.settle(WriteDurability::Tier).await?;
        Ok(Ok(topics))
    }

    async fn create_topic(&self, topic: Topic) -> WriteResult<Topic> {
        self.create(topic).await
    }

    async fn topic(&self, project: Uuid, name: &str) -> StoreResult<Option<Topic>> {
        Ok(self.get(project, name))
    }

    async fn list_topics(&self, project: Uuid, page: PageRequest) -> StoreResult<Page<Topic>> {
        Ok(self.page(project, page))
    }

    async fn delete_topic(&self, project: Uuid, name: &str) -> WriteResult<Topic> {
        self.delete(project, name).await
    }

    async fn create_subscription(&self, sub: Subscription) -> WriteResult<Subscription> {
        self.create(sub).await
    }

    async fn subscription(&self, project: Uuid, name: &str) -> StoreResult<Option<Subscription>> {
        Ok(self.get(project, name))
    }

    async fn list_subscriptions(
        &self,
        project: Uuid,
        page: PageRequest,
    ) -> StoreResult<Page<Subscription>> {
        Ok(self.page(project, page))
    }

    async fn subscriptions_of_topic(&self, project: Uuid, topic: &str) -> StoreResult<Vec<String>> {
        let st = self.state.read();
        Ok(st
            .subscriptions
            .get(&project)
            .map(|s| {
                s.by_seq
                    .values()
                    .filter(|s| s.topic == topic)
                    .map(|s| s.name.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn delete_subscription(&self, project: Uuid, name: &str) -> WriteResult<Subscription> {
        self.delete(project, name).await
    }

    async fn set_ack_deadline(&self, project: Uuid, name: &str, seconds: i64) -> WriteResult<()> {
        self.set(project, name, |sub: &mut Subscription| {
            sub.ack_deadline = seconds;
        })
        .await
    }

    async fn update_cursor(
        &self,
        project: Uuid,
        name: &str,
        durability: WriteDurability,
        update: CursorUpdate<'_>,
    ) -> WriteResult<Result<Cursor, CursorRefusal>> {
        let outcome = self
            .modify(project, name, durability, |sub: &mut Subscription| {
                update(&mut sub.cursor)?;
                Ok(sub.cursor)
            })
            .await?;
        Ok(outcome.ok_or(Conflict::NotFound))
    }

    async fn update_subscription(
        &self,
        project: Uuid,
        name: &str,
        change: SubscriptionUpdate<'_>,
    ) -> WriteResult<(Subscription, bool)> {
        let outcome = self
            .modify(
                project,
                name,
                WriteDurability::Tier,
                |sub: &mut Subscription| {
                    // A refused change leaves the record as it was: nothing is written.
                    let applied = sub.apply_settings(change);
                    Ok::<_, std::convert::Infallible>((sub.clone(), applied))
                },
            )
            .await?;
        Ok(outcome.map(|Ok(r)| r).ok_or(Conflict::NotFound))
    }

    async fn create_schema(&self, schema: Schema) -> WriteResult<Schema> {
        self.create(schema).await
    }

    async fn schema(&self, project: Uuid, name: &str) -> StoreResult<Option<Schema>> {
        Ok(self.get(project, name))
    }

    async fn schema_by_uuid(&self, project: Uuid, uuid: Uuid) -> StoreResult<Option<Schema>> {
        let st = self.state.read();
        Ok(st
            .schemas
            .get(&project)
            .and_then(|items| items.by_seq.values().find(|s| s.uuid == uuid).cloned()))
    }

    async fn list_schemas(&self, project: Uuid) -> StoreResult<Vec<Schema>> {
        let st = self.state.read();
        Ok(st
            .schemas
            .get(&project)
            .map(|items| items.by_seq.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn update_schema(&self, project: Uuid, name: &str, schema: Schema) -> WriteResult<()> {
        {
            let mut st = self.state.write();
            let Some(items) = st.schemas.get_mut(&project) else {
                return Ok(Err(Conflict::NotFound));
            };
            let Some(seq) = items.by_name.get(name).copied() else {
                return Ok(Err(Conflict::NotFound));
            };
            if schema.name != name && items.by_name.contains_key(&schema.name) {
                return Ok(Err(Conflict::AlreadyExists));
            }
            let schema = Schema { seq, ..schema };
            self.put(SCHEMA, seq, &schema)?;
            items.by_name.remove(name);
            items.by_name.insert(schema.name.clone(), seq);
            items.by_seq.insert(seq, schema);
        }
        self.settle(WriteDurability::Tier).await?;
        Ok(Ok(()))
    }

    async fn delete_schema(&self, project: Uuid, name: &str) -> WriteResult<Schema> {
        let removed = {
            let mut st = self.state.write();
            let Some(seq) = st
                .schemas
                .get(&project)
                .and_then(|items| items.by_name.get(name).copied())
            else {
                return Ok(Err(Conflict::NotFound));
            };
            let uuid = st.schemas[&project].by_seq[&seq].uuid;
            // The schema and every topic's link to it go in one atomic batch.
            let mut batch = self.db.batch();
            batch.remove(&self.records, key(SCHEMA, seq));
            let mut unlinked = Vec::new();
            if let Some(topics) = st.topics.get(&project) {
                for t in topics.by_seq.values().filter(|t| t.schema == Some(uuid)) {
                    let t = Topic {
                        schema: None,
                        ..t.clone()
                    };
                    batch.insert(&self.records, key(TOPIC, t.seq), encode(&t)?);
                    unlinked.push(t);
                }
            }
            batch.commit().map_err(fail("delete schema"))?;
            if let Some(topics) = st.topics.get_mut(&project) {
                for t in unlinked {
                    topics.by_seq.insert(t.seq, t);
                }
            }
            let items = st.schemas.get_mut(&project).expect("checked above");
            items.by_name.remove(name);
            items.by_seq.remove(&seq)
        };
        self.settle(WriteDurability::Tier).await?;
        Ok(removed.ok_or(Conflict::NotFound))
    }

    async fn set_topic_schema(
        &self,
        project: Uuid,
        topic: &str,
        schema: Option<Uuid>,
    ) -> WriteResult<()> {
        self.set(project, topic, |t: &mut Topic| t.schema = schema)
            .await
    }

    async fn acquire_lease(
        &self,
        key: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<bool> {
        let mut st = self.state.write();
        if st
            .leases
            .get(key)
            .is_some_and(|(h, until)| h != holder && *until > now_ms)
        {
            return Ok(false);
        }
        st.leases
            .insert(key.to_owned(), (holder.to_owned(), until_ms));
        Ok(true)
    }

    async fn release_lease(&self, key: &str, holder: &str) -> StoreResult<()> {
        let mut st = self.state.write();
        if st.leases.get(key).is_some_and(|(h, _)| h == holder) {
            st.leases.remove(key);
        }
        Ok(())
    }

    async fn add_usage(&self, deltas: &[UsageDelta]) -> StoreResult<()> {
        {
            let mut st = self.state.write();
            // One atomic batch per flush: totals and daily counts move together.
            let mut batch = self.db.batch();
            let mut topics = Vec::new();
            // Counts written by this batch, read before the mirror (two
            // incarnations of one topic name may share a day).
            let mut days = HashMap::<(Uuid, (String, i32)), (u64, u64)>::new();
            for delta in deltas {
                if st.project_seq(delta.project).is_none() {
                    continue;
                }
                if let Some(topic) = st
                    .topics
                    .get(&delta.project)
                    .and_then(|items| items.get(&delta.topic))
                    .filter(|t| t.log_id == delta.log_id)
                {
                    let mut topic = topic.clone();
                    topic.published.absorb(&delta.published);
                    batch.insert(&self.records, key(TOPIC, topic.seq), encode(&topic)?);
                    topics.push(topic);
                }
                for &(day, count) in &delta.days {
                    let slot = (delta.project, (delta.topic.clone(), day));
                    let known = days
                        .get(&slot)
                        .or_else(|| st.daily.get(&delta.project).and_then(|d| d.get(&slot.1)));
                    let (seq, total) = match known {
                        Some(&(seq, total)) => (seq, total.saturating_add(count)),
                        None => (st.seq(), count),
                    };
                    let record = DailyRecord {
                        project: delta.project,
                        topic: delta.topic.clone(),
                        day,
                        count: total,
                    };
                    batch.insert(&self.records, key(DAILY, seq), encode(&record)?);
                    days.insert(slot, (seq, total));
                }
            }
            batch.commit().map_err(fail("add usage"))?;
            for t in topics {
                t.mirror(&mut st);
            }
            for ((project, slot), value) in days {
                st.daily.entry(project).or_default().insert(slot, value);
            }
        }
        self.settle(WriteDurability::Tier).await
    }

    async fn daily_counts(
        &self,
        project: Uuid,
        topic: Option<&str>,
        days: std::ops::RangeInclusive<i32>,
    ) -> StoreResult<Vec<(i32, u64)>> {
        let st = self.state.read();
        let mut sums = BTreeMap::<i32, u64>::new();
        for ((name, day), (_, count)) in st.daily.get(&project).into_iter().flatten() {
            if days.contains(day) && topic.is_none_or(|t| t == name) {
                *sums.entry(*day).or_default() += count;
            }
        }
        Ok(sums.into_iter().rev().collect())
    }

    async fn put_node_sample(&self, sample: NodeSample) -> StoreResult<()> {
        self.state.write().nodes.insert(sample.host.clone(), sample);
        Ok(())
    }

    async fn node_samples(&self) -> StoreResult<Vec<NodeSample>> {
        Ok(self.state.read().nodes.values().cloned().collect())
    }

    async fn set_topic_acl(&self, project: Uuid, name: &str, acl: Vec<Uuid>) -> WriteResult<()> {
        self.set(project, name, |t: &mut Topic| t.acl = acl).await
    }

    async fn set_subscription_acl(
        &self,
        project: Uuid,
        name: &str,
        acl: Vec<Uuid>,
    ) -> WriteResult<()> {
        self.set(project, name, |s: &mut Subscription| s.acl = acl)
            .await
    }

    async fn create_user(&self, mut user: User) -> WriteResult<User> {
        {
            let mut st = self.state.write();
            if st.user_names.contains_key(&user.name) || st.user_tokens.contains_key(&user.token) {
                return Ok(Err(Conflict::AlreadyExists));
            }
            user.seq = st.seq();
            self.put(USER, user.seq, &user)?;
            st.mirror_user(user.clone());
        }
        self.settle(WriteDurability::Tier).await?;
        Ok(Ok(user))
    }

    async fn user_by_name(&self, name: &str) -> StoreResult<Option<User>> {
        let st = self.state.read();
        Ok(st.user(st.user_names.get(name)))
    }

    async fn user_by_token(&self, token: &str) -> StoreResult<Option<User>> {
        let st = self.state.read();
        Ok(st.user(st.user_tokens.get(token)))
    }

    async fn user_by_uuid(&self, uuid: Uuid) -> StoreResult<Option<User>> {
        let st = self.state.read();
        Ok(st.user(st.user_uuids.get(&uuid)))
    }

    async fn list_users(
        &self,
        project: Option<Uuid>,
        page: PageRequest,
    ) -> StoreResult<Page<User>> {
        let st = self.state.read();
        let matches = |u: &&User| project.is_none_or(|p| u.membership(p).is_some());
        let total = st.users.values().filter(matches).count() as u64;
        let upper = page.from.unwrap_or(u64::MAX);
        let mut items = Vec::new();
        let mut next = None;
        for user in st
            .users
            .range(..=upper)
            .rev()
            .map(|(_, u)| u)
            .filter(matches)
        {
            if page.size.is_some_and(|n| items.len() == n) {
                next = Some(user.seq);
                break;
            }
            items.push(user.clone());
        }
        Ok(Page { items, next, total })
    }

    async fn update_user(&self, user: User) -> WriteResult<()> {
        {
            let mut st = self.state.write();
            let Some(seq) = st.user_uuids.get(&user.uuid).copied() else {
                return Ok(Err(Conflict::NotFound));
            };
            let taken =
                |index: &HashMap<String, u64>, key: &str| index.get(key).is_some_and(|s| *s != seq);
            if taken(&st.user_names, &user.name) || taken(&st.user_tokens, &user.token) {
                return Ok(Err(Conflict::AlreadyExists));
            }
            let mut user = user;
            user.seq = seq;
            self.put(USER, seq, &user)?;
            st.forget_user(seq);
            st.mirror_user(user);
        }
        self.settle(WriteDurability::Tier).await?;
        Ok(Ok(()))
    }

    async fn add_membership(&self, user: Uuid, project: Uuid) -> WriteResult<()> {
        {
            let mut st = self.state.write();
            let Some(seq) = st.user_uuids.get(&user).copied() else {
                return Ok(Err(Conflict::NotFound));
            };
            let Some(current) = st.users.get(&seq) else {
                return Ok(Err(Conflict::NotFound));
            };
            if current.membership(project).is_some() {
                return Ok(Ok(()));
            }
            let mut changed = current.clone();
            changed.projects.push(ams_core::model::Membership {
                project,
                roles: Vec::new(),
            });
            self.put(USER, seq, &changed)?;
            st.users.insert(seq, changed);
        }
        self.settle(WriteDurability::Tier).await?;
        Ok(Ok(()))
    }

    async fn delete_user(&self, uuid: Uuid) -> WriteResult<User> {
        let user = {
            let mut st = self.state.write();
            let Some(seq) = st.user_uuids.get(&uuid).copied() else {
                return Ok(Err(Conflict::NotFound));
            };
            // One atomic batch: the user and every ACL entry naming it.
            let mut batch = self.db.batch();
            batch.remove(&self.records, key(USER, seq));
            let mut topics = Vec::new();
            for items in st.topics.values() {
                for t in items.by_seq.values().filter(|t| t.acl.contains(&uuid)) {
                    let mut t = t.clone();
                    t.acl.retain(|u| *u != uuid);
                    batch.insert(&self.records, key(TOPIC, t.seq), encode(&t)?);
                    topics.push(t);
                }
            }
            let mut subs = Vec::new();
            for items in st.subscriptions.values() {
                for s in items.by_seq.values().filter(|s| s.acl.contains(&uuid)) {
                    let mut s = s.clone();
                    s.acl.retain(|u| *u != uuid);
                    batch.insert(&self.records, key(SUBSCRIPTION, s.seq), encode(&s)?);
                    subs.push(s);
                }
            }
            batch.commit().map_err(fail("delete user"))?;
            for t in topics {
                t.mirror(&mut st);
            }
            for s in subs {
                s.mirror(&mut st);
            }
            st.forget_user(seq)
        };
        self.settle(WriteDurability::Tier).await?;
        Ok(user.ok_or(Conflict::NotFound))
    }

    async fn create_registration(&self, mut r: Registration) -> WriteResult<Registration> {
        {
            let mut st = self.state.write();
            if st.registration_uuids.contains_key(&r.uuid) {
                return Ok(Err(Conflict::AlreadyExists));
            }
            r.seq = st.seq();
            self.put(REGISTRATION, r.seq, &r)?;
            st.registration_uuids.insert(r.uuid, r.seq);
            st.registrations.insert(r.seq, r.clone());
        }
        self.settle(WriteDurability::Tier).await?;
        Ok(Ok(r))
    }

    async fn registration(&self, uuid: Uuid) -> StoreResult<Option<Registration>> {
        let st = self.state.read();
        Ok(st
            .registration_uuids
            .get(&uuid)
            .and_then(|seq| st.registrations.get(seq))
            .cloned())
    }

    async fn list_registrations(&self) -> StoreResult<Vec<Registration>> {
        Ok(self.state.read().registrations.values().cloned().collect())
    }

    async fn update_registration(&self, mut r: Registration) -> WriteResult<()> {
        {
            let mut st = self.state.write();
            let Some(seq) = st.registration_uuids.get(&r.uuid).copied() else {
                return Ok(Err(Conflict::NotFound));
            };
            r.seq = seq;
            self.put(REGISTRATION, seq, &r)?;
            st.registrations.insert(seq, r);
        }
        self.settle(WriteDurability::Tier).await?;
        Ok(Ok(()))
    }

    async fn delete_registration(&self, uuid: Uuid) -> WriteResult<()> {
        {
            let mut st = self.state.write();
            let Some(seq) = st.registration_uuids.get(&uuid).copied() else {
                return Ok(Err(Conflict::NotFound));
            };
            self.remove(REGISTRATION, seq)?;
            st.registration_uuids.remove(&uuid);
            st.registrations.remove(&seq);
        }
        self.settle(WriteDurability::Tier).await?;
        Ok(Ok(()))
    }
}
