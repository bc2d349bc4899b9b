//! What this peer is doing, for the `status` command and the web status
//! page: its downloads (in progress, and the last few finished) with rate
//! and the peers serving each, and what it has uploaded per file.
//!
//! [`PeerStatus`] is a snapshot assembled from the library and from each
//! download's [`Progress`](super::download::progress::Progress). Snapshots
//! are plain serde structs, so the REPL prints them and the web page gets
//! them as JSON from one source.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Peer;
use crate::dht::DhtStatus;
use crate::name::shown;
use crate::net::rate::format_rate;
use crate::ui::{count, format_duration, format_size, format_speed};

pub use super::download::progress::{DownloadView, PeerView, State};

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

    fn text(&self) -> String {
        let announce = match (self.last_announce_secs_ago, self.last_announce_files) {
            (Some(ago), Some(n)) => format!("last announce {ago} s ago ({})", count(n, "file")),
            _ => "not announced yet".to_string(),
        };
        format!(
            "dht: node {} on UDP {}, {} in the routing table, {announce}\n",
            self.node_id,
            self.udp,
            count(self.routing_table, "node")
        )
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
    pub caps: Caps,
    pub shared: Vec<SharedView>,
    pub downloads: Vec<DownloadView>,
    /// `null` unless the peer runs a DHT node.
    pub dht: Option<DhtView>,
    /// Downloads an earlier run left unfinished (`resume` continues them).
    pub unfinished: Vec<UnfinishedView>,
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
            caps: Caps {
                upload: peer.rates.up.get(),
                download: peer.rates.down.get(),
            },
            shared,
            downloads: peer.downloads.snapshot(Instant::now()),
            dht: peer.dht_status().as_ref().map(DhtView::of),
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

    /// The snapshot as the `status` command prints it.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let running = self
            .downloads
            .iter()
            .filter(|d| matches!(d.state, State::Running | State::Waiting))
            .count();
        let ended = |state: State| self.downloads.iter().filter(|d| d.state == state).count();
        if self.downloads.is_empty() {
            out.push_str("downloads: none yet\n");
        } else {
            // Cancelled and failed are their own states, not "finished".
            out.push_str(&format!(
                "downloads: {running} running, {} finished",
                ended(State::Done)
            ));
            for (state, word) in [(State::Cancelled, "cancelled"), (State::Failed, "failed")] {
                match ended(state) {
                    0 => {}
                    n => out.push_str(&format!(", {n} {word}")),
                }
            }
            out.push('\n');
        }
        for d in &self.downloads {
            out.push_str(&download_text(d));
        }
        if !self.unfinished.is_empty() {
            out.push_str(&format!(
                "unfinished ({}; type resume to continue):\n",
                count(self.unfinished.len(), "download")
            ));
            for u in &self.unfinished {
                out.push_str(&format!("  {} -> {}\n", shown(&u.name), u.out));
            }
        }
        let uploaded: u64 = self.shared.iter().map(|f| f.uploaded).sum();
        out.push_str(&format!(
            "uploads: {} shared, {} uploaded in all\n",
            count(self.shared.len(), "file"),
            size_and_bytes(uploaded)
        ));
        for f in &self.shared {
            let partial = match (f.complete, f.uploaded_while_partial) {
                (true, 0) => String::new(),
                (true, n) => format!(", {} of it while downloading", format_size(n)),
                (false, _) => " (still downloading it)".into(),
            };
            let partial = match f.private {
                true => format!("{partial} (private)"),
                false => partial,
            };
            out.push_str(&format!(
                "  {}  uploaded {} of a {} file{partial}\n",
                f.name,
                size_and_bytes(f.uploaded),
                format_size(f.size)
            ));
        }
        if let Some(dht) = &self.dht {
            out.push_str(&dht.text());
        }
        if let Some(tracker) = &self.tracker {
            out.push_str(&tracker_text(tracker, self.tracker_contact.as_ref()));
        }
        out.push_str(&format!("peer id: {}\n", self.id));
        out.push_str(&format!(
            "limits: upload {}, download {}",
            format_rate(self.caps.upload),
            format_rate(self.caps.download)
        ));
        out
    }
}

/// `tracker: ADDR answered 3 s ago`, or why it did not.
fn tracker_text(addr: &str, contact: Option<&ContactView>) -> String {
    let how = match contact {
        None => "not asked yet".to_string(),
        Some(c) => {
            let ago = format_duration(Duration::from_secs(c.secs_ago));
            match &c.error {
                None => format!("answered {ago} ago"),
                Some(e) => format!("did not answer {ago} ago: {e}"),
            }
        }
    };
    format!("tracker: {addr} {how}\n")
}

/// `1.0 MiB (1048576 bytes)`, or just `745 B` when that is exact.
pub fn size_and_bytes(bytes: u64) -> String {
    if bytes < 1024 {
        format_size(bytes)
    } else {
        format!("{} ({bytes} bytes)", format_size(bytes))
    }
}

