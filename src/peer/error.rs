//! What can go wrong in a peer, as its callers see it.

use std::net::SocketAddr;
use std::path::PathBuf;

use thiserror::Error;

use super::download::DownloadError;
use crate::dht::DhtError;
use crate::error::Error;
use crate::link::LinkError;
use crate::private::PrivateError;
use crate::protocol::FileSummary;
use crate::select::BadGlob;
use crate::storage::StoreError;
use crate::ticket::TicketError;

#[derive(Debug, Error)]
pub enum PeerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no shared file is named {0:?} or has an id starting with it (see list)")]
    NotShared(String),
    #[error("{1} shared files are named {0:?}; give the id of one (see list)")]
    SeveralShared(String, usize),
    #[error(transparent)]
    Download(#[from] DownloadError),
    #[error(transparent)]
    Glob(#[from] BadGlob),
    #[error("tracker {addr}: {source}")]
    Tracker { addr: String, source: Error },
    #[error("cannot share {path}: {reason}")]
    BadName { path: PathBuf, reason: String },
    #[error("the tracker knows no file named {0:?} or with an id starting with it")]
    NotFound(String),
    #[error("the tracker knows no file named {0:?}; an id prefix needs at least 4 hex digits")]
    ShortPrefix(String),
    #[error("the tracker knows no file named {name:?}; did you mean {near:?}?")]
    DidYouMean { name: String, near: String },
    #[error("{} files match {target:?}; download one of them by id", candidates.len())]
    Ambiguous {
        target: String,
        candidates: Vec<FileSummary>,
    },
    #[error("this peer has no tracker to ask (start it with one, or use a link, ticket or id)")]
    NoTracker,
    #[error("no peer has {0} (asked {1})")]
    NoPeers(String, &'static str),
    #[error("no peer has {0}: the ticket's sender is unreachable from here (tried {1}); check that it still runs and no firewall is in the way, or have it forward a port and pass --public-addr")]
    Unreachable(String, String),
    #[error(transparent)]
    BadLink(#[from] LinkError),
    #[error(transparent)]
    BadTicket(#[from] TicketError),
    #[error(transparent)]
    Dht(#[from] DhtError),
    #[error("cannot listen on {addr}: {source}{}", in_use_hint(source))]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start a thread: {0}")]
    Spawn(std::io::Error),
    #[error("directory {0} does not exist")]
    NoDirectory(PathBuf),
    #[error("{path} is being written by download #{key}")]
    OutputBusy { path: PathBuf, key: u64 },
    #[error("cannot set up TLS: {0}")]
    Tls(rustls::Error),
    #[error(transparent)]
    Private(#[from] PrivateError),
    #[error(transparent)]
    StateFile(#[from] crate::state_file::StateFileError),
}

/// For a listen port in use: a word on the usual cause, the tracker's port
/// and this peer's given in the wrong order (`peer HOST TRACKER_PORT
/// LISTEN_PORT`).
fn in_use_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            " (another program listens there: were the tracker's port and this peer's listen port swapped? The tracker's comes first: peer HOST TRACKER_PORT LISTEN_PORT; 0 picks a free one)"
        }
        _ => "",
    }
}
