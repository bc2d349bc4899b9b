//! What this peer is doing, for the `status` command and the web status
//! page: its downloads (in progress, and the last few finished) with rate
//! and the peers serving each, and what it has uploaded per file.
//!
//! [`Transfers`] is written by download workers, one short lock per arrived
//! chunk, and read by whoever asks for a [`PeerStatus`] snapshot. Snapshots
//! are plain serde structs, so the REPL prints them and the web page gets
//! them as JSON from one source.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::download::ChunkEvent;
use super::Peer;
use crate::bounds::{ACTIVE_PEER, KEEP_FINISHED, RATE_WINDOW};
use crate::dht::DhtStatus;
use crate::manifest::FileId;
use crate::net::rate::format_rate;
use crate::ui::{format_duration, format_size, format_speed};

/// Every download of this process, running or recently finished.
#[derive(Default)]
pub struct Transfers {
    next_key: AtomicU64,
    /// Oldest first; running ones are never dropped.
    downloads: Mutex<Vec<Arc<DownloadStatus>>>,
}

impl Transfers {
    /// Starts tracking a download of `size` bytes in `chunks` chunks.
    pub fn begin(&self, name: &str, id: FileId, size: u64, chunks: u32) -> Arc<DownloadStatus> {
        let now = Instant::now();
        let status = Arc::new(DownloadStatus {
            key: self.next_key.fetch_add(1, Ordering::Relaxed) + 1,
            name: name.to_string(),
            id,
            size,
            total_chunks: chunks,
            started: now,
            progress: Mutex::new(Progress {
                done_chunks: 0,
                done_bytes: 0,
                samples: VecDeque::from([(now, 0)]),
                peers: HashMap::new(),
                outcome: None,
            }),
        });
        let mut all = lock(&self.downloads);
        all.push(Arc::clone(&status));
        forget_oldest_finished(&mut all);
        status
    }

    /// Every tracked download, oldest first.
    pub fn snapshot(&self, now: Instant) -> Vec<DownloadView> {
        let all: Vec<Arc<DownloadStatus>> = {
            let mut all = lock(&self.downloads);
            forget_oldest_finished(&mut all);
            all.clone()
        };
        all.iter().map(|d| d.view(now)).collect()
    }
}

/// Keeps the newest [`KEEP_FINISHED`] finished downloads and every running one.
fn forget_oldest_finished(all: &mut Vec<Arc<DownloadStatus>>) {
    let mut finished = all.iter().filter(|d| d.is_finished()).count();
    all.retain(|d| {
        let drop = finished > KEEP_FINISHED && d.is_finished();
        finished -= usize::from(drop);
        !drop
    });
}

/// One download's progress.
pub struct DownloadStatus {
    key: u64,
    name: String,
    id: FileId,
    size: u64,
    total_chunks: u32,
    started: Instant,
    progress: Mutex<Progress>,
}

struct Progress {
    done_chunks: u32,
    done_bytes: u64,
    /// `(time, done_bytes)`, oldest first: one sample older than
    /// [`RATE_WINDOW`] and all newer ones.
    samples: VecDeque<(Instant, u64)>,
    peers: HashMap<SocketAddr, PeerProgress>,
    /// `None` while running; then `Ok(elapsed)` or `Err(message)`.
    outcome: Option<Result<Duration, (Duration, String)>>,
}

#[derive(Clone, Copy)]
struct PeerProgress {
    chunks: u32,
    bytes: u64,
    last: Instant,
}

impl DownloadStatus {
    /// Records an arrived chunk.
    pub fn chunk(&self, ev: &ChunkEvent) {
        let now = Instant::now();
        let mut p = lock(&self.progress);
        if p.done_chunks == 0 && p.samples.len() == 1 {
            // The first chunk: anything before it was resumed from disk and
            // must not count towards the rate.
            p.samples[0].1 = ev.done_bytes.saturating_sub(ev.bytes);
        }
        p.done_chunks = p.done_chunks.max(ev.done);
        p.done_bytes = p.done_bytes.max(ev.done_bytes);
        let done_bytes = p.done_bytes;
        p.samples.push_back((now, done_bytes));
        while p.samples.len() > 2 && now.duration_since(p.samples[1].0) > RATE_WINDOW {
            p.samples.pop_front();
        }
        let peer = p.peers.entry(ev.from).or_insert(PeerProgress {
            chunks: 0,
            bytes: 0,
            last: now,
        });
        peer.chunks += 1;
        peer.bytes += ev.bytes;
        peer.last = now;
    }

