//! A peer: shares files (its chunk server runs on a thread of its own),
//! announces them to the tracker periodically, and downloads from other peers.
//! `Peer` ties the parts together; the REPL and the binary are thin layers
//! over it.

pub mod download;
pub mod library;
pub mod repl;
pub mod scheduler;
pub mod server;
pub mod tracker_client;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use thiserror::Error;

use self::download::{ChunkEvent, DownloadError, Report};
use self::library::{Library, SharedFile};
use self::tracker_client::{Announcement, TrackerClient};
use crate::error::Error;
use crate::limit::RateLimit;
use crate::protocol::message::validate_name;
use crate::protocol::FileSummary;
use crate::store::{self, StoreError};

#[derive(Debug, Error)]
pub enum PeerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Download(#[from] DownloadError),
    #[error("tracker {addr}: {source}")]
    Tracker { addr: String, source: Error },
    #[error("cannot share {path}: {reason}")]
    BadName { path: PathBuf, reason: String },
    #[error("the tracker knows no file named {0:?} or with an id starting with it")]
    NotFound(String),
    #[error("{} files match {target:?}; download one of them by id", candidates.len())]
    Ambiguous {
        target: String,
        candidates: Vec<FileSummary>,
    },
    #[error("no peer has {0} any more")]
    NoPeers(String),
}

/// Start-up settings of a peer.
pub struct Options {
    pub tracker_host: String,
    pub tracker_port: u16,
    pub listen: SocketAddr,
    pub workers: usize,
    pub announce_interval: Duration,
    /// Upload and download caps in bytes per second (`None`: no cap).
    pub max_upload: Option<u64>,
    pub max_download: Option<u64>,
}

/// The peer's bandwidth caps, shared by all its connections.
pub struct Rates {
    pub up: Arc<RateLimit>,
    pub down: Arc<RateLimit>,
}

pub struct Peer {
    library: Arc<Library>,
    tracker: TrackerClient,
    listen: SocketAddr,
    workers: usize,
    rates: Rates,
}

