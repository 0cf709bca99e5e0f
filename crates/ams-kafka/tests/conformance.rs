//! `KafkaLog` (with `PgMeta` for metadata) against the `ams-core` conformance
//! suite, on a real Kafka-protocol broker and a real PostgreSQL that the test
//! starts on free loopback ports and stops when it ends, also on failure.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use ams_core::conformance::{self, Backend};
use ams_core::{MessageLog, MetadataStore};
use ams_kafka::{KafkaLog, KafkaOptions};
use ams_pg::{Durability, PgMeta};
use ams_testkit::kafka::Engine;
use ams_testkit::{Kafka, Postgres};
use async_trait::async_trait;

/// The scale-out pair: every check gets its own database; logs of different
/// checks never share a Kafka topic (their project UUIDs are random).
struct Cluster {
    kafka: Kafka,
    postgres: Postgres,
}

#[async_trait]
impl Backend for Cluster {
    async fn open(&self, dir: &Path) -> (Arc<dyn MetadataStore>, Arc<dyn MessageLog>) {
        let name = ams_testkit::name_for("ams", dir);
        self.postgres.ensure_database(&name).await;
        let meta = PgMeta::connect(&self.postgres.url(&name), Durability::Fsync)
            .await
            .unwrap();
        let log = KafkaLog::connect(KafkaOptions {
            brokers: vec![self.kafka.bootstrap()],
            ..KafkaOptions::default()
        })
        .await
        .unwrap();
        (Arc::new(meta), log)
    }

    async fn close(&self, meta: Arc<dyn MetadataStore>, log: Arc<dyn MessageLog>) {
        drop(meta);
        drop(log);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_kafka_and_postgres() {
    let started = Instant::now();
    // Both are stopped when dropped, also when a check panics.
    let cluster = Cluster {
        kafka: Kafka::start(),
        postgres: Postgres::start(),
    };
    eprintln!("broker and database up in {:.2?}", started.elapsed());
    // tansu's SQLite engine deletes every topic on DeleteTopics, so the
    // check that deletes one runs on a broker with its in-memory engine
    // (which it can use: it publishes one message per batch).
    const DELETES: &str = "log_delete_and_list";
    let mut failed = conformance::run_matching(&cluster, |c| c != DELETES).await;
    let deleting = Cluster {
        kafka: Kafka::start_with(Engine::Memory),
        postgres: cluster.postgres,
    };
    failed.extend(conformance::run_matching(&deleting, |c| c == DELETES).await);
    eprintln!("suite done in {:.2?}", started.elapsed());
    if !failed.is_empty() {
        eprintln!(
            "broker logs:\n{}\n{}",
            cluster.kafka.log(),
            deleting.kafka.log()
        );
    }
    assert!(failed.is_empty(), "failed checks: {failed:?}");
}
