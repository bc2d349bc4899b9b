//! Fetching files: searching the tracker, locating a file and its peers,
//! choosing where it goes, and starting its download. The tracker requests
//! of a search or a look-up stop when the caller's `stop` signal does (its
//! cancel token: the REPL's command, interrupted by `quit` or Ctrl+C).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::download::{self, DownloadHandle, Swarm};
use super::locate::{self, Located};
use super::{Peer, PeerError};
use crate::name::{closest, validate_name};
use crate::net::stop::StopSignal;
use crate::peer::tracker_client::Found;
use crate::private::listed_id;
use crate::protocol::message::IdPrefix;
use crate::protocol::FileSummary;
use crate::storage::StoreError;

impl Peer {
    /// The files the tracker knows whose name contains `text`, as many as
    /// one reply holds (`more`: there are others).
    pub fn search(&self, text: &str, stop: &Arc<StopSignal>) -> Result<Found, PeerError> {
        self.need_tracker(stop)?
            .search(text)
            .map_err(|e| self.tracker_error(e))
    }

    /// Finds the one file that `target` names (a share link, a name, an id
    /// or id prefix) and the peers that have it, from the tracker and the DHT.
    pub fn locate(&self, target: &str, stop: &Arc<StopSignal>) -> Result<Located, PeerError> {
        let wanted = match locate::wanted(target, &Asking { peer: self, stop }) {
            Err(PeerError::NotFound(name)) => return Err(self.suggest(name, stop)),
            other => other?,
        };
        let name = wanted.name.unwrap_or_else(|| wanted.id.to_hex());
        let listed = listed_id(&wanted.id, wanted.secret.as_ref());
        let reached = wanted
            .direct
            .as_ref()
            .map(|sender| locate::first_reachable(sender, &self.dialer));
        let (direct, unreached) = match reached {
            Some(Ok(sender)) => (Some(sender), Vec::new()),
            Some(Err(failed)) => (None, failed),
            None => (None, Vec::new()),
        };
        // With neither tracker nor DHT this finds nobody, and a ticket's
        // sender is all there is.
        let found = self.swarm.find(self.tracker_until(stop).as_ref(), &listed);
        let (mut peers, from_tracker, from_dht) = match (found, &direct) {
            (Ok(found), _) => found,
            (Err(e), None) => return Err(e),
            (Err(e), Some(_)) => {
                log::info!("{e}; going on with the ticket's sender alone");
                (Vec::new(), 0, 0)
            }
        };
        if let Some(sender) = direct {
            peers.retain(|p| p.id != sender.id);
            peers.insert(0, sender);
        }
        if peers.is_empty() && wanted.direct.is_some() {
            return Err(PeerError::Unreachable(name, unreached.join(", ")));
        }
        if peers.is_empty() {
            let asked = match (&self.tracker, &self.dht, wanted.direct.is_none()) {
                (_, _, false) => "the ticket's addresses, unreachable from here",
                (Some(_), Some(_), _) => "tracker and DHT",
                (Some(_), None, _) => "tracker",
                (None, Some(_), _) => "DHT",
                (None, None, _) => "nobody: no tracker, no DHT",
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

    /// The error for a name the tracker does not know, with the closest
    /// name it does know (same but for case, or a typo away), if any.
    fn suggest(&self, name: String, stop: &Arc<StopSignal>) -> PeerError {
        let known = self.search("", stop).unwrap_or_default().files;
        match closest(&name, known.iter().map(|f| f.name.as_str())) {
            Some(near) => PeerError::DidYouMean {
                near: near.to_string(),
                name,
            },
            None => PeerError::NotFound(name),
        }
    }

    /// Where a download of `file` will be written: `out`, or its name in the
    /// directory `out` names (one that exists, or ends in `/`), or its name
    /// in the current directory. Refuses names that are not a single safe
    /// path component, outputs that exist, and directories that do not.
    pub fn output_path(&self, file: &Located, out: Option<&Path>) -> Result<PathBuf, PeerError> {
        validate_name(&file.name).map_err(|e| PeerError::BadName {
            path: PathBuf::from(&file.name),
            reason: e.to_string(),
        })?;
        let out = match out {
            None => PathBuf::from(&file.name),
            Some(dir) if dir.as_os_str().to_string_lossy().ends_with('/') || dir.is_dir() => {
                if !dir.is_dir() {
                    return Err(PeerError::NoDirectory(dir.to_path_buf()));
                }
                dir.join(&file.name)
            }
            Some(out) => out.to_path_buf(),
        };
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
        self.download_only(file, out, Vec::new())
    }

    /// As [`download`](Self::download), of a folder only the files the
    /// `only` globs match (all if there are none).
    pub fn download_only(
        &self,
        file: &Located,
        out: &Path,
        only: Vec<String>,
    ) -> Result<DownloadHandle, PeerError> {
        let (progress, canceller, claim) = self
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
            dialer: Arc::clone(&self.dialer),
            swarm: Arc::clone(&self.swarm) as Arc<dyn Swarm>,
        };
        let req = download::Request {
            id: file.id,
            secret: file.secret,
            name: file.name.clone(),
            out: out.to_path_buf(),
            sizes: file.sizes.clone(),
            peers: file.peers.clone(),
            only,
        };
        let downloads = Arc::clone(&self.downloads);
        let on_end = move |ok: bool| {
            drop(claim);
            if !ok {
                downloads.note_failed();
            }
        };
        Ok(download::start(ctx, req, progress, canceller, on_end)?)
    }
}

/// The tracker's catalogue as one look-up asks it, until `stop`.
struct Asking<'a> {
    peer: &'a Peer,
    stop: &'a Arc<StopSignal>,
}

impl locate::Catalogue for Asking<'_> {
    fn search(&self, text: &str) -> Result<Vec<FileSummary>, PeerError> {
        Ok(self.peer.search(text, self.stop)?.files)
    }

    fn info(&self, prefix: &IdPrefix) -> Result<Vec<FileSummary>, PeerError> {
        let peer = self.peer;
        peer.need_tracker(self.stop)?
            .info(prefix)
            .map_err(|e| peer.tracker_error(e))
    }
}
