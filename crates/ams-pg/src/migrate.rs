//! Versioned schema migrations, embedded in the binary and applied at start-up.
//!
//! Every node runs [`apply`] when it connects. The migrations run in one
//! transaction holding `pg_advisory_xact_lock(`[`LOCK`]`)`, so nodes starting
//! together apply each version exactly once; `schema_migrations` records what
//! was applied.

use ams_core::storage::{StoreError, StoreResult};
use tokio_postgres::Client;

/// The advisory lock key serializing migrations ("ams_meta" in ASCII).
pub const LOCK: i64 = 0x616d_735f_6d65_7461;

/// The migrations by version, oldest first. Versions are never edited once
/// released: a change is a new file.
pub const MIGRATIONS: &[(i32, &str)] = &[(1, include_str!("../migrations/0001_init.sql"))];

/// Applies every migration the database has not seen yet; returns the versions
/// applied by this call.
pub async fn apply(client: &mut Client) -> StoreResult<Vec<i32>> {
    let fail = |e| StoreError::new("apply migrations", e);
    let tx = client.transaction().await.map_err(fail)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
        .await
        .map_err(fail)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version int PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(fail)?;
    let done: Vec<i32> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .map_err(fail)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut applied = Vec::new();
    for (version, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        tx.batch_execute(sql)
            .await
            .map_err(|e| StoreError::new(format!("apply migration {version}"), e))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())",
            &[version],
        )
        .await
        .map_err(fail)?;
        applied.push(*version);
    }
    tx.commit().await.map_err(fail)?;
    if !applied.is_empty() {
        tracing::info!(?applied, "applied metadata schema migrations");
    }
    Ok(applied)
}
