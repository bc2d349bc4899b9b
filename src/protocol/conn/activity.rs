//! Whether a server's connection is waiting for a request, and since when:
//! the request loop marks it through its [`Connection`](super::Connection),
//! and the server's slots read it to pick the longest-idle connection when
//! they are full.
//!
//! A request counts only once it is whole: a connection dawdling over a
//! request body is still idle since its last request ended (issue 20: 256
//! connections trickling 4-byte bodies counted as busy, so none could be
//! evicted).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Whether a connection is waiting for a request, and since when.
#[derive(Debug)]
pub(crate) struct Activity {
    /// Milliseconds since the first use, when it last became idle.
    since: AtomicU64,
    busy: AtomicBool,
}

fn millis_now() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    epoch.elapsed().as_millis() as u64
}

impl Activity {
    /// A new connection: idle (it has sent nothing) from now.
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            since: AtomicU64::new(millis_now()),
            busy: AtomicBool::new(false),
        })
    }

    /// Waiting for the next request, from now.
    pub fn idle(&self) {
        self.since.store(millis_now(), Ordering::Relaxed);
        self.busy.store(false, Ordering::Relaxed);
    }

    /// A complete request came in.
    pub fn busy(&self) {
        self.busy.store(true, Ordering::Relaxed);
    }

    /// The request is not whole after all (its body is still coming): idle
    /// again, since its last request ended.
    pub fn waiting(&self) {
        self.busy.store(false, Ordering::Relaxed);
    }

    /// Since when it has been idle (smaller is longer), if it is.
    pub(crate) fn idle_since(&self) -> Option<u64> {
        let since = self.since.load(Ordering::Relaxed);
        (!self.busy.load(Ordering::Relaxed)).then_some(since)
    }
}
