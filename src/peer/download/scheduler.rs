//! Chunk and peer bookkeeping for one download, shared by its workers.
//!
//! Each peer has a chunk map: what it offers (from its `HAVE` replies; a
//! peer that speaks only version 1, or has not answered yet, is taken to
//! have everything). `available[i]` counts the usable peers offering chunk
//! `i`, and a worker asks its peer for the rarest chunk it offers (ties and
//! the first few chunks at random), so chunks diverge across the swarm and
//! a seeder's upload goes to chunks nobody else has. A chunk that a partial
//! peer we are connected to offers is not asked of a complete peer (whose
//! uplink is the swarm's scarce resource): the partial peer's workers will
//! fetch it.
//!
//! Invariants: every chunk not yet done is either in flight (held by at
//! least one worker) or free; a free chunk is one nobody holds. A worker
//! that fails returns its chunk; one that panics returns it through the
//! [`Held`] guard's `Drop`, so no chunk is held by nobody. When its peer
//! offers no free chunk, an idle worker also fetches a chunk in flight on
//! *other* peers (endgame): at most [`MAX_HOLDERS`](crate::bounds::MAX_HOLDERS) at once,
//! not counting holders that have had it longer than
//! [`HOLD_PATIENCE`](crate::bounds::HOLD_PATIENCE), so slow peers cannot
//! hold the last chunks hostage; the first verified copy wins.
//!
//! Peers that send bad data are banned for good. Peers that fail to connect
//! or answer [`MAX_STRIKES`](crate::bounds::MAX_STRIKES) times in a row are *benched*: not used for
//! [`BENCH_TIME`](crate::bounds::BENCH_TIME), doubling each time, then
//! tried again (a restarted seeder comes back). The download passes on
//! what the manifest fetch learnt: a false manifest bans its peer
//! ([`Scheduler::ban`]), a failure to connect or answer benches it
//! ([`Scheduler::bench`]). A peer that says `busy` is tried again after a
//! pause and never counted against. Whether to wait for peers when none is usable is
//! the download's decision ([`Scheduler::usable`]); when all is done, or the
//! download is stopped, its [`StopSignal`] interrupts every connection.
//!
//! Time comes from the clock it is given ([`Scheduler::with_clock`]; the
//! system's by [`Scheduler::new`]), so its tests run on a simulated one.
//!
//! Modules: `slot` (one peer's state), `peers` (which peers, and what
//! their failures cost), `pick` (which chunk to ask for), `lease` (a
//! worker's hold on a peer and on a chunk).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::bounds::{BUSY_BACKOFF_MAX, CONNS_PER_PEER};
use crate::chunkset::ChunkSet;
use crate::net::stop::StopSignal;
use crate::peer::dial::PeerAddr;
use crate::sync::{LockExt, Unpoisoned};

/// How long an idle worker sleeps before looking at the stop signal again
/// (a cancel from outside does not notify the condvar).
const IDLE_RECHECK: Duration = Duration::from_millis(100);

/// Why a fetch from a peer failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Connection refused, reset, timed out, or an `ERR` reply.
    Unreliable,
    /// Data that failed verification: this peer is lying or broken.
    BadData,
}

/// What a worker should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Chunk(u32),
    /// Nothing to ask this peer for now; others may have it.
    Idle,
    /// The worker's peer was banned meanwhile: pick another.
    SwitchPeer,
    /// Nothing left to do: complete, stopped, or no usable peer remains.
    Finished,
}

#[derive(Debug, Clone)]
pub struct PeerStats {
    pub addr: SocketAddr,
    pub chunks: u32,
    pub banned: bool,
    pub complete: bool,
}

/// What a download's peers are like, for its decision to wait or give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usable {
    /// Peers that can be used now or soon (busy ones included).
    pub peers: usize,
    /// Peers benched after failures, and banned for bad data.
    pub benched: usize,
    pub banned: usize,
}

struct State {
    done: ChunkSet,
    /// Chunk -> the peers it is being fetched from, and since when.
    holders: HashMap<u32, Vec<(usize, Instant)>>,
    peers: Vec<PeerSlot>,
    /// Usable peers offering each chunk, and how many of them are partial
    /// peers a worker is connected to.
    available: Vec<u16>,
    from_partial: Vec<u16>,
    rng: u64,
}

