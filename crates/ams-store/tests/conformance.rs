//! The embedded backend against the `ams-core` conformance suite.

use std::path::Path;
use std::sync::Arc;

use ams_core::conformance::Backend;
use ams_core::{MessageLog, MetadataStore};
use ams_store::{Durability, EmbeddedMeta, LogOptions, SegmentLog};
use async_trait::async_trait;

struct Embedded(Durability);

#[async_trait]
impl Backend for Embedded {
    async fn open(&self, dir: &Path) -> (Arc<dyn MetadataStore>, Arc<dyn MessageLog>) {
        let meta = EmbeddedMeta::open(&dir.join("meta"), self.0).unwrap();
        let log = SegmentLog::open(
            &dir.join("logs"),
            LogOptions {
                durability: self.0,
                // Small segments so that the suite crosses segment boundaries.
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

mod fsync {
    use super::*;
    ams_core::conformance_tests!(Embedded(Durability::Fsync));
}

mod write {
    use super::*;
    ams_core::conformance_tests!(Embedded(Durability::Write));
}
