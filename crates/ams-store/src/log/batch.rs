//! Record batches: encoding, validation and decoding (the layout is documented
//! in the parent module).

use std::fmt;

use ams_core::storage::NewMessage;
use crc32fast::Hasher;

/// First byte of every batch.
pub(crate) const MAGIC: u8 = 0xA7;
/// Format version (second byte).
pub(crate) const VERSION: u8 = 1;
/// Bytes before the first message.
pub(crate) const HEADER_LEN: usize = 32;
/// The CRC covers the batch from this position to its end.
const CRC_START: usize = 12;

/// Batches up to this size are checksummed whole by the writer: combining
/// two CRCs costs about as much as hashing this many bytes.
const HASH_IN_WRITER_MAX: usize = 16 << 10;

/// A batch encoded by the appending task: header space (zeroed) followed by
/// the messages, plus, for a large batch, the CRC state of the message bytes,
/// so that the single writer only has to fill the header in and combine the
/// checksums.
pub(crate) struct EncodedBatch {
    /// The whole batch; the header is filled in by [`finish_header`].
    pub(crate) buf: Vec<u8>,
    /// CRC32 state over `buf[HEADER_LEN..]`; `None` for a batch of at most
    /// [`HASH_IN_WRITER_MAX`] bytes, which the writer hashes whole.
    pub(crate) body_crc: Option<Hasher>,
    /// Number of messages.
    pub(crate) count: u32,
}

fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_u32(buf, s.len() as u32);
    buf.extend_from_slice(s.as_bytes());
}

/// Encodes `messages` (header left zeroed). Fails if the batch would not fit
/// the 32-bit length field.
pub(crate) fn encode(messages: &[NewMessage]) -> Result<EncodedBatch, String> {
    let mut size = HEADER_LEN as u64;
    for m in messages {
        size += 8 + m.data.len() as u64;
        for (k, v) in &m.attributes {
            size += 8 + k.len() as u64 + v.len() as u64;
        }
    }
    let count = u32::try_from(messages.len()).map_err(|_| "too many messages".to_string())?;
    if size > u64::from(u32::MAX) {
        return Err(format!(
            "a batch of {size} bytes exceeds the 4 GiB record limit"
        ));
    }
    let mut buf = Vec::with_capacity(size as usize);
    buf.resize(HEADER_LEN, 0);
    for m in messages {
        put_u32(&mut buf, m.attributes.len() as u32);
        for (k, v) in &m.attributes {
            put_str(&mut buf, k);
            put_str(&mut buf, v);
        }
        put_str(&mut buf, &m.data);
    }
    let body_crc = (buf.len() > HASH_IN_WRITER_MAX).then(|| {
        let mut crc = Hasher::new();
        crc.update(&buf[HEADER_LEN..]);
        crc
    });
    Ok(EncodedBatch {
        buf,
        body_crc,
        count,
    })
}

/// Fills in the header of an encoded batch once its offset and time are known.
pub(crate) fn finish_header(batch: &mut EncodedBatch, base_offset: u64, time_ns: i64) {
    let len = batch.buf.len() as u32;
    let h = &mut batch.buf[..HEADER_LEN];
    h[0] = MAGIC;
    h[1] = VERSION;
    h[2..4].fill(0);
    h[4..8].copy_from_slice(&len.to_le_bytes());
    h[12..20].copy_from_slice(&base_offset.to_le_bytes());
    h[20..24].copy_from_slice(&batch.count.to_le_bytes());
    h[24..32].copy_from_slice(&time_ns.to_le_bytes());
    let crc = match &batch.body_crc {
        Some(body_crc) => {
            let mut crc = Hasher::new();
            crc.update(&h[CRC_START..HEADER_LEN]);
            crc.combine(body_crc);
            crc.finalize()
        }
        None => crc32fast::hash(&batch.buf[CRC_START..]),
    };
    batch.buf[8..12].copy_from_slice(&crc.to_le_bytes());
}

