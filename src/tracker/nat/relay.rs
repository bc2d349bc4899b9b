//! The relay (`tracker --relay`): a downloader that cannot dial a peer
//! asks `RELAY <peer id>`; if that peer holds a control connection, the
//! tracker makes a single-use token, tells the peer `JOIN <token>` on its
//! control connection and answers the downloader `OK <token>`. Each side
//! then opens a plain connection to the tracker's port and says `JOIN
//! <token>`; the second to arrive pairs them (`OK paired` to both), and
//! from then on the two connections are spliced (`net::splice`). The
//! peers run TLS 1.3 inside, the downloader as the client pinned to the
//! peer's id, so the relay sees only ciphertext and cannot stand in for
//! either.
//!
//! Invariants: a token pairs at most two connections, once, within
//! [`RELAY_PAIR_TIMEOUT`] of its making; sessions pending and live are at
//! most [`RELAY_SESSIONS`], at most [`RELAY_PER_PEER`] with one id at
//! either end; a live session's entry goes when both its directions end
//! ([`Live`] is dropped by the last).

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use super::control::{Listeners, NotSent};
use crate::bounds::{RELAY_IDLE, RELAY_PAIR_TIMEOUT, RELAY_PER_PEER, RELAY_SESSIONS};
use crate::error::Result;
use crate::identity::PeerId;
use crate::net::rate::RateCap;
use crate::net::splice::{pump, Splice};
use crate::protocol::conn::BUSY;
use crate::protocol::nat_msg::{ControlLine, Token};
use crate::protocol::{Connection, Reply};
use crate::sync::LockExt;

/// The refusal of a `JOIN` whose token is not (or no longer) pending.
pub const NO_SUCH_TOKEN: &str = "unknown, used or expired token";

/// The refusal of a first `JOIN` whose partner did not join in time.
pub const PARTNER_LATE: &str = "the other side did not join in time";

/// The relay's sessions, caps and counters.
pub struct Relay {
    /// `--relay-rate`: all sessions together, both directions.
    cap: RateCap,
    table: Mutex<Table>,
    /// Bytes relayed, both directions, since start.
    bytes: AtomicU64,
    /// `RELAY`s refused busy (at a cap).
    refused: AtomicU64,
}

#[derive(Default)]
struct Table {
    pending: HashMap<Token, Pending>,
    /// Live sessions: their two ends.
    live: HashMap<u64, [PeerId; 2]>,
    next: u64,
}

struct Pending {
    ends: [PeerId; 2],
    expires: Instant,
    /// The first to `JOIN`, waiting for the second.
    parked: Option<Parked>,
}

struct Parked {
    /// The first joiner's socket, for the second to write to.
    writer: TcpStream,
    wake: SyncSender<Paired>,
}

/// What the second joiner hands the first.
struct Paired {
    partner: TcpStream,
    splice: Arc<Splice>,
    live: Arc<Live>,
}

/// A live session's entry, removed when the last direction drops this.
struct Live {
    relay: Arc<Relay>,
    n: u64,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.relay.table.locked().live.remove(&self.n);
    }
}

/// The relay in the tracker's `/api/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayView {
    /// Sessions spliced now, and pairings waiting for their `JOIN`s.
    pub sessions: usize,
    pub pending: usize,
    /// Bytes relayed since start, both directions.
    pub bytes: u64,
    /// `RELAY`s refused busy (a cap reached).
    pub refused: u64,
    /// `--relay-rate` in bytes per second (`null`: none).
    pub rate: Option<u64>,
}

impl Table {
    fn purge(&mut self, now: Instant) {
        self.pending.retain(|_, p| p.expires > now);
    }

    fn sessions(&self) -> usize {
        self.pending.len() + self.live.len()
    }

    fn with(&self, id: &PeerId) -> usize {
        let ends = self
            .pending
            .values()
            .map(|p| &p.ends)
            .chain(self.live.values());
        ends.filter(|e| e.contains(id)).count()
    }
}

