//! The workloads of design §4, written once against the [`Conn`] trait.
//!
//! Every measurement ("cell") starts its server on a fresh data directory and
//! stops it afterwards; W5, W6 and W7 share one data set per system (fill,
//! graceful restart, then `kill -9` under load in each tier).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use bytes::Bytes;

use crate::adapter::{Conn, Prepared, connect};
use crate::payload::{Payloads, stamp_of};
use crate::report::Sample;
use crate::server::{Env, Kind, Server, Tier, cpu_of};
use crate::stats::Latency;

/// Sizes and durations of one run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// W1 message sizes.
    pub w1_sizes: Vec<usize>,
    /// W1 batch sizes.
    pub w1_batches: Vec<usize>,
    /// W1 concurrent connections, each a closed-loop publisher.
    pub w1_conns: usize,
    /// W1 warm-up before measuring.
    pub w1_warmup: Duration,
    /// W1 measured time.
    pub w1_time: Duration,
    /// W2 publishing time.
    pub w2_time: Duration,
    /// W3 offered rate (messages per second).
    pub w3_rate: u64,
    /// W3 warm-up of each system at the offered rate, not recorded
    /// (connections open, caches and files warm, as in W1).
    pub w3_warmup: Duration,
    /// W3 measured time of each system, in turns of `w3_slice`.
    pub w3_time: Duration,
    /// W3 turn length: the systems take turns so that a slow spell of the
    /// machine (a VM's host) falls on all of them alike.
    pub w3_slice: Duration,
    /// The start of each turn, paced but not recorded: the system coming back
    /// after the others' turns meets caches they have filled, a transient
    /// of the turn-taking itself that a steady run does not have.
    pub w3_lead_in: Duration,
    /// W4 messages published (each delivered to every subscription).
    pub w4_messages: u64,
    /// W4 subscriptions.
    pub w4_subs: usize,
    /// W5 retained messages.
    pub fill: u64,
    /// W7 load time before `kill -9`.
    pub w7_load: Duration,
    /// Push: (`maxMessages`, messages delivered) per measurement.
    pub push: Vec<(usize, u64)>,
}

impl Plan {
    /// The full run (design §4 sizes).
    pub fn full() -> Plan {
        Plan {
            w1_sizes: vec![100, 1024],
            w1_batches: vec![1, 100, 1000],
            w1_conns: 4,
            w1_warmup: Duration::from_millis(500),
            w1_time: Duration::from_secs(2),
            w2_time: Duration::from_secs(3),
            w3_rate: 1000,
            w3_warmup: Duration::from_secs(1),
            w3_time: Duration::from_secs(10),
            // Short turns: a slow spell of the host (often a second or so)
            // then spreads over every system's turns.
            w3_slice: Duration::from_millis(250),
            w3_lead_in: Duration::from_millis(25),
            w4_messages: 20_000,
            w4_subs: 10,
            fill: 1_000_000,
            w7_load: Duration::from_secs(1),
            push: vec![(1, 20_000), (100, 200_000)],
        }
    }

    /// Every workload at tiny sizes (CI).
    pub fn quick() -> Plan {
        Plan {
            w1_warmup: Duration::from_millis(50),
            w1_time: Duration::from_millis(250),
            w2_time: Duration::from_millis(400),
            w3_warmup: Duration::from_millis(100),
            w3_time: Duration::from_millis(500),
            w3_slice: Duration::from_millis(100),
            w3_lead_in: Duration::from_millis(10),
            w4_messages: 1_000,
            fill: 5_000,
            w7_load: Duration::from_millis(300),
            push: vec![(1, 500), (100, 2_000)],
            ..Plan::full()
        }
    }
}

/// Size of the messages in W2-W7.
pub const SIZE: usize = 1024;
/// How long a (re)started server may take to answer its first pull.
const START_LIMIT: Duration = Duration::from_secs(60);

/// Everything a workload needs.
pub struct Bench {
    /// Binaries, pinning, token.
    pub env: Env,
    /// Sizes and durations.
    pub plan: Plan,
    /// Where data directories go.
    pub work_dir: PathBuf,
    /// The payload generator.
    pub payloads: Arc<Payloads>,
    /// Count violations (acked but not delivered, lost, corrupted), by system.
    pub failures: Mutex<Vec<(Kind, String)>>,
    epoch: Instant,
    cells: AtomicU64,
}

fn since(epoch: Instant) -> u64 {
    epoch.elapsed().as_micros() as u64
}

fn pct(part: Option<Duration>, whole: Duration) -> String {
    part.filter(|_| !whole.is_zero())
        .map(|p| format!("{:.0}%", 100.0 * p.as_secs_f64() / whole.as_secs_f64()))
        .unwrap_or_else(|| "?".into())
}

