//! Deterministic payloads: the same bytes for every system.
//!
//! A payload is a 16-byte header (sequence number and a send stamp, both
//! little-endian u64) followed by bytes taken from a pool filled once by a
//! seeded RNG at an offset derived from the sequence number. So a receiver can
//! tell which message it got and check that its body arrived intact, and the
//! bytes are incompressible and identical for every system under test.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Bytes before the random body: sequence number, then send stamp (µs).
pub const HEADER: usize = 16;
/// The pool the bodies are cut from.
const POOL: usize = 1 << 20;
/// Largest payload the generator makes.
pub const MAX_SIZE: usize = 64 * 1024;

/// The seeded payload generator.
#[derive(Clone)]
pub struct Payloads {
    pool: Vec<u8>,
}

impl Payloads {
    /// Fills the pool from a ChaCha-based RNG seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut pool = vec![0u8; POOL + MAX_SIZE];
        rng.fill_bytes(&mut pool);
        Self { pool }
    }

    fn offset(seq: u64) -> usize {
        (seq.wrapping_mul(7919) % POOL as u64) as usize
    }

    /// The payload for message `seq` of `size` bytes (at least [`HEADER`]).
    pub fn make(&self, seq: u64, stamp_us: u64, size: usize) -> Vec<u8> {
        assert!((HEADER..=MAX_SIZE).contains(&size), "payload size {size}");
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&stamp_us.to_le_bytes());
        let at = Self::offset(seq);
        out.extend_from_slice(&self.pool[at..at + size - HEADER]);
        out
    }

    /// The sequence number of a payload whose body is intact, or `None` when
    /// it is too short or its body differs from what [`Payloads::make`] made.
    pub fn verify(&self, payload: &[u8]) -> Option<u64> {
        if payload.len() < HEADER || payload.len() > MAX_SIZE {
            return None;
        }
        let seq = seq_of(payload);
        let at = Self::offset(seq);
        let body = &payload[HEADER..];
        (self.pool[at..at + body.len()] == *body).then_some(seq)
    }
}

/// The sequence number in a payload's header.
pub fn seq_of(payload: &[u8]) -> u64 {
    u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"))
}

/// The send stamp (µs since the run's epoch) in a payload's header.
pub fn stamp_of(payload: &[u8]) -> u64 {
    u64::from_le_bytes(payload[8..16].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes() {
        let a = Payloads::new(42);
        let b = Payloads::new(42);
        for seq in [0, 1, 2, 999_999, u64::MAX] {
            assert_eq!(a.make(seq, 7, 1024), b.make(seq, 7, 1024));
        }
        assert_ne!(Payloads::new(43).make(0, 0, 100), a.make(0, 0, 100));
    }

    #[test]
    fn payloads_differ_by_sequence_and_have_the_right_size() {
        let p = Payloads::new(42);
        assert_eq!(p.make(5, 0, 100).len(), 100);
        assert_eq!(p.make(5, 0, MAX_SIZE).len(), MAX_SIZE);
        assert_ne!(p.make(1, 0, 100)[HEADER..], p.make(2, 0, 100)[HEADER..]);
    }

    #[test]
    fn header_round_trips_and_verify_detects_corruption() {
        let p = Payloads::new(42);
        let msg = p.make(123_456, 987, 1024);
        assert_eq!(seq_of(&msg), 123_456);
        assert_eq!(stamp_of(&msg), 987);
        assert_eq!(p.verify(&msg), Some(123_456));
        let mut bad = msg.clone();
        bad[500] ^= 1;
        assert_eq!(p.verify(&bad), None);
        assert_eq!(p.verify(&msg[..10]), None);
    }

    #[test]
    fn bytes_look_random() {
        // Incompressible: every byte value shows up in a 64 KiB payload.
        let msg = Payloads::new(42).make(0, 0, MAX_SIZE);
        let mut seen = [false; 256];
        for b in &msg[HEADER..] {
            seen[*b as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
