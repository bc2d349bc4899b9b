//! [`RelayingDialer`]: a peer's direct ways first, then, for a pinned peer
//! the tracker lists, its [`Way::Relayed`]: the tracker's relay, with TLS
//! pinned to the peer's id end to end (see `peer::nat::relay`).
//!
//! A direct way gets [`RELAY_FALLBACK`] to connect when the relay can be
//! tried after it (a NAT that drops the SYN would otherwise cost the whole
//! connect timeout). A peer just reached only through the relay is dialled
//! through it first for [`RELAY_PREFER`], sparing every worker the direct
//! attempt; after that, direct is tried first again, so a download moves
//! to a direct connection once one works.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::net::SocketAddr;

use super::dialer::RelayedHold;
use super::{Dialed, Dialer, DirectDialer, Path, PeerAddr, Way};
use crate::bounds::{RELAY_FALLBACK, RELAY_PREFER, RELAY_PREFER_PEERS};
use crate::error::{Error, Result};
use crate::identity::PeerId;
use crate::net::stop::StopSignal;
use crate::net::tls::Tls;
use crate::peer::nat::relay;
use crate::peer::tracker_client::TrackerClient;
use crate::sync::LockExt;

/// Dials directly, then through `tracker`'s relay.
pub struct RelayingDialer {
    direct: DirectDialer,
    tls: Tls,
    tracker: TrackerClient,
    /// Peers whose latest connection was relayed: when, and the address
    /// each shows as.
    relayed: Mutex<HashMap<PeerId, (Instant, SocketAddr)>>,
    /// Relayed connections open now, by the address their peer shows as.
    live: Arc<Mutex<HashMap<SocketAddr, usize>>>,
}

impl RelayingDialer {
    pub fn new(tls: Tls, tracker: TrackerClient) -> RelayingDialer {
        RelayingDialer {
            direct: DirectDialer::new(tls.clone()),
            tls,
            tracker,
            relayed: Mutex::default(),
            live: Arc::default(),
        }
    }

    fn relayed_lately(&self, id: &PeerId) -> bool {
        let relayed = self.relayed.locked();
        relayed
            .get(id)
            .is_some_and(|(at, _)| at.elapsed() < RELAY_PREFER)
    }

    /// Notes how the latest connection to `to` was made.
    fn note(&self, to: &PeerAddr, relayed: bool) {
        let Some(id) = to.id else {
            return;
        };
        let mut map = self.relayed.locked();
        if !relayed {
            map.remove(&id);
            return;
        }
        if map.len() >= RELAY_PREFER_PEERS {
            map.retain(|_, (at, _)| at.elapsed() < RELAY_PREFER);
        }
        if map.len() < RELAY_PREFER_PEERS {
            map.insert(id, (Instant::now(), to.shown()));
        }
    }
}

impl Dialer for RelayingDialer {
    fn dial(&self, to: &PeerAddr, timeout: Duration, stop: &Arc<StopSignal>) -> Result<Dialed> {
        let mut ways = to.ways().to_vec();
        if to.id.is_some_and(|id| self.relayed_lately(&id)) {
            ways.sort_by_key(|w| !matches!(w, Way::Relayed(_)));
        }
        // With the relay to fall back on, a direct way that has not
        // connected within RELAY_FALLBACK is not waited for further: a
        // NAT that drops the SYN would otherwise cost the whole timeout.
        let relayable = to.id.is_some() && ways.iter().any(|w| matches!(w, Way::Relayed(_)));
        let direct_for = match relayable {
            true => timeout.min(RELAY_FALLBACK),
            false => timeout,
        };
        let (mut direct_error, mut relay_error) = (None, None);
        for way in ways {
            match (way, to.id) {
                (Way::Direct(_), _) => match self.direct.dial(&to.only(way), direct_for, stop) {
                    Ok(dialed) => {
                        self.note(to, false);
                        return Ok(dialed);
                    }
                    Err(e) => direct_error = Some(e),
                },
                (Way::Relayed(_), Some(id)) => {
                    match relay::dial(&self.tracker, &self.tls, id, timeout, stop) {
                        Ok((conn, guard)) => {
                            self.note(to, true);
                            let addr = to.shown();
                            *self.live.locked().entry(addr).or_default() += 1;
                            let hold = RelayedHold {
                                live: Arc::clone(&self.live),
                                addr,
                            };
                            return Ok(Dialed {
                                conn,
                                guard,
                                relayed: Some(hold),
                            });
                        }
                        Err(e) => relay_error = Some(e),
                    }
                }
                (Way::Relayed(_), None) => {}
            }
        }
        // A tracker that will not relay this peer (none runs, or the peer
        // holds no control connection) says why in words; the direct
        // way's failure is the one worth showing then.
        Err(match (direct_error, relay_error) {
            (Some(direct), Some(Error::Remote(_)) | None) => direct,
            (_, Some(relayed)) => relayed,
            (None, None) => Error::Closed,
        })
    }

    /// Relayed while a relayed connection is open, or if the latest
    /// connection made was (a finished download's peers keep their path).
    fn path_to(&self, shown: SocketAddr) -> Path {
        let live = self.live.locked().contains_key(&shown);
        let latest = || self.relayed.locked().values().any(|(_, a)| *a == shown);
        match live || latest() {
            true => Path::Relayed,
            false => Path::Direct,
        }
    }
}
