//! Sharing files: hashing and publishing them, and what others need to
//! fetch them (links, tickets, the addresses tickets carry).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use super::library::SharedFile;
use super::{Peer, PeerError};
use crate::bounds::MAX_TICKET_ADDRS;
use crate::link::ShareLink;
use crate::manifest::Manifest;
use crate::name::validate_name;
use crate::private::Secret;
use crate::protocol::message::IdPrefix;
use crate::storage::{self, StoreError};
use crate::ticket::Ticket;

impl Peer {
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
        let (shared, warning) = self.publish(path, name, manifest, secret)?;
        Ok((shared, warning))
    }

    /// Shares the file at `path` as `name`, with a manifest known to be its
    /// (remembered from the last run, the file unchanged since), and a
    /// private share's `secret`.
    pub fn share_known(
        &self,
        path: &Path,
        name: &str,
        manifest: Manifest,
        secret: Option<Secret>,
    ) -> Result<Arc<SharedFile>, PeerError> {
        validate_name(name).map_err(|e| PeerError::BadName {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(self.publish(path, name.to_string(), manifest, secret)?.0)
    }

    /// Adds a hashed file to the library, replacing what it replaces, and
    /// registers it (and remembers it, if this peer remembers shares).
    fn publish(
        &self,
        path: &Path,
        name: String,
        manifest: Manifest,
        secret: Option<Secret>,
    ) -> Result<(Arc<SharedFile>, Option<PeerError>), PeerError> {
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
            if let Some(memory) = &self.memory {
                memory.forget_share(&old.id);
            }
            if let Err(e) = self.announcer.withdraw(&old.listed) {
                log::info!("{}", self.tracker_error(e));
            }
        }
        if let Some(memory) = &self.memory {
            memory.share(&shared);
        }
        let warning = self.announce_now(&shared);
        Ok((shared, warning))
    }

    /// Stops sharing the complete file `target` names (its name, or an id
    /// prefix of at least 4 hex digits): it is no longer served, announced
    /// or remembered, and the tracker is told. The file itself is left as
    /// it is. Returns what was shared.
    pub fn unshare(&self, target: &str) -> Result<Arc<SharedFile>, PeerError> {
        let prefix = target.parse::<IdPrefix>().ok();
        let named = |f: &Arc<SharedFile>| {
            f.name == target || prefix.as_ref().is_some_and(|p| p.matches(&f.id))
        };
        let matches: Vec<_> = self.library.list().into_iter().filter(named).collect();
        let file = match matches.as_slice() {
            [one] => Arc::clone(one),
            [] => return Err(PeerError::NotShared(target.to_string())),
            _ => return Err(PeerError::SeveralShared(target.to_string(), matches.len())),
        };
        self.library.remove(&file);
        if let Some(memory) = &self.memory {
            memory.forget_share(&file.id);
        }
        if let Err(e) = self.announcer.withdraw(&file.listed) {
            log::info!("{}", self.tracker_error(e));
        }
        Ok(file)
    }

    /// The ticket of a shared file: its link's contents, and where and who
    /// this peer is.
    pub fn ticket_of(&self, file: &SharedFile) -> Ticket {
        Ticket {
            id: file.id,
            name: file.name.clone(),
            size: file.manifest.size(),
            addrs: self.reachable.clone(),
            peer: self.id(),
            secret: file.secret,
        }
    }
}

/// Where others may reach a peer listening on `listen`: the `public`
/// addresses, then (when bound to every interface) each interface's
/// address, loopback last, all on the listen port unless a public one
/// says otherwise. At most [`MAX_TICKET_ADDRS`].
pub(super) fn reachable_addrs(listen: SocketAddr, public: &[SocketAddr]) -> Vec<SocketAddr> {
    let port = |a: SocketAddr| match a.port() {
        0 => SocketAddr::new(a.ip(), listen.port()),
        _ => a,
    };
    let mut all: Vec<SocketAddr> = public.iter().map(|&a| port(a)).collect();
    let local = match listen.ip().is_unspecified() {
        true => crate::net::sys::interface_addrs().unwrap_or_else(|e| {
            log::info!("cannot list this host's addresses: {e}");
            vec![std::net::Ipv4Addr::LOCALHOST.into()]
        }),
        false => vec![listen.ip()],
    };
    let (lo, other): (Vec<_>, Vec<_>) = local
        .into_iter()
        .filter(|ip| listen.is_ipv6() || ip.is_ipv4())
        .partition(|ip| ip.is_loopback());
    for ip in other.into_iter().chain(lo) {
        let addr = SocketAddr::new(ip, listen.port());
        if !all.contains(&addr) {
            all.push(addr);
        }
    }
    all.truncate(MAX_TICKET_ADDRS);
    all
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
