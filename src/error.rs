//! The library's error type for talking to trackers and peers.

use std::io;

use thiserror::Error;

use crate::manifest::ManifestError;
use crate::protocol::ParseError;

/// What went wrong on a connection or in a protocol exchange.
#[derive(Debug, Error)]
pub enum Error {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("protocol error: {0}")]
    Protocol(#[from] ParseError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The other side answered `ERR <reason>`.
    #[error("{0}")]
    Remote(String),
    /// What the other side sent failed our own checks (a manifest that does
    /// not hash to its id, a chunk of the wrong length).
    #[error("{0}")]
    Verification(String),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The other side is at its connection caps: try again later. Never a
    /// fault of the peer's.
    #[error("busy (at its connection limit)")]
    Busy,
    #[error("connection closed by the other side")]
    Closed,
    /// The other side's certificate is not the one expected of it: someone
    /// else answered at that address.
    #[error("not the expected peer: {0}")]
    WrongIdentity(String),
    /// What answered at a tracker's address is not a tracker (a peer's
    /// chunk server answers `HELLO` too, but not `INFO`).
    #[error("it answers as a p2pshare peer, not a tracker (are the tracker's port and this peer's listen port swapped?)")]
    NotATracker,
    /// Given up on by our side (`quit` or end of input while it ran).
    #[error("interrupted")]
    Interrupted,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the other side hung up (closed or reset the connection):
    /// routine between peers, not worth a warning. A peer that stops
    /// reading (a timeout) is not this.
    pub fn is_hangup(&self) -> bool {
        use io::ErrorKind::*;
        match self {
            Error::Closed | Error::Interrupted => true,
            Error::Io(e) => matches!(
                e.kind(),
                BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof
            ),
            _ => false,
        }
    }
}
