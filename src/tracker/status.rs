//! What `GET /api/status` reports about a tracker: the files it knows and
//! their live peers, built from a [`Registry::snapshot`] taken under the lock
//! and formatted after it is released.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::state::{Registry, Snapshot};
use crate::bounds::{STATUS_MAX_FILES, STATUS_MAX_PEERS};
use crate::identity::PeerId;

/// Everything `GET /api/status` reports about a tracker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackerStatus {
    /// Always `"tracker"`; the page uses it to pick its layout.
    pub role: String,
    pub version: String,
    pub listen: String,
    /// The tracker's own id, which peers pin.
    pub id: String,
    pub total_files: usize,
    pub registrations: usize,
    pub files: Vec<FileView>,
    /// Control connections and the relay (`null` from code that has no
    /// NAT services to show).
    #[serde(default)]
    pub nat: Option<super::nat::NatView>,
}

/// One file the tracker knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileView {
    pub name: String,
    pub id: String,
    pub size: u64,
    pub peer_count: usize,
    /// The freshest peers, most recently heard from first.
    pub peers: Vec<TrackedPeer>,
}

/// A peer that has a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackedPeer {
    pub addr: String,
    /// The id its certificate proved.
    pub id: String,
    /// Seconds since it last announced the file.
    pub last_seen_secs: f64,
    /// Whether it has all of the file (`false`: still downloading it).
    pub complete: bool,
}

impl TrackerStatus {
    /// A snapshot of `registry` now, for a tracker listening on `listen`.
    pub fn of(registry: &Registry, listen: &str, id: PeerId) -> TrackerStatus {
        let snapshot = registry.snapshot(Instant::now(), STATUS_MAX_FILES, STATUS_MAX_PEERS);
        Self::from_snapshot(snapshot, listen, id)
    }

    fn from_snapshot(s: Snapshot, listen: &str, id: PeerId) -> TrackerStatus {
        let files = s
            .files
            .into_iter()
            .map(|f| FileView {
                name: f.name,
                id: f.id.to_hex(),
                size: f.size,
                peer_count: f.peer_count,
                peers: f
                    .peers
                    .into_iter()
                    .map(|(key, age, complete)| TrackedPeer {
                        addr: key.addr.to_string(),
                        id: key.id.to_string(),
                        last_seen_secs: (age.as_secs_f64() * 10.0).round() / 10.0,
                        complete,
                    })
                    .collect(),
            })
            .collect();
        TrackerStatus {
            role: "tracker".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            listen: listen.to_string(),
            id: id.to_string(),
            total_files: s.total_files,
            registrations: s.registrations,
            files,
            nat: None,
        }
    }

    /// The same, with the NAT services' state.
    pub fn with_nat(self, nat: &super::nat::Nat) -> TrackerStatus {
        TrackerStatus {
            nat: Some(nat.view()),
            ..self
        }
    }

    /// The snapshot as JSON.
    pub fn to_json(&self) -> String {
        // Plain structs of strings and numbers always serialize.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::*;
    use crate::manifest::FileId;
    use crate::tracker::state::PeerKey;

    #[test]
    fn json_lists_files_and_peers() {
        let r = Registry::new(Duration::from_secs(60));
        let now = Instant::now();
        let peer = PeerKey {
            addr: SocketAddr::from(([127, 0, 0, 1], 4000)),
            id: PeerId([1; 16]),
        };
        r.register(
            peer,
            FileId([0xab; 32]),
            1 << 20,
            Some("x y.bin"),
            true,
            now,
        )
        .unwrap();
        let json = TrackerStatus::of(&r, "127.0.0.1:8080", PeerId([2; 16])).to_json();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["role"], "tracker");
        assert_eq!(v["listen"], "127.0.0.1:8080");
        assert_eq!(v["total_files"], 1);
        let f = &v["files"][0];
        assert_eq!(f["name"], "x y.bin");
        assert_eq!(f["id"], "ab".repeat(32));
        assert_eq!(f["size"], 1 << 20);
        assert_eq!(f["peer_count"], 1);
        assert_eq!(f["peers"][0]["addr"], "127.0.0.1:4000");
        assert_eq!(f["peers"][0]["id"], PeerId([1; 16]).to_string());
        assert_eq!(v["id"], PeerId([2; 16]).to_string());
        assert!(f["peers"][0]["last_seen_secs"].as_f64().unwrap() < 5.0);
        let back: TrackerStatus = serde_json::from_str(&json).unwrap();
        assert_eq!(back.files.len(), 1);
    }
}
