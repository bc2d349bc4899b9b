//! What the tracker does for peers behind NAT: reflection and dial-back
//! (`WHOAMI`), control connections (`LISTEN`, [`control`]), introductions
//! for a hole punch (`PUNCH`, [`punch`]) and the relay (`RELAY`, `JOIN`,
//! [`relay`]). Served on the tracker's one port.
//!
//! Invariant: the tracker dials only the IP address a question came from,
//! at the port it names, pinned to the id its certificate proved; no
//! request makes it connect anywhere else, so it cannot be turned on a
//! third party.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use self::control::Listeners;
use self::punch::Punches;
use self::relay::{Relay, RelayView};
use crate::bounds::{CONTROL_PING, DIAL_BACKS, DIAL_BACK_TIMEOUT};
use crate::error::Result;
use crate::identity::PeerId;
use crate::net::tls::Tls;
use crate::protocol::conn::BUSY;
use crate::protocol::message::hello_line;
use crate::protocol::nat_msg::Reflection;
use crate::protocol::{Connection, Reply, TrackerRequest};
use crate::server::Flow;

/// The refusal of a NAT verb that needs to know who asks.
pub const NAT_NOT_AUTHENTICATED: &str =
    "authentication required: WHOAMI <port>, LISTEN, PUNCH and RELAY need a TLS connection with a client certificate";

pub mod control;
pub mod punch;
pub mod relay;

/// The refusal of `RELAY` and `JOIN` by a tracker without `--relay`.
pub const NO_RELAY: &str = "this tracker does not relay (started without --relay)";

/// How the tracker serves peers behind NAT.
#[derive(Clone, Debug)]
pub struct NatOptions {
    /// How often a control connection is pinged ([`CONTROL_PING`]).
    pub ping: Duration,
    /// Run the relay (`--relay`), passing at most `rate` bytes per second
    /// in all (`--relay-rate`; `None`: no cap).
    pub relay: bool,
    pub relay_rate: Option<u64>,
}

impl Default for NatOptions {
    fn default() -> Self {
        NatOptions {
            ping: CONTROL_PING,
            relay: false,
            relay_rate: None,
        }
    }
}

/// The NAT services in the tracker's `/api/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatView {
    /// Control connections held (peers others cannot dial).
    pub control_connections: usize,
    /// Hole-punch introductions made within the last `PUNCH_TIME`.
    #[serde(default)]
    pub punching: usize,
    /// `null`: started without `--relay`.
    pub relay: Option<RelayView>,
}

/// The tracker's NAT services, shared by its connection threads.
pub struct Nat {
    /// The tracker's identity, which a dial-back presents.
    tls: Tls,
    options: NatOptions,
    /// Dial-backs running now (≤ [`DIAL_BACKS`]).
    dialling: AtomicUsize,
    pub listeners: Listeners,
    punches: Punches,
    relay: Option<Arc<Relay>>,
}

impl Nat {
    pub fn new(tls: Tls, options: NatOptions) -> Nat {
        Nat {
            tls,
            dialling: AtomicUsize::new(0),
            listeners: Listeners::default(),
            punches: Punches::default(),
            relay: options
                .relay
                .then(|| Arc::new(Relay::new(options.relay_rate))),
            options,
        }
    }

    /// The TLS server configuration of the tracker's port.
    pub fn server_config(&self) -> std::sync::Arc<rustls::ServerConfig> {
        std::sync::Arc::clone(&self.tls.server_optional)
    }

    pub fn view(&self) -> NatView {
        NatView {
            control_connections: self.listeners.count(),
            punching: self.punches.recent(),
            relay: self.relay.as_ref().map(|r| r.view()),
        }
    }

    /// Ends what holds connections open (control connections), at shutdown.
    pub fn close(&self) {
        self.listeners.close();
    }