/// Two lines per download: progress, then the peers serving it.
fn download_text(d: &DownloadView) -> String {
    let pct = if d.size == 0 {
        100.0
    } else {
        d.done_bytes as f64 * 100.0 / d.size as f64
    };
    // Saved under another name than the source's: say which.
    let name = match &d.out {
        Some(out) if *out != d.name => format!("{} -> {out}", shown(&d.name)),
        _ => shown(&d.name).into_owned(),
    };
    let mut line = format!(
        "  [{}] {name}  {}  {pct:.1}%  {} of {} ({} of {} bytes)",
        d.key,
        d.state.as_str(),
        format_size(d.done_bytes),
        format_size(d.size),
        d.done_bytes,
        d.size
    );
    match d.state {
        State::Running | State::Waiting => {
            if let Some(secs) = d.waiting_secs {
                line.push_str(&format!(
                    " for {}",
                    format_duration(Duration::from_secs(secs))
                ));
            }
            line.push_str(&format!("  {}", format_speed(d.rate as f64)));
            if let Some(eta) = d.eta_secs {
                line.push_str(&format!(
                    "  ETA {}",
                    format_duration(Duration::from_secs(eta))
                ));
            }
        }
        _ => line.push_str(&format!(
            "  in {:.1} s, {} average",
            d.elapsed_secs,
            format_speed(d.rate as f64)
        )),
    }
    if let Some(e) = &d.error {
        line.push_str(&format!("  ({e})"));
    }
    line.push('\n');
    let fetched = d.from_complete_bytes + d.from_partial_bytes;
    if fetched > 0 {
        line.push_str(&format!(
            "    from complete peers {}, from peers still downloading {}\n",
            format_size(d.from_complete_bytes),
            format_size(d.from_partial_bytes)
        ));
    }
    if !d.peers.is_empty() {
        let peers: Vec<String> = d
            .peers
            .iter()
            .map(|p| {
                let active = if p.active { ", active" } else { "" };
                format!("{} ({}{active})", p.addr, count(p.chunks as usize, "chunk"))
            })
            .collect();
        line.push_str(&format!("    peers: {}\n", peers.join(", ")));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::FileId;
    use crate::peer::download::progress::Progress;
    use std::net::SocketAddr;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn text_shows_progress_peers_and_uploads() {
        let d = Progress::new(1, "big file.bin", FileId([9; 32]), Some(4 << 20));
        d.start(4 << 20, 8, 0, 0);
        d.chunk(addr(7), 1 << 19, true);
        let status = PeerStatus {
            role: "peer".into(),
            version: "0".into(),
            id: "a".repeat(26),
            listen: "127.0.0.1:1".into(),
            tracker: Some("127.0.0.1:2".into()),
            tracker_id: None,
            tracker_contact: None,
            caps: Caps {
                upload: None,
                download: Some(2 << 20),
            },
            shared: vec![SharedView {
                name: "a.txt".into(),
                id: "00".repeat(32),
                size: 745,
                uploaded: 3 << 20,
                uploaded_while_partial: 1 << 20,
                complete: true,
                private: false,
            }],
            unfinished: Vec::new(),
            dht: Some(DhtView {
                node_id: "ab".repeat(20),
                udp: "127.0.0.1:3".into(),
                routing_table: 4,
                last_announce_secs_ago: Some(2),
                last_announce_files: Some(1),
            }),
            downloads: vec![d.view(Instant::now() + Duration::from_secs(1))],
        };
        let text = status.to_text();
        let want = [
            "downloads: 1 running, 0 finished",
            "  [1] big file.bin  running  12.5%  512.0 KiB of 4.0 MiB (524288 of 4194304 bytes)  ",
            "    peers: 127.0.0.1:7 (1 chunk, active)",
            "uploads: 1 file shared, 3.0 MiB (3145728 bytes) uploaded in all",
            "  a.txt  uploaded 3.0 MiB (3145728 bytes) of a 745 B file, 1.0 MiB of it while downloading",
            "    from complete peers 512.0 KiB, from peers still downloading 0 B",
            "limits: upload off, download 2M",
            "dht: node abab",
            "4 nodes in the routing table, last announce 2 s ago (1 file)",
            "tracker: 127.0.0.1:2 not asked yet",
        ];
        for w in want {
            assert!(text.contains(w), "{w:?} not in\n{text}");
        }
        assert!(text.contains(" ETA "), "{text}");
        let json: serde_json::Value = serde_json::from_str(&status.to_json()).unwrap();
        assert_eq!(json["downloads"][0]["name"], "big file.bin");
        assert_eq!(json["downloads"][0]["done_bytes"], 1 << 19);
        assert_eq!(json["downloads"][0]["peers"][0]["chunks"], 1);
        assert_eq!(json["shared"][0]["uploaded"], 3 << 20);
        assert_eq!(json["caps"]["upload"], serde_json::Value::Null);
        assert_eq!(json["dht"]["routing_table"], 4);
        assert_eq!(size_and_bytes(745), "745 B");
        let refused = ContactView {
            answered: false,
            secs_ago: 3,
            error: Some("connection refused".into()),
        };
        assert_eq!(
            tracker_text("h:1", Some(&refused)),
            "tracker: h:1 did not answer 3 s ago: connection refused\n"
        );
    }
}
