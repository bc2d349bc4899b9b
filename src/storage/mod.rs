//! Files on disk, behind a small interface. [`Storage`] reads and writes a
//! chunk of one file at its offset; the chunk server, the download workers
//! and resume use only that, so a later directory share is a new `Storage`,
//! not a change to the scheduler. [`hash`] turns a file into its manifest;
//! [`partial`] is a download in progress, published only when complete.

pub mod fs;
pub mod hash;
pub mod on_demand;
pub mod partial;
pub mod tree;

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use thiserror::Error;

use crate::manifest::{Chunk, ManifestError};
use crate::sync::LockExt;

pub use hash::{hash_chunks, hash_some, manifest_of, manifest_of_reporting};
pub use on_demand::{OnDemand, OpenFiles};
pub use partial::PartialFile;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{0} already exists; not overwriting it")]
    Exists(PathBuf),
    #[error("{0} is not a regular file")]
    NotAFile(PathBuf),
    #[error("{path} changed while it was being read")]
    Changed { path: PathBuf },
    #[error("{0} is a symbolic link; not writing through it")]
    Symlink(PathBuf),
    #[error("{path} exists and is not a partial download of ours ({reason}); remove it or download to another name")]
    Foreign { path: PathBuf, reason: String },
    #[error("{path} is being written by another download ({holder}); wait for it, or download to another name")]
    Locked { path: PathBuf, holder: String },
    #[error("not enough space for {path}: {need} more bytes needed, {free} free")]
    NoSpace { path: PathBuf, need: u64, free: u64 },
    #[error("{path}: cannot be shared: {why}; names are never rewritten: rename it, or leave it out with --exclude")]
    BadName { path: PathBuf, why: String },
    #[error("{first} and {second} have one name; a folder cannot hold both")]
    SameName { first: PathBuf, second: PathBuf },
    #[error("{path}: more than {visits} entries to look at; share a smaller folder")]
    TooBig { path: PathBuf, visits: usize },
    #[error("{first} and {second} are one name on this file system (it ignores case, or merges names); not downloading the folder here")]
    Collision { first: String, second: String },
    #[error("--only matches no file of the folder")]
    NothingSelected,
    #[error("not a folder's manifest")]
    NotATree,
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where one file's bytes live. Offsets and lengths come from a validated
/// [`Chunk`] of the file's manifest (or a slice of one, when a chunk is
/// sent a piece at a time), never from the network directly.
pub trait Storage: Send + Sync {
    /// Fills `buf` (exactly `chunk.len` bytes) with the chunk's bytes.
    fn read_chunk(&self, chunk: Chunk, buf: &mut [u8]) -> io::Result<()>;

    /// Writes a verified chunk at its offset.
    fn write_chunk(&self, chunk: Chunk, data: &[u8]) -> io::Result<()>;

    /// The open file and offset that hold all of `chunk`, for zero-copy
    /// sends (`sendfile`); `None` if no single file does. The holder keeps
    /// the file open while it sends, whatever a cache does meanwhile.
    fn file_range(&self, chunk: Chunk) -> Option<(Arc<File>, u64)>;

    /// Flushes written data to the disk.
    fn sync(&self) -> io::Result<()>;

    /// The size and modification time of what is stored, to tell whether
    /// it was changed behind this peer's back.
    fn stamp(&self) -> io::Result<Stamp>;
}

/// A file's size, modification time and identity (device, inode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub len: u64,
    pub modified: Option<std::time::SystemTime>,
    pub inode: (u64, u64),
}

/// A whole file as one [`Storage`]: chunk offsets are file offsets.
pub struct FileStorage {
    file: Arc<File>,
    /// Serialises writes. The kernel takes the inode lock for each buffered
    /// write anyway; contending writers spin on it (measured: ~11% of the
    /// downloader's CPU with 8 workers), while a mutex puts them to sleep.
    write_lock: Mutex<()>,
}

impl FileStorage {
    pub fn new(file: File) -> Self {
        FileStorage {
            file: Arc::new(file),
            write_lock: Mutex::new(()),
        }
    }
}

impl Storage for FileStorage {
    fn read_chunk(&self, chunk: Chunk, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, chunk.offset)
    }

    fn write_chunk(&self, chunk: Chunk, data: &[u8]) -> io::Result<()> {
        {
            let _serial = self.write_lock.locked();
            self.file.write_all_at(data, chunk.offset)?;
        }
        // Outside the lock: on a congested disk this waits for room in the
        // device's queue, and other workers' writes need not wait with it.
        fs::start_writeback(&self.file, chunk.offset, data.len());
        Ok(())
    }

    fn file_range(&self, chunk: Chunk) -> Option<(Arc<File>, u64)> {
        Some((Arc::clone(&self.file), chunk.offset))
    }

    fn sync(&self) -> io::Result<()> {
        self.file.sync_all()
    }

    fn stamp(&self) -> io::Result<Stamp> {
        Ok(on_demand::stamp_of(&self.file.metadata()?))
    }
}
