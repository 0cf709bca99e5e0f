//! The embedded message log: [`SegmentLog`], an append-only segmented log per
//! topic implementing [`MessageLog`].
//!
//! # On-disk layout
//!
//! `<root>/<log uuid>/` holds the log's segments. Segment `B` (its first
//! offset, 20 zero-padded digits) is three files:
//!
//! * `B.log`: record batches back to back. All integers little-endian:
//!   ```text
//!   0  u8   magic 0xA7
//!   1  u8   version 1
//!   2  u16  reserved, 0
//!   4  u32  batch length in bytes, header included
//!   8  u32  CRC32 (crc32fast) of bytes 12..length
//!   12 u64  base offset
//!   20 u32  message count (> 0)
//!   24 i64  publish time, ns since the epoch (shared by the whole batch)
//!   32      messages: u32 attribute count, then per attribute
//!           (u32 key length, key, u32 value length, value),
//!           then u32 data length, data (all strings UTF-8)
//!   ```
//!   One batch per append; a batch never spans segments, and a segment never
//!   grows past 4 GiB (positions fit in u32).
//! * `B.idx`: sparse offset index, entries `(u32 offset - B, u32 file position)`
//!   for the segment's first batch and then the first batch starting at least
//!   4 KiB after the previous entry.
//! * `B.tix`: time index, entries `(i64 publish time ms, u64 offset)` at the same
//!   points; once the segment is sealed, one more entry `(newest time ms, last
//!   offset)`, which tells start-up that the indexes are complete.
//!
//! # Concurrency
//!
//! One writer task per log (`writer.rs`) group-commits appends; readers use
//! a snapshot of the segment list (under a short read lock) and `pread`, on a
//! blocking thread (`spawn_blocking`: a cold page must not stall the runtime).
//! Readers never see bytes the writer has not yet made durable: each segment's
//! committed length and the log's high-water mark move only after the write
//! (and, in the fsync tier, the `fdatasync`) completed.
//!
//! # Memory
//!
//! Payloads stay on disk. Per log the process keeps the segment list and the
//! sparse index points (16 bytes per ~4 KiB of log).

mod batch;
mod cache;
mod index;
mod reader;
mod recover;
mod segment;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ams_core::storage::{
    Appended, LogBounds, LogNaming, LogRef, MessageLog, NewMessage, StoreError, StoreResult,
    StoredMessage,
};
use async_trait::async_trait;
use parking_lot::RwLock;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::warn;
use uuid::Uuid;

pub use crate::Durability;

use segment::Segment;
use writer::{AppendReq, Command, Writer, WriterConfig};

/// Suffix of a log directory being deleted (renamed first, then removed).
const TRASH_SUFFIX: &str = ".deleted";

/// Which sealed segments [`SegmentLog::enforce_retention`] drops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Drop a sealed segment once its newest message is older than this.
    pub max_age: Option<Duration>,
    /// Drop the oldest sealed segments while a log holds more than this many bytes.
    pub max_bytes: Option<u64>,
}

/// Configuration of a [`SegmentLog`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogOptions {
    /// When an append is acknowledged.
    pub durability: Durability,
    /// A segment is sealed and a new one started once it holds this many bytes.
    pub segment_bytes: u64,
    /// What [`SegmentLog::enforce_retention`] drops.
    pub retention: Retention,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Fsync,
            segment_bytes: 64 << 20,
            retention: Retention::default(),
        }
    }
}

/// What readers share with the writer of one log.
pub(crate) struct LogShared {
    pub(crate) id: Uuid,
    pub(crate) dir: PathBuf,
    pub(crate) state: RwLock<LogState>,
    pub(crate) watch: watch::Sender<LogBounds>,
}

/// The published state of a log.
pub(crate) struct LogState {
    /// Segments, oldest first; the last one receives appends.
    pub(crate) segments: Vec<Arc<Segment>>,
    pub(crate) bounds: LogBounds,
}

/// Who writes a log right now.
enum Slot {
    /// No task running; the writer is parked here. Small write-tier appends
    /// commit straight through it; others start a task.
    Idle(Box<Writer>),
    /// A task owns the writer (in tier write, until its queue drains: it then
    /// parks the writer back here).
    Running(mpsc::UnboundedSender<Command>),
    /// The log was deleted: look it up again.
    Deleted,
}