/// A parsed batch header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    /// Total length of the batch, header included.
    pub(crate) len: u32,
    /// Stored CRC32.
    pub(crate) crc: u32,
    /// Offset of the first message.
    pub(crate) base_offset: u64,
    /// Number of messages.
    pub(crate) count: u32,
    /// Publish time of every message of the batch (ns since the epoch).
    pub(crate) time_ns: i64,
}

impl BatchHeader {
    /// One past the last offset of the batch.
    pub(crate) fn end_offset(&self) -> u64 {
        self.base_offset + u64::from(self.count)
    }
}

/// Why bytes are not a valid batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BatchError {
    /// The bytes end before the batch does (a torn write at the tail).
    Incomplete,
    /// The bytes are not a batch.
    Corrupt(&'static str),
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Incomplete => f.write_str("incomplete record batch"),
            BatchError::Corrupt(why) => write!(f, "corrupt record batch: {why}"),
        }
    }
}

impl std::error::Error for BatchError {}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Parses the header at the start of `bytes` (which may hold more or less than
/// the batch).
pub(crate) fn parse_header(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    if bytes.len() < HEADER_LEN {
        return Err(BatchError::Incomplete);
    }
    if bytes[0] != MAGIC {
        return Err(BatchError::Corrupt("bad magic byte"));
    }
    if bytes[1] != VERSION {
        return Err(BatchError::Corrupt("unknown version"));
    }
    if bytes[2] != 0 || bytes[3] != 0 {
        return Err(BatchError::Corrupt("reserved bits set"));
    }
    let len = le_u32(bytes, 4);
    if (len as usize) < HEADER_LEN {
        return Err(BatchError::Corrupt("length shorter than the header"));
    }
    Ok(BatchHeader {
        len,
        crc: le_u32(bytes, 8),
        base_offset: le_u64(bytes, 12),
        count: le_u32(bytes, 20),
        time_ns: le_u64(bytes, 24) as i64,
    })
}

/// Checks the batch at the start of `bytes`: header, length and CRC. Returns
/// the header and the batch's bytes.
pub(crate) fn verify(bytes: &[u8]) -> Result<(BatchHeader, &[u8]), BatchError> {
    let h = parse_header(bytes)?;
    let Some(batch) = bytes.get(..h.len as usize) else {
        return Err(BatchError::Incomplete);
    };
    if crc32fast::hash(&batch[CRC_START..]) != h.crc {
        return Err(BatchError::Corrupt("checksum mismatch"));
    }
    if h.count == 0 {
        return Err(BatchError::Corrupt("empty batch"));
    }
    Ok((h, batch))
}

/// [`verify`] plus a walk over the message structure (used by recovery, which
/// must not accept a batch that reads would later reject).
pub(crate) fn verify_deep(bytes: &[u8]) -> Result<(BatchHeader, &[u8]), BatchError> {
    let (h, batch) = verify(bytes)?;
    let mut it = Messages::new(batch, h.count);
    for m in it.by_ref() {
        m?;
    }
    if !it.rest.is_empty() {
        return Err(BatchError::Corrupt("bytes after the last message"));
    }
    Ok((h, batch))
}

/// One message of a batch, not yet decoded.
pub(crate) struct RawMessage<'a> {
    attr_count: u32,
    attrs: &'a [u8],
    data: &'a [u8],
    /// Attribute keys and values plus data, in bytes.
    pub(crate) payload_len: usize,
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if buf.len() < n {
        return None;
    }
    let (head, tail) = buf.split_at(n);
    *buf = tail;
    Some(head)
}

fn take_u32(buf: &mut &[u8]) -> Option<u32> {
    take(buf, 4).map(|b| le_u32(b, 0))
}

fn take_str<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = take_u32(buf)? as usize;
    take(buf, n)
}

fn utf8(bytes: &[u8]) -> Result<String, BatchError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| BatchError::Corrupt("invalid UTF-8"))
}

