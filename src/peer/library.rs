//! The files this peer holds, by id: complete files it shares and files it
//! is downloading, each with the [`ChunkSet`] of chunks present and verified.
//! Each entry keeps its storage open and its encoded manifest ready, so
//! serving a request is a map look-up, one chunk-set check and a positional
//! read. Requests name files only by id: nothing a remote sends can name a
//! path on this disk.
//!
//! Invariant: a chunk is in an entry's set only once it is verified and
//! written, so whoever serves from the set never serves unverified data.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::offer::Offers;
use crate::chunkset::ChunkSet;
use crate::manifest::{FileId, Manifest};
use crate::private::{listed_id, Secret};
use crate::storage::{FileStorage, Stamp, Storage};
use crate::sync::{LockExt, Unpoisoned};

pub struct SharedFile {
    pub id: FileId,
    pub name: String,
    /// A private share's secret: served only on connections that prove it.
    pub secret: Option<Secret>,
    /// The id the tracker and the DHT know it by: `id`, or for a private
    /// share the blinded id.
    pub listed: FileId,
    pub manifest: Manifest,
    /// The canonical manifest bytes, served as they are.
    pub encoded: Vec<u8>,
    storage: Arc<dyn Storage>,
    /// Where the data is: the output once complete, the partial file before.
    path: RwLock<PathBuf>,
    have: RwLock<ChunkSet>,
    /// Bytes of chunks served to other peers, in all and while partial.
    uploaded: AtomicU64,
    uploaded_partial: AtomicU64,
    /// What a complete file offers each downloader (fresh chunks first).
    offers: Offers,
    /// Size and modification time when it became complete here: a file
    /// changed in place since no longer matches its manifest.
    stamp: RwLock<Option<Stamp>>,
}

impl SharedFile {
    fn new(
        name: String,
        path: PathBuf,
        manifest: Manifest,
        storage: Arc<dyn Storage>,
        have: ChunkSet,
        secret: Option<Secret>,
    ) -> Self {
        let (encoded, id) = manifest.encoded_with_id();
        SharedFile {
            id,
            name,
            secret,
            listed: listed_id(&id, secret.as_ref()),
            encoded,
            manifest,
            storage,
            path: RwLock::new(path),
            have: RwLock::new(have),
            uploaded: AtomicU64::new(0),
            uploaded_partial: AtomicU64::new(0),
            offers: Offers::default(),
            stamp: RwLock::new(None),
        }
    }

    pub fn offers(&self) -> &Offers {
        &self.offers
    }

    pub fn storage(&self) -> &dyn Storage {
        &*self.storage
    }

    pub fn path(&self) -> PathBuf {
        read(&self.path).clone()
    }

    /// Whether chunk `index` is present and verified here.
    pub fn has(&self, index: u32) -> bool {
        read(&self.have).contains(index)
    }

    /// A copy of the chunks present.
    pub fn have(&self) -> ChunkSet {
        read(&self.have).clone()
    }

    pub fn is_complete(&self) -> bool {
        read(&self.have).is_complete()
    }

    /// Records chunk `index` as verified and written.
    pub fn add_chunk(&self, index: u32) {
        write(&self.have).insert(index);
    }

    /// Marks every chunk present, the data now at `path`.
    pub fn complete(&self, path: PathBuf) {
        *write(&self.path) = path;
        *write(&self.have) = ChunkSet::full(self.manifest.chunk_count());
        *write(&self.stamp) = self.storage.stamp().ok();
    }

    /// Whether a complete file was changed (or truncated) in place since it
    /// was shared: its size or modification time differ. Cheap (one fstat).
    pub fn changed(&self) -> bool {
        let Some(then) = *read(&self.stamp) else {
            return false;
        };
        self.storage.stamp().map_or(true, |now| now != then)
    }

    pub fn uploaded(&self) -> u64 {
        self.uploaded.load(Ordering::Relaxed)
    }

    /// Bytes served while this peer did not have the whole file yet.
    pub fn uploaded_while_partial(&self) -> u64 {
        self.uploaded_partial.load(Ordering::Relaxed)
    }

    pub fn add_uploaded(&self, bytes: u64) {
        self.uploaded.fetch_add(bytes, Ordering::Relaxed);
        if !self.is_complete() {
            self.uploaded_partial.fetch_add(bytes, Ordering::Relaxed);
        }
    }
}

#[derive(Default)]
pub struct Library {
    files: RwLock<HashMap<FileId, Arc<SharedFile>>>,
    /// Ids dropped because their file changed, for the announcer to
    /// unregister.
    withdrawn: Mutex<Vec<FileId>>,
}

