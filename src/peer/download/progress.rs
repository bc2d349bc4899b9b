//! `Progress`: the one record of how a download is going. Its workers write
//! it (one short lock per arrived chunk); the REPL's bar, `status` and
//! `/api/status` read it through [`Progress::view`], a plain serde snapshot,
//! so every display shows the same numbers. Chunks resumed from an earlier
//! attempt are recorded once, when the partial file is opened, and never
//! count towards the rate. Each chunk fetched is counted once, under the
//! same lock, by peer, by whether its peer was complete, and by the path
//! of the connection it came on (as the dialer made it, not as an
//! address suggests).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::bounds::{ACTIVE_PEER, RATE_WINDOW};
use crate::manifest::FileId;
use crate::peer::dial::Path;
use crate::sync::{LockExt, Unpoisoned};

/// A download's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Running,
    /// Running, but no peer can give a missing chunk: asking for more.
    Waiting,
    Done,
    Failed,
    Cancelled,
}

impl State {
    /// The name JSON uses too.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Waiting => "waiting for peers",
            State::Done => "done",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
        }
    }
}

/// How a download ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed(String),
    Cancelled(String),
}

pub struct Progress {
    key: u64,
    name: String,
    id: FileId,
    /// Where it is saved, when known.
    out: Option<String>,
    started: Instant,
    inner: Mutex<Inner>,
    /// Notified when the download ends.
    ended: Condvar,
}

struct Inner {
    size: u64,
    total_chunks: u32,
    done_chunks: u32,
    done_bytes: u64,
    resumed_bytes: u64,
    /// Bytes that came from peers with the whole file, and from peers that
    /// were downloading it too.
    from_complete: u64,
    from_partial: u64,
    /// The same bytes, by the path of the connection each came on.
    by_path: BytesByPath,
    /// `(time, done_bytes)`, oldest first: one sample older than
    /// [`RATE_WINDOW`] and all newer ones.
    samples: VecDeque<(Instant, u64)>,
    peers: HashMap<SocketAddr, PeerProgress>,
    peers_from_tracker: usize,
    peers_from_dht: usize,
    /// `None` while running; then how it ended, and after how long.
    outcome: Option<(Outcome, Duration)>,
    /// Since when no peer could give a missing chunk, while that lasts.
    waiting: Option<Instant>,
    /// A folder's files: whole here, and wanted.
    files_done: u32,
    files_total: u32,
}

#[derive(Clone, Copy)]
struct PeerProgress {
    chunks: u32,
    bytes: u64,
    last: Instant,
    /// Sent bad data: never used again.
    banned: bool,
    /// Failed repeatedly: not used for a while (until it delivers again).
    benched: bool,
}

impl PeerProgress {
    fn new(now: Instant) -> Self {
        PeerProgress {
            chunks: 0,
            bytes: 0,
            last: now,
            banned: false,
            benched: false,
        }
    }
}

impl Progress {
    /// A download of `id` as `name`, unique `key`, of `size` bytes as far
    /// as anyone claims (the manifest's size replaces it).
    pub fn new(key: u64, name: &str, id: FileId, size: Option<u64>) -> Progress {
        let now = Instant::now();
        Progress {
            key,
            name: name.to_string(),
            id,
            out: None,
            started: now,
            inner: Mutex::new(Inner {
                size: size.unwrap_or(0),
                total_chunks: 0,
                done_chunks: 0,
                done_bytes: 0,
                resumed_bytes: 0,
                from_complete: 0,
                from_partial: 0,
                by_path: BytesByPath::default(),
                samples: VecDeque::from([(now, 0)]),
                peers: HashMap::new(),
                peers_from_tracker: 0,
                peers_from_dht: 0,
                outcome: None,
                waiting: None,
                files_done: 0,
                files_total: 0,
            }),
            ended: Condvar::new(),
        }
    }

    pub fn key(&self) -> u64 {
        self.key
    }

    pub fn id(&self) -> FileId {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update leaves the data consistent, so a poisoned lock is usable.
        self.inner.locked()
    }

    /// Where the peers came from.
    pub fn set_sources(&self, from_tracker: usize, from_dht: usize) {
        let mut p = self.lock();
        p.peers_from_tracker = from_tracker;
        p.peers_from_dht = from_dht;
    }

    /// The manifest is in and the partial file open: `size` bytes in
    /// `total_chunks` chunks, of which `resumed_chunks` (`resumed_bytes`)
    /// were already verified on disk.
    pub fn start(&self, size: u64, total_chunks: u32, resumed_chunks: u32, resumed_bytes: u64) {
        let now = Instant::now();
        let mut p = self.lock();
        p.size = size;
        p.total_chunks = total_chunks;
        p.done_chunks = resumed_chunks;
        p.done_bytes = resumed_bytes;
        p.resumed_bytes = resumed_bytes;
        p.samples = VecDeque::from([(now, resumed_bytes)]);
    }

    /// A folder of `total` wanted files, `done` of them whole already.
    pub fn set_files(&self, done: u32, total: u32) {
        let mut p = self.lock();
        p.files_done = done;
        p.files_total = total;
    }

    /// `n` more files of a folder are whole.
    pub fn files_done(&self, n: u32) {
        let mut p = self.lock();
        p.files_done = (p.files_done + n).min(p.files_total);
    }

