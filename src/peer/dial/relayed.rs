//! [`RelayingDialer`]: a peer's direct ways first, then, for a pinned peer
//! the tracker lists, its [`Way::Punched`] (a hole punch the tracker
//! introduces, see `peer::nat::punch`) and its [`Way::Relayed`]: the
//! tracker's relay. Either way TLS is pinned to the peer's id end to end.
//!
//! A punch is tried only when the direct way got no answer (a peer that
//! answered busy or as another identity is not behind a NAT we can
//! punch); a tracker that does not know `PUNCH` is not asked it again for
//! [`RELAY_PREFER`]. A punch the tracker refuses as busy fails the dial
//! as busy (the download asks this peer again later): the relay is for a
//! peer no punch reaches, not for one that must wait its turn.
//!
//! The ways come in the order the tracker's row says (see
//! [`PeerAddr::listed`]). A direct way gets [`RELAY_FALLBACK`] to connect
//! when a punch or the relay can be tried after it (a NAT that drops the
//! SYN would otherwise cost the whole connect timeout). A peer just
//! reached only by the relay (a punch failed) is relayed before it is
//! punched for [`RELAY_PREFER`], sparing every worker a punch that failed;
//! a direct way keeps its place, so once the tracker's row says the peer
//! can be dialled, the next connection is direct.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::net::SocketAddr;

use super::dialer::RelayedHold;
use super::{Dialed, Dialer, DirectDialer, Path, PeerAddr, Way};
use crate::bounds::{RELAY_FALLBACK, RELAY_PREFER, RELAY_PREFER_PEERS};
use crate::error::{Error, Result};
use crate::identity::PeerId;
use crate::net::stop::{StopGuard, StopSignal};
use crate::net::tls::Tls;
use crate::peer::nat::{punch, relay};
use crate::peer::tracker_client::TrackerClient;
use crate::protocol::Connection;
use crate::sync::LockExt;
use crate::tracker::nat::NO_RELAY;

/// Dials directly, then through `tracker`'s relay.
pub struct RelayingDialer {
    direct: DirectDialer,
    tls: Tls,
    tracker: TrackerClient,
    /// Peers whose latest connection was punched or relayed: when, the
    /// address each shows as, and which.
    relayed: Mutex<HashMap<PeerId, (Instant, SocketAddr, Path)>>,
    /// Punched and relayed connections open now, by the address their peer
    /// shows as and their path.
    live: Arc<Mutex<HashMap<(SocketAddr, Path), usize>>>,
    /// Until when the tracker is taken not to relay (it said so).
    no_relay_until: Mutex<Option<Instant>>,
    /// Until when the tracker is taken not to know `PUNCH` (older).
    no_punch_until: Mutex<Option<Instant>>,
}

impl RelayingDialer {
    pub fn new(tls: Tls, tracker: TrackerClient) -> RelayingDialer {
        RelayingDialer {
            direct: DirectDialer::new(tls.clone()),
            tls,
            tracker,
            relayed: Mutex::default(),
            live: Arc::default(),
            no_relay_until: Mutex::default(),
            no_punch_until: Mutex::default(),
        }
    }

    /// How `id` was reached lately, if not directly.
    fn reached_lately(&self, id: &PeerId) -> Option<Path> {
        let relayed = self.relayed.locked();
        relayed
            .get(id)
            .filter(|(at, _, _)| at.elapsed() < RELAY_PREFER)
            .map(|(_, _, path)| *path)
    }

    /// Whether the tracker said lately that it does not relay at all.
    fn relay_off(&self) -> bool {
        self.no_relay_until
            .locked()
            .is_some_and(|until| Instant::now() < until)
    }

    /// Whether the tracker said lately that it does not know `PUNCH`.
    fn punch_off(&self) -> bool {
        self.no_punch_until
            .locked()
            .is_some_and(|until| Instant::now() < until)
    }

    /// A tracker that does not relay (started without `--relay`, or
    /// older than the verb) is not asked again for [`RELAY_PREFER`].
    fn note_refusal(&self, e: &Error) {
        if matches!(e, Error::Remote(why) if why == NO_RELAY || why.contains("unknown command")) {
            *self.no_relay_until.locked() = Some(Instant::now() + RELAY_PREFER);
        }
    }

    /// Notes how the latest connection to `to` was made.
    fn note(&self, to: &PeerAddr, path: Path) {
        let Some(id) = to.id else {
            return;
        };
        let mut map = self.relayed.locked();
        if path == Path::Direct {
            map.remove(&id);
            return;
        }
        if map.len() >= RELAY_PREFER_PEERS {
            map.retain(|_, (at, _, _)| at.elapsed() < RELAY_PREFER);
        }
        if map.len() < RELAY_PREFER_PEERS {
            map.insert(id, (Instant::now(), to.shown(), path));
        }
    }

    /// `dialed`, made by `path` (punched or relayed), noted and counted
    /// while it is open.
    fn held(&self, to: &PeerAddr, path: Path, dialed: (Connection, StopGuard)) -> Dialed {
        self.note(to, path);
        let key = (to.shown(), path);
        *self.live.locked().entry(key).or_default() += 1;
        let hold = RelayedHold {
            live: Arc::clone(&self.live),
            key,
        };
        Dialed {
            conn: dialed.0,
            guard: dialed.1,
            relayed: Some(hold),
        }
    }
}

/// Whether a direct attempt's failure shows that the peer answered there
/// (busy, another identity, a reply), or that we gave up: no punch helps.
fn answered(e: &Error) -> bool {
    matches!(
        e,
        Error::Busy
            | Error::WrongIdentity(_)
            | Error::Remote(_)
            | Error::Protocol(_)
            | Error::Verification(_)
            | Error::NotATracker
            | Error::Interrupted
    )
}

