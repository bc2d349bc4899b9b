//! The `port-map` thread: find a router, map, renew, retry, and delete
//! the mapping when stopped. One attempt at a time; each wait between
//! attempts ends at once on a stop. A router that fails an attempt is
//! found again before the next (it may have been replaced), but is still
//! asked to delete what it granted when the thread ends.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::natpmp::NatPmp;
use super::upnp::Upnp;
use super::{gateway, wire, Discover, Granted, MapError, Router, Shared};
use crate::bounds::{PORT_MAP_LEASE, PORT_MAP_RENEW, PORT_MAP_RETRY};
use crate::net::stop::StopSignal;

/// The keeper's timing (the bounds', or a test's).
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// The lease asked for.
    pub lease: Duration,
    /// Renew after this (or half the lease granted, if shorter).
    pub renew: Duration,
    /// The next attempt after a failed one.
    pub retry: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lease: PORT_MAP_LEASE,
            renew: PORT_MAP_RENEW,
            retry: PORT_MAP_RETRY,
        }
    }
}

impl Config {
    /// When to renew a mapping granted for `lease`.
    pub fn renew_after(&self, lease: Option<Duration>) -> Duration {
        let renew = match lease {
            Some(lease) => self.renew.min(lease / 2),
            None => self.renew,
        };
        renew.max(Duration::from_millis(10))
    }
}

/// The router found first: NAT-PMP at the default gateway, else UPnP. A
/// host whose address toward its gateway is public has no NAT to map
/// through (a server), and asks nothing.
pub fn discover(bind: IpAddr) -> Result<Box<dyn Router>, MapError> {
    let natpmp = match gateway::default_gateway() {
        Ok(Some(gw)) => {
            if let Ok(IpAddr::V4(local)) = gateway::local_ip_toward(gw.into(), bind) {
                if gateway::is_public(local) {
                    return Err(MapError::Public(local));
                }
            }
            let at = SocketAddr::new(gw.into(), wire::PORT);
            match NatPmp::new(at, bind)
                .map_err(MapError::Io)
                .and_then(|n| n.external().map(|_| n))
            {
                Ok(n) => return Ok(Box::new(n)),
                Err(e) => format!("NAT-PMP: {e}"),
            }
        }
        Ok(None) => "NAT-PMP: no default route".to_string(),
        Err(e) => format!("NAT-PMP: cannot read the routing table: {e}"),
    };
    match Upnp::discover(bind) {
        Ok(u) => Ok(Box::new(u)),
        Err(e) => Err(MapError::NoRouter(format!("{natpmp}; {e}"))),
    }
}

/// The thread's side of a [`super::PortMap`].
pub struct Keeper {
    discover: Discover,
    internal: u16,
    config: Config,
    shared: Arc<Shared>,
    stop: Arc<StopSignal>,
    /// The router last found; `stale` after a failure (found again next).
    router: Option<Box<dyn Router>>,
    stale: bool,
    /// What it granted last, and when.
    held: Option<Granted>,
}

impl Keeper {
    pub fn new(
        discover: Discover,
        internal: u16,
        config: Config,
        shared: Arc<Shared>,
        stop: Arc<StopSignal>,
    ) -> Keeper {
        Keeper {
            discover,
            internal,
            config,
            shared,
            stop,
            router: None,
            stale: true,
            held: None,
        }
    }

    pub fn run(mut self) {
        while !self.stop.is_stopped() {
            let next = self.attempt();
            self.shared.update(|s| s.attempts += 1);
            if self.stop.wait_timeout(next) {
                break;
            }
        }
        self.release();
    }

    /// Maps or renews; how long until the next attempt.
    fn attempt(&mut self) -> Duration {
        match self.map() {
            Ok(g) => {
                let at = Instant::now();
                self.held = Some(g);
                self.shared.update(|s| {
                    if s.held.is_none_or(|(old, _)| old.external != g.external) {
                        log::info!(
                            "port mapped: {} → {} ({})",
                            g.external,
                            g.internal,
                            g.protocol.name()
                        );
                    }
                    s.held = Some((g, at));
                    s.error = None;
                });
                self.config.renew_after(g.lease)
            }
            Err(e) => {
                log::info!("no port mapping: {e}");
                self.stale = true;
                self.shared.update(|s| s.error = Some(e.to_string()));
                self.config.retry
            }
        }
    }

    fn map(&mut self) -> Result<Granted, MapError> {
        if self.stale || self.router.is_none() {
            self.router = Some((self.discover)()?);
            self.stale = false;
        }
        let Some(router) = self.router.as_mut() else {
            return Err(MapError::NoRouter("none found".into()));
        };
        // Renewing asks for the port held, so the address given out stays.
        let wanted = self.held.map_or(self.internal, |g| g.external.port());
        router.map(self.internal, wanted, self.config.lease)
    }

    /// Deletes the mapping held, on the router that granted it.
    fn release(mut self) {
        if let (Some(router), Some(g)) = (self.router.as_mut(), self.held.take()) {
            match router.unmap(&g) {
                Ok(()) => log::info!("port mapping {} deleted", g.external),
                Err(e) => log::info!("could not delete port mapping {}: {e}", g.external),
            }
        }
        self.shared.update(|s| {
            s.held = None;
            s.confirmed = None;
            s.ended = true;
        });
    }
}
