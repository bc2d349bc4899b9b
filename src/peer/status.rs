//! What this peer is doing, for the `status` command and the web status
//! page: its downloads (in progress, and the last few finished) with rate
//! and the peers serving each, and what it has uploaded per file.
//!
//! [`PeerStatus`] is a snapshot assembled from the library and from each
//! download's [`Progress`](super::download::progress::Progress). Snapshots
//! are plain serde structs, so the REPL prints them (as
//! `ui::status::status_text` words them) and the web page gets them as
//! JSON, from one source.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::dial::Dialer;
use super::uploads::UploadView;
use super::Peer;
use crate::dht::DhtStatus;

pub use super::download::progress::{BytesByPath, DownloadView, PeerView, State};

/// A shared file and what was uploaded of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedView {
    pub name: String,
    pub id: String,
    pub size: u64,
    pub uploaded: u64,
    /// Of `uploaded`, what was served while this peer was still downloading
    /// the file.
    pub uploaded_while_partial: u64,
    /// Whether this peer has all of it (`false`: a download in progress,
    /// served as far as it goes).
    pub complete: bool,
    /// Shared only with holders of its link (not listed by name).
    pub private: bool,
    /// A folder's files (0: a single file).
    #[serde(default)]
    pub files: usize,
}

/// Bandwidth caps in bytes per second (`None`: no cap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caps {
    pub upload: Option<u64>,
    pub download: Option<u64>,
}

/// The DHT node's state, when the peer runs one (`--dht`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhtView {
    pub node_id: String,
    /// The node's UDP address.
    pub udp: String,
    /// Nodes in its routing table.
    pub routing_table: usize,
    /// Seconds since the last announce round ended, and how many files it
    /// announced; `null` before the first.
    pub last_announce_secs_ago: Option<u64>,
    pub last_announce_files: Option<usize>,
}

impl DhtView {
    fn of(s: &DhtStatus) -> DhtView {
        let ago = s
            .last_announce
            .map(|(at, _)| at.elapsed().map_or(0, |d| d.as_secs()));
        DhtView {
            node_id: s.node_id.clone(),
            udp: s.local_addr.to_string(),
            routing_table: s.routing_table,
            last_announce_secs_ago: ago,
            last_announce_files: s.last_announce.map(|(_, n)| n),
        }
    }
}

/// Everything `GET /api/status` reports about a peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// Always `"peer"`; the page uses it to pick its layout.
    pub role: String,
    pub version: String,
    /// This peer's id (the hash of its certificate), as others pin it.
    pub id: String,
    pub listen: String,
    /// The tracker's `host:port` (`null`: the peer runs without one).
    pub tracker: Option<String>,
    /// The tracker's id as pinned here (`null` before first contact).
    pub tracker_id: Option<String>,
    /// How the last connection to the tracker went: `null` before any,
    /// else whether it answered, how long ago, and why not.
    pub tracker_contact: Option<ContactView>,
    /// Whether others can dial this peer directly, as the tracker last
    /// said (`null`: no tracker, or no answer yet).
    #[serde(default)]
    pub reach: Option<super::nat::ReachView>,
    pub caps: Caps,
    pub shared: Vec<SharedView>,
    pub downloads: Vec<DownloadView>,
    /// `null` unless the peer runs a DHT node.
    pub dht: Option<DhtView>,
    /// Downloads an earlier run left unfinished (`resume` continues them).
    pub unfinished: Vec<UnfinishedView>,
    /// Who fetched what from this peer lately, oldest first (at most
    /// `MAX_UPLOADS_SHOWN`).
    #[serde(default)]
    pub uploads: Vec<UploadView>,
    /// The router's port mapping: `null` when not asked for
    /// (`--no-port-map`, `peer get`, a loopback listen address).
    #[serde(default)]
    pub port_map: Option<super::portmap::PortMapView>,
}

/// The last connection to the tracker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactView {
    pub answered: bool,
    pub secs_ago: u64,
    pub error: Option<String>,
}

/// A download an earlier run left unfinished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnfinishedView {
    pub name: String,
    pub id: String,
    pub out: String,
}

impl PeerStatus {
    /// A snapshot of `peer` now.
    pub fn of(peer: &Peer) -> PeerStatus {
        let shared = peer
            .library
            .all()
            .iter()
            .map(|f| SharedView {
                name: f.name.clone(),
                id: f.id.to_hex(),
                size: f.manifest.size(),
                uploaded: f.uploaded(),
                uploaded_while_partial: f.uploaded_while_partial(),
                complete: f.is_complete(),
                private: f.secret.is_some(),
                files: f.manifest.as_tree().map_or(0, |t| t.file_count()),
            })
            .collect();
        PeerStatus {
            role: "peer".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            id: peer.id().to_string(),
            listen: peer.listen.to_string(),
            tracker: peer.tracker_addr().map(str::to_string),
            tracker_id: peer.tracker_id().map(|id| id.to_string()),
            tracker_contact: peer.tracker_contact().map(|c| ContactView {
                answered: c.error.is_none(),
                secs_ago: c.at.elapsed().as_secs(),
                error: c.error,
            }),
            reach: peer.reach(),
            caps: Caps {
                upload: peer.rates.up.get(),
                download: peer.rates.down.get(),
            },
            shared,
            downloads: with_paths(peer.downloads.snapshot(Instant::now()), &*peer.dialer),
            dht: peer.dht_status().as_ref().map(DhtView::of),
            uploads: peer.uploads().snapshot(Instant::now()),
            port_map: peer.port_map().map(|m| m.view()),
            unfinished: super::resume::unfinished(peer)
                .into_iter()
                .map(|u| UnfinishedView {
                    name: u.name,
                    id: u.id,
                    out: u.out.display().to_string(),
                })
                .collect(),
        }
    }

    /// The snapshot as JSON.
    pub fn to_json(&self) -> String {
        // Plain structs of strings and numbers always serialize.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// Each download's peers with how they are reached.
fn with_paths(mut downloads: Vec<DownloadView>, dialer: &dyn Dialer) -> Vec<DownloadView> {
    for p in downloads.iter_mut().flat_map(|d| d.peers.iter_mut()) {
        if let Ok(addr) = p.addr.parse() {
            p.path = dialer.path_to(addr);
        }
    }
    downloads
}
