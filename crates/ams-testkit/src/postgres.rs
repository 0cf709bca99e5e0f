//! A throwaway PostgreSQL cluster from Debian's `postgresql` package.
//!
//! As root PostgreSQL refuses to run, so the cluster then belongs to
//! [`CLUSTER_USER`] and its tools run via `runuser`.

use std::path::PathBuf;
use std::process::Command;

/// The unprivileged account the cluster runs as when the tests run as root.
const CLUSTER_USER: &str = "nobody";

/// A running cluster; stopped (`pg_ctl stop -m immediate`) when dropped.
pub struct Postgres {
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
             /usr/lib/postgresql/*/bin: install them with `apt-get install postgresql` \
             (scripts/test does)"
        )
    })
}

impl Postgres {
    /// Initializes and starts a cluster; panics (with the server log) if it cannot.
    pub fn start() -> Postgres {
        let bin = find_bin();
        let as_user = super::is_root();
        let dir = tempfile::tempdir().unwrap();
        if as_user {
            let status = Command::new("chown")
                .arg(format!("{CLUSTER_USER}:"))
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown of the cluster directory failed");
        }
        let mut cluster = Postgres {
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
            cluster.port = super::free_port();
            let options = format!(
                "-p {} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off \
                 -c max_connections=300",
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

    /// The port the cluster listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A libpq-style connection string for `database` as the superuser.
    pub fn url(&self, database: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={database}",
            self.port
        )
    }

    /// Creates database `name` unless it exists.
    pub async fn ensure_database(&self, name: &str) {
        let (client, connection) =
            tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls)
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
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data.to_str().unwrap().to_owned();
        self.try_run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}