/// CPU time of each process of a server, by name ([`Server::cpu_parts`]).
type CpuParts<'a> = &'a [(&'a str, Option<Duration>)];

/// "cpu server X% client Y%", with the share of each process of a server
/// made of several (ams-kp: ams, tansu, postgres).
fn cpu_note(
    server: (CpuParts<'_>, CpuParts<'_>),
    client: (Option<Duration>, Option<Duration>),
    elapsed: Duration,
) -> String {
    let (s0, s1) = server;
    let total = |parts: CpuParts<'_>| {
        parts
            .iter()
            .try_fold(Duration::ZERO, |sum, (_, d)| Some(sum + (*d)?))
    };
    let mut note = format!("cpu server {}", pct(sub_dur(total(s1), total(s0)), elapsed));
    if s1.len() > 1 {
        let parts: Vec<String> = s0
            .iter()
            .zip(s1)
            .map(|((name, a), (_, b))| format!("{name} {}", pct(sub_dur(*b, *a), elapsed)))
            .collect();
        note.push_str(&format!(" ({})", parts.join(", ")));
    }
    note.push_str(&format!(
        " client {}",
        pct(sub_dur(client.1, client.0), elapsed)
    ));
    note
}

fn self_cpu() -> Option<Duration> {
    cpu_of("/proc/self/stat")
}

fn sub_dur(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    Some(a?.saturating_sub(b?))
}

/// Retries `f` every few milliseconds until it succeeds or `limit` passes.
async fn retry<T, F, Fut>(limit: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(3)).await,
        }
    }
}

/// Tracks which sequence numbers a consumer has seen.
#[derive(Default)]
struct Seen {
    set: HashSet<u64>,
    dups: u64,
    corrupt: u64,
}

impl Seen {
    fn take(&mut self, payloads: &Payloads, p: &[u8]) -> Option<u64> {
        match payloads.verify(p) {
            Some(seq) => {
                if !self.set.insert(seq) {
                    self.dups += 1;
                }
                Some(seq)
            }
            None => {
                self.corrupt += 1;
                None
            }
        }
    }
}

/// A row that says why a workload is not measured for a system.
pub fn not_applicable(workload: &str, kind: Kind, tier: Tier, why: &str) -> Sample {
    let mut s = Sample::new(workload, kind.name(), tier.name(), 0, 0);
    s.notes.push(why.to_string());
    s
}

impl Bench {
    /// A bench with a payload generator seeded with `seed`.
    pub fn new(env: Env, plan: Plan, work_dir: PathBuf, seed: u64) -> Bench {
        Bench {
            env,
            plan,
            work_dir,
            payloads: Arc::new(Payloads::new(seed)),
            failures: Mutex::default(),
            epoch: Instant::now(),
            cells: AtomicU64::new(0),
        }
    }

    fn fail(&self, kind: Kind, what: String) {
        eprintln!("COUNT CHECK FAILED ({}): {what}", kind.name());
        self.failures.lock().expect("lock").push((kind, what));
    }

    fn fresh_dir(&self, kind: Kind, tier: Tier) -> PathBuf {
        let n = self.cells.fetch_add(1, Ordering::Relaxed);
        self.work_dir
            .join(format!("{}-{}-{n}", kind.name(), tier.name()))
    }

    async fn conn(&self, kind: Kind, server: &Server) -> Result<Arc<dyn Conn>> {
        let addr = server.addr();
        retry(START_LIMIT, || connect(kind, &addr, &self.env.token)).await
    }

    /// A fresh server with the topic created.
    async fn start_cell(&self, kind: Kind, tier: Tier) -> Result<(Server, Arc<dyn Conn>)> {
        let dir = self.fresh_dir(kind, tier);
        let server = Server::start(&self.env, kind, tier, &dir, None).await?;
        let conn = self.conn(kind, &server).await?;
        retry(START_LIMIT, || conn.create_topic()).await?;
        Ok((server, conn))
    }

