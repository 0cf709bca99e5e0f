//! Group commit for metadata: many writers, one `fdatasync`.
//!
//! A writer first writes (fjall hands the journal to the OS), then asks
//! [`GroupSync::sync`] to make it durable. One task gathers every request that is
//! waiting, persists the journal once, and answers them all; requests arriving
//! during a sync ride on the next one. Every request's write happened before the
//! request was sent, so the sync that answers it covers it.

use tokio::sync::{mpsc, oneshot};

use ams_core::storage::StoreError;

type Reply = oneshot::Sender<Result<(), String>>;

/// A request carries its own handle to the database, so that the task holds none
/// between syncs and dropping the store releases the database (and its lock).
type Request = (fjall::Database, Reply);

/// Handle to the sync task of one fjall database.
#[derive(Clone)]
pub struct GroupSync {
    requests: mpsc::UnboundedSender<Request>,
    db: fjall::Database,
}

impl GroupSync {
    /// Starts the sync task. It ends when every handle is dropped.
    pub fn start(db: fjall::Database) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Request>();
        tokio::spawn(async move {
            while let Some((db, first)) = rx.recv().await {
                let mut waiting = vec![first];
                while let Ok((_, more)) = rx.try_recv() {
                    waiting.push(more);
                }
                let outcome = tokio::task::spawn_blocking(move || {
                    let started = std::time::Instant::now();
                    let persisted = db.persist(fjall::PersistMode::SyncData);
                    ams_core::metrics::observe_sync("metadata", started.elapsed().as_secs_f64());
                    persisted
                })
                .await;
                let outcome = match outcome {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                for reply in waiting {
                    let _ = reply.send(outcome.clone());
                }
            }
        });
        Self { requests: tx, db }
    }

    /// Waits until every write made before this call is on disk.
    pub async fn sync(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send((self.db.clone(), tx))
            .map_err(|_| StoreError::new("metadata sync", "sync task stopped"))?;
        rx.await
            .map_err(|_| StoreError::new("metadata sync", "sync task stopped"))?
            .map_err(|e| StoreError::new("metadata sync", e))
    }
}
