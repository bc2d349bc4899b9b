//! What a peer remembers across runs, in its state directory: the files it
//! shares ([`shares`]: `shares.json` and its journal), each one's manifest
//! ([`manifests`]: one append-only file), so a file unchanged since, by
//! size and modification time, is shared again without hashing it, and
//! the downloads that did not finish (`downloads.json`: what was asked for
//! and where it goes, so `resume` can ask again; the verified chunks wait
//! in the partial file).
//!
//! Remembering a batch of N shares appends N journal lines (one `fsync`)
//! and N manifest records (no `fsync`: a record is checked against its id
//! when read, and a lost one is a file hashed again), so each share costs
//! O(1) bytes and system calls, amortised over the compactions, whatever
//! the number remembered; a share restored unchanged costs nothing.
//!
//! `downloads.json` is written whole to a temporary name and renamed, mode
//! 0600, so a crash leaves the old state or the new, never half of one.
//! Every file is read and written through
//! [`state_file`](crate::state_file): a link, a FIFO or anything else that
//! is not a regular file refuses the start ([`Memory::open`]) and is never
//! written over. A file of ours whose JSON is damaged is reported and
//! ignored: forgetting is better than refusing to start.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use self::manifests::ManifestStore;
use self::shares::{Change, SharesLog};
use super::library::SharedFile;
use crate::bounds::MAX_STATE_FILE;
use crate::manifest::{FileId, Manifest};
use crate::private::Secret;
use crate::state_file::names::{DOWNLOADS, MANIFESTS, MANIFEST_STORE};
use crate::state_file::{self, StateFileError};
use crate::sync::LockExt;

pub mod manifests;
pub mod shares;

/// A shared file as remembered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    pub path: PathBuf,
    pub name: String,
    pub id: String,
    pub size: u64,
    /// Modification time in nanoseconds since the epoch, when shared.
    pub mtime_ns: u64,
    /// A private share's secret (base32).
    pub secret: Option<String>,
}

/// A download that has not finished, as remembered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unfinished {
    /// What was typed: a ticket, link, id or name.
    pub target: String,
    pub name: String,
    pub id: String,
    pub out: PathBuf,
    /// Of a folder, the `--only` globs (none: all of it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
}

pub struct Memory {
    dir: PathBuf,
    /// The shares and their manifests, changed together.
    kept: Mutex<Kept>,
    /// Serialises the read-modify-write of `downloads.json`.
    lock: Mutex<()>,
}

struct Kept {
    shares: SharesLog,
    manifests: ManifestStore,
}

impl Memory {
    /// The memory kept in `dir`, once its files are found to be regular
    /// files (or absent); the manifests of an older version's `manifests/`
    /// directory (unless a link is there) are moved into the store.
    pub fn open(dir: &Path) -> Result<Memory, StateFileError> {
        if let Some(file) = state_file::open(&dir.join(DOWNLOADS))? {
            file.within(MAX_STATE_FILE)?;
        }
        let shares = SharesLog::open(dir)?;
        let old = dir.join(MANIFESTS);
        let old_kind = std::fs::symlink_metadata(&old).map(|m| m.file_type());
        if old_kind.as_ref().is_ok_and(|kind| kind.is_symlink()) {
            return Err(StateFileError::Link { path: old });
        }
        let mut manifests = ManifestStore::open(&dir.join(MANIFEST_STORE))?;
        if old_kind.is_ok_and(|kind| kind.is_dir()) {
            manifests.migrate(&old);
        }
        Ok(Memory {
            dir: dir.to_path_buf(),
            kept: Mutex::new(Kept { shares, manifests }),
            lock: Mutex::new(()),
        })
    }

    /// The shares remembered, as they were.
    pub fn shares(&self) -> Vec<Share> {
        self.kept.locked().shares.read().unwrap_or_else(|e| {
            log::warn!("{e}");
            Vec::new()
        })
    }

    /// The downloads left unfinished.
    pub fn unfinished(&self) -> Vec<Unfinished> {
        self.read_or_warn(DOWNLOADS)
    }

    /// Remembers a complete shared file (replacing what was remembered of
    /// its path), and its manifest.
    pub fn share(&self, file: &SharedFile) {
        self.share_all(&[(file, false)], &[]);
    }

    /// Remembers the complete shared files `added` (each with whether it
    /// is remembered as it is already: restored unchanged) and forgets
    /// `gone`, in one append to the journal; a remembered share of an
    /// added file's path or id is replaced.
    pub fn share_all(&self, added: &[(&SharedFile, bool)], gone: &[FileId]) {
        let added_ids: HashSet<FileId> = added.iter().map(|(f, _)| f.id).collect();
        let dropped: Vec<FileId> = gone
            .iter()
            .filter(|id| !added_ids.contains(id))
            .copied()
            .collect();
        let fresh = || added.iter().filter(|(_, kept)| !kept).map(|(f, _)| *f);
        let forgets = dropped.iter().map(|id| Change::Forget(id.to_hex()));
        let changes = forgets.chain(fresh().filter_map(share_of).map(Change::Share));
        let mut kept = self.kept.locked();
        if let Err(e) = kept.manifests.forget_all(&dropped) {
            log::info!("cannot forget manifests: {e}");
        }
        let manifests = fresh().map(|f| (f.id, f.encoded.as_slice()));
        if let Err(e) = kept.manifests.put_all(manifests) {
            log::info!("cannot remember manifests: {e}");
        }
        if let Err(e) = kept.shares.append(changes) {
            log::warn!("cannot remember the shares: {e}");
        }
    }

