//! Chunk and peer bookkeeping for one download, shared by its workers.
//!
//! Invariant: every missing chunk is in exactly one place: the queue, or held
//! by exactly one worker (in flight). A worker returns a chunk it could not
//! fetch to the queue, so another worker (on another peer) picks it up.
//! Peers that send bad data are banned at once; peers that fail to connect or
//! answer are banned after `MAX_STRIKES` failures in a row. When every peer is
//! banned the download stops: nobody is left to supply what is missing.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Condvar, Mutex, MutexGuard};

/// Consecutive failures after which a peer is no longer used.
pub const MAX_STRIKES: u32 = 3;

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
    /// Nothing left to do: complete, or no usable peer remains.
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
    in_flight: usize,
    done: u32,
    total: u32,
    peers: Vec<PeerSlot>,
    stopped: bool,
}

pub struct Scheduler {
    state: Mutex<State>,
    changed: Condvar,
}

impl Scheduler {
    /// `missing` chunks of `total` still to fetch, from `peers`.
    pub fn new(missing: Vec<u32>, total: u32, peers: &[SocketAddr]) -> Self {
        let done = total - missing.len() as u32;
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
        Scheduler {
            state: Mutex::new(State {
                stopped: missing.is_empty(),
                queue: missing.into(),
                in_flight: 0,
                done,
                total,
                peers,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A usable peer with the fewest workers on it, spreading workers evenly.
    /// The caller must [`release`](Self::release) it when done with it.
    pub fn pick_peer(&self) -> Option<(usize, SocketAddr)> {
        let mut s = self.lock();
        if s.stopped {
            return None;
        }
        let (i, slot) = s
            .peers
            .iter_mut()
            .enumerate()
            .filter(|(_, p)| !p.banned)
            .min_by_key(|(_, p)| (p.workers, p.strikes))?;
        slot.workers += 1;
        Some((i, slot.addr))
    }

    pub fn release(&self, peer: usize) {
        let mut s = self.lock();
        s.peers[peer].workers -= 1;
    }

    /// The next chunk to fetch from `peer`, waiting while others are in
    /// flight (one of them may come back to the queue).
    pub fn next_chunk(&self, peer: usize) -> Next {
        let mut s = self.lock();
        loop {
            if s.stopped {
                return Next::Finished;
            }
            if s.peers[peer].banned {
                return Next::SwitchPeer;
            }
            if let Some(chunk) = s.queue.pop_front() {
                s.in_flight += 1;
                return Next::Chunk(chunk);
            }
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Chunk `chunk` arrived from `peer`, verified and written. Returns
    /// (chunks done, total).
    pub fn complete(&self, peer: usize, _chunk: u32) -> (u32, u32) {
        let mut s = self.lock();
        s.in_flight -= 1;
        s.done += 1;
        let slot = &mut s.peers[peer];
        slot.chunks += 1;
        slot.strikes = 0;
        if s.done == s.total {
            s.stopped = true;
            self.changed.notify_all();
        }
        (s.done, s.total)
    }

    /// `peer` failed to deliver `chunk`; the chunk goes back to the queue.
    pub fn fail(&self, peer: usize, chunk: u32, fault: Fault) {
        let mut s = self.lock();
        s.in_flight -= 1;
        s.queue.push_front(chunk);
        self.strike_locked(&mut s, peer, fault);
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
            s.stopped = true;
        }
    }

    /// Stops the download (e.g. the disk failed); workers finish.
    pub fn abort(&self) {
        self.lock().stopped = true;
        self.changed.notify_all();
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
        (s.done, s.total, stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(n: u16) -> Vec<SocketAddr> {
        (0..n)
            .map(|i| SocketAddr::from(([127, 0, 0, 1], 1000 + i)))
            .collect()
    }

    #[test]
    fn workers_spread_evenly_over_peers() {
        let s = Scheduler::new(vec![0, 1, 2], 3, &peers(3));
        let picked: Vec<usize> = (0..6).map(|_| s.pick_peer().unwrap().0).collect();
        assert_eq!(picked, vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn failed_chunk_is_requeued_and_bad_peer_banned() {
        let s = Scheduler::new(vec![0, 1], 2, &peers(2));
        assert_eq!(s.next_chunk(0), Next::Chunk(0));
        s.fail(0, 0, Fault::BadData);
        assert_eq!(s.next_chunk(0), Next::SwitchPeer);
        assert_eq!(s.next_chunk(1), Next::Chunk(0));
        assert_eq!(s.complete(1, 0), (1, 2));
        assert_eq!(s.next_chunk(1), Next::Chunk(1));
        assert_eq!(s.complete(1, 1), (2, 2));
        assert_eq!(s.next_chunk(1), Next::Finished);
        let (done, total, stats) = s.outcome();
        assert_eq!((done, total), (2, 2));
        assert!(stats[0].banned && !stats[1].banned);
        assert_eq!(stats[1].chunks, 2);
    }

    #[test]
    fn strikes_ban_after_limit_and_all_banned_stops() {
        let s = Scheduler::new(vec![0], 1, &peers(1));
        for _ in 0..MAX_STRIKES - 1 {
            s.strike(0, Fault::Unreliable);
            assert!(s.pick_peer().is_some());
            s.release(0);
        }
        s.strike(0, Fault::Unreliable);
        assert!(s.pick_peer().is_none());
        assert_eq!(s.next_chunk(0), Next::Finished);
        assert_eq!(s.outcome().0, 0);
    }

    #[test]
    fn nothing_missing_is_finished_at_once() {
        let s = Scheduler::new(vec![], 4, &peers(1));
        assert!(s.pick_peer().is_none());
        assert_eq!(s.outcome().0, 4);
    }
}
