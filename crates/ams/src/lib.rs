//! The `ams` binary's library: configuration, start-up and the serve loop.
//!
//! `main` parses the command line and calls [`run`]; tests call
//! [`Application::build`] with a [`Config`] (port 0, a temp data dir) and an
//! injected clock, and talk to [`Application::local_addr`] over real HTTP.
//!
//! # Layout
//! * [`cli`]: the client commands (`ams pub`, `ams sub`, administration).
//! * [`config`]: config.json + `AMS_*` env vars + flags → [`Config`].
//! * [`token`]: the generated service token.
//! * [`telemetry`]: logging setup (text or JSON).

use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum_server::accept::NoDelayAcceptor;

use ams_core::{Ams, Clock, MessageLog, MetadataStore, Settings, SystemClock};
use ams_store::{EmbeddedMeta, LogOptions, Retention, SegmentLog};

pub mod cli;
pub mod config;
pub mod telemetry;
pub mod token;

pub use config::{Config, ServeArgs, StoreConfig};

/// How long in-flight requests may finish after a shutdown signal.
const GRACE: Duration = Duration::from_secs(10);

/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// How often publish counts go to the metadata store: what a crash may lose
/// of them (contract §9 counters; never messages).
const USAGE_FLUSH_EVERY: Duration = Duration::from_secs(1);

/// A started server: bound, serving in the background.
pub struct Application {
    addr: SocketAddr,
    handle: axum_server::Handle<SocketAddr>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    background: Vec<tokio::task::JoinHandle<()>>,
    /// The built-in pusher, when push is enabled.
    pusher: Option<tokio::task::JoinHandle<()>>,
    pusher_stop: tokio_util::sync::CancellationToken,
    streams_stop: tokio_util::sync::CancellationToken,
    ams: Ams,
    /// The embedded log (closed at shutdown), `None` over Kafka.
    segment_log: Option<Arc<SegmentLog>>,
    token: token::ServiceToken,
    scheme: &'static str,
}