struct LogHandle {
    shared: Arc<LogShared>,
    /// Held across the stop of the writer by `delete` and `close`, so that
    /// appends wait for them rather than race them.
    slot: tokio::sync::Mutex<Slot>,
}

/// Bytes of recently read batches kept verified in memory, for all logs.
const BATCH_CACHE_BYTES: usize = 32 << 20;

/// Append-only segmented message logs, one directory per topic log.
pub struct SegmentLog {
    root: PathBuf,
    options: LogOptions,
    logs: RwLock<HashMap<Uuid, Arc<LogHandle>>>,
    /// Recently read large batches (see `cache.rs`).
    cache: Arc<cache::BatchCache>,
    /// Logs deleted since start-up. Ids are unique per topic incarnation, so an
    /// append to one of these is a publish that raced its topic's deletion: it is
    /// refused rather than allowed to recreate an orphaned log.
    deleted: parking_lot::Mutex<std::collections::HashSet<Uuid>>,
}

fn io_error(context: impl Into<String>) -> impl FnOnce(io::Error) -> StoreError {
    move |e| StoreError::new(context, e)
}

fn join_error(e: tokio::task::JoinError) -> StoreError {
    StoreError::new("log task failed", e)
}

impl SegmentLog {
    /// Opens (creating if needed) the logs under `dir`, recovering each one.
    pub fn open(dir: &Path, options: LogOptions) -> Result<Arc<SegmentLog>, StoreError> {
        fs::create_dir_all(dir).map_err(io_error(format!("creating {}", dir.display())))?;
        let cfg = WriterConfig {
            durability: options.durability,
            segment_bytes: options.segment_bytes.max(1),
        };
        let mut logs = HashMap::new();
        let listing = fs::read_dir(dir).map_err(io_error(format!("listing {}", dir.display())))?;
        for entry in listing {
            let entry = entry.map_err(io_error(format!("listing {}", dir.display())))?;
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if name.ends_with(TRASH_SUFFIX) {
                if let Err(e) = fs::remove_dir_all(&path) {
                    warn!(dir = %path.display(), error = %e, "could not remove a deleted log");
                }
                continue;
            }
            let Some(id) = parse_log_dir(&name) else {
                continue;
            };
            let rec = recover::load_log(&path, &cfg)
                .map_err(io_error(format!("recovering log {}", path.display())))?;
            let bounds = LogBounds {
                min: rec.segments.first().map_or(0, |s| s.base),
                max: rec.next_offset,
            };
            let shared = Arc::new(LogShared {
                id,
                dir: path,
                state: RwLock::new(LogState {
                    segments: rec.segments,
                    bounds,
                }),
                watch: watch::Sender::new(bounds),
            });
            let writer = Writer::new(
                shared.clone(),
                cfg,
                dir.to_path_buf(),
                true,
                rec.active,
                rec.next_offset,
                rec.last_time_ns,
            );
            logs.insert(
                id,
                Arc::new(LogHandle {
                    shared,
                    slot: tokio::sync::Mutex::new(Slot::Idle(Box::new(writer))),
                }),
            );
        }
        Ok(Arc::new(SegmentLog {
            root: dir.to_path_buf(),
            options: LogOptions {
                segment_bytes: cfg.segment_bytes,
                ..options
            },
            logs: RwLock::new(logs),
            cache: Arc::new(cache::BatchCache::new(BATCH_CACHE_BYTES)),
            deleted: parking_lot::Mutex::default(),
        }))
    }

    fn cfg(&self) -> WriterConfig {
        WriterConfig {
            durability: self.options.durability,
            segment_bytes: self.options.segment_bytes,
        }
    }

    fn handle(&self, id: Uuid) -> Option<Arc<LogHandle>> {
        self.logs.read().get(&id).cloned()
    }

