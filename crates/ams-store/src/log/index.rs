//! Sparse offset (`.idx`) and time (`.tix`) indexes of a segment.

/// An index point is taken at the first batch that starts at least this many
/// bytes after the previous index point (and at every segment's first batch).
pub(crate) const INDEX_INTERVAL: u64 = 4096;
/// Bytes per `.idx` entry: relative offset u32, file position u32.
pub(crate) const IDX_ENTRY: usize = 8;
/// Bytes per `.tix` entry: publish time in ms i64, absolute offset u64.
pub(crate) const TIX_ENTRY: usize = 16;

/// One index point, in memory: the batch that starts at `pos` has base offset
/// `segment base + rel` and publish time `time_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    /// Base offset of the batch, relative to the segment's base offset.
    pub(crate) rel: u32,
    /// File position of the batch.
    pub(crate) pos: u32,
    /// Publish time of the batch, ms since the epoch.
    pub(crate) time_ms: i64,
}

/// Publish time truncated to milliseconds.
pub(crate) fn time_ms(ns: i64) -> i64 {
    ns.div_euclid(1_000_000)
}

/// Whether a batch starting at `pos` gets an index point.
pub(crate) fn wants_entry(last_entry_pos: Option<u64>, pos: u64) -> bool {
    last_entry_pos.is_none_or(|last| pos >= last + INDEX_INTERVAL)
}

/// Appends the `.idx` encoding of `entries` to `out`.
pub(crate) fn encode_idx(entries: &[IndexEntry], out: &mut Vec<u8>) {
    for e in entries {
        out.extend_from_slice(&e.rel.to_le_bytes());
        out.extend_from_slice(&e.pos.to_le_bytes());
    }
}

/// Appends one `.tix` entry to `out`.
pub(crate) fn encode_tix_one(time_ms: i64, offset: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(&time_ms.to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
}

/// Appends the `.tix` encoding of `entries` (of a segment at `base`) to `out`.
pub(crate) fn encode_tix(base: u64, entries: &[IndexEntry], out: &mut Vec<u8>) {
    for e in entries {
        encode_tix_one(e.time_ms, base + u64::from(e.rel), out);
    }
}

/// Decodes `.idx` bytes into `(rel, pos)` pairs, ignoring a partial last entry.
pub(crate) fn parse_idx(bytes: &[u8]) -> Vec<(u32, u32)> {
    bytes
        .chunks_exact(IDX_ENTRY)
        .map(|c| {
            let (a, b) = c.split_at(4);
            (
                u32::from_le_bytes(a.try_into().unwrap_or_default()),
                u32::from_le_bytes(b.try_into().unwrap_or_default()),
            )
        })
        .collect()
}

/// Decodes `.tix` bytes into `(time_ms, offset)` pairs, ignoring a partial last entry.
pub(crate) fn parse_tix(bytes: &[u8]) -> Vec<(i64, u64)> {
    bytes
        .chunks_exact(TIX_ENTRY)
        .map(|c| {
            let (a, b) = c.split_at(8);
            (
                i64::from_le_bytes(a.try_into().unwrap_or_default()),
                u64::from_le_bytes(b.try_into().unwrap_or_default()),
            )
        })
        .collect()
}

/// Joins the two files' entries of a segment at `base` for as long as they
/// agree and are well-formed (strictly increasing offsets and positions below
/// `file_len`, non-decreasing times, first entry at the segment's start).
pub(crate) fn join(
    base: u64,
    file_len: u64,
    idx: &[(u32, u32)],
    tix: &[(i64, u64)],
) -> Vec<IndexEntry> {
    let mut out: Vec<IndexEntry> = Vec::with_capacity(idx.len().min(tix.len()));
    for (&(rel, pos), &(time_ms, offset)) in idx.iter().zip(tix) {
        let well_placed = match out.last() {
            None => rel == 0 && pos == 0,
            Some(prev) => rel > prev.rel && pos > prev.pos && time_ms >= prev.time_ms,
        };
        if !well_placed || offset != base + u64::from(rel) || u64::from(pos) >= file_len {
            break;
        }
        out.push(IndexEntry { rel, pos, time_ms });
    }
    out
}

/// The index point to start a scan for `offset` from: the last entry whose
/// batch starts at or before it.
pub(crate) fn lookup(entries: &[IndexEntry], base: u64, offset: u64) -> Option<&IndexEntry> {
    let rel = offset.saturating_sub(base);
    let i = entries.partition_point(|e| u64::from(e.rel) <= rel);
    i.checked_sub(1).map(|i| &entries[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_lookup() {
        let entries = vec![
            IndexEntry {
                rel: 0,
                pos: 0,
                time_ms: 5,
            },
            IndexEntry {
                rel: 10,
                pos: 5000,
                time_ms: 6,
            },
            IndexEntry {
                rel: 25,
                pos: 9100,
                time_ms: 6,
            },
        ];
        let (mut i, mut t) = (Vec::new(), Vec::new());
        encode_idx(&entries, &mut i);
        encode_tix(100, &entries, &mut t);
        i.push(1); // partial entry
        let joined = join(100, 10_000, &parse_idx(&i), &parse_tix(&t));
        assert_eq!(joined, entries);
        assert_eq!(join(100, 9100, &parse_idx(&i), &parse_tix(&t)).len(), 2);
        assert_eq!(lookup(&entries, 100, 100).unwrap().rel, 0);
        assert_eq!(lookup(&entries, 100, 109).unwrap().rel, 0);
        assert_eq!(lookup(&entries, 100, 110).unwrap().rel, 10);
        assert_eq!(lookup(&entries, 100, 1000).unwrap().rel, 25);
        assert!(lookup(&[], 100, 1000).is_none());
    }
}
