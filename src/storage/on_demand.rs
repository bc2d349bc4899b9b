//! Shared files served without holding a descriptor each: an
//! [`OnDemand`] storage knows its path and the identity of the file it
//! shared (device, inode, size, modification time), and opens it when a
//! chunk is asked for, through an [`OpenFiles`] cache of at most
//! [`MAX_OPEN_SHARES`] descriptors, least recently used first out. A peer
//! sharing 100,000 files needs no more descriptors than one sharing 64, so
//! `ulimit -n` bounds connections, not shares.
//!
//! Invariant: a descriptor the cache hands out is of the file that was
//! shared (same device and inode, checked by `fstat` when it is opened), so
//! a file replaced under its name (renamed over, deleted and made again) is
//! never served under the old id; [`Storage::stamp`] (a `stat` of the path)
//! tells the library it changed, and the library withdraws it.
//!
//! A descriptor handed out stays open while its holder sends from it, even
//! if the cache drops it meanwhile, so the cache's bound is on what it
//! keeps, and at most one more per send in flight is open.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::{Stamp, Storage};
use crate::bounds::MAX_OPEN_SHARES;
use crate::manifest::Chunk;
use crate::sync::LockExt;

/// The open descriptors of shared files, most recently used last.
pub struct OpenFiles {
    bound: usize,
    /// (key of an [`OnDemand`], its descriptor); at most `bound` of them.
    open: Mutex<Vec<(u64, Arc<File>)>>,
    next_key: AtomicU64,
}

impl Default for OpenFiles {
    fn default() -> Self {
        OpenFiles::with_bound(MAX_OPEN_SHARES)
    }
}

impl OpenFiles {
    /// A cache keeping at most `bound` (at least one) descriptors open.
    pub fn with_bound(bound: usize) -> Self {
        OpenFiles {
            bound: bound.max(1),
            open: Mutex::new(Vec::new()),
            next_key: AtomicU64::new(0),
        }
    }

    /// How many descriptors the cache holds now.
    pub fn len(&self) -> usize {
        self.open.locked().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `n` fresh keys in a row, for a storage of `n` files (a folder's).
    pub(in crate::storage) fn keys(&self, n: u64) -> std::ops::Range<u64> {
        let first = self.next_key.fetch_add(n, Ordering::Relaxed);
        first..first + n
    }

    /// The descriptor cached for `key`, made the most recent; else one
    /// `open` makes (outside the lock: a slow disk stalls only its caller),
    /// cached, the least recent dropped past the bound.
    pub(in crate::storage) fn get(
        &self,
        key: u64,
        open: impl FnOnce() -> io::Result<File>,
    ) -> io::Result<Arc<File>> {
        {
            let mut all = self.open.locked();
            if let Some(at) = all.iter().position(|(k, _)| *k == key) {
                let entry = all.remove(at);
                let file = Arc::clone(&entry.1);
                all.push(entry);
                return Ok(file);
            }
        }
        let file = Arc::new(open()?);
        let mut all = self.open.locked();
        // Another thread may have opened it meanwhile: keep one.
        all.retain(|(k, _)| *k != key);
        if all.len() >= self.bound {
            all.remove(0);
        }
        all.push((key, Arc::clone(&file)));
        Ok(file)
    }

    /// Closes `key`'s descriptor, if cached (its share is gone).
    fn forget(&self, key: u64) {
        self.open.locked().retain(|(k, _)| *k != key);
    }

    /// Closes the descriptors of every key in `keys` (a folder's share is
    /// gone): one pass over the cache, whatever the folder's size.
    pub(in crate::storage) fn forget_all(&self, keys: std::ops::Range<u64>) {
        self.open.locked().retain(|(k, _)| !keys.contains(k));
    }
}

/// A complete shared file, opened only to serve it (see the module docs).
pub struct OnDemand {
    path: PathBuf,
    /// Device and inode of the file shared.
    inode: (u64, u64),
    cache: Arc<OpenFiles>,
    key: u64,
}

impl OnDemand {
    /// The file at `path` (one `stat`); returns it with its stamp.
    pub fn new(path: PathBuf, cache: Arc<OpenFiles>) -> io::Result<(OnDemand, Stamp)> {
        let meta = std::fs::metadata(&path)?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        let key = cache.next_key.fetch_add(1, Ordering::Relaxed);
        let storage = OnDemand {
            path,
            inode: (meta.dev(), meta.ino()),
            cache,
            key,
        };
        Ok((storage, stamp_of(&meta)))
    }

    fn file(&self) -> io::Result<Arc<File>> {
        self.cache.get(self.key, || {
            let file = File::open(&self.path)?;
            let meta = file.metadata()?;
            match (meta.dev(), meta.ino()) == self.inode {
                true => Ok(file),
                false => Err(io::Error::other(format!(
                    "{} was replaced since it was shared",
                    self.path.display()
                ))),
            }
        })
    }
}

impl Drop for OnDemand {
    fn drop(&mut self) {
        self.cache.forget(self.key);
    }
}

impl Storage for OnDemand {
    fn read_chunk(&self, chunk: Chunk, buf: &mut [u8]) -> io::Result<()> {
        self.file()?.read_exact_at(buf, chunk.offset)
    }

    fn write_chunk(&self, _: Chunk, _: &[u8]) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "a shared file is only read",
        ))
    }

    fn file_range(&self, chunk: Chunk) -> Option<(Arc<File>, u64)> {
        match self.file() {
            Ok(file) => Some((file, chunk.offset)),
            // `read_chunk` will say why.
            Err(_) => None,
        }
    }

    fn sync(&self) -> io::Result<()> {
        Ok(())
    }

    /// The path's size and modification time now; a file replaced under
    /// the name (another inode) never matches the stamp it was shared with.
    fn stamp(&self) -> io::Result<Stamp> {
        let meta = std::fs::metadata(&self.path)?;
        let mut stamp = stamp_of(&meta);
        if (meta.dev(), meta.ino()) != self.inode {
            stamp.modified = None;
            stamp.inode = (meta.dev(), meta.ino());
        }
        Ok(stamp)
    }
}