impl Application {
    /// Opens the data directory, binds the listener and starts serving.
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        // rustls needs a process-wide crypto provider; a second install is a no-op error.
        let _ = rustls::crypto::ring::default_provider().install_default();
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
        // The directory holds every token (service and users'): owner only.
        std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| {
                format!(
                    "cannot restrict data directory {}",
                    config.data_dir.display()
                )
            })?;
        let token = token::resolve(config.service_token.as_deref(), &config.data_dir)
            .context("cannot read or store the service token")?;
        let (meta, log, segment_log) = open_store(&config, clock.as_ref()).await?;
        let ams = Ams::new(
            meta,
            log,
            clock.clone(),
            Settings {
                service_token: Some(token.secret().to_owned()),
                long_poll_max: config.long_poll_max,
                per_resource_auth: config.per_resource_auth,
                push_enabled: config.push.enabled,
                push_allow_http: config.push.allow_http,
                push_worker_token: config.push.worker_token.clone(),
                proxy_hostname: config.proxy_hostname.clone(),
                ..Settings::default()
            },
        );
        let orphans = ams
            .orphan_logs()
            .await
            .context("cannot list the message logs")?;
        if segment_log.is_some() {
            ams.remove_logs(&orphans)
                .await
                .context("cannot clean up message logs")?;
            if !orphans.is_empty() {
                tracing::info!(
                    orphans = orphans.len(),
                    "removed message logs of deleted topics"
                );
            }
        } else {
            // Kafka topics without a topic record may be another deployment's
            // (an original AMS being migrated, a wrong database): never
            // deleted on a guess, only reported.
            for log in &orphans {
                tracing::warn!(
                    kafka_topic = %ams_kafka::topic_name(log),
                    "Kafka topic named like an AMS topic that does not exist here; left alone"
                );
            }
        }
        // Bound before anything starts working in the background, so that a
        // refused port leaves nothing running.
        let listener = std::net::TcpListener::bind((config.bind_ip, config.port))
            .with_context(|| format!("cannot listen on {}:{}", config.bind_ip, config.port))?;
        let pusher_stop = tokio_util::sync::CancellationToken::new();
        // Any failure from here on stops the pusher again.
        let stop_on_error = pusher_stop.clone().drop_guard();
        let pusher = if config.push.enabled {
            Some(start_pusher(&ams, &config.push, pusher_stop.clone())?)
        } else {
            None
        };
        let streams_stop = tokio_util::sync::CancellationToken::new();
        let app = ams_http::app(
            ams.clone(),
            ams_http::HttpSettings {
                auth_option: config.auth_option,
                max_body_bytes: config.max_body_bytes,
                metrics_token: config.metrics_token.clone(),
                streams_stop: streams_stop.clone(),
            },
        );

        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let handle = axum_server::Handle::new();
        let service = tower::make::Shared::new(app);
        let server = match &config.tls {
            None => {
                // No Nagle delay on answers (as axum::serve sets it).
                let server = axum_server::from_tcp(listener)?
                    .acceptor(NoDelayAcceptor::new())
                    .handle(handle.clone());
                tokio::spawn(server.serve(service))
            }
            Some((cert, key)) => {
                let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                    .await
                    .with_context(|| {
                        format!(
                            "cannot load TLS certificate {} / key {}",
                            cert.display(),
                            key.display()
                        )
                    })?;
                let server = axum_server::tls_rustls::from_tcp_rustls(listener, tls)?
                    .map(|tls| tls.acceptor(NoDelayAcceptor::new()))
                    .handle(handle.clone());
                tokio::spawn(server.serve(service))
            }
        };
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        tracing::info!(address = %addr, "listening on {scheme}://{addr}");

        let mut background = Vec::new();
        // Over Kafka, retention is the Kafka topics' configuration.
        if let Some(log) = segment_log.clone() {
            let clock = clock.clone();
            background.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(RETENTION_EVERY);
                tick.tick().await; // the first tick is immediate; start-up already ran it
                loop {
                    tick.tick().await;
                    apply_retention(&log, clock.as_ref());
                }
            }));
        }
        background.push({
            let ams = ams.clone();
            tokio::spawn(async move { ams.run_usage_flusher(USAGE_FLUSH_EVERY).await })
        });
        background.push({
            let ams = ams.clone();
            tokio::spawn(async move { ams.run_cursor_events().await })
        });
        stop_on_error.disarm();
        Ok(Self {
            addr,
            handle,
            server,
            background,
            pusher,
            pusher_stop,
            streams_stop,
            ams,
            segment_log,
            token,
            scheme,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// The service token in force.
    pub fn service_token(&self) -> &token::ServiceToken {
        &self.token
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish and
    /// closes the logs cleanly.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Application {
            handle,
            mut server,
            background,
            pusher,
            pusher_stop,
            streams_stop,
            ams,
            segment_log,
            ..
        } = self;
        tokio::select! {
            result = &mut server => {
                result.context("server task failed")?.context("server failed")?;
            }
            () = shutdown => {
                tracing::info!("shutting down");
                // Streams never finish by themselves: close them first.
                streams_stop.cancel();
                handle.graceful_shutdown(Some(GRACE));
                server.await.context("server task failed")?.context("server failed")?;
            }
        }
        for task in background {
            task.abort();
        }
        // Deliveries in flight finish (or time out) before the logs close.
        pusher_stop.cancel();
        if let Some(pusher) = pusher {
            let _ = pusher.await;
        }
        if let Err(e) = ams.flush_usage().await {
            tracing::error!(error = %e, "cannot store the last usage counters");
        }
        if let Some(log) = segment_log {
            log.close().await;
        }
        Ok(())
    }
}

