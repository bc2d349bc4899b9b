//! A peer: shares files (its chunk server runs on threads of its own),
//! announces them to the tracker periodically, and downloads from other
//! peers, each download on threads of its own behind a handle. `Peer` ties
//! the parts together; the REPL and the binary are thin layers over it.
//!
//! The engine prints nothing: it returns values and emits [`events`] to
//! the subscribers the front gives it, and takes a caller's cancel token
//! (a `StopSignal`) as a parameter where a call waits on the tracker. Its
//! REPL, line editor and input (`repl`, `editor`, `input`) are the front's,
//! housed here for now.

pub mod announcer;
pub mod background;
pub mod dial;
pub mod download;
pub mod downloads;
mod error;
pub mod events;
mod fetching;
pub mod library;
pub mod locate;
pub mod memory;
pub mod nat;
pub mod offer;
pub mod portmap;
pub mod resume;
pub mod server;
mod sharing;
pub mod status;
pub mod swarm;
pub mod tracker_client;
pub mod tracker_pin;
pub mod uploads;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use self::dial::{Dialer, DirectDialer, RelayingDialer};
pub use self::error::PeerError;
pub use self::sharing::{hash, hash_tree, known, link_of, Hashed, Published};
pub use self::tracker_client::tracker_addr;

use self::announcer::Announcer;
use self::downloads::Downloads;
use self::events::Events;
use self::library::{Library, SharedFile};
use self::memory::Memory;
use self::portmap::PortMap;
use self::status::PeerStatus;
use self::swarm::PeerSwarm;
use self::tracker_client::TrackerClient;
use self::tracker_pin::TrackerPin;
use self::uploads::Uploads;
use crate::dht::{DhtNode, DhtStatus};
use crate::error::Error;
use crate::identity::{Identity, PeerId};
use crate::net::rate::RateCap;
use crate::net::stop::StopSignal;
use crate::net::tls::Tls;
use crate::server::ServerHandle;
use crate::state_file::names::KNOWN_TRACKERS;

/// Start-up settings of a peer.
pub struct Options {
    /// The tracker's `host:port` (see [`tracker_addr`]); `None`: no tracker
    /// (peers come from the DHT, or from a ticket).
    pub tracker: Option<String>,
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
    /// Addresses others reach this peer at beyond its interfaces' (a
    /// router's forwarded port): first in tickets. Port 0: the listen port.
    pub public_addrs: Vec<SocketAddr>,
    /// Remember shares and unfinished downloads in the state directory
    /// (see [`memory`]), for the next run.
    pub remember: bool,
    /// Ask the router to forward a public port to the chunk server (UPnP
    /// or NAT-PMP, see [`portmap`]); never for a loopback or IPv6 listen
    /// address.
    pub port_map: bool,
}

/// DHT settings of a peer.
pub struct DhtOptions {
    /// UDP port (`None`: the same number as the TCP listen port).
    pub port: Option<u16>,
    /// `HOST:PORT` nodes to join through (empty: the tracker's address, or
    /// with no tracker none: this node starts a network of its own).
    pub bootstrap: Vec<String>,
}

/// The peer's bandwidth caps, shared by all its connections.
pub struct Rates {
    pub up: Arc<RateCap>,
    pub down: Arc<RateCap>,
}

