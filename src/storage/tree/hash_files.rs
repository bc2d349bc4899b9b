//! Hashing the files a scan found, in path order, reporting progress as it
//! goes.
//!
//! Invariants: every file is hashed exactly once; a file that changes or
//! is replaced while hashed (device, inode, size or type, as `lstat` sees
//! them before and after) refuses the scan, as for a single file; progress
//! is reported from the calling thread only: after each small file, and at
//! least every [`PROGRESS_TICK`] while a large one is hashed (on all cores,
//! by `manifest_of_reporting`, from a helper thread).
//!
//! Why one file at a time: hashing small files on two threads was measured
//! no faster (1,403 files of the Python library, 52 MB, cached, on a
//! loaded 2-core machine: 56-82 ms on two threads, 48-54 ms on one), and a
//! large file already uses every core.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use crate::manifest::tree::FileIn;
use crate::manifest::Manifest;
use crate::storage::{io_err, manifest_of_reporting, StoreError};

/// How often the bytes of a large file hashed so far are reported.
const PROGRESS_TICK: Duration = Duration::from_millis(100);

/// From this size on, a file is hashed from a helper thread while the
/// caller reports progress: ~30 ms of hashing or more.
const LARGE_FILE: u64 = 32 << 20;

/// The tree entries of `files` (disk path, tree path), each hashed;
/// `hashed` is called with bytes hashed as they are.
pub(super) fn hash_files(
    files: Vec<(PathBuf, String)>,
    hashed: &mut dyn FnMut(u64),
) -> Result<Vec<FileIn>, StoreError> {
    let mut entries = Vec::with_capacity(files.len());
    for (path, tree_path) in files {
        let before = path.symlink_metadata().map_err(io_err(&path))?;
        let manifest = if before.len() < LARGE_FILE {
            let manifest = manifest_of_reporting(&path, &|_| {})?;
            hashed(manifest.size());
            manifest
        } else {
            hash_large(&path, hashed)?
        };
        let after = path.symlink_metadata().map_err(io_err(&path))?;
        let same = |m: &fs::Metadata| (m.dev(), m.ino(), m.len(), m.is_file());
        if same(&before) != same(&after) || after.len() != manifest.size() {
            return Err(StoreError::Changed { path });
        }
        entries.push(FileIn {
            path: tree_path,
            exec: after.mode() & 0o100 != 0,
            manifest,
        });
    }
    Ok(entries)
}

/// Hashes the file at `path` from a helper thread, reporting its bytes
/// from this one as they are hashed.
fn hash_large(path: &Path, hashed: &mut dyn FnMut(u64)) -> Result<Manifest, StoreError> {
    let bytes = AtomicU64::new(0);
    let stopped = AtomicBool::new(false);
    let caller = thread::current();
    thread::scope(|s| {
        let worker = s.spawn(|| {
            let manifest = manifest_of_reporting(path, &|n| {
                bytes.fetch_add(n, Ordering::Relaxed);
            });
            // Set before the wake-up, so the caller never waits a tick for
            // a worker that is done.
            stopped.store(true, Ordering::Release);
            caller.unpark();
            manifest
        });
        let mut reported = 0;
        loop {
            let done = stopped.load(Ordering::Acquire);
            let now = bytes.load(Ordering::Relaxed);
            if now > reported {
                hashed(now - reported);
                reported = now;
            }
            if done {
                break;
            }
            thread::park_timeout(PROGRESS_TICK);
        }
        // A hashing thread only panics on a bug: pass it on as one.
        worker
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_file_reports_its_bytes_as_they_are_hashed() {
        let d = crate::testing::temp_dir("hash-large");
        let path = d.join("big");
        fs::write(&path, vec![3u8; LARGE_FILE as usize + 1]).unwrap();
        let mut reports = Vec::new();
        let files = vec![(path.clone(), "big".to_string())];
        let entries = hash_files(files, &mut |n| reports.push(n)).unwrap();
        assert_eq!(reports.iter().sum::<u64>(), LARGE_FILE + 1);
        assert_eq!(
            entries[0].manifest,
            crate::storage::manifest_of(&path).unwrap()
        );
    }
}
