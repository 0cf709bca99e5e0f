//! The conformance suite every storage backend must pass.
//!
//! A backend crate implements [`Backend`] (open a store pair on a directory,
//! close it) and expands [`conformance_tests!`](crate::conformance_tests) in its
//! tests, which generates one `#[tokio::test]` per check below. The checks pin
//! the behaviour the domain relies on: uniqueness, newest-first pagination with
//! stable cursors, cascades, serialized cursor updates, dense atomic offsets,
//! time lookups, wake-ups and persistence across a reopen.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ams_types::Timestamp;
use async_trait::async_trait;
use uuid::Uuid;

use crate::model::{
    Cursor, CursorRefusal, Membership, NodeSample, Project, Registration, RegistrationStatus,
    Subscription, Tally, Topic, User,
};
use crate::storage::{
    Conflict, LogBounds, LogRef, MessageLog, MetadataStore, NewMessage, PageRequest, UsageDelta,
    WriteDurability,
};

/// A backend under test.
#[async_trait]
pub trait Backend: Send + Sync {
    /// Opens (or reopens) the backend's stores on `dir`.
    async fn open(&self, dir: &Path) -> (Arc<dyn MetadataStore>, Arc<dyn MessageLog>);
    /// Flushes and releases the stores so that `dir` can be opened again.
    async fn close(&self, meta: Arc<dyn MetadataStore>, log: Arc<dyn MessageLog>);
}

/// Generates one test per conformance check for a [`Backend`] expression.
#[macro_export]
macro_rules! conformance_tests {
    ($backend:expr) => {
        $crate::conformance_tests!(@each $backend;
            projects, topics_and_pagination, subscriptions, cursor_updates_are_serialized,
            persistence_across_reopen, log_offsets_are_dense_under_concurrency,
            log_reads_and_bounds, log_time_lookup, log_wakeups, log_delete_and_list,
            users, deleting_a_user_scrubs_acls, registrations, identity_persists_across_reopen,
            subscription_settings_updates, leases, schemas, memberships_added_atomically,
            usage_counters);
    };
    (@each $backend:expr; $($check:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let dir = tempfile::tempdir().unwrap();
                $crate::conformance::$check(&$backend, dir.path()).await;
            }
        )*
        /// The generated tests cover every check of [`run_all`].
        #[test]
        fn every_check_has_a_test() {
            let generated = [$(stringify!($check)),*];
            assert_eq!(generated.as_slice(), $crate::conformance::CHECKS);
        }
    };
}

macro_rules! checks {
    ($($check:ident),* $(,)?) => {
        /// The names of every check, in the order [`run_all`] runs them.
        pub const CHECKS: &[&str] = &[$(stringify!($check)),*];

        /// Runs every check one after the other, each on a fresh temporary
        /// directory, and returns the names of those that failed (a failing
        /// check panics; its message is printed). For backends whose external
        /// servers are started once per test run rather than once per check.
        pub async fn run_all<B: Backend>(backend: &B) -> Vec<&'static str> {
            run_matching(backend, |_| true).await
        }

        /// Like [`run_all`], for the checks whose names `wanted` accepts.
        pub async fn run_matching<B: Backend>(
            backend: &B,
            wanted: impl Fn(&str) -> bool,
        ) -> Vec<&'static str> {
            use futures::FutureExt as _;
            let mut failed = Vec::new();
            $(
                if wanted(stringify!($check)) {
                    let dir = tempfile::tempdir().unwrap();
                    let started = std::time::Instant::now();
                    let outcome = std::panic::AssertUnwindSafe($check(backend, dir.path()))
                        .catch_unwind()
                        .await;
                    eprintln!("{}: {:.2?}", stringify!($check), started.elapsed());
                    if outcome.is_err() {
                        failed.push(stringify!($check));
                    }
                }
            )*
            failed
        }
    };
}

checks![
    projects,
    topics_and_pagination,
    subscriptions,
    cursor_updates_are_serialized,
    persistence_across_reopen,
    log_offsets_are_dense_under_concurrency,
    log_reads_and_bounds,
    log_time_lookup,
    log_wakeups,
    log_delete_and_list,
    users,
    deleting_a_user_scrubs_acls,
    registrations,
    identity_persists_across_reopen,
    subscription_settings_updates,
    leases,
    schemas,
    memberships_added_atomically,
    usage_counters,
];

fn project(name: &str) -> Project {
    Project {
        uuid: Uuid::new_v4(),
        name: name.into(),
        description: String::new(),
        created_on: Timestamp::from_secs(1),
        modified_on: Timestamp::from_secs(1),
        created_by: None,
    }
}

fn topic(project: Uuid, name: &str) -> Topic {
    Topic {
        project,
        name: name.into(),
        log_id: Uuid::new_v4(),
        created_on: Timestamp::from_secs(1),
        seq: 0,
        acl: Vec::new(),
        schema: None,
        published: Default::default(),
    }
}

fn subscription(project: Uuid, name: &str, topic: &str) -> Subscription {
    Subscription {
        project,
        name: name.into(),
        topic: topic.into(),
        ack_deadline: 10,
        created_on: Timestamp::from_secs(1),
        seq: 0,
        cursor: Cursor::at(0),
        acl: Vec::new(),
        push: None,
        dead_letter: None,
    }
}

/// Creates project `p` with topic `t` and subscription `s` on it.
async fn seed(meta: &dyn MetadataStore, t: &str, s: &str) -> Project {
    let p = project("p");
    meta.create_project(p.clone()).await.unwrap().unwrap();
    meta.create_topic(topic(p.uuid, t)).await.unwrap().unwrap();
    meta.create_subscription(subscription(p.uuid, s, t))
        .await
        .unwrap()
        .unwrap();
    p
}

