//! The tracker's registry: file id -> (name, peers with the size each
//! claims, whether each is complete, and when each was last seen).
//!
//! A std `Mutex` is enough: every operation is a few map look-ups, the lock is
//! never held across I/O, and replies are formatted after it is released.
//! Invariants: a file entry exists only while it has at least one peer; a
//! peer's entry is live while it was refreshed within the TTL; expired
//! entries are hidden from every query and removed by [`Registry::expire`];
//! `registrations` is the number of (file, peer) pairs and `per_address`
//! counts them by IP address.
//!
//! The tracker cannot check what peers claim, so no claim locks another
//! out: peers of one id are kept whatever size each claims (downloaders
//! verify the manifest against the id), `SEARCH` and `INFO` list one row per
//! claimed size, one address holds at most [`TRACKER_MAX_PER_ADDRESS`]
//! registrations, and at most [`TRACKER_MAX_PER_FILE_ADDRESS`] of one file's
//! peers, so one host cannot fill a file's list.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::bounds::MAX_LIST_ENTRIES;
use crate::bounds::{
    TRACKER_MAX_FILES, TRACKER_MAX_PEERS_PER_FILE, TRACKER_MAX_PER_ADDRESS,
    TRACKER_MAX_PER_FILE_ADDRESS, TRACKER_MAX_REGISTRATIONS,
};
use crate::identity::PeerId;
use crate::manifest::FileId;
use crate::protocol::message::IdPrefix;
use crate::protocol::{FileSummary, PeerEntry};
use crate::sync::LockExt;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error("too many registrations from one address ({0})")]
    TooManyFromAddress(usize),
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
    /// The name of the first registration that gave one; content-addressing
    /// makes later names of the same content aliases, not renames. `None`:
    /// unlisted (registered without a name: a private share's blinded id),
    /// so `SEARCH` and `INFO` skip it.
    name: Option<String>,
    peers: HashMap<PeerKey, Seen>,
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

/// A peer's registration of one file: the size it claims, when it was last
/// refreshed, and whether it has all of the file or is still downloading it.
#[derive(Clone, Copy, Debug)]
struct Seen {
    at: Instant,
    size: u64,
    complete: bool,
}

#[derive(Default)]
struct Files {
    by_id: HashMap<FileId, Entry>,
    /// Sum of `peers.len()` over all entries.
    registrations: usize,
    /// Registrations by the address they came from.
    per_address: HashMap<IpAddr, usize>,
}

impl Files {
    fn count(&mut self, ip: IpAddr, delta: isize) {
        let n = self.per_address.entry(ip).or_default();
        *n = n.saturating_add_signed(delta);
        if *n == 0 {
            self.per_address.remove(&ip);
        }
        self.registrations = self.registrations.saturating_add_signed(delta);
    }
}

/// What [`Registry::snapshot`] copies out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub files: Vec<FileSnapshot>,
    /// Files known (live or not yet expired), beyond the copied ones too.
    pub total_files: usize,
    pub registrations: usize,
}

/// One file of a [`Snapshot`]: its live peers, most recently seen first,
/// with how long ago each was heard from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSnapshot {
    pub id: FileId,
    pub name: String,
    pub size: u64,
    /// Live peers in all, beyond the copied ones too.
    pub peer_count: usize,
    /// Who, how long since last seen, and whether it has the whole file.
    pub peers: Vec<(PeerKey, Duration, bool)>,
}

pub struct Registry {
    /// A panic elsewhere cannot leave the map half-updated (each update is
    /// one insert/remove), so a poisoned lock is still safe to use.
    files: Mutex<Files>,
    ttl: Duration,
}

