//! The built-in pusher: delivers push subscriptions (contract §7.5) from inside
//! `ams serve`, so push needs no second server.
//!
//! One supervisor task keeps one worker task per active push subscription
//! (a verified http endpoint or a mattermost webhook). A worker pulls and
//! acknowledges through the domain ([`ams_core::Ams::pull`],
//! [`ams_core::Ams::acknowledge`]) with the push worker's identity, so cursors,
//! ack deadlines and ACLs behave as for any consumer, and delivers in offset
//! order, one batch at a time. It holds a lease in the metadata store for its
//! subscription, so that nodes sharing a store deliver each subscription from
//! exactly one node; a node that dies stops renewing and another takes over.
//! Publishing never waits for delivery: workers wake on new messages through
//! the log's own notification.
//!
//! # Layout
//! * this file: [`Pusher`] (the [`PushGateway`] the domain calls) and the supervisor.
//! * `worker`: the delivery loop of one subscription.
//! * [`schedule`]: waits between cycles per retry policy.
//! * [`deliver`]: request bodies, the HTTP client, what counts as success.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use uuid::Uuid;

use ams_core::Ams;
use ams_core::push::{PushGateway, VerifyFailure, active_status};

pub mod deliver;
pub mod schedule;
mod worker;

pub use deliver::{ClientError, ClientOptions};

/// Bytes of a verification answer read at most (a hash is 64).
const VERIFICATION_BODY_MAX: usize = 1024;

/// A subscription, by project UUID and name.
pub(crate) type Key = (Uuid, String);

/// Settings of the pusher.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// This node's name in leases (unique among nodes sharing a store).
    pub node_id: String,
    /// How long a subscription's lease lasts without renewal; another node
    /// takes a subscription over within this time after its owner dies.
    pub lease: Duration,
    /// HTTP client settings.
    pub client: ClientOptions,
}

impl Default for PushOptions {
    fn default() -> Self {
        Self {
            node_id: Uuid::new_v4().to_string(),
            lease: Duration::from_secs(30),
            client: ClientOptions::default(),
        }
    }
}

/// The running pusher.
pub struct Pusher {
    ams: Ams,
    client: reqwest::Client,
    options: PushOptions,
    events: mpsc::UnboundedSender<Key>,
    /// Status line per subscription delivered by this node.
    statuses: Mutex<HashMap<Key, String>>,
    /// The supervisor runs (cleared when it stops).
    serving: std::sync::atomic::AtomicBool,
}

impl Pusher {
    /// Starts the pusher on the current runtime and connects it to `ams`.
    /// It stops when `shutdown` is cancelled; await the handle to see it done.
    pub fn start(
        ams: Ams,
        options: PushOptions,
        shutdown: CancellationToken,
    ) -> Result<(Arc<Pusher>, JoinHandle<()>), ClientError> {
        let client = deliver::client(&options.client)?;
        let (events, rx) = mpsc::unbounded_channel();
        let pusher = Arc::new(Pusher {
            ams: ams.clone(),
            client,
            options,
            events,
            statuses: Mutex::new(HashMap::new()),
            serving: std::sync::atomic::AtomicBool::new(true),
        });
        let gateway: Arc<dyn PushGateway> = pusher.clone();
        ams.attach_push_gateway(&gateway);
        let handle = tokio::spawn(supervise(pusher.clone(), rx, shutdown));
        Ok((pusher, handle))
    }

    pub(crate) fn set_status(&self, key: &Key, status: String) {
        self.statuses.lock().insert(key.clone(), status);
    }

    fn lease_key(key: &Key) -> String {
        format!("push/{}/{}", key.0, key.1)
    }
}

#[async_trait]
impl PushGateway for Pusher {
    async fn fetch_verification(&self, url: &str) -> Result<Vec<u8>, VerifyFailure> {
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| VerifyFailure::Transport(deliver::error_text(&e)))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(VerifyFailure::Status(response.status().as_u16()));
        }
        // A hash is 64 characters: a longer answer is wrong however long it is.
        deliver::read_at_most(response, VERIFICATION_BODY_MAX)
            .await
            .map_err(|e| VerifyFailure::Transport(deliver::error_text(&e)))
    }

    fn changed(&self, project: Uuid, name: &str) {
        let _ = self.events.send((project, name.to_owned()));
    }

    fn serving(&self) -> bool {
        self.serving.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn status(&self, project: Uuid, name: &str, full_name: &str) -> String {
        self.statuses
            .lock()
            .get(&(project, name.to_owned()))
            .cloned()
            .unwrap_or_else(|| active_status(full_name))
    }
}

/// A running worker.
struct Running {
    /// Wakes the worker to re-read its subscription.
    changed: Arc<Notify>,
    /// Set by the worker once it decided to stop: a wake-up sent after that
    /// would be lost, so the supervisor starts a new worker instead.
    exiting: Arc<std::sync::atomic::AtomicBool>,
    cancel: CancellationToken,
    handle: JoinHandle<()>,
}

impl Running {
    fn alive(&self) -> bool {
        !self.handle.is_finished() && !self.exiting.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Keeps one worker per active push subscription this node may deliver.
async fn supervise(
    pusher: Arc<Pusher>,
    mut events: mpsc::UnboundedReceiver<Key>,
    shutdown: CancellationToken,
) {
    let mut workers: HashMap<Key, Running> = HashMap::new();
    // Re-scan now and then: subscriptions whose owner on another node died,
    // and workers that stopped after an error, are picked up again.
    let mut rescan = tokio::time::interval(pusher.options.lease / 3);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some(key) = events.recv() => ensure(&pusher, &mut workers, key, &shutdown),
            _ = rescan.tick() => {
                workers.retain(|_, w| !w.handle.is_finished());
                match pusher.ams.active_push_subscriptions().await {
                    Ok(keys) => {
                        let active: std::collections::HashSet<&Key> = keys.iter().collect();
                        // Workers of subscriptions gone without a notice (a
                        // deleted project) re-read theirs and stop.
                        for (key, w) in &workers {
                            if !active.contains(key) {
                                w.changed.notify_one();
                            }
                        }
                        for key in keys {
                            if !workers.get(&key).is_some_and(Running::alive) {
                                ensure(&pusher, &mut workers, key, &shutdown);
                            }
                        }
                    }
                    Err(e) => warn!(error = %e, "push: cannot list push subscriptions"),
                }
            }
        }
    }
    for w in workers.values() {
        w.cancel.cancel();
    }
    for (_, w) in workers {
        let _ = w.handle.await;
    }
    pusher
        .serving
        .store(false, std::sync::atomic::Ordering::SeqCst);
    debug!("push: stopped");
}

/// Wakes the subscription's worker, or starts one; the worker itself decides
/// whether there is anything to deliver and stops if not.
fn ensure(
    pusher: &Arc<Pusher>,
    workers: &mut HashMap<Key, Running>,
    key: Key,
    shutdown: &CancellationToken,
) {
    if let Some(w) = workers.get(&key).filter(|w| w.alive()) {
        w.changed.notify_one();
        return;
    }
    let changed = Arc::new(Notify::new());
    let exiting = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cancel = shutdown.child_token();
    let handle = tokio::spawn(worker::run(
        pusher.clone(),
        key.clone(),
        worker::Signals {
            changed: changed.clone(),
            exiting: exiting.clone(),
            cancel: cancel.clone(),
        },
    ));
    workers.insert(
        key,
        Running {
            changed,
            exiting,
            cancel,
            handle,
        },
    );
}
