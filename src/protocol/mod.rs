//! The wire protocol shared by tracker and peers: text request lines, `OK` /
//! `ERR` reply lines, and binary payloads whose length is in the reply line.
//! `codec` (framing, tokens), `message` (replies and what both share),
//! `tracker_msg`, `nat_msg` and `peer_msg` (one type per verb) do no I/O;
//! `conn` is the only code here that touches a socket. docs/PROTOCOL.md is
//! the byte-exact description.

pub mod codec;
pub mod conn;
pub mod message;
pub mod nat_msg;
pub mod peer_msg;
pub mod peer_row;
pub mod tracker_msg;

pub use codec::ParseError;
pub use conn::Connection;
pub use message::{FileSummary, Reply};
pub use peer_msg::PeerRequest;
pub use peer_row::PeerEntry;
pub use tracker_msg::TrackerRequest;
