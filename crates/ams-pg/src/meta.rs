//! [`PgMeta`]: the [`MetadataStore`] on PostgreSQL.
//!
//! Every call takes a pooled connection. Reads are single statements; writes
//! that touch more than one row, or read before they write, run in one
//! transaction and lock the rows they read (`FOR UPDATE`), so that nodes
//! sharing the database see them as serialized. Unique and foreign-key
//! violations are the expected outcomes `AlreadyExists` and `NotFound`.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{Json, ToSql};
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

use crate::cache::{Cache, Kind};

use ams_core::model::{
    Cursor, CursorRefusal, Membership, NodeSample, Project, Registration, Schema, Subscription,
    Topic, User,
};
use ams_core::storage::{
    Conflict, CursorUpdate, MetadataStore, Page, PageRequest, StoreError, StoreResult,
    SubscriptionUpdate, UsageDelta, WriteDurability, WriteResult,
};

/// How durable an acknowledged metadata write is (the counterpart of the
/// embedded store's tiers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Committed to PostgreSQL's WAL on disk (`synchronous_commit` as the
    /// server is configured) before answering; `Relaxed` writes skip the flush.
    Fsync,
    /// Every write commits with `synchronous_commit = off`: it survives a
    /// crash of the AMS node, but the server's last commits may be lost if
    /// PostgreSQL itself crashes.
    Write,
}

/// Maximum number of pooled connections per node.
const POOL_SIZE: usize = 16;

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

fn fail<E>(context: &'static str) -> impl FnOnce(E) -> StoreError
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    move |e| StoreError::new(context, e)
}

/// The expected outcome a constraint violation stands for, if it is one.
fn conflict(e: &tokio_postgres::Error) -> Option<Conflict> {
    match e.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => Some(Conflict::AlreadyExists),
        Some(code) if *code == SqlState::FOREIGN_KEY_VIOLATION => Some(Conflict::NotFound),
        _ => None,
    }
}

/// Turns constraint violations into [`Conflict`]s and other errors into
/// [`StoreError`]s.
fn classify<T>(context: &'static str, r: Result<T, tokio_postgres::Error>) -> WriteResult<T> {
    match r {
        Ok(t) => Ok(Ok(t)),
        Err(e) => match conflict(&e) {
            Some(c) => Ok(Err(c)),
            None => Err(StoreError::new(context, e)),
        },
    }
}

/// Converts a stored sequence (always positive) to the domain's cursor.
fn seq_of(row: &Row) -> StoreResult<u64> {
    let seq: i64 = row.try_get("seq").map_err(fail("decode metadata"))?;
    Ok(seq as u64)
}

/// A cursor as a bound on `seq` (cursors past `i64::MAX` cover everything).
fn seq_bound(cursor: Option<u64>) -> i64 {
    cursor.map_or(i64::MAX, |c| i64::try_from(c).unwrap_or(i64::MAX))
}

/// A record with its `seq`: a row's `record` column, `seq` from its `seq` column.
trait Sequenced: Clone + Serialize + DeserializeOwned + PartialEq + Send + Sync + 'static {
    fn set_seq(&mut self, seq: u64);

    fn from_row(row: &Row) -> StoreResult<Self> {
        let Json(mut record): Json<Self> =
            row.try_get("record").map_err(fail("decode metadata"))?;
        record.set_seq(seq_of(row)?);
        Ok(record)
    }
}

/// Topics, subscriptions and schemas: records named within a project.
trait Named: Sequenced + std::fmt::Debug {
    const TABLE: &'static str;
    /// What the record is, for error contexts.
    const WHAT: &'static str;
}

macro_rules! sequenced {
    ($($ty:ty),*) => {$(
        impl Sequenced for $ty {
            fn set_seq(&mut self, seq: u64) {
                self.seq = seq;
            }
        }
    )*};
}

sequenced!(Topic, Subscription, Schema, User, Registration);

impl Named for Topic {
    const TABLE: &'static str = "topics";
    const WHAT: &'static str = "topic";
}

impl Named for Subscription {
    const TABLE: &'static str = "subscriptions";
    const WHAT: &'static str = "subscription";
}

impl Named for Schema {
    const TABLE: &'static str = "schemas";
    const WHAT: &'static str = "schema";
}

fn rows_to<R: Sequenced>(rows: &[Row]) -> StoreResult<Vec<R>> {
    rows.iter().map(R::from_row).collect()
}

