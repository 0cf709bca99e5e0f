//! An async client for the AMS v1 REST API: every route, typed with
//! [`ams_types::wire`], with retries and back-off, per-request timeouts, TLS
//! (extra trusted CAs) and the live `:stream` routes as Server-Sent Events.
//!
//! ```no_run
//! # async fn demo() -> ams_client::Result<()> {
//! use ams_client::{Client, wire};
//! let client = Client::builder("http://127.0.0.1:8080").token("S3CR3T").build()?;
//! client.create_project("demo", Some("a project")).await?;
//! client.create_topic("demo", "t", None).await?;
//! client.create_subscription("demo", "s", "t", None).await?;
//! let message = wire::PublishMessage { data: "aGVsbG8=".into(), ..Default::default() };
//! client.publish("demo", "t", &[message]).await?;
//! let pulled = client.pull("demo", "s", 10, true).await?;
//! let ids: Vec<String> = pulled.iter().map(|m| m.ack_id.clone()).collect();
//! client.acknowledge("demo", "s", &ids).await?;
//! # Ok(()) }
//! ```
//!
//! Retries follow argo-ams-library: a connection failure, a timeout or an
//! HTTP 408/502/503/504 is retried, up to [`ClientBuilder::retries`] times with
//! a doubling back-off, for idempotent calls only (GET, PUT, DELETE and
//! `pull`, whose lost answer only means redelivery). Publishing, acknowledging
//! and the other POSTs are tried once: a duplicate publish is worse than an
//! error. The token travels in the `x-api-key` header and is never logged or
//! shown (`Debug` redacts it, errors carry no URLs).
//!
//! Where the API takes a full resource name in a body (a subscription's
//! `projects/{p}/topics/{t}`, a topic's `projects/{p}/schemas/{s}`), the
//! methods also accept the bare name and complete it with the call's project.
//!
//! # Layout
//! * this file: [`Client`], [`ClientBuilder`].
//! * [`error`]: [`Error`], [`Result`], which failures are transient.
//! * `transport`: URLs, the request loop (timeouts, retries, back-off), error
//!   answers.
//! * `service`, `projects`, `topics`, `subscriptions`, `users` (users and
//!   project members), `registrations`, `schemas`: the routes, one method each.
//! * [`stream`]: the SSE parser, [`SubscriptionStream`], [`TopicTail`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use ams_types::wire;

pub mod error;
mod projects;
mod registrations;
mod schemas;
mod service;
pub mod stream;
mod subscriptions;
mod topics;
mod transport;
mod users;

pub use error::{Error, Result};
pub use registrations::RegistrationQuery;
pub use stream::{SubscriptionStream, TailStart, TopicTail};

/// Default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default number of retries of an idempotent call.
pub const DEFAULT_RETRIES: u32 = 3;
/// Default wait before the first retry (doubling after each, up to
/// [`MAX_BACKOFF`]).
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(200);
/// Longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A client of one AMS server; cheap to clone (clones share connections).
#[derive(Clone)]
pub struct Client(Arc<transport::Inner>);

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.0.base.as_str())
            .field("token", &self.0.token.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.0.timeout)
            .field("retries", &self.0.retries)
            .field("backoff", &self.0.backoff)
            .finish()
    }
}

/// Settings of a [`Client`].
pub struct ClientBuilder {
    base_url: String,
    token: Option<String>,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
    stream_idle: Duration,
    ca_files: Vec<PathBuf>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("backoff", &self.backoff)
            .field("stream_idle", &self.stream_idle)
            .field("ca_files", &self.ca_files)
            .finish()
    }
}

impl ClientBuilder {
    /// A client of the server at `base_url`: `http://127.0.0.1:8080` or
    /// `https://host/prefix`, with or without the trailing `/v1`.
    pub fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.to_owned(),
            token: None,
            timeout: DEFAULT_TIMEOUT,
            retries: DEFAULT_RETRIES,
            backoff: DEFAULT_BACKOFF,
            stream_idle: stream::STREAM_IDLE,
            ca_files: Vec::new(),
        }
    }

    /// How long a stream may receive nothing at all (the server sends a
    /// keep-alive every 15 s) before it ends with [`Error::Timeout`]
    /// (default 60 s).
    pub fn stream_idle(mut self, d: Duration) -> Self {
        self.stream_idle = d;
        self
    }

    /// The token, sent in the `x-api-key` header (an empty one sends none).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into()).filter(|t| !t.is_empty());
        self
    }

    /// Time limit of one attempt of one request, answer included (default
    /// 30 s). Streams are bounded by it only until the server answers; a
    /// long-polling `pull` gets a minute more.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Retries of an idempotent call after a transient failure (default 3).
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// Wait before the first retry (default 200 ms), doubling after each,
    /// capped at [`MAX_BACKOFF`].
    pub fn backoff(mut self, first: Duration) -> Self {
        self.backoff = first;
        self
    }

    /// Trusts the CA certificates of this PEM file in addition to the
    /// system's (may be given several times).
    pub fn ca_file(mut self, pem: impl AsRef<std::path::Path>) -> Self {
        self.ca_files.push(pem.as_ref().to_owned());
        self
    }

    /// Checks the settings and builds the client. Installs rustls's `ring`
    /// crypto provider as the process default if none is installed yet.
    pub fn build(self) -> Result<Client> {
        let base = transport::base_url(&self.base_url)?;
        let token = match &self.token {
            Some(t) => {
                let mut value = reqwest::header::HeaderValue::from_str(t)
                    .map_err(|_| Error::Config("the token is not a valid header value".into()))?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let mut roots = Vec::new();
        for file in &self.ca_files {
            let pem = std::fs::read(file).map_err(|e| {
                Error::Config(format!("cannot read CA file {}: {e}", file.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::Config(format!("CA file {} is not PEM: {e}", file.display()))
            })?;
            if certs.is_empty() {
                return Err(Error::Config(format!(
                    "CA file {} holds no certificate",
                    file.display()
                )));
            }
            roots.extend(certs);
        }
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // A concurrent install may win the race; either provider is ring.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let http = reqwest::Client::builder()
            .connect_timeout(self.timeout)
            .user_agent(concat!("ams-client/", env!("CARGO_PKG_VERSION")))
            .tls_certs_merge(roots)
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client(Arc::new(transport::Inner {
            http,
            base,
            token,
            timeout: self.timeout,
            retries: self.retries,
            backoff: self.backoff,
            stream_idle: self.stream_idle,
        })))
    }
}

impl Client {
    /// Settings for a client of the server at `base_url` (see
    /// [`ClientBuilder::new`]).
    pub fn builder(base_url: &str) -> ClientBuilder {
        ClientBuilder::new(base_url)
    }

    /// The server's base URL as normalized (without `/v1`).
    pub fn base_url(&self) -> &str {
        self.0.base.as_str()
    }
}
