//! The files this peer shares, by id. Each entry keeps its file open and its
//! encoded manifest ready, so serving a request is a map look-up and a
//! positional read. Requests name files only by id: nothing a remote sends can
//! name a path on this disk.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::manifest::{FileId, Manifest};

pub struct SharedFile {
    pub id: FileId,
    pub name: String,
    pub path: PathBuf,
    pub manifest: Manifest,
    /// The canonical manifest bytes, served as they are.
    pub encoded: Vec<u8>,
    pub file: File,
    /// Bytes of chunks served to other peers.
    pub uploaded: AtomicU64,
}

impl SharedFile {
    pub fn uploaded(&self) -> u64 {
        self.uploaded.load(Ordering::Relaxed)
    }

    pub fn add_uploaded(&self, bytes: u64) {
        self.uploaded.fetch_add(bytes, Ordering::Relaxed);
    }
}

#[derive(Default)]
pub struct Library {
    files: RwLock<HashMap<FileId, Arc<SharedFile>>>,
}

impl Library {
    /// Shares the file at `path` under `name`, described by `manifest`.
    /// Sharing the same content again replaces the earlier entry.
    pub fn add(
        &self,
        name: String,
        path: PathBuf,
        manifest: Manifest,
    ) -> io::Result<Arc<SharedFile>> {
        let file = File::open(&path)?;
        let encoded = manifest.encode();
        let entry = Arc::new(SharedFile {
            id: manifest.id(),
            name,
            path,
            manifest,
            encoded,
            file,
            uploaded: AtomicU64::new(0),
        });
        self.write().insert(entry.id, Arc::clone(&entry));
        Ok(entry)
    }

    pub fn get(&self, id: &FileId) -> Option<Arc<SharedFile>> {
        self.read().get(id).cloned()
    }

    /// Every shared file, by name.
    pub fn list(&self) -> Vec<Arc<SharedFile>> {
        let mut all: Vec<_> = self.read().values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        all
    }

    // Entries are replaced whole, so a poisoned lock still holds a valid map.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<FileId, Arc<SharedFile>>> {
        self.files.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<FileId, Arc<SharedFile>>> {
        self.files.write().unwrap_or_else(|e| e.into_inner())
    }
}
