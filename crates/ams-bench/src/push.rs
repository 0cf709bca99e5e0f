//! Push throughput: ams delivering one push subscription to a receiver in
//! this process (on the load generator's core) over loopback HTTP, for a
//! given `maxMessages`. The receiver checks that every message arrives, in
//! order; duplicates (at-least-once redeliveries) are counted, not failed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::sync::Notify;

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    /// Messages delivered in order so far (the next expected id).
    next: AtomicU64,
    /// Redelivered messages.
    duplicates: AtomicU64,
    /// Ids that arrived ahead of a missing one (loss or reordering).
    gaps: AtomicU64,
    /// Push requests received.
    requests: AtomicU64,
    progress: Notify,
    hash: std::sync::Mutex<String>,
}

/// A push endpoint counting deliveries.
pub struct Receiver {
    /// Its endpoint URL.
    pub url: String,
    seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Listens on a free loopback port.
    pub async fn start() -> Result<Receiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let seen = Arc::new(Seen::default());
        let accept = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let seen = accept.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(seen.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Receiver {
            url: format!("http://{addr}/push"),
            seen,
            task,
        })
    }

    /// What `GET /ams_verification_hash` answers.
    pub fn set_hash(&self, hash: &str) {
        *self.seen.hash.lock().expect("lock") = hash.to_owned();
    }

    /// Waits until `n` messages arrived in order (up to `limit`).
    pub async fn wait_for(&self, n: u64, limit: Duration) -> Result<()> {
        let waited = tokio::time::timeout(limit, async {
            loop {
                let progress = self.seen.progress.notified();
                if self.seen.next.load(Ordering::SeqCst) >= n
                    || self.seen.gaps.load(Ordering::SeqCst) > 0
                {
                    return;
                }
                progress.await;
            }
        })
        .await;
        let got = self.seen.next.load(Ordering::SeqCst);
        if waited.is_err() {
            bail!("only {got} of {n} pushed messages arrived within {limit:?}");
        }
        let gaps = self.seen.gaps.load(Ordering::SeqCst);
        if gaps > 0 {
            bail!("{gaps} pushed messages arrived out of order or after a lost one (at {got})");
        }
        Ok(())
    }

    /// (push requests, duplicate messages).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.seen.requests.load(Ordering::SeqCst),
            self.seen.duplicates.load(Ordering::SeqCst),
        )
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    seen: Arc<Seen>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() == http::Method::GET {
        let hash = seen.hash.lock().expect("lock").clone();
        return Ok(Response::new(Full::new(Bytes::from(hash))));
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(status(400)),
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return Ok(status(400));
    };
    seen.requests.fetch_add(1, Ordering::SeqCst);
    let one = [v.clone()];
    let messages = v["messages"].as_array().map_or(&one[..], Vec::as_slice);
    for m in messages {
        let Some(id) = m["message"]["messageId"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
        else {
            return Ok(status(400));
        };
        let next = seen.next.load(Ordering::SeqCst);
        if id == next {
            seen.next.store(next + 1, Ordering::SeqCst);
        } else if id < next {
            seen.duplicates.fetch_add(1, Ordering::SeqCst);
        } else {
            seen.gaps.fetch_add(1, Ordering::SeqCst);
        }
    }
    seen.progress.notify_waiters();
    Ok(status(200))
}

fn status(code: u16) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = http::StatusCode::from_u16(code).expect("valid status");
    r
}

/// Ensures a receiver answered at least one request per `max` messages.
pub fn check_batches(requests: u64, messages: u64, max: usize) -> Result<()> {
    let fewest = messages.div_ceil(max as u64);
    if requests < fewest {
        bail!("{requests} push requests carried {messages} messages with maxMessages {max}");
    }
    Ok(())
}
