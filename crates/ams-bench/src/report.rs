//! Results: one [`Sample`] per measurement, aggregated over repetitions into
//! rows, written as JSON (`latest.json`) and as a Markdown table.

use serde_json::{Map, Value, json};

use crate::stats::{Better, median, range, ratio_to_best};

/// One measurement, or (after [`aggregate`]) the median of several.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    /// "W1" .. "W7".
    pub workload: String,
    /// "ams", "nats", "redis", "ams-kp" or "kafka".
    pub system: String,
    /// "write" or "fsync".
    pub tier: String,
    /// Payload bytes per message.
    pub msg_size: u64,
    /// Messages per publish request.
    pub batch: u64,
    /// Messages per second (the workload's throughput).
    pub msgs_per_s: Option<f64>,
    /// Median latency in ms (what is timed depends on the workload; see notes).
    pub p50_ms: Option<f64>,
    /// 99th percentile latency in ms.
    pub p99_ms: Option<f64>,
    /// The server's resident set size at the end of the measurement.
    pub rss_bytes: Option<u64>,
    /// Free text: what was measured, ranges, anomalies.
    pub notes: Vec<String>,
    /// W5: server RSS growth divided by retained messages.
    pub ram_bytes_per_msg: Option<f64>,
    /// W6/W7: process start to the first pull that returned a message.
    pub restart_to_first_pull_ms: Option<f64>,
    /// W7: acknowledged publishes not readable after `kill -9` and restart.
    pub acked_lost: Option<u64>,
}

impl Sample {
    /// A sample for one cell, values to be filled in.
    pub fn new(workload: &str, system: &str, tier: &str, msg_size: usize, batch: usize) -> Self {
        Self {
            workload: workload.into(),
            system: system.into(),
            tier: tier.into(),
            msg_size: msg_size as u64,
            batch: batch as u64,
            ..Self::default()
        }
    }

    fn key(&self) -> (String, String, String, u64, u64) {
        (
            self.workload.clone(),
            self.system.clone(),
            self.tier.clone(),
            self.msg_size,
            self.batch,
        )
    }

    /// The same cell for another system?
    fn peer_of(&self, other: &Sample) -> bool {
        self.workload == other.workload
            && self.tier == other.tier
            && self.msg_size == other.msg_size
            && self.batch == other.batch
            && self.system != other.system
    }

    /// The workload's headline metric and which direction is better.
    pub fn headline(&self) -> Option<(f64, Better)> {
        match self.workload.as_str() {
            "W3" => self.p99_ms.map(|v| (v, Better::Lower)),
            "W5" => self.ram_bytes_per_msg.map(|v| (v, Better::Lower)),
            "W6" | "W7" => self.restart_to_first_pull_ms.map(|v| (v, Better::Lower)),
            _ => self.msgs_per_s.map(|v| (v, Better::Higher)),
        }
    }

    /// Payload megabytes (10^6) per second.
    pub fn mb_per_s(&self) -> Option<f64> {
        self.msgs_per_s
            .map(|m| m * self.msg_size as f64 / 1_000_000.0)
    }
}

fn med_f(samples: &[&Sample], f: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
    let v: Vec<f64> = samples.iter().filter_map(|s| f(s)).collect();
    median(&v)
}

