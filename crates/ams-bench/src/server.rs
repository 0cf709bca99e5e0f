//! Starting, stopping, killing and observing the servers under test. Every
//! process is started here, recorded by PID (optionally in a PID file for the
//! calling script's exit trap) and stopped by PID.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
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
    /// Our server over the kafka-postgres store: ams + the tansu broker + a
    /// throwaway PostgreSQL cluster, all started (and stopped) here.
    AmsKp,
    /// The Kafka-protocol broker (tansu) alone, driven through rskafka: the
    /// floor under `ams-kp`.
    Kafka,
}

impl Kind {
    /// The name used in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ams => "ams",
            Kind::Nats => "nats",
            Kind::Redis => "redis",
            Kind::AmsKp => "ams-kp",
            Kind::Kafka => "kafka",
        }
    }

    /// Why `tier` is not measured for this system, if it is not. tansu has no
    /// knob for syncing (or not syncing) its storage, so the Kafka systems run
    /// in tier `write` only.
    pub fn unsupported_tier(self, tier: Tier) -> Option<&'static str> {
        match (self, tier) {
            (Kind::AmsKp | Kind::Kafka, Tier::Fsync) => Some(
                "not applicable: the tansu broker has no fsync setting, so the Kafka systems \
                 (ams-kp, kafka) run in tier write only",
            ),
            _ => None,
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Result<Kind> {
        Ok(match s.trim() {
            "ams" => Kind::Ams,
            "nats" => Kind::Nats,
            "redis" => Kind::Redis,
            "ams-kp" => Kind::AmsKp,
            "kafka" => Kind::Kafka,
            other => bail!("unknown system {other:?} (ams, nats, redis, ams-kp, kafka)"),
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
    /// The `tansu` binary (Kafka-protocol broker).
    pub tansu_bin: PathBuf,
    /// Where PostgreSQL's `initdb`, `pg_ctl` and `createdb` are.
    pub pg_bin_dir: PathBuf,
    /// Whether the NATS binary understands `sync_interval: always`.
    pub nats_sync_always: bool,
    /// Pin servers to this CPU with `taskset`.
    pub server_cpu: Option<usize>,
    /// Append the PID of every started server here.
    pub pid_file: Option<PathBuf>,
    /// The service token for ams.
    pub token: String,
}

/// A running server: its main process and, for `ams-kp`, the processes it
/// depends on (the broker and PostgreSQL), stopped after it.
pub struct Server {
    /// Which system.
    pub kind: Kind,
    /// Which tier it was started in.
    pub tier: Tier,
    /// Its data directory.
    pub dir: PathBuf,
    /// Its loopback port (ams: HTTP; kafka: the broker's).
    pub port: u16,
    /// Its process id (ams-kp: the ams process).
    pub pid: u32,
    child: Child,
    deps: Vec<Dep>,
}

/// A process a server depends on.
enum Dep {
    /// A child of ours (the tansu broker of ams-kp).
    Child {
        name: &'static str,
        pid: u32,
        child: Box<Child>,
    },
    /// PostgreSQL.
    Postgres(Postmaster),
}

impl Dep {
    fn name(&self) -> &'static str {
        match self {
            Dep::Child { name, .. } => name,
            Dep::Postgres(_) => "postgres",
        }
    }

    /// CPU time of the process (PostgreSQL: the postmaster and its backends).
    fn cpu(&self) -> Option<Duration> {
        match self {
            Dep::Child { pid, .. } => cpu_of(&format!("/proc/{pid}/stat")),
            Dep::Postgres(p) => tree_cpu(p.pid),
        }
    }

    async fn stop(self) -> Result<()> {
        match self {
            Dep::Child {
                name,
                pid,
                mut child,
            } => stop_child(name, pid, &mut child).await,
            Dep::Postgres(mut p) => p.stop().await,
        }
    }
}

/// PostgreSQL's postmaster. `pg_ctl` starts it detached, so it is not our
/// child: it is stopped by its PID (from `postmaster.pid`), and killed
/// (immediate shutdown) if dropped without [`Postmaster::stop`].
struct Postmaster {
    pid: u32,
    stopped: bool,
}

impl Postmaster {
    /// Fast shutdown (SIGINT), then SIGKILL after 60 s.
    async fn stop(&mut self) -> Result<()> {
        self.stopped = true;
        stop_pid("postgres", self.pid, "-INT").await
    }
}

impl Drop for Postmaster {
    fn drop(&mut self) {
        if !self.stopped && alive(self.pid) {
            let _ = std::process::Command::new("kill")
                .arg("-QUIT")
                .arg(self.pid.to_string())
                .status();
        }
    }
}

/// A free loopback port (bound, read and released).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// The durability settings of a system in a tier, for the report.
pub fn tier_settings(kind: Kind, tier: Tier, nats_sync_always: bool) -> String {
    match (kind, tier) {
        (Kind::Ams, t) => format!("ams --durability {}", t.name()),
        (Kind::AmsKp | Kind::Kafka, Tier::Fsync) => {
            "not measured (the tansu broker has no fsync setting)".into()
        }
        (Kind::AmsKp, Tier::Write) => "ams --store kafka-postgres --durability write (PostgreSQL \
             metadata commits with synchronous_commit=off; PostgreSQL otherwise at its defaults); \
             messages in tansu's SQLite engine (no fsync setting), produced with acks=-1"
            .into(),
        (Kind::Kafka, Tier::Write) => {
            "tansu's SQLite engine (no fsync setting), produced with acks=-1 (rskafka)".into()
        }
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

/// Appends `pid` to the PID file (for the calling script's exit trap),
/// followed by `what` when it needs a special stop ("postgres").
fn record_pid(env: &Env, pid: u32, what: Option<&str>) -> Result<()> {
    if let Some(f) = &env.pid_file {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(f)?;
        match what {
            Some(what) => writeln!(f, "{pid} {what}")?,
            None => writeln!(f, "{pid}")?,
        }
    }
    Ok(())
}

fn open_log(path: &Path) -> Result<std::fs::File> {
    Ok(std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?)
}

/// Starts `bin` pinned to the server CPU, output to `log` (stderr piped when
/// asked), and records its PID.
fn spawn(
    env: &Env,
    bin: &Path,
    args: &[String],
    cwd: Option<&Path>,
    log: &std::fs::File,
    pipe_stderr: bool,
) -> Result<(Child, u32)> {
    let mut cmd = pinned(env, bin);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .kill_on_drop(true);
    if pipe_stderr {
        cmd.stderr(Stdio::piped());
    } else {
        cmd.stderr(Stdio::from(log.try_clone()?));
    }
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let pid = child.id().context("no pid")?;
    record_pid(env, pid, None)?;
    Ok((child, pid))
}

/// A command for `bin`, under `taskset` when servers are pinned.
fn pinned(env: &Env, bin: &Path) -> Command {
    match env.server_cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu.to_string()).arg(bin);
            c
        }
        None => Command::new(bin),
    }
}

/// Waits until `port` accepts connections; false if `child` exits first or
/// `limit` passes.
async fn wait_port(child: &mut Child, port: u16, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Starts the tansu broker in `dir` (its SQLite database path is resolved
/// against the working directory) on `port`, or a free one, and waits until
/// it accepts connections. The SQLite engine, not `memory://`: tansu 0.6's
/// in-memory engine gives a batch of several records a single offset.
async fn start_tansu(env: &Env, dir: &Path, port: Option<u16>) -> Result<(Child, u32, u16)> {
    std::fs::create_dir_all(dir)?;
    let mut last_log = String::new();
    // A port can be taken between probing and binding: retry a few times.
    for _ in 0..4 {
        let p = port.map_or_else(free_port, Ok)?;
        let log = open_log(&dir.join("broker.log"))?;
        let url = format!("tcp://127.0.0.1:{p}");
        let args: Vec<String> = [
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "sqlite://tansu.db",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (mut child, pid) = spawn(env, &env.tansu_bin, &args, Some(dir), &log, false)?;
        if wait_port(&mut child, p, Duration::from_secs(30)).await {
            return Ok((child, pid, p));
        }
        let _ = child.kill().await;
        last_log = std::fs::read_to_string(dir.join("broker.log")).unwrap_or_default();
        if port.is_some() {
            break;
        }
    }
    bail!("tansu did not start; its log:\n{last_log}")
}

/// The unprivileged account PostgreSQL runs as when we are root (it refuses
/// to run as root).
const PG_USER: &str = "nobody";

/// Whether this process runs as root.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool (as [`PG_USER`] when we are root; pinned when
/// `pin`, so that the postmaster `pg_ctl` starts inherits the pinning).
async fn pg_tool(env: &Env, tool: &str, args: &[&str], cwd: &Path, pin: bool) -> Result<()> {
    let bin = env.pg_bin_dir.join(tool);
    let mut cmd = if is_root() {
        let mut c = if pin {
            pinned(env, Path::new("runuser"))
        } else {
            Command::new("runuser")
        };
        c.args(["-u", PG_USER, "--"]).arg(&bin);
        c
    } else if pin {
        pinned(env, &bin)
    } else {
        Command::new(&bin)
    };
    let out = cmd
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("cannot run {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Initializes a throwaway PostgreSQL cluster in `dir`, starts it on a free
/// loopback port (Unix socket in `dir`) and creates database `ams`.
async fn start_postgres(env: &Env, dir: &Path) -> Result<(Postmaster, u16)> {
    std::fs::create_dir_all(dir)?;
    if is_root() {
        let status = Command::new("chown")
            .arg(format!("{PG_USER}:"))
            .arg(dir)
            .status()
            .await?;
        anyhow::ensure!(status.success(), "chown of {} failed", dir.display());
    }
    let data = dir.join("data");
    let data_s = data.display().to_string();
    let dir_s = dir.display().to_string();
    let log_s = dir.join("server.log").display().to_string();
    pg_tool(
        env,
        "initdb",
        &[
            "-D",
            &data_s,
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        ],
        dir,
        false,
    )
    .await?;
    let mut last = String::new();
    // A port can be taken between probing and binding: retry a few times.
    for _ in 0..4 {
        let port = free_port()?;
        let options = format!("-p {port} -k {dir_s} -c listen_addresses=127.0.0.1");
        let started = pg_tool(
            env,
            "pg_ctl",
            &[
                "-D", &data_s, "-l", &log_s, "-o", &options, "-w", "-t", "60", "start",
            ],
            dir,
            true,
        )
        .await;
        // Whatever pg_ctl said, a postmaster that runs is ours to stop.
        let pid = std::fs::read_to_string(data.join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
            .filter(|&pid| alive(pid));
        let postmaster = pid.map(|pid| Postmaster {
            pid,
            stopped: false,
        });
        if let Some(p) = &postmaster {
            record_pid(env, p.pid, Some("postgres"))?;
        }
        match (started, postmaster) {
            (Ok(()), Some(postmaster)) => {
                let port_s = port.to_string();
                pg_tool(
                    env,
                    "createdb",
                    &["-h", "127.0.0.1", "-p", &port_s, "-U", "postgres", "ams"],
                    dir,
                    false,
                )
                .await?;
                return Ok((postmaster, port));
            }
            (r, postmaster) => {
                if let Some(mut p) = postmaster {
                    let _ = p.stop().await;
                }
                last = format!(
                    "{}\n{}",
                    r.err().map(|e| e.to_string()).unwrap_or_default(),
                    std::fs::read_to_string(&log_s).unwrap_or_default()
                );
            }
        }
    }
    bail!("PostgreSQL did not start: {last}")
}

/// Whether a process exists and is not a zombie (a detached process that
/// exited may stay one when nobody reaps it).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next().map(|st| st != "Z"))
        })
        .unwrap_or(false)
}

/// Sends `signal` to a process that is not our child and waits until it is
/// gone; SIGKILL after 60 s.
async fn stop_pid(name: &str, pid: u32, signal: &str) -> Result<()> {
    let _ = Command::new("kill")
        .arg(signal)
        .arg(pid.to_string())
        .status()
        .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while alive(pid) {
        if Instant::now() >= deadline {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status()
                .await;
            bail!("{name} did not stop within 60 s of {signal}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Graceful stop of a child: SIGTERM, then SIGKILL after 60 s.
async fn stop_child(name: &str, pid: u32, child: &mut Child) -> Result<()> {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .await;
    match tokio::time::timeout(Duration::from_secs(60), child.wait()).await {
        Ok(r) => {
            r?;
        }
        Err(_) => {
            child.kill().await?;
            bail!("{name} did not stop within 60 s of SIGTERM");
        }
    }
    Ok(())
}

/// Stops dependencies in reverse order of start; the first error wins.
async fn stop_deps(deps: Vec<Dep>) -> Result<()> {
    let mut result = Ok(());
    for d in deps.into_iter().rev() {
        let r = d.stop().await;
        if result.is_ok() {
            result = r;
        }
    }
    result
}

impl Server {
    /// Starts `kind` in `tier` on `dir` (created if missing). `port` is reused
    /// on restarts of NATS, Redis and Kafka; ams always starts on port 0 and
    /// reports its port on stderr. Returns once the process runs (ams: once it
    /// listens; kafka: once it accepts connections); readiness of the others
    /// is the caller's first request. ams-kp starts its broker and
    /// PostgreSQL first.
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
        match kind {
            Kind::Ams => Self::start_ams(env, kind, tier, dir, extra, Vec::new(), Vec::new()).await,
            Kind::AmsKp => {
                let mut deps = Vec::new();
                let started = async {
                    let (child, pid, kafka_port) =
                        start_tansu(env, &dir.join("kafka"), None).await?;
                    deps.push(Dep::Child {
                        name: "tansu",
                        pid,
                        child: Box::new(child),
                    });
                    let (postmaster, pg_port) = start_postgres(env, &dir.join("pg")).await?;
                    deps.push(Dep::Postgres(postmaster));
                    Ok::<_, anyhow::Error>((kafka_port, pg_port))
                }
                .await;
                let (kafka_port, pg_port) = match started {
                    Ok(ports) => ports,
                    Err(e) => {
                        let _ = stop_deps(deps).await;
                        return Err(e);
                    }
                };
                let store = vec![
                    "--store".to_string(),
                    "kafka-postgres".into(),
                    "--kafka-brokers".into(),
                    format!("127.0.0.1:{kafka_port}"),
                    "--postgres-url".into(),
                    format!("host=127.0.0.1 port={pg_port} user=postgres dbname=ams"),
                ];
                Self::start_ams(env, kind, tier, dir, extra, store, deps).await
            }
            Kind::Kafka => {
                let (child, pid, port) = start_tansu(env, dir, port).await?;
                Ok(Server {
                    kind,
                    tier,
                    dir: dir.to_path_buf(),
                    port,
                    pid,
                    child,
                    deps: Vec::new(),
                })
            }
            Kind::Nats | Kind::Redis => Self::start_peer(env, kind, tier, dir, port),
        }
    }

    /// Starts ams (after `deps`, which are stopped if it fails).
    async fn start_ams(
        env: &Env,
        kind: Kind,
        tier: Tier,
        dir: &Path,
        extra: &[&str],
        store: Vec<String>,
        deps: Vec<Dep>,
    ) -> Result<Server> {
        let args: Vec<String> = vec![
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
        .chain(store)
        .chain(extra.iter().map(|a| a.to_string()))
        .collect();
        let started = async {
            // The server writes its log straight into the file, like the
            // peers: copying it through this process would put a wake-up per
            // request line on the load generator's core. The address is read
            // back from the file.
            let path = dir.join("server.log");
            let log = open_log(&path)?;
            // A restart appends to the same file: only what this start wrote counts.
            let before = usize::try_from(log.metadata()?.len())?;
            let (mut child, pid) = spawn(env, &env.ams_bin, &args, None, &log, false)?;
            let found = tokio::time::timeout(Duration::from_secs(60), async {
                loop {
                    let all = std::fs::read(&path).unwrap_or_default();
                    let text = String::from_utf8_lossy(all.get(before..).unwrap_or_default());
                    if let Some(rest) = text.split("listening on http://").nth(1) {
                        let addr = rest.split_whitespace().next().unwrap_or_default();
                        let port: u16 = addr.rsplit(':').next().unwrap_or_default().parse()?;
                        return Ok::<_, anyhow::Error>(Some(port));
                    }
                    if child.try_wait()?.is_some() {
                        return Ok(None);
                    }
                    // Start-up polling of a child's log, not a measurement.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await;
            match found {
                Ok(Ok(Some(port))) => Ok((child, pid, port)),
                other => {
                    let _ = child.start_kill();
                    bail!(
                        "ams did not report its address ({:?}); its log:\n{}",
                        other.err().map(|_| "timeout"),
                        std::fs::read_to_string(&path).unwrap_or_default()
                    );
                }
            }
        }
        .await;
        match started {
            Ok((child, pid, port)) => Ok(Server {
                kind,
                tier,
                dir: dir.to_path_buf(),
                port,
                pid,
                child,
                deps,
            }),
            Err(e) => {
                let _ = stop_deps(deps).await;
                Err(e)
            }
        }
    }

    /// Starts NATS or Redis.
    fn start_peer(
        env: &Env,
        kind: Kind,
        tier: Tier,
        dir: &Path,
        port: Option<u16>,
    ) -> Result<Server> {
        let p = port.map_or_else(free_port, Ok)?;
        let (bin, args): (&Path, Vec<String>) = match kind {
            Kind::Nats => {
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
            other => bail!("{} is not started as a peer server", other.name()),
        };
        let log = open_log(&dir.join("server.log"))?;
        let (child, pid) = spawn(env, bin, &args, None, &log, false)?;
        Ok(Server {
            kind,
            tier,
            dir: dir.to_path_buf(),
            port: p,
            pid,
            child,
            deps: Vec::new(),
        })
    }

    /// The address clients use.
    pub fn addr(&self) -> String {
        match self.kind {
            Kind::Ams | Kind::AmsKp => format!("http://127.0.0.1:{}", self.port),
            Kind::Nats => format!("127.0.0.1:{}", self.port),
            // The broker's instance after `#`: connections to one instance
            // share one client (see `adapter::Kafka`).
            Kind::Kafka => format!("127.0.0.1:{}#{}", self.port, self.pid),
            Kind::Redis => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    /// Resident set size (bytes) of the main process (ams-kp: the ams
    /// process alone): total, anonymous, file-backed.
    pub fn rss(&self) -> Option<(u64, u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let field = |name: &str| -> Option<u64> {
            let line = status.lines().find(|l| l.starts_with(name))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        };
        Some((field("VmRSS:")?, field("RssAnon:")?, field("RssFile:")?))
    }

    /// CPU time used so far by each process of the server, by name (the
    /// main process first).
    pub fn cpu_parts(&self) -> Vec<(&'static str, Option<Duration>)> {
        let main = match self.kind {
            Kind::Ams | Kind::AmsKp => "ams",
            Kind::Kafka => "tansu",
            Kind::Nats => "nats",
            Kind::Redis => "redis",
        };
        std::iter::once((main, cpu_of(&format!("/proc/{}/stat", self.pid))))
            .chain(self.deps.iter().map(|d| (d.name(), d.cpu())))
            .collect()
    }

    /// Graceful stop: SIGTERM, then SIGKILL after 60 s; then the processes
    /// it depends on.
    pub async fn stop(mut self) -> Result<()> {
        let main = stop_child(self.kind.name(), self.pid, &mut self.child).await;
        let deps = stop_deps(std::mem::take(&mut self.deps)).await;
        main.and(deps)
    }

    /// `kill -9`, and wait until the process is gone. Its own children
    /// (Redis forks one to rewrite its AOF) are killed by PID too. The
    /// processes it depends on are then stopped gracefully.
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
        stop_deps(std::mem::take(&mut self.deps)).await
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

/// CPU time of a process and its descendants alive now.
fn tree_cpu(pid: u32) -> Option<Duration> {
    let mut total = cpu_of(&format!("/proc/{pid}/stat"))?;
    for c in children_of(pid) {
        total += tree_cpu(c).unwrap_or_default();
    }
    Some(total)
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

/// Where PostgreSQL's server tools are: the directory `initdb` on `PATH`
/// really lives in (Debian links a few tools into `/usr/local/bin`, not
/// `createdb`), else the newest `/usr/lib/postgresql/*/bin`.
pub fn find_pg_bin_dir() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if let Ok(initdb) = std::fs::canonicalize(dir.join("initdb"))
                && let Some(bin) = initdb.parent()
                && ["pg_ctl", "createdb"].iter().all(|t| bin.join(t).is_file())
            {
                return Some(bin.to_path_buf());
            }
        }
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            ["initdb", "pg_ctl", "createdb"]
                .iter()
                .all(|t| bin.join(t).is_file())
                .then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in [Kind::Ams, Kind::Nats, Kind::Redis, Kind::AmsKp, Kind::Kafka] {
            assert_eq!(Kind::parse(k.name()).unwrap(), k);
        }
        for t in [Tier::Write, Tier::Fsync] {
            assert_eq!(Tier::parse(t.name()).unwrap(), t);
        }
        assert!(Kind::parse("rabbitmq").is_err());
    }

    #[test]
    fn kafka_systems_run_in_tier_write_only() {
        assert!(Kind::Kafka.unsupported_tier(Tier::Fsync).is_some());
        assert!(Kind::AmsKp.unsupported_tier(Tier::Fsync).is_some());
        assert!(Kind::Kafka.unsupported_tier(Tier::Write).is_none());
        assert!(Kind::Ams.unsupported_tier(Tier::Fsync).is_none());
    }

    #[test]
    fn own_cpu_time_is_readable() {
        assert!(cpu_of("/proc/self/stat").is_some());
        assert!(tree_cpu(std::process::id()).is_some());
        assert!(alive(std::process::id()));
    }
}