impl Relay {
    /// A relay passing at most `rate` bytes per second in all.
    pub fn new(rate: Option<u64>) -> Relay {
        Relay {
            cap: RateCap::new(rate),
            table: Mutex::default(),
            bytes: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    pub fn view(&self) -> RelayView {
        let table = self.table.locked();
        RelayView {
            sessions: table.live.len(),
            pending: table.pending.len(),
            bytes: self.bytes.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            rate: self.cap.get(),
        }
    }

    /// `RELAY <to>` from `from`: a token, told to `to` on its control
    /// connection, or why not.
    pub fn ask(&self, from: PeerId, to: PeerId, listeners: &Listeners) -> Reply {
        self.ask_at(from, to, listeners, Instant::now())
    }

    /// [`ask`](Self::ask) at `now`: the token expires
    /// [`RELAY_PAIR_TIMEOUT`] after it (time passed in, so tests can tell
    /// a late `JOIN` without waiting).
    pub(crate) fn ask_at(
        &self,
        from: PeerId,
        to: PeerId,
        listeners: &Listeners,
        now: Instant,
    ) -> Reply {
        if from == to {
            return Reply::err("cannot relay a peer to itself");
        }
        let not_listening = || Reply::err(format!("{to} is not reachable through this tracker"));
        if listeners.observed(&to).is_none() {
            return not_listening();
        }
        let mut bytes = [0u8; 16];
        if SystemRandom::new().fill(&mut bytes).is_err() {
            return Reply::err("no randomness for a token");
        }
        let token = Token(bytes);
        {
            let mut table = self.table.locked();
            table.purge(now);
            let full = table.sessions() >= RELAY_SESSIONS
                || table.with(&from) >= RELAY_PER_PEER
                || table.with(&to) >= RELAY_PER_PEER;
            if full {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return Reply::err(BUSY);
            }
            let pending = Pending {
                ends: [from, to],
                expires: now + RELAY_PAIR_TIMEOUT,
                parked: None,
            };
            table.pending.insert(token, pending);
        }
        match listeners.send(&to, ControlLine::Join(token)) {
            Ok(()) => Reply::ok(token.to_string()),
            Err(why) => {
                self.table.locked().pending.remove(&token);
                match why {
                    NotSent::NotListening => not_listening(),
                    NotSent::Busy => Reply::err(BUSY),
                }
            }
        }
    }

    /// `JOIN <token>` on `conn`: parks it until the other side joins, or
    /// pairs it with the side already parked, then splices the two until
    /// the session ends. Writes its own refusals.
    pub fn join(self: &Arc<Self>, token: Token, conn: &mut Connection) -> Result<()> {
        self.join_at(token, conn, Instant::now())
    }

    /// [`join`](Self::join) at `now`: a token whose expiry is not after
    /// `now` is refused, and a first side waits for its partner until the
    /// expiry counted from `now` (a real wait, of that length).
    pub(crate) fn join_at(
        self: &Arc<Self>,
        token: Token,
        conn: &mut Connection,
        now: Instant,
    ) -> Result<()> {
        let (tcp, early) = match conn.detach_plain() {
            Some(parts) => parts?,
            None => {
                let refusal = Reply::err("JOIN needs a plain connection: the ends run TLS inside");
                return conn.write_all(refusal.encode().as_bytes());
            }
        };
        let role = {
            let mut table = self.table.locked();
            table.purge(now);
            match table.pending.get_mut(&token) {
                None => None,
                Some(p) if p.parked.is_none() => {
                    let (wake, woken) = mpsc::sync_channel(1);
                    let writer = tcp.try_clone()?;
                    p.parked = Some(Parked { writer, wake });
                    Some(Role::First(woken, p.expires.saturating_duration_since(now)))
                }
                Some(_) => {
                    let p = table
                        .pending
                        .remove(&token)
                        .and_then(|p| p.parked.map(|k| (p.ends, k)));
                    p.map(|(ends, parked)| {
                        table.next += 1;
                        let n = table.next;
                        table.live.insert(n, ends);
                        Role::Second(parked, n)
                    })
                }
            }
        };
        match role {
            None => conn.write_all(Reply::err(NO_SUCH_TOKEN).encode().as_bytes()),
            Some(Role::First(woken, left)) => {
                self.wait_for_partner(token, conn, &tcp, &early, woken, left)
            }
            Some(Role::Second(parked, n)) => {
                let live = Arc::new(Live {
                    relay: Arc::clone(self),
                    n,
                });
                let splice = Arc::new(Splice::new(RELAY_IDLE));
                let paired = Reply::ok("paired").encode();
                // Both hear `OK paired` before either's bytes can cross.
                (&parked.writer).write_all(paired.as_bytes())?;
                (&tcp).write_all(paired.as_bytes())?;
                let handed = Paired {
                    partner: tcp.try_clone()?,
                    splice: Arc::clone(&splice),
                    live: Arc::clone(&live),
                };
                if parked.wake.send(handed).is_ok() {
                    self.pump(&tcp, &parked.writer, &early, &splice);
                }
                Ok(())
            }
        }
    }

    fn wait_for_partner(
        &self,
        token: Token,
        conn: &mut Connection,
        tcp: &TcpStream,
        early: &[u8],
        woken: Receiver<Paired>,
        left: Duration,
    ) -> Result<()> {
        match woken.recv_timeout(left) {
            Ok(paired) => {
                self.pump(tcp, &paired.partner, early, &paired.splice);
                drop(paired.live);
                Ok(())
            }
            Err(_) => {
                self.table.locked().pending.remove(&token);
                conn.write_all(Reply::err(PARTNER_LATE).encode().as_bytes())
            }
        }
    }

    /// One direction: `early` (sent before the pairing) first, then the rest.
    fn pump(&self, from: &TcpStream, to: &TcpStream, early: &[u8], splice: &Splice) {
        if !early.is_empty() && (&*to).write_all(early).is_err() {
            return;
        }
        self.bytes.fetch_add(early.len() as u64, Ordering::Relaxed);
        pump(from, to, splice, &self.cap, &self.bytes);
    }
}

/// Where a `JOIN` stands.
enum Role {
    /// First to join: waits to be woken for as long as the token has left.
    First(Receiver<Paired>, Duration),
    /// Second: the first's socket, and the session's number.
    Second(Parked, u64),
}
