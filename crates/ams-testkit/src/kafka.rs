//! A Kafka-protocol broker for tests: tansu (crates.io), installed once per
//! machine with `cargo install tansu --locked --features dynostore,libsql`
//! (scripts/test does when it is missing). Production uses Apache Kafka;
//! tansu speaks the same protocol and starts in milliseconds.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the broker keeps its data. tansu 0.6.0 has one flaw in each, so
/// tests pick the engine whose flaw they do not touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// SQLite (libSQL) in the broker's directory: offsets and batches as
    /// Kafka keeps them, but DeleteTopics removes *every* topic of the
    /// cluster (its `topic_delete_by.sql` filters by cluster only).
    Sqlite,
    /// In memory (dynostore): deletes one topic, but gives a batch of
    /// several records a single offset. For tests that delete topics and
    /// publish one message per batch.
    Memory,
}

/// A running broker; killed (by the PID started here) when dropped.
pub struct Kafka {
    child: Child,
    port: u16,
    /// Holds the broker's data and its log.
    dir: tempfile::TempDir,
}

/// The `tansu` binary: `$AMS_TANSU`, else on `PATH`, else `~/.cargo/bin`.
pub fn find_tansu() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("AMS_TANSU") {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("tansu"));
    let in_cargo = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|home| home.join("bin").join("tansu"));
    on_path.chain(in_cargo).find(|p| p.is_file())
}

impl Kafka {
    /// Starts a broker with the SQLite engine (see [`Engine`]).
    pub fn start() -> Kafka {
        Self::start_with(Engine::Sqlite)
    }

    /// Starts a broker on a free port and waits until it accepts connections;
    /// panics (with its log) if it cannot.
    pub fn start_with(engine: Engine) -> Kafka {
        let tansu = find_tansu().unwrap_or_else(|| {
            panic!(
                "the Kafka-protocol test broker `tansu` was not found ($AMS_TANSU, PATH, \
                 ~/.cargo/bin): install it with `cargo install tansu --locked --features \
                 dynostore,libsql` (scripts/test does)"
            )
        });
        let mut last_log = String::new();
        // A port can be taken between probing and binding: retry a few times.
        for _ in 0..4 {
            let dir = tempfile::tempdir().unwrap();
            let port = super::free_port();
            let log = std::fs::File::create(dir.path().join("broker.log")).unwrap();
            let url = format!("tcp://127.0.0.1:{port}");
            // tansu resolves a SQLite path against its working directory.
            let storage = match engine {
                Engine::Sqlite => "sqlite://tansu.db",
                Engine::Memory => "memory://tansu/",
            };
            let child = Command::new(&tansu)
                .arg("broker")
                .args(["--listener-url", &url])
                .args(["--advertised-listener-url", &url])
                .args(["--storage-engine", storage])
                .env("RUST_LOG", "warn")
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", tansu.display()));
            let mut broker = Kafka { child, port, dir };
            if broker.wait_ready(Duration::from_secs(30)) {
                return broker;
            }
            last_log = broker.log();
        }
        panic!("tansu did not start:\n{last_log}")
    }

    /// `host:port` for a Kafka client's bootstrap list.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's output so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default()
    }

    /// Waits until the port accepts connections, or the process exits.
    fn wait_ready(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            // Start-up polling of a child process, not a timing assumption.
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
