//! Time for the guest: the system clock, or a virtual clock whose sleeps advance time at once
//! (tests, scenarios and the demo, where an hour of cooldown must pass instantly).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// Wall-clock time; `sleep` blocks the thread.
    #[default]
    System,
    Virtual(VirtualClock),
}

impl Clock {
    /// Unix epoch milliseconds.
    pub fn now_ms(&self) -> u64 {
        match self {
            Clock::System => {
                SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
            }
            Clock::Virtual(v) => v.now_ms(),
        }
    }

    pub fn sleep_ms(&self, ms: u64) {
        match self {
            Clock::System => std::thread::sleep(Duration::from_millis(ms)),
            Clock::Virtual(v) => v.advance(ms),
        }
    }
}

/// A clock that moves only when told; clones share the same time.
#[derive(Debug, Clone)]
pub struct VirtualClock(Arc<AtomicU64>);

impl VirtualClock {
    pub fn new(start_ms: u64) -> Self {
        VirtualClock(Arc::new(AtomicU64::new(start_ms)))
    }

    pub fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    pub fn advance(&self, ms: u64) {
        // Saturate rather than wrap: a huge sleep from a buggy guest must not rewind time.
        let _ = self.0.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| Some(t.saturating_add(ms)));
    }
}
