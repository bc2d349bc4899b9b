//! Stand-ins run on threads of the test, one fake per role: `peer`
//! ([`FakePeer`], a peer-protocol server that misbehaves as its
//! [`FakeSpec`] says, and [`SilentPeer`], which never answers) and
//! `tracker` ([`StubTracker`], a tracker that answers what the test
//! scripts). The network fakes speak TLS with identities of their own, made
//! by [`test_tls`], as real peers and trackers do.

mod peer;
mod tracker;

pub use peer::{ChunkReply, FakePeer, FakeSpec, Lie, ManifestReply, SilentPeer};
pub use tracker::{Script, StubTracker};

use p2pshare::identity::Identity;
use p2pshare::net::tls::Tls;

/// A TLS identity for a stand-in, made fresh.
pub fn test_tls() -> Tls {
    Tls::new(Identity::ephemeral().expect("an identity")).expect("TLS configs")
}