    async fn end_cell(&self, server: Server) {
        let dir = server.dir.clone();
        if let Err(e) = server.stop().await {
            eprintln!("warning: {e}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    fn batch(&self, first_seq: u64, n: usize, size: usize, stamp: bool) -> Vec<Bytes> {
        let t = if stamp { since(self.epoch) } else { 0 };
        (0..n as u64)
            .map(|i| Bytes::from(self.payloads.make(first_seq + i, t, size)))
            .collect()
    }

    /// W1: closed-loop publishers on several connections, pre-built batches.
    pub async fn w1(&self, kind: Kind, tier: Tier, size: usize, batch: usize) -> Result<Sample> {
        let (server, conn0) = self.start_cell(kind, tier).await?;
        let r = self.w1_inner(kind, &server, conn0, size, batch).await;
        let mut s = Sample::new("W1", kind.name(), tier.name(), size, batch);
        s.rss_bytes = server.rss().map(|r| r.0);
        self.end_cell(server).await;
        let (rate, lat, note) = r?;
        s.msgs_per_s = Some(rate);
        s.p50_ms = lat.quantile_ms(0.5);
        s.p99_ms = lat.quantile_ms(0.99);
        s.notes.push(format!(
            "{} conns, closed loop; p50/p99 per publish request",
            self.plan.w1_conns
        ));
        s.notes.push(note);
        Ok(s)
    }

    async fn w1_inner(
        &self,
        kind: Kind,
        server: &Server,
        conn0: Arc<dyn Conn>,
        size: usize,
        batch: usize,
    ) -> Result<(f64, Latency, String)> {
        let plan = &self.plan;
        let per_batch = (batch * size).max(1);
        let k = (8 << 20) / per_batch;
        let k = k.clamp(2, 64);
        let mut conns = vec![conn0];
        for _ in 1..plan.w1_conns {
            conns.push(self.conn(kind, server).await?);
        }
        let warm_end = Instant::now() + plan.w1_warmup + Duration::from_millis(20);
        let end = warm_end + plan.w1_time;
        // A slow system still gets two completed requests per connection after
        // the warm-up, so that its rate is measured between completions.
        let hard_end = end + Duration::from_secs(30);
        let mut tasks = Vec::new();
        for (c, conn) in conns.into_iter().enumerate() {
            let batches: Vec<Prepared> = (0..k)
                .map(|j| {
                    let first = (c as u64) << 40 | (j * batch) as u64;
                    conn.prepare(&self.batch(first, batch, size, false))
                })
                .collect();
            tasks.push(tokio::spawn(async move {
                let mut lat = Latency::new();
                // Messages acked between the first completion after the
                // warm-up and the last one, and those two instants.
                let mut count = 0u64;
                let mut first: Option<Instant> = None;
                let mut last = warm_end;
                let mut i = 0usize;
                loop {
                    let t0 = Instant::now();
                    let enough = first.is_some() && count > 0;
                    if (t0 >= end && enough) || t0 >= hard_end {
                        break;
                    }
                    let n = conn.publish(&batches[i % batches.len()]).await?;
                    let t1 = Instant::now();
                    if t1 > warm_end {
                        lat.record(t1 - t0);
                        if first.is_none() {
                            first = Some(t1);
                        } else {
                            count += n as u64;
                        }
                        last = t1;
                    }
                    i += 1;
                }
                let rate = match first {
                    Some(f) if last > f => count as f64 / (last - f).as_secs_f64(),
                    _ => 0.0,
                };
                Ok::<_, anyhow::Error>((lat, rate, last))
            }));
        }
        tokio::time::sleep_until(warm_end.into()).await;
        let (c0, s0) = (self_cpu(), server.cpu_parts());
        let mut lat = Latency::new();
        let mut total = 0.0;
        let mut last = warm_end;
        for t in tasks {
            let (l, rate, at) = t.await??;
            lat.merge(&l);
            total += rate;
            last = last.max(at);
        }
        let (c1, s1) = (self_cpu(), server.cpu_parts());
        let elapsed = last - warm_end;
        let note = cpu_note((&s0, &s1), (c0, c1), elapsed);
        Ok((total, lat, note))
    }

    /// W2: one publisher (batches of 100) and one consumer (pull up to 1000,
    /// ack) at the same time; the rate is every published message delivered
    /// and acknowledged, divided by the time until the last one was.
    pub async fn w2(&self, kind: Kind, tier: Tier) -> Result<Sample> {
        let batch = 100;
        let (server, conn) = self.start_cell(kind, tier).await?;
        let r = self.w2_inner(kind, &server, conn, batch).await;
        let mut s = Sample::new("W2", kind.name(), tier.name(), SIZE, batch);
        s.rss_bytes = server.rss().map(|r| r.0);
        self.end_cell(server).await;
        let (rate, lat, notes) = r?;
        s.msgs_per_s = Some(rate);
        s.p50_ms = lat.quantile_ms(0.5);
        s.p99_ms = lat.quantile_ms(0.99);
        s.notes = notes;
        Ok(s)
    }

    async fn w2_inner(
        &self,
        kind: Kind,
        server: &Server,
        conn: Arc<dyn Conn>,
        batch: usize,
    ) -> Result<(f64, Latency, Vec<String>)> {
        conn.create_sub("w2").await?;
        let consumer = self.conn(kind, server).await?;
        let done = Arc::new(AtomicBool::new(false));
        let published = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let end = start + self.plan.w2_time;
        let producer = {
            let (done, published) = (done.clone(), published.clone());
            async move {
                let mut seq = 0u64;
                while Instant::now() < end {
                    let b = conn.prepare(&self.batch(seq, batch, SIZE, true));
                    let n = conn.publish(&b).await? as u64;
                    seq += n;
                    published.fetch_add(n, Ordering::SeqCst);
                }
                done.store(true, Ordering::SeqCst);
                Ok::<_, anyhow::Error>(())
            }
        };
        let consume = async {
            let mut seen = Seen::default();
            let mut lat = Latency::new();
            let mut idle_since: Option<Instant> = None;
            loop {
                let d = consumer.consume("w2", 1000).await?;
                let now_us = since(self.epoch);
                if d.payloads.is_empty() {
                    if done.load(Ordering::SeqCst)
                        && seen.set.len() as u64 >= published.load(Ordering::SeqCst)
                    {
                        break;
                    }
                    let idle = *idle_since.get_or_insert_with(Instant::now);
                    if done.load(Ordering::SeqCst) && idle.elapsed() > Duration::from_secs(10) {
                        break; // nothing more arrives: counted below
                    }
                    tokio::time::sleep(Duration::from_micros(500)).await;
                    continue;
                }
                idle_since = None;
                for p in &d.payloads {
                    if seen.take(&self.payloads, p).is_some() {
                        lat.record(Duration::from_micros(now_us.saturating_sub(stamp_of(p))));
                    }
                }
                if let Some(a) = d.ack {
                    consumer.ack("w2", a).await?;
                }
            }
            Ok::<_, anyhow::Error>((seen, lat, Instant::now()))
        };
        let (c0, s0) = (self_cpu(), server.cpu_parts());
        let (p, c) = tokio::join!(producer, consume);
        p?;
        let (seen, lat, finished) = c?;
        let elapsed = finished - start;
        let (c1, s1) = (self_cpu(), server.cpu_parts());
        let total = published.load(Ordering::SeqCst);
        let delivered = seen.set.len() as u64;
        if delivered != total || seen.corrupt > 0 {
            self.fail(
                kind,
                format!(
                    "W2 {}: {delivered} of {total} acked messages delivered, {} corrupt",
                    server.tier.name(),
                    seen.corrupt
                ),
            );
        }
        let mut notes = vec![
            format!(
                "1 publisher (batch {batch}) + 1 consumer (pull<=1000, ack); {total} published, {delivered} delivered, {} redelivered",
                seen.dups
            ),
            "p50/p99 publish->delivery".into(),
            cpu_note((&s0, &s1), (c0, c1), elapsed),
        ];
        if kind == Kind::Kafka {
            notes.push(
                "kafka: pull = one fetch from the consumer's offset, ack = the offset kept \
                 client-side (no request)"
                    .into(),
            );
        }
        Ok((total as f64 / elapsed.as_secs_f64(), lat, notes))
    }

    /// W3: open loop at a fixed rate, one message per publish; latency is
    /// measured from each message's intended send time (coordinated
    /// omission). Every system's server runs for the whole workload and the
    /// systems take turns of `w3_slice` (the order rotating each round), so
    /// that the machine's slow spells, which on a VM last from milliseconds to
    /// minutes, do not fall on one system's measurement only. Each system is
    /// warmed up first, unrecorded.
    pub async fn w3(&self, kinds: &[Kind], tier: Tier) -> Vec<(Kind, Result<Sample>)> {
        struct Cell {
            kind: Kind,
            server: Server,
            conn: Arc<dyn Conn>,
            lat: Latency,
            errors: u64,
            elapsed: f64,
            failed: Option<anyhow::Error>,
        }
        let mut out = Vec::new();
        let mut cells = Vec::new();
        for &kind in kinds {
            match self.start_cell(kind, tier).await {
                Ok((server, conn)) => cells.push(Cell {
                    kind,
                    server,
                    conn,
                    lat: Latency::new(),
                    errors: 0,
                    elapsed: 0.0,
                    failed: None,
                }),
                Err(e) => out.push((kind, Err(e))),
            }
        }
        let rate = self.plan.w3_rate.max(1);
        let sends = |d: Duration| ((rate as f64 * d.as_secs_f64()) as u64).max(1);
        for c in &mut cells {
            if let Err(e) = self.w3_turn(&c.conn, 0, sends(self.plan.w3_warmup)).await {
                c.failed = Some(e.context("W3 warm-up"));
            }
        }
        let slice = self.plan.w3_slice.min(self.plan.w3_time);
        let lead_in = self.plan.w3_lead_in.min(slice / 2);
        let rounds = (self.plan.w3_time.as_secs_f64() / slice.as_secs_f64()).ceil() as usize;
        let n = cells.len().max(1);
        for round in 0..rounds {
            for j in 0..n {
                let Some(c) = cells.get_mut((round + j) % n) else {
                    continue;
                };
                if c.failed.is_some() {
                    continue;
                }
                match self.w3_turn(&c.conn, sends(lead_in), sends(slice)).await {
                    Ok((elapsed, lat, errors)) => {
                        c.lat.merge(&lat);
                        c.errors += errors;
                        c.elapsed += elapsed;
                    }
                    Err(e) => c.failed = Some(e),
                }
            }
        }
        for c in cells {
            let mut s = Sample::new("W3", c.kind.name(), tier.name(), SIZE, 1);
            s.rss_bytes = c.server.rss().map(|r| r.0);
            self.end_cell(c.server).await;
            if let Some(e) = c.failed {
                out.push((c.kind, Err(e)));
                continue;
            }
            let lat = c.lat;
            s.msgs_per_s = (c.elapsed > 0.0).then(|| lat.count() as f64 / c.elapsed);
            s.p50_ms = lat.quantile_ms(0.5);
            s.p99_ms = lat.quantile_ms(0.99);
            s.notes.push(format!(
                "open loop {rate} msgs/s offered, {:.1} s measured in turns of {:.2} s with \
                 the other systems, each turn's first {} ms and a {:.1} s warm-up not recorded; \
                 publish->ack latency from intended send time; p90 {:.2} ms, p99.9 {:.2} ms, \
                 max {:.2} ms",
                self.plan.w3_time.as_secs_f64(),
                slice.as_secs_f64(),
                lead_in.as_millis(),
                self.plan.w3_warmup.as_secs_f64(),
                lat.quantile_ms(0.9).unwrap_or(0.0),
                lat.quantile_ms(0.999).unwrap_or(0.0),
                lat.quantile_ms(1.0).unwrap_or(0.0),
            ));
            if c.errors > 0 {
                s.notes.push(format!("{} publishes failed", c.errors));
            }
            out.push((c.kind, Ok(s)));
        }
        out
    }

    /// One W3 turn: `lead_in` and then `n` publishes paced at the offered
    /// rate; returns the time from the first recorded send's intended time to
    /// the last answer, the latencies of the recorded ones and the failed
    /// publishes.
    async fn w3_turn(
        &self,
        conn: &Arc<dyn Conn>,
        lead_in: u64,
        n: u64,
    ) -> Result<(f64, Latency, u64)> {
        let rate = self.plan.w3_rate.max(1);
        let batches: Arc<Vec<Prepared>> = Arc::new(
            (0..64)
                .map(|j| conn.prepare(&self.batch(j, 1, SIZE, false)))
                .collect(),
        );
        let lat = Arc::new(Mutex::new(Latency::new()));
        let errors = Arc::new(AtomicU64::new(0));
        let interval = Duration::from_secs_f64(1.0 / rate as f64);
        let start = Instant::now() + Duration::from_millis(20);
        let recorded_from = start + interval * lead_in as u32;
        let n = lead_in + n;
        // tokio's timer has millisecond granularity, which would add up to a
        // millisecond of scheduling lateness to every sample and hide the
        // systems' differences; a thread sleeping on the OS's high-resolution
        // timer paces the sends instead.
        let (tx, mut due) = tokio::sync::mpsc::unbounded_channel();
        let pacer = std::thread::spawn(move || {
            for i in 0..n {
                let intended = start + interval * i as u32;
                if let Some(wait) = intended.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                if tx.send((i, intended)).is_err() {
                    return;
                }
            }
        });
        let mut tasks = tokio::task::JoinSet::new();
        while let Some((i, intended)) = due.recv().await {
            let (conn, batches, lat, errors) =
                (conn.clone(), batches.clone(), lat.clone(), errors.clone());
            tasks.spawn(async move {
                let r = conn.publish(&batches[i as usize % batches.len()]).await;
                let done = Instant::now();
                match r {
                    Ok(_) if i < lead_in => {}
                    Ok(_) => lat.lock().expect("lock").record(done - intended),
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                done
            });
        }
        pacer
            .join()
            .map_err(|_| anyhow!("the W3 pacer thread panicked"))?;
        let mut last = recorded_from;
        let joined = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(r) = tasks.join_next().await {
                last = last.max(r?);
            }
            Ok::<_, anyhow::Error>(())
        })
        .await;
        joined.map_err(|_| anyhow!("W3 publishes did not finish within 120 s"))??;
        let lat = std::mem::take(&mut *lat.lock().expect("lock"));
        Ok((
            (last - recorded_from).as_secs_f64(),
            lat,
            errors.load(Ordering::Relaxed),
        ))
    }

    /// Push (issue 6): one push subscription delivered by ams to a receiver
    /// in this process; `total` messages published in batches of 1000 while
    /// the pusher delivers. The rate runs from the first publish to the last
    /// delivery.
    pub async fn push(&self, tier: Tier, max_messages: usize, total: u64) -> Result<Sample> {
        let kind = Kind::Ams;
        let dir = self.fresh_dir(kind, tier);
        let server = Server::start_with(
            &self.env,
            kind,
            tier,
            &dir,
            None,
            &["--push-enabled", "--push-allow-http"],
        )
        .await?;
        let r = self.push_inner(&server, max_messages, total).await;
        let mut s = Sample::new("P", kind.name(), tier.name(), SIZE, max_messages);
        s.rss_bytes = server.rss().map(|r| r.0);
        self.end_cell(server).await;
        let (rate, notes) = r?;
        s.msgs_per_s = Some(rate);
        s.notes = notes;
        Ok(s)
    }

    async fn push_inner(
        &self,
        server: &Server,
        max: usize,
        total: u64,
    ) -> Result<(f64, Vec<String>)> {
        let conn = self.conn(Kind::Ams, server).await?;
        retry(START_LIMIT, || conn.create_topic()).await?;
        let ams = crate::adapter::Ams::new(&server.addr(), &self.env.token)?;
        let receiver = crate::push::Receiver::start().await?;
        let hash = ams.create_push_sub("push", &receiver.url, max).await?;
        receiver.set_hash(&hash);
        ams.verify_push("push").await?;
        let batch = 1000.min(total as usize);
        let prepared: Vec<Prepared> = (0..total.div_ceil(batch as u64))
            .map(|j| {
                let n = (total - j * batch as u64).min(batch as u64) as usize;
                conn.prepare(&self.batch(j * batch as u64, n, SIZE, false))
            })
            .collect();
        let started = Instant::now();
        for b in &prepared {
            conn.publish(b).await?;
        }
        let published = started.elapsed();
        receiver
            .wait_for(total, Duration::from_secs(300))
            .await
            .inspect_err(|e| {
                self.failures
                    .lock()
                    .expect("lock")
                    .push((Kind::Ams, format!("push maxMessages {max}: {e}")))
            })?;
        let elapsed = started.elapsed();
        let (requests, duplicates) = receiver.counts();
        crate::push::check_batches(requests, total, max)?;
        Ok((
            total as f64 / elapsed.as_secs_f64(),
            vec![
                format!(
                    "{total} messages published in batches of {batch} (took {:.2} s), pushed to a \
                     receiver on the load core in {requests} requests; all arrived in order",
                    published.as_secs_f64()
                ),
                format!("{duplicates} redelivered"),
            ],
        ))
    }

    /// W4: one publisher (batches of 100), ten subscriptions each consumed by
    /// its own connection; the rate counts deliveries to all subscriptions.
    pub async fn w4(&self, kind: Kind, tier: Tier) -> Result<Sample> {
        let batch = 100;
        let (server, conn) = self.start_cell(kind, tier).await?;
        let r = self.w4_inner(kind, &server, conn, batch).await;
        let mut s = Sample::new("W4", kind.name(), tier.name(), SIZE, batch);
        s.rss_bytes = server.rss().map(|r| r.0);
        self.end_cell(server).await;
        let (rate, lat, note) = r?;
        s.msgs_per_s = Some(rate);
        s.p50_ms = lat.quantile_ms(0.5);
        s.p99_ms = lat.quantile_ms(0.99);
        s.notes.push(note);
        s.notes.push("p50/p99 publish->delivery".into());
        Ok(s)
    }

    async fn w4_inner(
        &self,
        kind: Kind,
        server: &Server,
        conn: Arc<dyn Conn>,
        batch: usize,
    ) -> Result<(f64, Latency, String)> {
        let subs: Vec<String> = (0..self.plan.w4_subs).map(|i| format!("f{i}")).collect();
        for s in &subs {
            conn.create_sub(s).await?;
        }
        let total = self.plan.w4_messages;
        let start = Instant::now();
        let producer = async {
            let mut seq = 0;
            while seq < total {
                let n = (total - seq).min(batch as u64) as usize;
                let b = conn.prepare(&self.batch(seq, n, SIZE, true));
                seq += conn.publish(&b).await? as u64;
            }
            Ok::<_, anyhow::Error>(())
        };
        let mut consumers = Vec::new();
        for sub in &subs {
            let c = self.conn(kind, server).await?;
            consumers.push(async move {
                let mut seen = Seen::default();
                let mut lat = Latency::new();
                let deadline = Instant::now() + Duration::from_secs(120);
                while (seen.set.len() as u64) < total && Instant::now() < deadline {
                    let d = c.consume(sub, 1000).await?;
                    let now_us = since(self.epoch);
                    if d.payloads.is_empty() {
                        tokio::time::sleep(Duration::from_micros(500)).await;
                        continue;
                    }
                    for p in &d.payloads {
                        if seen.take(&self.payloads, p).is_some() {
                            lat.record(Duration::from_micros(now_us.saturating_sub(stamp_of(p))));
                        }
                    }
                    if let Some(a) = d.ack {
                        c.ack(sub, a).await?;
                    }
                }
                Ok::<_, anyhow::Error>((seen, lat))
            });
        }
        let (p, results) = tokio::join!(producer, futures::future::join_all(consumers));
        p?;
        let elapsed = start.elapsed();
        let mut lat = Latency::new();
        let mut delivered = 0;
        for (sub, r) in subs.iter().zip(results) {
            let (seen, l) = r?;
            lat.merge(&l);
            delivered += seen.set.len() as u64;
            if seen.set.len() as u64 != total || seen.corrupt > 0 {
                self.fail(
                    kind,
                    format!(
                        "W4 {} {sub}: {} of {total} delivered, {} corrupt",
                        server.tier.name(),
                        seen.set.len(),
                        seen.corrupt
                    ),
                );
            }
        }
        Ok((
            delivered as f64 / elapsed.as_secs_f64(),
            lat,
            format!(
                "{total} msgs x {} subs, each consumed by its own connection",
                subs.len()
            ),
        ))
    }

    /// Publishes `count` messages from `first` on `conns` connections in
    /// batches of `batch`; returns the rate.
    async fn fill(
        &self,
        conns: &[Arc<dyn Conn>],
        first: u64,
        count: u64,
        batch: usize,
    ) -> Result<f64> {
        let next = Arc::new(AtomicU64::new(first));
        let end = first + count;
        let start = Instant::now();
        let tasks = conns.iter().map(|c| {
            let next = next.clone();
            async move {
                loop {
                    let seq = next.fetch_add(batch as u64, Ordering::SeqCst);
                    if seq >= end {
                        return Ok::<_, anyhow::Error>(());
                    }
                    let n = (end - seq).min(batch as u64) as usize;
                    c.publish(&c.prepare(&self.batch(seq, n, SIZE, false)))
                        .await?;
                }
            }
        });
        for r in futures::future::join_all(tasks).await {
            r?;
        }
        Ok(count as f64 / start.elapsed().as_secs_f64())
    }

    /// Restarts (the process must be gone) and times start to the first pull
    /// on `sub` that returns a message; returns the server, a connection, the
    /// time and what that pull delivered.
    async fn restart_to_first_pull(
        &self,
        kind: Kind,
        tier: Tier,
        dir: &std::path::Path,
        port: u16,
        sub: &str,
    ) -> Result<(
        Server,
        Arc<dyn Conn>,
        Option<Duration>,
        crate::adapter::Delivered,
    )> {
        let t0 = Instant::now();
        let server = Server::start(&self.env, kind, tier, dir, Some(port)).await?;
        let addr = server.addr();
        let mut conn: Option<Arc<dyn Conn>> = None;
        let deadline = t0 + START_LIMIT;
        loop {
            if conn.is_none() {
                conn = connect(kind, &addr, &self.env.token).await.ok();
            }
            if let Some(c) = &conn
                && let Ok(d) = c.consume(sub, 1).await
                && !d.payloads.is_empty()
            {
                let took = t0.elapsed();
                return Ok((server, conn.expect("connected"), Some(took), d));
            }
            if Instant::now() >= deadline {
                let c = match conn {
                    Some(c) => c,
                    None => self.conn(kind, &server).await?,
                };
                let empty = crate::adapter::Delivered {
                    payloads: Vec::new(),
                    ack: None,
                };
                return Ok((server, c, None, empty));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// W5 (RAM per retained message), W6 (restart with them to the first
    /// pull) and W7 (`kill -9` under publish load, then restart and count
    /// acknowledged publishes that are gone) for one system.
    pub async fn retained(&self, kind: Kind, tiers: &[Tier]) -> Result<Vec<Sample>> {
        if matches!(kind, Kind::AmsKp | Kind::Kafka) {
            let why = "not applicable: RAM per retained message, restart and kill -9 of the \
                       Kafka systems would measure the test broker (tansu) and its storage, \
                       not ams's layer; the Kafka systems run W1-W4";
            return Ok(["W5", "W6", "W7"]
                .into_iter()
                .map(|w| not_applicable(w, kind, tiers[0], why))
                .collect());
        }
        let mut out = Vec::new();
        let first_tier = tiers[0];
        let dir = self.fresh_dir(kind, first_tier);
        let server = Server::start(&self.env, kind, first_tier, &dir, None).await?;
        let mut slot = Some(server);
        let result = self
            .retained_inner(kind, tiers, &dir, &mut slot, &mut out)
            .await;
        if let Some(server) = slot.take() {
            let _ = server.stop().await;
        }
        let _ = std::fs::remove_dir_all(&dir);
        result?;
        Ok(out)
    }

    async fn retained_inner(
        &self,
        kind: Kind,
        tiers: &[Tier],
        dir: &std::path::Path,
        slot: &mut Option<Server>,
        out: &mut Vec<Sample>,
    ) -> Result<()> {
        let first_tier = tiers[0];
        let mut server = slot.take().context("server")?;
        let port = server.port;
        let conn = self.conn(kind, &server).await?;
        *slot = Some(server);
        let server_ref = slot.as_ref().context("server")?;
        retry(START_LIMIT, || conn.create_topic()).await?;
        conn.create_sub("first").await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = server_ref.rss().context("rss")?;
        let mut conns = vec![conn];
        for _ in 1..4 {
            conns.push(self.conn(kind, server_ref).await?);
        }
        let fill = self.plan.fill;
        let rate = self.fill(&conns, 0, fill, 1000).await?;
        drop(conns);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = server_ref.rss().context("rss")?;
        let per = |a: u64, b: u64| (a as f64 - b as f64) / fill as f64;
        let mut w5 = Sample::new("W5", kind.name(), first_tier.name(), SIZE, 1000);
        w5.msgs_per_s = Some(rate);
        w5.rss_bytes = Some(after.0);
        w5.ram_bytes_per_msg = Some(per(after.0, before.0));
        w5.notes.push(format!(
            "{fill} retained; VmRSS growth/msg (anon {:.1} B, file {:.1} B); msgs/s = fill rate, 4 conns x batch 1000",
            per(after.1, before.1),
            per(after.2, before.2)
        ));
        out.push(w5);

        // W6: graceful stop, start, first pull.
        slot.take().context("server")?.stop().await?;
        let (s, _c, took, d) = self
            .restart_to_first_pull(kind, first_tier, dir, port, "first")
            .await?;
        server = s;
        let mut w6 = Sample::new("W6", kind.name(), first_tier.name(), SIZE, 1);
        w6.restart_to_first_pull_ms = took.map(|t| t.as_secs_f64() * 1000.0);
        w6.rss_bytes = server.rss().map(|r| r.0);
        w6.notes.push(format!(
            "{fill} retained; graceful stop, then process start to first pull returning a message"
        ));
        // Four connections filled concurrently, so any filled message may be first.
        match d.payloads.first().and_then(|p| self.payloads.verify(p)) {
            Some(seq) if seq < fill => {}
            other => {
                w6.notes
                    .push(format!("first message after restart: {other:?}"));
                self.fail(
                    kind,
                    format!("W6: first message after restart is {other:?}, not a filled one"),
                );
            }
        }
        out.push(w6);

        for (ti, &tier) in tiers.iter().enumerate() {
            if server.tier != tier {
                server.stop().await?;
                server = Server::start(&self.env, kind, tier, dir, Some(port)).await?;
            }
            let (s, w7) = self
                .w7(kind, tier, server, dir, port, fill, ti as u64)
                .await?;
            server = s;
            out.push(w7);
        }
        *slot = Some(server);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn w7(
        &self,
        kind: Kind,
        tier: Tier,
        server: Server,
        dir: &std::path::Path,
        port: u16,
        retained: u64,
        round: u64,
    ) -> Result<(Server, Sample)> {
        let sub = format!("v{}", tier.name());
        let conn = self.conn(kind, &server).await?;
        retry(START_LIMIT, || conn.create_sub(&sub)).await?;
        let base = (round + 1) << 40;
        let acked: Arc<Mutex<Vec<(u64, usize)>>> = Arc::default();
        let next = Arc::new(AtomicU64::new(base));
        let batch = 100usize;
        let mut publishers = Vec::new();
        for _ in 0..4 {
            let c = self.conn(kind, &server).await?;
            let (acked, next, payloads) = (acked.clone(), next.clone(), self.payloads.clone());
            publishers.push(tokio::spawn(async move {
                loop {
                    let seq = next.fetch_add(batch as u64, Ordering::SeqCst);
                    let msgs: Vec<Bytes> = (0..batch as u64)
                        .map(|i| Bytes::from(payloads.make(seq + i, 0, SIZE)))
                        .collect();
                    match c.publish(&c.prepare(&msgs)).await {
                        Ok(n) => acked.lock().expect("lock").push((seq, n)),
                        Err(_) => return,
                    }
                }
            }));
        }
        tokio::time::sleep(self.plan.w7_load).await;
        let acked_before_kill = acked.lock().expect("lock").len();
        server.kill9().await?;
        // Answers already on the wire may still arrive; then stop the clients.
        tokio::time::sleep(Duration::from_millis(300)).await;
        for p in &publishers {
            p.abort();
        }
        for p in publishers {
            let _ = p.await;
        }
        drop(conn);
        let acked: Vec<(u64, usize)> = acked.lock().expect("lock").clone();
        let acked_count: usize = acked.iter().map(|a| a.1).sum();

        let (server, conn, took, first) = self
            .restart_to_first_pull(kind, tier, dir, port, &sub)
            .await?;
        let mut seen = Seen::default();
        let mut pending = Some(first);
        let mut empties = 0;
        let deadline = Instant::now() + Duration::from_secs(120);
        while empties < 3 && Instant::now() < deadline {
            let d = match pending.take() {
                Some(d) => d,
                None => conn.consume(&sub, 1000).await?,
            };
            if d.payloads.is_empty() {
                empties += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            empties = 0;
            for p in &d.payloads {
                seen.take(&self.payloads, p);
            }
            if let Some(a) = d.ack {
                conn.ack(&sub, a).await?;
            }
        }
        let lost = acked
            .iter()
            .flat_map(|&(s, n)| s..s + n as u64)
            .filter(|s| !seen.set.contains(s))
            .count() as u64;
        let mut w7 = Sample::new("W7", kind.name(), tier.name(), SIZE, batch);
        w7.restart_to_first_pull_ms = took.map(|t| t.as_secs_f64() * 1000.0);
        w7.acked_lost = Some(lost);
        w7.rss_bytes = server.rss().map(|r| r.0);
        w7.msgs_per_s = Some(acked_count as f64 / self.plan.w7_load.as_secs_f64());
        w7.notes.push(format!(
            "4 publishers x batch {batch} for {:?}, kill -9; {acked_count} acked ({} batches before the kill signal), {} read back after restart, {} corrupt; {} retained before",
            self.plan.w7_load,
            acked_before_kill,
            seen.set.len(),
            seen.corrupt,
            retained
        ));
        if took.is_none() {
            w7.notes
                .push("no message readable within 60 s of restart".into());
        }
        if lost > 0 || seen.corrupt > 0 || acked_count == 0 {
            self.fail(
                kind,
                format!(
                    "W7 {}: {lost} of {acked_count} acknowledged messages lost, {} corrupt",
                    tier.name(),
                    seen.corrupt
                ),
            );
        }
        Ok((server, w7))
    }
}