pub struct Scheduler {
    state: Mutex<State>,
    changed: Condvar,
    stop: Arc<StopSignal>,
    clock: Box<dyn Fn() -> Instant + Send + Sync>,
}

impl Scheduler {
    /// Fetches the chunks missing from `have` from `peers`; stops `stop` when
    /// the download is over.
    pub fn new(have: &ChunkSet, peers: &[PeerAddr], stop: Arc<StopSignal>) -> Self {
        Self::with_clock(have, peers, stop, Instant::now)
    }

    /// [`new`](Self::new), telling time by `clock`.
    pub fn with_clock(
        have: &ChunkSet,
        peers: &[PeerAddr],
        stop: Arc<StopSignal>,
        clock: impl Fn() -> Instant + Send + Sync + 'static,
    ) -> Self {
        if have.is_complete() {
            stop.stop();
        }
        let n = have.len() as usize;
        let s = Scheduler {
            state: Mutex::new(State {
                done: have.clone(),
                holders: HashMap::new(),
                peers: Vec::new(),
                available: vec![0; n],
                from_partial: vec![0; n],
                rng: crate::peer::offer::seed(),
            }),
            changed: Condvar::new(),
            stop,
            clock: Box::new(clock),
        };
        s.add_peers(peers);
        s
    }

    pub(super) fn now(&self) -> Instant {
        (self.clock)()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Each update keeps the invariants before it unlocks, and a panicking
        // worker's chunk comes back through `Held`: a poisoned lock is usable.
        self.state.locked()
    }

