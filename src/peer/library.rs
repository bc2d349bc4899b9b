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
use crate::storage::{FileStorage, Stamp, Storage};

pub struct SharedFile {
    pub id: FileId,
    pub name: String,
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
    ) -> Self {
        SharedFile {
            id: manifest.id(),
            name,
            encoded: manifest.encode(),
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
    /// `manifest`. Sharing the same content again replaces the earlier entry.
    pub fn add(
        &self,
        name: String,
        path: PathBuf,
        manifest: Manifest,
    ) -> io::Result<Arc<SharedFile>> {
        let storage = Arc::new(FileStorage::new(File::open(&path)?));
        let have = ChunkSet::full(manifest.chunk_count());
        let file = SharedFile::new(name, path, manifest, storage, have);
        *write(&file.stamp) = Some(file.storage.stamp()?);
        Ok(self.insert(file))
    }

    /// Removes the complete entries of the file at `path` other than `keep`
    /// (earlier contents of a file shared again); returns them.
    pub fn remove_others_at(&self, path: &Path, keep: &FileId) -> Vec<Arc<SharedFile>> {
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let path = canonical(path);
        let mut files = write(&self.files);
        let gone: Vec<Arc<SharedFile>> = files
            .values()
            .filter(|f| f.id != *keep && f.is_complete() && canonical(&f.path()) == path)
            .cloned()
            .collect();
        for f in &gone {
            files.remove(&f.id);
        }
        gone
    }

    /// Adds a file being downloaded to `part`, with the chunks `have`
    /// already verified there. It replaces no complete entry: if this peer
    /// already shares the whole file, there is no new entry (`None`).
    pub fn add_partial(
        &self,
        name: String,
        part: &Path,
        manifest: Manifest,
        storage: Arc<dyn Storage>,
        have: ChunkSet,
    ) -> Option<Arc<SharedFile>> {
        let mut files = write(&self.files);
        let id = manifest.id();
        if files.get(&id).is_some_and(|f| f.is_complete()) {
            return None;
        }
        let entry = Arc::new(SharedFile::new(
            name,
            part.to_path_buf(),
            manifest,
            storage,
            have,
        ));
        files.insert(id, Arc::clone(&entry));
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
            self.withdrawn
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(file.id);
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

    /// The ids dropped since the last call, to unregister.
    pub fn take_withdrawn(&self) -> Vec<FileId> {
        std::mem::take(&mut *self.withdrawn.lock().unwrap_or_else(|e| e.into_inner()))
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
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(n: u8) -> Manifest {
        Manifest::with_chunk_size(30, 10, vec![[n; 32]; 3]).expect("manifest")
    }

    fn storage() -> Arc<dyn Storage> {
        Arc::new(FileStorage::new(
            File::open("/dev/null").expect("/dev/null"),
        ))
    }

    #[test]
    fn partial_entries_track_their_chunks_and_are_listed_apart() {
        let lib = Library::default();
        let m = manifest(1);
        let f = lib
            .add_partial(
                "a".into(),
                Path::new(".a.part"),
                m.clone(),
                storage(),
                ChunkSet::from_fn(3, |i| i == 1),
            )
            .expect("a new entry");
        assert!(f.has(1) && !f.has(0) && !f.is_complete());
        assert!(lib.list().is_empty());
        assert_eq!(lib.partial().len(), 1);
        f.add_uploaded(10);
        f.add_chunk(0);
        f.add_chunk(2);
        assert!(f.is_complete(), "every chunk present");
        f.add_uploaded(5);
        assert_eq!((f.uploaded(), f.uploaded_while_partial()), (15, 10));
        f.complete(PathBuf::from("a"));
        assert_eq!(f.path(), PathBuf::from("a"));
        assert_eq!(lib.list().len(), 1);
    }

    #[test]
    fn a_partial_entry_never_replaces_a_complete_one_and_removal_is_exact() {
        let lib = Library::default();
        let m = manifest(2);
        let full = lib.insert(SharedFile::new(
            "b".into(),
            "b".into(),
            m.clone(),
            storage(),
            ChunkSet::full(3),
        ));
        let again = lib.add_partial(
            "b".into(),
            Path::new("p"),
            m.clone(),
            storage(),
            ChunkSet::empty(3),
        );
        assert!(again.is_none(), "the complete entry stays");
        assert!(Arc::ptr_eq(&full, &lib.get(&full.id).expect("still there")));
        let other = Arc::new(SharedFile::new(
            "b".into(),
            "b".into(),
            m,
            storage(),
            ChunkSet::empty(3),
        ));
        assert!(!lib.remove(&other), "not the library's entry");
        assert!(lib.remove(&full));
        assert!(lib.get(&full.id).is_none());
    }

    #[test]
    fn a_file_changed_in_place_is_dropped_once_and_queued_for_unregistering() {
        let path = std::env::temp_dir().join(format!("p2pshare-lib-{}", std::process::id()));
        std::fs::write(&path, b"first").unwrap();
        let lib = Library::default();
        let m = crate::storage::manifest_of(&path).unwrap();
        let f = lib.add("f".into(), path.clone(), m).unwrap();
        assert!(!f.changed());
        lib.drop_changed();
        assert_eq!(lib.list().len(), 1, "unchanged files stay");
        std::fs::write(&path, b"second, longer").unwrap();
        assert!(f.changed());
        lib.drop_changed();
        assert!(lib.list().is_empty());
        assert!(!lib.withdraw_changed(&f), "dropped once");
        assert_eq!(lib.take_withdrawn(), [f.id]);
        assert!(lib.take_withdrawn().is_empty());

        let m2 = crate::storage::manifest_of(&path).unwrap();
        let old = lib.add(
            "f".into(),
            path.clone(),
            crate::storage::manifest_of(&path).unwrap(),
        );
        std::fs::write(&path, b"third").unwrap();
        let new = lib
            .add(
                "f".into(),
                path.clone(),
                crate::storage::manifest_of(&path).unwrap(),
            )
            .unwrap();
        let gone = lib.remove_others_at(&path, &new.id);
        assert_eq!(gone.len(), 1, "the old content of the same path");
        assert_eq!(gone[0].id, m2.id());
        assert!(old.is_ok());
        assert_eq!(lib.list().len(), 1);
        let _ = std::fs::remove_file(path);
    }
}