pub struct Peer {
    tls: Tls,
    /// How this peer reaches others: directly, then through the tracker's
    /// relay when it has a tracker.
    dialer: Arc<dyn Dialer>,
    state_dir: Option<PathBuf>,
    library: Arc<Library>,
    tracker: Option<TrackerClient>,
    listen: SocketAddr,
    workers: usize,
    patience: Duration,
    rates: Rates,
    dht: Option<Arc<DhtNode>>,
    announcer: Arc<Announcer>,
    swarm: Arc<PeerSwarm>,
    downloads: Arc<Downloads>,
    /// Who is fetching what from this peer.
    uploads: Arc<Uploads>,
    /// The router's port mapping (`None`: not asked for); shared with
    /// whoever checks it from outside (the dial-back).
    port_map: Option<Arc<PortMap>>,
    /// Who hears of downloads starting and ending.
    events: Arc<Events>,
    /// Where others may reach this peer, best first, for tickets.
    reachable: Vec<SocketAddr>,
    /// What this peer remembers across runs (`None`: nothing).
    memory: Option<Arc<Memory>>,
    /// Set once the peer is about to exit: downloads that end now are not
    /// announced as being shared on.
    leaving: Arc<AtomicBool>,
    /// Asks the tracker whether others can dial this peer (`None`: no
    /// tracker); stopped before the chunk server.
    reach: Option<nat::Reach>,
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
        // The state files first: one that is damaged or not ours refuses
        // the start before anything listens.
        let pin = match &opts.tracker {
            Some(addr) => {
                let known = opts.state_dir.as_ref().map(|d| d.join(KNOWN_TRACKERS));
                Some(TrackerPin::new(addr, opts.tracker_id, known)?)
            }
            None => None,
        };
        let memory = match (&opts.state_dir, opts.remember) {
            (Some(dir), true) => Some(Arc::new(Memory::open(dir)?)),
            _ => None,
        };
        let listener = TcpListener::bind(opts.listen).map_err(bind_error)?;
        // A hole punch connects out from the listen port.
        crate::net::punch::share_port(&listener).map_err(bind_error)?;
        let listen = listener.local_addr().map_err(bind_error)?;
        // First, so `send` has it sooner (a failed start deletes it).
        let port_map = PortMap::start_if(opts.port_map, listen, opts.tracker.is_some())
            .map_err(PeerError::Spawn)?;
        let library = Arc::new(Library::default());
        let rates = Rates {
            up: Arc::new(RateCap::new(opts.max_upload)),
            down: Arc::new(RateCap::new(opts.max_download)),
        };
        let tls = Tls::new(opts.identity.clone()).map_err(PeerError::Tls)?;
        let tracker = match (&opts.tracker, pin) {
            (Some(addr), Some(pin)) => Some(TrackerClient::new(
                addr.clone(),
                listen.port(),
                tls.clone(),
                Arc::new(pin),
            )),
            _ => None,
        };
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
        let uploads = Arc::new(Uploads::default());
        let serve = server::handler(
            Arc::clone(&library),
            Arc::clone(&uploads),
            Arc::clone(&rates.up),
            Arc::new(move || kick.kick()),
        );
        let server = server::spawn(listener, Arc::clone(&serve), &tls).map_err(PeerError::Spawn)?;
        let reach = match &tracker {
            Some(t) => {
                let on_punch = nat::punch::on_punch(listen.port(), &tls, Arc::clone(&serve));
                let on_join = nat::relay::on_join(t.addr().to_string(), &tls, serve);
                let map = port_map.clone();
                let reach = nat::Reach::spawn(t, on_join, on_punch, map);
                Some(reach.map_err(PeerError::Spawn)?)
            }
            None => None,
        };
        let swarm = Arc::new(PeerSwarm {
            tracker: tracker.clone(),
            dht: dht.clone(),
            announcer: Arc::clone(&announcer),
            library: Arc::clone(&library),
            memory: memory.clone(),
            listen,
            id: tls.id(),
            // Nodes the user named are peers; the tracker that stands in for
            // them when none is named is not.
            bootstrap_are_peers: opts.dht.as_ref().is_some_and(|d| !d.bootstrap.is_empty()),
        });
        Ok(Peer {
            dialer: match &tracker {
                Some(t) => Arc::new(RelayingDialer::new(tls.clone(), t.clone())),
                None => Arc::new(DirectDialer::new(tls.clone())),
            },
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
            uploads,
            port_map,
            events: Arc::default(),
            leaving: Arc::default(),
            reachable: sharing::reachable_addrs(listen, &opts.public_addrs),
            memory,
            reach,
            _server: server,
        })
    }

    /// The router's port mapping, if this peer asked for one: its
    /// candidate address for a dial-back, `confirm` once one reached it.
    pub fn port_map(&self) -> Option<&Arc<PortMap>> {
        self.port_map.as_ref()
    }

    /// Who is fetching what from this peer, as the chunk server heard it.
    pub fn uploads(&self) -> &Uploads {
        &self.uploads
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
        self.tracker.as_ref().and_then(TrackerClient::tracker_id)
    }

    /// Whether others can dial this peer, as the tracker last said.
    pub fn reach(&self) -> Option<nat::ReachView> {
        self.reach.as_ref()?.view()
    }

    /// How the last connection to the tracker went, if there was one.
    pub fn tracker_contact(&self) -> Option<tracker_client::Contact> {
        self.tracker.as_ref().and_then(TrackerClient::last_contact)
    }

    /// The tracker's `host:port`, if this peer has one.
    pub fn tracker_addr(&self) -> Option<&str> {
        self.tracker.as_ref().map(TrackerClient::addr)
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

    /// Marks the peer as about to exit (downloads ending now are not
    /// reported as shared on).
    pub fn set_leaving(&self) {
        self.leaving.store(true, Ordering::Release);
    }

    /// The flag [`set_leaving`](Self::set_leaving) sets, for watchers.
    pub fn leaving_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.leaving)
    }

    /// Unregisters from the tracker and deletes the router's port
    /// mapping (both at once), waiting at most `timeout`.
    pub fn leave(&self, timeout: Duration) {
        let _unmapping = self.port_map.as_ref().map(|m| m.releasing(timeout));
        // No announce may land after the BYE, or the tracker would list this
        // peer again until its TTL ran out.
        let started = std::time::Instant::now();
        if let Some(reach) = &self.reach {
            reach.stop();
        }
        let _quiet = self.announcer.stop(timeout * 3 / 5);
        let left = timeout.saturating_sub(started.elapsed());
        let Some(tracker) = &self.tracker else {
            return;
        };
        if let Err(e) = tracker.bye(left.max(Duration::from_millis(200))) {
            log::warn!("could not unregister from tracker {}: {e}", tracker.addr());
        }
    }

    /// Registers newly shared files with the tracker at once, on one
    /// connection (so the user hears if that failed), and wakes the
    /// announcer once if there is more to do: the slower DHT announce, or
    /// retrying a tracker that did not answer.
    fn announce_now(&self, files: &[Arc<SharedFile>]) -> Option<PeerError> {
        if files.is_empty() {
            return None;
        }
        self.announcer
            .register_now(files, self.dht.is_some())
            .err()
            .map(|e| self.tracker_error(e))
    }

    /// A tracker client whose requests `stop` interrupts (the caller's
    /// cancel token: the REPL's command, say).
    fn tracker_until(&self, stop: &Arc<StopSignal>) -> Option<TrackerClient> {
        let tracker = self.tracker.as_ref()?;
        Some(tracker.interruptible(Arc::clone(stop)))
    }

    /// [`tracker_until`](Self::tracker_until), or the error of a peer
    /// without a tracker.
    fn need_tracker(&self, stop: &Arc<StopSignal>) -> Result<TrackerClient, PeerError> {
        self.tracker_until(stop).ok_or(PeerError::NoTracker)
    }

    /// Whether the tracker answers (within `within`): why not, if it does
    /// not. `None` when it answers, or when this peer has no tracker.
    pub fn check_tracker(&self, within: Duration) -> Option<Error> {
        self.tracker.as_ref()?.check(within).err()
    }

    /// What this peer remembers across runs, if it does.
    pub fn memory(&self) -> Option<&Memory> {
        self.memory.as_deref()
    }

    /// Every download of this run, oldest first, for `status`.
    pub fn downloads(&self) -> &Arc<Downloads> {
        &self.downloads
    }

    fn tracker_error(&self, source: Error) -> PeerError {
        PeerError::Tracker {
            addr: self.tracker_addr().unwrap_or_default().to_string(),
            source,
        }
    }
}

fn start_dht(d: &DhtOptions, opts: &Options, listen: SocketAddr) -> Result<DhtNode, PeerError> {
    let bootstrap = match (&opts.tracker, d.bootstrap.is_empty()) {
        (Some(tracker), true) => vec![tracker.clone()],
        _ => d.bootstrap.clone(),
    };
    Ok(DhtNode::start(
        listen.ip(),
        d.port.unwrap_or(listen.port()),
        &bootstrap,
    )?)
}
