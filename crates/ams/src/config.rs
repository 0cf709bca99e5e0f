//! `ams serve` configuration: a `config.json` in the original's format, then
//! `AMS_*` environment variables, then flags, each overriding the one before.
//!
//! The original's keys keep their meaning (contract §10); its Kafka, ZooKeeper
//! and MongoDB keys are accepted and ignored with a warning, since this server
//! stores everything itself. Unknown keys and bad values stop the start with an
//! error naming the key.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde_json::Value;

use ams_http::AuthOption;
use ams_store::Durability;

/// A configuration problem, reported before anything starts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a JSON object.
    #[error("config file {path} is not a JSON object: {reason}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A key nobody knows.
    #[error("unknown configuration key `{key}` in {path}")]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
    },
    /// A known key with a value of the wrong kind.
    #[error("configuration key `{key}`: {problem}")]
    BadValue {
        /// The key (config name; flags and env vars are named after it).
        key: &'static str,
        /// What is wrong.
        problem: String,
    },
}

/// Token source, as a flag value.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum AuthOptionArg {
    /// `?key=` only.
    Key,
    /// `x-api-key` header only.
    Header,
    /// Header, then `?key=`.
    Both,
}

/// Durability tier, as a flag value.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum DurabilityArg {
    /// `fdatasync` before answering (group-committed).
    Fsync,
    /// Handed to the OS before answering.
    Write,
}

/// Storage backend, as a flag value.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum StoreArg {
    /// Messages and metadata in the data directory (one node).
    Embedded,
    /// Messages in Apache Kafka, metadata in PostgreSQL (any number of nodes).
    KafkaPostgres,
}

