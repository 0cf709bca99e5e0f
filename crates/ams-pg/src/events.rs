//! Events between the nodes of a cluster, over PostgreSQL's `LISTEN`/`NOTIFY`,
//! received on one dedicated connection per node:
//! * `ams_cursor`, `'<project>/<name>'`: an acknowledgement, seek or delete
//!   moved a subscription's committed offset; handed to the domain, which
//!   wakes that subscription's open streams (they re-read the cursor, so a
//!   lost event only delays a stream until its periodic recheck);
//! * `ams_meta`, `'projects'|'topics'|'users'`: records of that kind changed;
//!   the node's [`Cache`] forgets them.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use tokio::sync::{broadcast, oneshot};
use tokio_postgres::{AsyncMessage, NoTls};
use uuid::Uuid;

use crate::cache::{Cache, Kind};

/// The channel of cursor moves.
pub(crate) const CHANNEL: &str = "ams_cursor";

/// The channel of cached-record changes.
pub(crate) const META_CHANNEL: &str = "ams_meta";

/// Events buffered per receiver before it lags (and then rings everything).
const BUFFER: usize = 4096;

/// Wait before reconnecting a lost listening connection.
const RECONNECT: Duration = Duration::from_secs(1);

/// The payload naming one subscription.
pub(crate) fn payload(project: Uuid, name: &str) -> String {
    format!("{project}/{name}")
}

fn parse(payload: &str) -> Option<(Uuid, String)> {
    let (project, name) = payload.split_once('/')?;
    Some((Uuid::parse_str(project).ok()?, name.to_owned()))
}

/// The listening side: a task that lives until the store is dropped.
pub(crate) struct Listener {
    events: broadcast::Sender<(Uuid, String)>,
    /// Dropped with the store, which ends the task.
    _stop: oneshot::Sender<()>,
}

impl Listener {
    /// Starts listening with `config` (reconnecting after failures).
    pub(crate) fn start(config: tokio_postgres::Config, cache: Arc<Cache>) -> Listener {
        let (events, _) = broadcast::channel(BUFFER);
        let (stop_tx, mut stop) = oneshot::channel();
        let sender = events.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stop => return,
                    result = listen(&config, &sender, &cache) => {
                        if let Err(e) = result {
                            tracing::warn!(error = %e, "cursor events: listening connection lost; reconnecting");
                        }
                    }
                }
                tokio::select! {
                    _ = &mut stop => return,
                    () = tokio::time::sleep(RECONNECT) => {}
                }
            }
        });
        Listener {
            events,
            _stop: stop_tx,
        }
    }

    /// A receiver of every later event.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<(Uuid, String)> {
        self.events.subscribe()
    }
}

/// One listening connection, until it fails.
async fn listen(
    config: &tokio_postgres::Config,
    events: &broadcast::Sender<(Uuid, String)>,
    cache: &Cache,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (messages_tx, mut messages) = futures::channel::mpsc::unbounded();
    // The connection must be polled for the LISTEN to complete and for
    // notifications to arrive; it forwards them here.
    let driver = tokio::spawn(async move {
        let mut stream = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = stream.next().await {
            match message {
                Ok(message) => {
                    if messages_tx.unbounded_send(Ok(message)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = messages_tx.unbounded_send(Err(e));
                    return;
                }
            }
        }
    });
    let result = async {
        client
            .batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {META_CHANNEL}"))
            .await?;
        // Changes made while no connection listened were not heard.
        cache.clear_all();
        while let Some(message) = messages.next().await {
            let AsyncMessage::Notification(n) = message? else {
                continue;
            };
            if n.channel() == META_CHANNEL {
                if let Some(kind) = Kind::parse(n.payload()) {
                    cache.clear(kind);
                }
            } else if let Some(event) = parse(n.payload()) {
                // No receivers is fine: nobody streams right now.
                let _ = events.send(event);
            }
        }
        Ok(())
    }
    .await;
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        let p = Uuid::new_v4();
        assert_eq!(
            parse(&payload(p, "sub-1_x")),
            Some((p, "sub-1_x".to_owned()))
        );
        assert_eq!(parse("nonsense"), None);
        assert_eq!(parse("not-a-uuid/x"), None);
    }
}