impl Registry {
    /// A registry that forgets a peer not heard from within `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Registry {
            files: Mutex::new(Files::default()),
            ttl,
        }
    }

    /// Records (or refreshes) that `peer` has file `id`, all of it or
    /// (`complete` false) part of it.
    pub fn register(
        &self,
        peer: PeerKey,
        id: FileId,
        size: u64,
        name: Option<&str>,
        complete: bool,
        now: Instant,
    ) -> Result<(), RegistryError> {
        let seen = Seen {
            at: now,
            size,
            complete,
        };
        let mut files = self.files.locked();
        let files = &mut *files;
        // A name is taken only from a registration that succeeds: one over
        // a cap must not list an unlisted (private) entry by name.
        let named = |entry: &mut Entry| {
            if entry.name.is_none() {
                entry.name = name.map(str::to_string);
            }
        };
        if let Some(entry) = files.by_id.get_mut(&id) {
            if let Some(known) = entry.peers.get_mut(&peer) {
                *known = seen; // a refresh
                named(entry);
                return Ok(());
            }
        }
        let from_address = files.per_address.get(&peer.addr.ip()).copied().unwrap_or(0);
        if from_address >= TRACKER_MAX_PER_ADDRESS {
            return Err(RegistryError::TooManyFromAddress(TRACKER_MAX_PER_ADDRESS));
        }
        if files.registrations >= TRACKER_MAX_REGISTRATIONS {
            return Err(RegistryError::TooManyRegistrations(
                TRACKER_MAX_REGISTRATIONS,
            ));
        }
        let known = files.by_id.len();
        match files.by_id.get_mut(&id) {
            Some(entry) if entry.peers.len() >= TRACKER_MAX_PEERS_PER_FILE => {
                return Err(RegistryError::TooManyPeers(TRACKER_MAX_PEERS_PER_FILE))
            }
            Some(entry)
                if entry
                    .peers
                    .keys()
                    .filter(|k| k.addr.ip() == peer.addr.ip())
                    .count()
                    >= TRACKER_MAX_PER_FILE_ADDRESS =>
            {
                return Err(RegistryError::TooManyAtAddress(
                    TRACKER_MAX_PER_FILE_ADDRESS,
                ))
            }
            Some(entry) => {
                entry.peers.insert(peer, seen);
                named(entry);
            }
            None if known >= TRACKER_MAX_FILES => {
                return Err(RegistryError::TooManyFiles(TRACKER_MAX_FILES))
            }
            None => {
                let peers = HashMap::from([(peer, seen)]);
                let name = name.map(str::to_string);
                files.by_id.insert(id, Entry { name, peers });
            }
        }
        files.count(peer.addr.ip(), 1);
        Ok(())
    }

    /// Forgets that `peer` has `id`. Returns whether it was known.
    pub fn unregister(&self, peer: PeerKey, id: &FileId) -> bool {
        let mut files = self.files.locked();
        let Some(entry) = files.by_id.get_mut(id) else {
            return false;
        };
        let removed = entry.peers.remove(&peer).is_some();
        if entry.peers.is_empty() {
            files.by_id.remove(id);
        }
        if removed {
            files.count(peer.addr.ip(), -1);
        }
        removed
    }

    /// Forgets every file of `peer`. Returns how many it had.
    pub fn remove_peer(&self, peer: PeerKey) -> usize {
        self.remove_where(|addr, _| *addr == peer)
    }

    /// Removes every peer entry older than the TTL; returns how many.
    pub fn expire(&self, now: Instant) -> usize {
        self.remove_where(|_, seen| !self.live(*seen, now))
    }

    /// Removes the registrations matching `gone`, and files left with none.
    fn remove_where(&self, gone: impl Fn(&PeerKey, &Instant) -> bool) -> usize {
        let mut files = self.files.locked();
        let mut removed = Vec::new();
        files.by_id.retain(|_, entry| {
            entry.peers.retain(|addr, seen| {
                let keep = !gone(addr, &seen.at);
                if !keep {
                    removed.push(addr.addr.ip());
                }
                keep
            });
            !entry.peers.is_empty()
        });
        for ip in &removed {
            files.count(*ip, -1);
        }
        removed.len()
    }

    /// Files whose name contains `text` (case-insensitive), by name then id:
    /// one row per size its live peers claim.
    pub fn search(&self, text: &str, now: Instant) -> Vec<FileSummary> {
        let needle = text.to_lowercase();
        let mut found: Vec<FileSummary> = {
            let files = self.files.locked();
            files
                .by_id
                .iter()
                .filter(|(_, e)| {
                    e.name
                        .as_ref()
                        .is_some_and(|n| n.to_lowercase().contains(&needle))
                })
                .take(MAX_LIST_ENTRIES)
                .flat_map(|(id, e)| self.rows(id, e, now))
                .collect()
        };
        found.sort_by(|a, b| {
            (a.name.as_str(), a.id, b.peers, a.size).cmp(&(b.name.as_str(), b.id, a.peers, b.size))
        });
        found.truncate(MAX_LIST_ENTRIES);
        found
    }

    /// Files whose id starts with `prefix`, by id: one row per claimed size.
    pub fn info(&self, prefix: &IdPrefix, now: Instant) -> Vec<FileSummary> {
        let mut found: Vec<FileSummary> = {
            let files = self.files.locked();
            match prefix.full() {
                Some(id) => files
                    .by_id
                    .get(&id)
                    .map(|e| self.rows(&id, e, now))
                    .unwrap_or_default(),
                None => files
                    .by_id
                    .iter()
                    .filter(|(id, e)| e.name.is_some() && prefix.matches(id))
                    .take(MAX_LIST_ENTRIES)
                    .flat_map(|(id, e)| self.rows(id, e, now))
                    .collect(),
            }
        };
        found.sort_by(|a, b| (a.id, b.peers, a.size).cmp(&(b.id, a.peers, b.size)));
        found.truncate(MAX_LIST_ENTRIES);
        found
    }

    /// The rows of one listed file: its live peers grouped by the size they
    /// claim (none for an unlisted file).
    fn rows(&self, id: &FileId, e: &Entry, now: Instant) -> Vec<FileSummary> {
        let Some(name) = &e.name else {
            return Vec::new();
        };
        let mut by_size: Vec<(u64, u32)> = Vec::new();
        for seen in e.peers.values().filter(|t| self.live(t.at, now)) {
            match by_size.iter_mut().find(|(size, _)| *size == seen.size) {
                Some((_, n)) => *n += 1,
                None => by_size.push((seen.size, 1)),
            }
        }
        by_size
            .into_iter()
            .map(|(size, peers)| FileSummary {
                id: *id,
                size,
                peers,
                name: name.clone(),
            })
            .collect()
    }

    /// The live peers of `id`, most recently seen first.
    pub fn peers(&self, id: &FileId, now: Instant) -> Vec<PeerEntry> {
        let mut peers: Vec<(PeerEntry, Instant)> = {
            let files = self.files.locked();
            let Some(entry) = files.by_id.get(id) else {
                return Vec::new();
            };
            entry
                .peers
                .iter()
                .filter(|(_, t)| self.live(t.at, now))
                .map(|(key, t)| {
                    let row = PeerEntry {
                        addr: key.addr,
                        complete: t.complete,
                        id: Some(key.id),
                    };
                    (row, t.at)
                })
                .collect()
        };
        peers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.addr.cmp(&b.0.addr)));
        peers.into_iter().map(|(row, _)| row).collect()
    }

    /// A copy of at most `max_files` live listed files (by name, then id, from an
    /// arbitrary subset if there are more) with their `max_peers` freshest
    /// peers, for the status page. Sorting by name and all formatting happen
    /// after the lock is released.
    pub fn snapshot(&self, now: Instant, max_files: usize, max_peers: usize) -> Snapshot {
        let (mut files, total_files, registrations) = {
            let guard = self.files.locked();
            let files: Vec<FileSnapshot> = guard
                .by_id
                .iter()
                .filter_map(|(id, e)| {
                    let mut peers: Vec<(PeerKey, Duration, bool)> = e
                        .peers
                        .iter()
                        .filter(|(_, t)| self.live(t.at, now))
                        .map(|(a, t)| (*a, now.saturating_duration_since(t.at), t.complete))
                        .collect();
                    if peers.is_empty() {
                        return None;
                    }
                    let peer_count = peers.len();
                    peers.sort_unstable_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
                    peers.truncate(max_peers);
                    let size = self
                        .rows(id, e, now)
                        .into_iter()
                        .max_by_key(|r| r.peers)?
                        .size;
                    Some(FileSnapshot {
                        id: *id,
                        name: e.name.clone()?,
                        size,
                        peer_count,
                        peers,
                    })
                })
                .take(max_files)
                .collect();
            (files, guard.by_id.len(), guard.registrations)
        };
        files.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Snapshot {
            files,
            total_files,
            registrations,
        }
    }

    fn live(&self, seen: Instant, now: Instant) -> bool {
        now.saturating_duration_since(seen) <= self.ttl
    }
}

#[cfg(test)]
mod tests;
