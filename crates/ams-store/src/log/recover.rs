//! Loading a log directory at start-up.
//!
//! Sealed segments are trusted through their index files (fsynced at seal in
//! the fsync tier) and their payload is not read. Only if a sealed segment's
//! indexes are missing or inconsistent is it rebuilt by a scan. The tail segment
//! is scanned from its last index point that designates a valid batch; the scan
//! validates every batch, rebuilds the index points the (unsynced) tail index
//! lacks and truncates the file at the first torn or corrupt batch, but keeps
//! a tail of zeros (the writer's runway, see `Writer::extend_runway`).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::Arc;

use tracing::{debug, warn};

use super::batch::{self, HEADER_LEN};
use super::index::{self, IndexEntry};
use super::segment::{self, ChunkReader, Segment};
use super::writer::{Active, WriterConfig};

/// A log as found on disk.
pub(crate) struct Recovered {
    /// Its segments, oldest first (the last one is the tail).
    pub(crate) segments: Vec<Arc<Segment>>,
    /// The tail, ready for appends.
    pub(crate) active: Option<Active>,
    /// The next offset to assign.
    pub(crate) next_offset: u64,
    /// Publish time of the newest batch (or an upper bound of it).
    pub(crate) last_time_ns: Option<i64>,
}

fn read_or_empty(path: &Path) -> io::Result<Vec<u8>> {
    match fs::read(path) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Loads the log stored in `dir`.
pub(crate) fn load_log(dir: &Path, cfg: &WriterConfig) -> io::Result<Recovered> {
    let mut bases = Vec::new();
    let mut others = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some((base, ext)) = name.to_str().and_then(segment::parse_file_name) else {
            continue;
        };
        match ext {
            "log" => bases.push(base),
            "idx" | "tix" => others.push((base, entry.path())),
            _ => {}
        }
    }
    bases.sort_unstable();
    // Index files whose segment is gone (a crash during retention).
    for (base, path) in others {
        if bases.binary_search(&base).is_err() {
            let _ = fs::remove_file(path);
        }
    }
    let mut segments = Vec::with_capacity(bases.len());
    let Some((&tail, sealed)) = bases.split_last() else {
        return Ok(Recovered {
            segments,
            active: None,
            next_offset: 0,
            last_time_ns: None,
        });
    };
    for (i, &base) in sealed.iter().enumerate() {
        let next_base = bases[i + 1];
        segments.push(Arc::new(load_sealed(dir, base, next_base, cfg)?));
    }
    let prev_max_ms = segments.last().map(|s| s.max_time_ms());
    let (seg, active, last_time_ns) = recover_tail(dir, tail, cfg)?;
    let next_offset = seg.end();
    segments.push(seg);
    // An empty tail: the previous segment's newest time, rounded up to the
    // last nanosecond of its millisecond, keeps publish times monotonic.
    let last_time_ns = last_time_ns.or_else(|| {
        prev_max_ms
            .filter(|&ms| ms != i64::MIN)
            .map(|ms| ms.saturating_mul(1_000_000).saturating_add(999_999))
    });
    Ok(Recovered {
        segments,
        active: Some(active),
        next_offset,
        last_time_ns,
    })
}

/// Checks a sealed segment's indexes: `.tix` has one entry per `.idx` entry
/// plus a final seal entry naming the segment's last offset and newest time.
fn trusted_index(
    base: u64,
    next_base: u64,
    file_len: u64,
    idx: &[u8],
    tix: &[u8],
) -> Option<(Vec<IndexEntry>, i64)> {
    if !idx.len().is_multiple_of(index::IDX_ENTRY) || !tix.len().is_multiple_of(index::TIX_ENTRY) {
        return None;
    }
    let idx = index::parse_idx(idx);
    let tix = index::parse_tix(tix);
    if idx.is_empty() || tix.len() != idx.len() + 1 {
        return None;
    }
    let entries = index::join(base, file_len, &idx, &tix);
    let (seal_ms, seal_offset) = tix[idx.len()];
    let last = entries.last()?;
    if entries.len() != idx.len()
        || next_base == 0
        || seal_offset != next_base - 1
        || base + u64::from(last.rel) > seal_offset
        || seal_ms < last.time_ms
    {
        return None;
    }
    Some((entries, seal_ms))
}

/// Writes a segment's index files from scratch.
pub(crate) fn write_index_files(
    seg_path: &Path,
    base: u64,
    entries: &[IndexEntry],
    seal: Option<(i64, u64)>,
    sync: bool,
) -> io::Result<()> {
    let mut idx = Vec::with_capacity(entries.len() * index::IDX_ENTRY);
    index::encode_idx(entries, &mut idx);
    let mut tix = Vec::with_capacity((entries.len() + 1) * index::TIX_ENTRY);
    index::encode_tix(base, entries, &mut tix);
    if let Some((ms, offset)) = seal {
        index::encode_tix_one(ms, offset, &mut tix);
    }
    for (ext, bytes) in [("idx", idx), ("tix", tix)] {
        let mut f = File::create(seg_path.with_extension(ext))?;
        io::Write::write_all(&mut f, &bytes)?;
        if sync {
            f.sync_data()?;
        }
    }
    Ok(())
}