    /// The handle of a log, creating an empty one in memory (its files are
    /// created by the first append).
    fn handle_or_create(&self, id: Uuid) -> Arc<LogHandle> {
        if let Some(h) = self.handle(id) {
            return h;
        }
        let mut logs = self.logs.write();
        logs.entry(id)
            .or_insert_with(|| {
                let shared = Arc::new(LogShared {
                    id,
                    dir: self.root.join(id.hyphenated().to_string()),
                    state: RwLock::new(LogState {
                        segments: Vec::new(),
                        bounds: LogBounds::default(),
                    }),
                    watch: watch::Sender::new(LogBounds::default()),
                });
                let writer = Writer::new(
                    shared.clone(),
                    self.cfg(),
                    self.root.clone(),
                    false,
                    None,
                    0,
                    None,
                );
                Arc::new(LogHandle {
                    shared,
                    slot: tokio::sync::Mutex::new(Slot::Idle(Box::new(writer))),
                })
            })
            .clone()
    }

    /// Drops whole sealed segments (never a log's last segment): those whose
    /// newest message is older than `max_age` before `now_ns`, and the oldest
    /// ones while a log holds more than `max_bytes`. Returns how many segments
    /// were dropped.
    pub fn enforce_retention(&self, now_ns: i64) -> Result<usize, StoreError> {
        let Retention { max_age, max_bytes } = self.options.retention;
        if max_age.is_none() && max_bytes.is_none() {
            return Ok(0);
        }
        let handles: Vec<Arc<LogHandle>> = self.logs.read().values().cloned().collect();
        let mut dropped_total = 0;
        let mut first_error = None;
        for h in handles {
            let dropped: Vec<Arc<Segment>> = {
                let mut st = h.shared.state.write();
                let mut total: u64 = st.segments.iter().map(|s| s.len()).sum();
                let mut n = 0;
                while n + 1 < st.segments.len() {
                    let seg = &st.segments[n];
                    let too_old = max_age.is_some_and(|age| {
                        let newest_ns = i128::from(seg.max_time_ms()) * 1_000_000 + 999_999;
                        i128::from(now_ns) - newest_ns > age.as_nanos() as i128
                    });
                    let too_big = max_bytes.is_some_and(|max| total > max);
                    if !too_old && !too_big {
                        break;
                    }
                    total -= seg.len();
                    n += 1;
                }
                if n == 0 {
                    continue;
                }
                let dropped: Vec<_> = st.segments.drain(..n).collect();
                st.bounds.min = st.segments.first().map_or(st.bounds.max, |s| s.base);
                let bounds = st.bounds;
                drop(st);
                h.shared.watch.send_replace(bounds);
                dropped
            };
            dropped_total += dropped.len();
            for seg in dropped {
                // The .log first: a leftover index is cleaned up at start-up.
                for ext in ["log", "idx", "tix"] {
                    match fs::remove_file(seg.sibling(ext)) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => {
                            if first_error.is_none() {
                                first_error = Some(StoreError::new(
                                    format!("removing {}", seg.sibling(ext).display()),
                                    e,
                                ));
                            }
                        }
                    }
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(dropped_total),
        }
    }

    /// Stops every writer after it finished what is queued and flushes the
    /// active segments to disk. Appends made afterwards start the writers again.
    pub async fn close(&self) {
        let handles: Vec<Arc<LogHandle>> = self.logs.read().values().cloned().collect();
        for h in handles {
            let mut slot = h.slot.lock().await;
            let writer = match std::mem::replace(&mut *slot, Slot::Deleted) {
                Slot::Running(tx) => stop_writer(tx).await,
                Slot::Idle(w) => Some(w),
                Slot::Deleted => None,
            };
            let Some(mut writer) = writer else {
                continue;
            };
            let synced = tokio::task::spawn_blocking(move || {
                let r = writer.sync_all();
                (writer, r)
            })
            .await;
            match synced {
                Ok((w, r)) => {
                    if let Err(e) = r {
                        warn!(log = %h.shared.id, error = %e, "could not sync a log at close");
                    }
                    *slot = Slot::Idle(w);
                }
                Err(e) => warn!(log = %h.shared.id, error = %e, "could not sync a log at close"),
            }
        }
    }

    fn log_dir(&self, id: Uuid) -> PathBuf {
        self.root.join(id.hyphenated().to_string())
    }
}

/// Asks a writer task to stop and returns its writer.
async fn stop_writer(tx: mpsc::UnboundedSender<Command>) -> Option<Box<Writer>> {
    let (stop_tx, stop_rx) = oneshot::channel();
    tx.send(Command::Stop(stop_tx)).ok()?;
    stop_rx.await.ok()
}

/// A log directory's name is its id, hyphenated, lower case.
fn parse_log_dir(name: &str) -> Option<Uuid> {
    let id = Uuid::parse_str(name).ok()?;
    (id.hyphenated().to_string() == name).then_some(id)
}

/// Renames a log directory out of the way, then removes it.
fn remove_log_dir(root: &Path, dir: &Path, id: Uuid, fsync: bool) -> io::Result<()> {
    let trash = root.join(format!("{id}{TRASH_SUFFIX}"));
    match fs::remove_dir_all(&trash) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    match fs::rename(dir, &trash) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    if fsync {
        segment::sync_dir(root)?;
    }
    if let Err(e) = fs::remove_dir_all(&trash) {
        warn!(dir = %trash.display(), error = %e, "could not remove a deleted log; retried at start-up");
    }
    Ok(())
}

#[async_trait]
impl MessageLog for SegmentLog {
    fn naming(&self) -> LogNaming {
        LogNaming::ById
    }