impl RawMessage<'_> {
    /// Decodes the attributes and the data.
    pub(crate) fn decode(&self) -> Result<(Vec<(String, String)>, String), BatchError> {
        let mut attrs = Vec::with_capacity((self.attr_count as usize).min(self.attrs.len() / 8));
        let mut rest = self.attrs;
        for _ in 0..self.attr_count {
            let (Some(k), Some(v)) = (take_str(&mut rest), take_str(&mut rest)) else {
                return Err(BatchError::Corrupt("truncated attribute"));
            };
            attrs.push((utf8(k)?, utf8(v)?));
        }
        Ok((attrs, utf8(self.data)?))
    }
}

/// Iterates over the messages of a verified batch.
pub(crate) struct Messages<'a> {
    rest: &'a [u8],
    remaining: u32,
}

impl<'a> Messages<'a> {
    /// The messages of `batch` (a whole batch, header included).
    pub(crate) fn new(batch: &'a [u8], count: u32) -> Self {
        Self {
            rest: batch.get(HEADER_LEN..).unwrap_or_default(),
            remaining: count,
        }
    }

    fn parse(&mut self) -> Option<RawMessage<'a>> {
        let attr_count = take_u32(&mut self.rest)?;
        let start = self.rest;
        let mut payload_len = 0usize;
        for _ in 0..attr_count {
            payload_len += take_str(&mut self.rest)?.len();
            payload_len += take_str(&mut self.rest)?.len();
        }
        let attrs = &start[..start.len() - self.rest.len()];
        let data = take_str(&mut self.rest)?;
        Some(RawMessage {
            attr_count,
            attrs,
            data,
            payload_len: payload_len + data.len(),
        })
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<RawMessage<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        match self.parse() {
            Some(m) => Some(Ok(m)),
            None => {
                self.remaining = 0;
                Some(Err(BatchError::Corrupt("truncated message")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(data: &str, attrs: &[(&str, &str)]) -> NewMessage {
        NewMessage {
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            data: data.to_string(),
        }
    }

    #[test]
    fn encode_verify_decode() {
        let msgs = vec![msg("hello", &[("a", "1"), ("bb", "")]), msg("", &[])];
        let mut b = encode(&msgs).unwrap();
        finish_header(&mut b, 42, 1_000);
        let (h, bytes) = verify_deep(&b.buf).unwrap();
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.count, 2);
        assert_eq!(h.time_ns, 1_000);
        assert_eq!(h.len as usize, b.buf.len());
        let decoded: Vec<_> = Messages::new(bytes, h.count)
            .map(|m| m.unwrap().decode().unwrap())
            .collect();
        assert_eq!(decoded[0].0, msgs[0].attributes);
        assert_eq!(decoded[0].1, "hello");
        assert_eq!(decoded[1], (vec![], String::new()));
    }

    #[test]
    fn small_and_large_batches_get_the_same_checksum() {
        for size in [
            10,
            HASH_IN_WRITER_MAX - 100,
            HASH_IN_WRITER_MAX + 100,
            1 << 20,
        ] {
            let data = "x".repeat(size);
            let mut b = encode(&[msg(&data, &[("k", "v")])]).unwrap();
            assert_eq!(b.body_crc.is_some(), b.buf.len() > HASH_IN_WRITER_MAX);
            finish_header(&mut b, 7, 9);
            let (h, _) = verify_deep(&b.buf).unwrap();
            assert_eq!(h.crc, crc32fast::hash(&b.buf[CRC_START..]), "size {size}");
        }
    }

    #[test]
    fn detects_damage() {
        let mut b = encode(&[msg("payload", &[("k", "v")])]).unwrap();
        finish_header(&mut b, 0, 5);
        let good = b.buf.clone();
        assert_eq!(
            verify(&good[..good.len() - 1]).unwrap_err(),
            BatchError::Incomplete
        );
        assert_eq!(verify(&good[..10]).unwrap_err(), BatchError::Incomplete);
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            assert!(verify_deep(&bad).is_err(), "flip at {i} undetected");
        }
    }
}
