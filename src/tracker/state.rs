//! The tracker's registry: file id -> (peers with the size and name each
//! claims, whether each is complete, and when each was last seen), and a
//! name index for `SEARCH` (see [`index`]).
//!
//! The map is behind one std `Mutex`, held only for look-ups of one id or a
//! bounded number of ids, never across I/O and never for a scan of every
//! name: `SEARCH` and `INFO <prefix>` scan the index under a lock of its
//! own, so `PEERS` and `REGISTER` do not wait behind them. Replies are
//! formatted after the locks are released.
//!
//! Invariants: a file entry exists only while it has at least one peer; a
//! peer's entry is live while it was refreshed within the TTL; expired
//! entries are hidden from every query and removed by [`Registry::expire`];
//! `registrations` is the number of (file, peer) pairs, `per_address` and
//! `per_identity` count them by IP address and by certificate id, and each
//! entry's `names` counts its peers by the name each gave.
//!
//! The tracker cannot check what peers claim, so no claim locks another
//! out: peers of one id are kept whatever size and name each claims
//! (downloaders verify the manifest against the id), every name a peer of
//! an id gave finds it by `SEARCH`, the name shown is one a live complete
//! peer gave when there is one, `SEARCH` and `INFO` list one row per
//! claimed size, an address or identity holds at most its fair share of
//! the tracker (see [`share`]), and of one file's peers
//! ([`TRACKER_MAX_PER_FILE_ADDRESS`]).

mod index;
mod query;
mod share;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::bounds::{
    TRACKER_MAX_FILES, TRACKER_MAX_PEERS_PER_FILE, TRACKER_MAX_PER_ADDRESS,
    TRACKER_MAX_PER_FILE_ADDRESS, TRACKER_MAX_PER_IDENTITY, TRACKER_MAX_REGISTRATIONS,
};
use crate::identity::PeerId;
use crate::manifest::FileId;
use crate::sync::LockExt;
use index::NameIndex;
pub use query::{FileSnapshot, Listing, Snapshot};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error("too many registrations from one address (its share is {0} while the tracker holds this much)")]
    TooManyFromAddress(usize),
    #[error("too many registrations from one identity (its share is {0} while the tracker holds this much)")]
    TooManyFromIdentity(usize),
    #[error("tracker is full ({0} files)")]
    TooManyFiles(usize),
    #[error("file has too many peers ({0})")]
    TooManyPeers(usize),
    #[error("file has too many peers at one address ({0})")]
    TooManyAtAddress(usize),
    #[error("tracker is full ({0} registrations)")]
    TooManyRegistrations(usize),
}

struct Entry {
    peers: HashMap<PeerKey, Seen>,
    /// Each name a peer of this id gave, with how many peers gave it.
    /// Unnamed registrations (a private share's blinded id) are not
    /// counted: an id none of whose peers gave a name is unlisted, and
    /// `SEARCH` and `INFO` skip it. A `Vec`, not a map: almost every id has
    /// one name, and a map costs ~150 bytes more per file.
    names: Vec<Named>,
}

/// One name an id's peers gave: the name, in lower case (shared with the
/// index, and with `name` when equal), and how many peers gave it.
struct Named {
    name: Arc<str>,
    lower: Arc<str>,
    peers: usize,
}

impl Entry {
    /// Counts one more peer giving `name`; returns the shared name, and
    /// whether the entry's set of names changed.
    fn add_name(&mut self, name: Option<&str>) -> (Option<Arc<str>>, bool) {
        let Some(name) = name else {
            return (None, false);
        };
        if let Some(named) = self.names.iter_mut().find(|n| *n.name == *name) {
            named.peers += 1;
            return (Some(Arc::clone(&named.name)), false);
        }
        let shared: Arc<str> = name.into();
        let lower = name.to_lowercase();
        let lower = match lower == name {
            true => Arc::clone(&shared),
            false => lower.into(),
        };
        self.names.push(Named {
            name: Arc::clone(&shared),
            lower,
            peers: 1,
        });
        (Some(shared), true)
    }

    /// Counts one peer fewer giving `name`; returns whether the entry's set
    /// of names changed.
    fn drop_name(&mut self, name: Option<&Arc<str>>) -> bool {
        let Some(name) = name else { return false };
        let Some(at) = self.names.iter().position(|n| n.name == *name) else {
            return false;
        };
        self.names[at].peers -= 1;
        if self.names[at].peers > 0 {
            return false;
        }
        self.names.swap_remove(at);
        true
    }

