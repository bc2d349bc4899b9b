//! The library's entries and the keys they are found by: by id, by listed
//! id, and (complete files only) by canonical path. Every change goes
//! through these methods, which keep the keys exactly those of the entries
//! in `by_id`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::{read, SharedFile};
use crate::manifest::FileId;

/// The entries and their keys (see the module's invariants).
#[derive(Default)]
pub(super) struct Entries {
    pub(super) by_id: HashMap<FileId, Arc<SharedFile>>,
    pub(super) by_path: HashMap<PathBuf, FileId>,
    pub(super) by_listed: HashMap<FileId, FileId>,
}

impl Entries {
    /// Puts `entry` in, replacing (and returning) the entry of its id.
    pub(super) fn insert(&mut self, entry: &Arc<SharedFile>) -> Option<Arc<SharedFile>> {
        let old = self.by_id.insert(entry.id, Arc::clone(entry));
        if let Some(old) = &old {
            self.unindex(old);
        }
        self.by_listed.insert(entry.listed, entry.id);
        old
    }

    /// Takes `entry` out if it is the one of its id; returns whether it was.
    pub(super) fn remove(&mut self, entry: &Arc<SharedFile>) -> bool {
        match self.by_id.get(&entry.id) {
            Some(current) if Arc::ptr_eq(current, entry) => {
                self.by_id.remove(&entry.id);
                self.unindex(entry);
                true
            }
            _ => false,
        }
    }

    /// Drops the keys of `entry`, which is leaving `by_id`.
    fn unindex(&mut self, entry: &SharedFile) {
        if self.by_listed.get(&entry.listed) == Some(&entry.id) {
            self.by_listed.remove(&entry.listed);
        }
        if let Some(path) = read(&entry.canonical).as_ref() {
            if self.by_path.get(path) == Some(&entry.id) {
                self.by_path.remove(path);
            }
        }
    }

    /// Makes `entry` the complete file at `canonical`; returns the entry it
    /// replaces there (the path's earlier contents), taken out.
    pub(super) fn place(
        &mut self,
        entry: &SharedFile,
        canonical: PathBuf,
    ) -> Option<Arc<SharedFile>> {
        let other = self.by_path.insert(canonical, entry.id)?;
        let old = self.by_id.get(&other).filter(|_| other != entry.id)?;
        let old = Arc::clone(old);
        self.remove(&old);
        Some(old)
    }
}
