//! Recently read record batches, verified once. A consumer that takes a few
//! messages at a time from a large batch (a push subscription with
//! `maxMessages` 1 behind publishes of 1000) would otherwise read and checksum
//! the whole batch again for every message. Shared by all logs, bounded by
//! bytes, least recently used out. Published batches never change in place
//! (a log only appends; unpublished bytes are the only ones ever rolled back),
//! so an entry cannot go stale; entries of deleted logs or segments age out.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use uuid::Uuid;

/// Where a batch starts: log, segment base offset, byte position.
pub(crate) type BatchKey = (Uuid, u64, u64);

/// Batches smaller than this are cheap to read again and are not cached.
pub(crate) const MIN_CACHED: usize = 64 << 10;

/// The cache.
pub(crate) struct BatchCache {
    budget: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<BatchKey, Entry>,
    bytes: usize,
    tick: u64,
}

struct Entry {
    batch: Arc<[u8]>,
    used: u64,
}

impl BatchCache {
    /// A cache holding at most `budget` bytes of batches.
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            budget,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The verified batch at `key`, if cached.
    pub(crate) fn get(&self, key: &BatchKey) -> Option<Arc<[u8]>> {
        let mut inner = self.inner.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let e = inner.entries.get_mut(key)?;
        e.used = tick;
        Some(e.batch.clone())
    }

    /// Remembers a verified batch (if it fits the budget at all). Eviction
    /// scans the entries, which are few (at most budget / `MIN_CACHED`).
    pub(crate) fn put(&self, key: BatchKey, batch: &[u8]) {
        if batch.len() < MIN_CACHED || batch.len() > self.budget / 4 {
            return;
        }
        let mut inner = self.inner.lock();
        if inner.entries.contains_key(&key) {
            return;
        }
        while inner.bytes + batch.len() > self.budget {
            let Some(oldest) = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(gone) = inner.entries.remove(&oldest) {
                inner.bytes -= gone.batch.len();
            }
        }
        inner.tick += 1;
        let used = inner.tick;
        inner.bytes += batch.len();
        inner.entries.insert(
            key,
            Entry {
                batch: Arc::from(batch),
                used,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_recently_used_within_budget() {
        let cache = BatchCache::new(4 * MIN_CACHED);
        let log = Uuid::new_v4();
        let batch = vec![7u8; MIN_CACHED];
        cache.put((log, 0, 0), &batch[..10]); // too small to be worth it
        assert!(cache.get(&(log, 0, 0)).is_none());
        for pos in 0..4 {
            cache.put((log, 0, pos), &batch);
        }
        assert!(cache.get(&(log, 0, 0)).is_some()); // now the most recent
        cache.put((log, 0, 9), &batch); // evicts position 1, the least recent
        assert!(cache.get(&(log, 0, 1)).is_none());
        for pos in [0, 2, 3, 9] {
            assert_eq!(cache.get(&(log, 0, pos)).unwrap().len(), MIN_CACHED);
        }
        cache.put((log, 0, 10), &vec![0u8; 2 * MIN_CACHED]); // over budget / 4
        assert!(cache.get(&(log, 0, 10)).is_none());
    }
}
