//! The single writer of a log: group commit, segment rolls, index upkeep.
//!
//! Each log with appends in flight has one tokio task ([`run`]) fed by an
//! unbounded channel. The task takes the first waiting command, drains
//! everything else already queued (up to [`MAX_GROUP_BYTES`]), and hands the
//! group to a blocking thread ([`Writer::commit`]): offsets are assigned
//! densely in arrival order, all batches destined for the active segment are
//! written with one `pwrite` of a concatenated buffer, then (fsync tier) one
//! `fdatasync`. Only then are the new messages published to readers (segment
//! length, index points, high-water mark under the state lock), waiters woken
//! through the watch channel, and callers answered. Appends that arrive
//! meanwhile queue up and form the next group. In the fsync tier the writer
//! keeps a zero-filled runway ahead of the data, so that small appends'
//! syncs have no file metadata to commit ([`Writer::extend_runway`]).
//!
//! Small groups of the write tier skip the blocking thread
//! ([`Writer::commits_inline`]): the task commits them itself, and while no
//! task runs an append commits itself straight through the parked writer
//! (`SegmentLog::append`); the task parks the writer once its queue drains.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use ams_core::storage::{Appended, StoreError, StoreResult};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, warn};

use super::batch::{self, EncodedBatch};
use super::index::{self, IndexEntry};
use super::segment::{self, Segment};
use super::{LogHandle, LogShared, Slot};
use crate::Durability;

/// Stop draining the queue into one group past this many bytes.
const MAX_GROUP_BYTES: usize = 16 << 20;

/// The writer's share of [`super::LogOptions`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct WriterConfig {
    /// Durability tier.
    pub(crate) durability: Durability,
    /// Roll the active segment once it holds this many bytes.
    pub(crate) segment_bytes: u64,
}

impl WriterConfig {
    /// Whether appends are fsynced.
    pub(crate) fn fsync(&self) -> bool {
        self.durability == Durability::Fsync
    }
}

/// One append waiting for the writer.
pub(crate) struct AppendReq {
    /// The encoded batch (header filled in by the writer).
    pub(crate) batch: EncodedBatch,
    /// The domain clock's publish time.
    pub(crate) time_ns: i64,
    /// Where to answer.
    pub(crate) reply: oneshot::Sender<StoreResult<Appended>>,
}

/// What the writer task is asked to do.
pub(crate) enum Command {
    /// Append a batch.
    Append(AppendReq),
    /// Finish what is queued before this, then hand the writer back and exit.
    Stop(oneshot::Sender<Box<Writer>>),
}

/// The writer's state of the segment that receives appends.
pub(crate) struct Active {
    seg: Arc<Segment>,
    file: Arc<File>,
    /// Bytes written to the file.
    len: u64,
    /// End of the file's zero-filled runway (see [`Writer::extend_runway`]):
    /// the file is at least this long, and the bytes past `len` are zeros.
    zeroed: u64,
    /// Set when extending the runway failed: not retried for this segment.
    runway_failed: bool,
    /// One past the last offset written.
    end: u64,
    /// Newest publish time written (ms).
    max_time_ms: i64,
    idx: Option<File>,
    tix: Option<File>,
    /// Entries in the index files.
    entries_written: u64,
    last_entry_pos: Option<u64>,
    /// Index points of batches not yet written to the file.
    unflushed: Vec<IndexEntry>,
    /// Index points of written batches not yet published.
    unpublished: Vec<IndexEntry>,
    /// Index points not yet in the index files. They are written in runs
    /// (see [`INDEX_WRITE_RUN`]), at a roll and at close: a crash only makes
    /// recovery scan a little more of the tail, which it rebuilds them from.
    file_backlog: Vec<IndexEntry>,
}

/// Index points written to the index files at once: one write per run
/// instead of two per point (a point every 4 KiB, so every few small
/// publishes); recovery then scans at most this many points' worth
/// (~128 KiB) more of the tail segment.
const INDEX_WRITE_RUN: usize = 32;

impl Active {
    fn new(seg: Arc<Segment>, file: Arc<File>, last_entry_pos: Option<u64>) -> Self {
        let entries_written = seg.index.read().len() as u64;
        Self {
            len: seg.len(),
            zeroed: seg.len(),
            runway_failed: false,
            end: seg.end(),
            max_time_ms: seg.max_time_ms(),
            seg,
            file,
            idx: None,
            tix: None,
            entries_written,
            last_entry_pos,
            unflushed: Vec::new(),
            unpublished: Vec::new(),
            file_backlog: Vec::new(),
        }
    }

