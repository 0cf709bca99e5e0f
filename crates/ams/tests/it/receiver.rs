//! A real push endpoint for tests: an HTTP (or HTTPS) server on 127.0.0.1 that
//! records every delivery, answers scripted statuses, and serves
//! `/ams_verification_hash`. It can be stopped and started again on the same
//! port (an endpoint that goes down and comes back).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ams_core::{Clock, ManualClock};
use ams_types::Timestamp;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use parking_lot::Mutex;
use tokio::sync::Notify;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Request path.
    pub path: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// Body text.
    pub body: String,
    /// The server clock's time when it arrived.
    pub at: Timestamp,
}

impl Delivery {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

struct Shared {
    deliveries: Mutex<Vec<Delivery>>,
    /// Statuses for the next POSTs; 200 once empty.
    script: Mutex<VecDeque<u16>>,
    /// Status and body of `GET /ams_verification_hash`.
    hash: Mutex<(u16, String)>,
    arrived: Notify,
    clock: ManualClock,
}

/// TLS material of an HTTPS receiver.
pub struct Tls {
    /// The CA that signed the receiver's certificate (PEM).
    pub ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

impl Tls {
    /// A fresh CA and a certificate for 127.0.0.1 and localhost signed by it.
    pub fn self_signed() -> Tls {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        Tls {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// A running receiver.
pub struct Receiver {
    /// `http(s)://127.0.0.1:PORT`.
    pub base: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    tls: Option<Arc<Tls>>,
    handle: Option<axum_server::Handle<SocketAddr>>,
}

impl Receiver {
    /// Starts a plain-HTTP receiver stamping arrivals with `clock`.
    pub async fn start(clock: &ManualClock) -> Receiver {
        Self::start_with(clock, None).await
    }

    /// Starts an HTTPS receiver with `tls`.
    pub async fn start_tls(clock: &ManualClock, tls: Tls) -> Receiver {
        Self::start_with(clock, Some(Arc::new(tls))).await
    }

    async fn start_with(clock: &ManualClock, tls: Option<Arc<Tls>>) -> Receiver {
        let shared = Arc::new(Shared {
            deliveries: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::new()),
            hash: Mutex::new((404, String::new())),
            arrived: Notify::new(),
            clock: clock.clone(),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut r = Receiver {
            base: format!("{scheme}://{addr}"),
            addr,
            shared,
            tls,
            handle: None,
        };
        r.serve(listener).await;
        r
    }

    async fn serve(&mut self, listener: std::net::TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let app = axum::Router::new()
            .route("/ams_verification_hash", get(verification))
            .fallback(post(record))
            .with_state(self.shared.clone());
        let handle = axum_server::Handle::new();
        let service = app.into_make_service();
        match &self.tls {
            None => {
                let server = axum_server::from_tcp(listener)
                    .unwrap()
                    .handle(handle.clone());
                tokio::spawn(server.serve(service));
            }
            Some(tls) => {
                let config = axum_server::tls_rustls::RustlsConfig::from_pem(
                    tls.cert_pem.clone().into_bytes(),
                    tls.key_pem.clone().into_bytes(),
                )
                .await
                .unwrap();
                let server = axum_server::tls_rustls::from_tcp_rustls(listener, config)
                    .unwrap()
                    .handle(handle.clone());
                tokio::spawn(server.serve(service));
            }
        }
        handle.listening().await;
        self.handle = Some(handle);
    }

    /// The endpoint URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Answers `GET /ams_verification_hash` with `status` and `body`.
    pub fn set_hash(&self, status: u16, body: &str) {
        *self.shared.hash.lock() = (status, body.to_owned());
    }

    /// The next POSTs get these statuses (then 200).
    pub fn script(&self, statuses: &[u16]) {
        self.shared.script.lock().extend(statuses);
    }

    /// Everything received so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.deliveries.lock().clone()
    }

    /// Waits (up to 30 s, failing the test then) until `n` requests arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Delivery> {
        self.until(n, None).await
    }

    /// Like [`Receiver::wait_for`], moving `clock` to each pusher wake-up in
    /// between (for retry policies that wait between cycles).
    pub async fn pump(&self, clock: &ManualClock, n: usize) -> Vec<Delivery> {
        self.until(n, Some(clock)).await
    }

    async fn until(&self, n: usize, clock: Option<&ManualClock>) -> Vec<Delivery> {
        let waited = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let arrived = self.shared.arrived.notified();
                let got = self.deliveries();
                if got.len() >= n {
                    return got;
                }
                let Some(clock) = clock else {
                    arrived.await;
                    continue;
                };
                tokio::select! {
                    () = arrived => {}
                    t = clock.next_sleeper() => {
                        if t > clock.now() {
                            clock.set(t);
                        }
                        tokio::task::yield_now().await;
                    }
                }
            }
        })
        .await;
        waited.unwrap_or_else(|_| panic!("{n} deliveries did not arrive: {:?}", self.deliveries()))
    }

    /// Stops listening (connections are refused until [`Receiver::restart`]).
    pub async fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown();
        }
        // Wait until the port refuses connections.
        let refused = tokio::time::timeout(Duration::from_secs(10), async {
            while tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                tokio::task::yield_now().await;
            }
        })
        .await;
        refused.expect("the receiver stops listening");
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        let listener = std::net::TcpListener::bind(self.addr).unwrap();
        self.serve(listener).await;
    }
}

async fn verification(State(s): State<Arc<Shared>>) -> (StatusCode, String) {
    let (status, body) = s.hash.lock().clone();
    (StatusCode::from_u16(status).unwrap(), body)
}

async fn record(
    State(s): State<Arc<Shared>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let status = s.script.lock().pop_front().unwrap_or(200);
    s.deliveries.lock().push(Delivery {
        path: uri.path().to_owned(),
        headers,
        body,
        at: s.clock.now(),
    });
    s.arrived.notify_waiters();
    StatusCode::from_u16(status).unwrap()
}
