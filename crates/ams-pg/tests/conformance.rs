//! `PgMeta` against the `ams-core` conformance suite, on a real PostgreSQL.
//!
//! The test starts a throwaway cluster ([`ams_testkit::Postgres`]), runs every
//! check of the suite against it (each check on its own database, named after
//! its directory, so that a reopen finds its data) and stops the cluster, also
//! when a check fails.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use ams_core::conformance::{self, Backend};
use ams_core::{MessageLog, MetadataStore};
use ams_pg::{Durability, PgMeta};
use ams_store::{LogOptions, SegmentLog};
use ams_testkit::Postgres;
use async_trait::async_trait;

/// The backend under test: `PgMeta` on one database per directory, with the
/// embedded segment log for messages.
struct Pg {
    cluster: Arc<Postgres>,
    durability: Durability,
}

#[async_trait]
impl Backend for Pg {
    async fn open(&self, dir: &Path) -> (Arc<dyn MetadataStore>, Arc<dyn MessageLog>) {
        let name = ams_testkit::name_for("ams", dir);
        self.cluster.ensure_database(&name).await;
        let meta = PgMeta::connect(&self.cluster.url(&name), self.durability)
            .await
            .unwrap();
        let log = SegmentLog::open(
            &dir.join("logs"),
            LogOptions {
                segment_bytes: 4096,
                ..LogOptions::default()
            },
        )
        .unwrap();
        (Arc::new(meta), log)
    }

    async fn close(&self, meta: Arc<dyn MetadataStore>, log: Arc<dyn MessageLog>) {
        drop(meta);
        drop(log);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_postgres() {
    let started = Instant::now();
    // Dropped at the end of this function, also when a check panics.
    let cluster = Arc::new(Postgres::start());
    eprintln!(
        "cluster up on port {} in {:.2?}",
        cluster.port(),
        started.elapsed()
    );
    let mut failed = Vec::new();
    for durability in [Durability::Fsync, Durability::Write] {
        let backend = Pg {
            cluster: cluster.clone(),
            durability,
        };
        for name in conformance::run_all(&backend).await {
            failed.push(format!("{name} ({durability:?})"));
        }
    }
    eprintln!("suite done in {:.2?}", started.elapsed());
    migrations_are_applied_once_by_concurrent_nodes(&cluster).await;
    assert!(failed.is_empty(), "failed checks: {failed:?}");
}

/// Nodes starting together apply each migration exactly once.
async fn migrations_are_applied_once_by_concurrent_nodes(cluster: &Postgres) {
    cluster.ensure_database("racing").await;
    let url = cluster.url("racing");
    let nodes: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PgMeta::connect(&url, Durability::Fsync).await })
        })
        .collect();
    for node in nodes {
        node.await.unwrap().unwrap();
    }
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let versions: Vec<i32> = client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected: Vec<i32> = ams_pg::migrate::MIGRATIONS
        .iter()
        .map(|(v, _)| *v)
        .collect();
    assert_eq!(versions, expected);
}
