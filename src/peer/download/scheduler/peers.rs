//! The peers a download knows, and what their failures cost: new peers
//! from the tracker or the DHT, bans (bad data) and benches (failures in a
//! row), `busy` pauses, and the counts the download decides to wait on.

use super::{account, busy_pause, Fault, PeerSlot, Scheduler, State, Usable};
use std::time::Duration;

use crate::bounds::{CONNECT_TIMEOUT, FIRST_CONNECT_TIMEOUT, MAX_STRIKES};
use crate::peer::dial::PeerAddr;

impl Scheduler {
    /// Adds peers not known yet (a new answer from the tracker or the DHT);
    /// returns how many were new. A peer is known by its address and pin;
    /// an unpinned address already known with a pin is not new. A known
    /// pinned peer takes the ways of its latest row (the tracker now says
    /// it is reachable directly, or behind NAT): a worker on a connection
    /// made the old way leaves it (see [`Scheduler::moved`]).
    pub fn add_peers(&self, peers: &[PeerAddr]) -> usize {
        let mut s = self.lock();
        let mut added = 0;
        for new in peers {
            let known = s.peers.iter_mut().find(|p| {
                p.peer.shown() == new.shown() && (p.peer.id == new.id || new.id.is_none())
            });
            if let Some(slot) = known {
                if new.id.is_some() && slot.peer.ways() != new.ways() {
                    log::debug!("peer {new}: now reached by {:?}", new.ways());
                    slot.peer = new.clone();
                }
                continue;
            }
            s.peers.push(PeerSlot {
                peer: new.clone(),
                offers: None,
                complete: true,
                workers: 0,
                strikes: 0,
                banned: false,
                benched_until: None,
                benches: 0,
                busy_until: None,
                busy: 0,
                timeouts: 0,
                chunks: 0,
                released: None,
            });
            let peer = s.peers.len() - 1;
            account(&mut s, peer, 1);
            added += 1;
        }
        if added > 0 {
            self.changed.notify_all();
        }
        added
    }

    /// Whether `lease`'s peer is reached another way now than when the
    /// lease was taken (its row changed).
    pub fn moved(&self, lease: &super::Lease<'_>) -> bool {
        self.lock().peers[lease.peer].peer != lease.source
    }

    /// Marks `peers` as not to be used by this download (they sent bad
    /// data before it started: a false manifest), also when found again.
    pub fn ban(&self, peers: &[PeerAddr]) {
        self.exclude(peers, |s, peer| {
            account(s, peer, -1);
            s.peers[peer].banned = true;
        });
    }

    /// Benches `peers` (they failed to connect or answer before the
    /// download started), as [`MAX_STRIKES`] failures in a row would: not
    /// used for [`BENCH_TIME`](crate::bounds::BENCH_TIME), then tried again.
    pub fn bench(&self, peers: &[PeerAddr]) {
        self.exclude(peers, |s, peer| s.peers[peer].bench(self.now()));
    }

    /// Adds `peers` if new, and applies `how` to each that is not banned.
    fn exclude(&self, peers: &[PeerAddr], how: impl Fn(&mut State, usize)) {
        self.add_peers(peers);
        let mut s = self.lock();
        for peer in 0..s.peers.len() {
            let slot = &s.peers[peer];
            let listed = peers
                .iter()
                .any(|p| p.shown() == slot.peer.shown() && p.id == slot.peer.id);
            if listed && !slot.banned {
                how(&mut s, peer);
            }
        }
        self.changed.notify_all();
    }

    /// Whether some usable peer other than `peer` has no connection yet, so
    /// an idle worker would do better elsewhere.
    pub fn others_waiting(&self, peer: usize) -> bool {
        let s = self.lock();
        let now = self.now();
        s.peers
            .iter()
            .enumerate()
            .any(|(i, p)| i != peer && p.ready(now) && p.workers == 0)
    }

    /// How many peers can be used now or soon (busy ones included) for a
    /// chunk still missing, and how many are benched or banned.
    pub fn usable(&self) -> Usable {
        let s = self.lock();
        let now = self.now();
        let benched = s
            .peers
            .iter()
            .filter(|p| !p.banned && p.benched_until.is_some_and(|t| t > now))
            .count();
        let banned = s.peers.iter().filter(|p| p.banned).count();
        let useful = s
            .peers
            .iter()
            .filter(|p| !p.banned && p.benched_until.is_none_or(|t| t <= now))
            .filter(|p| s.done.missing().any(|i| p.offers(i)))
            .count();
        Usable {
            peers: useful,
            benched,
            banned,
        }
    }

    /// `peer` said `busy`: try it again after a pause (1 s, doubling up to
    /// [`BUSY_BACKOFF_MAX`](crate::bounds::BUSY_BACKOFF_MAX)); not a fault.
    pub fn busy(&self, peer: usize) {
        let mut s = self.lock();
        let p = &mut s.peers[peer];
        p.busy_until = Some(self.now() + busy_pause(p.busy));
        p.busy += 1;
        self.changed.notify_all();
    }

    /// How long a connect to `peer` may take: [`FIRST_CONNECT_TIMEOUT`]
    /// until one has timed out since it last delivered, then
    /// [`CONNECT_TIMEOUT`].
    pub fn connect_timeout(&self, peer: usize) -> Duration {
        match self.lock().peers[peer].timeouts {
            0 => FIRST_CONNECT_TIMEOUT,
            _ => CONNECT_TIMEOUT,
        }
    }

    /// A connect to `peer` (or its TLS handshake) timed out. The short
    /// first one is no fault (in a crowd, SYNs are lost between peers that
    /// reach each other a moment later): the peer may be dialled again at
    /// once, with the full timeout. One that times out again is a strike.
    pub fn timed_out(&self, peer: usize) {
        let mut s = self.lock();
        s.peers[peer].timeouts += 1;
        if s.peers[peer].timeouts > 1 {
            self.strike_locked(&mut s, peer, Fault::Unreliable);
        }
        self.changed.notify_all();
    }

    /// Connecting to `peer` failed (no chunk was taken).
    pub fn strike(&self, peer: usize, fault: Fault) {
        let mut s = self.lock();
        self.strike_locked(&mut s, peer, fault);
        self.changed.notify_all();
    }

    pub(super) fn strike_locked(&self, s: &mut State, peer: usize, fault: Fault) {
        let slot = &mut s.peers[peer];
        slot.strikes += 1;
        if slot.banned {
            return;
        }
        if fault == Fault::BadData {
            account(s, peer, -1);
            s.peers[peer].banned = true;
        } else if slot.strikes >= MAX_STRIKES {
            slot.bench(self.now());
        }
    }

    /// Whether `peer` is banned for good (`Some(true)`) or benched for now
    /// (`Some(false)`), or usable (`None`).
    pub fn ban_state(&self, peer: usize) -> Option<bool> {
        let s = self.lock();
        let p = &s.peers[peer];
        if p.banned {
            Some(true)
        } else if p.benched_until.is_some_and(|t| t > self.now()) {
            Some(false)
        } else {
            None
        }
    }
}
