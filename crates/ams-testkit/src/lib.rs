//! Real servers for tests: a throwaway PostgreSQL cluster ([`Postgres`]) and a
//! Kafka-protocol broker ([`Kafka`], tansu), each in its own temporary
//! directory on a free loopback port, stopped by the PID the harness started
//! when dropped (also when a test panics).
//!
//! # Layout
//! * [`postgres`]: `initdb` + `pg_ctl`, run as `nobody` when the tests run as root.
//! * [`kafka`]: the `tansu` broker (its SQLite or in-memory engine).

pub mod kafka;
pub mod postgres;

pub use kafka::Kafka;
pub use postgres::Postgres;

/// A port that was free a moment ago on 127.0.0.1 (callers retry on a clash).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// Whether this process runs as root (PostgreSQL refuses to).
fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A stable name for a directory (FNV-1a of its path), usable as a database
/// name: `<prefix>_<16 hex digits>`.
pub fn name_for(prefix: &str, dir: &std::path::Path) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in dir.as_os_str().as_encoded_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{prefix}_{hash:016x}")
}
