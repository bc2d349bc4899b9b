//! Control connections: a peer others cannot dial says `LISTEN <port>` on
//! an authenticated TLS connection and keeps it open; the tracker then
//! writes [`ControlLine`]s on it (a `PING` every `ping`, a `JOIN` when
//! someone asks for a relayed connection) and reads one answer to each.
//! The pings keep the connection inside the tracker's own idle timeout
//! and the NAT's mapping warm, and show that the peer is still there.
//!
//! A peer that names the local port its control connection comes from
//! (`LISTEN <port> <from port>`) is marked by whether its NAT kept that
//! port ([`Via`]), and `PEERS` rows of version 3 carry the mark.
//!
//! Invariants: at most [`TRACKER_LISTENERS`] control connections, one per
//! peer id (a new `LISTEN` replaces the old, whose thread then ends); an
//! entry lives exactly as long as its connection's thread serves it
//! ([`Held`] removes it, and only its own).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Mutex;
use std::time::Duration;

use crate::bounds::{CONTROL_QUEUED, CONTROL_REPLY, TRACKER_LISTENERS};
use crate::error::Result;
use crate::identity::PeerId;
use crate::protocol::nat_msg::{ControlLine, Via};
use crate::protocol::{Connection, PeerEntry, Reply};
use crate::sync::LockExt;

/// The control connections held now, by peer id.
#[derive(Default)]
pub struct Listeners {
    held: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    by_id: HashMap<PeerId, Entry>,
    /// Tells an entry from the one that replaced it.
    next: u64,
    /// Set at shutdown: no new entry.
    closed: bool,
}

struct Entry {
    seq: u64,
    to: SyncSender<ControlLine>,
    observed: SocketAddr,
    /// The IP seen with the port `LISTEN` named: where a punch goes.
    listens: SocketAddr,
    /// How others reach it: a punch, unless its NAT changed the port the
    /// connection came from (then only the relay).
    via: Via,
}

/// A `LISTEN <port> [<from port>]` from peer `id`.
pub struct Listen {
    pub id: PeerId,
    pub port: u16,
    pub from: Option<u16>,
}

impl Listen {
    /// How others can reach the peer, its connection seen from `observed`:
    /// a NAT that maps the local port to another (symmetric NATs, Linux
    /// `masquerade fully-random`) defeats a punch, which connects from the
    /// listen port and to the other's. A peer that did not say its port
    /// (older) is taken to be punchable.
    fn via(&self, observed: SocketAddr) -> Via {
        match self.from {
            Some(from) if from != observed.port() => Via::Relay,
            _ => Via::Punch,
        }
    }
}

/// Why a line could not be handed to a listening peer.
#[derive(Debug, PartialEq, Eq)]
pub enum NotSent {
    /// No control connection from that id.
    NotListening,
    /// Its queue is full (it is slow to answer).
    Busy,
}

impl Listeners {
    /// Control connections held now.
    pub fn count(&self) -> usize {
        self.held.locked().by_id.len()
    }

    /// Where `id`'s control connection comes from, if it holds one.
    pub fn observed(&self, id: &PeerId) -> Option<SocketAddr> {
        self.held.locked().by_id.get(id).map(|e| e.observed)
    }

    /// Where `id` listens as seen from here (the IP its control connection
    /// comes from, the port its `LISTEN` named), if it holds one.
    pub fn listens(&self, id: &PeerId) -> Option<SocketAddr> {
        self.held.locked().by_id.get(id).map(|e| e.listens)
    }

    /// How each of `rows` is reached, for those that hold a control
    /// connection here (one lock for all).
    pub fn mark(&self, rows: &mut [PeerEntry]) {
        let table = self.held.locked();
        for row in rows {
            if let Some(entry) = row.id.and_then(|id| table.by_id.get(&id)) {
                row.via = entry.via;
            }
        }
    }

    /// Queues `line` for `id`'s control connection.
    pub fn send(&self, id: &PeerId, line: ControlLine) -> std::result::Result<(), NotSent> {
        let table = self.held.locked();
        let entry = table.by_id.get(id).ok_or(NotSent::NotListening)?;
        entry.to.try_send(line).map_err(|e| match e {
            TrySendError::Full(_) => NotSent::Busy,
            TrySendError::Disconnected(_) => NotSent::NotListening,
        })
    }

    /// Ends `id`'s control connection, if it holds one (it was just found
    /// reachable directly): its thread wakes and closes it, and rows stop
    /// marking the peer behind NAT at once, not when a ping finds the
    /// connection gone.
    pub fn forget(&self, id: &PeerId) {
        if self.held.locked().by_id.remove(id).is_some() {
            log::info!("{id} is reachable directly: its control connection ends");
        }
    }

    /// Ends every control connection (at shutdown): their threads wake.
    pub fn close(&self) {
        let mut table = self.held.locked();
        table.closed = true;
        table.by_id.clear();
    }

    /// Takes an entry for `listen` at `observed`, replacing its old one;
    /// `None` when [`TRACKER_LISTENERS`] others are held.
    fn hold(
        &self,
        listen: &Listen,
        observed: SocketAddr,
    ) -> Option<(Held<'_>, Receiver<ControlLine>)> {
        let id = listen.id;
        let mut table = self.held.locked();
        let full = table.by_id.len() >= TRACKER_LISTENERS && !table.by_id.contains_key(&id);
        if full || table.closed {
            return None;
        }
        let (to, from) = mpsc::sync_channel(CONTROL_QUEUED);
        table.next += 1;
        let seq = table.next;
        let listens = SocketAddr::new(observed.ip(), listen.port);
        let entry = Entry {
            seq,
            to,
            observed,
            listens,
            via: listen.via(observed),
        };
        table.by_id.insert(id, entry);
        let held = Held {
            listeners: self,
            id,
            seq,
        };
        Some((held, from))
    }
}

/// One thread's hold on its entry; removes it (if still its own) on drop.
struct Held<'a> {
    listeners: &'a Listeners,
    id: PeerId,
    seq: u64,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut table = self.listeners.held.locked();
        if table.by_id.get(&self.id).is_some_and(|e| e.seq == self.seq) {
            table.by_id.remove(&self.id);
        }
    }
}

/// Serves `listen` on `conn` until the peer stops answering, another
/// `LISTEN` of that id replaces it, or the tracker stops.
pub fn serve(
    conn: &mut Connection,
    listen: Listen,
    listeners: &Listeners,
    ping: Duration,
) -> Result<()> {
    let observed = conn.peer_addr();
    let id = listen.id;
    let Some((_held, lines)) = listeners.hold(&listen, observed) else {
        conn.write_all(Reply::err(crate::protocol::conn::BUSY).encode().as_bytes())?;
        return Ok(());
    };
    conn.write_all(
        Reply::ok(format!("listening {observed}"))
            .encode()
            .as_bytes(),
    )?;
    conn.set_reply_timeout(CONTROL_REPLY);
    log::info!("{id} at {observed} holds a control connection");
    loop {
        let line = match lines.recv_timeout(ping) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => ControlLine::Ping,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        conn.write_all(line.encode().as_bytes())?;
        conn.read_reply()?;
    }
}