fn log_ref() -> LogRef {
    LogRef {
        id: Uuid::new_v4(),
        project: Uuid::new_v4(),
        topic: "t".into(),
    }
}

/// A fresh log, created as the domain creates a topic's.
async fn new_log(log: &dyn MessageLog) -> LogRef {
    let id = log_ref();
    log.create(&id).await.unwrap();
    id
}

/// The identities of the logs `log` lists, sorted.
async fn listed(log: &dyn MessageLog) -> Vec<crate::storage::LogKey> {
    let naming = log.naming();
    let mut keys: Vec<_> = log
        .list()
        .await
        .unwrap()
        .iter()
        .map(|l| l.key(naming))
        .collect();
    keys.sort_by_key(|k| format!("{k:?}"));
    keys
}

fn msg(data: &str) -> NewMessage {
    NewMessage {
        attributes: vec![("k".into(), data.into())],
        data: data.into(),
    }
}

/// Project uniqueness, lookups, listing order, rename and cascade delete.
pub async fn projects(b: &impl Backend, dir: &Path) {
    let (meta, _log) = b.open(dir).await;
    let a = project("a");
    let z = project("z");
    assert_eq!(meta.create_project(z.clone()).await.unwrap(), Ok(()));
    assert_eq!(meta.create_project(a.clone()).await.unwrap(), Ok(()));
    assert_eq!(
        meta.create_project(project("a")).await.unwrap(),
        Err(Conflict::AlreadyExists)
    );
    assert_eq!(meta.project_by_name("a").await.unwrap(), Some(a.clone()));
    assert_eq!(meta.project_by_uuid(z.uuid).await.unwrap(), Some(z.clone()));
    assert_eq!(meta.project_by_name("nope").await.unwrap(), None);
    let names: Vec<_> = meta
        .list_projects()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["z", "a"], "oldest first");

    let mut renamed = a.clone();
    renamed.name = "z".into();
    assert_eq!(
        meta.update_project(renamed.clone()).await.unwrap(),
        Err(Conflict::AlreadyExists)
    );
    renamed.name = "b".into();
    assert_eq!(meta.update_project(renamed.clone()).await.unwrap(), Ok(()));
    assert_eq!(meta.project_by_name("a").await.unwrap(), None);
    assert_eq!(
        meta.project_by_name("b").await.unwrap(),
        Some(renamed.clone())
    );
    assert_eq!(
        meta.update_project(project("ghost")).await.unwrap(),
        Err(Conflict::NotFound)
    );

    let t = meta
        .create_topic(topic(a.uuid, "t"))
        .await
        .unwrap()
        .unwrap();
    meta.create_subscription(subscription(a.uuid, "s", "t"))
        .await
        .unwrap()
        .unwrap();
    let deleted = meta.delete_project(a.uuid).await.unwrap().unwrap();
    assert_eq!(deleted, vec![t]);
    assert_eq!(meta.project_by_uuid(a.uuid).await.unwrap(), None);
    assert_eq!(meta.topic(a.uuid, "t").await.unwrap(), None);
    assert_eq!(meta.subscription(a.uuid, "s").await.unwrap(), None);
    assert_eq!(
        meta.delete_project(a.uuid).await.unwrap(),
        Err(Conflict::NotFound)
    );
    // The name is free again.
    assert_eq!(meta.create_project(project("b")).await.unwrap(), Ok(()));
}