    /// The lower-cased form of `name`, one of the names given.
    fn lower(&self, name: &str) -> Option<&str> {
        let named = self.names.iter().find(|n| *n.name == *name)?;
        Some(&named.lower)
    }
}

/// Who registered: the id its certificate proved, and the address it is
/// reachable at (the connection's IP, the port it announced). Only that id,
/// from that IP, can refresh or remove the entry; from another address it
/// makes a new one, and the old one expires after the TTL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey {
    pub addr: SocketAddr,
    pub id: PeerId,
}

/// A peer's registration of one file: the size and name it claims, when it
/// was last refreshed, and whether it has all of the file or part of it.
#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    size: u64,
    complete: bool,
    name: Option<Arc<str>>,
}

#[derive(Default)]
struct Files {
    by_id: HashMap<FileId, Entry>,
    /// Sum of `peers.len()` over all entries.
    registrations: usize,
    /// Registrations by the address they came from.
    per_address: HashMap<IpAddr, usize>,
    /// Registrations by the identity that made them.
    per_identity: HashMap<PeerId, usize>,
}

fn count<K: std::hash::Hash + Eq + Copy>(map: &mut HashMap<K, usize>, key: K, delta: isize) {
    let n = map.entry(key).or_default();
    *n = n.saturating_add_signed(delta);
    if *n == 0 {
        map.remove(&key);
    }
}

impl Files {
    fn count(&mut self, peer: PeerKey, delta: isize) {
        count(&mut self.per_address, peer.addr.ip(), delta);
        count(&mut self.per_identity, peer.id, delta);
        self.registrations = self.registrations.saturating_add_signed(delta);
    }

    /// Whether `peer` may make one more registration, of a new file or not:
    /// its address and its identity each within their fair share of the
    /// registrations, and (for a new file) of the files.
    fn may_add(&self, peer: PeerKey, new_file: bool) -> Result<(), RegistryError> {
        let by_address = self.per_address.get(&peer.addr.ip()).copied().unwrap_or(0);
        let by_identity = self.per_identity.get(&peer.id).copied().unwrap_or(0);
        if self.registrations >= TRACKER_MAX_REGISTRATIONS {
            return Err(RegistryError::TooManyRegistrations(
                TRACKER_MAX_REGISTRATIONS,
            ));
        }
        if new_file && self.by_id.len() >= TRACKER_MAX_FILES {
            return Err(RegistryError::TooManyFiles(TRACKER_MAX_FILES));
        }
        // Against the files too, a holder counts its registrations: what it
        // made new is among them (an overcount only when it registered
        // files others made, which leaves it more room, never less).
        let mut resources = vec![(self.registrations, TRACKER_MAX_REGISTRATIONS)];
        if new_file {
            resources.push((self.by_id.len(), TRACKER_MAX_FILES));
        }
        for (used, cap) in resources {
            share::may_take(by_address, TRACKER_MAX_PER_ADDRESS, used, cap)
                .map_err(RegistryError::TooManyFromAddress)?;
            share::may_take(by_identity, TRACKER_MAX_PER_IDENTITY, used, cap)
                .map_err(RegistryError::TooManyFromIdentity)?;
        }
        Ok(())
    }
}

pub struct Registry {
    /// A panic elsewhere cannot leave the map half-updated (each update is
    /// one insert/remove), so a poisoned lock is still safe to use.
    files: Mutex<Files>,
    index: NameIndex,
    ttl: Duration,
}