impl Library {
    /// Shares the complete file at `path` under `name`, described by
    /// `manifest`, privately if it has a `secret`. Sharing the same content
    /// again replaces the earlier entry.
    pub fn add(
        &self,
        name: String,
        path: PathBuf,
        manifest: Manifest,
        secret: Option<Secret>,
    ) -> io::Result<Arc<SharedFile>> {
        let storage = Arc::new(FileStorage::new(File::open(&path)?));
        let have = ChunkSet::full(manifest.chunk_count());
        let file = SharedFile::new(name, path, manifest, storage, have, secret);
        *write(&file.stamp) = Some(file.storage.stamp()?);
        Ok(self.insert(file))
    }

    /// Removes the complete entries of the file at `path` other than `keep`
    /// (earlier contents of a file shared again); returns them.
    pub fn remove_others_at(&self, path: &Path, keep: &FileId) -> Vec<Arc<SharedFile>> {
        // The file system is asked outside the lock, which every request
        // takes.
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let path = canonical(path);
        self.list()
            .into_iter()
            .filter(|f| f.id != *keep && canonical(&f.path()) == path)
            .filter(|f| self.remove(f))
            .collect()
    }

    /// Adds a file being downloaded to `part`, with the chunks `have`
    /// already verified there, privately if it has a `secret`. It replaces
    /// no complete entry: if this peer already shares the whole file, there
    /// is no new entry (`None`).
    pub fn add_partial(
        &self,
        name: String,
        part: &Path,
        manifest: Manifest,
        storage: Arc<dyn Storage>,
        have: ChunkSet,
        secret: Option<Secret>,
    ) -> Option<Arc<SharedFile>> {
        // Built (encoded and hashed) before the lock every request takes.
        let entry = Arc::new(SharedFile::new(
            name,
            part.to_path_buf(),
            manifest,
            storage,
            have,
            secret,
        ));
        let mut files = write(&self.files);
        if files.get(&entry.id).is_some_and(|f| f.is_complete()) {
            return None;
        }
        files.insert(entry.id, Arc::clone(&entry));
        Some(entry)
    }

    fn insert(&self, entry: SharedFile) -> Arc<SharedFile> {
        let entry = Arc::new(entry);
        write(&self.files).insert(entry.id, Arc::clone(&entry));
        entry
    }

    pub fn get(&self, id: &FileId) -> Option<Arc<SharedFile>> {
        read(&self.files).get(id).cloned()
    }

    /// The entry the network knows by `listed` (a private share's blinded
    /// id): a scan, for the one `AUTH` of a connection.
    pub fn find_listed(&self, listed: &FileId) -> Option<Arc<SharedFile>> {
        read(&self.files)
            .values()
            .find(|f| f.listed == *listed)
            .cloned()
    }

    /// Removes `file`'s entry if it is still the one in the library (a
    /// failed or cancelled download's); returns whether it did.
    pub fn remove(&self, file: &Arc<SharedFile>) -> bool {
        let mut files = write(&self.files);
        match files.get(&file.id) {
            Some(current) if Arc::ptr_eq(current, file) => files.remove(&file.id).is_some(),
            _ => false,
        }
    }

    /// Drops `file` because it changed on disk since it was shared (a peer
    /// must not serve, or announce, what no longer matches its manifest).
    /// Returns whether it was still in the library, i.e. whether this call
    /// dropped it; its id is then queued for [`take_withdrawn`].
    ///
    /// [`take_withdrawn`]: Self::take_withdrawn
    pub fn withdraw_changed(&self, file: &Arc<SharedFile>) -> bool {
        let dropped = self.remove(file);
        if dropped {
            log::warn!(
                "{} changed since it was shared; no longer sharing it (share it again to share what it holds now)",
                file.path().display()
            );
            self.withdrawn.locked().push(file.listed);
        }
        dropped
    }

    /// Checks every complete file for changes (one fstat each) and drops
    /// the changed ones, as [`withdraw_changed`](Self::withdraw_changed).
    pub fn drop_changed(&self) {
        for file in self.list() {
            if file.changed() {
                self.withdraw_changed(&file);
            }
        }
    }

    /// The listed ids dropped since the last call, to unregister.
    pub fn take_withdrawn(&self) -> Vec<FileId> {
        std::mem::take(&mut *self.withdrawn.locked())
    }

    /// Every file, complete or being downloaded, by name.
    pub fn all(&self) -> Vec<Arc<SharedFile>> {
        self.sorted(|_| true)
    }

    /// Every complete file, by name.
    pub fn list(&self) -> Vec<Arc<SharedFile>> {
        self.sorted(|f| f.is_complete())
    }

    /// Every file being downloaded, by name.
    pub fn partial(&self) -> Vec<Arc<SharedFile>> {
        self.sorted(|f| !f.is_complete())
    }

    fn sorted(&self, keep: impl Fn(&SharedFile) -> bool) -> Vec<Arc<SharedFile>> {
        let mut all: Vec<_> = read(&self.files)
            .values()
            .filter(|f| keep(f))
            .cloned()
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        all
    }
}

// Entries and chunk sets are replaced or changed whole under the lock, so a
// poisoned lock still holds valid data.
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unpoisoned()
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unpoisoned()
}

#[cfg(test)]
mod tests;