/// Where messages and metadata live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// The embedded store in the data directory.
    Embedded,
    /// Stateless nodes over Kafka and PostgreSQL.
    KafkaPostgres {
        /// Kafka bootstrap brokers, `host:port`.
        kafka_brokers: Vec<String>,
        /// libpq connection string or `postgres://` URL (may hold a password:
        /// never logged).
        postgres_url: String,
        /// Replication factor of the Kafka topics ams creates (-1: the
        /// broker's default).
        kafka_replication_factor: i16,
    },
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Flags of `ams serve`; each also reads an `AMS_*` environment variable.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// A config.json in the original AMS format (lowest precedence).
    #[arg(long, env = "AMS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long, env = "AMS_BIND_IP")]
    pub bind_ip: Option<IpAddr>,
    /// Port to listen on; 0 picks a free one [default: 8080].
    #[arg(long, env = "AMS_PORT")]
    pub port: Option<u16>,
    /// Where messages and metadata live [default: ./ams-data].
    #[arg(long, env = "AMS_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Token with full access; generated and stored in the data dir if unset.
    #[arg(long, env = "AMS_SERVICE_TOKEN", hide_env_values = true)]
    pub service_token: Option<String>,
    /// Where clients put their token [default: both].
    #[arg(long, env = "AMS_AUTH_OPTION", value_enum)]
    pub auth_option: Option<AuthOptionArg>,
    /// fsync (survives power loss) or write (survives kill -9) [default: fsync].
    #[arg(long, env = "AMS_DURABILITY", value_enum)]
    pub durability: Option<DurabilityArg>,
    /// Enforce per-topic/subscription ACLs for publishers and consumers [default: true].
    #[arg(long, env = "AMS_PER_RESOURCE_AUTH", num_args = 0..=1, default_missing_value = "true")]
    pub per_resource_auth: Option<bool>,
    /// error, warning, info, debug or trace (or an env-filter directive) [default: info].
    #[arg(long, env = "AMS_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// text or json [default: text].
    #[arg(long, env = "AMS_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// TLS certificate chain (PEM); with --certificate-key turns on HTTPS.
    #[arg(long, env = "AMS_CERTIFICATE", value_name = "FILE")]
    pub certificate: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "AMS_CERTIFICATE_KEY", value_name = "FILE")]
    pub certificate_key: Option<PathBuf>,
    /// Longest a `returnImmediately: "false"` pull waits, in ms [default: 5000].
    #[arg(long, env = "AMS_LONG_POLL_MAX_MS")]
    pub long_poll_max_ms: Option<u64>,
    /// Largest request body in bytes [default: 67108864].
    #[arg(long, env = "AMS_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Drop a topic's messages older than this many hours (whole segments) [default: keep].
    #[arg(long, env = "AMS_RETENTION_HOURS")]
    pub retention_hours: Option<u64>,
    /// Keep at most about this many bytes per topic (whole segments) [default: no limit].
    #[arg(long, env = "AMS_RETENTION_BYTES")]
    pub retention_bytes: Option<u64>,
    /// Size at which a topic's log starts a new segment file [default: 67108864].
    #[arg(long, env = "AMS_SEGMENT_BYTES")]
    pub segment_bytes: Option<u64>,
    /// Turn on push subscriptions and the built-in pusher [default: false].
    #[arg(long, env = "AMS_PUSH_ENABLED", num_args = 0..=1, default_missing_value = "true")]
    pub push_enabled: Option<bool>,
    /// Accept plain http:// push endpoints (local development) [default: false].
    #[arg(long, env = "AMS_PUSH_ALLOW_HTTP", num_args = 0..=1, default_missing_value = "true")]
    pub push_allow_http: Option<bool>,
    /// Token of the user the pusher acts as (original `push_worker_token`);
    /// unset: the pusher is an internal principal.
    #[arg(long, env = "AMS_PUSH_WORKER_TOKEN", hide_env_values = true)]
    pub push_worker_token: Option<String>,
    /// Directory of extra trusted CA certificates (PEM) for push endpoints.
    #[arg(long, env = "AMS_CERTIFICATE_AUTHORITIES_DIR", value_name = "DIR")]
    pub certificate_authorities_dir: Option<PathBuf>,
    /// One extra trusted CA certificate file (PEM) for push endpoints.
    #[arg(long, env = "AMS_PUSH_CA_FILE", value_name = "FILE")]
    pub push_ca_file: Option<PathBuf>,
    /// Longest a push delivery or endpoint verification may take, in ms [default: 10000].
    #[arg(long, env = "AMS_PUSH_TIMEOUT_MS")]
    pub push_timeout_ms: Option<u64>,
    /// Lease of a node on a push subscription, in seconds [default: 30].
    #[arg(long, env = "AMS_PUSH_LEASE_SECONDS")]
    pub push_lease_seconds: Option<u64>,
    /// Host name reported by `/v1/version` [default: none].
    #[arg(long, env = "AMS_PROXY_HOSTNAME")]
    pub proxy_hostname: Option<String>,
    /// Bearer token `GET /metrics` requires [default: none, open].
    #[arg(long, env = "AMS_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// This node's name among the nodes of a cluster (push leases) [default: a random UUID].
    #[arg(long, env = "AMS_NODE_ID")]
    pub node_id: Option<String>,
    /// embedded (one node, data dir) or kafka-postgres (a cluster) [default: embedded].
    #[arg(long, env = "AMS_STORE", value_enum)]
    pub store: Option<StoreArg>,
    /// Kafka bootstrap brokers, comma-separated host:port (store kafka-postgres).
    #[arg(long, env = "AMS_KAFKA_BROKERS", value_delimiter = ',')]
    pub kafka_brokers: Option<Vec<String>>,
    /// PostgreSQL connection string or URL (store kafka-postgres).
    #[arg(long, env = "AMS_POSTGRES_URL", hide_env_values = true)]
    pub postgres_url: Option<String>,
    /// Replication factor of the Kafka topics ams creates; -1 = broker default [default: -1].
    #[arg(
        long,
        env = "AMS_KAFKA_REPLICATION_FACTOR",
        allow_negative_numbers = true
    )]
    pub kafka_replication_factor: Option<i16>,
}

/// Push settings (contract §7, §10).
#[derive(Debug, Clone, Default)]
pub struct PushConfig {
    /// The original's switch.
    pub enabled: bool,
    /// Accept http:// endpoints.
    pub allow_http: bool,
    /// The push worker's token (never logged).
    pub worker_token: Option<String>,
    /// Extra trusted CAs, read from `certificate_authorities_dir` and `push_ca_file`.
    pub ca_files: Vec<PathBuf>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Subscription lease.
    pub lease: Duration,
    /// This node's name in push leases (unique among the nodes of a cluster).
    pub node_id: String,
}