    /// The writer state of a tail segment found at start-up, whose file is
    /// `file_len` long (zeros past the segment's data: a runway).
    pub(crate) fn recovered(
        seg: Arc<Segment>,
        file: Arc<File>,
        last_entry_pos: Option<u64>,
        file_len: u64,
    ) -> Self {
        let mut a = Self::new(seg, file, last_entry_pos);
        a.zeroed = a.zeroed.max(file_len);
        a
    }

    fn index_file<'a>(
        slot: &'a mut Option<File>,
        seg: &Segment,
        ext: &str,
    ) -> io::Result<&'a File> {
        if slot.is_none() {
            let f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(seg.sibling(ext))?;
            *slot = Some(f);
        }
        slot.as_ref()
            .ok_or_else(|| io::Error::other("index file not open"))
    }

    fn idx_file(&mut self) -> io::Result<&File> {
        Self::index_file(&mut self.idx, &self.seg, "idx")
    }

    fn tix_file(&mut self) -> io::Result<&File> {
        Self::index_file(&mut self.tix, &self.seg, "tix")
    }

    /// Queues the index points of the batches just written for the index
    /// files, writing them when a run is complete.
    fn write_index(&mut self) -> io::Result<()> {
        if self.unflushed.is_empty() {
            return Ok(());
        }
        self.file_backlog.extend_from_slice(&self.unflushed);
        self.unpublished.append(&mut self.unflushed);
        if self.file_backlog.len() >= INDEX_WRITE_RUN {
            self.write_backlog()?;
        }
        Ok(())
    }

    /// Writes the queued index points to the index files.
    fn write_backlog(&mut self) -> io::Result<()> {
        if self.file_backlog.is_empty() {
            return Ok(());
        }
        let mut idx = Vec::with_capacity(self.file_backlog.len() * index::IDX_ENTRY);
        index::encode_idx(&self.file_backlog, &mut idx);
        let mut tix = Vec::with_capacity(self.file_backlog.len() * index::TIX_ENTRY);
        index::encode_tix(self.seg.base, &self.file_backlog, &mut tix);
        let at = self.entries_written;
        self.idx_file()?
            .write_all_at(&idx, at * index::IDX_ENTRY as u64)?;
        self.tix_file()?
            .write_all_at(&tix, at * index::TIX_ENTRY as u64)?;
        self.entries_written += self.file_backlog.len() as u64;
        self.file_backlog.clear();
        Ok(())
    }

    /// Makes what was written visible to readers.
    fn publish(&mut self) {
        if !self.unpublished.is_empty() {
            self.seg.index.write().append(&mut self.unpublished);
        }
        self.seg
            .max_time_ms
            .store(self.max_time_ms, Ordering::Release);
        self.seg.end.store(self.end, Ordering::Release);
        self.seg.len.store(self.len, Ordering::Release);
    }

    /// Forgets what was written since the last publish and truncates the files
    /// back to the published state.
    fn rollback(&mut self) -> io::Result<()> {
        // The files hold a prefix of the published points followed, perhaps,
        // by points of the failed group: keep the published prefix and queue
        // the published points they lack.
        let (in_files, backlog, last_pos) = {
            let idx = self.seg.index.read();
            let in_files = self.entries_written.min(idx.len() as u64);
            (
                in_files,
                idx[in_files as usize..].to_vec(),
                idx.last().map(|e| u64::from(e.pos)),
            )
        };
        self.unflushed.clear();
        self.unpublished.clear();
        self.file_backlog = backlog;
        self.len = self.seg.len();
        self.end = self.seg.end();
        self.max_time_ms = self.seg.max_time_ms();
        self.last_entry_pos = last_pos;
        self.file.set_len(self.len)?;
        self.zeroed = self.len;
        self.idx_file()?
            .set_len(in_files * index::IDX_ENTRY as u64)?;
        self.tix_file()?
            .set_len(in_files * index::TIX_ENTRY as u64)?;
        self.entries_written = in_files;
        Ok(())
    }
}

/// A failed group.
struct Failure {
    context: &'static str,
    error: io::Error,
    /// A failed `fdatasync` leaves the page cache in an unknown state: the log
    /// refuses appends until it is reopened (and recovered).
    fatal: bool,
}