/// Opens the configured backend: the metadata store, the message log and,
/// for the embedded store, the segment log itself (retention and close are
/// its own duties).
async fn open_store(
    config: &Config,
    clock: &dyn Clock,
) -> anyhow::Result<(
    Arc<dyn MetadataStore>,
    Arc<dyn MessageLog>,
    Option<Arc<SegmentLog>>,
)> {
    match &config.store {
        StoreConfig::Embedded => {
            let meta = EmbeddedMeta::open(&config.data_dir.join("meta"), config.durability)
                .context("cannot open the metadata store")?;
            let log = SegmentLog::open(
                &config.data_dir.join("logs"),
                LogOptions {
                    durability: config.durability,
                    segment_bytes: config.segment_bytes,
                    retention: Retention {
                        max_age: config.retention_max_age,
                        max_bytes: config.retention_max_bytes,
                    },
                },
            )
            .context("cannot open the message logs")?;
            apply_retention(&log, clock);
            Ok((Arc::new(meta), log.clone(), Some(log)))
        }
        StoreConfig::KafkaPostgres {
            kafka_brokers,
            postgres_url,
            kafka_replication_factor,
        } => {
            let durability = match config.durability {
                ams_store::Durability::Fsync => ams_pg::Durability::Fsync,
                ams_store::Durability::Write => ams_pg::Durability::Write,
            };
            // The URL may hold a password: errors name the server, not the URL.
            let meta = ams_pg::PgMeta::connect(postgres_url, durability)
                .await
                .context("cannot open the PostgreSQL metadata store (postgres_url)")?;
            let log = ams_kafka::KafkaLog::connect(ams_kafka::KafkaOptions {
                brokers: kafka_brokers.clone(),
                replication_factor: *kafka_replication_factor,
                ..Default::default()
            })
            .await
            .context("cannot reach Kafka (kafka_brokers)")?;
            tracing::info!(brokers = %kafka_brokers.join(","), "messages in Kafka, metadata in PostgreSQL");
            Ok((Arc::new(meta), log, None))
        }
    }
}

/// Starts the built-in pusher with the configured CAs and limits.
fn start_pusher(
    ams: &Ams,
    push: &config::PushConfig,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut extra_roots_pem = Vec::new();
    for file in &push.ca_files {
        extra_roots_pem.push(
            std::fs::read(file)
                .with_context(|| format!("cannot read CA certificate {}", file.display()))?,
        );
    }
    let options = ams_push::PushOptions {
        node_id: push.node_id.clone(),
        lease: push.lease,
        client: ams_push::ClientOptions {
            timeout: push.timeout,
            extra_roots_pem,
            ..Default::default()
        },
    };
    let (_, handle) =
        ams_push::Pusher::start(ams.clone(), options, stop).context("cannot start the pusher")?;
    tracing::info!(
        worker = if push.worker_token.is_some() {
            "configured push_worker_token user"
        } else {
            "internal"
        },
        "push delivery enabled"
    );
    Ok(handle)
}

/// Drops whole segments past the retention limits (and logs what it did).
fn apply_retention(log: &SegmentLog, clock: &dyn Clock) {
    match log.enforce_retention(clock.now().nanos()) {
        Ok(0) => {}
        Ok(segments) => tracing::info!(segments, "retention dropped old segments"),
        Err(e) => tracing::error!(error = %e, "retention failed"),
    }
}

/// `ams serve`: loads the configuration, starts logging and serves until
/// SIGINT or SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(&args)?;
    // Held to the end: dropping it writes the buffered access lines.
    let _log = telemetry::init(&config.log_level, config.log_format)?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = tokio::runtime::Handle::current();
    tracing::info!(
        flavor = ?runtime.runtime_flavor(),
        workers = runtime.metrics().num_workers(),
        "runtime"
    );
    // Signal handlers go in before the server listens, so that a SIGTERM sent as
    // soon as the address is logged already means "shut down gracefully".
    let shutdown = shutdown_signal()?;
    let app = Application::build(config, Arc::new(SystemClock)).await?;
    if let token::ServiceToken::Generated(_, path) = app.service_token() {
        // Printed once, on the start that created it; the token itself is never
        // printed or logged.
        println!(
            "Generated a service token (full access) in {path}.\n\
             Use it as:  curl -H \"x-api-key: $(cat {path})\" {scheme}://{addr}/v1/projects",
            path = path.display(),
            addr = app.local_addr(),
            scheme = app.scheme(),
        );
    }
    app.run_until(shutdown).await
}

/// Registers SIGINT and SIGTERM now; the future completes on the first of them.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}
