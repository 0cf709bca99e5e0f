//! Reads by offset and by time. Run on a blocking thread; they take no lock
//! but the brief read locks of a segment's index.

use std::sync::Arc;

use ams_core::storage::{StoreError, StoredMessage};
use uuid::Uuid;

use super::batch::{self, HEADER_LEN, Messages};
use super::cache::{BatchCache, MIN_CACHED};
use super::index;
use super::segment::{ChunkReader, Segment};

/// Read-ahead of a read by offset: between these bounds, sized after what the
/// caller asked for (the start is at most about one index interval before the
/// first wanted message).
const MIN_READ_CHUNK: usize = 8 << 10;
const MAX_READ_CHUNK: usize = 256 << 10;
/// Read-ahead of the forward scan of a time lookup (about one index interval).
const TIME_CHUNK: usize = 8 << 10;

fn read_error(seg: &Segment, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
    StoreError::new(format!("reading log segment {}", seg.path.display()), e)
}

/// What a message costs beyond its payload once read and rendered (offset,
/// time, ack id, JSON punctuation). Charged against `max_bytes` so that a read of
/// many tiny messages is bounded too.
pub(crate) const MESSAGE_COST: usize = 192;

/// Reads messages `from..max` from `segs` (the segments from the one holding
/// `from` on), at most `max_messages` and, past the first, about `max_bytes`
/// (payload plus [`MESSAGE_COST`] per message).
pub(crate) fn read_messages(
    log: Uuid,
    cache: &BatchCache,
    segs: &[Arc<Segment>],
    from: u64,
    max: u64,
    max_messages: usize,
    max_bytes: usize,
) -> Result<Vec<StoredMessage>, StoreError> {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    let mut next = from;
    let wanted = max_bytes.min(max_messages.saturating_mul(1 << 10));
    let chunk = wanted
        .saturating_add(MIN_READ_CHUNK)
        .clamp(MIN_READ_CHUNK, MAX_READ_CHUNK);
    'segments: for seg in segs {
        if next >= max || out.len() >= max_messages {
            break;
        }
        let seg_end = seg.end();
        if next >= seg_end {
            continue;
        }
        next = next.max(seg.base);
        let Some(file) = seg.file().map_err(|e| read_error(seg, e))? else {
            continue; // removed by retention meanwhile
        };
        let limit = seg.len();
        let mut pos = seg.position_for(next);
        let mut reader = ChunkReader::new(&file, limit, chunk);
        while pos < limit {
            let head = reader
                .bytes_at(pos, HEADER_LEN)
                .map_err(|e| read_error(seg, e))?;
            let h = batch::parse_header(head).map_err(|e| read_error(seg, e))?;
            if h.end_offset() <= next {
                pos += u64::from(h.len);
                continue;
            }
            // Only large batches are ever cached: small ones skip the lookup.
            let key = (log, seg.base, pos);
            let cached = (h.len as usize >= MIN_CACHED)
                .then(|| cache.get(&key))
                .flatten();
            let (h, whole) = match &cached {
                Some(b) => (h, &b[..]),
                None => {
                    let bytes_at = reader
                        .bytes_at(pos, h.len as usize)
                        .map_err(|e| read_error(seg, e))?;
                    batch::verify(bytes_at).map_err(|e| read_error(seg, e))?
                }
            };
            // A read that stops inside a large batch will likely be followed
            // by one that starts there: keep it, verified.
            let keep = |cache: &BatchCache| {
                if cached.is_none() {
                    cache.put(key, whole);
                }
            };
            for (i, m) in Messages::new(whole, h.count).enumerate() {
                let m = m.map_err(|e| read_error(seg, e))?;
                let offset = h.base_offset + i as u64;
                if offset < next {
                    continue;
                }
                if offset >= max || offset >= seg_end {
                    continue 'segments;
                }
                let cost = m.payload_len + MESSAGE_COST;
                if out.len() >= max_messages || (!out.is_empty() && bytes + cost > max_bytes) {
                    keep(cache);
                    break 'segments;
                }
                let (attributes, data) = m.decode().map_err(|e| read_error(seg, e))?;
                bytes += cost;
                out.push(StoredMessage {
                    offset,
                    publish_time_ns: h.time_ns,
                    attributes,
                    data,
                });
                next = offset + 1;
            }
            pos += u64::from(h.len);
        }
    }
    Ok(out)
}

/// The first offset below `max` whose publish time (ms) is `>= time_ms`.
pub(crate) fn offset_at_time(
    segs: &[Arc<Segment>],
    time_ms: i64,
    max: u64,
) -> Result<Option<u64>, StoreError> {
    let segs: Vec<&Arc<Segment>> = segs.iter().filter(|s| !s.is_empty()).collect();
    // Publish times are monotonic across segments: skip every segment whose
    // newest message is older.
    let first = segs.partition_point(|s| s.max_time_ms() < time_ms);
    for seg in &segs[first..] {
        let start = {
            let idx = seg.index.read();
            let j = idx.partition_point(|e| e.time_ms < time_ms);
            match j.checked_sub(1) {
                // The segment's first batch (always an index point) qualifies.
                None if !idx.is_empty() => return Ok(Some(seg.base).filter(|&o| o < max)),
                None => 0,
                Some(j) => u64::from(idx[j].pos),
            }
        };
        let Some(file) = seg.file().map_err(|e| read_error(seg, e))? else {
            continue;
        };
        let limit = seg.len();
        let mut reader = ChunkReader::new(&file, limit, TIME_CHUNK);
        let mut pos = start;
        while pos < limit {
            let head = reader
                .bytes_at(pos, HEADER_LEN)
                .map_err(|e| read_error(seg, e))?;
            let h = batch::parse_header(head).map_err(|e| read_error(seg, e))?;
            if index::time_ms(h.time_ns) >= time_ms {
                return Ok(Some(h.base_offset).filter(|&o| o < max));
            }
            pos += u64::from(h.len);
        }
    }
    Ok(None)
}