    async fn create(&self, _log: &LogRef) -> StoreResult<()> {
        // Ids are unique per incarnation and files appear on first append.
        Ok(())
    }

    async fn append(
        &self,
        log: &LogRef,
        messages: Vec<NewMessage>,
        publish_time_ns: i64,
    ) -> StoreResult<Appended> {
        let deleted = || StoreError::new("appending", "the log was deleted");
        let batch = batch::encode(&messages).map_err(|e| StoreError::new("encoding a batch", e))?;
        drop(messages);
        let (reply, answer) = oneshot::channel();
        let mut req = Some(AppendReq {
            batch,
            time_ns: publish_time_ns,
            reply,
        });
        while let Some(r) = req.take() {
            // Checked on every turn: an append that waited out a delete must not
            // recreate the log.
            if self.deleted.lock().contains(&log.id) {
                return Err(deleted());
            }
            let h = self.handle_or_create(log.id);
            let mut slot = h.slot.lock().await;
            if let Slot::Idle(w) = &mut *slot
                && w.commits_inline(r.batch.buf.len())
            {
                // No writer task and a small write-tier append: committed
                // here, under the slot lock, as the task would (a short
                // write to the page cache). It spares the hop to the task
                // and back, about a tenth of a single small publish's work.
                w.commit(&mut vec![r]);
                break;
            }
            if matches!(*slot, Slot::Idle(_))
                && let Slot::Idle(w) = std::mem::replace(&mut *slot, Slot::Deleted)
            {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(writer::run(w, rx, Arc::downgrade(&h)));
                *slot = Slot::Running(tx);
            }
            match &*slot {
                Slot::Running(tx) => {
                    if tx.send(Command::Append(r)).is_err() {
                        return Err(StoreError::new("appending", "the log writer stopped"));
                    }
                }
                // Deleted meanwhile: the next turn refuses, unless this handle is
                // still the current one (a writer lost to a panic).
                _ => {
                    if self.handle(log.id).is_some_and(|cur| Arc::ptr_eq(&cur, &h)) {
                        return Err(StoreError::new("appending", "the log writer is gone"));
                    }
                    req = Some(r);
                }
            }
        }
        answer
            .await
            .map_err(|_| StoreError::new("appending", "the log writer stopped"))?
    }

    async fn read(
        &self,
        log: &LogRef,
        from: u64,
        max_messages: usize,
        max_bytes: usize,
    ) -> StoreResult<Vec<StoredMessage>> {
        if max_messages == 0 {
            return Ok(Vec::new());
        }
        let Some(h) = self.handle(log.id) else {
            return Ok(Vec::new());
        };
        let (segs, start, max) = {
            let st = h.shared.state.read();
            let start = from.max(st.bounds.min);
            if start >= st.bounds.max {
                return Ok(Vec::new());
            }
            let i = st
                .segments
                .partition_point(|s| s.base <= start)
                .saturating_sub(1);
            (st.segments[i..].to_vec(), start, st.bounds.max)
        };
        let (id, cache) = (log.id, self.cache.clone());
        tokio::task::spawn_blocking(move || {
            reader::read_messages(id, &cache, &segs, start, max, max_messages, max_bytes)
        })
        .await
        .map_err(join_error)?
    }

