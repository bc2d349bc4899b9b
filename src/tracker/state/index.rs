//! The tracker's name index: for each listed file id, the lower-cased
//! names its peers gave. `SEARCH` and `INFO <prefix>` scan this index
//! under a read lock of its own, never the registry's map, so lookups of
//! one id (`PEERS`, `REGISTER`) never wait behind a scan; a scan picks at
//! most a bounded number of candidate ids, whose rows are then read from
//! the map under its lock in time proportional to that bound.
//!
//! Invariants: the index is derived from the map. Lock order is index, then
//! map, never the reverse: [`NameIndex::refresh`] takes the index's write
//! lock and only then reads the current names from the map, so refreshes
//! that race are applied in order and the last one leaves the truth. An id
//! is in the index while some registration of it (live or not yet expired)
//! gave a name; an unlisted id (no name) never is.

use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::manifest::FileId;
use crate::protocol::message::IdPrefix;
use crate::sync::Unpoisoned;

#[derive(Default)]
pub struct NameIndex {
    names: RwLock<HashMap<FileId, Box<[Arc<str>]>>>,
}

/// Ids chosen by a scan, and whether more matched than were taken.
pub struct Candidates {
    pub ids: Vec<FileId>,
    pub more: bool,
}

impl NameIndex {
    fn read(&self) -> RwLockReadGuard<'_, HashMap<FileId, Box<[Arc<str>]>>> {
        // Each update is one insert or remove: a poisoned lock is still whole.
        self.names.read().unpoisoned()
    }

    /// The write lock, for [`refresh`](Self::refresh): taken before the
    /// map's lock, never after it.
    pub fn write(&self) -> RwLockWriteGuard<'_, HashMap<FileId, Box<[Arc<str>]>>> {
        self.names.write().unpoisoned()
    }

    /// Sets the names of each id (none: removes it), under a write lock
    /// taken by the caller before it read `current` from the map.
    pub fn refresh(
        index: &mut HashMap<FileId, Box<[Arc<str>]>>,
        current: Vec<(FileId, Vec<Arc<str>>)>,
    ) {
        for (id, names) in current {
            if names.is_empty() {
                index.remove(&id);
            } else {
                index.insert(id, names.into_boxed_slice());
            }
        }
    }

    /// At most `max` ids with a name containing `needle` (lower case):
    /// ids with a name equal to it first (what `download NAME` looks for),
    /// then by their least matching name, then by id.
    pub fn matching(&self, needle: &str, max: usize) -> Candidates {
        let index = self.read();
        let mut best: BinaryHeap<(bool, &str, FileId)> = BinaryHeap::new();
        let mut more = false;
        for (id, names) in index.iter() {
            let key = names
                .iter()
                .filter(|n| n.contains(needle))
                .map(|n| (n.as_ref() != needle, n.as_ref(), *id))
                .min();
            if let Some(key) = key {
                best.push(key);
                if best.len() > max {
                    best.pop();
                    more = true;
                }
            }
        }
        Candidates {
            ids: best.into_sorted_vec().into_iter().map(|k| k.2).collect(),
            more,
        }
    }

    /// At most `max` listed ids starting with `prefix`, least first.
    pub fn with_prefix(&self, prefix: &IdPrefix, max: usize) -> Candidates {
        let index = self.read();
        let mut best: BinaryHeap<FileId> = BinaryHeap::new();
        let mut more = false;
        for id in index.keys().filter(|id| prefix.matches(id)) {
            best.push(*id);
            if best.len() > max {
                best.pop();
                more = true;
            }
        }
        Candidates {
            ids: best.into_sorted_vec(),
            more,
        }
    }

    /// How many ids are listed.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.read().len()
    }
}
