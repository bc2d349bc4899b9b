//! Port mapping: asking the home router to forward a public TCP port to
//! the chunk server, so that others can dial a peer behind NAT. NAT-PMP
//! (RFC 6886, by hand: [`wire`] is the pure encoding, [`natpmp`] the UDP
//! exchange) is asked first, being one datagram to the default gateway
//! that a router without it refuses at once; then UPnP IGD ([`upnp`],
//! through `igd-next`: SSDP discovery, SOAP). One thread (`port-map`,
//! [`keeper`]) maps at start, renews every `PORT_MAP_RENEW` (or at half a
//! shorter lease), tries again every `PORT_MAP_RETRY` while nothing
//! answers, and deletes the mapping when stopped.
//!
//! The external address is only a *candidate* until a dial-back from
//! outside reaches it ([`PortMap::confirm`], the tracker's `WHOAMI`): a
//! router behind another NAT (a carrier's) maps a port nobody outside can
//! reach. A peer with no tracker has nothing to check with and offers it
//! unchecked (`needs_check` false).
//!
//! Invariants: at most one mapping is held at a time, by the thread; it is
//! deleted before the thread ends; [`PortMap::offered`] is an address whose
//! lease has not run out, and, when a check is needed, the one checked.

mod gateway;
mod keeper;
pub mod natpmp;
#[cfg(test)]
mod tests;
pub mod upnp;
pub mod wire;

use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use self::keeper::Config;
use self::keeper::Keeper;
use crate::net::stop::StopSignal;
use crate::sync::{LockExt, Unpoisoned};

/// Which protocol holds a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    #[serde(rename = "nat-pmp")]
    NatPmp,
    #[serde(rename = "upnp")]
    Upnp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::NatPmp => "NAT-PMP",
            Protocol::Upnp => "UPnP",
        }
    }
}

/// A mapping a router granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    pub protocol: Protocol,
    /// Our address the router forwards to.
    pub internal: SocketAddrV4,
    /// The router's public address and the port it forwards.
    pub external: SocketAddrV4,
    /// How long it lasts (`None`: until deleted; UPnP routers that only
    /// take permanent leases).
    pub lease: Option<Duration>,
}

/// Why no mapping was made, renewed or deleted.
#[derive(Debug, Error)]
pub enum MapError {
    #[error("no answer from the router at {0}")]
    NoAnswer(SocketAddr),
    #[error("NAT-PMP: {0}")]
    NatPmp(#[from] wire::WireError),
    #[error("UPnP: {0}")]
    Upnp(String),
    #[error("the router has no usable external address ({0})")]
    NoExternal(IpAddr),
    #[error("no router that maps ports: {0}")]
    NoRouter(String),
    #[error("not needed: this host's address {0} is public")]
    Public(std::net::Ipv4Addr),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A router spoken to with one protocol.
pub trait Router: Send {
    fn protocol(&self) -> Protocol;
    /// Maps TCP port `internal` of ours, asking for external port `wanted`
    /// (the router may give another), for `lease`; renewing is asking again.
    fn map(&mut self, internal: u16, wanted: u16, lease: Duration) -> Result<Granted, MapError>;
    /// Deletes what [`map`](Self::map) granted.
    fn unmap(&mut self, granted: &Granted) -> Result<(), MapError>;
}

/// Finds a router (each attempt after a failure finds it again).
pub type Discover = Box<dyn FnMut() -> Result<Box<dyn Router>, MapError> + Send>;

/// What `status` and `/api/status` say of port mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapView {
    /// A mapping is held (its lease has not run out).
    pub mapped: bool,
    pub protocol: Option<Protocol>,
    /// The router's public `IP:PORT` that forwards to us.
    pub external: Option<String>,
    /// Seconds the lease has left (`null`: no mapping, or a permanent one).
    pub lease_secs_left: Option<u64>,
    /// Whether the external address is offered to others (in tickets).
    pub offered: bool,
    /// No attempt has ended yet.
    pub trying: bool,
    /// Why the last attempt failed (`null`: it did not).
    pub error: Option<String>,
}

/// What the thread learned; read by `status`, tickets and the dial-back.
#[derive(Default)]
struct State {
    held: Option<(Granted, Instant)>,
    /// The external address a dial-back reached.
    confirmed: Option<SocketAddrV4>,
    error: Option<String>,
    /// Attempts ended (mapped or failed), for [`PortMap::wait_first`].
    attempts: u64,
    /// The thread has ended (the mapping deleted, or tried to be).
    ended: bool,
}

impl State {
    /// The held mapping while its lease lasts.
    fn live(&self, now: Instant) -> Option<&Granted> {
        let (g, at) = self.held.as_ref()?;
        let lasts = g.lease.is_none_or(|l| now < *at + l);
        lasts.then_some(g)
    }
}

/// State behind its lock, with the condition variable that wakes waiters
/// on each attempt's end and the thread's.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.locked());
        self.changed.notify_all();
    }

    /// Waits (at most until `until`) for `done` to hold.
    fn wait_for(&self, until: Instant, done: impl Fn(&State) -> bool) -> bool {
        let mut state = self.state.locked();
        while !done(&state) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self.changed.wait_timeout(state, left).unpoisoned().0;
        }
        true
    }
}

