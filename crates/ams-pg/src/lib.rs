//! The PostgreSQL AMS metadata backend: [`PgMeta`] keeps projects, topics,
//! subscriptions (with their cursors), schemas, users, registrations, usage
//! counters, leases and node samples in tables that every node of a cluster
//! shares.
//!
//! Records are the domain types as `jsonb`, next to the columns that lookups
//! and uniqueness need; each row's `bigserial` sequence is the record's `seq`,
//! the newest-first pagination cursor. Changes that must look serialized across
//! nodes (cursor updates, subscription settings, memberships, usage tallies)
//! take row locks (`SELECT … FOR UPDATE`) inside one transaction.
//!
//! # Layout
//! * [`meta`]: [`PgMeta`], the [`MetadataStore`](ams_core::storage::MetadataStore).
//! * `cache`: the node's read-through cache of projects, users by token and
//!   topics, cleared on every change of theirs, on every node.
//! * `events`: cursor moves and cache clearings between nodes
//!   (`LISTEN`/`NOTIFY`).
//! * [`migrate`]: the versioned schema (`migrations/*.sql`), applied at
//!   start-up under an advisory lock so that concurrent nodes never race.

mod cache;
mod events;
pub mod meta;
pub mod migrate;

pub use meta::{Durability, PgMeta};
