//! Starting, stopping, killing and observing the servers under test. Every
//! process is started here, recorded by PID (optionally in a PID file for the
//! calling script's exit trap) and stopped by PID.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A system under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Our server.
    Ams,
    /// NATS JetStream.
    Nats,
    /// Redis streams.
    Redis,
}

impl Kind {
    /// The name used in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ams => "ams",
            Kind::Nats => "nats",
            Kind::Redis => "redis",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Result<Kind> {
        Ok(match s.trim() {
            "ams" => Kind::Ams,
            "nats" => Kind::Nats,
            "redis" => Kind::Redis,
            other => bail!("unknown system {other:?} (ams, nats, redis)"),
        })
    }
}

/// A durability tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// Handed to the OS before the answer (survives `kill -9`, not power loss).
    Write,
    /// Synced to disk before the answer.
    Fsync,
}

impl Tier {
    /// The name used in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Write => "write",
            Tier::Fsync => "fsync",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Result<Tier> {
        Ok(match s.trim() {
            "write" => Tier::Write,
            "fsync" => Tier::Fsync,
            other => bail!("unknown tier {other:?} (write, fsync)"),
        })
    }
}

/// What every server start needs, fixed for the run.
#[derive(Clone, Debug)]
pub struct Env {
    /// The `ams` binary.
    pub ams_bin: PathBuf,
    /// The `nats-server` binary.
    pub nats_bin: PathBuf,
    /// The `redis-server` binary.
    pub redis_bin: PathBuf,
    /// Whether the NATS binary understands `sync_interval: always`.
    pub nats_sync_always: bool,
    /// Pin servers to this CPU with `taskset`.
    pub server_cpu: Option<usize>,
    /// Append the PID of every started server here.
    pub pid_file: Option<PathBuf>,
    /// The service token for ams.
    pub token: String,
}

/// A running server process.
pub struct Server {
    /// Which system.
    pub kind: Kind,
    /// Which tier it was started in.
    pub tier: Tier,
    /// Its data directory.
    pub dir: PathBuf,
    /// Its loopback port.
    pub port: u16,
    /// Its process id.
    pub pid: u32,
    child: Child,
}

/// A free loopback port (bound, read and released).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// The Redis/NATS durability settings of a tier, for the report.
pub fn tier_settings(kind: Kind, tier: Tier, nats_sync_always: bool) -> String {
    match (kind, tier) {
        (Kind::Ams, t) => format!("ams --durability {}", t.name()),
        (Kind::Nats, Tier::Write) => "nats file store, default sync_interval".into(),
        (Kind::Nats, Tier::Fsync) if nats_sync_always => {
            "nats file store, sync_interval: always".into()
        }
        (Kind::Nats, Tier::Fsync) => {
            "nats file store, default sync_interval (UNMATCHED: this nats-server lacks sync_interval)"
                .into()
        }
        (Kind::Redis, Tier::Write) => "redis appendonly yes, appendfsync no".into(),
        (Kind::Redis, Tier::Fsync) => "redis appendonly yes, appendfsync always".into(),
    }
}

impl Server {
    /// Starts `kind` in `tier` on `dir` (created if missing). `port` is reused
    /// on restarts of NATS and Redis; ams always starts on port 0 and reports
    /// its port on stderr. Returns once the process runs (ams: once it
    /// listens); readiness of the others is the caller's first request.
    pub async fn start(
        env: &Env,
        kind: Kind,
        tier: Tier,
        dir: &Path,
        port: Option<u16>,
    ) -> Result<Server> {
        Self::start_with(env, kind, tier, dir, port, &[]).await
    }