fn io_fail(context: &'static str) -> impl FnOnce(io::Error) -> Failure {
    move |error| Failure {
        context,
        error,
        fatal: false,
    }
}

fn sync_fail(context: &'static str) -> impl FnOnce(io::Error) -> Failure {
    move |error| Failure {
        context,
        error,
        fatal: true,
    }
}

/// The writer of one log. Owned by its task (or parked in the log's slot while
/// no task runs). Its methods block on file I/O: they run on a blocking
/// thread, except a [`Writer::commits_inline`] commit (a short write to the
/// page cache).
pub(crate) struct Writer {
    shared: Arc<LogShared>,
    cfg: WriterConfig,
    /// The directory holding the log directories (fsynced when ours is created).
    root: PathBuf,
    dir_exists: bool,
    active: Option<Active>,
    /// Segments sealed during the current group, published with it.
    sealed: Vec<Active>,
    /// Segments created during the current group, published with it.
    new_segments: Vec<Arc<Segment>>,
    next_offset: u64,
    last_time_ns: Option<i64>,
    /// Set after an unrecoverable failure.
    poisoned: Option<String>,
    /// Bytes written to the active segment since its last fdatasync.
    dirty: bool,
    /// Reused concatenation buffer.
    buf: Vec<u8>,
    /// [`RUNWAY_CHUNK`] zeros, allocated on first use.
    zeros: Option<Box<[u8]>>,
}

impl Writer {
    /// A writer for a log found on disk (or, with `active: None`, a new log).
    pub(crate) fn new(
        shared: Arc<LogShared>,
        cfg: WriterConfig,
        root: PathBuf,
        dir_exists: bool,
        active: Option<Active>,
        next_offset: u64,
        last_time_ns: Option<i64>,
    ) -> Self {
        Self {
            shared,
            cfg,
            root,
            dir_exists,
            active,
            sealed: Vec::new(),
            new_segments: Vec::new(),
            next_offset,
            last_time_ns,
            poisoned: None,
            dirty: false,
            buf: Vec::new(),
            zeros: None,
        }
    }

    /// Whether a group of `bytes` commits with nothing but a short write to the
    /// page cache: tier write (no sync), no segment to start or roll, small. Such
    /// a group is committed on the writer task itself, sparing the hop to a
    /// blocking thread that dominates the latency of single small publishes.
    pub(crate) fn commits_inline(&self, bytes: usize) -> bool {
        !self.cfg.fsync()
            && self.poisoned.is_none()
            && bytes <= INLINE_MAX_BYTES
            && self
                .active
                .as_ref()
                .is_some_and(|a| a.len + (bytes as u64) < self.cfg.segment_bytes)
    }

    /// Tier fsync: after a small group, keeps a zero-filled runway of at
    /// least [`RUNWAY_LOW`] bytes past the active segment's data, written and
    /// synced [`RUNWAY_CHUNK`] at a time. Appends then overwrite allocated
    /// blocks inside the file's synced length, so their `fdatasync` has no
    /// metadata to commit: on ext4 it skips the journal commit, about a fifth
    /// of a small sync here (and more of its tail). Runs after the group's
    /// callers were answered; appends arriving meanwhile wait for it. Large
    /// groups amortise the commit themselves and would only pay for writing
    /// every byte twice, so they skip it. The runway never passes the
    /// segment size, and is cut at a roll.
    pub(crate) fn extend_runway(&mut self, group_bytes: usize) {
        if !self.cfg.fsync() || self.poisoned.is_some() || group_bytes > RUNWAY_GROUP_MAX {
            return;
        }
        let limit = self.cfg.segment_bytes.min(u64::from(u32::MAX));
        let Some(a) = self.active.as_mut() else {
            return;
        };
        if a.runway_failed || a.zeroed >= limit || a.zeroed - a.len >= RUNWAY_LOW {
            return;
        }
        let from = a.zeroed;
        let to = (from + RUNWAY_CHUNK).min(limit);
        let zeros = self
            .zeros
            .get_or_insert_with(|| vec![0; RUNWAY_CHUNK as usize].into_boxed_slice());
        let written = a
            .file
            .write_all_at(&zeros[..(to - from) as usize], from)
            .and_then(|()| a.file.sync_data());
        match written {
            Ok(()) => a.zeroed = to,
            Err(e) => {
                // Zeros past the data are harmless (recovery keeps them,
                // a roll cuts them); only the speed-up is lost. Unlike a
                // failed sync of data, a failed sync here is not fatal: every
                // acknowledged byte was synced before, and appends that later
                // overwrite these pages dirty them again, so their own sync
                // reports any new write-back error.
                warn!(log = %self.shared.id, error = %e,
                    "could not extend a segment's zero-filled runway; appends continue without it");
                a.runway_failed = true;
            }
        }
    }

