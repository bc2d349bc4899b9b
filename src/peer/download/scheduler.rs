//! Chunk and peer bookkeeping for one download, shared by its workers.
//!
//! Invariant: every chunk not yet done is in the queue or held by at least
//! one worker (in flight). A worker returns a chunk it could not fetch to the
//! queue unless another worker still holds it; a worker that panics returns
//! its chunk through the [`Held`] guard's `Drop`, so no chunk is ever held by
//! nobody. When the queue runs dry, idle workers also fetch chunks that are
//! in flight on *other* peers (endgame, as BitTorrent clients do), so one slow
//! or stalling peer cannot hold the last chunks hostage; the first verified
//! copy wins. Peers that send bad data are banned at once; peers that fail to
//! connect or answer are banned after `MAX_STRIKES` failures in a row. When
//! every peer is banned, or all is done, the download's [`StopSignal`] is
//! stopped, which interrupts every worker's connection, so no worker stays
//! blocked on a peer that trickles.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::bounds::{MAX_HOLDERS, MAX_STRIKES};
use crate::chunkset::ChunkSet;
use crate::net::stop::StopSignal;

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
}

struct PeerSlot {
    addr: SocketAddr,
    workers: usize,
    strikes: u32,
    banned: bool,
    chunks: u32,
}

struct State {
    queue: VecDeque<u32>,
    /// Chunk -> the peers it is being fetched from.
    holders: HashMap<u32, Vec<usize>>,
    done: ChunkSet,
    peers: Vec<PeerSlot>,
}

pub struct Scheduler {
    state: Mutex<State>,
    changed: Condvar,
    stop: Arc<StopSignal>,
}

impl Scheduler {
    /// Fetches the chunks missing from `have` from `peers`; stops `stop` when
    /// the download is over.
    pub fn new(have: &ChunkSet, peers: &[SocketAddr], stop: Arc<StopSignal>) -> Self {
        let peers = peers
            .iter()
            .map(|&addr| PeerSlot {
                addr,
                workers: 0,
                strikes: 0,
                banned: false,
                chunks: 0,
            })
            .collect();
        if have.is_complete() {
            stop.stop();
        }
        Scheduler {
            state: Mutex::new(State {
                queue: have.missing().collect(),
                holders: HashMap::new(),
                done: have.clone(),
                peers,
            }),
            changed: Condvar::new(),
            stop,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Each update keeps the invariant before it unlocks, and a panicking
        // worker's chunk comes back through `Held`: a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A usable peer with the fewest workers on it, spreading workers evenly;
    /// released when the lease is dropped.
    pub fn pick_peer(&self) -> Option<Lease<'_>> {
        let mut s = self.lock();
        if self.stop.is_stopped() {
            return None;
        }
        let (i, slot) = s
            .peers
            .iter_mut()
            .enumerate()
            .filter(|(_, p)| !p.banned)
            .min_by_key(|(_, p)| (p.workers, p.strikes))?;
        slot.workers += 1;
        Some(Lease {
            scheduler: self,
            peer: i,
            addr: slot.addr,
        })
    }

    /// The next chunk to fetch from `peer`: a queued one, else (endgame) one
    /// in flight on another peer; waits while neither exists but chunks are
    /// in flight (one of them may come back to the queue).
    pub fn next_chunk(&self, peer: usize) -> Next {
        let mut s = self.lock();
        loop {
            if self.stop.is_stopped() {
                return Next::Finished;
            }
            if s.peers[peer].banned {
                return Next::SwitchPeer;
            }
            let chunk = s.queue.pop_front().or_else(|| {
                s.holders
                    .iter()
                    .filter(|(_, h)| h.len() < MAX_HOLDERS && !h.contains(&peer))
                    .min_by_key(|(c, h)| (h.len(), **c))
                    .map(|(c, _)| *c)
            });
            if let Some(chunk) = chunk {
                s.holders.entry(chunk).or_default().push(peer);
                return Next::Chunk(chunk);
            }
            s = self
                .changed
                .wait_timeout(s, IDLE_RECHECK)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Chunk `chunk` arrived from `peer`, verified and written. Returns
    /// (chunks done, total), or `None` if another worker got it first.
    pub fn complete(&self, peer: usize, chunk: u32) -> Option<(u32, u32)> {
        let mut s = self.lock();
        release_hold(&mut s, chunk, peer);
        s.peers[peer].strikes = 0;
        if !s.done.insert(chunk) {
            return None;
        }
        s.holders.remove(&chunk);
        s.peers[peer].chunks += 1;
        if s.done.is_complete() {
            self.stop_locked();
        }
        Some((s.done.count(), s.done.len()))
    }

    /// `peer` failed to deliver `chunk`; the chunk goes back to the queue
    /// unless another worker is still fetching it.
    pub fn fail(&self, peer: usize, chunk: u32, fault: Fault) {
        let mut s = self.lock();
        requeue(&mut s, chunk, peer);
        self.strike_locked(&mut s, peer, fault);
        self.changed.notify_all();
    }

    /// `peer`'s worker let go of `chunk` through no fault of the peer (it
    /// panicked, or the download stopped): the chunk goes back to the queue.
    pub fn give_back(&self, peer: usize, chunk: u32) {
        let mut s = self.lock();
        requeue(&mut s, chunk, peer);
        self.changed.notify_all();
    }

    /// Connecting to `peer` failed (no chunk was taken).
    pub fn strike(&self, peer: usize, fault: Fault) {
        let mut s = self.lock();
        self.strike_locked(&mut s, peer, fault);
        self.changed.notify_all();
    }

    fn strike_locked(&self, s: &mut State, peer: usize, fault: Fault) {
        let slot = &mut s.peers[peer];
        slot.strikes += 1;
        if fault == Fault::BadData || slot.strikes >= MAX_STRIKES {
            slot.banned = true;
        }
        if s.peers.iter().all(|p| p.banned) {
            self.stop_locked();
        }
    }

    /// Whether the download has stopped (complete, aborted, cancelled or out
    /// of peers): failures after that are the stop itself, not the peer's.
    pub fn is_stopped(&self) -> bool {
        self.stop.is_stopped()
    }

    /// Whether `peer` is banned.
    pub fn is_banned(&self, peer: usize) -> bool {
        self.lock().peers[peer].banned
    }

    /// Stops the download (e.g. the disk failed); workers finish.
    pub fn abort(&self) {
        let _s = self.lock();
        self.stop_locked();
    }

    fn stop_locked(&self) {
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
                addr: p.addr,
                chunks: p.chunks,
                banned: p.banned,
            })
            .collect();
        (s.done.count(), s.done.len(), stats)
    }
}

/// A worker's use of one peer, from [`Scheduler::pick_peer`].
pub struct Lease<'a> {
    scheduler: &'a Scheduler,
    pub peer: usize,
    pub addr: SocketAddr,
}