/// The resolved configuration of a server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub bind_ip: IpAddr,
    /// Listen port (0 = any free port).
    pub port: u16,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Configured service token (`None`: use or create the stored one).
    pub service_token: Option<String>,
    /// Token source.
    pub auth_option: AuthOption,
    /// Durability tier.
    pub durability: Durability,
    /// ACL enforcement switch (used once users and ACLs exist).
    pub per_resource_auth: bool,
    /// Log filter.
    pub log_level: String,
    /// Log format.
    pub log_format: LogFormat,
    /// TLS certificate and key, when HTTPS is on.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Long-poll limit.
    pub long_poll_max: Duration,
    /// Body limit.
    pub max_body_bytes: usize,
    /// Retention by age.
    pub retention_max_age: Option<Duration>,
    /// Retention by size, per topic.
    pub retention_max_bytes: Option<u64>,
    /// Segment size.
    pub segment_bytes: u64,
    /// Push subscriptions and the built-in pusher.
    pub push: PushConfig,
    /// Reported as `hostname` by `/v1/version`.
    pub proxy_hostname: String,
    /// Bearer token of `GET /metrics` (never logged).
    pub metrics_token: Option<String>,
    /// The storage backend.
    pub store: StoreConfig,
    /// Warnings to log once logging is up (ignored keys and the like).
    pub warnings: Vec<String>,
}

impl Config {
    /// A configuration for tests: loopback, port 0, the given data dir, write tier.
    pub fn for_tests(data_dir: &Path) -> Self {
        let mut config = Self::load(&ServeArgs::default()).expect("defaults are valid");
        config.port = 0;
        config.data_dir = data_dir.to_owned();
        config
    }

    /// Resolves flags (already merged with env vars by clap) over the file.
    pub fn load(args: &ServeArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => FileConfig::read(path)?,
            None => FileConfig::default(),
        };
        let store = store_config(args, &file)?;
        let tls = match (
            args.certificate.clone().or(file.certificate),
            args.certificate_key.clone().or(file.certificate_key),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(ConfigError::BadValue {
                    key: "certificate",
                    problem: "`certificate` and `certificate_key` must be set together".into(),
                });
            }
        };
        let auth_option = match args.auth_option {
            Some(AuthOptionArg::Key) => AuthOption::Key,
            Some(AuthOptionArg::Header) => AuthOption::Header,
            Some(AuthOptionArg::Both) => AuthOption::Both,
            None => file.auth_option.unwrap_or(AuthOption::Both),
        };
        let durability = match args.durability {
            Some(DurabilityArg::Fsync) => Durability::Fsync,
            Some(DurabilityArg::Write) => Durability::Write,
            None => file.durability.unwrap_or(Durability::Fsync),
        };
        let positive = |key: &'static str, v: u64| {
            if v == 0 {
                Err(ConfigError::BadValue {
                    key,
                    problem: "must be greater than 0".into(),
                })
            } else {
                Ok(v)
            }
        };
        let segment_bytes = positive(
            "segment_bytes",
            args.segment_bytes
                .or(file.segment_bytes)
                .unwrap_or(64 << 20),
        )?;
        let max_body_bytes = args
            .max_body_bytes
            .or(file.max_body_bytes)
            .unwrap_or(64 << 20);
        if max_body_bytes < 2_000_000 {
            return Err(ConfigError::BadValue {
                key: "max_body_bytes",
                problem: "must be at least 2000000 so that a 1.5 MB message fits".into(),
            });
        }
        let retention_hours = args.retention_hours.or(file.retention_hours);
        let retention_bytes = args.retention_bytes.or(file.retention_bytes);
        if let Some(h) = retention_hours {
            positive("retention_hours", h)?;
        }
        if let Some(b) = retention_bytes {
            positive("retention_bytes", b)?;
        }
        let mut warnings = file.warnings;
        let push = PushConfig {
            enabled: args.push_enabled.or(file.push_enabled).unwrap_or(false),
            allow_http: args
                .push_allow_http
                .or(file.push_allow_http)
                .unwrap_or(false),
            worker_token: args
                .push_worker_token
                .clone()
                .or(file.push_worker_token)
                .filter(|t| !t.is_empty()),
            ca_files: ca_files(
                args.certificate_authorities_dir
                    .clone()
                    .or(file.certificate_authorities_dir),
                args.push_ca_file.clone().or(file.push_ca_file),
                &mut warnings,
            )?,
            timeout: Duration::from_millis(positive(
                "push_timeout_ms",
                args.push_timeout_ms
                    .or(file.push_timeout_ms)
                    .unwrap_or(10_000),
            )?),
            lease: Duration::from_secs(positive(
                "push_lease_seconds",
                args.push_lease_seconds
                    .or(file.push_lease_seconds)
                    .unwrap_or(30),
            )?),
            node_id: args
                .node_id
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        };
        let service_token = args
            .service_token
            .clone()
            .or(file.service_token)
            .filter(|t| !t.is_empty());
        if store != StoreConfig::Embedded && service_token.is_none() {
            return Err(ConfigError::BadValue {
                key: "service_token",
                problem: "store kafka-postgres needs a configured service token: every node \
                          of a cluster must accept the same one"
                    .into(),
            });
        }
        if store == StoreConfig::Embedded {
            warnings.extend(file.cluster_warnings);
        }
        Ok(Config {
            bind_ip: args
                .bind_ip
                .or(file.bind_ip)
                .unwrap_or(IpAddr::from([127, 0, 0, 1])),
            port: args.port.or(file.port).unwrap_or(8080),
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("ams-data")),
            service_token,
            auth_option,
            durability,
            per_resource_auth: args
                .per_resource_auth
                .or(file.per_resource_auth)
                .unwrap_or(true),
            log_level: match &args.log_level {
                Some(level) => log_filter(level)?,
                None => file.log_level.unwrap_or_else(|| "info".into()),
            },
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            tls,
            long_poll_max: Duration::from_millis(
                args.long_poll_max_ms
                    .or(file.long_poll_max_ms)
                    .unwrap_or(5000),
            ),
            max_body_bytes,
            retention_max_age: retention_hours.map(|h| Duration::from_secs(h * 3600)),
            retention_max_bytes: retention_bytes,
            segment_bytes,
            push,
            proxy_hostname: args
                .proxy_hostname
                .clone()
                .or(file.proxy_hostname)
                .unwrap_or_default(),
            metrics_token: args
                .metrics_token
                .clone()
                .or(file.metrics_token)
                .filter(|t| !t.is_empty()),
            store,
            warnings,
        })
    }
}