fn project_from(row: &Row) -> StoreResult<Project> {
    let Json(project): Json<Project> = row.try_get("record").map_err(fail("decode project"))?;
    Ok(project)
}

/// The metadata store on PostgreSQL.
pub struct PgMeta {
    pool: Pool,
    durability: Durability,
    /// Cursor change events of every node (LISTEN on its own connection).
    events: crate::events::Listener,
    /// Projects, users by token and topics this node read lately.
    cache: std::sync::Arc<Cache>,
}

impl std::fmt::Debug for PgMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgMeta")
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

impl PgMeta {
    /// Connects to the database at `url` (a libpq connection string or URL,
    /// e.g. `postgresql://ams@db/ams`), builds the connection pool and applies
    /// the schema migrations this database has not seen yet. Must be called
    /// within a tokio runtime.
    pub async fn connect(url: &str, durability: Durability) -> StoreResult<PgMeta> {
        let mut config =
            tokio_postgres::Config::from_str(url).map_err(fail("parse the PostgreSQL URL"))?;
        let cache = std::sync::Arc::new(Cache::default());
        let events = crate::events::Listener::start(config.clone(), cache.clone());
        if durability == Durability::Write {
            config.options("-c synchronous_commit=off");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(fail("build the PostgreSQL pool"))?;
        let meta = PgMeta {
            pool,
            durability,
            events,
            cache,
        };
        let mut client = meta.client().await?;
        crate::migrate::apply(&mut client).await?;
        Ok(meta)
    }

    /// The durability this store was opened with.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Closes the pool: idle connections are dropped at once, the others when
    /// they are returned; later calls fail.
    pub fn close(&self) {
        self.pool.close();
    }

    /// Tells every node (this one included) that a subscription's committed
    /// offset moved or that it is gone.
    async fn announce_cursor(&self, project: Uuid, name: &str) -> StoreResult<()> {
        let payload = crate::events::payload(project, name);
        self.client()
            .await?
            .execute(
                "SELECT pg_notify($1, $2)",
                &[&crate::events::CHANNEL, &payload],
            )
            .await
            .map_err(fail("announce a cursor change"))?;
        Ok(())
    }

    /// Records of `kinds` changed: this node forgets them now, the others
    /// when the notification arrives.
    async fn changed(&self, kinds: &[Kind]) -> StoreResult<()> {
        for kind in kinds {
            self.cache.clear(*kind);
        }
        let client = self.client().await?;
        for kind in kinds {
            client
                .execute(
                    "SELECT pg_notify($1, $2)",
                    &[&crate::events::META_CHANNEL, &kind.name()],
                )
                .await
                .map_err(fail("announce a change"))?;
        }
        Ok(())
    }

    async fn client(&self) -> StoreResult<Object> {
        self.pool.get().await.map_err(fail("connect to PostgreSQL"))
    }

    /// Lets a transaction commit without waiting for the WAL flush when the
    /// write is relaxed (in [`Durability::Write`] every session already does).
    async fn relax(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        durability: WriteDurability,
    ) -> StoreResult<()> {
        if durability == WriteDurability::Relaxed && self.durability == Durability::Fsync {
            tx.batch_execute("SET LOCAL synchronous_commit = off")
                .await
                .map_err(fail("relax the commit"))?;
        }
        Ok(())
    }

    async fn query(
        &self,
        context: &'static str,
        sql: &str,
        params: Params<'_>,
    ) -> StoreResult<Vec<Row>> {
        self.client()
            .await?
            .query(sql, params)
            .await
            .map_err(fail(context))
    }

    async fn query_opt(
        &self,
        context: &'static str,
        sql: &str,
        params: Params<'_>,
    ) -> StoreResult<Option<Row>> {
        self.client()
            .await?
            .query_opt(sql, params)
            .await
            .map_err(fail(context))
    }

    /// A newest-first page of `table`'s rows matching `filter` (which uses
    /// `$1..$n` for `params`).
    async fn page_rows(
        &self,
        context: &'static str,
        table: &str,
        filter: &str,
        params: Params<'_>,
        req: PageRequest,
    ) -> StoreResult<(Vec<Row>, Option<u64>, u64)> {
        let n = params.len();
        let client = self.client().await?;
        let total: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE {filter}"),
                params,
            )
            .await
            .map_err(fail(context))?
            .get(0);
        let from = seq_bound(req.from);
        let limit = req
            .size
            .map(|s| i64::try_from(s).unwrap_or(i64::MAX - 1) + 1);
        let mut all: Vec<&(dyn ToSql + Sync)> = params.to_vec();
        all.push(&from);
        all.push(&limit);
        let mut rows = client
            .query(
                &format!(
                    "SELECT seq, record FROM {table} WHERE {filter} AND seq <= ${} \
                     ORDER BY seq DESC LIMIT ${}",
                    n + 1,
                    n + 2
                ),
                &all,
            )
            .await
            .map_err(fail(context))?;
        let mut next = None;
        if req.size.is_some_and(|s| rows.len() > s) {
            let extra = rows.pop().expect("longer than the page");
            next = Some(seq_of(&extra)?);
        }
        Ok((rows, next, total as u64))
    }

