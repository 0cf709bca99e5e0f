//! Latency histograms, medians and ratios: the pure arithmetic of the report.

use hdrhistogram::Histogram;

/// A latency histogram in microseconds (1 µs .. 1 h, 3 significant digits).
pub struct Latency {
    hist: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            hist: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
        }
    }

    /// Records one latency.
    pub fn record(&mut self, d: std::time::Duration) {
        self.hist
            .saturating_record((d.as_micros() as u64).clamp(1, 3_600_000_000));
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Latency) {
        self.hist.add(&other.hist).expect("same bounds");
    }

    /// How many latencies were recorded.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The latency at quantile `q` (0..=1) in milliseconds, `None` when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        (!self.hist.is_empty()).then(|| self.hist.value_at_quantile(q) as f64 / 1000.0)
    }
}

/// The median of some values (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The smallest and largest of some values.
pub fn range(values: &[f64]) -> Option<(f64, f64)> {
    let mut it = values.iter().copied().filter(|x| x.is_finite());
    let first = it.next()?;
    Some(it.fold((first, first), |(lo, hi), x| (lo.min(x), hi.max(x))))
}

/// Whether a bigger value of a workload's headline metric is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    /// Throughput: more is better.
    Higher,
    /// Latency, bytes, start-up time: less is better.
    Lower,
}

/// `ours` relative to the best of `peers`: `ours / best`, where best is the
/// largest peer for [`Better::Higher`] and the smallest for [`Better::Lower`].
/// `None` without peers or when the best is zero.
pub fn ratio_to_best(ours: f64, peers: &[f64], better: Better) -> Option<f64> {
    let best = match better {
        Better::Higher => peers
            .iter()
            .copied()
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x)))),
        Better::Lower => peers
            .iter()
            .copied()
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.min(x)))),
    }?;
    (best > 0.0).then(|| ours / best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn median_and_range() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(range(&[2.0, 9.0, 4.0]), Some((2.0, 9.0)));
        assert_eq!(range(&[]), None);
    }

    #[test]
    fn ratios() {
        assert_eq!(
            ratio_to_best(200.0, &[100.0, 50.0], Better::Higher),
            Some(2.0)
        );
        assert_eq!(ratio_to_best(2.0, &[4.0, 1.0], Better::Lower), Some(2.0));
        assert_eq!(ratio_to_best(2.0, &[], Better::Lower), None);
        assert_eq!(ratio_to_best(2.0, &[0.0], Better::Higher), None);
    }

    #[test]
    fn latency_quantiles() {
        let mut l = Latency::new();
        assert_eq!(l.quantile_ms(0.5), None);
        for ms in 1..=100u64 {
            l.record(Duration::from_millis(ms));
        }
        let p50 = l.quantile_ms(0.5).unwrap();
        let p99 = l.quantile_ms(0.99).unwrap();
        assert!((49.9..=50.1).contains(&p50), "{p50}");
        assert!((98.9..=99.1).contains(&p99), "{p99}");
        let mut m = Latency::new();
        m.record(Duration::from_secs(1));
        m.merge(&l);
        assert_eq!(m.count(), 101);
    }
}