/// The storage backend: `store` with its connection settings. The original's
/// `broker_hosts` names the Kafka brokers when `kafka_brokers` is not set.
fn store_config(args: &ServeArgs, file: &FileConfig) -> Result<StoreConfig, ConfigError> {
    let store = args.store.or(file.store).unwrap_or(StoreArg::Embedded);
    let brokers = args
        .kafka_brokers
        .clone()
        .or_else(|| file.kafka_brokers.clone())
        .or_else(|| file.broker_hosts.clone())
        .map(|list| {
            list.iter()
                .map(|b| b.trim().to_owned())
                .filter(|b| !b.is_empty())
                .collect::<Vec<_>>()
        });
    let postgres_url = args
        .postgres_url
        .clone()
        .or_else(|| file.postgres_url.clone())
        .filter(|u| !u.is_empty());
    let replication = args
        .kafka_replication_factor
        .or(file.kafka_replication_factor)
        .unwrap_or(-1);
    match store {
        StoreArg::Embedded => Ok(StoreConfig::Embedded),
        StoreArg::KafkaPostgres => {
            let kafka_brokers =
                brokers
                    .filter(|b| !b.is_empty())
                    .ok_or_else(|| ConfigError::BadValue {
                        key: "kafka_brokers",
                        problem: "store kafka-postgres needs the Kafka brokers (host:port, \
                              comma-separated)"
                            .into(),
                    })?;
            if let Some(bad) = kafka_brokers.iter().find(|b| !b.contains(':')) {
                return Err(ConfigError::BadValue {
                    key: "kafka_brokers",
                    problem: format!("expected host:port, got {bad:?}"),
                });
            }
            let postgres_url = postgres_url.ok_or_else(|| ConfigError::BadValue {
                key: "postgres_url",
                problem: "store kafka-postgres needs a PostgreSQL connection string".into(),
            })?;
            if replication == 0 || replication < -1 {
                return Err(ConfigError::BadValue {
                    key: "kafka_replication_factor",
                    problem: "must be -1 (the broker's default) or at least 1".into(),
                });
            }
            Ok(StoreConfig::KafkaPostgres {
                kafka_brokers,
                postgres_url,
                kafka_replication_factor: replication,
            })
        }
    }
}