    async fn get<R: Named>(&self, project: Uuid, name: &str) -> StoreResult<Option<R>> {
        let sql = format!(
            "SELECT seq, record FROM {} WHERE project = $1 AND name = $2",
            R::TABLE
        );
        self.query_opt("read metadata", &sql, &[&project, &name])
            .await?
            .map(|row| R::from_row(&row))
            .transpose()
    }

    async fn page<R: Named>(&self, project: Uuid, req: PageRequest) -> StoreResult<Page<R>> {
        let member = req.acl_member.map(|u| Json(json!({ "acl": [u] })));
        let (rows, next, total) = self
            .page_rows(
                "list metadata",
                R::TABLE,
                "project = $1 AND ($2::jsonb IS NULL OR record @> $2::jsonb)",
                &[&project, &member],
                req,
            )
            .await?;
        Ok(Page {
            items: rows_to(&rows)?,
            next,
            total,
        })
    }

    /// Inserts a topic, subscription or schema with its `seq` assigned.
    async fn create<R: Named>(&self, record: R, sql: &str, params: Params<'_>) -> WriteResult<R> {
        let client = self.client().await?;
        let row = match classify("create metadata", client.query_one(sql, params).await)? {
            Ok(row) => row,
            Err(c) => return Ok(Err(c)),
        };
        let mut record = record;
        record.set_seq(seq_of(&row)?);
        Ok(Ok(record))
    }

    async fn delete<R: Named>(&self, project: Uuid, name: &str) -> WriteResult<R> {
        let sql = format!(
            "DELETE FROM {} WHERE project = $1 AND name = $2 RETURNING seq, record",
            R::TABLE
        );
        match self
            .query_opt("delete metadata", &sql, &[&project, &name])
            .await?
        {
            Some(row) => Ok(Ok(R::from_row(&row)?)),
            None => Ok(Err(Conflict::NotFound)),
        }
    }

    /// Applies `change` to a topic, subscription or schema under a row lock
    /// and writes it back if it changed. `None`: no such record.
    async fn modify<R: Named, T: Send>(
        &self,
        project: Uuid,
        name: &str,
        durability: WriteDurability,
        change: impl FnOnce(&mut R) -> T + Send,
    ) -> StoreResult<Option<T>> {
        let context = R::WHAT;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(fail(context))?;
        self.relax(&tx, durability).await?;
        let sql = format!(
            "SELECT seq, record FROM {} WHERE project = $1 AND name = $2 FOR UPDATE",
            R::TABLE
        );
        let Some(row) = tx
            .query_opt(&sql, &[&project, &name])
            .await
            .map_err(fail(context))?
        else {
            return Ok(None);
        };
        let seq: i64 = row.get("seq");
        let current = R::from_row(&row)?;
        let mut changed = current.clone();
        let outcome = change(&mut changed);
        if changed != current {
            let sql = format!("UPDATE {} SET record = $2 WHERE seq = $1", R::TABLE);
            tx.execute(&sql, &[&seq, &Json(&changed)])
                .await
                .map_err(fail(context))?;
        }
        tx.commit().await.map_err(fail(context))?;
        Ok(Some(outcome))
    }

    /// Sets fields no rule can refuse; `NotFound` if the record is gone.
    async fn set<R: Named>(
        &self,
        project: Uuid,
        name: &str,
        change: impl FnOnce(&mut R) + Send,
    ) -> WriteResult<()> {
        let outcome = self
            .modify(project, name, WriteDurability::Tier, change)
            .await?;
        Ok(outcome.ok_or(Conflict::NotFound))
    }

    async fn user_where(
        &self,
        column: &str,
        value: &(dyn ToSql + Sync),
    ) -> StoreResult<Option<User>> {
        let sql = format!("SELECT seq, record FROM users WHERE {column} = $1");
        self.query_opt("read user", &sql, &[value])
            .await?
            .map(|row| User::from_row(&row))
            .transpose()
    }
}