    /// Marks the download finished: `Ok` on success, or the error text.
    pub fn finish(&self, result: Result<(), String>) {
        let elapsed = self.started.elapsed();
        let mut p = lock(&self.progress);
        if p.outcome.is_none() {
            if result.is_ok() {
                p.done_chunks = self.total_chunks;
                p.done_bytes = self.size;
            }
            p.outcome = Some(result.map(|()| elapsed).map_err(|e| (elapsed, e)));
        }
    }

    fn is_finished(&self) -> bool {
        lock(&self.progress).outcome.is_some()
    }

    /// What this download looks like at `now`.
    pub fn view(&self, now: Instant) -> DownloadView {
        let p = lock(&self.progress);
        let (state, elapsed, error) = match &p.outcome {
            None => (State::Running, now.duration_since(self.started), None),
            Some(Ok(d)) => (State::Done, *d, None),
            Some(Err((d, e))) => (State::Failed, *d, Some(e.clone())),
        };
        let rate = match state {
            State::Running => window_rate(&p.samples, p.done_bytes, now),
            // Finished: the average over the whole download.
            _ => p.done_bytes as f64 / elapsed.as_secs_f64().max(1e-3),
        };
        let left = self.size.saturating_sub(p.done_bytes);
        let eta_secs = (state == State::Running && rate > 0.0).then(|| (left as f64 / rate).ceil());
        let mut peers: Vec<PeerView> = p
            .peers
            .iter()
            .map(|(addr, pp)| PeerView {
                addr: addr.to_string(),
                chunks: pp.chunks,
                bytes: pp.bytes,
                active: state == State::Running && now.duration_since(pp.last) <= ACTIVE_PEER,
            })
            .collect();
        peers.sort_by(|a, b| b.chunks.cmp(&a.chunks).then(a.addr.cmp(&b.addr)));
        DownloadView {
            key: self.key,
            name: self.name.clone(),
            id: self.id.to_hex(),
            size: self.size,
            done_bytes: p.done_bytes,
            done_chunks: p.done_chunks,
            total_chunks: self.total_chunks,
            rate: rate.round() as u64,
            eta_secs: eta_secs.map(|s| s as u64),
            elapsed_secs: elapsed.as_secs_f64(),
            state,
            error,
            peers,
        }
    }
}

/// Bytes per second since the oldest sample, up to `now`, so a stalled
/// download's rate falls towards zero instead of freezing.
fn window_rate(samples: &VecDeque<(Instant, u64)>, done: u64, now: Instant) -> f64 {
    let Some(&(t0, b0)) = samples.front() else {
        return 0.0;
    };
    let secs = now.duration_since(t0).as_secs_f64();
    if secs < 0.05 {
        return 0.0;
    }
    done.saturating_sub(b0) as f64 / secs
}

/// Marks a download failed if it is dropped unfinished (an early return or
/// a panic), so `status` never shows it running forever.
pub struct FinishGuard(pub Arc<DownloadStatus>);

impl Drop for FinishGuard {
    fn drop(&mut self) {
        self.0.finish(Err("stopped".into()));
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update leaves the data consistent, so a poisoned lock is usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A download's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Running,
    Done,
    Failed,
}

impl State {
    /// The name JSON uses too.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Done => "done",
            State::Failed => "failed",
        }
    }
}

/// One download, as `status` and `GET /api/status` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DownloadView {
    /// Unique within this process, for telling downloads of one file apart.
    pub key: u64,
    pub name: String,
    pub id: String,
    pub size: u64,
    pub done_bytes: u64,
    pub done_chunks: u32,
    pub total_chunks: u32,
    /// Bytes per second: over the last few seconds while running, the
    /// average once finished.
    pub rate: u64,
    /// Seconds left at the current rate; `None` when unknown or finished.
    pub eta_secs: Option<u64>,
    pub elapsed_secs: f64,
    pub state: State,
    pub error: Option<String>,
    /// Every peer that delivered a chunk, most chunks first.
    pub peers: Vec<PeerView>,
}

/// A peer serving a download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerView {
    pub addr: String,
    pub chunks: u32,
    pub bytes: u64,
    /// Delivered a chunk within the last few seconds.
    pub active: bool,
}

