//! Who a peer is and the ways to reach it.
//!
//! Invariant: a [`PeerAddr`] has at least one way; its first is the
//! address it is shown by (progress, status, logs).

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::identity::PeerId;
use crate::protocol::nat_msg::Via;

/// How a connection to a peer was made, as `status` shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Path {
    /// TCP to where it listens (either side dialled).
    #[default]
    Direct,
    /// Hole-punched: both sides connected at once from their listen
    /// ports, introduced by the tracker.
    Punched,
    /// Through the tracker's relay.
    Relayed,
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Path::Direct => "direct",
            Path::Punched => "punched",
            Path::Relayed => "relayed",
        })
    }
}

/// One way to reach a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Way {
    /// A TCP connection to where it listens.
    Direct(SocketAddr),
    /// A hole punch the tracker introduces (`PUNCH <id>`), to a pinned
    /// peer that holds a control connection there; the address is where
    /// the tracker lists it, shown only.
    Punched(SocketAddr),
    /// Through the tracker's relay (`RELAY <id>`), to a pinned peer that
    /// holds a control connection there; the address is where the tracker
    /// lists it, shown only.
    Relayed(SocketAddr),
}

impl Way {
    /// The socket address this way shows as.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Way::Direct(addr) | Way::Punched(addr) | Way::Relayed(addr) => *addr,
        }
    }
}

/// A peer to connect to: the id its certificate must have when that is
/// known (the tracker's rows and tickets say; the DHT does not), and how to
/// reach it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerAddr {
    pub id: Option<PeerId>,
    ways: Vec<Way>,
}

impl PeerAddr {
    /// A peer listening at `addr`, pinned to `id` if given.
    pub fn direct(addr: SocketAddr, id: Option<PeerId>) -> PeerAddr {
        PeerAddr {
            id,
            ways: vec![Way::Direct(addr)],
        }
    }

    /// A peer the tracker lists at `addr`, reached `via` as the tracker
    /// says: dialled there, and, when it is pinned, hole-punched, then
    /// through the tracker's relay if that fails; a peer behind NAT (no
    /// dial-back reached it) is punched first, and one whose NAT changes
    /// ports is relayed first (no punch can reach it), with its address
    /// dialled last.
    pub fn listed(addr: SocketAddr, id: Option<PeerId>, via: Via) -> PeerAddr {
        let ways = match (id, via) {
            (None, _) => vec![Way::Direct(addr)],
            (Some(_), Via::Direct) => {
                vec![Way::Direct(addr), Way::Punched(addr), Way::Relayed(addr)]
            }
            (Some(_), Via::Punch) => {
                vec![Way::Punched(addr), Way::Relayed(addr), Way::Direct(addr)]
            }
            (Some(_), Via::Relay) => vec![Way::Relayed(addr), Way::Direct(addr)],
        };
        PeerAddr { id, ways }
    }

    /// A peer at `addr` whose id nobody told us (a DHT row).
    pub fn unpinned(addr: SocketAddr) -> PeerAddr {
        PeerAddr::direct(addr, None)
    }

    /// A peer reachable in each of `ways`, first one first; `None` if
    /// there are none.
    pub fn with_ways(id: Option<PeerId>, ways: Vec<Way>) -> Option<PeerAddr> {
        (!ways.is_empty()).then_some(PeerAddr { id, ways })
    }

    pub fn ways(&self) -> &[Way] {
        &self.ways
    }

    /// The same peer, reached by `way` alone.
    pub fn only(&self, way: Way) -> PeerAddr {
        PeerAddr {
            id: self.id,
            ways: vec![way],
        }
    }

    /// The same peer, reached by `way` first and then by its other
    /// indirect ways (a punch, the relay), so that a later connection
    /// whose punch fails (a NAT that answers with resets lets one through
    /// now and then) still has the relay; its other direct ways are left
    /// out.
    pub fn led_by(&self, way: Way) -> PeerAddr {
        let rest = self
            .ways
            .iter()
            .filter(|w| **w != way && !matches!(w, Way::Direct(_)));
        PeerAddr {
            id: self.id,
            ways: std::iter::once(way).chain(rest.copied()).collect(),
        }
    }

    /// The address the peer is shown by: its first way's.
    pub fn shown(&self) -> SocketAddr {
        self.ways[0].addr()
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.shown())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_has_a_way_and_shows_its_first() {
        let a: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let b: SocketAddr = "[::1]:2".parse().expect("addr");
        assert_eq!(PeerAddr::with_ways(None, Vec::new()), None);
        let both = PeerAddr::with_ways(Some(PeerId([7; 16])), vec![Way::Direct(a), Way::Direct(b)])
            .expect("two ways");
        assert_eq!((both.shown(), both.to_string()), (a, "127.0.0.1:1".into()));
        let second = both.only(Way::Direct(b));
        assert_eq!((second.shown(), second.id), (b, Some(PeerId([7; 16]))));
        assert_eq!(PeerAddr::unpinned(a), PeerAddr::direct(a, None));
        let all = PeerAddr::with_ways(
            Some(PeerId([7; 16])),
            vec![
                Way::Direct(a),
                Way::Direct(b),
                Way::Punched(a),
                Way::Relayed(a),
            ],
        )
        .expect("four ways");
        let punched = all.led_by(Way::Punched(a));
        assert_eq!(punched.ways(), [Way::Punched(a), Way::Relayed(a)]);
        let direct = all.led_by(Way::Direct(b));
        assert_eq!(
            direct.ways(),
            [Way::Direct(b), Way::Punched(a), Way::Relayed(a)]
        );
    }

    #[test]
    fn a_listed_peer_is_tried_the_way_the_tracker_says_first() {
        let a: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let id = Some(PeerId([7; 16]));
        let ways = |id, via| PeerAddr::listed(a, id, via).ways().to_vec();
        let (direct, punched, relayed) = (Way::Direct(a), Way::Punched(a), Way::Relayed(a));
        assert_eq!(ways(id, Via::Direct), [direct, punched, relayed]);
        assert_eq!(ways(id, Via::Punch), [punched, relayed, direct]);
        assert_eq!(ways(id, Via::Relay), [relayed, direct]);
        // Unpinned, it cannot be punched or relayed (neither end is known).
        assert_eq!(ways(None, Via::Relay), [direct]);
    }
}