    /// Appends a group of batches and answers every caller.
    pub(crate) fn commit(&mut self, group: &mut Vec<AppendReq>) {
        if let Some(reason) = &self.poisoned {
            for req in group.drain(..) {
                let _ = req.reply.send(Err(StoreError::new(
                    "appending to a log that failed earlier (reopen to recover)",
                    reason.clone(),
                )));
            }
            return;
        }
        let (start_offset, start_time) = (self.next_offset, self.last_time_ns);
        let mut answers = Vec::with_capacity(group.len());
        match self.write_group(group, &mut answers) {
            Ok(()) => {
                self.publish();
                for (req, answer) in group.drain(..).zip(answers) {
                    let _ = req.reply.send(Ok(answer));
                }
            }
            Err(f) => {
                self.next_offset = start_offset;
                self.last_time_ns = start_time;
                let recovered = !f.fatal
                    && self.sealed.is_empty()
                    && self.active.as_mut().is_none_or(|a| a.rollback().is_ok());
                if !recovered {
                    error!(log = %self.shared.id, error = %f.error, context = f.context,
                        "log writer failed; appends refused until restart");
                    self.poisoned = Some(format!("{}: {}", f.context, f.error));
                }
                for req in group.drain(..) {
                    let e = io::Error::new(f.error.kind(), f.error.to_string());
                    let _ = req.reply.send(Err(StoreError::new(f.context, e)));
                }
            }
        }
    }

    fn write_group(
        &mut self,
        group: &mut [AppendReq],
        answers: &mut Vec<Appended>,
    ) -> Result<(), Failure> {
        let mut pending: Vec<usize> = Vec::with_capacity(group.len());
        let mut pending_bytes = 0u64;
        for i in 0..group.len() {
            let req = &group[i];
            let time = self
                .last_time_ns
                .map_or(req.time_ns, |t| t.max(req.time_ns));
            let count = req.batch.count;
            let len = req.batch.buf.len() as u64;
            if count == 0 {
                answers.push(Appended {
                    first_offset: self.next_offset,
                    publish_time_ns: time,
                });
                continue;
            }
            if self.active.is_none() {
                self.start_segment()?;
            }
            let cur = self.active.as_ref().map_or(0, |a| a.len) + pending_bytes;
            if cur > 0 && (cur >= self.cfg.segment_bytes || cur + len > u64::from(u32::MAX)) {
                self.flush(group, &mut pending)?;
                pending_bytes = 0;
                self.roll()?;
            }
            let Some(a) = self.active.as_mut() else {
                return Err(io_fail("appending")(io::Error::other("no active segment")));
            };
            let offset = self.next_offset;
            let pos = a.len + pending_bytes;
            batch::finish_header(&mut group[i].batch, offset, time);
            if index::wants_entry(a.last_entry_pos, pos) {
                a.unflushed.push(IndexEntry {
                    rel: (offset - a.seg.base) as u32,
                    pos: pos as u32,
                    time_ms: index::time_ms(time),
                });
                a.last_entry_pos = Some(pos);
            }
            a.end = offset + u64::from(count);
            a.max_time_ms = index::time_ms(time);
            pending.push(i);
            pending_bytes += len;
            self.next_offset = a.end;
            self.last_time_ns = Some(time);
            answers.push(Appended {
                first_offset: offset,
                publish_time_ns: time,
            });
        }
        self.flush(group, &mut pending)?;
        if self.dirty
            && self.cfg.fsync()
            && let Some(a) = &self.active
        {
            let started = std::time::Instant::now();
            a.file
                .sync_data()
                .map_err(sync_fail("syncing a log segment"))?;
            ams_core::metrics::observe_sync("log", started.elapsed().as_secs_f64());
        }
        self.dirty = false;
        Ok(())
    }