    /// A usable peer with room for another connection, the fewest workers
    /// first, spreading workers evenly, and among those the one never used
    /// or left longest ago; released when the lease is dropped.
    /// Waits while there is none but the download goes on.
    pub fn pick_peer(&self) -> Option<Lease<'_>> {
        let mut s = self.lock();
        loop {
            if self.stop.is_stopped() {
                return None;
            }
            if let Some(lease) = self.lease_ready(&mut s) {
                return Some(lease);
            }
            s = self.wait(s);
        }
    }

    /// [`pick_peer`](Self::pick_peer) without waiting: `None` if no peer
    /// is ready now (or the download is over).
    #[cfg(test)]
    fn try_pick_peer(&self) -> Option<Lease<'_>> {
        let mut s = self.lock();
        match self.stop.is_stopped() {
            true => None,
            false => self.lease_ready(&mut s),
        }
    }

    fn lease_ready(&self, s: &mut State) -> Option<Lease<'_>> {
        let now = self.now();
        let i = s
            .peers
            .iter()
            .enumerate()
            .filter(|(_, p)| p.ready(now) && p.workers < CONNS_PER_PEER)
            .min_by_key(|(_, p)| (p.workers, p.strikes, p.released))
            .map(|(i, _)| i)?;
        account(s, i, -1);
        s.peers[i].workers += 1;
        account(s, i, 1);
        Some(Lease {
            scheduler: self,
            peer: i,
            source: s.peers[i].peer.clone(),
        })
    }

    fn wait<'a>(&self, s: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed.wait_timeout(s, IDLE_RECHECK).unpoisoned().0
    }

    /// `peer` now offers `offers` (a `HAVE` reply), and has the whole file
    /// or not.
    pub fn set_offers(&self, peer: usize, offers: ChunkSet, complete: bool) {
        let mut s = self.lock();
        if offers.len() != s.done.len() {
            return;
        }
        account(&mut s, peer, -1);
        s.peers[peer].offers = Some(offers);
        s.peers[peer].complete = complete;
        account(&mut s, peer, 1);
        self.changed.notify_all();
    }

    /// The next chunk to fetch from `peer` (see the module docs), without
    /// waiting: `Idle` if it offers nothing that is needed and free.
    pub fn next_chunk(&self, peer: usize) -> Next {
        let mut s = self.lock();
        if self.stop.is_stopped() {
            return Next::Finished;
        }
        if s.peers[peer].banned {
            return Next::SwitchPeer;
        }
        let now = self.now();
        let chunk = pick_free(&mut s, peer).or_else(|| pick_endgame(&s, peer, now));
        match chunk {
            Some(chunk) => {
                s.holders.entry(chunk).or_default().push((peer, now));
                Next::Chunk(chunk)
            }
            None => Next::Idle,
        }
    }

    /// Waits (briefly) for something to change: a chunk done or given
    /// back, new offers, new peers, the end.
    pub fn wait_for_change(&self, timeout: Duration) {
        let s = self.lock();
        if !self.stop.is_stopped() {
            drop(self.changed.wait_timeout(s, timeout).unpoisoned());
        }
    }

    /// Chunk `chunk` arrived from `peer`, verified and written. Returns
    /// (chunks done, total), or `None` if another worker got it first.
    pub fn complete(&self, peer: usize, chunk: u32) -> Option<(u32, u32)> {
        let mut s = self.lock();
        release_hold(&mut s, chunk, peer);
        let p = &mut s.peers[peer];
        (p.strikes, p.benches, p.busy, p.timeouts) = (0, 0, 0, 0);
        if !s.done.insert(chunk) {
            return None;
        }
        s.holders.remove(&chunk);
        s.peers[peer].chunks += 1;
        if s.done.is_complete() {
            self.stop.stop();
        }
        self.changed.notify_all();
        Some((s.done.count(), s.done.len()))
    }

    /// `peer` failed to deliver `chunk`; the chunk is free again unless
    /// another worker is still fetching it.
    pub fn fail(&self, peer: usize, chunk: u32, fault: Fault) {
        let mut s = self.lock();
        release_hold(&mut s, chunk, peer);
        self.strike_locked(&mut s, peer, fault);
        self.changed.notify_all();
    }

    /// `peer`'s worker let go of `chunk` through no fault of the peer (it
    /// panicked, or the download stopped).
    pub fn give_back(&self, peer: usize, chunk: u32) {
        let mut s = self.lock();
        release_hold(&mut s, chunk, peer);
        self.changed.notify_all();
    }

    /// Whether the download has stopped (complete, aborted, cancelled or out
    /// of peers): failures after that are the stop itself, not the peer's.
    pub fn is_stopped(&self) -> bool {
        self.stop.is_stopped()
    }

    /// Whether `peer` has the whole file, as far as is known.
    pub fn is_complete_peer(&self, peer: usize) -> bool {
        self.lock().peers[peer].complete
    }

    /// Whether `peer` is a complete peer (which hands out fresh chunks a few
    /// at a time) whose offers are running out: fewer than `depth` needed
    /// and free, or none the worker could take (`starved`).
    pub fn low_on_offers(&self, peer: usize, starved: bool, depth: u32) -> bool {
        let s = self.lock();
        s.peers[peer].complete && (starved || free_offered(&s, peer, depth) < depth)
    }

    /// How many chunks `peer` offers that are needed and free, counting no
    /// further than `enough`.
    pub fn free_offers(&self, peer: usize, enough: u32) -> u32 {
        free_offered(&self.lock(), peer, enough)
    }

    /// Stops the download (e.g. the disk failed); workers finish.
    pub fn abort(&self) {
        let _s = self.lock();
        self.stop.stop();
        self.changed.notify_all();
    }

    /// The chunks done so far.
    pub fn done(&self) -> ChunkSet {
        self.lock().done.clone()
    }

    /// (chunks done, total) and what each peer contributed.
    pub fn outcome(&self) -> (u32, u32, Vec<PeerStats>) {
        let s = self.lock();
        let stats = s
            .peers
            .iter()
            .map(|p| PeerStats {
                addr: p.peer.shown(),
                chunks: p.chunks,
                banned: p.banned,
                complete: p.complete,
            })
            .collect();
        (s.done.count(), s.done.len(), stats)
    }
}

/// How long to wait before asking a peer again that said `busy` `times`
/// times in a row before: 1 s, doubling up to [`BUSY_BACKOFF_MAX`].
pub fn busy_pause(times: u32) -> Duration {
    let pause = Duration::from_secs(1) * 2u32.saturating_pow(times.min(8));
    pause.min(BUSY_BACKOFF_MAX)
}

mod lease;
mod peers;
mod pick;
mod slot;

pub use lease::{Held, Lease};
use pick::{free_offered, pick_endgame, pick_free};
use slot::{account, release_hold, PeerSlot};

#[cfg(test)]
mod tests;