/// The stamp `meta` gives.
pub fn stamp_of(meta: &std::fs::Metadata) -> Stamp {
    Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        inode: (meta.dev(), meta.ino()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(offset: u64, len: u32) -> Chunk {
        Chunk {
            index: 0,
            offset,
            len,
        }
    }

    #[test]
    fn the_cache_keeps_at_most_its_bound_open_and_serves_every_file() {
        let dir = crate::testing::temp_dir("on-demand-bound");
        let cache = Arc::new(OpenFiles::with_bound(3));
        let files: Vec<OnDemand> = (0..10u8)
            .map(|i| {
                let path = dir.join(format!("f{i}"));
                std::fs::write(&path, [i; 8]).unwrap();
                OnDemand::new(path, Arc::clone(&cache)).unwrap().0
            })
            .collect();
        for round in 0..2 {
            for (i, f) in files.iter().enumerate() {
                let mut buf = [0; 4];
                f.read_chunk(chunk(2, 4), &mut buf).unwrap();
                assert_eq!(buf, [i as u8; 4], "round {round}");
                assert!(cache.len() <= 3);
            }
        }
        drop(files);
        assert!(cache.is_empty(), "a dropped share's descriptor is closed");
    }

    #[test]
    fn a_file_replaced_under_its_name_is_neither_served_nor_unchanged() {
        let dir = crate::testing::temp_dir("on-demand-replaced");
        let path = dir.join("f");
        std::fs::write(&path, b"original").unwrap();
        let (f, stamp) = OnDemand::new(path.clone(), Arc::default()).unwrap();
        assert_eq!(f.stamp().unwrap(), stamp);
        let other = dir.join("g");
        std::fs::write(&other, b"replaced").unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert_ne!(f.stamp().unwrap(), stamp, "another inode");
        let mut buf = [0; 8];
        assert!(f.read_chunk(chunk(0, 8), &mut buf).is_err());
        assert!(f.file_range(chunk(0, 8)).is_none());
    }
}