    /// Writes the pending batches to the active segment with one write, then
    /// their index points.
    fn flush(&mut self, group: &[AppendReq], pending: &mut Vec<usize>) -> Result<(), Failure> {
        let Some(a) = self.active.as_mut() else {
            return Ok(());
        };
        if pending.is_empty() {
            return Ok(());
        }
        let data: &[u8] = if let [only] = pending[..] {
            &group[only].batch.buf
        } else {
            self.buf.clear();
            for &i in pending.iter() {
                self.buf.extend_from_slice(&group[i].batch.buf);
            }
            &self.buf
        };
        a.file
            .write_all_at(data, a.len)
            .map_err(io_fail("writing a log segment"))?;
        a.len += data.len() as u64;
        a.zeroed = a.zeroed.max(a.len);
        pending.clear();
        if self.buf.capacity() > MAX_GROUP_BYTES * 2 {
            self.buf = Vec::new();
        }
        self.dirty = true;
        a.write_index().map_err(io_fail("writing a segment index"))
    }

    /// Seals the active segment and starts the next one.
    fn roll(&mut self) -> Result<(), Failure> {
        let Some(mut a) = self.active.take() else {
            return Ok(());
        };
        if let Err(f) = self.seal(&mut a) {
            // Still the active segment: a non-fatal failure rolls it back
            // to its published state (see `commit`).
            self.active = Some(a);
            return Err(f);
        }
        self.sealed.push(a);
        self.start_segment()
    }

    /// Makes `a` a sealed segment: runway cut, data synced (tier fsync),
    /// index points written, seal entry written, indexes synced (tier fsync).
    fn seal(&mut self, a: &mut Active) -> Result<(), Failure> {
        let fsync = self.cfg.fsync();
        // Start-up trusts a sealed segment's file length: a runway left past
        // its data is cut (and the cut synced) before the next segment exists.
        let file_len = a
            .file
            .metadata()
            .map_err(io_fail("sealing a segment"))?
            .len();
        let cut = file_len > a.len;
        if cut {
            a.file
                .set_len(a.len)
                .map_err(io_fail("sealing a segment"))?;
            self.dirty = true;
        }
        a.zeroed = a.len;
        if (fsync || cut) && self.dirty {
            let started = std::time::Instant::now();
            a.file
                .sync_data()
                .map_err(sync_fail("syncing a log segment"))?;
            ams_core::metrics::observe_sync("log", started.elapsed().as_secs_f64());
        }
        self.dirty = false;
        a.write_backlog()
            .map_err(io_fail("writing a segment index"))?;
        // The seal entry: newest time and last offset, so that start-up can
        // trust this segment's indexes without reading its payload.
        let mut seal = Vec::with_capacity(index::TIX_ENTRY);
        index::encode_tix_one(a.max_time_ms, a.end - 1, &mut seal);
        let at = a.entries_written * index::TIX_ENTRY as u64;
        a.tix_file()
            .and_then(|f| f.write_all_at(&seal, at))
            .map_err(sync_fail("sealing a segment"))?;
        if fsync {
            a.idx_file()
                .and_then(|f| f.sync_data())
                .and_then(|()| a.tix_file()?.sync_data())
                .map_err(sync_fail("syncing a segment index"))?;
        }
        a.idx = None;
        a.tix = None;
        Ok(())
    }