/// Folds repetitions of the same cell into one row: medians of the numbers,
/// the worst `acked_lost`, the throughput range and the distinct notes.
/// Rows keep the order in which their cells first appear.
pub fn aggregate(samples: &[Sample]) -> Vec<Sample> {
    let mut keys = Vec::new();
    for s in samples {
        if !keys.contains(&s.key()) {
            keys.push(s.key());
        }
    }
    keys.into_iter()
        .map(|k| {
            let reps: Vec<&Sample> = samples.iter().filter(|s| s.key() == k).collect();
            let first = reps[0];
            let mut row = Sample {
                msgs_per_s: med_f(&reps, |s| s.msgs_per_s),
                p50_ms: med_f(&reps, |s| s.p50_ms),
                p99_ms: med_f(&reps, |s| s.p99_ms),
                rss_bytes: med_f(&reps, |s| s.rss_bytes.map(|v| v as f64)).map(|v| v as u64),
                ram_bytes_per_msg: med_f(&reps, |s| s.ram_bytes_per_msg),
                restart_to_first_pull_ms: med_f(&reps, |s| s.restart_to_first_pull_ms),
                acked_lost: reps.iter().filter_map(|s| s.acked_lost).max(),
                notes: Vec::new(),
                ..first.clone()
            };
            if reps.len() > 1 {
                let mut n = format!("median of {} reps", reps.len());
                let headline: Vec<f64> = reps
                    .iter()
                    .filter_map(|s| s.headline().map(|h| h.0))
                    .collect();
                if let Some((lo, hi)) = range(&headline) {
                    n.push_str(&format!(" (range {} .. {})", num(lo), num(hi)));
                }
                row.notes.push(n);
            }
            // The notes of the rep nearest the median (they carry per-rep
            // counts), then any other rep's notes that report trouble.
            let mid = row.headline().map(|h| h.0);
            let typical = reps
                .iter()
                .min_by(|a, b| {
                    let d = |s: &Sample| match (s.headline(), mid) {
                        (Some(h), Some(m)) => (h.0 - m).abs(),
                        _ => f64::INFINITY,
                    };
                    d(a).total_cmp(&d(b))
                })
                .expect("at least one rep");
            row.notes.extend(typical.notes.iter().cloned());
            for s in &reps {
                for n in &s.notes {
                    let trouble = ["fail", "lost", "no message", "first message"]
                        .iter()
                        .any(|w| n.contains(w));
                    if trouble && !row.notes.contains(n) {
                        row.notes.push(n.clone());
                    }
                }
            }
            row
        })
        .collect()
}

/// Our servers (ams over either store): not each other's peers.
fn is_ours(system: &str) -> bool {
    system == "ams" || system == "ams-kp"
}

/// Each row's headline relative to the best other system in the same cell;
/// for our servers (ams, ams-kp) the best of the other systems' servers.
pub fn ratios(rows: &[Sample]) -> Vec<Option<f64>> {
    rows.iter()
        .map(|r| {
            let (ours, better) = r.headline()?;
            let peers: Vec<f64> = rows
                .iter()
                .filter(|p| r.peer_of(p) && !(is_ours(&r.system) && is_ours(&p.system)))
                .filter_map(|p| p.headline().map(|h| h.0))
                .collect();
            ratio_to_best(ours, &peers, better)
        })
        .collect()
}

/// The cost of our layer over Kafka: each `ams-kp` row's headline divided by
/// the `kafka` row's of the same cell (`None` for other rows).
pub fn layer_ratios(rows: &[Sample]) -> Vec<Option<f64>> {
    rows.iter()
        .map(|r| {
            if r.system != "ams-kp" {
                return None;
            }
            let (ours, better) = r.headline()?;
            let kafka: Vec<f64> = rows
                .iter()
                .filter(|p| p.system == "kafka" && r.peer_of(p))
                .filter_map(|p| p.headline().map(|h| h.0))
                .collect();
            ratio_to_best(ours, &kafka, better)
        })
        .collect()
}

fn opt_f(v: Option<f64>) -> Value {
    v.map(|x| json!((x * 1000.0).round() / 1000.0))
        .unwrap_or(Value::Null)
}

/// The JSON objects of `latest.json`: exactly the agreed fields, plus
/// `ram_bytes_per_msg` for W5, `restart_to_first_pull_ms` for W6 and W7 and
/// `acked_lost` for W7.
pub fn to_json(rows: &[Sample]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                let mut m = Map::new();
                m.insert("workload".into(), json!(r.workload));
                m.insert("system".into(), json!(r.system));
                m.insert("tier".into(), json!(r.tier));
                m.insert("msg_size".into(), json!(r.msg_size));
                m.insert("batch".into(), json!(r.batch));
                m.insert("msgs_per_s".into(), opt_f(r.msgs_per_s));
                m.insert("p50_ms".into(), opt_f(r.p50_ms));
                m.insert("p99_ms".into(), opt_f(r.p99_ms));
                m.insert(
                    "rss_bytes".into(),
                    r.rss_bytes.map(|v| json!(v)).unwrap_or(Value::Null),
                );
                m.insert("notes".into(), json!(r.notes.join("; ")));
                if r.workload == "W5" {
                    m.insert("ram_bytes_per_msg".into(), opt_f(r.ram_bytes_per_msg));
                }
                if r.workload == "W6" || r.workload == "W7" {
                    m.insert(
                        "restart_to_first_pull_ms".into(),
                        opt_f(r.restart_to_first_pull_ms),
                    );
                }
                if r.workload == "W7" {
                    m.insert(
                        "acked_lost".into(),
                        r.acked_lost.map(|v| json!(v)).unwrap_or(Value::Null),
                    );
                }
                Value::Object(m)
            })
            .collect(),
    )
}