/// The way a connection by `path` takes.
fn is_way(w: &Way, path: Path) -> bool {
    matches!(
        (w, path),
        (Way::Punched(_), Path::Punched) | (Way::Relayed(_), Path::Relayed)
    )
}

impl Dialer for RelayingDialer {
    fn dial(&self, to: &PeerAddr, timeout: Duration, stop: &Arc<StopSignal>) -> Result<Dialed> {
        let mut ways = to.ways().to_vec();
        if let Some(path) = to.id.and_then(|id| self.reached_lately(&id)) {
            // The way that worked lately goes before the other indirect
            // one; a direct way keeps its place (the tracker's row puts it
            // last for a peer behind NAT, first for one it does not mark).
            let first_indirect = ways.iter().position(|w| !matches!(w, Way::Direct(_)));
            if let Some(at) = first_indirect {
                ways[at..].sort_by_key(|w| !is_way(w, path));
            }
        }
        // With a punch or the relay to fall back on, a direct way whose
        // TCP connect has not completed within RELAY_FALLBACK is not
        // waited for further: a NAT that drops the SYN would otherwise
        // cost the whole timeout. (The TLS handshake, slow on a loaded
        // host, keeps it.)
        let relay_on = !self.relay_off();
        let punch_on = !self.punch_off();
        let fallback = |w: &Way| match w {
            Way::Punched(_) => punch_on,
            Way::Relayed(_) => relay_on,
            Way::Direct(_) => false,
        };
        let relayable = to.id.is_some() && ways.iter().any(fallback);
        let connect_for = match relayable {
            true => timeout.min(RELAY_FALLBACK),
            false => timeout,
        };
        let (mut direct_error, mut relay_error) = (None, None);
        for way in ways {
            match (way, to.id) {
                (Way::Direct(_), _) => {
                    match self
                        .direct
                        .dial_within(&to.only(way), connect_for, timeout, stop)
                    {
                        Ok(dialed) => {
                            self.note(to, Path::Direct);
                            return Ok(dialed);
                        }
                        Err(e) => direct_error = Some(e),
                    }
                }
                // A punch connects from a port it names: behind a NAT
                // that changes ports, it cannot work from here.
                (Way::Punched(_), Some(id))
                    if punch_on
                        && !direct_error.as_ref().is_some_and(answered)
                        && !self.tracker.nat_changes_ports() =>
                {
                    match punch::dial(&self.tracker, &self.tls, id, timeout, stop) {
                        Ok(dialed) => return Ok(self.held(to, Path::Punched, dialed)),
                        // Too many punches at once: this peer again later,
                        // not the relay (which would carry a swarm's bytes).
                        Err(Error::Busy) => return Err(Error::Busy),
                        Err(Error::Remote(why)) if why.contains("unknown command") => {
                            *self.no_punch_until.locked() = Some(Instant::now() + RELAY_PREFER);
                        }
                        Err(e) => log::debug!("hole punch to {to}: {e}"),
                    }
                }
                (Way::Relayed(_), Some(id)) if relay_on => {
                    match relay::dial(&self.tracker, &self.tls, id, timeout, stop) {
                        Ok(dialed) => return Ok(self.held(to, Path::Relayed, dialed)),
                        Err(e) => {
                            self.note_refusal(&e);
                            relay_error = Some(e);
                        }
                    }
                }
                (Way::Punched(_) | Way::Relayed(_), _) => {}
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

    /// Relayed (or punched) while such a connection is open, or else if
    /// the latest connection made was (a finished download's peers keep
    /// their path).
    fn path_to(&self, shown: SocketAddr) -> Path {
        let live = self.live.locked();
        let open = [Path::Relayed, Path::Punched]
            .into_iter()
            .find(|path| live.contains_key(&(shown, *path)));
        drop(live);
        open.or_else(|| {
            let latest = self.relayed.locked();
            latest
                .values()
                .find(|(_, a, _)| *a == shown)
                .map(|(_, _, path)| *path)
        })
        .unwrap_or(Path::Direct)
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;
    use crate::peer::tracker_pin::TrackerPin;
    use crate::protocol::nat_msg::Via;
    use crate::tracker::nat::tests::tracker_with;
    use crate::tracker::nat::NatOptions;

    /// Against a tracker without `--relay`: a peer that refuses the direct
    /// way fails with that refusal (not the tracker's words), and the
    /// tracker is not asked to relay again for a while.
    #[test]
    fn a_tracker_that_does_not_relay_is_asked_once() {
        let t = tracker_with(NatOptions::default());
        let at = t.addr.to_string();
        let pin = TrackerPin::new(&at, Some(t.tls.id()), None).expect("a pin");
        let client = TrackerClient::new(at, 1, Tls::ephemeral(), Arc::new(pin));
        let dialer = RelayingDialer::new(Tls::ephemeral(), client);
        let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = closed.local_addr().expect("addr");
        drop(closed);
        let peer = PeerAddr::listed(addr, Some(Tls::ephemeral().id()), Via::Direct);
        assert!(!dialer.relay_off());
        let stop = StopSignal::new();
        let refused = dialer.dial(&peer, Duration::from_secs(5), &stop);
        assert!(
            matches!(&refused, Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused),
            "{:?}",
            refused.err()
        );
        assert!(dialer.relay_off());
        assert_eq!(dialer.path_to(addr), Path::Direct);
    }
}
