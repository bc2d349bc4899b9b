//! What a download looks like to every display: the plain serde values
//! [`Progress::view`](super::Progress::view) returns, which `status`,
//! `/api/status` and the page read.

use serde::{Deserialize, Serialize};

use super::State;
use crate::peer::dial::Path;

/// One download, as `status` and `GET /api/status` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DownloadView {
    /// Unique within this process, for telling downloads of one file apart.
    pub key: u64,
    pub name: String,
    /// Where it is saved (`null` when not known).
    pub out: Option<String>,
    pub id: String,
    pub size: u64,
    pub done_bytes: u64,
    pub done_chunks: u32,
    pub total_chunks: u32,
    /// Bytes found verified in a partial file from an earlier attempt.
    pub resumed_bytes: u64,
    /// Bytes this attempt got from peers with the whole file, and from peers
    /// that were still downloading it themselves.
    pub from_complete_bytes: u64,
    pub from_partial_bytes: u64,
    /// Bytes this attempt got, by the path of the connection each chunk
    /// came on (absent in JSON from before it was counted: all zero).
    #[serde(default)]
    pub bytes_by_path: BytesByPath,
    /// Bytes per second: over the last few seconds while running, the
    /// average of this attempt once ended.
    pub rate: u64,
    /// Seconds left at the current rate; `None` when unknown or ended.
    pub eta_secs: Option<u64>,
    pub elapsed_secs: f64,
    pub state: State,
    pub error: Option<String>,
    /// Seconds it has been waiting for a usable peer, while it is.
    pub waiting_secs: Option<u64>,
    /// Peers the tracker listed, and how many more the DHT found.
    pub peers_from_tracker: usize,
    pub peers_from_dht: usize,
    /// Every peer that delivered a chunk or was banned, most chunks first.
    pub peers: Vec<PeerView>,
    /// A folder's files whole here, and wanted (both 0 for a file).
    #[serde(default)]
    pub files_done: u32,
    #[serde(default)]
    pub files_total: u32,
}

/// A peer serving a download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerView {
    pub addr: String,
    pub chunks: u32,
    pub bytes: u64,
    /// Delivered a chunk within the last few seconds.
    pub active: bool,
    /// Sent data that failed verification: never used again.
    pub banned: bool,
    /// Failed to connect or answer repeatedly: not used for a while.
    pub benched: bool,
    /// How the connections to it were made (`peer::status` fills it in
    /// from the dialer).
    #[serde(default)]
    pub path: Path,
}

/// Verified bytes a download got, by how the connection each chunk came
/// on was made (a connection to a mapped port is direct). Their sum is
/// `from_complete_bytes + from_partial_bytes`: each chunk counted once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BytesByPath {
    pub direct: u64,
    pub punched: u64,
    pub relayed: u64,
}

impl BytesByPath {
    /// Counts `bytes` that came by `path`.
    pub fn add(&mut self, path: Path, bytes: u64) {
        match path {
            Path::Direct => self.direct += bytes,
            Path::Punched => self.punched += bytes,
            Path::Relayed => self.relayed += bytes,
        }
    }

    /// The bytes that came by `path`.
    pub fn get(&self, path: Path) -> u64 {
        match path {
            Path::Direct => self.direct,
            Path::Punched => self.punched,
            Path::Relayed => self.relayed,
        }
    }
}
