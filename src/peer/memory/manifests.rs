//! The manifests of remembered shares, in one append-only file of the state
//! directory (`manifests.log`), so remembering N manifests creates one
//! file, not N: one file each made ext4 search for a free inode per share,
//! a search that lengthened with N (docs/BENCHMARKS.md, row 13).
//!
//! The file is a header line (`p2pshare manifests 1`), then records: an
//! id (32 bytes), a length (`u32`, big-endian) and that many bytes of
//! encoded manifest; a length of `u32::MAX` with nothing after it is a
//! tombstone (the id is forgotten). Invariants:
//!
//! - a record is trusted only if its bytes hash to its id (an id is the
//!   SHA-256 of the encoded manifest): one torn by a crash, damaged on disk
//!   or written by anyone else is never indexed, and every read hashes
//!   again before it returns bytes;
//! - records are appended in batches, without an `fsync` (a lost one costs
//!   hashing its file again); a torn tail (a record running past the end,
//!   or longer than any manifest) is cut off when the store is opened;
//! - the index in memory maps each id to its one live record; an id stored
//!   already is not appended again; once dead bytes (forgotten, damaged,
//!   tombstones) are more than half of a file over `MANIFEST_STORE_SLACK`,
//!   the live records are copied to a temporary file, synced and renamed
//!   over it, so the file stays within twice what it holds;
//! - the file never grows past `MAX_MANIFEST_STORE`; a longer one found at
//!   start is refused (not ours).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::bounds::{MANIFEST_STORE_SLACK, MAX_MANIFEST_LEN, MAX_MANIFEST_STORE};
use crate::manifest::FileId;
use crate::state_file::{self, StateFileError};

const MAGIC: &[u8] = b"p2pshare manifests 1\n";
/// Id and length.
const HEAD: u64 = 36;
const TOMBSTONE: u32 = u32::MAX;

/// Where a live record's bytes are.
#[derive(Debug, Clone, Copy)]
struct Span {
    at: u64,
    len: u32,
}

pub struct ManifestStore {
    path: PathBuf,
    file: File,
    index: HashMap<FileId, Span>,
    /// The file's length.
    end: u64,
    /// Bytes of live records, heads included.
    live: u64,
}

impl ManifestStore {
    /// The store at `path`, created if absent, its records indexed and a
    /// torn tail cut off; a file that is not a store of ours (another
    /// header) is said in a warning and started afresh.
    pub fn open(path: &Path) -> Result<ManifestStore, StateFileError> {
        let io_err = |source| StateFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(opened) = state_file::open(path)? {
            opened.within(MAX_MANIFEST_STORE)?;
        }
        let file = state_file::open_appending(path)?;
        let mut store = ManifestStore {
            path: path.to_path_buf(),
            file,
            index: HashMap::new(),
            end: 0,
            live: 0,
        };
        let (good, len) = store.scan().map_err(io_err)?;
        if good == 0 && len > 0 {
            log::warn!(
                "{} is not a manifest store of ours; starting it afresh",
                path.display()
            );
        }
        if good == 0 {
            store.file.set_len(0).map_err(io_err)?;
            store.file.write_all(MAGIC).map_err(io_err)?;
            store.end = MAGIC.len() as u64;
        } else if good < len {
            log::info!(
                "{}: cutting a torn tail of {} bytes",
                path.display(),
                len - good
            );
            store.file.set_len(good).map_err(io_err)?;
        }
        Ok(store)
    }

    /// Indexes every record that verifies; returns the end of the last
    /// whole record (0: no header of ours) and the file's length.
    fn scan(&mut self) -> io::Result<(u64, u64)> {
        let len = self.file.metadata()?.len();
        let mut r = BufReader::with_capacity(64 * 1024, self.file.try_clone()?);
        let mut magic = [0; MAGIC.len()];
        if len < MAGIC.len() as u64 || r.read_exact(&mut magic).is_err() || magic != MAGIC {
            return Ok((0, len));
        }
        let (mut at, mut body) = (MAGIC.len() as u64, Vec::new());
        while at + HEAD <= len {
            let mut head = [0; HEAD as usize];
            r.read_exact(&mut head)?;
            let id = FileId(head[..32].try_into().expect("32 bytes"));
            let n = u32::from_be_bytes(head[32..].try_into().expect("4 bytes"));
            if n == TOMBSTONE {
                self.drop_id(&id);
                at += HEAD;
                continue;
            }
            if n as usize > MAX_MANIFEST_LEN || at + HEAD + u64::from(n) > len {
                break;
            }
            body.resize(n as usize, 0);
            r.read_exact(&mut body)?;
            if hashes_to(&body, &id) {
                self.drop_id(&id);
                self.index.insert(
                    id,
                    Span {
                        at: at + HEAD,
                        len: n,
                    },
                );
                self.live += HEAD + u64::from(n);
            }
            at += HEAD + u64::from(n);
        }
        self.end = at;
        Ok((at, len))
    }

    fn drop_id(&mut self, id: &FileId) -> bool {
        match self.index.remove(id) {
            Some(span) => {
                self.live -= HEAD + u64::from(span.len);
                true
            }
            None => false,
        }
    }

    /// The encoded manifest stored for `id`, if it is there and still
    /// hashes to `id`.
    pub fn get(&self, id: &FileId) -> Option<Vec<u8>> {
        let span = self.index.get(id)?;
        let mut bytes = vec![0; span.len as usize];
        if let Err(e) = self.file.read_exact_at(&mut bytes, span.at) {
            log::warn!("{}: {e}", self.path.display());
            return None;
        }
        hashes_to(&bytes, id).then_some(bytes)
    }

    /// Whether a record of `id` is live.
    pub fn contains(&self, id: &FileId) -> bool {
        self.index.contains_key(id)
    }