    /// Records a chunk of `bytes` that arrived from `from`, verified, on a
    /// connection made by `path`; `complete`: whether `from` has the whole
    /// file.
    pub fn chunk(&self, from: SocketAddr, bytes: u64, complete: bool, path: Path) {
        let now = Instant::now();
        let mut p = self.lock();
        p.done_chunks += 1;
        p.done_bytes += bytes;
        if complete {
            p.from_complete += bytes;
        } else {
            p.from_partial += bytes;
        }
        p.by_path.add(path, bytes);
        let done_bytes = p.done_bytes;
        p.samples.push_back((now, done_bytes));
        while p.samples.len() > 2 && now.duration_since(p.samples[1].0) > RATE_WINDOW {
            p.samples.pop_front();
        }
        let peer = p.peers.entry(from).or_insert(PeerProgress::new(now));
        peer.benched = false;
        peer.chunks += 1;
        peer.bytes += bytes;
        peer.last = now;
    }

    /// Records that `from` is no longer used by this download: for good
    /// (`forever`, it sent bad data) or for a while (it failed repeatedly).
    pub fn banned(&self, from: SocketAddr, forever: bool) {
        let now = Instant::now();
        let mut p = self.lock();
        let peer = p.peers.entry(from).or_insert(PeerProgress::new(now));
        if forever {
            peer.banned = true;
        } else {
            peer.benched = true;
        }
    }

    /// Marks the download as waiting for a usable peer, or no longer.
    pub fn set_waiting(&self, waiting: bool) {
        let mut p = self.lock();
        p.waiting = waiting.then(Instant::now);
    }

    /// Marks the download ended; only the first call counts.
    pub fn finish(&self, outcome: Outcome) {
        let elapsed = self.started.elapsed();
        let mut p = self.lock();
        if p.outcome.is_none() {
            if outcome == Outcome::Done {
                p.done_chunks = p.total_chunks;
                p.done_bytes = p.size;
            }
            p.outcome = Some((outcome, elapsed));
        }
        self.ended.notify_all();
    }

    pub fn is_finished(&self) -> bool {
        self.lock().outcome.is_some()
    }

    /// Waits at most `timeout` for the download to end; returns whether it has.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let p = self.lock();
        let (p, _) = self
            .ended
            .wait_timeout_while(p, timeout, |p| p.outcome.is_none())
            .unpoisoned();
        p.outcome.is_some()
    }

    /// The same record, saving to `out`.
    pub fn saving_to(self, out: &std::path::Path) -> Progress {
        Progress {
            out: Some(out.display().to_string()),
            ..self
        }
    }

    /// What this download looks like at `now`.
    pub fn view(&self, now: Instant) -> DownloadView {
        let p = self.lock();
        let (state, elapsed, error) = match &p.outcome {
            None if p.waiting.is_some() => (State::Waiting, now.duration_since(self.started), None),
            None => (State::Running, now.duration_since(self.started), None),
            Some((Outcome::Done, d)) => (State::Done, *d, None),
            Some((Outcome::Failed(e), d)) => (State::Failed, *d, Some(e.clone())),
            Some((Outcome::Cancelled(e), d)) => (State::Cancelled, *d, Some(e.clone())),
        };
        let rate = match state {
            State::Running | State::Waiting => window_rate(&p.samples, p.done_bytes, now),
            // Ended: the average of this attempt, resumed bytes left out.
            _ => {
                p.done_bytes.saturating_sub(p.resumed_bytes) as f64
                    / elapsed.as_secs_f64().max(1e-3)
            }
        };
        let left = p.size.saturating_sub(p.done_bytes);
        let eta_secs = (state == State::Running && rate > 0.0).then(|| (left as f64 / rate).ceil());
        let waiting_secs = p.waiting.map(|since| now.duration_since(since).as_secs());
        let mut peers: Vec<PeerView> = p
            .peers
            .iter()
            .map(|(addr, pp)| PeerView {
                addr: addr.to_string(),
                chunks: pp.chunks,
                bytes: pp.bytes,
                active: state == State::Running
                    && !pp.banned
                    && !pp.benched
                    && pp.chunks > 0
                    && now.duration_since(pp.last) <= ACTIVE_PEER,
                banned: pp.banned,
                benched: pp.benched,
                path: Default::default(),
            })
            .collect();
        peers.sort_by(|a, b| b.chunks.cmp(&a.chunks).then(a.addr.cmp(&b.addr)));
        DownloadView {
            key: self.key,
            name: self.name.clone(),
            out: self.out.clone(),
            id: self.id.to_hex(),
            size: p.size,
            done_bytes: p.done_bytes,
            done_chunks: p.done_chunks,
            total_chunks: p.total_chunks,
            resumed_bytes: p.resumed_bytes,
            from_complete_bytes: p.from_complete,
            from_partial_bytes: p.from_partial,
            bytes_by_path: p.by_path,
            rate: rate.round() as u64,
            eta_secs: eta_secs.map(|s| s as u64),
            elapsed_secs: elapsed.as_secs_f64(),
            state,
            error,
            waiting_secs,
            peers_from_tracker: p.peers_from_tracker,
            peers_from_dht: p.peers_from_dht,
            peers,
            files_done: p.files_done,
            files_total: p.files_total,
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

mod view;

pub use self::view::{BytesByPath, DownloadView, PeerView};

#[cfg(test)]
mod tests;
