//! Stand-ins run on threads of the test, one fake per role: `peer`
//! ([`FakePeer`], a peer-protocol server that misbehaves as its
//! [`FakeSpec`] says, and [`SilentPeer`], which never answers) and
//! `tracker` ([`StubTracker`], a tracker that answers what the test scripts).

mod peer;
mod tracker;

pub use peer::{ChunkReply, FakePeer, FakeSpec, Lie, ManifestReply, SilentPeer};
pub use tracker::{Script, StubTracker};