    /// Whether `req` is one of the verbs [`serve`](Self::serve) answers.
    pub fn handles(req: &TrackerRequest) -> bool {
        matches!(
            req,
            TrackerRequest::WhoAmI { .. }
                | TrackerRequest::Listen { .. }
                | TrackerRequest::Relay { .. }
                | TrackerRequest::Join { .. }
                | TrackerRequest::Punch { .. }
        )
    }

    /// Answers one NAT verb on `conn`, from a client proved to be `who`.
    pub fn serve(
        &self,
        req: &TrackerRequest,
        conn: &mut Connection,
        who: Option<PeerId>,
    ) -> Result<Flow> {
        let reply = match (req, who) {
            (TrackerRequest::WhoAmI { port }, _) => self.whoami(conn.peer_addr(), who, *port),
            (TrackerRequest::Listen { port, from }, Some(id)) => {
                let held = control::Listen {
                    id,
                    port: *port,
                    from: *from,
                };
                control::serve(conn, held, &self.listeners, self.options.ping)?;
                return Ok(Flow::Close);
            }
            (
                TrackerRequest::Listen { .. }
                | TrackerRequest::Relay { .. }
                | TrackerRequest::Punch { .. },
                None,
            ) => Reply::err(NAT_NOT_AUTHENTICATED),
            (TrackerRequest::Punch { peer, port }, Some(id)) => {
                let from = conn.peer_addr();
                self.punches
                    .introduce(id, from, *port, *peer, &self.listeners)
            }
            (TrackerRequest::Relay { peer }, Some(id)) => match &self.relay {
                Some(relay) => relay.ask(id, *peer, &self.listeners),
                None => Reply::err(NO_RELAY),
            },
            (TrackerRequest::Join { token }, _) => {
                match &self.relay {
                    Some(relay) => relay.join(*token, conn)?,
                    None => conn.write_all(Reply::err(NO_RELAY).encode().as_bytes())?,
                }
                return Ok(Flow::Close);
            }
            _ => Reply::err("not a NAT verb"),
        };
        conn.write_all(reply.encode().as_bytes())?;
        Ok(Flow::Continue)
    }

    /// `WHOAMI [<port>]`: the address seen and, with a port, whether a
    /// pinned TLS connection to that port at the IP seen gets `HELLO`
    /// answered.
    fn whoami(&self, from: SocketAddr, who: Option<PeerId>, port: Option<u16>) -> Reply {
        let Some(port) = port else {
            return reflect(from, None);
        };
        let Some(id) = who else {
            return Reply::err(NAT_NOT_AUTHENTICATED);
        };
        let Some(_running) = Counted::take(&self.dialling, DIAL_BACKS) else {
            return Reply::err(BUSY);
        };
        let to = SocketAddr::new(from.ip(), port);
        let reached = dial_back(to, id, &self.tls);
        match &reached {
            Ok(()) => self.listeners.forget(&id),
            Err(e) => log::debug!("dial-back to {to} ({id}): {e}"),
        }
        reflect(from, Some(reached.is_ok()))
    }
}

fn reflect(observed: SocketAddr, reachable: Option<bool>) -> Reply {
    Reply::ok(
        Reflection {
            observed,
            reachable,
        }
        .encode(),
    )
}

/// Connects to `to` as `tls`, pinned to `id`, and says `HELLO`.
fn dial_back(to: SocketAddr, id: PeerId, tls: &Tls) -> Result<()> {
    let mut conn = Connection::connect_tls(&to.to_string(), tls, Some(id), DIAL_BACK_TIMEOUT)?;
    conn.set_reply_timeout(DIAL_BACK_TIMEOUT);
    conn.request(&hello_line()).map(drop)
}

/// One of at most `cap` things counted in a counter, given back on drop.
pub(crate) struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    pub(crate) fn take(counter: &'a AtomicUsize, cap: usize) -> Option<Counted<'a>> {
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .ok()
            .map(|_| Counted(counter))
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod punch_tests;
#[cfg(test)]
mod relay_tests;
#[cfg(test)]
pub(crate) mod tests;
