//! The embedded AMS backend.
//!
//! # Layout
//! * [`meta`]: [`EmbeddedMeta`], the metadata store (fjall + an in-memory mirror).
//! * [`sync`]: group commit of metadata writes.

pub mod log;
pub mod meta;
pub mod sync;

pub use log::{LogOptions, Retention, SegmentLog};
pub use meta::EmbeddedMeta;

/// How durable an acknowledged write is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fdatasync` before answering (group-committed): survives power loss.
    Fsync,
    /// Handed to the OS before answering: survives `kill -9`, not power loss.
    Write,
}