/// The PEM files of a CA directory (`*.pem`, `*.crt`, sorted) plus one file.
/// A missing directory is only a warning: the original's sample config names
/// `/etc/grid-security/certificates`, which few machines have.
fn ca_files(
    dir: Option<PathBuf>,
    file: Option<PathBuf>,
    warnings: &mut Vec<String>,
) -> Result<Vec<PathBuf>, ConfigError> {
    let mut out = Vec::new();
    if let Some(dir) = dir.filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            warnings.push(format!(
                "certificate_authorities_dir {} does not exist: no extra CAs are trusted",
                dir.display()
            ));
            return ca_files(None, file, warnings);
        }
        let entries = std::fs::read_dir(&dir).map_err(|e| ConfigError::BadValue {
            key: "certificate_authorities_dir",
            problem: format!("cannot read {}: {e}", dir.display()),
        })?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pem" || x == "crt"))
            .collect();
        found.sort();
        out.extend(found);
    }
    if let Some(file) = file.filter(|f| !f.as_os_str().is_empty()) {
        if !file.is_file() {
            return Err(ConfigError::BadValue {
                key: "push_ca_file",
                problem: format!("{} is not a readable file", file.display()),
            });
        }
        out.push(file);
    }
    Ok(out)
}

/// A log level: the original's names (`DEBUG`, `INFO`, `WARNING`, `ERROR`,
/// `FATAL`) or tracing's, any case; or a full filter directive such as
/// `info,ams_http=debug`. A bare word that is no level is refused (tracing would
/// take it for a target name and silently log nothing).
fn log_filter(value: &str) -> Result<String, ConfigError> {
    let level = match value.to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARNING" | "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        _ if value.contains('=') || value.contains(',') => {
            return tracing_subscriber::EnvFilter::try_new(value)
                .map(|_| value.to_owned())
                .map_err(|e| ConfigError::BadValue {
                    key: "log_level",
                    problem: e.to_string(),
                });
        }
        _ => {
            return Err(ConfigError::BadValue {
                key: "log_level",
                problem: format!(
                    "expected DEBUG, INFO, WARNING, ERROR or FATAL (or a filter directive), got {value:?}"
                ),
            });
        }
    };
    Ok(level.to_owned())
}

/// What a config.json said.
#[derive(Debug, Default)]
struct FileConfig {
    bind_ip: Option<IpAddr>,
    port: Option<u16>,
    data_dir: Option<PathBuf>,
    service_token: Option<String>,
    auth_option: Option<AuthOption>,
    durability: Option<Durability>,
    per_resource_auth: Option<bool>,
    log_level: Option<String>,
    log_format: Option<LogFormat>,
    certificate: Option<PathBuf>,
    certificate_key: Option<PathBuf>,
    long_poll_max_ms: Option<u64>,
    max_body_bytes: Option<usize>,
    retention_hours: Option<u64>,
    retention_bytes: Option<u64>,
    segment_bytes: Option<u64>,
    push_enabled: Option<bool>,
    push_allow_http: Option<bool>,
    push_worker_token: Option<String>,
    certificate_authorities_dir: Option<PathBuf>,
    push_ca_file: Option<PathBuf>,
    push_timeout_ms: Option<u64>,
    push_lease_seconds: Option<u64>,
    proxy_hostname: Option<String>,
    metrics_token: Option<String>,
    store: Option<StoreArg>,
    kafka_brokers: Option<Vec<String>>,
    broker_hosts: Option<Vec<String>>,
    postgres_url: Option<String>,
    kafka_replication_factor: Option<i16>,
    warnings: Vec<String>,
    /// Warnings that apply only to the embedded store (its ignored keys).
    cluster_warnings: Vec<String>,
}

/// Keys of the original that describe its external stores.
const IGNORED_KEYS: &[&str] = &["zookeeper_hosts", "kafka_znode", "store_host", "store_db"];

/// Keys of the original's external push server: push is built in.
const PUSH_SERVER_KEYS: &[&str] = &[
    "push_tls_enabled",
    "push_server_host",
    "push_server_port",
    "verify_push_server",
];

/// Keys of the original that are accepted now and used by later features.
const RESERVED_KEYS: &[&str] = &["log_facilities"];

fn bad(key: &'static str, expected: &str, got: &Value) -> ConfigError {
    ConfigError::BadValue {
        key,
        problem: format!("expected {expected}, got {got}"),
    }
}