fn load_sealed(dir: &Path, base: u64, next_base: u64, cfg: &WriterConfig) -> io::Result<Segment> {
    let path = dir.join(segment::file_name(base, "log"));
    let file_len = fs::metadata(&path)?.len();
    let idx = read_or_empty(&path.with_extension("idx"))?;
    let tix = read_or_empty(&path.with_extension("tix"))?;
    if let Some((entries, max_ms)) = trusted_index(base, next_base, file_len, &idx, &tix) {
        return Ok(Segment::new(
            base, path, None, file_len, next_base, max_ms, entries,
        ));
    }
    warn!(segment = %path.display(), "index of a sealed segment is missing or inconsistent; rebuilding it");
    let file = File::open(&path)?;
    let mut entries = Vec::new();
    let scan = segment::scan(&file, file_len, base, 0, base, &mut entries, None)?;
    if scan.valid_len < file_len {
        warn!(
            segment = %path.display(),
            valid = scan.valid_len,
            len = file_len,
            "sealed segment holds invalid data past its valid prefix; it will not be read"
        );
    }
    let max_ms = scan.last_time_ns.map_or(i64::MIN, index::time_ms);
    let end = scan.end.min(next_base);
    let seal = (scan.end > base).then(|| (max_ms, scan.end - 1));
    if let Err(e) = write_index_files(&path, base, &entries, seal, cfg.fsync()) {
        warn!(segment = %path.display(), error = %e, "could not rewrite a segment index");
    }
    Ok(Segment::new(
        base,
        path,
        Some(Arc::new(file)),
        scan.valid_len,
        end,
        max_ms,
        entries,
    ))
}

/// Recovers the tail segment: returns it, its writer state and the newest
/// publish time found in it.
fn recover_tail(
    dir: &Path,
    base: u64,
    cfg: &WriterConfig,
) -> io::Result<(Arc<Segment>, Active, Option<i64>)> {
    let path = dir.join(segment::file_name(base, "log"));
    let file = OpenOptions::new().read(true).write(true).open(&path)?;
    let file_len = file.metadata()?.len();
    let idx_bytes = read_or_empty(&path.with_extension("idx"))?;
    let tix_bytes = read_or_empty(&path.with_extension("tix"))?;
    let mut entries = index::join(
        base,
        file_len,
        &index::parse_idx(&idx_bytes),
        &index::parse_tix(&tix_bytes),
    );
    // The last index point that designates a valid batch.
    let mut reader = ChunkReader::new(&file, file_len, HEADER_LEN);
    while let Some(e) = entries.last() {
        let pos = u64::from(e.pos);
        let need = match batch::parse_header(reader.bytes_at(pos, HEADER_LEN)?) {
            Ok(h) if pos + u64::from(h.len) <= file_len => h.len as usize,
            _ => 0,
        };
        let good = need > 0
            && match batch::verify_deep(reader.bytes_at(pos, need)?) {
                Ok((h, _)) => {
                    h.base_offset == base + u64::from(e.rel)
                        && index::time_ms(h.time_ns) == e.time_ms
                }
                Err(_) => false,
            };
        if good {
            break;
        }
        entries.pop();
    }
    let (start_pos, start_offset, last_entry_pos) = match entries.last() {
        Some(e) => (
            u64::from(e.pos),
            base + u64::from(e.rel),
            Some(u64::from(e.pos)),
        ),
        None => (0, base, None),
    };
    let scan = segment::scan(
        &file,
        file_len,
        base,
        start_pos,
        start_offset,
        &mut entries,
        last_entry_pos,
    )?;
    // Zeros after the data are the writer's runway (or a crash after the
    // size grew but before the data landed): kept, as they are, for appends
    // to overwrite. Anything else is a torn or corrupt batch.
    let mut kept_len = scan.valid_len;
    if scan.valid_len < file_len {
        if all_zero(&file, scan.valid_len, file_len)? {
            debug!(
                segment = %path.display(),
                valid = scan.valid_len,
                len = file_len,
                "keeping the zeros after the tail's data"
            );
            kept_len = file_len;
        } else {
            warn!(
                segment = %path.display(),
                valid = scan.valid_len,
                len = file_len,
                "truncating a torn or corrupt tail"
            );
            file.set_len(scan.valid_len)?;
            if cfg.fsync() {
                file.sync_data()?;
            }
        }
    }
    // Rewrite the tail's index files if they differ from what was rebuilt.
    let mut idx = Vec::with_capacity(entries.len() * index::IDX_ENTRY);
    index::encode_idx(&entries, &mut idx);
    let mut tix = Vec::with_capacity(entries.len() * index::TIX_ENTRY);
    index::encode_tix(base, &entries, &mut tix);
    if idx != idx_bytes || tix != tix_bytes {
        write_index_files(&path, base, &entries, None, false)?;
    }
    let max_ms = scan.last_time_ns.map_or(i64::MIN, index::time_ms);
    let file = Arc::new(file);
    let seg = Arc::new(Segment::new(
        base,
        path,
        Some(file.clone()),
        scan.valid_len,
        scan.end,
        max_ms,
        entries,
    ));
    let active = Active::recovered(seg.clone(), file, scan.last_entry_pos, kept_len);
    Ok((seg, active, scan.last_time_ns))
}

/// Whether the bytes of `file` in `from..to` are all zero.
fn all_zero(file: &File, from: u64, to: u64) -> io::Result<bool> {
    let mut reader = ChunkReader::new(file, to, 64 << 10);
    let mut pos = from;
    while pos < to {
        // Never empty before the limit: the rest of a chunk.
        let bytes = reader.bytes_at(pos, 1)?;
        if bytes.iter().any(|&b| b != 0) {
            return Ok(false);
        }
        pos += bytes.len() as u64;
    }
    Ok(true)
}
