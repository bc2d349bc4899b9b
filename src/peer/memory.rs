//! What a peer remembers across runs, in its state directory: the files it
//! shares (`shares.json`, with each one's manifest under `manifests/`, so a
//! file unchanged since, by size and modification time, is shared again
//! without hashing it), and the downloads that did not finish
//! (`downloads.json`: what was asked for and where it goes, so `resume`
//! can ask again; the verified chunks wait in the partial file).
//!
//! Sharing N files rewrites `shares.json` once per batch ([`Memory::share_all`]),
//! not once per file, and writes each new manifest once without a disk
//! flush of its own (a manifest is named by its hash: a torn one is found
//! on reading, and its file hashed again), so remembering N shares costs
//! O(N) bytes and one `fsync` of `shares.json`.
//!
//! Every file is written whole to a temporary name and renamed, mode 0600
//! (private shares' secrets are in it), so a crash leaves the old state or
//! the new, never half of one, and read and written through
//! [`state_file`](crate::state_file): a link, a FIFO or anything else that
//! is not a regular file refuses the start ([`Memory::open`]) and is never
//! written over. A file of ours whose JSON is damaged is reported and
//! ignored: forgetting is better than refusing to start.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::library::SharedFile;
use crate::bounds::{MAX_MANIFEST_LEN, MAX_STATE_FILE};
use crate::manifest::{FileId, Manifest};
use crate::private::Secret;
use crate::state_file::{self, StateFileError};
use crate::sync::LockExt;

use crate::state_file::names::{DOWNLOADS, MANIFESTS, SHARES};

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
    /// Serialises the read-modify-write of each file.
    lock: Mutex<()>,
}

impl Memory {
    /// The memory kept in `dir`, once its files are found to be regular
    /// files (or absent), and `manifests/` a directory, not a link.
    pub fn open(dir: &Path) -> Result<Memory, StateFileError> {
        let memory = Memory {
            dir: dir.to_path_buf(),
            lock: Mutex::new(()),
        };
        for name in [SHARES, DOWNLOADS] {
            if let Some(file) = state_file::open(&dir.join(name))? {
                file.within(MAX_STATE_FILE)?;
            }
        }
        memory.manifests()?;
        Ok(memory)
    }

    /// The shares remembered, as they were.
    pub fn shares(&self) -> Vec<Share> {
        self.read_or_warn(SHARES)
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

    /// Remembers the complete shared files `added` (each with whether its
    /// manifest is stored already: restored unchanged) and forgets `gone`,
    /// in one rewrite of `shares.json`; a remembered share of an added
    /// file's path or id is replaced.
    pub fn share_all(&self, added: &[(&SharedFile, bool)], gone: &[FileId]) {
        let added_ids: HashSet<FileId> = added.iter().map(|(f, _)| f.id).collect();
        let dropped: Vec<FileId> = gone
            .iter()
            .filter(|id| !added_ids.contains(id))
            .copied()
            .collect();
        self.forget_manifests(&dropped);
        let to_store: Vec<&SharedFile> = added
            .iter()
            .filter(|(_, stored)| !stored)
            .map(|(f, _)| *f)
            .collect();
        self.store_manifests(&to_store);
        let shares: Vec<Share> = added.iter().filter_map(|(f, _)| share_of(f)).collect();
        let mut hex: HashSet<String> = gone.iter().map(FileId::to_hex).collect();
        hex.extend(shares.iter().map(|s| s.id.clone()));
        let paths: HashSet<&Path> = shares.iter().map(|s| s.path.as_path()).collect();
        self.update(SHARES, |all: &mut Vec<Share>| {
            all.retain(|s| !paths.contains(s.path.as_path()) && !hex.contains(&s.id));
            all.extend(shares.iter().cloned());
        });
    }

    /// Writes the manifests of `files` under `manifests/`, unsynced (see
    /// the module docs).
    fn store_manifests(&self, files: &[&SharedFile]) {
        if files.is_empty() {
            return;
        }
        let stored = self.manifests().map_err(|e| e.to_string()).and_then(|dir| {
            crate::identity::ensure_private_dir(&dir).map_err(|e| e.to_string())?;
            Ok(dir)
        });
        let dir = match stored {
            Ok(dir) => dir,
            Err(e) => return log::info!("cannot remember manifests: {e}"),
        };
        for file in files {
            let path = manifest_path(&dir, &file.id);
            if let Err(e) = state_file::write_unsynced(&path, &file.encoded) {
                log::info!("cannot remember the manifest of {}: {e}", file.name);
            }
        }
    }

    fn forget_manifests(&self, ids: &[FileId]) {
        for id in ids {
            let _ = std::fs::remove_file(manifest_path(&self.dir.join(MANIFESTS), id));
        }
    }

    /// Forgets the shared file `id` (it changed, or is no longer shared).
    pub fn forget_share(&self, id: &FileId) {
        self.forget_shares(&[*id]);
    }

    /// Forgets the shared files `ids` in one rewrite of `shares.json`.
    pub fn forget_shares(&self, ids: &[FileId]) {
        self.share_all(&[], ids);
    }

    /// The manifest remembered for `share`, if it is still there, whole and
    /// of that id, and the file is as it was (same size and mtime).
    pub fn unchanged_manifest(&self, share: &Share) -> Option<Manifest> {
        let meta = std::fs::metadata(&share.path).ok()?;
        if meta.len() != share.size || mtime_ns(&meta) != Some(share.mtime_ns) {
            return None;
        }
        let id: FileId = share.id.parse().ok()?;
        let path = manifest_path(&self.dir.join(MANIFESTS), &id);
        let bytes = match state_file::read(&path, MAX_MANIFEST_LEN as u64) {
            Ok(bytes) => bytes?,
            Err(e) => {
                log::warn!("{e}");
                return None;
            }
        };
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
    /// is left as it is (with a warning), never written over.
    /// Left unwritten when the change changes nothing (sharing again at
    /// start-up what was remembered).
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

    /// The `manifests/` directory, unless a link is there.
    fn manifests(&self) -> Result<PathBuf, StateFileError> {
        let dir = self.dir.join(MANIFESTS);
        match std::fs::symlink_metadata(&dir) {
            Ok(meta) if meta.file_type().is_symlink() => Err(StateFileError::Link { path: dir }),
            _ => Ok(dir),
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

fn manifest_path(dir: &Path, id: &FileId) -> PathBuf {
    dir.join(format!("{id}.manifest"))
}

/// A remembered share's secret: `Ok(None)` for a public share, `Err` if
/// the secret is damaged (the share must then not be made public).
pub fn secret_of(share: &Share) -> Result<Option<Secret>, crate::private::PrivateError> {
    share.secret.as_deref().map(str::parse).transpose()
}

#[cfg(test)]
mod tests;
