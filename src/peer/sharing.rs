//! Sharing files: hashing and publishing them, and what others need to
//! fetch them (links, tickets, the addresses tickets carry).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::library::SharedFile;
use super::{Peer, PeerError};
use crate::bounds::MAX_TICKET_ADDRS;
use crate::link::ShareLink;
use crate::manifest::Manifest;
use crate::name::validate_name;
use crate::private::Secret;
use crate::protocol::message::IdPrefix;
use crate::select::Globs;
use crate::storage::tree::{Skipped, TreeRoot};
use crate::storage::{self, StoreError};
use crate::ticket::Ticket;

/// A file hashed and ready to share: where, as what, its manifest, a
/// private share's secret, and whether the manifest was remembered (so
/// not written again).
pub struct Hashed {
    pub path: PathBuf,
    pub name: String,
    pub manifest: Manifest,
    pub secret: Option<Secret>,
    pub remembered: bool,
    /// A folder's: where its files are, and what its walk left out.
    pub tree: Option<(TreeRoot, Skipped)>,
}

/// What sharing a batch did: each file's entry or error, in order, and the
/// tracker's failure if its registration failed (the files are shared
/// locally, and announced when the tracker is back).
pub struct Published {
    pub files: Vec<Result<Arc<SharedFile>, PeerError>>,
    pub warning: Option<PeerError>,
}

impl Published {
    /// The outcome of a batch of one file: its entry and the tracker's
    /// failure, or its error.
    pub fn single(mut self) -> Result<(Arc<SharedFile>, Option<PeerError>), PeerError> {
        // publish_all gives one result per file it was given.
        let file = self.files.pop().expect("a batch of one has one result")?;
        Ok((file, self.warning))
    }
}

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
        self.publish_all(vec![hash(path, private, &|_| {})?])
            .single()
    }

    /// Shares a batch of hashed files at O(1) cost each: adds them to the
    /// library (each replacing what it replaces), withdraws what they
    /// replaced and registers them on one tracker connection each way,
    /// remembers them in one rewrite of `shares.json` (if this peer
    /// remembers shares), and wakes the announcer once (the DHT round).
    pub fn publish_all(&self, batch: Vec<Hashed>) -> Published {
        let mut files = Vec::with_capacity(batch.len());
        let (mut added, mut gone) = (Vec::new(), Vec::new());
        for h in batch {
            let path = h.path.clone();
            let result = match h.tree {
                // Folders are not remembered (yet): `share DIR` again.
                Some((root, _)) => self.library.add_tree(h.name, root, h.manifest, h.secret),
                None => self.library.add(h.name, h.path, h.manifest, h.secret),
            }
            .map_err(|source| PeerError::from(StoreError::Io { path, source }));
            let remembered = h.remembered;
            files.push(match result {
                Ok(a) => {
                    added.push((Arc::clone(&a.file), remembered));
                    gone.extend(a.replaced);
                    Ok(a.file)
                }
                Err(e) => Err(e),
            });
        }
        // A file replaced within the batch itself is gone too.
        let current = |f: &Arc<SharedFile>| {
            self.library
                .get(&f.id)
                .is_some_and(|now| Arc::ptr_eq(&now, f))
        };
        added.retain(|(f, _)| current(f));
        if let Some(memory) = &self.memory {
            let remembered: Vec<(&SharedFile, bool)> = added
                .iter()
                .filter(|(f, _)| f.manifest.as_tree().is_none())
                .map(|(f, stored)| (&**f, *stored))
                .collect();
            let ids: Vec<_> = gone.iter().map(|f| f.id).collect();
            memory.share_all(&remembered, &ids);
        }
        let listed: Vec<_> = gone.iter().map(|f| f.listed).collect();
        if let Err(e) = self.announcer.withdraw_all(&listed) {
            log::info!("{}", self.tracker_error(e));
        }
        let added: Vec<_> = added.into_iter().map(|(f, _)| f).collect();
        let warning = self.announce_now(&added);
        Published { files, warning }
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
            addrs: with_mapped(&self.reachable, self.port_map().and_then(|m| m.offered())),
            peer: self.id(),
            secret: file.secret,
            // Once its id is known, the tracker whose relay reaches us.
            tracker: self
                .tracker_addr()
                .zip(self.tracker_id())
                .map(|(addr, id)| (addr.to_string(), id)),
        }
    }
}

/// `reachable` with the router's mapped address first (a downloader dials
/// a ticket's addresses at once, so the order only breaks ties), at most
/// [`MAX_TICKET_ADDRS`].
pub(super) fn with_mapped(reachable: &[SocketAddr], mapped: Option<SocketAddr>) -> Vec<SocketAddr> {
    let mut all: Vec<SocketAddr> = mapped.into_iter().collect();
    all.extend(reachable.iter().filter(|a| Some(**a) != mapped));
    all.truncate(MAX_TICKET_ADDRS);
    all
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

/// Hashes the file at `path` to share it under its file name, privately
/// (with a new secret) if `private`, calling `on_bytes` as chunks are
/// hashed. A directory is shared whole, as one folder.
pub fn hash(
    path: &Path,
    private: bool,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<Hashed, PeerError> {
    if path.is_dir() {
        let none = Globs::new::<&str>(&[]).map_err(PeerError::from)?;
        return hash_tree(&[path.to_path_buf()], &none, private, on_bytes);
    }
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
    Ok(Hashed {
        path: path.to_path_buf(),
        name,
        manifest,
        secret,
        remembered: false,
        tree: None,
    })
}

/// Hashes `paths` as one folder: a directory's contents, or several files
/// and directories side by side; leaves out what `exclude` matches.
pub fn hash_tree(
    paths: &[PathBuf],
    exclude: &Globs,
    private: bool,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<Hashed, PeerError> {
    let mut hashed = |n: u64| on_bytes(n);
    let scanned = storage::tree::scan(paths, exclude, &mut hashed)?;
    let secret = match private {
        true => Some(Secret::generate()?),
        false => None,
    };
    let path = match &scanned.root {
        TreeRoot::Dir(dir) => dir.clone(),
        TreeRoot::Several(all) => all.first().cloned().unwrap_or_default(),
    };
    Ok(Hashed {
        path,
        name: scanned.name,
        manifest: scanned.manifest,
        secret,
        remembered: false,
        tree: Some((scanned.root, scanned.skipped)),
    })
}

/// The file at `path`, to share as `name` with a manifest remembered from
/// the last run (the file unchanged since).
pub fn known(
    path: &Path,
    name: &str,
    manifest: Manifest,
    secret: Option<Secret>,
) -> Result<Hashed, PeerError> {
    validate_name(name).map_err(|e| PeerError::BadName {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(Hashed {
        path: path.to_path_buf(),
        name: name.to_string(),
        manifest,
        secret,
        remembered: true,
        tree: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapped_address_comes_first_once_and_the_cap_holds() {
        let addr = |i: u8| SocketAddr::from(([10, 0, 0, i], 4000));
        let reachable: Vec<_> = (1..=8).map(addr).collect();
        assert_eq!(with_mapped(&reachable, None), reachable);
        let mapped = SocketAddr::from(([11, 99, 0, 1], 4000));
        let with = with_mapped(&reachable, Some(mapped));
        assert_eq!(with.len(), MAX_TICKET_ADDRS);
        assert_eq!((with[0], with[1]), (mapped, addr(1)));
        // Already there (as a --public-addr): not twice.
        assert_eq!(
            with_mapped(&[addr(1), mapped], Some(mapped)),
            vec![mapped, addr(1)]
        );
    }
}
