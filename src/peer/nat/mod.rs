//! Where this peer stands behind NAT, kept by a thread of its own
//! (`reach`): it asks the tracker `WHOAMI <listen port>` at start and every
//! [`REACH_RECHECK`], and keeps the answer for `status`. A tracker that
//! does not know the verb (an older one) is not asked again.
//!
//! Invariant: [`Reach::standing`] is `None` until the tracker answered
//! once, then always the latest answer.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::tracker_client::TrackerClient;
use crate::bounds::REACH_RECHECK;
use crate::error::Error;
use crate::net::stop::StopSignal;
use crate::sync::LockExt;

/// What the tracker last said of this peer.
#[derive(Debug, Clone, Copy)]
pub struct Standing {
    /// The address the tracker saw our question come from.
    pub observed: SocketAddr,
    /// Whether the tracker reached our chunk server at the IP it saw.
    pub reachable: bool,
    pub at: Instant,
}

/// [`Standing`] for `status` and `/api/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReachView {
    pub observed: String,
    /// `true`: others can dial this peer directly.
    pub reachable: bool,
    pub secs_ago: u64,
}

/// The `reach` thread and what it learned; stopped when dropped.
pub struct Reach {
    standing: Arc<Mutex<Option<Standing>>>,
    stop: Arc<StopSignal>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Reach {
    /// Starts asking `tracker` (the chunk server must be listening: the
    /// tracker dials it back).
    pub fn spawn(tracker: &TrackerClient) -> std::io::Result<Reach> {
        let stop = StopSignal::new();
        let standing = Arc::new(Mutex::new(None));
        let asker = Asker {
            tracker: tracker.interruptible(Arc::clone(&stop)),
            standing: Arc::clone(&standing),
            stop: Arc::clone(&stop),
        };
        let thread = thread::Builder::new()
            .name("reach".into())
            .spawn(move || asker.run())?;
        Ok(Reach {
            standing,
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The tracker's latest answer, if it gave one.
    pub fn standing(&self) -> Option<Standing> {
        *self.standing.locked()
    }

    pub fn view(&self) -> Option<ReachView> {
        self.standing().map(|s| ReachView {
            observed: s.observed.to_string(),
            reachable: s.reachable,
            secs_ago: s.at.elapsed().as_secs(),
        })
    }

    /// Stops the thread (interrupting a call in flight) and waits for it.
    pub fn stop(&self) {
        self.stop.stop();
        if let Some(thread) = self.thread.locked().take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Reach {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The thread's side.
struct Asker {
    tracker: TrackerClient,
    standing: Arc<Mutex<Option<Standing>>>,
    stop: Arc<StopSignal>,
}

impl Asker {
    fn run(self) {
        let mut pause = Duration::from_secs(1);
        while !self.stop.is_stopped() {
            let wait = match self.tracker.whoami() {
                Ok(r) => {
                    let reachable = r.reachable.unwrap_or(false);
                    log::info!(
                        "the tracker sees this peer at {}: {}",
                        r.observed,
                        if reachable {
                            "reachable"
                        } else {
                            "not reachable directly"
                        }
                    );
                    *self.standing.locked() = Some(Standing {
                        observed: r.observed,
                        reachable,
                        at: Instant::now(),
                    });
                    pause = Duration::from_secs(1);
                    REACH_RECHECK
                }
                Err(Error::Remote(e)) if e.contains("unknown command") => {
                    log::info!("the tracker does not say whether this peer is reachable: {e}");
                    return;
                }
                Err(Error::Interrupted) => return,
                Err(e) => {
                    log::debug!("WHOAMI: {e}; asking again in {pause:?}");
                    let wait = pause;
                    pause = (pause * 2).min(REACH_RECHECK);
                    wait
                }
            };
            self.stop.wait_timeout(wait);
        }
    }
}