    async fn bounds(&self, log: &LogRef) -> StoreResult<LogBounds> {
        Ok(self
            .handle(log.id)
            .map_or_else(LogBounds::default, |h| h.shared.state.read().bounds))
    }

    async fn offset_at_time(&self, log: &LogRef, time_ms: i64) -> StoreResult<Option<u64>> {
        let Some(h) = self.handle(log.id) else {
            return Ok(None);
        };
        let (segs, max) = {
            let st = h.shared.state.read();
            if st.bounds.min >= st.bounds.max {
                return Ok(None);
            }
            (st.segments.clone(), st.bounds.max)
        };
        tokio::task::spawn_blocking(move || reader::offset_at_time(&segs, time_ms, max))
            .await
            .map_err(join_error)?
    }

    async fn wait_beyond(
        &self,
        log: &LogRef,
        offset: u64,
        timeout: Duration,
    ) -> StoreResult<LogBounds> {
        if self.deleted.lock().contains(&log.id) {
            return Ok(LogBounds::default());
        }
        let h = self.handle_or_create(log.id);
        let mut rx = h.shared.watch.subscribe();
        // A delete wakes waiters too (it publishes empty bounds after marking
        // the log deleted), so that streams of a deleted topic end at once.
        let _ = tokio::time::timeout(
            timeout,
            rx.wait_for(|b| b.max > offset || self.deleted.lock().contains(&log.id)),
        )
        .await;
        let bounds = *rx.borrow();
        Ok(bounds)
    }

    async fn delete(&self, log: &LogRef) -> StoreResult<()> {
        self.deleted.lock().insert(log.id);
        let dir = self.log_dir(log.id);
        let root = self.root.clone();
        let fsync = self.options.durability == Durability::Fsync;
        let id = log.id;
        let Some(h) = self.handle(id) else {
            return tokio::task::spawn_blocking(move || remove_log_dir(&root, &dir, id, fsync))
                .await
                .map_err(join_error)?
                .map_err(io_error("deleting a log"));
        };
        let mut slot = h.slot.lock().await;
        let writer = match std::mem::replace(&mut *slot, Slot::Deleted) {
            Slot::Running(tx) => stop_writer(tx).await,
            Slot::Idle(w) => Some(w),
            // Deleted already, unless this is still the current handle (its
            // writer was lost to a panic): then remove its files all the same.
            Slot::Deleted => {
                if !self.handle(id).is_some_and(|cur| Arc::ptr_eq(&cur, &h)) {
                    return Ok(());
                }
                None
            }
        };
        let dir = h.shared.dir.clone();
        let removed = tokio::task::spawn_blocking(move || remove_log_dir(&root, &dir, id, fsync))
            .await
            .map_err(join_error)
            .and_then(|r| r.map_err(io_error("deleting a log")));
        if let Err(e) = removed {
            if let Some(w) = writer {
                *slot = Slot::Idle(w);
            }
            return Err(e);
        }
        drop(writer);
        {
            let mut logs = self.logs.write();
            if logs.get(&id).is_some_and(|cur| Arc::ptr_eq(cur, &h)) {
                logs.remove(&id);
            }
        }
        let bounds = {
            let mut st = h.shared.state.write();
            st.segments.clear();
            st.bounds = LogBounds::default();
            st.bounds
        };
        h.shared.watch.send_replace(bounds);
        Ok(())
    }

    async fn list(&self) -> StoreResult<Vec<LogRef>> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            let mut ids = Vec::new();
            for entry in fs::read_dir(&root)? {
                let entry = entry?;
                if !entry.file_type()?.is_dir() {
                    continue;
                }
                if let Some(id) = entry.file_name().to_str().and_then(parse_log_dir) {
                    ids.push(LogRef {
                        id,
                        project: Uuid::nil(),
                        topic: String::new(),
                    });
                }
            }
            Ok(ids)
        })
        .await
        .map_err(join_error)?
        .map_err(io_error("listing logs"))
    }
}
