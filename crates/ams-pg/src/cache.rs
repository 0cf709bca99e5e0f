//! A node's read-through cache of the records nearly every request reads:
//! projects (authorization), users by token (authentication) and topics
//! (publish). Without it every publish costs two or three PostgreSQL round
//! trips before the message reaches Kafka.
//!
//! Only found records are cached, so a creation is visible at once. Every
//! change of a cached kind clears that kind on this node before the change
//! is answered and, through `NOTIFY ams_meta`, on every other node (see
//! `events`), so another node may serve the old record only for the moments
//! the notification takes; entries also expire after [`TTL`], which bounds
//! staleness if notifications are lost, and the whole cache is cleared when
//! the listening connection is re-established. A read that raced a clearing
//! does not store what it read (each table has an epoch, checked under its
//! lock).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ams_core::model::{Project, Topic, User};
use parking_lot::Mutex;
use uuid::Uuid;

/// How long an entry may be served without a notification.
pub(crate) const TTL: Duration = Duration::from_secs(5);

/// Entries per table before it is emptied (a bound, not an eviction policy:
/// the hot set refills at once).
const MAX_ENTRIES: usize = 50_000;

/// The kinds of record a change clears.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Projects, by name and by UUID.
    Projects,
    /// Topics, by project and name.
    Topics,
    /// Users, by token.
    Users,
}

impl Kind {
    /// The name sent in a notification.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Projects => "projects",
            Kind::Topics => "topics",
            Kind::Users => "users",
        }
    }

    /// The kind a notification names.
    pub(crate) fn parse(name: &str) -> Option<Kind> {
        [Kind::Projects, Kind::Topics, Kind::Users]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

/// One map with its epoch.
pub(crate) struct Table<K, V> {
    epoch: AtomicU64,
    map: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> Default for Table<K, V> {
    fn default() -> Self {
        Self {
            epoch: AtomicU64::new(0),
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Table<K, V> {
    /// A fresh entry, if any.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.map
            .lock()
            .get(key)
            .filter(|(_, at)| at.elapsed() < TTL)
            .map(|(v, _)| v.clone())
    }

    /// Taken before reading the database; hand it to [`Table::put`].
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Stores what was read, unless the table was cleared since `epoch`.
    pub(crate) fn put(&self, epoch: u64, key: K, value: V) {
        let mut map = self.map.lock();
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key, (value, Instant::now()));
    }

    /// The entry for `key`, else what `load` finds, stored unless the table
    /// was cleared while it loaded. Only found records are stored.
    pub(crate) async fn read_through<Q, E>(
        &self,
        key: &Q,
        load: impl Future<Output = Result<Option<V>, E>>,
    ) -> Result<Option<V>, E>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(v) = self.get(key) {
            return Ok(Some(v));
        }
        let epoch = self.epoch();
        let found = load.await?;
        if let Some(v) = &found {
            self.put(epoch, key.to_owned(), v.clone());
        }
        Ok(found)
    }

    fn clear(&self) {
        let mut map = self.map.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        map.clear();
    }
}

/// The cached tables.
#[derive(Default)]
pub(crate) struct Cache {
    pub(crate) project_by_name: Table<String, Project>,
    pub(crate) project_by_uuid: Table<Uuid, Project>,
    pub(crate) topics: Table<(Uuid, String), Topic>,
    pub(crate) user_by_token: Table<String, User>,
}

impl Cache {
    /// Forgets every record of `kind`.
    pub(crate) fn clear(&self, kind: Kind) {
        match kind {
            Kind::Projects => {
                self.project_by_name.clear();
                self.project_by_uuid.clear();
            }
            Kind::Topics => self.topics.clear(),
            Kind::Users => self.user_by_token.clear(),
        }
    }

    /// Forgets everything (notifications may have been missed).
    pub(crate) fn clear_all(&self) {
        for kind in [Kind::Projects, Kind::Topics, Kind::Users] {
            self.clear(kind);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_that_raced_a_clear_is_not_stored() {
        let t: Table<String, u32> = Table::default();
        let before = t.epoch();
        t.clear();
        t.put(before, "k".into(), 1);
        assert_eq!(t.get("k"), None);
        t.put(t.epoch(), "k".into(), 2);
        assert_eq!(t.get("k"), Some(2));
        t.clear();
        assert_eq!(t.get("k"), None);
    }

    #[test]
    fn kinds_round_trip() {
        for k in [Kind::Projects, Kind::Topics, Kind::Users] {
            assert_eq!(Kind::parse(k.name()), Some(k));
        }
        assert_eq!(Kind::parse("cursors"), None);
    }
}