/// A number for people: thousands separated, few decimals.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    if v.abs() >= 100.0 {
        let s = format!("{:.0}", v);
        let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn bytes(v: u64) -> String {
    if v >= 1 << 30 {
        format!("{:.2} GiB", v as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", v as f64 / (1u64 << 20) as f64)
    }
}

fn cell(v: Option<f64>) -> String {
    v.map(num).unwrap_or_else(|| "-".into())
}

/// The Markdown table, then the notes of each row by number.
pub fn markdown(rows: &[Sample]) -> String {
    let ratios = ratios(rows);
    let layer = layer_ratios(rows);
    // The ams-kp / kafka column only when both ran.
    let with_layer = layer.iter().any(Option::is_some);
    let mut out = String::new();
    out.push_str(
        "| # | system | tier | workload | msg size | batch | msgs/s | MB/s | p50 ms | p99 ms | RSS | W5-W7 | ratio to best peer |",
    );
    out.push_str(if with_layer {
        " ams-kp / kafka |\n"
    } else {
        "\n"
    });
    out.push_str("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|");
    out.push_str(if with_layer { "---:|\n" } else { "\n" });
    let x = |v: &Option<f64>| v.map(|x| format!("{x:.2}x")).unwrap_or_else(|| "-".into());
    for (i, ((r, ratio), layer)) in rows.iter().zip(&ratios).zip(&layer).enumerate() {
        let mut extra = Vec::new();
        if let Some(v) = r.ram_bytes_per_msg {
            extra.push(format!("{} B/msg", num(v)));
        }
        if let Some(v) = r.restart_to_first_pull_ms {
            extra.push(format!("restart {} ms", num(v)));
        }
        if let Some(v) = r.acked_lost {
            extra.push(format!("acked_lost {v}"));
        }
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            i + 1,
            r.system,
            r.tier,
            r.workload,
            r.msg_size,
            r.batch,
            cell(r.msgs_per_s),
            cell(r.mb_per_s()),
            cell(r.p50_ms),
            cell(r.p99_ms),
            r.rss_bytes.map(bytes).unwrap_or_else(|| "-".into()),
            extra.join(", "),
            x(ratio),
        ));
        if with_layer {
            out.push_str(&format!(" {} |", x(layer)));
        }
        out.push('\n');
    }
    out.push_str(
        "\nRatio to best peer: W1/W2/W4 msgs/s ÷ the best other system's (above 1 is better); \
         W3 p99, W5 bytes/msg, W6/W7 restart ms ÷ the best other system's (below 1 is better); \
         ams and ams-kp are compared with the other systems, not with each other.\n",
    );
    if with_layer {
        out.push_str(
            "ams-kp / kafka: ams over Kafka + PostgreSQL ÷ the same broker driven directly, the \
             cost of our layer (msgs/s: the share of the broker's rate we keep; W3 p99: how many \
             times the broker's latency).\n",
        );
    }
    out.push_str("\nNotes by row:\n\n");
    for (i, r) in rows.iter().enumerate() {
        if !r.notes.is_empty() {
            out.push_str(&format!("{}. {}\n", i + 1, r.notes.join("; ")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(system: &str, workload: &str, v: f64) -> Sample {
        let mut s = Sample::new(workload, system, "write", 1024, 100);
        s.msgs_per_s = Some(v);
        s.p99_ms = Some(v / 100.0);
        s
    }

    #[test]
    fn aggregate_takes_medians_and_worst_loss() {
        let mut a = s("ams", "W7", 100.0);
        a.acked_lost = Some(0);
        a.restart_to_first_pull_ms = Some(10.0);
        a.notes.push("x".into());
        let mut b = a.clone();
        b.msgs_per_s = Some(300.0);
        b.acked_lost = Some(2);
        b.restart_to_first_pull_ms = Some(30.0);
        let mut c = a.clone();
        c.msgs_per_s = Some(200.0);
        c.restart_to_first_pull_ms = Some(20.0);
        let other = s("nats", "W7", 5.0);
        let rows = aggregate(&[a, other.clone(), b, c]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].system, "ams");
        assert_eq!(rows[0].msgs_per_s, Some(200.0));
        assert_eq!(rows[0].restart_to_first_pull_ms, Some(20.0));
        assert_eq!(rows[0].acked_lost, Some(2));
        assert_eq!(rows[0].notes[0], "median of 3 reps (range 10.0 .. 30.0)");
        assert_eq!(rows[0].notes[1], "x");
        assert_eq!(rows[1], other);
    }

    #[test]
    fn ratios_compare_with_the_best_other_system_of_the_same_cell() {
        let rows = vec![
            s("ams", "W1", 300.0),
            s("nats", "W1", 100.0),
            s("redis", "W1", 150.0),
            s("ams", "W3", 100.0),  // p99 1.0
            s("nats", "W3", 400.0), // p99 4.0
            s("ams", "W2", 10.0),   // alone in its cell
        ];
        let r = ratios(&rows);
        assert_eq!(r[0], Some(2.0));
        assert_eq!(r[1], Some(100.0 / 300.0));
        assert_eq!(r[2], Some(0.5));
        assert_eq!(r[3], Some(0.25));
        assert_eq!(r[4], Some(4.0));
        assert_eq!(r[5], None);
    }

    #[test]
    fn our_servers_are_not_each_others_peers_and_ams_kp_is_divided_by_kafka() {
        let rows = vec![
            s("ams", "W1", 400.0),
            s("ams-kp", "W1", 50.0),
            s("kafka", "W1", 200.0),
            s("ams-kp", "W3", 300.0), // p99 3.0
            s("kafka", "W3", 100.0),  // p99 1.0
        ];
        let r = ratios(&rows);
        assert_eq!(r[0], Some(2.0)); // ams vs kafka, not ams-kp
        assert_eq!(r[1], Some(0.25)); // ams-kp vs kafka, not ams
        assert_eq!(r[2], Some(0.5)); // kafka vs the best of ams, ams-kp
        let l = layer_ratios(&rows);
        assert_eq!(l, vec![None, Some(0.25), None, Some(3.0), None]);
        let md = markdown(&rows);
        assert!(md.contains("| ratio to best peer | ams-kp / kafka |"));
        assert!(md.contains("| 0.25x | 0.25x |"));
        assert!(md.contains("| 3.00x | 3.00x |"));
        // Without both, no such column.
        assert!(!markdown(&rows[..1]).contains("ams-kp / kafka |"));
    }

    #[test]
    fn json_has_exactly_the_agreed_fields() {
        let base = [
            "workload",
            "system",
            "tier",
            "msg_size",
            "batch",
            "msgs_per_s",
            "p50_ms",
            "p99_ms",
            "rss_bytes",
            "notes",
        ];
        let mut w5 = s("ams", "W5", 1.0);
        w5.ram_bytes_per_msg = Some(12.5);
        let mut w6 = s("ams", "W6", 1.0);
        w6.restart_to_first_pull_ms = Some(3.0);
        let mut w7 = s("ams", "W7", 1.0);
        w7.restart_to_first_pull_ms = Some(3.0);
        w7.acked_lost = Some(0);
        w7.notes = vec!["a".into(), "b".into()];
        let v = to_json(&[s("ams", "W1", 1.0), w5, w6, w7]);
        let keys =
            |i: usize| -> Vec<String> { v[i].as_object().unwrap().keys().cloned().collect() };
        let with = |extra: &[&str]| -> Vec<String> {
            base.iter().chain(extra).map(|k| k.to_string()).collect()
        };
        assert_eq!(keys(0), with(&[]));
        assert_eq!(keys(1), with(&["ram_bytes_per_msg"]));
        assert_eq!(keys(2), with(&["restart_to_first_pull_ms"]));
        assert_eq!(keys(3), with(&["restart_to_first_pull_ms", "acked_lost"]));
        assert_eq!(v[0]["workload"], "W1");
        assert_eq!(v[0]["msg_size"], 1024);
        assert_eq!(v[0]["p50_ms"], Value::Null);
        assert_eq!(v[1]["ram_bytes_per_msg"], 12.5);
        assert_eq!(v[3]["acked_lost"], 0);
        assert_eq!(v[3]["notes"], "a; b");
    }

    #[test]
    fn numbers_for_people() {
        assert_eq!(num(1_234_567.8), "1,234,568");
        assert_eq!(num(123.4), "123");
        assert_eq!(num(12.34), "12.3");
        assert_eq!(num(1.234), "1.23");
        assert_eq!(num(-1234.0), "-1,234");
    }

    #[test]
    fn markdown_has_one_line_per_row() {
        let rows = vec![s("ams", "W1", 300.0), s("nats", "W1", 100.0)];
        let md = markdown(&rows);
        assert!(md.contains("| 1 | ams | write | W1 | 1024 | 100 | 300 | 0.31 |"));
        assert!(md.contains("| 3.00x |"));
        assert!(md.contains("| 0.33x |"));
    }
}