    /// Forgets the shared file `id` (it changed, or is no longer shared).
    pub fn forget_share(&self, id: &FileId) {
        self.forget_shares(&[*id]);
    }

    /// Forgets the shared files `ids` in one append to the journal.
    pub fn forget_shares(&self, ids: &[FileId]) {
        self.share_all(&[], ids);
    }

    /// The manifest remembered for `share`, if it is still there, whole and
    /// of that id, and the file is as it was (same size and mtime in
    /// `meta`, its metadata now).
    pub fn unchanged_manifest(&self, share: &Share, meta: &std::fs::Metadata) -> Option<Manifest> {
        if meta.len() != share.size || mtime_ns(meta) != Some(share.mtime_ns) {
            return None;
        }
        let id: FileId = share.id.parse().ok()?;
        let bytes = self.kept.locked().manifests.get(&id)?;
        let manifest = Manifest::decode(&bytes).ok()?;
        (manifest.id() == id && manifest.size() == share.size).then_some(manifest)
    }

    /// Remembers a download being started, until [`finished`](Self::finished).
    pub fn begin_download(&self, mut entry: Unfinished) {
        entry.out = absolute(&entry.out);
        self.update(DOWNLOADS, |all: &mut Vec<Unfinished>| {
            all.retain(|d| d.out != entry.out);
            all.push(entry);
        });
    }

    /// Forgets the download to `out`: its file is complete.
    pub fn finished(&self, out: &Path) {
        let out = absolute(out);
        self.update(DOWNLOADS, |all: &mut Vec<Unfinished>| {
            all.retain(|d| d.out != out)
        });
    }

    /// What the file `name` holds: nothing if it is absent or its JSON is
    /// damaged (said in a warning); an error if it is not a regular file of
    /// ours or cannot be read.
    fn read<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Result<Vec<T>, StateFileError> {
        let path = self.dir.join(name);
        let Some(bytes) = state_file::read(&path, MAX_STATE_FILE)? else {
            return Ok(Vec::new());
        };
        Ok(serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            log::warn!("ignoring {}, which is damaged: {e}", path.display());
            Vec::new()
        }))
    }

    /// What the file `name` holds, or nothing (with a warning) if it
    /// cannot be read as ours (it was, at start).
    fn read_or_warn<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Vec<T> {
        self.read(name).unwrap_or_else(|e| {
            log::warn!("{e}");
            Vec::new()
        })
    }

    /// Changes what the file `name` holds; one that cannot be read as ours
    /// is left as it is (with a warning), never written over. Left
    /// unwritten when the change changes nothing.
    fn update<T>(&self, name: &str, change: impl FnOnce(&mut Vec<T>))
    where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq + Clone,
    {
        let _guard = self.lock.locked();
        let path = self.dir.join(name);
        let written = self
            .read(name)
            .map_err(|e| e.to_string())
            .and_then(|mut all| {
                let before = all.clone();
                change(&mut all);
                if all == before {
                    return Ok(());
                }
                let bytes = serde_json::to_vec_pretty(&all).map_err(|e| e.to_string())?;
                state_file::write(&path, &bytes).map_err(|e| e.to_string())
            });
        if let Err(e) = written {
            log::warn!("cannot save {}: {e}", path.display());
        }
    }
}

/// What is remembered of a complete file: its canonical path and stamp as
/// they were when it was shared (no system call); `None` while downloading.
fn share_of(file: &SharedFile) -> Option<Share> {
    let stamp = file.stamp()?;
    Some(Share {
        path: file.canonical_path()?,
        name: file.name.clone(),
        id: file.id.to_hex(),
        size: stamp.len,
        mtime_ns: nanos(stamp.modified?)?,
        secret: file.secret.map(|s| s.to_string()),
    })
}

fn mtime_ns(meta: &std::fs::Metadata) -> Option<u64> {
    nanos(meta.modified().ok()?)
}

fn nanos(time: SystemTime) -> Option<u64> {
    let since = time.duration_since(UNIX_EPOCH).ok()?;
    u64::try_from(since.as_nanos()).ok()
}

/// `path` made absolute against the current directory (a later run may
/// start elsewhere).
fn absolute(path: &Path) -> PathBuf {
    std::env::current_dir()
        .map(|dir| dir.join(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// A remembered share's secret: `Ok(None)` for a public share, `Err` if
/// the secret is damaged (the share must then not be made public).
pub fn secret_of(share: &Share) -> Result<Option<Secret>, crate::private::PrivateError> {
    share.secret.as_deref().map(str::parse).transpose()
}

#[cfg(test)]
mod tests;