impl Peer {
    /// Binds the chunk server and starts its thread and the announcer thread.
    pub fn start(opts: &Options) -> std::io::Result<Peer> {
        let listener = TcpListener::bind(opts.listen)?;
        let listen = listener.local_addr()?;
        let library = Arc::new(Library::default());
        let rates = Rates {
            up: Arc::new(RateLimit::new(opts.max_upload)),
            down: Arc::new(RateLimit::new(opts.max_download)),
        };
        let (lib, up) = (Arc::clone(&library), Arc::clone(&rates.up));
        thread::Builder::new()
            .name("peer-server".into())
            .spawn(move || server::serve(listener, lib, up))?;
        let peer = Peer {
            tracker: TrackerClient::new(&opts.tracker_host, opts.tracker_port, listen.port()),
            library,
            listen,
            workers: opts.workers.max(1),
            rates,
        };
        peer.spawn_announcer(opts.announce_interval)?;
        Ok(peer)
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    pub fn library(&self) -> &Library {
        &self.library
    }

    /// The upload and download caps, changeable while transfers run.
    pub fn rates(&self) -> &Rates {
        &self.rates
    }

    /// Re-registers every shared file every `interval`, so a restarted
    /// tracker learns them again and this peer's entries do not expire. While
    /// the tracker is unreachable it retries sooner, backing off from 1 s.
    fn spawn_announcer(&self, interval: Duration) -> std::io::Result<()> {
        let library = Arc::clone(&self.library);
        let tracker = self.tracker.clone();
        thread::Builder::new()
            .name("announcer".into())
            .spawn(move || {
                let mut retry = None;
                loop {
                    thread::sleep(retry.unwrap_or(interval));
                    retry = match announce(&tracker, &library.list()) {
                        Ok(()) => None,
                        Err(e) => {
                            let next = next_retry(retry, interval);
                            log::warn!(
                                "announce to tracker {} failed: {e}; retrying in {next:?}",
                                tracker.addr()
                            );
                            Some(next)
                        }
                    };
                }
            })?;
        Ok(())
    }

    /// Hashes and shares the file at `path` under its file name, then
    /// registers it. A tracker failure is returned beside the shared file: the
    /// file is shared locally and announced when the tracker is back.
    pub fn share(&self, path: &Path) -> Result<(Arc<SharedFile>, Option<PeerError>), PeerError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        validate_name(&name).map_err(|e| PeerError::BadName {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let manifest = store::manifest_of(path)?;
        let shared = self
            .library
            .add(name, path.to_path_buf(), manifest)
            .map_err(|source| StoreError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        let warning = announce(&self.tracker, &[Arc::clone(&shared)])
            .err()
            .map(|e| self.tracker_error(e));
        Ok((shared, warning))
    }

    /// Every file the tracker knows whose name contains `text`.
    pub fn search(&self, text: &str) -> Result<Vec<FileSummary>, PeerError> {
        self.tracker.search(text).map_err(|e| self.tracker_error(e))
    }

    /// Finds the one file that `target` names (exact name, or id prefix) and
    /// the peers that have it.
    pub fn locate(&self, target: &str) -> Result<(FileSummary, Vec<SocketAddr>), PeerError> {
        let all = self.search("")?;
        let file = resolve(target, all)?;
        let peers = self
            .tracker
            .peers(&file.id)
            .map_err(|e| self.tracker_error(e))?;
        if peers.is_empty() {
            return Err(PeerError::NoPeers(file.name));
        }
        Ok((file, peers))
    }

    /// Downloads `file` from `peers` to `out` (default: its name in the
    /// current directory), then shares the result.
    pub fn download(
        &self,
        file: &FileSummary,
        peers: &[SocketAddr],
        out: Option<&Path>,
        on_chunk: &(dyn Fn(ChunkEvent) + Sync),
    ) -> Result<(Report, Option<PeerError>), PeerError> {
        validate_name(&file.name).map_err(|e| PeerError::BadName {
            path: PathBuf::from(&file.name),
            reason: e.to_string(),
        })?;
        let out = out.map_or_else(|| PathBuf::from(&file.name), Path::to_path_buf);
        if out.symlink_metadata().is_ok() {
            return Err(StoreError::Exists(out).into());
        }
        let (manifest, peers) = download::fetch_manifest(&file.id, peers)?;
        let report = download::download(
            &file.id,
            &manifest,
            &peers,
            &out,
            self.workers,
            &self.rates.down,
            on_chunk,
        )?;
        let shared = self
            .library
            .add(file.name.clone(), report.path.clone(), manifest)
            .map_err(|source| StoreError::Io {
                path: report.path.clone(),
                source,
            })?;
        let warning = announce(&self.tracker, &[shared])
            .err()
            .map(|e| self.tracker_error(e));
        Ok((report, warning))
    }

    /// Unregisters from the tracker, waiting at most `timeout`.
    pub fn leave(&self, timeout: Duration) {
        if let Err(e) = self.tracker.bye(timeout) {
            log::warn!(
                "could not unregister from tracker {}: {e}",
                self.tracker.addr()
            );
        }
    }

    fn tracker_error(&self, source: Error) -> PeerError {
        PeerError::Tracker {
            addr: self.tracker.addr().to_string(),
            source,
        }
    }
}

fn announce(tracker: &TrackerClient, files: &[Arc<SharedFile>]) -> Result<(), Error> {
    let list: Vec<Announcement<'_>> = files
        .iter()
        .map(|f| Announcement {
            id: f.id,
            size: f.manifest.size(),
            name: &f.name,
        })
        .collect();
    tracker.register(&list)
}

/// The delay before retrying a failed announce, given the previous retry
/// delay (`None` after a success): 1 s, then doubling, at most `interval`.
fn next_retry(previous: Option<Duration>, interval: Duration) -> Duration {
    previous
        .map_or(Duration::from_secs(1), |d| d * 2)
        .min(interval)
}

/// Picks the file `target` names among `files`: an exact name or an id
/// prefix (at least 4 hex digits). Several distinct matches are ambiguous.
pub fn resolve(target: &str, files: Vec<FileSummary>) -> Result<FileSummary, PeerError> {
    let prefix = target.to_ascii_lowercase();
    let is_prefix = prefix.len() >= 4 && prefix.bytes().all(|b| b.is_ascii_hexdigit());
    let mut matches: Vec<FileSummary> = files
        .into_iter()
        .filter(|f| f.name == target || (is_prefix && f.id.to_hex().starts_with(&prefix)))
        .collect();
    matches.dedup_by_key(|f| f.id);
    match matches.len() {
        0 => Err(PeerError::NotFound(target.to_string())),
        1 => Ok(matches.remove(0)),
        _ => Err(PeerError::Ambiguous {
            target: target.to_string(),
            candidates: matches,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::FileId;

    fn file(n: u8, name: &str) -> FileSummary {
        FileSummary {
            id: FileId([n; 32]),
            size: 1,
            peers: 1,
            name: name.into(),
        }
    }

    #[test]
    fn announce_retries_back_off_up_to_the_interval() {
        let interval = Duration::from_secs(30);
        let mut d = None;
        let mut seen = vec![];
        for _ in 0..7 {
            d = Some(next_retry(d, interval));
            seen.extend(d.map(|d| d.as_secs()));
        }
        assert_eq!(seen, vec![1, 2, 4, 8, 16, 30, 30]);
        let short = Duration::from_millis(500);
        assert_eq!(next_retry(None, short), short);
    }

    #[test]
    fn resolve_by_name_id_and_prefix() {
        let files = vec![
            file(0xaa, "a.txt"),
            file(0xbb, "b.txt"),
            file(0xbc, "b.txt"),
        ];
        assert_eq!(
            resolve("a.txt", files.clone()).unwrap().id,
            FileId([0xaa; 32])
        );
        assert_eq!(
            resolve("bbbb", files.clone()).unwrap().id,
            FileId([0xbb; 32])
        );
        assert_eq!(
            resolve(&"BC".repeat(32), files.clone()).unwrap().id,
            FileId([0xbc; 32])
        );
        assert!(
            matches!(resolve("b.txt", files.clone()), Err(PeerError::Ambiguous { candidates, .. }) if candidates.len() == 2)
        );
        assert!(matches!(
            resolve("aaa", files.clone()),
            Err(PeerError::NotFound(_))
        ));
        assert!(matches!(
            resolve("c.txt", files),
            Err(PeerError::NotFound(_))
        ));
    }
}
