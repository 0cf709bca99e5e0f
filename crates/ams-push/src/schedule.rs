//! When the next delivery cycle of a subscription may start, per retry policy
//! (contract §7.5 for `linear` and `slowstart`; `exponential` is ours). Pure,
//! so the timings are tested without a clock.

use std::time::Duration;

use ams_core::model::RetryPolicy;

/// First interval of `slowstart`.
const SLOWSTART_START_MS: u64 = 1000;
/// Shortest interval of `slowstart`.
const SLOWSTART_FLOOR_MS: u64 = 300;
/// Longest interval of `slowstart` (one day).
const SLOWSTART_CEILING_MS: u64 = 86_400_000;

/// The wait between delivery cycles of one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    policy: RetryPolicy,
    /// Current `slowstart` interval.
    slow_ms: u64,
    /// Consecutive failures (for `exponential`).
    failures: u32,
}

impl Schedule {
    /// A schedule at its start.
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            slow_ms: SLOWSTART_START_MS,
            failures: 0,
        }
    }

    /// The policy it follows.
    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// The wait after a successful cycle.
    pub fn after_success(&mut self) -> Duration {
        self.failures = 0;
        match self.policy {
            RetryPolicy::Linear { period_ms } => Duration::from_millis(period_ms.into()),
            RetryPolicy::Slowstart => {
                self.slow_ms = (self.slow_ms / 2).max(SLOWSTART_FLOOR_MS);
                Duration::from_millis(self.slow_ms)
            }
            RetryPolicy::Exponential { .. } => Duration::ZERO,
        }
    }

    /// The wait after a failed cycle; `jitter` in `[0, 1)` picks a point in
    /// the upper half of the exponential back-off (so that many subscriptions
    /// failing together do not retry together).
    pub fn after_failure(&mut self, jitter: f64) -> Duration {
        self.failures = self.failures.saturating_add(1);
        match self.policy {
            RetryPolicy::Linear { period_ms } => Duration::from_millis(period_ms.into()),
            RetryPolicy::Slowstart => {
                self.slow_ms = (self.slow_ms * 2).min(SLOWSTART_CEILING_MS);
                Duration::from_millis(self.slow_ms)
            }
            RetryPolicy::Exponential {
                min_backoff_ms,
                max_backoff_ms,
            } => {
                let full = backoff_ms(min_backoff_ms, max_backoff_ms, self.failures);
                let half = full / 2;
                let extra = ((full - half) as f64 * jitter.clamp(0.0, 1.0)) as u64;
                Duration::from_millis(half + extra.min(full - half))
            }
        }
    }
}

/// `min * 2^(n-1)`, capped at `max`.
pub fn backoff_ms(min: u32, max: u32, failures: u32) -> u64 {
    let shift = failures.saturating_sub(1).min(40);
    (u64::from(min) << shift).min(u64::from(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_waits_its_period_after_every_cycle() {
        let mut s = Schedule::new(RetryPolicy::Linear { period_ms: 3000 });
        assert_eq!(s.after_failure(0.5), Duration::from_millis(3000));
        assert_eq!(s.after_success(), Duration::from_millis(3000));
    }

    #[test]
    fn slowstart_halves_to_300ms_and_doubles_to_a_day() {
        let mut s = Schedule::new(RetryPolicy::Slowstart);
        let ms = |d: Duration| d.as_millis() as u64;
        assert_eq!(ms(s.after_success()), 500);
        assert_eq!(ms(s.after_success()), 300);
        assert_eq!(ms(s.after_success()), 300);
        assert_eq!(ms(s.after_failure(0.0)), 600);
        assert_eq!(ms(s.after_failure(0.0)), 1200);
        for _ in 0..40 {
            s.after_failure(0.0);
        }
        assert_eq!(ms(s.after_failure(0.0)), 86_400_000);
        assert_eq!(ms(s.after_success()), 43_200_000);
    }

    #[test]
    fn exponential_doubles_from_min_to_max_with_jitter_in_the_upper_half() {
        let policy = RetryPolicy::Exponential {
            min_backoff_ms: 100,
            max_backoff_ms: 1000,
        };
        let mut s = Schedule::new(policy);
        assert_eq!(s.after_success(), Duration::ZERO);
        assert_eq!(s.after_failure(0.0), Duration::from_millis(50));
        assert_eq!(s.after_failure(0.999_999), Duration::from_millis(199));
        assert_eq!(s.after_failure(1.0), Duration::from_millis(400));
        assert_eq!(s.after_failure(1.0), Duration::from_millis(800));
        assert_eq!(s.after_failure(1.0), Duration::from_millis(1000));
        for _ in 0..100 {
            assert!(s.after_failure(0.3) <= Duration::from_millis(1000));
        }
        // A success resets the back-off.
        assert_eq!(s.after_success(), Duration::ZERO);
        assert_eq!(s.after_failure(1.0), Duration::from_millis(100));
        assert_eq!(backoff_ms(1, u32::MAX, 20), 1 << 19);
        assert_eq!(backoff_ms(1, u32::MAX, 1000), u64::from(u32::MAX));
    }
}