/// `INSERT` of a named record taking the next `seq` of `table` and writing it
/// into the record as well; `$1` project, `$2` name, `$3` record, then `extra`
/// columns from `$4` on.
fn insert_named(table: &str, extra: &[&str]) -> String {
    let mut columns = String::from("project, name");
    let mut values = String::from("$1, $2");
    for (i, column) in extra.iter().enumerate() {
        columns.push_str(", ");
        columns.push_str(column);
        values.push_str(&format!(", ${}", i + 4));
    }
    format!(
        "INSERT INTO {table} (seq, {columns}, record) \
         SELECT s, {values}, jsonb_set($3::jsonb, '{{seq}}', to_jsonb(s)) \
         FROM nextval(pg_get_serial_sequence('{table}', 'seq')) AS s RETURNING seq"
    )
}

#[async_trait]
impl MetadataStore for PgMeta {
    async fn create_project(&self, project: Project) -> WriteResult<()> {
        let client = self.client().await?;
        let r = client
            .execute(
                "INSERT INTO projects (uuid, name, record) VALUES ($1, $2, $3)",
                &[&project.uuid, &project.name, &Json(&project)],
            )
            .await;
        Ok(classify("create project", r)?.map(|_| ()))
    }

    async fn project_by_name(&self, name: &str) -> StoreResult<Option<Project>> {
        let load = async {
            self.query_opt(
                "read project",
                "SELECT record FROM projects WHERE name = $1",
                &[&name],
            )
            .await?
            .map(|row| project_from(&row))
            .transpose()
        };
        self.cache.project_by_name.read_through(name, load).await
    }

    async fn project_by_uuid(&self, uuid: Uuid) -> StoreResult<Option<Project>> {
        let load = async {
            self.query_opt(
                "read project",
                "SELECT record FROM projects WHERE uuid = $1",
                &[&uuid],
            )
            .await?
            .map(|row| project_from(&row))
            .transpose()
        };
        self.cache.project_by_uuid.read_through(&uuid, load).await
    }

    async fn list_projects(&self) -> StoreResult<Vec<Project>> {
        self.query(
            "list projects",
            "SELECT record FROM projects ORDER BY seq",
            &[],
        )
        .await?
        .iter()
        .map(project_from)
        .collect()
    }

    async fn update_project(&self, project: Project) -> WriteResult<()> {
        let result = async {
            let client = self.client().await?;
            let r = client
                .execute(
                    "UPDATE projects SET name = $2, record = $3 WHERE uuid = $1",
                    &[&project.uuid, &project.name, &Json(&project)],
                )
                .await;
            Ok(classify("update project", r)?.and_then(|n| {
                if n == 0 {
                    Err(Conflict::NotFound)
                } else {
                    Ok(())
                }
            }))
        }
        .await;
        self.changed(&[Kind::Projects]).await?;
        result
    }

    async fn delete_project(&self, uuid: Uuid) -> WriteResult<Vec<Topic>> {
        let result = async {
            let context = "delete project";
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(fail(context))?;
            if tx
                .query_opt(
                    "SELECT 1 FROM projects WHERE uuid = $1 FOR UPDATE",
                    &[&uuid],
                )
                .await
                .map_err(fail(context))?
                .is_none()
            {
                return Ok(Err(Conflict::NotFound));
            }
            let rows = tx
                .query(
                    "DELETE FROM topics WHERE project = $1 RETURNING seq, record",
                    &[&uuid],
                )
                .await
                .map_err(fail(context))?;
            let mut topics: Vec<Topic> = rows_to(&rows)?;
            topics.sort_by_key(|t| t.seq);
            // Subscriptions, schemas and daily counts go by cascade.
            tx.execute("DELETE FROM projects WHERE uuid = $1", &[&uuid])
                .await
                .map_err(fail(context))?;
            tx.commit().await.map_err(fail(context))?;
            Ok(Ok(topics))
        }
        .await;
        self.changed(&[Kind::Projects, Kind::Topics, Kind::Users])
            .await?;
        result
    }

    async fn create_topic(&self, topic: Topic) -> WriteResult<Topic> {
        let sql = insert_named("topics", &[]);
        let record = Json(&topic);
        let params: Params = &[&topic.project, &topic.name, &record];
        self.create(topic.clone(), &sql, params).await
    }

    async fn topic(&self, project: Uuid, name: &str) -> StoreResult<Option<Topic>> {
        self.cache
            .topics
            .read_through(&(project, name.to_owned()), self.get(project, name))
            .await
    }