impl Lease<'_> {
    /// Takes the next chunk to fetch from this peer, held until settled.
    pub fn next(&self) -> Result<Held<'_>, Next> {
        match self.scheduler.next_chunk(self.peer) {
            Next::Chunk(chunk) => Ok(Held {
                scheduler: self.scheduler,
                peer: self.peer,
                chunk,
                settled: false,
            }),
            other => Err(other),
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.scheduler.lock().peers[self.peer].workers -= 1;
    }
}

/// A chunk a worker is fetching. It must be settled with [`Held::complete`]
/// or [`Held::fail`]; if it is dropped unsettled (a panic, or an early
/// return), the chunk goes back to the queue, so no worker waits for it.
pub struct Held<'a> {
    scheduler: &'a Scheduler,
    peer: usize,
    pub chunk: u32,
    settled: bool,
}

impl Held<'_> {
    /// See [`Scheduler::complete`].
    pub fn complete(mut self) -> Option<(u32, u32)> {
        self.settled = true;
        self.scheduler.complete(self.peer, self.chunk)
    }

    /// See [`Scheduler::fail`].
    pub fn fail(mut self, fault: Fault) {
        self.settled = true;
        self.scheduler.fail(self.peer, self.chunk, fault);
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.scheduler.give_back(self.peer, self.chunk);
        }
    }
}

/// Removes `peer` from the holders of `chunk`.
fn release_hold(s: &mut State, chunk: u32, peer: usize) {
    if let Some(h) = s.holders.get_mut(&chunk) {
        if let Some(pos) = h.iter().position(|&p| p == peer) {
            h.swap_remove(pos);
        }
        if h.is_empty() {
            s.holders.remove(&chunk);
        }
    }
}

