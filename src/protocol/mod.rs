//! The wire protocol shared by tracker and peers: text request lines, `OK` /
//! `ERR` reply lines, and binary payloads whose length is in the reply line.
//! `codec` (framing, tokens) and `message` (one type per verb) do no I/O;
//! `conn` is the only code here that touches a socket. docs/PROTOCOL.md is
//! the byte-exact description.

pub mod codec;
pub mod conn;
pub mod message;

pub use codec::ParseError;
pub use conn::Connection;
pub use message::{FileSummary, PeerRequest, Reply, TrackerRequest};
