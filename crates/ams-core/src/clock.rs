//! Time, injected: ack deadlines, publish times and the pusher's retry
//! schedule read a [`Clock`], so tests move time by hand instead of sleeping.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use parking_lot::Mutex;
use tokio::sync::{Notify, oneshot};

use ams_types::Timestamp;

/// A future that completes when a clock reaches a time.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A source of the current UTC time.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Timestamp;
    /// Completes once [`Clock::now`] has reached `deadline`.
    fn sleep_until(&self, deadline: Timestamp) -> Sleep;
}

/// The system's real-time clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp::from_nanos(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }

    fn sleep_until(&self, deadline: Timestamp) -> Sleep {
        let wait = u64::try_from(deadline.nanos().saturating_sub(self.now().nanos())).unwrap_or(0);
        if wait == 0 {
            // tokio's timer would round even a zero wait up to its next tick (1 ms).
            return Box::pin(std::future::ready(()));
        }
        Box::pin(tokio::time::sleep(std::time::Duration::from_nanos(wait)))
    }
}

/// A clock that only moves when told to. Cloning shares the same time.
/// Sleepers wake when the clock is moved past their deadline, and tests can
/// see when, and until when, something is sleeping ([`ManualClock::next_sleeper`]).
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Manual>);

#[derive(Debug)]
struct Manual {
    now: AtomicI64,
    sleepers: Mutex<Vec<(i64, oneshot::Sender<()>)>>,
    slept: Notify,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(Manual {
            now: AtomicI64::new(start.nanos()),
            sleepers: Mutex::new(Vec::new()),
            slept: Notify::new(),
        }))
    }

    /// Moves the clock forward by `secs` seconds.
    pub fn advance_secs(&self, secs: i64) {
        self.advance_nanos(secs * 1_000_000_000);
    }

    /// Moves the clock forward by `ms` milliseconds.
    pub fn advance_millis(&self, ms: i64) {
        self.advance_nanos(ms * 1_000_000);
    }

    fn advance_nanos(&self, nanos: i64) {
        let now = self.0.now.fetch_add(nanos, Ordering::SeqCst) + nanos;
        self.wake(now);
    }

    /// Sets the clock.
    pub fn set(&self, t: Timestamp) {
        self.0.now.store(t.nanos(), Ordering::SeqCst);
        self.wake(t.nanos());
    }

    fn wake(&self, now: i64) {
        let mut sleepers = self.0.sleepers.lock();
        let (due, waiting): (Vec<_>, Vec<_>) = sleepers.drain(..).partition(|(d, _)| *d <= now);
        *sleepers = waiting;
        drop(sleepers);
        for (_, tx) in due {
            let _ = tx.send(());
        }
    }

    /// The earliest deadline anything is sleeping until, waiting for a sleeper
    /// to appear if there is none.
    pub async fn next_sleeper(&self) -> Timestamp {
        loop {
            let notified = self.0.slept.notified();
            if let Some(t) = self.earliest_sleeper() {
                return t;
            }
            notified.await;
        }
    }

    /// The earliest deadline anything is sleeping until, if any.
    pub fn earliest_sleeper(&self) -> Option<Timestamp> {
        let mut sleepers = self.0.sleepers.lock();
        sleepers.retain(|(_, tx)| !tx.is_closed());
        sleepers
            .iter()
            .map(|(d, _)| *d)
            .min()
            .map(Timestamp::from_nanos)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_nanos(self.0.now.load(Ordering::SeqCst))
    }

    fn sleep_until(&self, deadline: Timestamp) -> Sleep {
        let (tx, rx) = oneshot::channel();
        {
            let mut sleepers = self.0.sleepers.lock();
            if deadline.nanos() <= self.0.now.load(Ordering::SeqCst) {
                return Box::pin(std::future::ready(()));
            }
            sleepers.push((deadline.nanos(), tx));
        }
        self.0.slept.notify_waiters();
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_sleepers_wake_only_when_the_clock_passes_their_deadline() {
        let clock = ManualClock::new(Timestamp::from_secs(100));
        assert!(clock.earliest_sleeper().is_none());
        let mut sleep = clock.sleep_until(Timestamp::from_secs(103));
        assert_eq!(clock.next_sleeper().await, Timestamp::from_secs(103));
        clock.advance_secs(2);
        assert!(futures_poll(&mut sleep).is_pending());
        clock.advance_secs(1);
        assert!(futures_poll(&mut sleep).is_ready());
        assert!(clock.earliest_sleeper().is_none());
        // A deadline already passed completes at once; a dropped sleeper is forgotten.
        assert!(futures_poll(&mut clock.sleep_until(Timestamp::from_secs(1))).is_ready());
        drop(clock.sleep_until(Timestamp::from_secs(500)));
        assert!(clock.earliest_sleeper().is_none());
    }

    fn futures_poll(f: &mut Sleep) -> std::task::Poll<()> {
        let waker = std::task::Waker::noop();
        f.as_mut().poll(&mut std::task::Context::from_waker(waker))
    }
}
