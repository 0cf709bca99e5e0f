//! `ams-bench`: drives ams (embedded, and `ams-kp` over Kafka + PostgreSQL),
//! NATS JetStream, Redis streams and a Kafka broker (`kafka`) with one client
//! core (workloads W1-W7 of design §4), then writes a Markdown table and
//! `latest.json`. Servers are started and stopped by PID from here; the
//! `bench/run` script installs the peers, builds, pins and calls this.

mod adapter;
mod payload;
mod push;
mod report;
mod server;
mod stats;
mod workloads;

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Parser;

use crate::report::Sample;
use crate::server::{Env, Kind, Tier};
use crate::workloads::{Bench, Plan};

/// Command line.
#[derive(Parser, Debug)]
#[command(
    name = "ams-bench",
    about = "ams side by side with NATS JetStream, Redis streams and Kafka"
)]
struct Args {
    /// Tiny sizes, every workload (CI): counts are checked, timings are not.
    #[arg(long)]
    quick: bool,
    /// Systems to measure, comma separated: ams, nats, redis, ams-kp (ams
    /// over Kafka + PostgreSQL), kafka (the broker alone).
    #[arg(long, default_value = "ams,nats,redis")]
    systems: String,
    /// Durability tiers, comma separated (W5/W6 run in the first).
    #[arg(long, default_value = "write,fsync")]
    tiers: String,
    /// Repetitions; the order of systems rotates between them.
    #[arg(long)]
    reps: Option<usize>,
    /// Only these workloads (W1..W7, P for push), comma separated.
    #[arg(long, default_value = "W1,W2,W3,W4,W5,W6,W7,P")]
    workloads: String,
    /// The ams binary.
    #[arg(long, default_value = "target/release/ams")]
    ams_bin: PathBuf,
    /// The nats-server binary.
    #[arg(long, default_value = "nats-server")]
    nats_bin: PathBuf,
    /// The redis-server binary.
    #[arg(long, default_value = "redis-server")]
    redis_bin: PathBuf,
    /// The tansu binary (the Kafka-protocol broker of ams-kp and kafka).
    #[arg(long, default_value = "tansu")]
    tansu_bin: PathBuf,
    /// Directory of PostgreSQL's initdb, pg_ctl and createdb (ams-kp)
    /// [default: on PATH, else the newest /usr/lib/postgresql/*/bin].
    #[arg(long)]
    pg_bin_dir: Option<PathBuf>,
    /// The NATS binary supports `sync_interval: always` (else the fsync tier
    /// runs NATS unmatched, and the report says so).
    #[arg(long)]
    nats_sync_always: bool,
    /// Pin servers to this CPU (`taskset`).
    #[arg(long)]
    server_cpu: Option<usize>,
    /// Append the PID of every started server to this file.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Where data directories go (default: a new directory under the temp dir).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// JSON output.
    #[arg(long, default_value = "target/bench/latest.json")]
    json_out: PathBuf,
    /// Markdown output (default bench/results/<date>.md, <date>-quick.md with --quick).
    #[arg(long)]
    md_out: Option<PathBuf>,
    /// W3's offered rate in messages per second [default: 1000].
    #[arg(long)]
    w3_rate: Option<u64>,
    /// Payload seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Worker threads of the load generator.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Systems whose count failures (acked but lost or undelivered) or errors
    /// make the exit status non-zero.
    #[arg(long, default_value = "ams,ams-kp")]
    strict: String,
    /// Lines for the report's header (versions, pinning, command).
    #[arg(long = "header")]
    header: Vec<String>,
}

fn list<T>(s: &str, parse: impl Fn(&str) -> Result<T>) -> Result<Vec<T>> {
    s.split(',')
        .filter(|x| !x.trim().is_empty())
        .map(parse)
        .collect()
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()?;
    let code = rt.block_on(run(args))?;
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    std::process::exit(code);
}

fn progress(s: &Sample) {
    let f = |v: Option<f64>| v.map(report::num).unwrap_or_else(|| "-".into());
    eprintln!(
        "  {} {:5} {:5} {:>5}B x{:<4} msgs/s {:>10}  p50 {:>7} ms  p99 {:>7} ms{}{}{}",
        s.workload,
        s.system,
        s.tier,
        s.msg_size,
        s.batch,
        f(s.msgs_per_s),
        f(s.p50_ms),
        f(s.p99_ms),
        s.ram_bytes_per_msg
            .map(|v| format!("  {:.1} B/msg", v))
            .unwrap_or_default(),
        s.restart_to_first_pull_ms
            .map(|v| format!("  restart {:.0} ms", v))
            .unwrap_or_default(),
        s.acked_lost
            .map(|v| format!("  acked_lost {v}"))
            .unwrap_or_default(),
    );
}