fn string(key: &'static str, v: &Value) -> Result<String, ConfigError> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| bad(key, "a string", v))
}

fn unsigned(key: &'static str, v: &Value) -> Result<u64, ConfigError> {
    v.as_u64()
        .ok_or_else(|| bad(key, "a non-negative integer", v))
}

/// A list of strings, or one comma-separated string.
fn string_list(key: &'static str, v: &Value) -> Result<Vec<String>, ConfigError> {
    match v {
        Value::String(s) => Ok(s.split(',').map(str::to_owned).collect()),
        Value::Array(items) => items.iter().map(|i| string(key, i)).collect(),
        _ => Err(bad(key, "a list of host:port strings", v)),
    }
}

/// A boolean, or the strings "true"/"false" as the original accepts.
fn boolean(key: &'static str, v: &Value) -> Result<bool, ConfigError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(bad(key, "true or false", v)),
    }
}

impl FileConfig {
    fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let syntax = |reason: String| ConfigError::Syntax {
            path: path.to_owned(),
            reason,
        };
        let value: Value = serde_json::from_slice(&text).map_err(|e| syntax(e.to_string()))?;
        let Value::Object(map) = value else {
            return Err(syntax("the top level must be an object".into()));
        };
        let mut cfg = FileConfig::default();
        for (key, v) in &map {
            match key.as_str() {
                "bind_ip" => {
                    let s = string("bind_ip", v)?;
                    // The original ignored bind_ip and its sample says "localhost".
                    cfg.bind_ip = Some(if s == "localhost" {
                        IpAddr::from([127, 0, 0, 1])
                    } else {
                        s.parse().map_err(|_| bad("bind_ip", "an IP address", v))?
                    });
                }
                "port" => {
                    cfg.port = Some(
                        u16::try_from(unsigned("port", v)?)
                            .map_err(|_| bad("port", "a port number", v))?,
                    )
                }
                "data_dir" => cfg.data_dir = Some(string("data_dir", v)?.into()),
                "service_token" => cfg.service_token = Some(string("service_token", v)?),
                "auth_option" => {
                    cfg.auth_option = Some(match string("auth_option", v)?.as_str() {
                        "key" => AuthOption::Key,
                        "header" => AuthOption::Header,
                        "both" => AuthOption::Both,
                        _ => return Err(bad("auth_option", "\"key\", \"header\" or \"both\"", v)),
                    })
                }
                "durability" => {
                    cfg.durability = Some(match string("durability", v)?.as_str() {
                        "fsync" => Durability::Fsync,
                        "write" => Durability::Write,
                        _ => return Err(bad("durability", "\"fsync\" or \"write\"", v)),
                    })
                }
                "per_resource_auth" => {
                    cfg.per_resource_auth = Some(boolean("per_resource_auth", v)?)
                }
                "push_enabled" => cfg.push_enabled = Some(boolean("push_enabled", v)?),
                "push_allow_http" => cfg.push_allow_http = Some(boolean("push_allow_http", v)?),
                "push_worker_token" => {
                    cfg.push_worker_token = Some(string("push_worker_token", v)?)
                }
                "certificate_authorities_dir" => {
                    cfg.certificate_authorities_dir =
                        Some(string("certificate_authorities_dir", v)?.into())
                }
                "push_ca_file" => cfg.push_ca_file = Some(string("push_ca_file", v)?.into()),
                "push_timeout_ms" => cfg.push_timeout_ms = Some(unsigned("push_timeout_ms", v)?),
                "push_lease_seconds" => {
                    cfg.push_lease_seconds = Some(unsigned("push_lease_seconds", v)?)
                }
                "proxy_hostname" => cfg.proxy_hostname = Some(string("proxy_hostname", v)?),
                "metrics_token" => cfg.metrics_token = Some(string("metrics_token", v)?),
                "store" => {
                    cfg.store = Some(match string("store", v)?.as_str() {
                        "embedded" => StoreArg::Embedded,
                        "kafka-postgres" => StoreArg::KafkaPostgres,
                        _ => return Err(bad("store", "\"embedded\" or \"kafka-postgres\"", v)),
                    })
                }
                "kafka_brokers" => cfg.kafka_brokers = Some(string_list("kafka_brokers", v)?),
                "broker_hosts" => {
                    cfg.broker_hosts = Some(string_list("broker_hosts", v)?);
                    cfg.cluster_warnings.push(
                        "config key `broker_hosts` is ignored: the embedded store keeps \
                         messages itself (it names the Kafka brokers with store kafka-postgres)"
                            .into(),
                    );
                }
                "postgres_url" => cfg.postgres_url = Some(string("postgres_url", v)?),
                "kafka_replication_factor" => {
                    cfg.kafka_replication_factor = Some(
                        v.as_i64()
                            .and_then(|n| i16::try_from(n).ok())
                            .ok_or_else(|| bad("kafka_replication_factor", "an integer", v))?,
                    )
                }
                k if PUSH_SERVER_KEYS.contains(&k) => cfg.warnings.push(format!(
                    "config key `{k}` is ignored: push is delivered by this server itself"
                )),
                "log_level" => cfg.log_level = Some(log_filter(&string("log_level", v)?)?),
                "log_format" => {
                    cfg.log_format = Some(match string("log_format", v)?.as_str() {
                        "text" => LogFormat::Text,
                        "json" => LogFormat::Json,
                        _ => return Err(bad("log_format", "\"text\" or \"json\"", v)),
                    })
                }
                "certificate" => {
                    cfg.certificate = Some(string("certificate", v)?.into())
                        .filter(|p: &PathBuf| !p.as_os_str().is_empty())
                }
                "certificate_key" => {
                    cfg.certificate_key = Some(string("certificate_key", v)?.into())
                        .filter(|p: &PathBuf| !p.as_os_str().is_empty())
                }
                "long_poll_max_ms" => cfg.long_poll_max_ms = Some(unsigned("long_poll_max_ms", v)?),
                "max_body_bytes" => {
                    cfg.max_body_bytes = Some(
                        usize::try_from(unsigned("max_body_bytes", v)?)
                            .map_err(|_| bad("max_body_bytes", "a size", v))?,
                    )
                }
                "retention_hours" => cfg.retention_hours = Some(unsigned("retention_hours", v)?),
                "retention_bytes" => cfg.retention_bytes = Some(unsigned("retention_bytes", v)?),
                "segment_bytes" => cfg.segment_bytes = Some(unsigned("segment_bytes", v)?),
                k if IGNORED_KEYS.contains(&k) => cfg.warnings.push(format!(
                    "config key `{k}` is ignored: ams uses neither ZooKeeper nor MongoDB \
                     (see `store`)"
                )),
                k if RESERVED_KEYS.contains(&k) => {}
                _ => {
                    return Err(ConfigError::UnknownKey {
                        path: path.to_owned(),
                        key: key.clone(),
                    });
                }
            }
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(json: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, json).unwrap();
        (dir, path)
    }

