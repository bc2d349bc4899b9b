//! The files this peer holds, by id: complete files it shares and files it
//! is downloading, each with the [`ChunkSet`] of chunks present and verified.
//! Each entry keeps its encoded manifest ready, so serving a request is a
//! map look-up, one chunk-set check and a positional read. A complete file
//! holds no descriptor: it is opened on demand through the library's
//! bounded [`OpenFiles`] cache. Requests name files only by id: nothing a
//! remote sends can name a path on this disk.
//!
//! Every look-up is by a key, never a walk of all entries, so sharing N
//! files costs O(N): by id, by listed id (a private share's blinded id, for
//! `AUTH`), and by canonical path (computed once per share, so a file
//! shared again with new content replaces its old entry).
//!
//! Invariants: a chunk is in an entry's set only once it is verified and
//! written, so whoever serves from the set never serves unverified data;
//! `by_path` maps each canonical path to the one complete entry whose data
//! is there, and `by_listed` each entry's listed id to its id, exactly for
//! the entries in `by_id`.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::offer::Offers;
use crate::chunkset::ChunkSet;
use crate::manifest::{FileId, Manifest};
use crate::private::{listed_id, Secret};
use crate::storage::tree::{TreeFiles, TreeRoot};
use crate::storage::{OnDemand, OpenFiles, Stamp, Storage};
use crate::sync::{LockExt, Unpoisoned};
use entries::Entries;

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
    /// The partial file's while downloading; opened on demand once complete.
    storage: RwLock<Arc<dyn Storage>>,
    /// Where the data is: the output once complete, the partial file before.
    path: RwLock<PathBuf>,
    /// `path` made canonical, once complete: the library's key for it.
    canonical: RwLock<Option<PathBuf>>,
    have: RwLock<ChunkSet>,
    /// Bytes of chunks served to other peers, in all and while partial.
    uploaded: AtomicU64,
    uploaded_partial: AtomicU64,
    /// What a complete file offers each downloader (fresh chunks first).
    offers: Offers,
    /// Whether, once complete, it offers fresh chunks first (`offers`): a
    /// file shared here, whose chunks others may lack. A file downloaded
    /// here got every chunk from the swarm, and offers all it has, as a
    /// partial file does (issue 22: 48 downloaders that finished offered
    /// the last few only chunks they had never sent, so nothing of the
    /// one chunk they had all passed on, and the slowest waited 2-5 s for
    /// it).
    fresh_first: bool,
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
        fresh_first: bool,
    ) -> Self {
        let (encoded, id) = manifest.encoded_with_id();
        let offers = Offers::for_manifest(&manifest);
        SharedFile {
            id,
            name,
            secret,
            listed: listed_id(&id, secret.as_ref()),
            encoded,
            manifest,
            storage: RwLock::new(storage),
            path: RwLock::new(path),
            canonical: RwLock::new(None),
            have: RwLock::new(have),
            uploaded: AtomicU64::new(0),
            uploaded_partial: AtomicU64::new(0),
            offers,
            fresh_first,
            stamp: RwLock::new(None),
        }
    }

    pub fn offers(&self) -> &Offers {
        &self.offers
    }

    /// Whether what it offers goes through [`offers`](Self::offers): a
    /// complete file shared here (not one downloaded here).
    pub fn fresh_first(&self) -> bool {
        self.fresh_first && self.is_complete()
    }

    pub fn storage(&self) -> Arc<dyn Storage> {
        Arc::clone(&read(&self.storage))
    }

    pub fn path(&self) -> PathBuf {
        read(&self.path).clone()
    }

    /// The canonical path of a complete file (`None` while downloading).
    pub fn canonical_path(&self) -> Option<PathBuf> {
        read(&self.canonical).clone()
    }

    /// Size, modification time and inode when it became complete here.
    pub fn stamp(&self) -> Option<Stamp> {
        *read(&self.stamp)
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

    /// Marks every chunk present, the data now at `path` (canonical:
    /// `canonical`), read from `storage` from now on.
    fn complete(&self, path: PathBuf, canonical: PathBuf, storage: Arc<dyn Storage>, stamp: Stamp) {
        *write(&self.path) = path;
        *write(&self.canonical) = Some(canonical);
        *write(&self.storage) = storage;
        *write(&self.have) = ChunkSet::full(self.manifest.chunk_count());
        *write(&self.stamp) = Some(stamp);
    }

    /// Whether a complete file was changed (or truncated) in place since it
    /// was shared: its size or modification time differ. Cheap (one fstat).
    pub fn changed(&self) -> bool {
        let Some(then) = *read(&self.stamp) else {
            return false;
        };
        self.storage().stamp().map_or(true, |now| now != then)
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
    files: RwLock<Entries>,
    /// Ids dropped because their file changed, for the announcer to
    /// unregister.
    withdrawn: Mutex<Vec<FileId>>,
    /// The descriptors of complete files, opened on demand.
    open: Arc<OpenFiles>,
}

/// A file newly shared, and the entries it replaced.
pub struct Added {
    pub file: Arc<SharedFile>,
    /// The same path's earlier contents, and the same contents shared
    /// before under another listing (public, or another secret): both no
    /// longer shared.
    pub replaced: Vec<Arc<SharedFile>>,
}

impl Library {
    /// Shares the complete file at `path` under `name`, described by
    /// `manifest`, privately if it has a `secret`. Sharing the same content
    /// again replaces the earlier entry, and so does sharing the same path
    /// with new content. Costs one `stat` and one `realpath`, whatever the
    /// library holds.
    pub fn add(
        &self,
        name: String,
        path: PathBuf,
        manifest: Manifest,
        secret: Option<Secret>,
    ) -> io::Result<Added> {
        let (storage, stamp) = OnDemand::new(path.clone(), Arc::clone(&self.open))?;
        self.add_stored(name, path, manifest, Arc::new(storage), stamp, secret)
    }

    /// Shares the folder whose files are at `root`, described by the tree
    /// `manifest`, as [`add`](Self::add) does a file. Its files are opened
    /// on demand, beneath the root, through the same bounded cache.
    pub fn add_tree(
        &self,
        name: String,
        root: TreeRoot,
        manifest: Manifest,
        secret: Option<Secret>,
    ) -> io::Result<Added> {
        // Where it is shown and keyed: the folder, or the first of several.
        let path = match &root {
            TreeRoot::Dir(dir) => dir.clone(),
            TreeRoot::Several(paths) => paths.first().cloned().unwrap_or_default(),
        };
        let files = TreeFiles::new(root, &manifest, Arc::clone(&self.open))
            .map_err(|e| io::Error::other(e.to_string()))?;
        let stamp = files.stamp()?;
        self.add_stored(name, path, manifest, Arc::new(files), stamp, secret)
    }

    fn add_stored(
        &self,
        name: String,
        path: PathBuf,
        manifest: Manifest,
        storage: Arc<dyn Storage>,
        stamp: Stamp,
        secret: Option<Secret>,
    ) -> io::Result<Added> {
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        let have = ChunkSet::empty(manifest.chunk_count());
        // Built (encoded and hashed) before the lock every request takes.
        let file = Arc::new(SharedFile::new(
            name,
            path.clone(),
            manifest,
            Arc::clone(&storage),
            have,
            secret,
            true,
        ));
        file.complete(path, canonical.clone(), storage, stamp);
        let mut files = write(&self.files);
        // Inserted first: the entry it replaces gives up its path, which
        // may be this one.
        let mut replaced: Vec<_> = files
            .insert(&file)
            .filter(|old| old.listed != file.listed)
            .into_iter()
            .collect();
        replaced.extend(files.place(&file, canonical));
        Ok(Added { file, replaced })
    }

    /// Makes the download `file` complete, its data now at `path`: served
    /// from there (opened on demand), and the entry of that path.
    pub fn complete(&self, file: &Arc<SharedFile>, path: PathBuf) -> io::Result<()> {
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        let (storage, stamp): (Arc<dyn Storage>, Stamp) = match file.manifest.as_tree() {
            None => {
                let (storage, stamp) = OnDemand::new(path.clone(), Arc::clone(&self.open))?;
                (Arc::new(storage), stamp)
            }
            Some(_) => {
                let root = TreeRoot::Dir(path.clone());
                let files = TreeFiles::new(root, &file.manifest, Arc::clone(&self.open))
                    .map_err(|e| io::Error::other(e.to_string()))?;
                let stamp = files.stamp()?;
                (Arc::new(files), stamp)
            }
        };
        file.complete(path, canonical.clone(), storage, stamp);
        let mut files = write(&self.files);
        if files
            .by_id
            .get(&file.id)
            .is_some_and(|f| Arc::ptr_eq(f, file))
        {
            files.place(file, canonical);
        }
        Ok(())
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
            false,
        ));
        let mut files = write(&self.files);
        if files.by_id.get(&entry.id).is_some_and(|f| f.is_complete()) {
            return None;
        }
        files.insert(&entry);
        Some(entry)
    }

    pub fn get(&self, id: &FileId) -> Option<Arc<SharedFile>> {
        read(&self.files).by_id.get(id).cloned()
    }

    /// The entry the network knows by `listed` (a private share's blinded
    /// id), for the `AUTH` of a connection.
    pub fn find_listed(&self, listed: &FileId) -> Option<Arc<SharedFile>> {
        let files = read(&self.files);
        let id = files.by_listed.get(listed)?;
        files.by_id.get(id).cloned()
    }

    /// Removes `file`'s entry if it is still the one in the library (a
    /// failed or cancelled download's); returns whether it did.
    pub fn remove(&self, file: &Arc<SharedFile>) -> bool {
        write(&self.files).remove(file)
    }

    /// How many descriptors of shared files are open now (at most
    /// [`MAX_OPEN_SHARES`](crate::bounds::MAX_OPEN_SHARES)).
    pub fn open_files(&self) -> usize {
        self.open.len()
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
            .by_id
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

mod entries;
#[cfg(test)]
mod tests;