/// Releases `peer`'s hold on `chunk` and queues the chunk again if it is not
/// done and nobody else holds it.
fn requeue(s: &mut State, chunk: u32, peer: usize) {
    release_hold(s, chunk, peer);
    if !s.done.contains(chunk) && !s.holders.contains_key(&chunk) {
        s.queue.push_front(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    fn peers(n: u16) -> Vec<SocketAddr> {
        (0..n)
            .map(|i| SocketAddr::from(([127, 0, 0, 1], 1000 + i)))
            .collect()
    }

    fn scheduler(missing: &[u32], total: u32, n: u16) -> Scheduler {
        let have = ChunkSet::from_fn(total, |i| !missing.contains(&i));
        Scheduler::new(&have, &peers(n), StopSignal::new())
    }

    #[test]
    fn workers_spread_evenly_over_peers() {
        let s = scheduler(&[0, 1, 2], 3, 3);
        let leases: Vec<_> = (0..6).filter_map(|_| s.pick_peer()).collect();
        let picked: Vec<usize> = leases.iter().map(|l| l.peer).collect();
        assert_eq!(picked, vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn failed_chunk_is_requeued_and_bad_peer_banned() {
        let s = scheduler(&[0, 1], 2, 2);
        assert_eq!(s.next_chunk(0), Next::Chunk(0));
        s.fail(0, 0, Fault::BadData);
        assert_eq!(s.next_chunk(0), Next::SwitchPeer);
        assert_eq!(s.next_chunk(1), Next::Chunk(0));
        assert_eq!(s.complete(1, 0), Some((1, 2)));
        assert_eq!(s.next_chunk(1), Next::Chunk(1));
        assert_eq!(s.complete(1, 1), Some((2, 2)));
        assert_eq!(s.next_chunk(1), Next::Finished);
        let (done, total, stats) = s.outcome();
        assert_eq!((done, total), (2, 2));
        assert!(stats[0].banned && !stats[1].banned);
        assert_eq!(stats[1].chunks, 2);
    }

    #[test]
    fn endgame_duplicates_a_stalled_chunk_on_another_peer_once() {
        let s = scheduler(&[0], 1, 3);
        assert_eq!(s.next_chunk(0), Next::Chunk(0)); // peer 0 stalls on it
        assert_eq!(s.next_chunk(1), Next::Chunk(0)); // peer 1 duplicates it
                                                     // A failure of one holder does not requeue: the other still holds it.
        s.fail(0, 0, Fault::Unreliable);
        assert_eq!(s.next_chunk(2), Next::Chunk(0));
        assert_eq!(s.complete(2, 0), Some((1, 1)));
        assert_eq!(s.complete(1, 0), None); // the slower copy is discarded
        assert_eq!(s.outcome().2.iter().map(|p| p.chunks).sum::<u32>(), 1);
    }

    #[test]
    fn stopping_stops_the_downloads_signal() {
        let stop = StopSignal::new();
        let s = Scheduler::new(&ChunkSet::empty(1), &peers(1), Arc::clone(&stop));
        s.abort();
        assert!(stop.is_stopped(), "workers' connections get interrupted");
        assert_eq!(s.next_chunk(0), Next::Finished);
    }

    #[test]
    fn strikes_ban_after_limit_and_all_banned_stops() {
        let s = scheduler(&[0], 1, 1);
        for _ in 0..MAX_STRIKES - 1 {
            s.strike(0, Fault::Unreliable);
            assert!(s.pick_peer().is_some());
        }
        s.strike(0, Fault::Unreliable);
        assert!(s.pick_peer().is_none());
        assert_eq!(s.next_chunk(0), Next::Finished);
        assert_eq!(s.outcome().0, 0);
    }

    #[test]
    fn nothing_missing_is_finished_at_once() {
        let s = scheduler(&[], 4, 1);
        assert!(s.pick_peer().is_none());
        assert_eq!(s.outcome().0, 4);
    }

    /// A worker that panics while holding the only chunk must not leave the
    /// others waiting for it: the chunk comes back to the queue.
    #[test]
    fn a_panicking_worker_gives_its_chunk_back() {
        let s = scheduler(&[0], 1, 1);
        let panicked = thread::scope(|scope| {
            scope
                .spawn(|| {
                    let lease = s.pick_peer().expect("a peer");
                    let _held = lease.next().expect("the chunk");
                    panic!("a bug in a worker");
                })
                .join()
                .is_err()
        });
        assert!(panicked);
        let lease = s.pick_peer().expect("the peer is free again");
        let held = lease.next().expect("the chunk is back, not held by nobody");
        assert_eq!(held.chunk, 0);
        assert_eq!(held.complete(), Some((1, 1)));
    }
}