/// The port-mapping thread and what it holds; the mapping is deleted when
/// [`release`](Self::release)d or dropped.
pub struct PortMap {
    shared: Arc<Shared>,
    stop: Arc<StopSignal>,
    needs_check: bool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl PortMap {
    /// Maps `listen`'s port on whatever router answers (NAT-PMP, then
    /// UPnP), from `listen`'s address.
    pub fn spawn(listen: SocketAddr, needs_check: bool) -> std::io::Result<PortMap> {
        // Routers map IPv4: a peer on every IPv6 address (and IPv4 through
        // it) speaks to them from every IPv4 one.
        let bind = match listen.ip() {
            IpAddr::V6(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
            v4 => v4,
        };
        let discover: Discover = Box::new(move || keeper::discover(bind));
        PortMap::spawn_with(discover, listen.port(), Config::default(), needs_check)
    }

    /// [`spawn`](Self::spawn) if `wanted` and it [`applies`] to `listen`.
    pub fn start_if(
        wanted: bool,
        listen: SocketAddr,
        needs_check: bool,
    ) -> std::io::Result<Option<Arc<PortMap>>> {
        match wanted && applies(listen) {
            true => Ok(Some(Arc::new(PortMap::spawn(listen, needs_check)?))),
            false => Ok(None),
        }
    }

    /// The same with routers from `discover` and the given timing.
    pub fn spawn_with(
        discover: Discover,
        internal: u16,
        config: Config,
        needs_check: bool,
    ) -> std::io::Result<PortMap> {
        let shared = Arc::new(Shared::default());
        let stop = StopSignal::new();
        let keeper = Keeper::new(
            discover,
            internal,
            config,
            Arc::clone(&shared),
            Arc::clone(&stop),
        );
        let thread = thread::Builder::new()
            .name("port-map".into())
            .spawn(move || keeper.run())?;
        Ok(PortMap {
            shared,
            stop,
            needs_check,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The router's public address for us while a mapping is held, checked
    /// or not: what a dial-back should try.
    pub fn candidate(&self) -> Option<SocketAddr> {
        let state = self.shared.state.locked();
        state.live(Instant::now()).map(|g| g.external.into())
    }

    /// A dial-back from outside reached this peer at `reached`: if that is
    /// the candidate, it is offered from now on (until the router gives
    /// another). Returns whether it was.
    pub fn confirm(&self, reached: SocketAddr) -> bool {
        let SocketAddr::V4(reached) = reached else {
            return false;
        };
        let mut fits = false;
        self.shared.update(|state| {
            fits = state
                .live(Instant::now())
                .is_some_and(|g| g.external == reached);
            if fits {
                state.confirmed = Some(reached);
            }
        });
        fits
    }

    /// Waits at most `timeout` until a mapping the router gave is checked
    /// and offered (or there is none, or it needs no check); whether one
    /// is offered then.
    pub fn wait_offered(&self, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        self.shared
            .wait_for(until, |s| match s.live(Instant::now()) {
                Some(g) => !self.needs_check || s.confirmed == Some(g.external),
                None => true,
            });
        self.offered().is_some()
    }

    /// The external address others are given (tickets), if any.
    pub fn offered(&self) -> Option<SocketAddr> {
        let state = self.shared.state.locked();
        let g = state.live(Instant::now())?;
        let checked = !self.needs_check || state.confirmed == Some(g.external);
        checked.then_some(g.external.into())
    }

    pub fn view(&self) -> PortMapView {
        let offered = self.offered().is_some();
        let now = Instant::now();
        let state = self.shared.state.locked();
        let live = state.live(now);
        let left = state
            .held
            .and_then(|(g, at)| Some((at + g.lease?).saturating_duration_since(now).as_secs()));
        PortMapView {
            mapped: live.is_some(),
            protocol: live.map(|g| g.protocol),
            external: live.map(|g| g.external.to_string()),
            lease_secs_left: live.and(left),
            offered,
            trying: state.attempts == 0 && !state.ended,
            error: state.error.clone(),
        }
    }

    /// Waits at most `timeout` for the first attempt to end; whether it
    /// did.
    pub fn wait_first(&self, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        self.shared.wait_for(until, |s| s.attempts > 0 || s.ended)
    }

    /// Stops the thread, which deletes the mapping, now; the guard waits
    /// for that when dropped, at most `timeout` from now (so the caller
    /// can do something else meanwhile: unregister from the tracker).
    pub fn releasing(&self, timeout: Duration) -> Releasing<'_> {
        self.stop.stop();
        Releasing {
            map: self,
            until: Instant::now() + timeout,
        }
    }

    /// Stops the thread, which deletes the mapping; waits at most until
    /// `until` for that (a router that does not answer keeps it until its
    /// lease runs out). Returns whether the thread ended.
    pub fn release(&self, until: Instant) -> bool {
        self.stop.stop();
        if !self.shared.wait_for(until, |s| s.ended) {
            return false;
        }
        if let Some(thread) = self.thread.locked().take() {
            let _ = thread.join();
        }
        true
    }
}

/// A release under way; waited for (bounded) when dropped.
pub struct Releasing<'a> {
    map: &'a PortMap,
    until: Instant,
}

impl Drop for Releasing<'_> {
    fn drop(&mut self) {
        self.map.release(self.until);
    }
}

/// Whether a peer listening on `listen` can use a mapping: an IPv4 (or
/// every) address that is not loopback. Routers map IPv4 only; a peer
/// bound to loopback cannot be forwarded to.
pub fn applies(listen: SocketAddr) -> bool {
    match listen.ip() {
        IpAddr::V4(ip) => !ip.is_loopback(),
        IpAddr::V6(ip) => ip.is_unspecified(),
    }
}

impl Drop for PortMap {
    fn drop(&mut self) {
        self.release(Instant::now() + crate::bounds::LEAVE_TIMEOUT);
    }
}