impl Registry {
    /// A registry that forgets a peer not heard from within `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Registry {
            files: Mutex::new(Files::default()),
            index: NameIndex::default(),
            ttl,
        }
    }

    /// Brings the index's names of `ids` up to date with the map. Called
    /// with no lock held; takes the index's, then the map's (see [`index`]).
    fn reindex(&self, ids: &[FileId]) {
        if ids.is_empty() {
            return;
        }
        let mut index = self.index.write();
        let current = {
            let files = self.files.locked();
            ids.iter()
                .map(|id| {
                    let names = files.by_id.get(id).map_or_else(Vec::new, |e| {
                        e.names.iter().map(|n| Arc::clone(&n.lower)).collect()
                    });
                    (*id, names)
                })
                .collect()
        };
        NameIndex::refresh(&mut index, current);
    }

    /// Records (or refreshes) that `peer` has file `id`, all of it or
    /// (`complete` false) part of it, under `name` (`None`: unlisted).
    pub fn register(
        &self,
        peer: PeerKey,
        id: FileId,
        size: u64,
        name: Option<&str>,
        complete: bool,
        now: Instant,
    ) -> Result<(), RegistryError> {
        let renamed = self.register_locked(peer, id, size, name, complete, now)?;
        if renamed {
            self.reindex(&[id]);
        }
        Ok(())
    }

    /// [`register`](Self::register) under the map's lock; returns whether
    /// the id's set of names changed.
    fn register_locked(
        &self,
        peer: PeerKey,
        id: FileId,
        size: u64,
        name: Option<&str>,
        complete: bool,
        now: Instant,
    ) -> Result<bool, RegistryError> {
        let mut files = self.files.locked();
        let files = &mut *files;
        let seen = |name| Seen {
            at: now,
            size,
            complete,
            name,
        };
        if let Some(entry) = files.by_id.get_mut(&id) {
            if let Some(known) = entry.peers.get(&peer) {
                // A refresh, perhaps under another name.
                let old = known.name.clone();
                if old.as_deref() == name {
                    entry.peers.insert(peer, seen(old));
                    return Ok(false);
                }
                let dropped = entry.drop_name(old.as_ref());
                let (shared, added) = entry.add_name(name);
                entry.peers.insert(peer, seen(shared));
                return Ok(dropped || added);
            }
        }
        files.may_add(peer, !files.by_id.contains_key(&id))?;
        let ip = peer.addr.ip();
        let entry = files.by_id.entry(id).or_insert_with(|| Entry {
            peers: HashMap::new(),
            names: Vec::new(),
        });
        if entry.peers.len() >= TRACKER_MAX_PEERS_PER_FILE {
            return Err(RegistryError::TooManyPeers(TRACKER_MAX_PEERS_PER_FILE));
        }
        let at_address = entry.peers.keys().filter(|k| k.addr.ip() == ip).count();
        share::may_take(
            at_address,
            TRACKER_MAX_PER_FILE_ADDRESS,
            entry.peers.len(),
            TRACKER_MAX_PEERS_PER_FILE,
        )
        .map_err(RegistryError::TooManyAtAddress)?;
        let (shared, added) = entry.add_name(name);
        entry.peers.insert(peer, seen(shared));
        files.count(peer, 1);
        Ok(added)
    }

    /// Forgets that `peer` has `id`. Returns whether it was known.
    pub fn unregister(&self, peer: PeerKey, id: &FileId) -> bool {
        let (removed, renamed) = {
            let mut files = self.files.locked();
            let Some(entry) = files.by_id.get_mut(id) else {
                return false;
            };
            let Some(seen) = entry.peers.remove(&peer) else {
                return false;
            };
            let renamed = entry.drop_name(seen.name.as_ref());
            if entry.peers.is_empty() {
                files.by_id.remove(id);
            }
            files.count(peer, -1);
            (true, renamed)
        };
        if renamed {
            self.reindex(&[*id]);
        }
        removed
    }

    /// Forgets every file of `peer`. Returns how many it had.
    pub fn remove_peer(&self, peer: PeerKey) -> usize {
        self.remove_where(|key, _| *key == peer)
    }

    /// Removes every peer entry older than the TTL; returns how many.
    pub fn expire(&self, now: Instant) -> usize {
        self.remove_where(|_, seen| !self.live(*seen, now))
    }

    /// Removes the registrations matching `gone`, and files left with none.
    fn remove_where(&self, gone: impl Fn(&PeerKey, &Instant) -> bool) -> usize {
        let mut renamed = Vec::new();
        let removed = {
            let mut files = self.files.locked();
            let mut removed = Vec::new();
            files.by_id.retain(|id, entry| {
                let mut dropped = Vec::new();
                entry.peers.retain(|key, seen| {
                    let keep = !gone(key, &seen.at);
                    if !keep {
                        removed.push(*key);
                        dropped.push(seen.name.clone());
                    }
                    keep
                });
                let mut changed = false;
                for name in &dropped {
                    changed |= entry.drop_name(name.as_ref());
                }
                if changed {
                    renamed.push(*id);
                }
                !entry.peers.is_empty()
            });
            for key in &removed {
                files.count(*key, -1);
            }
            removed.len()
        };
        self.reindex(&renamed);
        removed
    }

    fn live(&self, seen: Instant, now: Instant) -> bool {
        now.saturating_duration_since(seen) <= self.ttl
    }
}

#[cfg(test)]
mod query_tests;
#[cfg(test)]
mod tests;
