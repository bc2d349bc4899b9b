//! How a peer finds other peers of a file (the tracker and the DHT,
//! merged, itself left out) and tells them what it has: what `locate` and
//! every download use. Files are looked up by the id they are listed under,
//! a private share's blinded id for those.

use std::net::SocketAddr;
use std::sync::Arc;

use super::announcer::Announcer;
use super::dial::PeerAddr;
use super::download::Swarm;
use super::library::{Library, SharedFile};
use super::locate;
use super::memory::Memory;
use super::tracker_client::TrackerClient;
use super::PeerError;
use crate::dht::DhtNode;
use crate::error::Error;
use crate::identity::PeerId;
use crate::manifest::FileId;

/// How this peer finds other peers of a file, and tells the tracker and the
/// DHT what it has: what `locate` and every download use.
pub struct PeerSwarm {
    pub tracker: Option<TrackerClient>,
    pub dht: Option<Arc<DhtNode>>,
    pub announcer: Arc<Announcer>,
    pub library: Arc<Library>,
    /// Where a finished download is remembered as shared, if anywhere.
    pub memory: Option<Arc<Memory>>,
    pub listen: SocketAddr,
    /// This peer's own id, to leave itself out of peer lists.
    pub id: PeerId,
    /// Whether the DHT nodes joined through were named with
    /// `--dht-bootstrap` (peers, in a DHT of two) rather than defaulting to
    /// the tracker's address (never a peer).
    pub bootstrap_are_peers: bool,
}

impl PeerSwarm {
    /// The peers of `id` from the tracker and the DHT, merged, without this
    /// peer, with how many came from each. Fails only if the tracker fails
    /// and there is no DHT to fall back on.
    pub fn find(
        &self,
        tracker: Option<&TrackerClient>,
        id: &FileId,
    ) -> Result<(Vec<PeerAddr>, usize, usize), PeerError> {
        let Some(tracker) = tracker else {
            return Ok(self.without_self(self.dht_alone(id)));
        };
        let from_tracker = match (tracker.peers(id), &self.dht) {
            (Ok(peers), _) => peers
                .into_iter()
                .map(|p| PeerAddr::listed(p.addr, p.id, p.via))
                .collect(),
            (Err(e), None) => return Err(self.tracker_error(e)),
            (Err(e), Some(_)) => {
                log::info!("{}; using the DHT alone", self.tracker_error(e));
                return Ok(self.without_self(self.dht_alone(id)));
            }
        };
        let dht_peers = locate::dht_peers(self.dht.as_deref(), id);
        Ok(self.without_self(locate::merge_peers(from_tracker, dht_peers)))
    }

    /// The DHT's peers of `id`; with none found, the nodes it joined
    /// through if they were named, the best guess there is (see
    /// `DhtNode::bootstrap_peers`).
    fn dht_alone(&self, id: &FileId) -> (Vec<PeerAddr>, usize, usize) {
        let mut found = locate::dht_peers(self.dht.as_deref(), id);
        if let (true, true, Some(dht)) = (found.is_empty(), self.bootstrap_are_peers, &self.dht) {
            found = dht.bootstrap_peers();
        }
        locate::merge_peers(Vec::new(), found)
    }

    /// Our own registration comes back from the tracker and the DHT too.
    fn without_self(&self, found: (Vec<PeerAddr>, usize, usize)) -> (Vec<PeerAddr>, usize, usize) {
        let (mut peers, from_tracker, from_dht) = found;
        peers.retain(|p| p.id != Some(self.id) && !locate::is_self(p.shown(), self.listen));
        (peers, from_tracker, from_dht)
    }

    fn tracker_error(&self, source: Error) -> PeerError {
        PeerError::Tracker {
            addr: self.tracker.as_ref().map_or("", |t| t.addr()).to_string(),
            source,
        }
    }
}

impl Swarm for PeerSwarm {
    fn peers(&self, listed: &FileId) -> Vec<PeerAddr> {
        match self.find(self.tracker.as_ref(), listed) {
            Ok((peers, _, _)) => peers,
            Err(e) => {
                log::debug!("looking for more peers of {}: {e}", listed.short());
                Vec::new()
            }
        }
    }

    fn announce(&self, file: &Arc<SharedFile>) -> Option<String> {
        if let (Some(memory), true) = (&self.memory, file.is_complete()) {
            // A finished download: shared from now on, next runs too.
            memory.share(file);
            memory.finished(&file.path());
        }
        self.announcer
            .register_now(std::slice::from_ref(file), self.dht.is_some())
            .err()
            .map(|e| self.tracker_error(e).to_string())
    }

    fn withdraw(&self, file: &Arc<SharedFile>) {
        self.library.remove(file);
        if let Err(e) = self.announcer.withdraw(&file.listed) {
            log::info!("{}", self.tracker_error(e));
        }
    }
}
