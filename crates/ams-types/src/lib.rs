//! Wire-level building blocks of the AMS v1 API, shared by the server, the
//! client and the CLI. No runtime, HTTP framework or storage here.
//!
//! # Layout
//! * [`names`]: the path-variable name rule (`^[a-zA-Z0-9_-]+$`).
//! * [`time`]: [`Timestamp`] and the AMS date renderings and parsers.
//! * [`json`]: Go-compatible JSON encoding and decoding.
//! * [`wire`]: request and response bodies.

pub mod json;
pub mod names;
pub mod time;
pub mod wire;

pub use crate::time::Timestamp;
