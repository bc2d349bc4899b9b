//! Chunk and peer bookkeeping for one download, shared by its workers.
//!
//! Invariant: every chunk not yet done is in the queue or held by at least
//! one worker (in flight). A worker returns a chunk it could not fetch to the
//! queue unless another worker still holds it. When the queue runs dry, idle
//! workers also fetch chunks that are in flight on *other* peers (endgame, as
//! BitTorrent clients do), so one slow or stalling peer cannot hold the last
//! chunks hostage; the first verified copy wins. Peers that send bad data are
//! banned at once; peers that fail to connect or answer are banned after
//! `MAX_STRIKES` failures in a row. When every peer is banned, or all is
//! done, the download stops and every worker's connection is shut down, so
//! no worker stays blocked on a peer that trickles.

use std::collections::{HashMap, VecDeque};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::bounds::{MAX_HOLDERS, MAX_STRIKES};

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
    /// Chunk -> the peers it is being fetched from.
    holders: HashMap<u32, Vec<usize>>,
    done: Vec<bool>,
    done_count: u32,
    peers: Vec<PeerSlot>,
    stopped: bool,
    /// Connections of the workers, shut down when the download stops.
    streams: Vec<Option<TcpStream>>,
}

pub struct Scheduler {
    state: Mutex<State>,
    changed: Condvar,
}

/// A worker's connection, registered so that stopping can interrupt it.
pub struct Attached<'a> {
    scheduler: &'a Scheduler,
    slot: usize,
}

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        self.scheduler.lock().streams[self.slot] = None;
    }
}

impl Scheduler {
    /// `missing` chunks of `total` still to fetch, from `peers`.
    pub fn new(missing: Vec<u32>, total: u32, peers: &[SocketAddr]) -> Self {
        let mut done = vec![true; total as usize];
        for &i in &missing {
            done[i as usize] = false;
        }
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
                done_count: total - missing.len() as u32,
                queue: missing.into(),
                holders: HashMap::new(),
                done,
                peers,
                streams: Vec::new(),
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

    /// Registers a worker's connection so that stopping shuts it down.
    pub fn attach(&self, stream: &TcpStream) -> Attached<'_> {
        let mut s = self.lock();
        let clone = stream.try_clone().ok();
        if s.stopped {
            if let Some(c) = &clone {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
        let slot = match s.streams.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                s.streams.push(None);
                s.streams.len() - 1
            }
        };
        s.streams[slot] = clone;
        Attached {
            scheduler: self,
            slot,
        }
    }

    /// The next chunk to fetch from `peer`: a queued one, else (endgame) one
    /// in flight on another peer; waits while neither exists but chunks are
    /// in flight (one of them may come back to the queue).
    pub fn next_chunk(&self, peer: usize) -> Next {
        let mut s = self.lock();
        loop {
            if s.stopped {
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
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Chunk `chunk` arrived from `peer`, verified and written. Returns
    /// (chunks done, total), or `None` if another worker got it first.
    pub fn complete(&self, peer: usize, chunk: u32) -> Option<(u32, u32)> {
        let mut s = self.lock();
        release_hold(&mut s, chunk, peer);
        s.peers[peer].strikes = 0;
        if s.done[chunk as usize] {
            return None;
        }
        s.done[chunk as usize] = true;
        s.done_count += 1;
        s.holders.remove(&chunk);
        s.peers[peer].chunks += 1;
        if s.done_count as usize == s.done.len() {
            self.stop_locked(&mut s);
        }
        Some((s.done_count, s.done.len() as u32))
    }

    /// `peer` failed to deliver `chunk`; the chunk goes back to the queue
    /// unless another worker is still fetching it.
    pub fn fail(&self, peer: usize, chunk: u32, fault: Fault) {
        let mut s = self.lock();
        release_hold(&mut s, chunk, peer);
        if !s.done[chunk as usize] && !s.holders.contains_key(&chunk) {
            s.queue.push_front(chunk);
        }
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
            self.stop_locked(s);
        }
    }

    /// Whether the download has stopped (complete, aborted or out of peers):
    /// failures after that are the shutdown itself, not the peer's fault.
    pub fn is_stopped(&self) -> bool {
        self.lock().stopped
    }

    /// Stops the download (e.g. the disk failed); workers finish.
    pub fn abort(&self) {
        let mut s = self.lock();
        self.stop_locked(&mut s);
    }

    fn stop_locked(&self, s: &mut State) {
        s.stopped = true;
        for stream in s.streams.iter().flatten() {
            let _ = stream.shutdown(Shutdown::Both);
        }
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
        (s.done_count, s.done.len() as u32, stats)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn peers(n: u16) -> Vec<SocketAddr> {
        (0..n)
            .map(|i| SocketAddr::from(([127, 0, 0, 1], 1000 + i)))
            .collect()
    }

    #[test]
    fn workers_spread_evenly_over_peers() {
        let s = Scheduler::new(vec![0, 1, 2], 3, &peers(3));
        let picked: Vec<usize> = (0..6).filter_map(|_| s.pick_peer()).map(|p| p.0).collect();
        assert_eq!(picked, vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn failed_chunk_is_requeued_and_bad_peer_banned() {
        let s = Scheduler::new(vec![0, 1], 2, &peers(2));
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
        let s = Scheduler::new(vec![0], 1, &peers(3));
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
    fn stopping_shuts_down_attached_connections() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (_server_side, _) = listener.accept().expect("accept");
        let s = Scheduler::new(vec![0], 1, &peers(1));
        let _attached = s.attach(&client);
        s.abort();
        let mut buf = [0u8; 1];
        // Shut down by the scheduler: the blocked read returns at once.
        assert_eq!(std::io::Read::read(&mut client, &mut buf).expect("read"), 0);
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
