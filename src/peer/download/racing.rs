//! Whom to ask for the manifest, and when: the decisions of
//! [`fetch_manifest`](super::manifest::fetch_manifest), on a clock the caller
//! passes in, so that they are tested on a simulated one.
//!
//! Peers are asked in turn, a new one every [`MANIFEST_HEDGE`] (at once when
//! one fails), at most [`MANIFEST_PARALLEL`] at a time. A peer that says
//! `busy` is asked again after a pause (1 s, doubling), for as long as the
//! patience lasts; one that sends a false manifest has lied; any other
//! failure (unreachable, silent) only benches it for the download.
//!
//! Invariant: every peer is in exactly one of the queue, the running asks
//! (counted), `lied` and `failed`.

use std::time::{Duration, Instant};

use super::scheduler::busy_pause;
use crate::bounds::{MANIFEST_HEDGE, MANIFEST_PARALLEL};
use crate::error::Error;
use crate::peer::dial::PeerAddr;

/// The longest a caller waits for a reply before asking [`Racing`] again
/// (so that it also sees a stop).
const RECHECK: Duration = Duration::from_millis(100);

/// A peer to ask for the manifest, not before `not_before`, and how many
/// times in a row it has said `busy`.
#[derive(Clone, Debug)]
pub struct Ask {
    pub peer: PeerAddr,
    not_before: Instant,
    busy: u32,
}

/// One manifest fetch's state.
pub struct Racing {
    queue: Vec<Ask>,
    running: usize,
    launch_at: Instant,
    started: Instant,
    patience: Duration,
    /// Peers that sent a false manifest.
    pub lied: Vec<PeerAddr>,
    /// Peers that could not be reached or did not answer (or stayed busy
    /// past the patience).
    pub failed: Vec<PeerAddr>,
}

impl Racing {
    /// A fetch from `peers`, started at `now`, retrying busy peers for at
    /// most `patience`.
    pub fn new(peers: &[PeerAddr], now: Instant, patience: Duration) -> Racing {
        Racing {
            queue: peers
                .iter()
                .map(|peer| Ask {
                    peer: peer.clone(),
                    not_before: now,
                    busy: 0,
                })
                .collect(),
            running: 0,
            launch_at: now,
            started: now,
            patience,
            lied: Vec::new(),
            failed: Vec::new(),
        }
    }

    /// The peer to ask now, if one is due and there is room for it; it
    /// counts as running until [`failed`](Self::failed) (or a manifest).
    pub fn launch(&mut self, now: Instant) -> Option<Ask> {
        if self.running >= MANIFEST_PARALLEL || now < self.launch_at {
            return None;
        }
        let at = self.queue.iter().position(|a| a.not_before <= now)?;
        self.running += 1;
        self.launch_at = now + MANIFEST_HEDGE;
        Some(self.queue.remove(at))
    }

    /// Nothing running and nobody left to ask: no manifest is coming.
    pub fn exhausted(&self) -> bool {
        self.running == 0 && self.queue.is_empty()
    }

    /// How long to wait for a reply before calling
    /// [`launch`](Self::launch) again: until the next launch may be due,
    /// at most [`RECHECK`], at least 1 ms.
    pub fn wait(&self, now: Instant) -> Duration {
        let next = self
            .queue
            .iter()
            .map(|a| a.not_before.max(self.launch_at))
            .min()
            .filter(|_| self.running < MANIFEST_PARALLEL);
        let wait = next.map_or(RECHECK, |t| t.saturating_duration_since(now).min(RECHECK));
        wait.max(Duration::from_millis(1))
    }

    /// Asking `ask.peer` failed with `e` at `now`: the next peer may be
    /// asked at once; a busy one goes back in the queue (while the patience
    /// lasts), a liar and an unreachable one are set aside.
    pub fn failed(&mut self, ask: Ask, e: &Error, now: Instant) {
        self.running -= 1;
        self.launch_at = now;
        let pause = busy_pause(ask.busy);
        match e {
            Error::Busy if now.duration_since(self.started) + pause <= self.patience => {
                log::debug!(
                    "manifest from {}: busy; asking again in {pause:?}",
                    ask.peer
                );
                self.queue.push(Ask {
                    not_before: now + pause,
                    busy: ask.busy + 1,
                    ..ask
                });
            }
            Error::Verification(_) => {
                log::warn!("manifest from {}: {e}; not using that peer", ask.peer);
                self.lied.push(ask.peer);
            }
            _ => {
                // Unreachable or gone: routine among peers.
                log::info!("manifest from {}: {e}", ask.peer);
                self.failed.push(ask.peer);
            }
        }
    }

    /// Of `peers`, those that did not fail: the one that delivered, those
    /// not asked or not done yet, and those that were busy.
    pub fn usable(&self, peers: &[PeerAddr]) -> Vec<PeerAddr> {
        peers
            .iter()
            .filter(|p| !self.lied.contains(p) && !self.failed.contains(p))
            .cloned()
            .collect()
    }

    /// How many peers failed for good.
    pub fn tried(&self) -> usize {
        self.lied.len() + self.failed.len()
    }
}

#[cfg(test)]
mod tests;