    /// Creates the segment starting at `next_offset` (and the log directory).
    fn start_segment(&mut self) -> Result<(), Failure> {
        let fsync = self.cfg.fsync();
        let dir = self.shared.dir.clone();
        if !self.dir_exists {
            fs::create_dir_all(&dir).map_err(io_fail("creating a log directory"))?;
            if fsync {
                segment::sync_dir(&self.root).map_err(sync_fail("syncing the log root"))?;
            }
            self.dir_exists = true;
        }
        let base = self.next_offset;
        let path = dir.join(segment::file_name(base, "log"));
        let fail = io_fail("creating a segment");
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(io_fail("creating a segment"))?;
                if f.metadata().map_err(io_fail("creating a segment"))?.len() != 0 {
                    return Err(fail(io::Error::other(format!(
                        "{} already exists",
                        path.display()
                    ))));
                }
                f
            }
            Err(e) => return Err(fail(e)),
        };
        let mut index_files = Vec::with_capacity(2);
        for ext in ["idx", "tix"] {
            let f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(path.with_extension(ext))
                .map_err(io_fail("creating a segment index"))?;
            index_files.push(f);
        }
        if fsync {
            segment::sync_dir(&dir).map_err(sync_fail("syncing a log directory"))?;
        }
        let file = Arc::new(file);
        let seg = Arc::new(Segment::new(
            base,
            path,
            Some(file.clone()),
            0,
            base,
            i64::MIN,
            Vec::new(),
        ));
        self.new_segments.push(seg.clone());
        let mut active = Active::new(seg, file, None);
        active.tix = index_files.pop();
        active.idx = index_files.pop();
        self.active = Some(active);
        Ok(())
    }

    /// Makes the group visible: segments first, then the high-water mark, then
    /// the wake-up.
    fn publish(&mut self) {
        for mut a in self.sealed.drain(..) {
            a.publish();
        }
        if let Some(a) = self.active.as_mut() {
            a.publish();
        }
        let bounds = {
            let mut st = self.shared.state.write();
            st.segments.append(&mut self.new_segments);
            st.bounds.max = self.next_offset;
            st.bounds
        };
        self.shared.watch.send_replace(bounds);
    }

    /// Flushes the active segment and its indexes to disk (clean shutdown).
    pub(crate) fn sync_all(&mut self) -> io::Result<()> {
        if let Some(a) = self.active.as_mut() {
            a.write_backlog()?;
            a.file.sync_data()?;
            a.idx_file()?.sync_data()?;
            a.tix_file()?.sync_data()?;
        }
        Ok(())
    }
}

/// Largest group committed on the writer task itself (see [`Writer::commits_inline`]).
const INLINE_MAX_BYTES: usize = 256 << 10;

/// The runway is extended once fewer than this many zero bytes are left.
pub(crate) const RUNWAY_LOW: u64 = 128 << 10;

/// The runway is extended by this many bytes at a time: small, because the
/// next append waits for it (~0.3 ms here), large enough that its own journal
/// commit is shared by a hundred small appends.
pub(crate) const RUNWAY_CHUNK: u64 = 256 << 10;

/// Groups larger than this do not extend the runway: writing the zeros costs
/// about as much as the journal commit they save.
pub(crate) const RUNWAY_GROUP_MAX: usize = 16 << 10;

/// The writer task of one log.
///
/// In tier write the task parks the writer back in the log's slot once its
/// queue drains, so that the next small append commits without a task hop
/// (see `SegmentLog::append`). Parking happens under the slot lock, which
/// every sender holds while it sends: nothing can be queued after the final
/// check. The lock is only tried: its holder is an appender about to queue
/// or a delete/close about to send `Stop`, and waiting for either would
/// deadlock or be pointless. In tier fsync the task stays, as starting one
/// per group would cost more than it saves next to a sync.
pub(crate) async fn run(
    mut writer: Box<Writer>,
    mut rx: mpsc::UnboundedReceiver<Command>,
    log: Weak<LogHandle>,
) {
    let mut group: Vec<AppendReq> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut stop = None;
        let mut bytes = 0usize;
        let mut next = Some(first);
        while let Some(cmd) = next.take() {
            match cmd {
                Command::Append(req) => {
                    bytes += req.batch.buf.len();
                    group.push(req);
                }
                Command::Stop(tx) => {
                    stop = Some(tx);
                    break;
                }
            }
            if bytes < MAX_GROUP_BYTES {
                next = rx.try_recv().ok();
            }
        }
        if !group.is_empty() && writer.commits_inline(bytes) {
            writer.commit(&mut group);
        } else if !group.is_empty() {
            let mut taken = std::mem::take(&mut group);
            let joined = tokio::task::spawn_blocking(move || {
                writer.commit(&mut taken);
                writer.extend_runway(bytes);
                (writer, taken)
            })
            .await;
            match joined {
                Ok((w, g)) => {
                    writer = w;
                    group = g;
                }
                // A panic in the writer: its callers see their reply dropped,
                // later appends see the channel closed.
                Err(_) => return,
            }
        }
        if let Some(tx) = stop {
            let _ = tx.send(writer);
            return;
        }
        if !writer.cfg.fsync()
            && rx.is_empty()
            && let Some(h) = log.upgrade()
            && let Ok(mut slot) = h.slot.try_lock()
            && rx.is_empty()
            && matches!(*slot, Slot::Running(_))
        {
            *slot = Slot::Idle(writer);
            return;
        }
    }
}