    /// Appends the manifests (id and encoding) not stored yet, in one
    /// buffered write; on a failure the file is cut back to where it was.
    pub fn put_all<'a>(
        &mut self,
        manifests: impl IntoIterator<Item = (FileId, &'a [u8])>,
    ) -> Result<(), StateFileError> {
        let (mut fresh, mut seen): (Vec<(FileId, &[u8])>, HashSet<FileId>) = Default::default();
        let mut grows = 0;
        for (id, bytes) in manifests {
            let fits = bytes.len() <= MAX_MANIFEST_LEN;
            if fits && !self.contains(&id) && seen.insert(id) {
                grows += HEAD + bytes.len() as u64;
                fresh.push((id, bytes));
            }
        }
        if fresh.is_empty() {
            return Ok(());
        }
        if self.end + grows > MAX_MANIFEST_STORE {
            self.compact()?;
            if self.end + grows > MAX_MANIFEST_STORE {
                return Err(StateFileError::TooLong {
                    path: self.path.clone(),
                    max: MAX_MANIFEST_STORE,
                });
            }
        }
        let mut spans = Vec::with_capacity(fresh.len());
        let mut at = self.end;
        let written = self.append(|w| {
            for (id, bytes) in &fresh {
                w.write_all(&id.0)?;
                w.write_all(&(bytes.len() as u32).to_be_bytes())?;
                w.write_all(bytes)?;
                spans.push(Span {
                    at: at + HEAD,
                    len: bytes.len() as u32,
                });
                at += HEAD + bytes.len() as u64;
            }
            Ok(())
        });
        written?;
        for ((id, _), span) in fresh.iter().zip(spans) {
            self.index.insert(*id, span);
            self.live += HEAD + u64::from(span.len);
        }
        Ok(())
    }

    /// Forgets `ids` (a tombstone each that was stored), compacting the
    /// file if it is then mostly dead.
    pub fn forget_all(&mut self, ids: &[FileId]) -> Result<(), StateFileError> {
        let gone: Vec<FileId> = ids.iter().filter(|id| self.drop_id(id)).copied().collect();
        if gone.is_empty() {
            return Ok(());
        }
        self.append(|w| {
            for id in &gone {
                w.write_all(&id.0)?;
                w.write_all(&TOMBSTONE.to_be_bytes())?;
            }
            Ok(())
        })?;
        let dead = self.end - MAGIC.len() as u64 - self.live;
        if self.end > MANIFEST_STORE_SLACK && dead > self.live {
            self.compact()?;
        }
        Ok(())
    }

    /// Writes what `fill` writes at the end, unsynced; cut back on failure.
    fn append(
        &mut self,
        fill: impl FnOnce(&mut io::BufWriter<&File>) -> io::Result<()>,
    ) -> Result<(), StateFileError> {
        let mut w = io::BufWriter::with_capacity(64 * 1024, &self.file);
        let written = fill(&mut w).and_then(|()| w.flush());
        drop(w);
        let result = written.and_then(|()| self.file.metadata().map(|m| m.len()));
        match result {
            Ok(len) => {
                self.end = len;
                Ok(())
            }
            Err(source) => {
                let _ = self.file.set_len(self.end);
                Err(StateFileError::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        }
    }

    /// Copies the live records (those that still verify) to a new file,
    /// synced and renamed over this one.
    fn compact(&mut self) -> Result<(), StateFileError> {
        let mut index = HashMap::with_capacity(self.index.len());
        let mut at = MAGIC.len() as u64;
        let ids: Vec<FileId> = self.index.keys().copied().collect();
        state_file::write_with(&self.path, |w| {
            w.write_all(MAGIC)?;
            for id in ids {
                let Some(bytes) = self.get(&id) else { continue };
                w.write_all(&id.0)?;
                w.write_all(&(bytes.len() as u32).to_be_bytes())?;
                w.write_all(&bytes)?;
                let len = bytes.len() as u32;
                index.insert(id, Span { at: at + HEAD, len });
                at += HEAD + u64::from(len);
            }
            Ok(())
        })?;
        self.file = state_file::open_appending(&self.path)?;
        self.live = at - MAGIC.len() as u64;
        self.end = at;
        self.index = index;
        Ok(())
    }

    /// Moves the manifests of the old layout (`<id>.manifest` files in
    /// `dir`) into the store: each that hashes to its name is appended,
    /// every one is removed, and so is `dir` once empty.
    pub fn migrate(&mut self, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut batch = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let id = name
                .to_str()
                .and_then(|n| n.strip_suffix(".manifest"))
                .and_then(|hex| hex.parse::<FileId>().ok());
            let read = id.and_then(|id| {
                let bytes = state_file::read(&path, MAX_MANIFEST_LEN as u64).ok()??;
                hashes_to(&bytes, &id).then_some((id, bytes))
            });
            batch.extend(read);
            let _ = std::fs::remove_file(&path);
            if batch.len() >= 1024 {
                self.migrate_batch(&mut batch);
            }
        }
        self.migrate_batch(&mut batch);
        if let Err(e) = std::fs::remove_dir(dir) {
            log::info!("{} is left (not empty?): {e}", dir.display());
        }
    }

    fn migrate_batch(&mut self, batch: &mut Vec<(FileId, Vec<u8>)>) {
        let put = self.put_all(batch.iter().map(|(id, b)| (*id, b.as_slice())));
        if let Err(e) = put {
            log::warn!(
                "cannot move the manifests into {}: {e}",
                self.path.display()
            );
        }
        batch.clear();
    }
}

fn hashes_to(bytes: &[u8], id: &FileId) -> bool {
    Sha256::digest(bytes).as_slice() == id.0
}

#[cfg(test)]
mod tests;
