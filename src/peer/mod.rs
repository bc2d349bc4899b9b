//! A peer: shares files (its chunk server runs on threads of its own),
//! announces them to the tracker periodically, and downloads from other
//! peers, each download on threads of its own behind a handle. `Peer` ties
//! the parts together; the REPL and the binary are thin layers over it.

pub mod announcer;
pub mod download;
pub mod downloads;
pub mod editor;
pub mod input;
pub mod library;
pub mod locate;
pub mod offer;
pub mod repl;
pub mod server;
pub mod status;
pub mod swarm;
pub mod tracker_client;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use thiserror::Error;

use self::announcer::Announcer;
use self::download::{DownloadError, DownloadHandle, Swarm};
use self::downloads::Downloads;
use self::library::{Library, SharedFile};
use self::locate::Located;
use self::status::PeerStatus;
use self::swarm::PeerSwarm;
use self::tracker_client::{tracker_addr, TrackerClient, TrackerPin};
use crate::dht::{DhtError, DhtNode, DhtStatus};
use crate::error::Error;
use crate::identity::{Identity, PeerId};
use crate::link::{LinkError, ShareLink};
use crate::net::accept::ServerHandle;
use crate::net::rate::RateCap;
use crate::net::stop::StopSignal;
use crate::net::tls::Tls;
use crate::private::{listed_id, PrivateError, Secret};
use crate::protocol::message::{validate_name, IdPrefix};
use crate::protocol::FileSummary;
use crate::storage::{self, StoreError};

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
    #[error("no peer has {0} (asked {1})")]
    NoPeers(String, &'static str),
    #[error(transparent)]
    BadLink(#[from] LinkError),
    #[error(transparent)]
    Dht(#[from] DhtError),
    #[error("cannot listen on {addr}: {source}")]
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
}

/// The file in a peer's state directory that pins trackers' ids.
pub const KNOWN_TRACKERS: &str = "known_trackers";

/// Start-up settings of a peer.
pub struct Options {
    pub tracker_host: String,
    pub tracker_port: u16,
    pub listen: SocketAddr,
    pub workers: usize,
    /// How long a download waits for a usable peer when none is left.
    pub patience: Duration,
    pub announce_interval: Duration,
    /// Upload and download caps in bytes per second (`None`: no cap).
    pub max_upload: Option<u64>,
    pub max_download: Option<u64>,
    /// Run a Mainline DHT node (`None`: tracker only).
    pub dht: Option<DhtOptions>,
    /// This peer's identity (its state directory's, usually).
    pub identity: Identity,
    /// Where this peer keeps what it learns (`known_trackers`); `None`:
    /// nowhere.
    pub state_dir: Option<PathBuf>,
    /// The tracker's id, if given (`--tracker-id`); else learned.
    pub tracker_id: Option<PeerId>,
}

/// DHT settings of a peer.
pub struct DhtOptions {
    /// UDP port (`None`: the same number as the TCP listen port).
    pub port: Option<u16>,
    /// `HOST:PORT` nodes to join through (empty: the tracker's address).
    pub bootstrap: Vec<String>,
}

/// The peer's bandwidth caps, shared by all its connections.
pub struct Rates {
    pub up: Arc<RateCap>,
    pub down: Arc<RateCap>,
}

pub struct Peer {
    tls: Tls,
    state_dir: Option<PathBuf>,
    library: Arc<Library>,
    tracker: TrackerClient,
    listen: SocketAddr,
    workers: usize,
    patience: Duration,
    rates: Rates,
    dht: Option<Arc<DhtNode>>,
    announcer: Arc<Announcer>,
    swarm: Arc<PeerSwarm>,
    downloads: Arc<Downloads>,
    /// Interrupts the tracker requests of the REPL command being run.
    command: Arc<Mutex<Arc<StopSignal>>>,
    /// The chunk server; stopped when the peer is dropped.
    _server: ServerHandle,
}

impl Peer {
    /// Binds the chunk server and starts its threads, the announcer thread
    /// and, if asked, the DHT node.
    pub fn start(opts: &Options) -> Result<Peer, PeerError> {
        let bind_error = |source| PeerError::Bind {
            addr: opts.listen,
            source,
        };
        let listener = TcpListener::bind(opts.listen).map_err(bind_error)?;
        let listen = listener.local_addr().map_err(bind_error)?;
        let library = Arc::new(Library::default());
        let rates = Rates {
            up: Arc::new(RateCap::new(opts.max_upload)),
            down: Arc::new(RateCap::new(opts.max_download)),
        };
        let tls = Tls::new(opts.identity.clone()).map_err(PeerError::Tls)?;
        let tracker_addr = tracker_addr(&opts.tracker_host, opts.tracker_port);
        let known = opts.state_dir.as_ref().map(|d| d.join(KNOWN_TRACKERS));
        let pin = Arc::new(TrackerPin::new(&tracker_addr, opts.tracker_id, known));
        let tracker = TrackerClient::new(tracker_addr, listen.port(), tls.clone(), pin);
        let dht = match &opts.dht {
            Some(d) => Some(Arc::new(start_dht(d, opts, listen)?)),
            None => None,
        };
        let announcer = Arc::new(
            Announcer::spawn(
                Arc::clone(&library),
                tracker.clone(),
                dht.clone(),
                listen.port(),
                opts.announce_interval,
            )
            .map_err(PeerError::Spawn)?,
        );
        let kick = Arc::clone(&announcer);
        let server = server::spawn(
            listener,
            Arc::clone(&library),
            Arc::clone(&rates.up),
            &tls,
            Arc::new(move || kick.kick()),
        )
        .map_err(PeerError::Spawn)?;
        let swarm = Arc::new(PeerSwarm {
            tracker: tracker.clone(),
            dht: dht.clone(),
            announcer: Arc::clone(&announcer),
            library: Arc::clone(&library),
            listen,
            id: tls.id(),
        });
        Ok(Peer {
            tls,
            state_dir: opts.state_dir.clone(),
            tracker,
            library,
            listen,
            workers: opts.workers.max(1),
            patience: opts.patience,
            rates,
            dht,
            announcer,
            swarm,
            downloads: Arc::default(),
            command: Arc::new(Mutex::new(StopSignal::new())),
            _server: server,
        })
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// Where this peer keeps its identity and what it remembers.
    pub fn state_dir(&self) -> Option<&Path> {
        self.state_dir.as_deref()
    }

    /// This peer's id (the hash of its certificate).
    pub fn id(&self) -> PeerId {
        self.tls.id()
    }

    /// The tracker's id as far as this peer knows it.
    pub fn tracker_id(&self) -> Option<PeerId> {
        self.tracker.tracker_id()
    }

    pub fn library(&self) -> &Library {
        &self.library
    }

    /// The upload and download caps, changeable while transfers run.
    pub fn rates(&self) -> &Rates {
        &self.rates
    }

    /// What this peer is sharing, uploading and downloading right now.
    pub fn status(&self) -> PeerStatus {
        PeerStatus::of(self)
    }

    /// The DHT node's state, if the DHT is on.
    pub fn dht_status(&self) -> Option<DhtStatus> {
        self.dht.as_ref().map(|d| d.status())
    }

    /// Hashes and shares the file at `path` under its file name, then
    /// registers it. A tracker failure is returned beside the shared file: the
    /// file is shared locally and announced when the tracker is back. A
    /// `private` share gets a new secret (its link carries it): it is served
    /// only on connections that prove it, and registered unlisted under its
    /// blinded id.
    pub fn share(
        &self,
        path: &Path,
        private: bool,
    ) -> Result<(Arc<SharedFile>, Option<PeerError>), PeerError> {
        self.share_reporting(path, private, &|_| {})
    }

    /// Like [`share`](Self::share), calling `on_bytes` as chunks are hashed.
    pub fn share_reporting(
        &self,
        path: &Path,
        private: bool,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<(Arc<SharedFile>, Option<PeerError>), PeerError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        validate_name(&name).map_err(|e| PeerError::BadName {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let secret = match private {
            true => Some(Secret::generate()?),
            false => None,
        };
        let manifest = storage::manifest_of_reporting(path, on_bytes)?;
        let before = self.library.get(&manifest.id());
        let shared = self
            .library
            .add(name, path.to_path_buf(), manifest, secret)
            .map_err(|source| StoreError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        // The same file shared again with new content replaces the old id,
        // and the same content shared again (public or private) its old
        // listing.
        let mut gone = self.library.remove_others_at(path, &shared.id);
        gone.extend(before.filter(|old| old.listed != shared.listed));
        for old in gone {
            if let Err(e) = self.announcer.withdraw(&old.listed) {
                log::info!("{}", self.tracker_error(e));
            }
        }
        let warning = self.announce_now(&shared);
        Ok((shared, warning))
    }

    /// Every file the tracker knows whose name contains `text`.
    pub fn search(&self, text: &str) -> Result<Vec<FileSummary>, PeerError> {
        self.command_tracker()
            .search(text)
            .map_err(|e| self.tracker_error(e))
    }

    /// Finds the one file that `target` names (a share link, a name, an id
    /// or id prefix) and the peers that have it, from the tracker and the DHT.
    pub fn locate(&self, target: &str) -> Result<Located, PeerError> {
        let wanted = locate::wanted(target, self)?;
        let name = wanted.name.unwrap_or_else(|| wanted.id.to_hex());
        let listed = listed_id(&wanted.id, wanted.secret.as_ref());
        let (peers, from_tracker, from_dht) = self.swarm.find(&self.command_tracker(), &listed)?;
        if peers.is_empty() {
            let asked = if self.dht.is_some() {
                "tracker and DHT"
            } else {
                "tracker"
            };
            return Err(PeerError::NoPeers(name, asked));
        }
        Ok(Located {
            id: wanted.id,
            secret: wanted.secret,
            name,
            size: wanted.size,
            sizes: wanted.sizes,
            peers,
            from_tracker,
            from_dht,
        })
    }

    /// Where a download of `file` will be written: `out`, or its name in
    /// the current directory. Refuses names that are not a single safe path
    /// component, outputs that exist, and directories that do not.
    pub fn output_path(&self, file: &Located, out: Option<&Path>) -> Result<PathBuf, PeerError> {
        validate_name(&file.name).map_err(|e| PeerError::BadName {
            path: PathBuf::from(&file.name),
            reason: e.to_string(),
        })?;
        let out = out.map_or_else(|| PathBuf::from(&file.name), Path::to_path_buf);
        if out.symlink_metadata().is_ok() {
            return Err(StoreError::Exists(out).into());
        }
        match out.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(dir) if !dir.is_dir() => Err(PeerError::NoDirectory(dir.to_path_buf())),
            _ => Ok(out),
        }
    }

    /// Starts downloading `file` to `out` (see
    /// [`output_path`](Self::output_path)) on threads of its own; the
    /// finished file is shared. Fails if another download is writing `out`.
    pub fn download(&self, file: &Located, out: &Path) -> Result<DownloadHandle, PeerError> {
        let (progress, claim) = self
            .downloads
            .begin(&file.name, file.id, file.size, out)
            .map_err(|key| PeerError::OutputBusy {
                path: out.to_path_buf(),
                key,
            })?;
        progress.set_sources(file.from_tracker, file.from_dht);
        let ctx = download::Context {
            library: Arc::clone(&self.library),
            rate: Arc::clone(&self.rates.down),
            workers: self.workers,
            patience: self.patience,
            tls: self.tls.clone(),
            swarm: Arc::clone(&self.swarm) as Arc<dyn Swarm>,
        };
        let req = download::Request {
            id: file.id,
            secret: file.secret,
            name: file.name.clone(),
            out: out.to_path_buf(),
            sizes: file.sizes.clone(),
            peers: file.peers.clone(),
        };
        Ok(download::start(ctx, req, progress, move || drop(claim))?)
    }

    /// Unregisters from the tracker, waiting at most `timeout`.
    pub fn leave(&self, timeout: Duration) {
        // No announce may land after the BYE, or the tracker would list this
        // peer again until its TTL ran out.
        let started = std::time::Instant::now();
        let _quiet = self.announcer.stop(timeout * 3 / 5);
        let left = timeout.saturating_sub(started.elapsed());
        if let Err(e) = self.tracker.bye(left.max(Duration::from_millis(200))) {
            log::warn!(
                "could not unregister from tracker {}: {e}",
                self.tracker.addr()
            );
        }
    }

    /// Registers a newly shared file with the tracker at once (so the user
    /// hears if that failed) and wakes the announcer if there is more to do:
    /// the slower DHT announce, or retrying a tracker that did not answer.
    fn announce_now(&self, file: &Arc<SharedFile>) -> Option<PeerError> {
        self.announcer
            .register_now(std::slice::from_ref(file), self.dht.is_some())
            .err()
            .map(|e| self.tracker_error(e))
    }

    /// A tracker client for the command being run, which
    /// [`interrupt_command`](Self::interrupt_command) stops.
    fn command_tracker(&self) -> TrackerClient {
        let signal = self.command.lock().unwrap_or_else(|e| e.into_inner());
        self.tracker.interruptible(Arc::clone(&signal))
    }

    /// Starts a new command: tracker requests made for it from now on are
    /// stopped by the next [`interrupt_command`](Self::interrupt_command).
    pub fn begin_command(&self) {
        *self.command.lock().unwrap_or_else(|e| e.into_inner()) = StopSignal::new();
    }

    /// Interrupts the tracker requests of the command being run (the user
    /// quit, or input ended, while it waited on the tracker).
    pub fn interrupt_command(&self) {
        self.command
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stop();
    }

    /// Where the current command's signal is kept, for a thread that may
    /// interrupt it later (see `input`).
    pub fn command_signal(&self) -> Arc<Mutex<Arc<StopSignal>>> {
        Arc::clone(&self.command)
    }

    /// Every download of this run, oldest first, for `status`.
    pub fn downloads(&self) -> &Downloads {
        &self.downloads
    }

    fn tracker_error(&self, source: Error) -> PeerError {
        PeerError::Tracker {
            addr: self.tracker.addr().to_string(),
            source,
        }
    }
}

impl locate::Catalogue for Peer {
    fn search(&self, text: &str) -> Result<Vec<FileSummary>, PeerError> {
        Peer::search(self, text)
    }

    fn info(&self, prefix: &IdPrefix) -> Result<Vec<FileSummary>, PeerError> {
        self.command_tracker()
            .info(prefix)
            .map_err(|e| self.tracker_error(e))
    }
}

/// The share link of a shared file (with its secret, if private).
pub fn link_of(file: &SharedFile) -> ShareLink {
    ShareLink {
        id: file.id,
        name: Some(file.name.clone()),
        size: Some(file.manifest.size()),
        secret: file.secret,
    }
}

fn start_dht(d: &DhtOptions, opts: &Options, listen: SocketAddr) -> Result<DhtNode, PeerError> {
    let bootstrap = if d.bootstrap.is_empty() {
        vec![tracker_addr(&opts.tracker_host, opts.tracker_port)]
    } else {
        d.bootstrap.clone()
    };
    Ok(DhtNode::start(
        listen.ip(),
        d.port.unwrap_or(listen.port()),
        &bootstrap,
    )?)
}
