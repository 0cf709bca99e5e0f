//! One segment: a `.log` file of record batches and its in-memory sparse index.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use super::batch::{self, HEADER_LEN};
use super::index::{self, IndexEntry};

/// `<base as 20 digits>.<ext>`.
pub(crate) fn file_name(base: u64, ext: &str) -> String {
    format!("{base:020}.{ext}")
}

/// Parses a segment file name into its base offset and extension.
pub(crate) fn parse_file_name(name: &str) -> Option<(u64, &str)> {
    let (stem, ext) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, ext))
}

/// A segment as readers see it. Everything beyond `len` bytes / `end` offset is
/// invisible: the writer advances these only after the bytes are durable in
/// the configured tier.
pub(crate) struct Segment {
    /// Offset of the segment's first message.
    pub(crate) base: u64,
    /// Path of the `.log` file.
    pub(crate) path: PathBuf,
    /// Opened on first use (sealed segments loaded at start-up stay closed
    /// until read).
    file: OnceLock<Arc<File>>,
    /// Committed bytes.
    pub(crate) len: AtomicU64,
    /// One past the last committed offset.
    pub(crate) end: AtomicU64,
    /// Publish time of the newest committed batch (ms; `i64::MIN` if none).
    pub(crate) max_time_ms: AtomicI64,
    /// Sparse index points of the committed batches.
    pub(crate) index: RwLock<Vec<IndexEntry>>,
}

impl Segment {
    /// A segment with the given committed state.
    pub(crate) fn new(
        base: u64,
        path: PathBuf,
        file: Option<Arc<File>>,
        len: u64,
        end: u64,
        max_time_ms: i64,
        index: Vec<IndexEntry>,
    ) -> Self {
        let cell = OnceLock::new();
        if let Some(f) = file {
            let _ = cell.set(f);
        }
        Self {
            base,
            path,
            file: cell,
            len: AtomicU64::new(len),
            end: AtomicU64::new(end),
            max_time_ms: AtomicI64::new(max_time_ms),
            index: RwLock::new(index),
        }
    }

    /// The open file, or `None` if it was removed (retention raced a read).
    pub(crate) fn file(&self) -> io::Result<Option<Arc<File>>> {
        if let Some(f) = self.file.get() {
            return Ok(Some(f.clone()));
        }
        match File::open(&self.path) {
            Ok(f) => {
                let _ = self.file.set(Arc::new(f));
                Ok(self.file.get().cloned())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Committed end offset.
    pub(crate) fn end(&self) -> u64 {
        self.end.load(Ordering::Acquire)
    }

    /// Committed length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len.load(Ordering::Acquire)
    }

    /// Newest committed publish time (ms).
    pub(crate) fn max_time_ms(&self) -> i64 {
        self.max_time_ms.load(Ordering::Acquire)
    }

    /// Whether the segment holds no committed message.
    pub(crate) fn is_empty(&self) -> bool {
        self.end() <= self.base
    }

    /// File position of the batch to start reading at for `offset`.
    pub(crate) fn position_for(&self, offset: u64) -> u64 {
        let idx = self.index.read();
        index::lookup(&idx, self.base, offset).map_or(0, |e| u64::from(e.pos))
    }

    /// Path of a sibling file (`idx`, `tix`).
    pub(crate) fn sibling(&self, ext: &str) -> PathBuf {
        self.path.with_extension(ext)
    }
}

/// Reads a file forward in chunks, so that parsing many small batches costs one
/// `pread` per chunk rather than per batch.
pub(crate) struct ChunkReader<'f> {
    file: &'f File,
    limit: u64,
    chunk: usize,
    buf: Vec<u8>,
    start: u64,
}

impl<'f> ChunkReader<'f> {
    /// Reads `file` up to `limit` bytes, `chunk` bytes at a time.
    pub(crate) fn new(file: &'f File, limit: u64, chunk: usize) -> Self {
        Self {
            file,
            limit,
            chunk,
            buf: Vec::new(),
            start: 0,
        }
    }

    /// The bytes from `pos` on: at least `need` of them unless the limit comes
    /// first (then all up to the limit).
    pub(crate) fn bytes_at(&mut self, pos: u64, need: usize) -> io::Result<&[u8]> {
        let have_end = self.start + self.buf.len() as u64;
        let want_end = (pos + need as u64).min(self.limit);
        if pos < self.start || want_end > have_end || (pos >= have_end && pos < self.limit) {
            let avail = self.limit.saturating_sub(pos);
            let n = (need.max(self.chunk) as u64).min(avail) as usize;
            self.buf.clear();
            self.buf.resize(n, 0);
            self.file.read_exact_at(&mut self.buf, pos)?;
            self.start = pos;
        }
        let from = usize::try_from(pos - self.start).unwrap_or(usize::MAX);
        Ok(self.buf.get(from..).unwrap_or_default())
    }
}

/// Chunk size of recovery scans.
const SCAN_CHUNK: usize = 1 << 20;

/// What a recovery scan found.
#[derive(Debug)]
pub(crate) struct Scan {
    /// Position after the last valid batch.
    pub(crate) valid_len: u64,
    /// One past the last valid offset.
    pub(crate) end: u64,
    /// Publish time of the last valid batch, if any was scanned.
    pub(crate) last_time_ns: Option<i64>,
    /// Position of the last index point.
    pub(crate) last_entry_pos: Option<u64>,
}

/// Scans `file` (a segment at `base`, `file_len` bytes) from `pos`, where a
/// batch with base offset `expected` must start, validating every batch
/// (length, CRC, structure, dense offsets, monotonic time) and adding the index
/// points it passes to `entries`. Stops at the first invalid or incomplete batch.
pub(crate) fn scan(
    file: &File,
    file_len: u64,
    base: u64,
    mut pos: u64,
    mut expected: u64,
    entries: &mut Vec<IndexEntry>,
    mut last_entry_pos: Option<u64>,
) -> io::Result<Scan> {
    let mut reader = ChunkReader::new(file, file_len, SCAN_CHUNK);
    let mut last_time: Option<i64> = None;
    while pos < file_len {
        let Ok(h) = batch::parse_header(reader.bytes_at(pos, HEADER_LEN)?) else {
            break;
        };
        if pos + u64::from(h.len) > file_len {
            break;
        }
        if batch::verify_deep(reader.bytes_at(pos, h.len as usize)?).is_err() {
            break;
        }
        let rel = h.base_offset.wrapping_sub(base);
        if h.base_offset != expected
            || rel > u64::from(u32::MAX)
            || pos + u64::from(h.len) > u64::from(u32::MAX)
            || last_time.is_some_and(|t| h.time_ns < t)
        {
            break;
        }
        if index::wants_entry(last_entry_pos, pos) {
            entries.push(IndexEntry {
                rel: rel as u32,
                pos: pos as u32,
                time_ms: index::time_ms(h.time_ns),
            });
            last_entry_pos = Some(pos);
        }
        pos += u64::from(h.len);
        expected = h.end_offset();
        last_time = Some(h.time_ns);
    }
    Ok(Scan {
        valid_len: pos,
        end: expected,
        last_time_ns: last_time,
        last_entry_pos,
    })
}

/// Fsyncs a directory (so that created, renamed or removed entries persist).
pub(crate) fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}
