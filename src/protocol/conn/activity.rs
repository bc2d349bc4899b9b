//! Whether a server's connection is waiting for a request, and since when:
//! the request loop marks it through its [`Connection`](super::Connection),
//! and the server's slots read it to pick the longest-idle connection when
//! they are full. Times are milliseconds since the first use, plus one, so
//! that 0 can mean busy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Whether a connection is waiting for a request, and since when.
#[derive(Debug)]
pub(crate) struct Activity(AtomicU64);

/// `Activity`'s value while a request is being handled.
const BUSY: u64 = 0;

fn millis_now() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    // +1: 0 means busy.
    epoch.elapsed().as_millis() as u64 + 1
}

impl Activity {
    /// A new connection: idle (it has sent nothing) from now.
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity(AtomicU64::new(millis_now())))
    }

    /// Waiting for the next request, from now.
    pub fn idle(&self) {
        self.0.store(millis_now(), Ordering::Relaxed);
    }

    /// A complete request came in.
    pub fn busy(&self) {
        self.0.store(BUSY, Ordering::Relaxed);
    }

    /// Since when it has been idle (smaller is longer), if it is.
    pub(crate) fn idle_since(&self) -> Option<u64> {
        Some(self.0.load(Ordering::Relaxed)).filter(|&t| t != BUSY)
    }
}