async fn run(args: Args) -> Result<i32> {
    let systems = list(&args.systems, Kind::parse)?;
    let tiers = list(&args.tiers, Tier::parse)?;
    let workloads: Vec<String> = list(&args.workloads, |w| Ok(w.trim().to_uppercase()))?;
    let strict = list(&args.strict, Kind::parse)?;
    anyhow::ensure!(
        !systems.is_empty() && !tiers.is_empty(),
        "no systems or tiers"
    );
    let reps = args.reps.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    let mut plan = if args.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    if let Some(rate) = args.w3_rate {
        plan.w3_rate = rate.max(1);
    }
    let own_dir = args.work_dir.is_none();
    let work_dir = match &args.work_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("ams-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&work_dir)?;
    let env = Env {
        ams_bin: args.ams_bin.clone(),
        nats_bin: args.nats_bin.clone(),
        redis_bin: args.redis_bin.clone(),
        tansu_bin: args.tansu_bin.clone(),
        pg_bin_dir: match &args.pg_bin_dir {
            Some(d) => d.clone(),
            None if systems.contains(&Kind::AmsKp) => server::find_pg_bin_dir().context(
                "PostgreSQL's initdb and pg_ctl (for ams-kp) are not on PATH or in \
                 /usr/lib/postgresql/*/bin (--pg-bin-dir)",
            )?,
            None => PathBuf::new(),
        },
        nats_sync_always: args.nats_sync_always,
        server_cpu: args.server_cpu,
        pid_file: args.pid_file.clone(),
        token: "bench-token".into(),
    };
    let bench = Bench::new(env, plan.clone(), work_dir.clone(), args.seed);
    let wants = |w: &str| workloads.iter().any(|x| x == w);
    let started = std::time::Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut errors: Vec<(Kind, String)> = Vec::new();
    macro_rules! cell {
        ($kind:expr, $what:expr, $fut:expr) => {
            match $fut.await {
                Ok(s) => {
                    progress(&s);
                    samples.push(s);
                }
                Err(e) => {
                    let msg = format!("{} {}: {e:#}", $kind.name(), $what);
                    eprintln!("  ERROR {msg}");
                    errors.push(($kind, msg));
                }
            }
        };
    }
    for rep in 0..reps {
        let mut order = systems.clone();
        order.rotate_left(rep % systems.len());
        eprintln!(
            "== rep {}/{reps}, order {:?} ({:.0} s)",
            rep + 1,
            order.iter().map(|k| k.name()).collect::<Vec<_>>(),
            started.elapsed().as_secs_f64()
        );
        for &tier in &tiers {
            // Systems that do not run in this tier get one row per workload
            // saying so (in the first rep).
            let order: Vec<Kind> = order
                .iter()
                .copied()
                .filter(|k| match k.unsupported_tier(tier) {
                    None => true,
                    Some(why) => {
                        if rep == 0 {
                            for w in ["W1", "W2", "W3", "W4"].into_iter().filter(|w| wants(w)) {
                                samples.push(workloads::not_applicable(w, *k, tier, why));
                            }
                        }
                        false
                    }
                })
                .collect();
            if wants("W1") {
                for &size in &plan.w1_sizes {
                    for &batch in &plan.w1_batches {
                        for &k in &order {
                            cell!(
                                k,
                                format!("W1 {} {size}x{batch}", tier.name()),
                                bench.w1(k, tier, size, batch)
                            );
                        }
                    }
                }
            }
            if wants("W2") {
                for &k in &order {
                    cell!(k, format!("W2 {}", tier.name()), bench.w2(k, tier));
                }
            }
            if wants("W3") {
                for (k, r) in bench.w3(&order, tier).await {
                    cell!(k, format!("W3 {}", tier.name()), async { r });
                }
            }
            if wants("W4") {
                for &k in &order {
                    cell!(k, format!("W4 {}", tier.name()), bench.w4(k, tier));
                }
            }
            // Push is ours alone: the peers have no push to an HTTP endpoint.
            if wants("P") && systems.contains(&Kind::Ams) {
                for &(max, total) in &plan.push {
                    cell!(
                        Kind::Ams,
                        format!("P {} maxMessages {max}", tier.name()),
                        bench.push(tier, max, total)
                    );
                }
            }
        }
        if wants("W5") || wants("W6") || wants("W7") {
            for &k in &order {
                if rep > 0 && matches!(k, Kind::AmsKp | Kind::Kafka) {
                    continue; // said once (not applicable)
                }
                match bench.retained(k, &tiers).await {
                    Ok(v) => {
                        for s in v {
                            if wants(&s.workload) {
                                progress(&s);
                                samples.push(s);
                            }
                        }
                    }
                    Err(e) => {
                        let msg = format!("{} W5-W7: {e:#}", k.name());
                        eprintln!("  ERROR {msg}");
                        errors.push((k, msg));
                    }
                }
            }
        }
    }
    let elapsed = started.elapsed();
    if own_dir {
        let _ = std::fs::remove_dir_all(&work_dir);
    }

    // Rows in a stable order: workload, size, batch, tier, system.
    let mut rows = report::aggregate(&samples);
    let pos = |v: &[String], x: &str| v.iter().position(|y| y == x).unwrap_or(usize::MAX);
    let sys_names: Vec<String> = systems.iter().map(|k| k.name().to_string()).collect();
    let tier_names: Vec<String> = tiers.iter().map(|t| t.name().to_string()).collect();
    rows.sort_by_key(|r| {
        (
            r.workload.clone(),
            r.msg_size,
            r.batch,
            pos(&tier_names, &r.tier),
            pos(&sys_names, &r.system),
        )
    });
    let failures = bench.failures.lock().expect("lock").clone();

    let date = time::OffsetDateTime::now_utc().date().to_string();
    let mut md = format!(
        "# Benchmark {date}{}\n\n",
        if args.quick { " (quick)" } else { "" }
    );
    for h in &args.header {
        md.push_str(&format!("- {h}\n"));
    }
    md.push_str(&format!(
        "- reps: {reps} (order of systems rotated each rep; numbers are medians); took {:.0} s\n",
        elapsed.as_secs_f64()
    ));
    for k in &systems {
        for t in &tiers {
            md.push_str(&format!(
                "- tier {} ({}): {}\n",
                t.name(),
                k.name(),
                server::tier_settings(*k, *t, args.nats_sync_always)
            ));
        }
    }
    md.push_str(
        "- payloads: seeded random bytes (seed 42), identical for every system; ams receives them \
         base64-encoded in `data`, as AMS clients send them (so its request bytes are 4/3 of the payload); \
         MB/s counts payload bytes\n",
    );
    md.push_str(
        "- a batch is one HTTP request for ams, that many pipelined XADDs for Redis and that many \
         JetStream publishes in flight for NATS; ams acks cumulatively (highest ack id), NATS acks \
         each message (explicit ack policy), Redis XACKs the ids of each read\n",
    );
    if systems.contains(&Kind::AmsKp) || systems.contains(&Kind::Kafka) {
        md.push_str(
            "- kafka is the broker alone (tansu, the Kafka-protocol broker ams's tests use), driven \
             through rskafka: a batch is one produce request of that many records (acks=-1; split \
             above 1 MB, as ams-kafka splits), the payload is the record value; a pull is one fetch \
             from the consumer's offset, kept client-side, as is the ack (rskafka has no consumer \
             groups); ams-kp is ams --store kafka-postgres over the same broker (one \
             single-partition Kafka topic per AMS topic, records in the original AMS JSON, so \
             base64 payloads) and a PostgreSQL cluster for metadata, all three processes pinned \
             like the other servers; its RSS is the ams process alone, its cpu share counts all \
             three (broken down in the notes). Column ams-kp / kafka is the cost of our layer \
             over the broker\n",
        );
    }
    md.push('\n');
    md.push_str(&report::markdown(&rows));
    if !failures.is_empty() || !errors.is_empty() {
        md.push_str("\nCount check failures and errors:\n\n");
        for (k, f) in failures.iter().chain(errors.iter()) {
            md.push_str(&format!("- {}: {f}\n", k.name()));
        }
    }
    println!("{md}");

    // A run of fewer workloads, systems or tiers than the full set must not
    // overwrite the day's full results.
    let partial = args.workloads != "W1,W2,W3,W4,W5,W6,W7,P"
        || args.systems != "ams,nats,redis"
        || args.tiers != "write,fsync";
    let md_out = args.md_out.clone().unwrap_or_else(|| {
        let base = format!(
            "bench/results/{date}{}{}",
            if args.quick { "-quick" } else { "" },
            if partial { "-partial" } else { "" }
        );
        // Nor an earlier partial run of the same day.
        (1..)
            .map(|n| match n {
                1 => PathBuf::from(format!("{base}.md")),
                n => PathBuf::from(format!("{base}-{n}.md")),
            })
            .find(|p| !partial || !p.exists())
            .expect("an unused name")
    });
    for path in [&md_out, &args.json_out] {
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)?;
        }
    }
    std::fs::write(&md_out, &md).with_context(|| format!("writing {}", md_out.display()))?;
    std::fs::write(
        &args.json_out,
        serde_json::to_string_pretty(&report::to_json(&rows))? + "\n",
    )
    .with_context(|| format!("writing {}", args.json_out.display()))?;
    eprintln!("wrote {} and {}", md_out.display(), args.json_out.display());

    let fatal: Vec<_> = failures
        .iter()
        .chain(errors.iter())
        .filter(|(k, _)| strict.contains(k))
        .collect();
    if fatal.is_empty() {
        eprintln!(
            "count checks: passed for {}",
            strict
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(",")
        );
        Ok(0)
    } else {
        for (k, f) in fatal {
            eprintln!("FAILED {}: {f}", k.name());
        }
        Ok(1)
    }
}