/// Topic uniqueness and newest-first pagination with inclusive cursors.
pub async fn topics_and_pagination(b: &impl Backend, dir: &Path) {
    let (meta, _log) = b.open(dir).await;
    let p = project("p");
    meta.create_project(p.clone()).await.unwrap().unwrap();
    assert_eq!(
        meta.create_topic(topic(Uuid::new_v4(), "t")).await.unwrap(),
        Err(Conflict::NotFound),
        "topic in a missing project"
    );
    for name in ["t0", "t1", "t2", "t3", "t4"] {
        meta.create_topic(topic(p.uuid, name))
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(
        meta.create_topic(topic(p.uuid, "t2")).await.unwrap(),
        Err(Conflict::AlreadyExists)
    );
    let all = meta
        .list_topics(p.uuid, PageRequest::default())
        .await
        .unwrap();
    let names: Vec<_> = all.items.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["t4", "t3", "t2", "t1", "t0"]);
    assert_eq!((all.next, all.total), (None, 5));

    let first = meta
        .list_topics(
            p.uuid,
            PageRequest {
                size: Some(2),
                from: None,
                acl_member: None,
            },
        )
        .await
        .unwrap();
    let names: Vec<_> = first.items.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["t4", "t3"]);
    assert_eq!(first.total, 5);
    let second = meta
        .list_topics(
            p.uuid,
            PageRequest {
                size: Some(2),
                from: first.next,
                acl_member: None,
            },
        )
        .await
        .unwrap();
    let names: Vec<_> = second.items.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["t2", "t1"]);
    let last = meta
        .list_topics(
            p.uuid,
            PageRequest {
                size: Some(2),
                from: second.next,
                acl_member: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(last.items.len(), 1);
    assert_eq!(last.next, None);

    let gone = meta.delete_topic(p.uuid, "t2").await.unwrap().unwrap();
    assert_eq!(gone.name, "t2");
    assert_eq!(
        meta.delete_topic(p.uuid, "t2").await.unwrap(),
        Err(Conflict::NotFound)
    );
    assert_eq!(
        meta.list_topics(p.uuid, PageRequest::default())
            .await
            .unwrap()
            .total,
        4
    );
    let empty = meta
        .list_topics(Uuid::new_v4(), PageRequest::default())
        .await
        .unwrap();
    assert_eq!((empty.items.len(), empty.next, empty.total), (0, None, 0));
}

/// Subscription uniqueness, listing, topic membership, deadlines and deletion.
pub async fn subscriptions(b: &impl Backend, dir: &Path) {
    let (meta, _log) = b.open(dir).await;
    let p = project("p");
    meta.create_project(p.clone()).await.unwrap().unwrap();
    meta.create_subscription(subscription(p.uuid, "s1", "t"))
        .await
        .unwrap()
        .unwrap();
    meta.create_subscription(subscription(p.uuid, "s2", "u"))
        .await
        .unwrap()
        .unwrap();
    meta.create_subscription(subscription(p.uuid, "s3", "t"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        meta.create_subscription(subscription(p.uuid, "s1", "u"))
            .await
            .unwrap(),
        Err(Conflict::AlreadyExists)
    );
    assert_eq!(
        meta.subscriptions_of_topic(p.uuid, "t").await.unwrap(),
        ["s1", "s3"]
    );
    let page = meta
        .list_subscriptions(p.uuid, PageRequest::default())
        .await
        .unwrap();
    let names: Vec<_> = page.items.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["s3", "s2", "s1"]);
    assert_eq!(
        meta.set_ack_deadline(p.uuid, "s2", 600).await.unwrap(),
        Ok(())
    );
    assert_eq!(
        meta.subscription(p.uuid, "s2")
            .await
            .unwrap()
            .unwrap()
            .ack_deadline,
        600
    );
    assert_eq!(
        meta.set_ack_deadline(p.uuid, "nope", 5).await.unwrap(),
        Err(Conflict::NotFound)
    );
    assert_eq!(
        meta.delete_subscription(p.uuid, "s1")
            .await
            .unwrap()
            .unwrap()
            .name,
        "s1"
    );
    assert_eq!(
        meta.delete_subscription(p.uuid, "s1").await.unwrap(),
        Err(Conflict::NotFound)
    );
    assert_eq!(
        meta.subscriptions_of_topic(p.uuid, "t").await.unwrap(),
        ["s3"]
    );
}

/// Concurrent cursor updates behave as if serialized; a refusal changes nothing.
pub async fn cursor_updates_are_serialized(b: &impl Backend, dir: &Path) {
    let (meta, _log) = b.open(dir).await;
    let p = project("p");
    meta.create_project(p.clone()).await.unwrap().unwrap();
    meta.create_subscription(subscription(p.uuid, "s", "t"))
        .await
        .unwrap()
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let meta = meta.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    meta.update_cursor(p.uuid, "s", WriteDurability::Relaxed, &mut |c| {
                        c.offset += 1;
                        Ok(())
                    })
                    .await
                    .unwrap()
                    .unwrap()
                    .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let s = meta.subscription(p.uuid, "s").await.unwrap().unwrap();
    assert_eq!(s.cursor.offset, 400);
    let refused = meta
        .update_cursor(p.uuid, "s", WriteDurability::Tier, &mut |c| {
            c.offset = 0;
            Err(CursorRefusal::WrongAck)
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(refused, Err(CursorRefusal::WrongAck));
    assert_eq!(
        meta.subscription(p.uuid, "s")
            .await
            .unwrap()
            .unwrap()
            .cursor
            .offset,
        400
    );
    let missing = meta
        .update_cursor(p.uuid, "nope", WriteDurability::Tier, &mut |_| Ok(()))
        .await
        .unwrap();
    assert_eq!(missing, Err(Conflict::NotFound));
}

/// Everything written survives closing and reopening, and new items still list
/// as newest.
pub async fn persistence_across_reopen(b: &impl Backend, dir: &Path) {
    let (log_id, p, cursor) = {
        let (meta, log) = b.open(dir).await;
        let log_id = new_log(log.as_ref()).await;
        let p = seed(meta.as_ref(), "old", "s").await;
        let cursor = meta
            .update_cursor(p.uuid, "s", WriteDurability::Tier, &mut |c| {
                c.record_pull(0, 0, 3, 77)?;
                c.acknowledge(1, 10, 77)
            })
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        log.append(&log_id, vec![msg("a"), msg("b")], 5_000_000)
            .await
            .unwrap();
        b.close(meta, log).await;
        (log_id, p, cursor)
    };
    let (meta, log) = b.open(dir).await;
    assert_eq!(meta.project_by_name("p").await.unwrap(), Some(p.clone()));
    assert_eq!(
        meta.subscription(p.uuid, "s")
            .await
            .unwrap()
            .unwrap()
            .cursor,
        cursor
    );
    assert_eq!(cursor, Cursor::at(2));
    meta.create_topic(topic(p.uuid, "new"))
        .await
        .unwrap()
        .unwrap();
    let names: Vec<_> = meta
        .list_topics(p.uuid, PageRequest::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["new", "old"]);
    assert_eq!(
        log.bounds(&log_id).await.unwrap(),
        LogBounds { min: 0, max: 2 }
    );
    let read = log.read(&log_id, 0, 10, usize::MAX).await.unwrap();
    assert_eq!(
        read.iter().map(|m| m.data.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(read[1].attributes, vec![("k".to_owned(), "b".to_owned())]);
    assert_eq!(read[0].publish_time_ns, 5_000_000);
    let next = log
        .append(&log_id, vec![msg("c")], 6_000_000)
        .await
        .unwrap();
    assert_eq!(next.first_offset, 2);
}

/// Concurrent appends get dense, unique, contiguous offsets.
pub async fn log_offsets_are_dense_under_concurrency(b: &impl Backend, dir: &Path) {
    let (_meta, log) = b.open(dir).await;
    let id = new_log(log.as_ref()).await;
    let tasks: Vec<_> = (0..16)
        .map(|task| {
            let log = log.clone();
            let id = id.clone();
            tokio::spawn(async move {
                let mut firsts = Vec::new();
                for i in 0..20 {
                    let batch = (0..3).map(|j| msg(&format!("{task}-{i}-{j}"))).collect();
                    firsts.push(log.append(&id, batch, 1).await.unwrap().first_offset);
                }
                (task, firsts)
            })
        })
        .collect();
    let mut seen = std::collections::BTreeMap::new();
    for t in tasks {
        let (task, firsts) = t.await.unwrap();
        for (i, first) in firsts.into_iter().enumerate() {
            assert_eq!(first % 3, 0, "batches are contiguous");
            assert!(
                seen.insert(first, format!("{task}-{i}")).is_none(),
                "duplicate offset"
            );
        }
    }
    assert_eq!(seen.len(), 320);
    assert_eq!(log.bounds(&id).await.unwrap().max, 960);
    let all = log.read(&id, 0, 2000, usize::MAX).await.unwrap();
    assert_eq!(all.len(), 960);
    for (i, m) in all.iter().enumerate() {
        assert_eq!(m.offset, i as u64);
        let owner = &seen[&(m.offset - m.offset % 3)];
        assert_eq!(m.data, format!("{owner}-{}", m.offset % 3));
    }
}

/// Reads honour start, count and byte caps; an unknown log is empty.
pub async fn log_reads_and_bounds(b: &impl Backend, dir: &Path) {
    let (_meta, log) = b.open(dir).await;
    let id = new_log(log.as_ref()).await;
    assert_eq!(log.bounds(&id).await.unwrap(), LogBounds::default());
    assert!(log.read(&id, 0, 10, usize::MAX).await.unwrap().is_empty());
    let big = "x".repeat(1000);
    let batch: Vec<_> = (0..10).map(|_| msg(&big)).collect();
    let a = log.append(&id, batch, 10).await.unwrap();
    assert_eq!(a.first_offset, 0);
    let empty_data = NewMessage {
        attributes: vec![],
        data: String::new(),
    };
    log.append(&id, vec![empty_data.clone()], 11).await.unwrap();
    assert_eq!(
        log.bounds(&id).await.unwrap(),
        LogBounds { min: 0, max: 11 }
    );
    let r = log.read(&id, 4, 3, usize::MAX).await.unwrap();
    assert_eq!(r.iter().map(|m| m.offset).collect::<Vec<_>>(), [4, 5, 6]);
    let r = log.read(&id, 0, 100, 2500).await.unwrap();
    assert!((1..=3).contains(&r.len()), "byte cap honoured: {}", r.len());
    let r = log.read(&id, 0, 100, 1).await.unwrap();
    assert_eq!(r.len(), 1, "at least one message even past the byte cap");
    let r = log.read(&id, 10, 5, usize::MAX).await.unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].data.as_str(), r[0].attributes.len()), ("", 0));
    assert!(log.read(&id, 11, 5, usize::MAX).await.unwrap().is_empty());
    // Many tiny messages are bounded by the byte budget too.
    let tiny = new_log(log.as_ref()).await;
    let empties = (0..500)
        .map(|_| NewMessage {
            attributes: vec![],
            data: String::new(),
        })
        .collect();
    log.append(&tiny, empties, 1).await.unwrap();
    let r = log.read(&tiny, 0, 1_000_000, 8192).await.unwrap();
    assert!(
        !r.is_empty() && r.len() < 500,
        "{} empty messages for 8 KiB",
        r.len()
    );
    assert!(log.read(&id, 500, 5, usize::MAX).await.unwrap().is_empty());
}

/// Publish times are monotonic and time lookups find the first message at or
/// after a millisecond.
pub async fn log_time_lookup(b: &impl Backend, dir: &Path) {
    let (_meta, log) = b.open(dir).await;
    let id = new_log(log.as_ref()).await;
    assert_eq!(log.offset_at_time(&id, 0).await.unwrap(), None);
    let ms = 1_000_000;
    log.append(&id, vec![msg("a"), msg("b")], 1_000 * ms)
        .await
        .unwrap();
    log.append(&id, vec![msg("c")], 2_000 * ms + 500)
        .await
        .unwrap();
    // A publish time earlier than the previous batch's is raised to it.
    let late = log.append(&id, vec![msg("d")], 1_500 * ms).await.unwrap();
    assert_eq!(late.publish_time_ns, 2_000 * ms + 500);
    log.append(&id, vec![msg("e")], 3_000 * ms).await.unwrap();
    assert_eq!(log.offset_at_time(&id, 0).await.unwrap(), Some(0));
    assert_eq!(log.offset_at_time(&id, 1_000).await.unwrap(), Some(0));
    assert_eq!(log.offset_at_time(&id, 1_001).await.unwrap(), Some(2));
    assert_eq!(
        log.offset_at_time(&id, 2_000).await.unwrap(),
        Some(2),
        "ms truncation"
    );
    assert_eq!(log.offset_at_time(&id, 2_001).await.unwrap(), Some(4));
    assert_eq!(log.offset_at_time(&id, 3_000).await.unwrap(), Some(4));
    assert_eq!(log.offset_at_time(&id, 3_001).await.unwrap(), None);
    let read = log.read(&id, 0, 10, usize::MAX).await.unwrap();
    let times: Vec<_> = read.iter().map(|m| m.publish_time_ns).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
}

/// A waiter wakes on append; without one it returns after the timeout.
pub async fn log_wakeups(b: &impl Backend, dir: &Path) {
    let (_meta, log) = b.open(dir).await;
    let id = new_log(log.as_ref()).await;
    let waiter = {
        let log = log.clone();
        let id = id.clone();
        // A long timeout: only the append can end this wait in time.
        tokio::spawn(async move { log.wait_beyond(&id, 0, Duration::from_secs(60)).await })
    };
    tokio::task::yield_now().await;
    log.append(&id, vec![msg("a")], 1).await.unwrap();
    let bounds = tokio::time::timeout(Duration::from_secs(30), waiter)
        .await
        .expect("woken by the append")
        .unwrap()
        .unwrap();
    assert_eq!(bounds.max, 1);
    // Already beyond: returns at once.
    assert_eq!(
        log.wait_beyond(&id, 0, Duration::from_secs(60))
            .await
            .unwrap()
            .max,
        1
    );
    let timed_out = log
        .wait_beyond(&id, 1, Duration::from_millis(20))
        .await
        .unwrap();
    assert_eq!(timed_out.max, 1);
}

/// Deleting a log drops its data; listing names the logs holding data.
pub async fn log_delete_and_list(b: &impl Backend, dir: &Path) {
    let (_meta, log) = b.open(dir).await;
    let (x, y) = (new_log(log.as_ref()).await, new_log(log.as_ref()).await);
    log.append(&x, vec![msg("a")], 1).await.unwrap();
    log.append(&y, vec![msg("b")], 1).await.unwrap();
    let naming = log.naming();
    // Backends on shared servers hold other checks' logs too: look at these two.
    let ours = [x.key(naming), y.key(naming)];
    let listed_ours = || async {
        let mut keys = listed(log.as_ref()).await;
        keys.retain(|k| ours.contains(k));
        keys
    };
    let mut expected = ours.to_vec();
    expected.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(listed_ours().await, expected);
    log.delete(&x).await.unwrap();
    log.delete(&x).await.unwrap();
    assert_eq!(listed_ours().await, vec![y.key(naming)]);
    assert_eq!(log.bounds(&x).await.unwrap(), LogBounds::default());
    assert!(log.read(&x, 0, 10, usize::MAX).await.unwrap().is_empty());
    assert_eq!(log.bounds(&y).await.unwrap().max, 1);
    // A publish racing the deletion must not recreate the log.
    assert!(log.append(&x, vec![msg("late")], 1).await.is_err());
    assert!(!listed_ours().await.contains(&x.key(naming)));
    // A new incarnation under the same name starts empty at offset 0, also
    // where a crash left the old incarnation's log behind (by-topic naming).
    log.append(&y, vec![msg("c")], 2).await.unwrap();
    let again = LogRef {
        id: Uuid::new_v4(),
        ..y.clone()
    };
    log.create(&again).await.unwrap();
    assert_eq!(log.bounds(&again).await.unwrap(), LogBounds::default());
    let first = log.append(&again, vec![msg("new")], 3).await.unwrap();
    assert_eq!(first.first_offset, 0);
}

fn user(name: &str, projects: &[(Uuid, &[&str])]) -> User {
    User {
        uuid: Uuid::new_v4(),
        name: name.into(),
        token: format!("token-of-{name}-{}", Uuid::new_v4()),
        email: format!("{name}@example.org"),
        first_name: String::new(),
        last_name: String::new(),
        organization: String::new(),
        description: String::new(),
        service_roles: Vec::new(),
        projects: projects
            .iter()
            .map(|(p, roles)| Membership {
                project: *p,
                roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            })
            .collect(),
        created_on: Timestamp::from_secs(1),
        modified_on: Timestamp::from_secs(1),
        created_by: None,
        seq: 0,
    }
}

fn registration(name: &str) -> Registration {
    Registration {
        uuid: Uuid::new_v4(),
        name: name.into(),
        first_name: "f".into(),
        last_name: "l".into(),
        organization: "o".into(),
        description: "d".into(),
        email: "e@x".into(),
        status: RegistrationStatus::Pending,
        decline_comment: String::new(),
        activation_token: "a".repeat(64),
        registered_at: Timestamp::from_secs(1),
        modified_by: None,
        modified_at: None,
        seq: 0,
    }
}

/// Users: uniqueness, the three lookups, filtered newest-first pages, updates
/// (rename, token rotation) and deletion.
pub async fn users(b: &impl Backend, dir: &Path) {
    let (meta, _log) = b.open(dir).await;
    let (p, q) = (Uuid::new_v4(), Uuid::new_v4());
    let a = meta
        .create_user(user("a", &[(p, &["consumer"])]))
        .await
        .unwrap()
        .unwrap();
    let bb = meta
        .create_user(user("b", &[(q, &[])]))
        .await
        .unwrap()
        .unwrap();
    let c = meta
        .create_user(user("c", &[(p, &["publisher"]), (q, &["consumer"])]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        meta.create_user(user("a", &[])).await.unwrap(),
        Err(Conflict::AlreadyExists)
    );
    assert_eq!(meta.user_by_name("b").await.unwrap(), Some(bb.clone()));
    assert_eq!(meta.user_by_token(&c.token).await.unwrap(), Some(c.clone()));
    assert_eq!(meta.user_by_uuid(a.uuid).await.unwrap(), Some(a.clone()));
    assert_eq!(meta.user_by_token("nope").await.unwrap(), None);

    let names = |page: crate::storage::Page<User>| -> Vec<String> {
        page.items.into_iter().map(|u| u.name).collect()
    };
    assert_eq!(
        names(meta.list_users(None, PageRequest::default()).await.unwrap()),
        ["c", "b", "a"]
    );
    let of_p = meta
        .list_users(
            Some(p),
            PageRequest {
                size: Some(1),
                from: None,
                acl_member: None,
            },
        )
        .await
        .unwrap();
    assert_eq!((of_p.total, of_p.items[0].name.as_str()), (2, "c"));
    let rest = meta
        .list_users(
            Some(p),
            PageRequest {
                size: Some(1),
                from: of_p.next,
                acl_member: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (names(rest.clone()), rest.next),
        (vec!["a".to_owned()], None)
    );

    let mut renamed = a.clone();
    renamed.name = "b".into();
    assert_eq!(
        meta.update_user(renamed.clone()).await.unwrap(),
        Err(Conflict::AlreadyExists)
    );
    renamed.name = "a2".into();
    renamed.token = "rotated".into();
    assert_eq!(meta.update_user(renamed.clone()).await.unwrap(), Ok(()));
    assert_eq!(meta.user_by_name("a").await.unwrap(), None);
    assert_eq!(
        meta.user_by_token(&a.token).await.unwrap(),
        None,
        "the old token stops working"
    );
    assert_eq!(
        meta.user_by_token("rotated").await.unwrap().unwrap().name,
        "a2"
    );
    assert_eq!(
        meta.user_by_uuid(a.uuid).await.unwrap().unwrap().seq,
        a.seq,
        "keeps its place"
    );
    assert_eq!(
        meta.update_user(user("ghost", &[])).await.unwrap(),
        Err(Conflict::NotFound)
    );

    assert_eq!(meta.delete_user(bb.uuid).await.unwrap().unwrap().name, "b");
    assert_eq!(
        meta.delete_user(bb.uuid).await.unwrap(),
        Err(Conflict::NotFound)
    );
    assert_eq!(meta.user_by_token(&bb.token).await.unwrap(), None);
    assert_eq!(
        meta.list_users(Some(q), PageRequest::default())
            .await
            .unwrap()
            .total,
        1
    );
}

/// ACL replacement, and deleting a user removes it from every ACL.
pub async fn deleting_a_user_scrubs_acls(b: &impl Backend, dir: &Path) {
    let (meta, _log) = b.open(dir).await;
    let p = seed(meta.as_ref(), "t", "s").await;
    let x = meta
        .create_user(user("x", &[(p.uuid, &["publisher"])]))
        .await
        .unwrap()
        .unwrap();
    let y = meta
        .create_user(user("y", &[(p.uuid, &["consumer"])]))
        .await
        .unwrap()
        .unwrap();
    meta.set_topic_acl(p.uuid, "t", vec![y.uuid, x.uuid])
        .await
        .unwrap()
        .unwrap();
    meta.set_subscription_acl(p.uuid, "s", vec![x.uuid])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        meta.topic(p.uuid, "t").await.unwrap().unwrap().acl,
        vec![y.uuid, x.uuid]
    );
    assert_eq!(
        meta.set_topic_acl(p.uuid, "nope", vec![]).await.unwrap(),
        Err(Conflict::NotFound)
    );
    assert_eq!(
        meta.set_subscription_acl(p.uuid, "nope", vec![])
            .await
            .unwrap(),
        Err(Conflict::NotFound)
    );
    meta.delete_user(x.uuid).await.unwrap().unwrap();
    assert_eq!(
        meta.topic(p.uuid, "t").await.unwrap().unwrap().acl,
        vec![y.uuid]
    );
    assert!(
        meta.subscription(p.uuid, "s")
            .await
            .unwrap()
            .unwrap()
            .acl
            .is_empty()
    );
}

/// Registrations: create, look up, list oldest first, update, delete.
pub async fn registrations(b: &impl Backend, dir: &Path) {
    let (meta, _log) = b.open(dir).await;
    let r1 = meta
        .create_registration(registration("r1"))
        .await
        .unwrap()
        .unwrap();
    let r2 = meta
        .create_registration(registration("r2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(meta.registration(r1.uuid).await.unwrap(), Some(r1.clone()));
    let names: Vec<_> = meta
        .list_registrations()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["r1", "r2"]);
    let mut declined = r2.clone();
    declined.status = RegistrationStatus::Declined;
    declined.decline_comment = "no".into();
    meta.update_registration(declined.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(meta.registration(r2.uuid).await.unwrap(), Some(declined));
    assert_eq!(
        meta.update_registration(registration("ghost"))
            .await
            .unwrap(),
        Err(Conflict::NotFound)
    );
    meta.delete_registration(r1.uuid).await.unwrap().unwrap();
    assert_eq!(
        meta.delete_registration(r1.uuid).await.unwrap(),
        Err(Conflict::NotFound)
    );
    assert_eq!(meta.registration(r1.uuid).await.unwrap(), None);
}

/// Users, ACLs and registrations survive a reopen.
pub async fn identity_persists_across_reopen(b: &impl Backend, dir: &Path) {
    let (p, u, r) = {
        let (meta, log) = b.open(dir).await;
        let p = project("p");
        meta.create_project(p.clone()).await.unwrap().unwrap();
        meta.create_topic(topic(p.uuid, "t"))
            .await
            .unwrap()
            .unwrap();
        let u = meta
            .create_user(user("u", &[(p.uuid, &["publisher"])]))
            .await
            .unwrap()
            .unwrap();
        meta.set_topic_acl(p.uuid, "t", vec![u.uuid])
            .await
            .unwrap()
            .unwrap();
        let r = meta
            .create_registration(registration("r"))
            .await
            .unwrap()
            .unwrap();
        b.close(meta, log).await;
        (p, u, r)
    };
    let (meta, _log) = b.open(dir).await;
    assert_eq!(meta.user_by_token(&u.token).await.unwrap(), Some(u.clone()));
    assert_eq!(
        meta.topic(p.uuid, "t").await.unwrap().unwrap().acl,
        vec![u.uuid]
    );
    assert_eq!(meta.registration(r.uuid).await.unwrap(), Some(r));
    let later = meta.create_user(user("v", &[])).await.unwrap().unwrap();
    assert!(
        later.seq > u.seq,
        "sequence numbers keep growing after a reopen"
    );
}

/// `update_subscription`: push settings, dead-letter policy and ACL change
/// atomically and durably; a refusal changes nothing; the cursor is not its to move.
pub async fn subscription_settings_updates(b: &impl Backend, dir: &Path) {
    let p = {
        let (meta, _log) = b.open(dir).await;
        let p = seed(meta.as_ref(), "t", "s").await;
        let worker = Uuid::new_v4();
        let (sub, changed) = meta
            .update_subscription(p.uuid, "s", &mut |s: &mut Subscription| {
                s.dead_letter = Some(crate::model::DeadLetter {
                    topic: "dlt".into(),
                    max_delivery_attempts: 3,
                });
                s.acl.push(worker);
                s.cursor = Cursor::at(99);
                true
            })
            .await
            .unwrap()
            .unwrap();
        assert!(changed);
        assert_eq!(sub.acl, [worker]);
        assert_eq!(sub.cursor, Cursor::at(0), "the cursor is not changed here");
        let (same, changed) = meta
            .update_subscription(p.uuid, "s", &mut |s: &mut Subscription| {
                s.acl.clear();
                false
            })
            .await
            .unwrap()
            .unwrap();
        assert!(!changed);
        assert_eq!(same.acl, [worker], "a refused change leaves the record");
        assert_eq!(
            meta.update_subscription(p.uuid, "nope", &mut |_: &mut Subscription| true)
                .await
                .unwrap()
                .map(|_| ()),
            Err(Conflict::NotFound)
        );
        p
    };
    let (meta, _log) = b.open(dir).await;
    let sub = meta.subscription(p.uuid, "s").await.unwrap().unwrap();
    assert_eq!(sub.dead_letter.map(|d| d.max_delivery_attempts), Some(3));
    assert_eq!(sub.acl.len(), 1);
}

/// Leases: one holder at a time until expiry; renewal by the holder; release.
pub async fn leases(b: &impl Backend, dir: &Path) {
    let (meta, _log) = b.open(dir).await;
    assert!(meta.acquire_lease("k", "a", 1000, 2000).await.unwrap());
    assert!(!meta.acquire_lease("k", "b", 1500, 2500).await.unwrap());
    assert!(
        meta.acquire_lease("k", "a", 1500, 3000).await.unwrap(),
        "renewal"
    );
    assert!(!meta.acquire_lease("k", "b", 2999, 4000).await.unwrap());
    assert!(
        meta.acquire_lease("k", "b", 3000, 4000).await.unwrap(),
        "expired: taken over"
    );
    assert!(
        meta.acquire_lease("other", "a", 3000, 4000).await.unwrap(),
        "keys are independent"
    );
    meta.release_lease("k", "a").await.unwrap();
    assert!(
        !meta.acquire_lease("k", "a", 3001, 5000).await.unwrap(),
        "only the holder releases"
    );
    meta.release_lease("k", "b").await.unwrap();
    assert!(meta.acquire_lease("k", "a", 3001, 5000).await.unwrap());
}

/// Schemas: uniqueness per project, lookups, rename, topic links that a
/// delete removes atomically, persistence, and removal with the project.
pub async fn schemas(b: &impl Backend, dir: &Path) {
    use crate::model::{Schema, SchemaKind};
    let schema = |project: Uuid, name: &str| Schema {
        uuid: Uuid::new_v4(),
        project,
        name: name.into(),
        kind: SchemaKind::Json,
        body: r#"{"type":"object"}"#.into(),
        seq: 0,
    };
    let (p, a) = {
        let (meta, _log) = b.open(dir).await;
        let p = seed(meta.as_ref(), "t", "s").await;
        let a = meta
            .create_schema(schema(p.uuid, "a"))
            .await
            .unwrap()
            .unwrap();
        let bb = meta
            .create_schema(schema(p.uuid, "b"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            meta.create_schema(schema(p.uuid, "a"))
                .await
                .unwrap()
                .map(|_| ()),
            Err(Conflict::AlreadyExists)
        );
        assert_eq!(
            meta.create_schema(schema(Uuid::new_v4(), "a"))
                .await
                .unwrap()
                .map(|_| ()),
            Err(Conflict::NotFound),
            "no project"
        );
        let names: Vec<String> = meta
            .list_schemas(p.uuid)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["a", "b"], "oldest first");
        assert_eq!(
            meta.update_schema(
                p.uuid,
                "a",
                Schema {
                    name: "b".into(),
                    ..a.clone()
                }
            )
            .await
            .unwrap(),
            Err(Conflict::AlreadyExists)
        );
        meta.update_schema(
            p.uuid,
            "a",
            Schema {
                name: "a2".into(),
                ..a.clone()
            },
        )
        .await
        .unwrap()
        .unwrap();
        assert!(meta.schema(p.uuid, "a").await.unwrap().is_none());
        assert_eq!(
            meta.schema_by_uuid(p.uuid, a.uuid)
                .await
                .unwrap()
                .unwrap()
                .name,
            "a2"
        );
        meta.set_topic_schema(p.uuid, "t", Some(bb.uuid))
            .await
            .unwrap()
            .unwrap();
        meta.delete_schema(p.uuid, "b").await.unwrap().unwrap();
        assert_eq!(meta.topic(p.uuid, "t").await.unwrap().unwrap().schema, None);
        meta.set_topic_schema(p.uuid, "t", Some(a.uuid))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            meta.set_topic_schema(p.uuid, "nope", None).await.unwrap(),
            Err(Conflict::NotFound)
        );
        (p, a)
    };
    let (meta, _log) = b.open(dir).await;
    assert_eq!(
        meta.schema(p.uuid, "a2").await.unwrap().unwrap().uuid,
        a.uuid
    );
    assert_eq!(
        meta.topic(p.uuid, "t").await.unwrap().unwrap().schema,
        Some(a.uuid)
    );
    meta.delete_project(p.uuid).await.unwrap().unwrap();
    assert!(meta.list_schemas(p.uuid).await.unwrap().is_empty());
}

/// `add_membership`: adds a role-less membership once, keeps every other field
/// of the user as it is in the store (a concurrent token change survives).
pub async fn memberships_added_atomically(b: &impl Backend, dir: &Path) {
    let (meta, _log) = b.open(dir).await;
    let p = seed(meta.as_ref(), "t", "s").await;
    let user = User::new("w", "a".repeat(64), Timestamp::from_secs(1), None);
    let user = meta.create_user(user).await.unwrap().unwrap();
    // Someone refreshes the token after the caller read the user.
    let refreshed = User {
        token: "b".repeat(64),
        ..user.clone()
    };
    meta.update_user(refreshed).await.unwrap().unwrap();
    meta.add_membership(user.uuid, p.uuid)
        .await
        .unwrap()
        .unwrap();
    meta.add_membership(user.uuid, p.uuid)
        .await
        .unwrap()
        .unwrap();
    let now = meta.user_by_uuid(user.uuid).await.unwrap().unwrap();
    assert_eq!(now.token, "b".repeat(64));
    assert_eq!(now.projects.len(), 1);
    assert!(now.projects[0].roles.is_empty());
    assert_eq!(
        meta.add_membership(Uuid::new_v4(), p.uuid).await.unwrap(),
        Err(Conflict::NotFound)
    );
}

/// Usage deltas add up (as from several nodes) into topic totals and daily
/// counts; daily counts outlive the topic but not the project; both persist;
/// a cursor's consumption tally survives acknowledgements and seeks.
pub async fn usage_counters(b: &impl Backend, dir: &Path) {
    let (meta, log) = b.open(dir).await;
    let p = seed(meta.as_ref(), "t", "s").await;
    let t = meta.topic(p.uuid, "t").await.unwrap().unwrap();
    let delta = |log_id: Uuid, n: u64, at: i64, days: Vec<(i32, u64)>| {
        let mut published = Tally::default();
        published.record(n, n * 10, at);
        UsageDelta {
            project: p.uuid,
            topic: "t".into(),
            log_id,
            published,
            days,
        }
    };
    meta.add_usage(&[delta(t.log_id, 3, 100, vec![(10, 3)])])
        .await
        .unwrap();
    // A second node's delta, and one of a stale incarnation (daily only).
    meta.add_usage(&[
        delta(t.log_id, 2, 200, vec![(10, 1), (11, 1)]),
        delta(Uuid::new_v4(), 5, 300, vec![(11, 5)]),
    ])
    .await
    .unwrap();
    let published = meta.topic(p.uuid, "t").await.unwrap().unwrap().published;
    assert_eq!((published.messages, published.bytes), (5, 50));
    assert_eq!((published.latest_ns, published.latest_count), (200, 2));
    assert_eq!(
        meta.daily_counts(p.uuid, Some("t"), i32::MIN..=i32::MAX)
            .await
            .unwrap(),
        [(11, 6), (10, 4)]
    );
    assert_eq!(
        meta.daily_counts(p.uuid, None, 11..=11).await.unwrap(),
        [(11, 6)]
    );
    assert_eq!(
        meta.daily_counts(p.uuid, Some("other"), i32::MIN..=i32::MAX)
            .await
            .unwrap(),
        []
    );
    let cursor = meta
        .update_cursor(p.uuid, "s", WriteDurability::Relaxed, &mut |c| {
            c.record_pull(0, 0, 2, 1)?;
            c.consumed.record(2, 7, 1_000);
            c.acknowledge(1, 10, 1)?;
            c.seek(0);
            Ok(())
        })
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((cursor.offset, cursor.consumed.messages), (0, 2));
    meta.put_node_sample(NodeSample {
        host: "a".into(),
        cpu_percent: 1.5,
        memory_percent: 0.5,
    })
    .await
    .unwrap();
    b.close(meta, log).await;

    let (meta, log) = b.open(dir).await;
    assert_eq!(
        meta.topic(p.uuid, "t").await.unwrap().unwrap().published,
        published
    );
    assert_eq!(
        meta.subscription(p.uuid, "s")
            .await
            .unwrap()
            .unwrap()
            .cursor
            .consumed
            .bytes,
        7
    );
    assert_eq!(
        meta.daily_counts(p.uuid, None, i32::MIN..=i32::MAX)
            .await
            .unwrap(),
        [(11, 6), (10, 4)]
    );
    meta.put_node_sample(NodeSample {
        host: "b".into(),
        cpu_percent: 2.0,
        memory_percent: 1.0,
    })
    .await
    .unwrap();
    meta.put_node_sample(NodeSample {
        host: "b".into(),
        cpu_percent: 3.0,
        memory_percent: 1.0,
    })
    .await
    .unwrap();
    let samples = meta.node_samples().await.unwrap();
    let b_samples: Vec<_> = samples.iter().filter(|s| s.host == "b").collect();
    assert_eq!(b_samples.len(), 1, "one sample per host");
    assert_eq!(b_samples[0].cpu_percent, 3.0);

    meta.delete_topic(p.uuid, "t").await.unwrap().unwrap();
    assert_eq!(
        meta.daily_counts(p.uuid, Some("t"), i32::MIN..=i32::MAX)
            .await
            .unwrap(),
        [(11, 6), (10, 4)],
        "usage history outlives the topic"
    );
    meta.delete_project(p.uuid).await.unwrap().unwrap();
    assert_eq!(
        meta.daily_counts(p.uuid, None, i32::MIN..=i32::MAX)
            .await
            .unwrap(),
        []
    );
    b.close(meta, log).await;
    let (meta, log) = b.open(dir).await;
    assert_eq!(
        meta.daily_counts(p.uuid, None, i32::MIN..=i32::MAX)
            .await
            .unwrap(),
        []
    );
    b.close(meta, log).await;
}
