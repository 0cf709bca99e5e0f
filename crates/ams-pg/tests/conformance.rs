//! `PgMeta` against the `ams-core` conformance suite, on a real PostgreSQL.
//!
//! The test starts a throwaway cluster (`initdb` + `pg_ctl`) in a temporary
//! directory, runs every check of the suite against it (each check on its own
//! database, named after its directory, so that a reopen finds its data) and
//! stops the cluster, also when a check fails. As root, PostgreSQL refuses to
//! run, so the cluster belongs to `nobody` and its tools run via `runuser`.

use std::future::Future;
use std::net::TcpListener;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use ams_core::conformance::{self, Backend};
use ams_core::{MessageLog, MetadataStore};
use ams_pg::{Durability, PgMeta};
use ams_store::{LogOptions, SegmentLog};
use async_trait::async_trait;
use futures::FutureExt;

/// The unprivileged account the cluster runs as when the tests run as root.
const CLUSTER_USER: &str = "nobody";

/// A running throwaway cluster; stopped (immediately) when dropped.
struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// Run the PostgreSQL tools as [`CLUSTER_USER`] (we are root).
    as_user: bool,
    /// Holds the data directory, the socket and the server log.
    dir: tempfile::TempDir,
}

/// Where `initdb` and `pg_ctl` are: on `PATH`, else in the newest
/// `/usr/lib/postgresql/*/bin`.
fn find_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                return dir;
            }
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in \
             /usr/lib/postgresql/*/bin: install them with `apt-get install postgresql`"
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    fn start() -> Cluster {
        let bin = find_bin();
        let as_user = is_root();
        let dir = tempfile::tempdir().unwrap();
        if as_user {
            let status = Command::new("chown")
                .arg(format!("{CLUSTER_USER}:"))
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown of the cluster directory failed");
        }
        let mut cluster = Cluster {
            bin,
            data: dir.path().join("data"),
            port: 0,
            as_user,
            dir,
        };
        let data = cluster.data.to_str().unwrap().to_owned();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        let socket_dir = cluster.dir.path().to_str().unwrap().to_owned();
        let log = cluster.dir.path().join("server.log");
        // A port can be taken between probing and binding: retry a few times.
        for attempt in 0.. {
            cluster.port = free_port();
            let options = format!(
                "-p {} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off \
                 -c max_connections=200",
                cluster.port
            );
            let ok = cluster.try_run(
                "pg_ctl",
                &[
                    "-D",
                    &data,
                    "-l",
                    log.to_str().unwrap(),
                    "-o",
                    &options,
                    "-w",
                    "start",
                ],
            );
            if ok {
                break;
            }
            let server_log = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(attempt < 3, "pg_ctl start failed:\n{server_log}");
        }
        cluster
    }

    fn command(&self, tool: &str, args: &[&str]) -> Command {
        let tool = self.bin.join(tool);
        let mut cmd = if self.as_user {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", CLUSTER_USER, "--"]).arg(tool);
            cmd
        } else {
            Command::new(tool)
        };
        cmd.args(args).current_dir(self.dir.path());
        cmd
    }

    fn try_run(&self, tool: &str, args: &[&str]) -> bool {
        let out = self.command(tool, args).output().unwrap();
        if !out.status.success() {
            eprintln!(
                "{tool} failed: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        out.status.success()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        assert!(self.try_run(tool, args), "{tool} failed");
    }

    fn url(&self, database: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={database}",
            self.port
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data.to_str().unwrap().to_owned();
        self.try_run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}

/// The backend under test: `PgMeta` on one database per directory, with the
/// embedded segment log for messages.
struct Pg {
    cluster: Arc<Cluster>,
    durability: Durability,
}

/// A stable database name for a directory (FNV-1a of its path).
fn database_for(dir: &Path) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in dir.as_os_str().as_encoded_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("ams_{hash:016x}")
}

async fn ensure_database(cluster: &Cluster, name: &str) {
    let (client, connection) =
        tokio_postgres::connect(&cluster.url("postgres"), tokio_postgres::NoTls)
            .await
            .unwrap();
    let task = tokio::spawn(connection);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap()
        .is_some();
    if !exists {
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
    }
    drop(client);
    let _ = task.await;
}

#[async_trait]
impl Backend for Pg {
    async fn open(&self, dir: &Path) -> (Arc<dyn MetadataStore>, Arc<dyn MessageLog>) {
        let name = database_for(dir);
        ensure_database(&self.cluster, &name).await;
        let meta = PgMeta::connect(&self.cluster.url(&name), self.durability)
            .await
            .unwrap();
        let log = SegmentLog::open(
            &dir.join("logs"),
            LogOptions {
                segment_bytes: 4096,
                ..LogOptions::default()
            },
        )
        .unwrap();
        (Arc::new(meta), log)
    }

    async fn close(&self, meta: Arc<dyn MetadataStore>, log: Arc<dyn MessageLog>) {
        drop(meta);
        drop(log);
    }
}

type Check = for<'a> fn(&'a Pg, &'a Path) -> Pin<Box<dyn Future<Output = ()> + 'a>>;

/// Every check of the suite (the list of `ams_core::conformance_tests!`).
macro_rules! checks {
    ($($check:ident),* $(,)?) => {
        mod checks {
            use super::*;
            $(
                pub fn $check<'a>(b: &'a Pg, dir: &'a Path) -> Pin<Box<dyn Future<Output = ()> + 'a>> {
                    Box::pin(conformance::$check(b, dir))
                }
            )*
        }

        fn all_checks() -> Vec<(&'static str, Check)> {
            vec![$((stringify!($check), checks::$check as Check)),*]
        }
    };
}

checks![
    projects,
    topics_and_pagination,
    subscriptions,
    cursor_updates_are_serialized,
    persistence_across_reopen,
    log_offsets_are_dense_under_concurrency,
    log_reads_and_bounds,
    log_time_lookup,
    log_wakeups,
    log_delete_and_list,
    users,
    deleting_a_user_scrubs_acls,
    registrations,
    identity_persists_across_reopen,
    subscription_settings_updates,
    leases,
    schemas,
    memberships_added_atomically,
    usage_counters,
];

/// Runs every check against one backend; returns the names of the failures.
async fn run_suite(backend: &Pg) -> Vec<&'static str> {
    let mut failed = Vec::new();
    for (name, check) in all_checks() {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let outcome = AssertUnwindSafe(check(backend, dir.path()))
            .catch_unwind()
            .await;
        eprintln!(
            "{name} ({:?}): {:.2?}",
            backend.durability,
            started.elapsed()
        );
        if outcome.is_err() {
            failed.push(name);
        }
    }
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_postgres() {
    let started = Instant::now();
    // Dropped at the end of this function, also when a check panics.
    let cluster = Arc::new(Cluster::start());
    eprintln!(
        "cluster up on port {} in {:.2?}",
        cluster.port,
        started.elapsed()
    );
    let mut failed = Vec::new();
    for durability in [Durability::Fsync, Durability::Write] {
        let backend = Pg {
            cluster: cluster.clone(),
            durability,
        };
        for name in run_suite(&backend).await {
            failed.push(format!("{name} ({durability:?})"));
        }
    }
    eprintln!("suite done in {:.2?}", started.elapsed());
    migrations_are_applied_once_by_concurrent_nodes(&cluster).await;
    assert!(failed.is_empty(), "failed checks: {failed:?}");
}

/// Nodes starting together apply each migration exactly once.
async fn migrations_are_applied_once_by_concurrent_nodes(cluster: &Cluster) {
    ensure_database(cluster, "racing").await;
    let url = cluster.url("racing");
    let nodes: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PgMeta::connect(&url, Durability::Fsync).await })
        })
        .collect();
    for node in nodes {
        node.await.unwrap().unwrap();
    }
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let versions: Vec<i32> = client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected: Vec<i32> = ams_pg::migrate::MIGRATIONS
        .iter()
        .map(|(v, _)| *v)
        .collect();
    assert_eq!(versions, expected);
}