    async fn list_topics(&self, project: Uuid, page: PageRequest) -> StoreResult<Page<Topic>> {
        self.page(project, page).await
    }

    async fn delete_topic(&self, project: Uuid, name: &str) -> WriteResult<Topic> {
        let result = self.delete(project, name).await;
        self.changed(&[Kind::Topics]).await?;
        result
    }

    async fn create_subscription(&self, sub: Subscription) -> WriteResult<Subscription> {
        let sql = insert_named("subscriptions", &["topic"]);
        let record = Json(&sub);
        let params: Params = &[&sub.project, &sub.name, &record, &sub.topic];
        self.create(sub.clone(), &sql, params).await
    }

    async fn subscription(&self, project: Uuid, name: &str) -> StoreResult<Option<Subscription>> {
        self.get(project, name).await
    }

    async fn list_subscriptions(
        &self,
        project: Uuid,
        page: PageRequest,
    ) -> StoreResult<Page<Subscription>> {
        self.page(project, page).await
    }

    async fn subscriptions_of_topic(&self, project: Uuid, topic: &str) -> StoreResult<Vec<String>> {
        Ok(self
            .query(
                "list subscriptions",
                "SELECT name FROM subscriptions WHERE project = $1 AND topic = $2 ORDER BY seq",
                &[&project, &topic],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect())
    }

    async fn delete_subscription(&self, project: Uuid, name: &str) -> WriteResult<Subscription> {
        let deleted = self.delete(project, name).await?;
        if deleted.is_ok() {
            self.announce_cursor(project, name).await?;
        }
        Ok(deleted)
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
        let mut moved = false;
        let outcome = self
            .modify(project, name, durability, |sub: &mut Subscription| {
                let mut cursor = sub.cursor;
                update(&mut cursor)?;
                moved = cursor.offset != sub.cursor.offset;
                sub.cursor = cursor;
                Ok(cursor)
            })
            .await?;
        // Acks and seeks wake streams on other nodes; pulls move nothing.
        if moved {
            self.announce_cursor(project, name).await?;
        }
        Ok(outcome.ok_or(Conflict::NotFound))
    }

    fn cursor_events(&self) -> Option<tokio::sync::broadcast::Receiver<(Uuid, String)>> {
        Some(self.events.subscribe())
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
                    let applied = sub.apply_settings(change);
                    (sub.clone(), applied)
                },
            )
            .await?;
        Ok(outcome.ok_or(Conflict::NotFound))
    }

    async fn create_schema(&self, schema: Schema) -> WriteResult<Schema> {
        let sql = insert_named("schemas", &["uuid"]);
        let record = Json(&schema);
        let params: Params = &[&schema.project, &schema.name, &record, &schema.uuid];
        self.create(schema.clone(), &sql, params).await
    }

    async fn schema(&self, project: Uuid, name: &str) -> StoreResult<Option<Schema>> {
        self.get(project, name).await
    }

    async fn schema_by_uuid(&self, project: Uuid, uuid: Uuid) -> StoreResult<Option<Schema>> {
        self.query_opt(
            "read schema",
            "SELECT seq, record FROM schemas WHERE project = $1 AND uuid = $2 ORDER BY seq LIMIT 1",
            &[&project, &uuid],
        )
        .await?
        .map(|row| Schema::from_row(&row))
        .transpose()
    }

    async fn list_schemas(&self, project: Uuid) -> StoreResult<Vec<Schema>> {
        let rows = self
            .query(
                "list schemas",
                "SELECT seq, record FROM schemas WHERE project = $1 ORDER BY seq",
                &[&project],
            )
            .await?;
        rows_to(&rows)
    }

    async fn update_schema(&self, project: Uuid, name: &str, schema: Schema) -> WriteResult<()> {
        let client = self.client().await?;
        let r = client
            .execute(
                "UPDATE schemas SET name = $3, uuid = $4, \
                 record = jsonb_set($5::jsonb, '{seq}', to_jsonb(seq)) \
                 WHERE project = $1 AND name = $2",
                &[&project, &name, &schema.name, &schema.uuid, &Json(&schema)],
            )
            .await;
        Ok(classify("update schema", r)?.and_then(|n| {
            if n == 0 {
                Err(Conflict::NotFound)
            } else {
                Ok(())
            }
        }))
    }

    async fn delete_schema(&self, project: Uuid, name: &str) -> WriteResult<Schema> {
        let result = async {
            let context = "delete schema";
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(fail(context))?;
            let Some(row) = tx
                .query_opt(
                    "DELETE FROM schemas WHERE project = $1 AND name = $2 RETURNING seq, record",
                    &[&project, &name],
                )
                .await
                .map_err(fail(context))?
            else {
                return Ok(Err(Conflict::NotFound));
            };
            let schema = Schema::from_row(&row)?;
            // Detach it from every topic in the same transaction.
            tx.execute(
                "UPDATE topics SET record = jsonb_set(record, '{schema}', 'null'::jsonb) \
                 WHERE project = $1 AND record @> $2::jsonb",
                &[&project, &Json(json!({ "schema": schema.uuid }))],
            )
            .await
            .map_err(fail(context))?;
            tx.commit().await.map_err(fail(context))?;
            Ok(Ok(schema))
        }
        .await;
        self.changed(&[Kind::Topics]).await?;
        result
    }

    async fn set_topic_schema(
        &self,
        project: Uuid,
        topic: &str,
        schema: Option<Uuid>,
    ) -> WriteResult<()> {
        let result = self
            .set(project, topic, |t: &mut Topic| t.schema = schema)
            .await;
        self.changed(&[Kind::Topics]).await?;
        result
    }

    async fn acquire_lease(
        &self,
        key: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<bool> {
        let row = self
            .query_opt(
                "acquire lease",
                "INSERT INTO leases (key, holder, until_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE \
                 SET holder = EXCLUDED.holder, until_ms = EXCLUDED.until_ms \
                 WHERE leases.holder = EXCLUDED.holder OR leases.until_ms <= $4 \
                 RETURNING 1",
                &[&key, &holder, &until_ms, &now_ms],
            )
            .await?;
        Ok(row.is_some())
    }

    async fn release_lease(&self, key: &str, holder: &str) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "DELETE FROM leases WHERE key = $1 AND holder = $2",
                &[&key, &holder],
            )
            .await
            .map_err(fail("release lease"))?;
        Ok(())
    }

    async fn add_usage(&self, deltas: &[UsageDelta]) -> StoreResult<()> {
        if deltas.is_empty() {
            return Ok(());
        }
        let result = async {
            let context = "add usage";
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(fail(context))?;
            // Rows are locked in one global order (topics by project and name, then
            // daily counts by key) so that concurrent flushes never deadlock.
            let mut ordered: Vec<&UsageDelta> = deltas.iter().collect();
            ordered.sort_by(|a, b| (a.project, &a.topic).cmp(&(b.project, &b.topic)));
            let mut projects = HashMap::<Uuid, bool>::new();
            let mut days = BTreeMap::<(Uuid, &str, i32), u64>::new();
            for delta in ordered {
                let exists = match projects.get(&delta.project) {
                    Some(&exists) => exists,
                    None => {
                        // A key-share lock keeps the project (and so the foreign
                        // keys of the counters) until commit.
                        let exists = tx
                            .query_opt(
                                "SELECT 1 FROM projects WHERE uuid = $1 FOR KEY SHARE",
                                &[&delta.project],
                            )
                            .await
                            .map_err(fail(context))?
                            .is_some();
                        projects.insert(delta.project, exists);
                        exists
                    }
                };
                if !exists {
                    continue;
                }
                if let Some(row) = tx
                    .query_opt(
                        "SELECT seq, record FROM topics WHERE project = $1 AND name = $2 FOR UPDATE",
                        &[&delta.project, &delta.topic],
                    )
                    .await
                    .map_err(fail(context))?
                {
                    let mut topic = Topic::from_row(&row)?;
                    if topic.log_id == delta.log_id {
                        topic.published.absorb(&delta.published);
                        tx.execute(
                            "UPDATE topics SET record = $2 WHERE seq = $1",
                            &[&(topic.seq as i64), &Json(&topic)],
                        )
                        .await
                        .map_err(fail(context))?;
                    }
                }
                for &(day, count) in &delta.days {
                    let slot = days
                        .entry((delta.project, delta.topic.as_str(), day))
                        .or_default();
                    *slot = slot.saturating_add(count);
                }
            }
            for ((project, topic, day), count) in days {
                let count = i64::try_from(count).unwrap_or(i64::MAX);
                tx.execute(
                    "INSERT INTO daily_counts (project, topic, day, count) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (project, topic, day) \
                     DO UPDATE SET count = daily_counts.count + EXCLUDED.count",
                    &[&project, &topic, &day, &count],
                )
                .await
                .map_err(fail(context))?;
            }
            tx.commit().await.map_err(fail(context))
        }
        .await;
        self.changed(&[Kind::Topics]).await?;
        result
    }

    async fn daily_counts(
        &self,
        project: Uuid,
        topic: Option<&str>,
        days: std::ops::RangeInclusive<i32>,
    ) -> StoreResult<Vec<(i32, u64)>> {
        let rows = self
            .query(
                "read daily counts",
                "SELECT day, sum(count)::bigint FROM daily_counts \
                 WHERE project = $1 AND ($2::text IS NULL OR topic = $2) \
                 AND day BETWEEN $3 AND $4 \
                 GROUP BY day ORDER BY day DESC",
                &[&project, &topic, days.start(), days.end()],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let count: i64 = row.get(1);
                (row.get(0), count as u64)
            })
            .collect())
    }

    async fn put_node_sample(&self, sample: NodeSample) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO node_samples (host, cpu, mem) VALUES ($1, $2, $3) \
                 ON CONFLICT (host) DO UPDATE SET cpu = EXCLUDED.cpu, mem = EXCLUDED.mem",
                &[&sample.host, &sample.cpu_percent, &sample.memory_percent],
            )
            .await
            .map_err(fail("record node sample"))?;
        Ok(())
    }

    async fn node_samples(&self) -> StoreResult<Vec<NodeSample>> {
        Ok(self
            .query(
                "read node samples",
                "SELECT host, cpu, mem FROM node_samples ORDER BY host",
                &[],
            )
            .await?
            .iter()
            .map(|row| NodeSample {
                host: row.get(0),
                cpu_percent: row.get(1),
                memory_percent: row.get(2),
            })
            .collect())
    }

    async fn set_topic_acl(&self, project: Uuid, name: &str, acl: Vec<Uuid>) -> WriteResult<()> {
        let result = self.set(project, name, |t: &mut Topic| t.acl = acl).await;
        self.changed(&[Kind::Topics]).await?;
        result
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

    async fn create_user(&self, user: User) -> WriteResult<User> {
        let client = self.client().await?;
        let r = client
            .query_one(
                "INSERT INTO users (seq, uuid, name, token, record) \
                 SELECT s, $1, $2, $3, jsonb_set($4::jsonb, '{seq}', to_jsonb(s)) \
                 FROM nextval(pg_get_serial_sequence('users', 'seq')) AS s RETURNING seq",
                &[&user.uuid, &user.name, &user.token, &Json(&user)],
            )
            .await;
        let row = match classify("create user", r)? {
            Ok(row) => row,
            Err(c) => return Ok(Err(c)),
        };
        let mut user = user;
        user.seq = seq_of(&row)?;
        Ok(Ok(user))
    }

    async fn user_by_name(&self, name: &str) -> StoreResult<Option<User>> {
        self.user_where("name", &name).await
    }

    async fn user_by_token(&self, token: &str) -> StoreResult<Option<User>> {
        self.cache
            .user_by_token
            .read_through(token, self.user_where("token", &token))
            .await
    }

    async fn user_by_uuid(&self, uuid: Uuid) -> StoreResult<Option<User>> {
        self.user_where("uuid", &uuid).await
    }

    async fn list_users(
        &self,
        project: Option<Uuid>,
        page: PageRequest,
    ) -> StoreResult<Page<User>> {
        let member = project.map(|p| Json(json!([{ "project": p }])));
        let (rows, next, total) = self
            .page_rows(
                "list users",
                "users",
                "($1::jsonb IS NULL OR record -> 'projects' @> $1::jsonb)",
                &[&member],
                page,
            )
            .await?;
        Ok(Page {
            items: rows_to(&rows)?,
            next,
            total,
        })
    }

    async fn update_user(&self, user: User) -> WriteResult<()> {
        let result = async {
            let client = self.client().await?;
            let r = client
                .execute(
                    "UPDATE users SET name = $2, token = $3, \
                     record = jsonb_set($4::jsonb, '{seq}', to_jsonb(seq)) WHERE uuid = $1",
                    &[&user.uuid, &user.name, &user.token, &Json(&user)],
                )
                .await;
            Ok(classify("update user", r)?.and_then(|n| {
                if n == 0 {
                    Err(Conflict::NotFound)
                } else {
                    Ok(())
                }
            }))
        }
        .await;
        self.changed(&[Kind::Users]).await?;
        result
    }

    async fn add_membership(&self, user: Uuid, project: Uuid) -> WriteResult<()> {
        let result = async {
            let context = "add membership";
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(fail(context))?;
            let Some(row) = tx
                .query_opt(
                    "SELECT seq, record FROM users WHERE uuid = $1 FOR UPDATE",
                    &[&user],
                )
                .await
                .map_err(fail(context))?
            else {
                return Ok(Err(Conflict::NotFound));
            };
            let mut current = User::from_row(&row)?;
            if current.membership(project).is_some() {
                return Ok(Ok(()));
            }
            current.projects.push(Membership {
                project,
                roles: Vec::new(),
            });
            tx.execute(
                "UPDATE users SET record = $2 WHERE uuid = $1",
                &[&user, &Json(&current)],
            )
            .await
            .map_err(fail(context))?;
            tx.commit().await.map_err(fail(context))?;
            Ok(Ok(()))
        }
        .await;
        self.changed(&[Kind::Users]).await?;
        result
    }

    async fn delete_user(&self, uuid: Uuid) -> WriteResult<User> {
        let result = async {
            let context = "delete user";
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(fail(context))?;
            let Some(row) = tx
                .query_opt(
                    "DELETE FROM users WHERE uuid = $1 RETURNING seq, record",
                    &[&uuid],
                )
                .await
                .map_err(fail(context))?
            else {
                return Ok(Err(Conflict::NotFound));
            };
            let user = User::from_row(&row)?;
            // Every ACL entry naming the user goes in the same transaction.
            let member = Json(json!({ "acl": [uuid] }));
            let entry = Json(json!(uuid));
            for table in ["topics", "subscriptions"] {
                let sql = format!(
                    "UPDATE {table} SET record = jsonb_set(record, '{{acl}}', COALESCE(( \
                         SELECT jsonb_agg(e ORDER BY i) \
                         FROM jsonb_array_elements(record -> 'acl') WITH ORDINALITY AS a(e, i) \
                         WHERE e <> $2::jsonb), '[]'::jsonb)) \
                     WHERE record @> $1::jsonb"
                );
                tx.execute(&sql, &[&member, &entry])
                    .await
                    .map_err(fail(context))?;
            }
            tx.commit().await.map_err(fail(context))?;
            Ok(Ok(user))
        }
        .await;
        self.changed(&[Kind::Users, Kind::Topics]).await?;
        result
    }

    async fn create_registration(&self, r: Registration) -> WriteResult<Registration> {
        let client = self.client().await?;
        let result = client
            .query_one(
                "INSERT INTO registrations (seq, uuid, record) \
                 SELECT s, $1, jsonb_set($2::jsonb, '{seq}', to_jsonb(s)) \
                 FROM nextval(pg_get_serial_sequence('registrations', 'seq')) AS s \
                 RETURNING seq",
                &[&r.uuid, &Json(&r)],
            )
            .await;
        let row = match classify("create registration", result)? {
            Ok(row) => row,
            Err(c) => return Ok(Err(c)),
        };
        let mut r = r;
        r.seq = seq_of(&row)?;
        Ok(Ok(r))
    }

    async fn registration(&self, uuid: Uuid) -> StoreResult<Option<Registration>> {
        self.query_opt(
            "read registration",
            "SELECT seq, record FROM registrations WHERE uuid = $1",
            &[&uuid],
        )
        .await?
        .map(|row| Registration::from_row(&row))
        .transpose()
    }

    async fn list_registrations(&self) -> StoreResult<Vec<Registration>> {
        let rows = self
            .query(
                "list registrations",
                "SELECT seq, record FROM registrations ORDER BY seq",
                &[],
            )
            .await?;
        rows_to(&rows)
    }

    async fn update_registration(&self, r: Registration) -> WriteResult<()> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE registrations SET record = jsonb_set($2::jsonb, '{seq}', to_jsonb(seq)) \
                 WHERE uuid = $1",
                &[&r.uuid, &Json(&r)],
            )
            .await
            .map_err(fail("update registration"))?;
        Ok(if n == 0 {
            Err(Conflict::NotFound)
        } else {
            Ok(())
        })
    }

    async fn delete_registration(&self, uuid: Uuid) -> WriteResult<()> {
        let n = self
            .client()
            .await?
            .execute("DELETE FROM registrations WHERE uuid = $1", &[&uuid])
            .await
            .map_err(fail("delete registration"))?;
        Ok(if n == 0 {
            Err(Conflict::NotFound)
        } else {
            Ok(())
        })
    }
}