/// A shared file and what was uploaded of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedView {
    pub name: String,
    pub id: String,
    pub size: u64,
    pub uploaded: u64,
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
            (Some(ago), Some(n)) => format!("last announce {ago} s ago ({n} file(s))"),
            _ => "not announced yet".to_string(),
        };
        format!(
            "dht: node {} on UDP {}, {} node(s) in the routing table, {announce}\n",
            self.node_id, self.udp, self.routing_table
        )
    }
}

/// Everything `GET /api/status` reports about a peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// Always `"peer"`; the page uses it to pick its layout.
    pub role: String,
    pub version: String,
    pub listen: String,
    pub tracker: String,
    pub caps: Caps,
    pub shared: Vec<SharedView>,
    pub downloads: Vec<DownloadView>,
    /// `null` unless the peer runs a DHT node.
    pub dht: Option<DhtView>,
}

impl PeerStatus {
    /// A snapshot of `peer` now.
    pub fn of(peer: &Peer) -> PeerStatus {
        let shared = peer
            .library
            .list()
            .iter()
            .map(|f| SharedView {
                name: f.name.clone(),
                id: f.id.to_hex(),
                size: f.manifest.size(),
                uploaded: f.uploaded(),
            })
            .collect();
        PeerStatus {
            role: "peer".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            listen: peer.listen.to_string(),
            tracker: peer.tracker.addr().to_string(),
            caps: Caps {
                upload: peer.rates.up.get(),
                download: peer.rates.down.get(),
            },
            shared,
            downloads: peer.transfers.snapshot(Instant::now()),
            dht: peer.dht_status().as_ref().map(DhtView::of),
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
            .filter(|d| d.state == State::Running)
            .count();
        let finished = self.downloads.len() - running;
        if self.downloads.is_empty() {
            out.push_str("downloads: none yet\n");
        } else {
            out.push_str(&format!(
                "downloads: {running} running, {finished} finished\n"
            ));
        }
        for d in &self.downloads {
            out.push_str(&download_text(d));
        }
        let uploaded: u64 = self.shared.iter().map(|f| f.uploaded).sum();
        out.push_str(&format!(
            "uploads: {} shared file(s), {} uploaded in all\n",
            self.shared.len(),
            size_and_bytes(uploaded)
        ));
        for f in &self.shared {
            out.push_str(&format!(
                "  {}  uploaded {} of a {} file\n",
                f.name,
                size_and_bytes(f.uploaded),
                format_size(f.size)
            ));
        }
        if let Some(dht) = &self.dht {
            out.push_str(&dht.text());
        }
        out.push_str(&format!(
            "limits: upload {}, download {}",
            format_rate(self.caps.upload),
            format_rate(self.caps.download)
        ));
        out
    }
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
    let mut line = format!(
        "  {}  {}  {pct:.1}%  {} of {} ({} of {} bytes)",
        d.name,
        d.state.as_str(),
        format_size(d.done_bytes),
        format_size(d.size),
        d.done_bytes,
        d.size
    );
    match d.state {
        State::Running => {
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
    if !d.peers.is_empty() {
        let peers: Vec<String> = d
            .peers
            .iter()
            .map(|p| {
                let active = if p.active { ", active" } else { "" };
                format!("{} ({} chunks{active})", p.addr, p.chunks)
            })
            .collect();
        line.push_str(&format!("    peers: {}\n", peers.join(", ")));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn event(index: u32, from: u16, done: u32, done_bytes: u64) -> ChunkEvent {
        ChunkEvent {
            index,
            from: addr(from),
            done,
            total: 4,
            bytes: 100,
            done_bytes,
            size: 350,
        }
    }

    #[test]
    fn tracks_chunks_peers_and_outcome() {
        let t = Transfers::default();
        let d = t.begin("a.bin", FileId([7; 32]), 350, 4);
        // One chunk was resumed from disk: the first event reports 2 done.
        d.chunk(&event(1, 1, 2, 200));
        d.chunk(&event(2, 2, 3, 300));
        d.chunk(&event(3, 1, 4, 350));
        let later = Instant::now() + Duration::from_secs(1);
        let v = &t.snapshot(later)[0];
        assert_eq!((v.key, v.name.as_str(), v.size), (1, "a.bin", 350));
        assert_eq!(v.id, "07".repeat(32));
        assert_eq!((v.done_chunks, v.total_chunks, v.done_bytes), (4, 4, 350));
        assert_eq!(v.state, State::Running);
        // 250 bytes fetched (not the resumed 100) in about a second.
        assert!((200..=260).contains(&v.rate), "rate {}", v.rate);
        let peers: Vec<_> = v
            .peers
            .iter()
            .map(|p| (p.addr.as_str(), p.chunks))
            .collect();
        assert_eq!(peers, vec![("127.0.0.1:1", 2), ("127.0.0.1:2", 1)]);
        assert!(v.peers.iter().all(|p| p.active));

        d.finish(Ok(()));
        d.finish(Err("late".into()));
        let v = &t.snapshot(Instant::now())[0];
        assert_eq!(
            (v.state, v.eta_secs, v.error.clone()),
            (State::Done, None, None)
        );
        assert!(v.peers.iter().all(|p| !p.active));
    }

    #[test]
    fn text_shows_progress_peers_and_uploads() {
        let t = Transfers::default();
        let d = t.begin("big file.bin", FileId([9; 32]), 4 << 20, 8);
        d.chunk(&ChunkEvent {
            index: 0,
            from: addr(7),
            done: 1,
            total: 8,
            bytes: 1 << 19,
            done_bytes: 1 << 19,
            size: 4 << 20,
        });
        let status = PeerStatus {
            role: "peer".into(),
            version: "0".into(),
            listen: "127.0.0.1:1".into(),
            tracker: "127.0.0.1:2".into(),
            caps: Caps {
                upload: None,
                download: Some(2 << 20),
            },
            shared: vec![SharedView {
                name: "a.txt".into(),
                id: "00".repeat(32),
                size: 745,
                uploaded: 3 << 20,
            }],
            dht: Some(DhtView {
                node_id: "ab".repeat(20),
                udp: "127.0.0.1:3".into(),
                routing_table: 4,
                last_announce_secs_ago: Some(2),
                last_announce_files: Some(1),
            }),
            downloads: t.snapshot(Instant::now() + Duration::from_secs(1)),
        };
        let text = status.to_text();
        let want = [
            "downloads: 1 running, 0 finished",
            "  big file.bin  running  12.5%  512.0 KiB of 4.0 MiB (524288 of 4194304 bytes)  ",
            "    peers: 127.0.0.1:7 (1 chunks, active)",
            "uploads: 1 shared file(s), 3.0 MiB (3145728 bytes) uploaded in all",
            "  a.txt  uploaded 3.0 MiB (3145728 bytes) of a 745 B file",
            "limits: upload off, download 2M",
            "dht: node abab",
            "4 node(s) in the routing table, last announce 2 s ago (1 file(s))",
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
    }

    #[test]
    fn a_dropped_guard_marks_failure_and_history_is_bounded() {
        let t = Transfers::default();
        let running = t.begin("running", FileId([1; 32]), 10, 1);
        for n in 0..KEEP_FINISHED + 5 {
            let d = t.begin(&format!("f{n}"), FileId([2; 32]), 10, 1);
            drop(FinishGuard(d));
        }
        let all = t.snapshot(Instant::now());
        assert_eq!(all.len(), KEEP_FINISHED + 1);
        assert_eq!(all[0].name, "running");
        assert_eq!(all[1].name, "f5");
        assert_eq!(all[1].state, State::Failed);
        assert_eq!(all[1].error.as_deref(), Some("stopped"));
        drop(running);
    }

    #[test]
    fn a_stalled_download_slows_down_and_json_round_trips() {
        let t = Transfers::default();
        let d = t.begin("b", FileId([3; 32]), 1000, 10);
        d.chunk(&event(0, 1, 1, 100));
        let soon = t.snapshot(Instant::now() + Duration::from_millis(500))[0].rate;
        let much_later = t.snapshot(Instant::now() + Duration::from_secs(60))[0].clone();
        assert!(much_later.rate < soon, "{} !< {soon}", much_later.rate);
        assert!(much_later.peers.iter().all(|p| !p.active));
        let json = serde_json::to_string(&much_later).unwrap();
        assert!(json.contains("\"state\":\"running\""), "{json}");
        let back: DownloadView = serde_json::from_str(&json).unwrap();
        assert_eq!(back, much_later);
    }
}