    /// [`Server::start`] with extra command-line arguments (ams only).
    pub async fn start_with(
        env: &Env,
        kind: Kind,
        tier: Tier,
        dir: &Path,
        port: Option<u16>,
        extra: &[&str],
    ) -> Result<Server> {
        std::fs::create_dir_all(dir)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))?;
        let (bin, args): (&Path, Vec<String>) = match kind {
            Kind::Ams => (
                &env.ams_bin,
                vec![
                    "serve".into(),
                    "--port".into(),
                    "0".into(),
                    "--data-dir".into(),
                    dir.join("data").display().to_string(),
                    "--durability".into(),
                    tier.name().into(),
                    "--service-token".into(),
                    env.token.clone(),
                    // `warn` alone hides the "listening on" line (it is info).
                    "--log-level".into(),
                    "warn,ams=info".into(),
                ]
                .into_iter()
                .chain(extra.iter().map(|a| a.to_string()))
                .collect(),
            ),
            Kind::Nats => {
                let p = port.map_or_else(free_port, Ok)?;
                let sync = if tier == Tier::Fsync && env.nats_sync_always {
                    "\n  sync_interval: always"
                } else {
                    ""
                };
                let conf = format!(
                    "listen: \"127.0.0.1:{p}\"\nmax_payload: 8MB\n\
                     jetstream {{\n  store_dir: \"{}\"\n  max_memory_store: 256MB\n  \
                     max_file_store: 64GB{sync}\n}}\n",
                    dir.join("js").display()
                );
                let path = dir.join("nats.conf");
                std::fs::write(&path, conf)?;
                (
                    &env.nats_bin,
                    vec![
                        "-c".into(),
                        path.display().to_string(),
                        "-p".into(),
                        p.to_string(),
                    ],
                )
            }
            Kind::Redis => {
                let p = port.map_or_else(free_port, Ok)?;
                let fsync = if tier == Tier::Fsync { "always" } else { "no" };
                (
                    &env.redis_bin,
                    [
                        "--port",
                        &p.to_string(),
                        "--bind",
                        "127.0.0.1",
                        "--dir",
                        &dir.display().to_string(),
                        "--appendonly",
                        "yes",
                        "--appendfsync",
                        fsync,
                        "--save",
                        "",
                        "--protected-mode",
                        "no",
                        "--daemonize",
                        "no",
                    ]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                )
            }
        };
        let mut cmd = match env.server_cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu.to_string()).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .kill_on_drop(true);
        if kind == Kind::Ams {
            cmd.stderr(Stdio::piped());
        } else {
            cmd.stderr(Stdio::from(log.try_clone()?));
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let pid = child.id().context("no pid")?;
        if let Some(f) = &env.pid_file {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(f)?;
            writeln!(f, "{pid}")?;
        }
        let port = match kind {
            Kind::Ams => {
                let stderr = child.stderr.take().context("stderr")?;
                let mut lines = BufReader::new(stderr).lines();
                let mut seen = Vec::new();
                let found = tokio::time::timeout(Duration::from_secs(60), async {
                    while let Some(line) = lines.next_line().await? {
                        if let Some(rest) = line.split("listening on http://").nth(1) {
                            let addr = rest.split_whitespace().next().unwrap_or_default();
                            let port = addr.rsplit(':').next().unwrap_or_default().parse()?;
                            return Ok::<_, anyhow::Error>(Some(port));
                        }
                        seen.push(line);
                    }
                    Ok(None)
                })
                .await;
                match found {
                    Ok(Ok(Some(port))) => {
                        // Keep the pipe drained (into the log file).
                        let mut log = log;
                        tokio::spawn(async move {
                            while let Ok(Some(line)) = lines.next_line().await {
                                let _ = writeln!(log, "{line}");
                            }
                        });
                        port
                    }
                    other => {
                        let _ = child.start_kill();
                        bail!(
                            "ams did not report its address ({:?}); its log:\n{}",
                            other.err().map(|_| "timeout"),
                            seen.join("\n")
                        );
                    }
                }
            }
            _ => args
                .iter()
                .position(|a| a == "--port" || a == "-p")
                .and_then(|i| args[i + 1].parse().ok())
                .context("port")?,
        };
        Ok(Server {
            kind,
            tier,
            dir: dir.to_path_buf(),
            port,
            pid,
            child,
        })
    }

    /// The address clients use.
    pub fn addr(&self) -> String {
        match self.kind {
            Kind::Ams => format!("http://127.0.0.1:{}", self.port),
            Kind::Nats => format!("127.0.0.1:{}", self.port),
            Kind::Redis => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    /// Resident set size (bytes): total, anonymous, file-backed.
    pub fn rss(&self) -> Option<(u64, u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let field = |name: &str| -> Option<u64> {
            let line = status.lines().find(|l| l.starts_with(name))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        };
        Some((field("VmRSS:")?, field("RssAnon:")?, field("RssFile:")?))
    }

    /// CPU time used by the process so far.
    pub fn cpu(&self) -> Option<Duration> {
        cpu_of(&format!("/proc/{}/stat", self.pid))
    }

    /// Graceful stop: SIGTERM, then SIGKILL after 60 s.
    pub async fn stop(mut self) -> Result<()> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .await;
        match tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await {
            Ok(r) => {
                r?;
            }
            Err(_) => {
                self.child.kill().await?;
                bail!("{} did not stop within 60 s of SIGTERM", self.kind.name());
            }
        }
        Ok(())
    }

    /// `kill -9`, and wait until the process is gone. Its own children
    /// (Redis forks one to rewrite its AOF) are killed by PID too.
    pub async fn kill9(mut self) -> Result<()> {
        let children = children_of(self.pid);
        self.child.kill().await?;
        for c in children {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(c.to_string())
                .status()
                .await;
        }
        Ok(())
    }
}

/// The PIDs of a process's children.
pub fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// CPU time (user + system) from a `/proc/.../stat` file (100 ticks/s).
pub fn cpu_of(stat_path: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    let after = stat.rsplit(')').next()?;
    let f: Vec<&str> = after.split_whitespace().collect();
    // After the command: state(0) ppid(1) ... utime(11) stime(12).
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in [Kind::Ams, Kind::Nats, Kind::Redis] {
            assert_eq!(Kind::parse(k.name()).unwrap(), k);
        }
        for t in [Tier::Write, Tier::Fsync] {
            assert_eq!(Tier::parse(t.name()).unwrap(), t);
        }
        assert!(Kind::parse("kafka").is_err());
    }

    #[test]
    fn own_cpu_time_is_readable() {
        assert!(cpu_of("/proc/self/stat").is_some());
    }
}
