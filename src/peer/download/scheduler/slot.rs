//! One peer as a download sees it ([`PeerSlot`]), and how its state adds
//! to the download's counts of who offers each chunk ([`account`]), and
//! of who holds it ([`release_hold`]).

use std::time::Instant;

use super::State;
use crate::bounds::{BENCH_TIME, BENCH_TIME_MAX};
use crate::chunkset::ChunkSet;
use crate::peer::dial::PeerAddr;

pub(super) struct PeerSlot {
    /// Who it is (the id its certificate must have, if known) and how to
    /// reach it.
    pub(super) peer: PeerAddr,
    /// What it offers; `None` until its first `HAVE` reply (or for a
    /// version 1 peer): taken to be everything.
    pub(super) offers: Option<ChunkSet>,
    /// Whether it has the whole file (as its `HAVE` says).
    pub(super) complete: bool,
    pub(super) workers: usize,
    pub(super) strikes: u32,
    /// Sent bad data: never used again.
    pub(super) banned: bool,
    /// Failed repeatedly: not used until then; and how many times so far.
    pub(super) benched_until: Option<Instant>,
    pub(super) benches: u32,
    /// Said `busy`: not tried until then; and how many times in a row.
    pub(super) busy_until: Option<Instant>,
    pub(super) busy: u32,
    /// Connects to it that timed out since it last delivered a chunk: the
    /// first was short and no fault ([`Scheduler::timed_out`](super::Scheduler::timed_out)).
    pub(super) timeouts: u32,
    pub(super) chunks: u32,
    /// When a worker last left it (`None`: never used). Among peers with
    /// as many workers, the one left longest ago is picked, so workers
    /// leaving idle peers go round all of them instead of back to the
    /// first in the list (issue 22: past ten downloaders, more peers than
    /// workers, a worker left an idle peer and took the same one again).
    pub(super) released: Option<Instant>,
}

impl PeerSlot {
    pub(super) fn offers(&self, i: u32) -> bool {
        self.offers.as_ref().is_none_or(|o| o.contains(i))
    }

    /// Not used for [`BENCH_TIME`], doubling with each bench up to
    /// [`BENCH_TIME_MAX`]; its strikes start again.
    pub(super) fn bench(&mut self, now: Instant) {
        let pause = BENCH_TIME * 2u32.saturating_pow(self.benches.min(8));
        self.benched_until = Some(now + pause.min(BENCH_TIME_MAX));
        self.benches += 1;
        self.strikes = 0;
    }

    /// Whether a worker may connect to it now.
    pub(super) fn ready(&self, now: Instant) -> bool {
        !self.banned
            && self.benched_until.is_none_or(|t| t <= now)
            && self.busy_until.is_none_or(|t| t <= now)
    }
}

/// Adds (`delta` 1) or removes (-1) what `peer` contributes to the counts
/// in its current state; every change of a peer's offers, completeness,
/// workers or ban is done between a -1 and a +1.
pub(super) fn account(s: &mut State, peer: usize, delta: i32) {
    let p = &s.peers[peer];
    if p.banned {
        return;
    }
    let connected_partial = !p.complete && p.workers > 0;
    for i in 0..s.done.len() {
        if p.offers(i) {
            bump(&mut s.available[i as usize], delta);
            if connected_partial {
                bump(&mut s.from_partial[i as usize], delta);
            }
        }
    }
}

fn bump(count: &mut u16, delta: i32) {
    *count = (i32::from(*count) + delta).clamp(0, i32::from(u16::MAX)) as u16;
}

/// Removes `peer` from the holders of `chunk`.
pub(super) fn release_hold(s: &mut State, chunk: u32, peer: usize) {
    if let Some(h) = s.holders.get_mut(&chunk) {
        if let Some(pos) = h.iter().position(|&(p, _)| p == peer) {
            h.swap_remove(pos);
        }
        if h.is_empty() {
            s.holders.remove(&chunk);
        }
    }
}
