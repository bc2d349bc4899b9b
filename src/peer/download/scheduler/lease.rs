//! A worker's hold on a peer ([`Lease`]) and on a chunk ([`Held`]): both
//! give back what they hold when dropped, so a worker that returns early or
//! panics leaves no peer or chunk taken.

use super::{account, Fault, Next, Scheduler};
use crate::peer::dial::PeerAddr;

/// A worker's use of one peer, from [`Scheduler::pick_peer`].
pub struct Lease<'a> {
    pub(super) scheduler: &'a Scheduler,
    pub peer: usize,
    pub source: PeerAddr,
}

impl<'a> Lease<'a> {
    /// Takes the next chunk to fetch from this peer, held until settled.
    pub fn next(&self) -> Result<Held<'a>, Next> {
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
        let now = self.scheduler.now();
        let mut s = self.scheduler.lock();
        account(&mut s, self.peer, -1);
        s.peers[self.peer].workers -= 1;
        s.peers[self.peer].released = Some(now);
        account(&mut s, self.peer, 1);
        self.scheduler.changed.notify_all();
    }
}

/// A chunk a worker is fetching. It must be settled with [`Held::complete`]
/// or [`Held::fail`]; if it is dropped unsettled (a panic, or an early
/// return), the chunk is given back, so no worker waits for it.
pub struct Held<'a> {
    pub(super) scheduler: &'a Scheduler,
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
