//! The registry's read side: `SEARCH`, `INFO` and `PEERS` rows, and the
//! status page's snapshot. A scan of names or id prefixes runs on the index
//! (see [`super::index`]) and picks at most [`TRACKER_REPLY_ROWS`] ids; the
//! map's lock is then held for those ids only.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::index::Candidates;
use super::{Entry, PeerKey, Registry, Seen};
use crate::bounds::TRACKER_REPLY_ROWS;
use crate::manifest::FileId;
use crate::protocol::message::IdPrefix;
use crate::protocol::nat_msg::Via;
use crate::protocol::{FileSummary, PeerEntry};
use crate::sync::LockExt;

/// The rows of a `SEARCH` or `INFO` reply, at most [`TRACKER_REPLY_ROWS`],
/// and whether more matched than they hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listing {
    pub rows: Vec<FileSummary>,
    pub more: bool,
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

impl Registry {
    /// Files a name of whose live peers contains `text` (ignoring case), by
    /// name then id: one row per size its live peers claim. Ids with a name
    /// equal to `text` are taken first when more match than a reply holds.
    pub fn search(&self, text: &str, now: Instant) -> Listing {
        let needle = text.to_lowercase();
        let found = self.index.matching(&needle, TRACKER_REPLY_ROWS);
        let mut listing = self.listing(found, now, Some(&needle));
        listing.rows.sort_by(|a, b| {
            (a.name.as_str(), a.id, b.peers, a.size).cmp(&(b.name.as_str(), b.id, a.peers, b.size))
        });
        listing
    }

    /// Listed files whose id starts with `prefix`, by id: one row per
    /// claimed size.
    pub fn info(&self, prefix: &IdPrefix, now: Instant) -> Listing {
        let found = match prefix.full() {
            Some(id) => Candidates {
                ids: vec![id],
                more: false,
            },
            None => self.index.with_prefix(prefix, TRACKER_REPLY_ROWS),
        };
        let mut listing = self.listing(found, now, None);
        listing
            .rows
            .sort_by(|a, b| (a.id, b.peers, a.size).cmp(&(b.id, a.peers, b.size)));
        listing
    }

    /// The rows of the candidate ids, at most [`TRACKER_REPLY_ROWS`].
    fn listing(&self, found: Candidates, now: Instant, needle: Option<&str>) -> Listing {
        let mut rows: Vec<FileSummary> = {
            let files = self.files.locked();
            found
                .ids
                .iter()
                .filter_map(|id| Some((id, files.by_id.get(id)?)))
                .flat_map(|(id, e)| self.rows(id, e, now, needle))
                .collect()
        };
        let more = found.more || rows.len() > TRACKER_REPLY_ROWS;
        rows.truncate(TRACKER_REPLY_ROWS);
        Listing { rows, more }
    }

    /// The rows of one file: its live peers grouped by the size they claim,
    /// under the name [`shown_name`] picks (none for an unlisted file, or
    /// when no live peer's name contains `needle`).
    fn rows(&self, id: &FileId, e: &Entry, now: Instant, needle: Option<&str>) -> Vec<FileSummary> {
        let live: Vec<&Seen> = e.peers.values().filter(|s| self.live(s.at, now)).collect();
        let Some(name) = shown_name(e, &live, needle) else {
            return Vec::new();
        };
        let mut by_size: Vec<(u64, u32)> = Vec::new();
        for seen in &live {
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
                name: name.to_string(),
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
                        via: Via::Direct,
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
                    let row = self
                        .rows(id, e, now, None)
                        .into_iter()
                        .max_by_key(|r| r.peers)?;
                    Some(FileSnapshot {
                        id: *id,
                        name: row.name,
                        size: row.size,
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
}

/// The name a listing shows for an entry whose live peers are `live`: one
/// a complete peer gave if any did, else one a partial peer gave; among
/// those, one containing `needle` first, then the one most complete peers
/// gave, then most peers, then the least. `None` if no live peer gave a
/// name (unlisted), or none of their names contains `needle`: a name given
/// only by peers that are gone finds nothing.
fn shown_name(e: &Entry, live: &[&Seen], needle: Option<&str>) -> Option<Arc<str>> {
    // (complete peers, all peers) that gave each name.
    let mut tally: HashMap<&Arc<str>, (usize, usize)> = HashMap::new();
    for seen in live {
        if let Some(name) = &seen.name {
            let t = tally.entry(name).or_default();
            t.0 += usize::from(seen.complete);
            t.1 += 1;
        }
    }
    let matches = |name: &Arc<str>| match needle {
        None => true,
        Some(needle) => e.lower(name).is_some_and(|lower| lower.contains(needle)),
    };
    if !tally.keys().any(|name| matches(name)) {
        return None;
    }
    let rank = |name: &Arc<str>, (complete, all): (usize, usize)| {
        (
            complete > 0,
            matches(name),
            complete,
            all,
            Reverse(Arc::clone(name)),
        )
    };
    tally
        .into_iter()
        .max_by(|(a, ta), (b, tb)| rank(a, *ta).cmp(&rank(b, *tb)))
        .map(|(name, _)| Arc::clone(name))
}