    fn load(json: &str, args: ServeArgs) -> Result<Config, ConfigError> {
        let (_dir, path) = file(json);
        Config::load(&ServeArgs {
            config: Some(path),
            ..args
        })
    }

    #[test]
    fn defaults() {
        let c = Config::load(&ServeArgs::default()).unwrap();
        assert_eq!(c.port, 8080);
        assert_eq!(c.bind_ip.to_string(), "127.0.0.1");
        assert_eq!(c.auth_option, AuthOption::Both);
        assert_eq!(c.durability, Durability::Fsync);
        assert!(c.per_resource_auth);
        assert!(c.tls.is_none());
        assert_eq!(c.data_dir, PathBuf::from("ams-data"));
    }

    #[test]
    fn the_originals_sample_config_loads_with_warnings() {
        let c = load(
            r#"{"bind_ip":"localhost","port":8443,"zookeeper_hosts":["localhost"],
                "store_host":"localhost","store_db":"argo_msg","certificate":"",
                "certificate_key":"","certificate_authorities_dir":"/etc/grid-security/certificates",
                "per_resource_auth":"true","service_token":"S3CR3T","push_enabled":false,
                "push_tls_enabled":true,"push_server_host":"localhost","push_server_port":5555,
                "verify_push_server":true,"push_worker_token":"","log_level":"INFO",
                "log_facilities":["console"],"auth_option":"header","proxy_hostname":""}"#,
            ServeArgs::default(),
        )
        .unwrap();
        assert_eq!(c.port, 8443);
        assert_eq!(c.service_token.as_deref(), Some("S3CR3T"));
        assert_eq!(c.auth_option, AuthOption::Header);
        // Three store keys, four push-server keys, the missing CA directory.
        assert_eq!(c.warnings.len(), 8, "{:?}", c.warnings);
        assert!(!c.push.enabled && c.push.worker_token.is_none());
        assert!(c.tls.is_none());
    }

    #[test]
    fn the_cluster_store_needs_its_servers_and_a_shared_token() {
        let c = load(
            r#"{"store":"kafka-postgres","broker_hosts":["k1:9092","k2:9092"],
                "postgres_url":"host=db user=ams","service_token":"S3CR3T"}"#,
            ServeArgs::default(),
        )
        .unwrap();
        assert_eq!(
            c.store,
            StoreConfig::KafkaPostgres {
                kafka_brokers: vec!["k1:9092".into(), "k2:9092".into()],
                postgres_url: "host=db user=ams".into(),
                kafka_replication_factor: -1,
            }
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        // Flags win over the file, and the brokers come comma-separated.
        let c = load(
            r#"{"store":"kafka-postgres","kafka_brokers":"a:1","postgres_url":"x",
                "service_token":"t","kafka_replication_factor":3}"#,
            ServeArgs {
                kafka_brokers: Some(vec!["b:2".into(), " c:3".into()]),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(matches!(
            c.store,
            StoreConfig::KafkaPostgres { ref kafka_brokers, kafka_replication_factor: 3, .. }
                if kafka_brokers == &["b:2", "c:3"]
        ));
        for (json, key) in [
            (
                r#"{"store":"kafka-postgres","postgres_url":"x","service_token":"t"}"#,
                "kafka_brokers",
            ),
            (
                r#"{"store":"kafka-postgres","kafka_brokers":"a:1","service_token":"t"}"#,
                "postgres_url",
            ),
            (
                r#"{"store":"kafka-postgres","kafka_brokers":"a:1","postgres_url":"x"}"#,
                "service_token",
            ),
            (
                r#"{"store":"kafka-postgres","kafka_brokers":"a","postgres_url":"x","service_token":"t"}"#,
                "kafka_brokers",
            ),
            (
                r#"{"store":"kafka-postgres","kafka_brokers":"a:1","postgres_url":"x","service_token":"t","kafka_replication_factor":0}"#,
                "kafka_replication_factor",
            ),
            (r#"{"store":"kafka"}"#, "store"),
        ] {
            match load(json, ServeArgs::default()) {
                Err(ConfigError::BadValue { key: k, .. }) => assert_eq!(k, key, "{json}"),
                other => panic!("{json}: {other:?}"),
            }
        }
        // With the embedded store the original's broker list is only a warning.
        let c = load(
            r#"{"broker_hosts":["localhost:9092"]}"#,
            ServeArgs::default(),
        )
        .unwrap();
        assert_eq!(c.store, StoreConfig::Embedded);
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn flags_override_the_file() {
        let c = load(
            r#"{"port": 1000, "durability": "fsync"}"#,
            ServeArgs {
                port: Some(2000),
                durability: Some(DurabilityArg::Write),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.port, 2000);
        assert_eq!(c.durability, Durability::Write);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let e = load(r#"{"prot": 1}"#, ServeArgs::default()).unwrap_err();
        assert!(e.to_string().contains("`prot`"), "{e}");
        for (json, key) in [
            (r#"{"port": "80"}"#, "`port`"),
            (r#"{"port": 70000}"#, "`port`"),
            (r#"{"auth_option": "cookie"}"#, "`auth_option`"),
            (r#"{"per_resource_auth": "yes"}"#, "`per_resource_auth`"),
            (r#"{"log_level": "LOUD"}"#, "`log_level`"),
            (r#"{"durability": "never"}"#, "`durability`"),
            (r#"{"bind_ip": "nowhere"}"#, "`bind_ip`"),
            (r#"{"segment_bytes": 0}"#, "`segment_bytes`"),
            (r#"{"certificate": "a.pem"}"#, "`certificate`"),
        ] {
            let e = load(json, ServeArgs::default()).unwrap_err();
            assert!(e.to_string().contains(key), "{json}: {e}");
        }
        assert!(matches!(
            load("[1]", ServeArgs::default()),
            Err(ConfigError::Syntax { .. })
        ));
    }
}
