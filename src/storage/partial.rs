//! `PartialFile`: a download in progress. Verified chunks land at their
//! offsets in a temporary file beside the output, which becomes the output
//! only when complete. A partial file left by a killed download is
//! re-verified chunk by chunk on the next attempt, so resume needs no
//! separate progress file that could disagree with the data.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{hash_chunks, io_err, FileStorage, Storage, StoreError};
use crate::chunkset::ChunkSet;
use crate::manifest::{Chunk, FileId, Manifest};

/// A download in progress: verified chunks land in a temporary file beside
/// the output; [`PartialFile::finish`] publishes it without overwriting.
pub struct PartialFile {
    storage: Arc<FileStorage>,
    part: PathBuf,
    out: PathBuf,
}

impl PartialFile {
    /// The temporary path used while downloading `id` to `out`:
    /// `.<out file name>.<12 hex digits of id>.part` in the same directory.
    pub fn part_path(out: &Path, id: &FileId) -> PathBuf {
        let name = out
            .file_name()
            .map_or_else(Default::default, |n| n.to_string_lossy());
        out.with_file_name(format!(".{name}.{}.part", id.short()))
    }

    /// Opens (or resumes) the partial download of `manifest` (id `id`) to
    /// `out`. Returns it with the chunks already present and verified.
    /// Refuses if `out` already exists.
    pub fn open(
        out: &Path,
        id: &FileId,
        manifest: &Manifest,
    ) -> Result<(Self, ChunkSet), StoreError> {
        if out.symlink_metadata().is_ok() {
            remove_stale_part(out, id);
            return Err(StoreError::Exists(out.to_path_buf()));
        }
        let part = Self::part_path(out, id);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&part)
            .map_err(io_err(&part))?;
        let existing = file.metadata().map_err(io_err(&part))?.len();
        file.set_len(manifest.size()).map_err(io_err(&part))?;
        let have = if existing == 0 {
            ChunkSet::empty(manifest.chunk_count())
        } else {
            let hashes = hash_chunks(&part, manifest.size(), manifest.chunk_size())?;
            ChunkSet::from_fn(manifest.chunk_count(), |i| {
                manifest.chunk_hash(i) == hashes.get(i as usize)
            })
        };
        let partial = PartialFile {
            storage: Arc::new(FileStorage::new(file)),
            part,
            out: out.to_path_buf(),
        };
        Ok((partial, have))
    }

    /// Where the chunks are, for serving them while downloading.
    pub fn storage(&self) -> Arc<FileStorage> {
        Arc::clone(&self.storage)
    }

    /// The temporary file's path.
    pub fn path(&self) -> &Path {
        &self.part
    }

    /// Writes a verified chunk at its offset.
    pub fn write_chunk(&self, chunk: Chunk, data: &[u8]) -> Result<(), StoreError> {
        self.storage
            .write_chunk(chunk, data)
            .map_err(io_err(&self.part))
    }

    /// Flushes the data and links it into place as the output. Fails, keeping
    /// the partial file, if the output appeared in the meantime.
    pub fn finish(self) -> Result<PathBuf, StoreError> {
        self.storage.sync().map_err(io_err(&self.part))?;
        match fs::hard_link(&self.part, &self.out) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StoreError::Exists(self.out));
            }
            // File systems without hard links: rename, after checking again.
            Err(_) if self.out.symlink_metadata().is_err() => {
                fs::rename(&self.part, &self.out).map_err(io_err(&self.out))?;
                return Ok(self.out);
            }
            Err(e) => return Err(io_err(&self.out)(e)),
        }
        fs::remove_file(&self.part).map_err(io_err(&self.part))?;
        Ok(self.out)
    }
}

/// Removes the partial file of `id` beside `out` if it is the same file as
/// `out`: what a download killed between publishing (the hard link) and
/// removing its partial file leaves. Returns whether it removed one.
pub fn remove_stale_part(out: &Path, id: &FileId) -> bool {
    let part = PartialFile::part_path(out, id);
    let same = match (out.symlink_metadata(), part.symlink_metadata()) {
        (Ok(o), Ok(p)) => o.is_file() && o.dev() == p.dev() && o.ino() == p.ino(),
        _ => false,
    };
    same && fs::remove_file(&part).is_ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    pub(crate) fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("p2pshare-store-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn sample() -> (Vec<u8>, Manifest) {
        let data: Vec<u8> = (0..2500u32).map(|i| (i % 256) as u8).collect();
        let hashes = data
            .chunks(1000)
            .map(|c| Sha256::digest(c).into())
            .collect();
        (data, Manifest::with_chunk_size(2500, 1000, hashes).unwrap())
    }

    #[test]
    fn partial_file_resumes_verified_chunks_and_never_overwrites() {
        let dir = temp_dir("partial");
        let (data, m) = sample();
        let id = m.id();
        let out = dir.join("out.bin");

        let (p, have) = PartialFile::open(&out, &id, &m).unwrap();
        assert!(have.is_empty() && have.len() == 3);
        let c1 = m.chunk(1).unwrap();
        p.write_chunk(c1, &data[1000..2000]).unwrap();
        drop(p); // as if killed

        let (p, have) = PartialFile::open(&out, &id, &m).unwrap();
        assert_eq!(have.iter().collect::<Vec<_>>(), [1]);
        assert!(!out.exists());
        for c in [m.chunk(0).unwrap(), m.chunk(2).unwrap()] {
            let range = c.offset as usize..(c.offset + u64::from(c.len)) as usize;
            p.write_chunk(c, &data[range]).unwrap();
        }
        assert_eq!(p.finish().unwrap(), out);
        assert_eq!(fs::read(&out).unwrap(), data);
        assert!(!PartialFile::part_path(&out, &id).exists());

        assert!(matches!(
            PartialFile::open(&out, &id, &m),
            Err(StoreError::Exists(_))
        ));
        assert_eq!(fs::read(&out).unwrap(), data);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_part_file_still_linked_to_its_output_is_cleaned_up() {
        let dir = temp_dir("stale");
        let (data, m) = sample();
        let id = m.id();
        let out = dir.join("done.bin");
        fs::write(&out, &data).unwrap();
        let part = PartialFile::part_path(&out, &id);
        // Killed between the hard link and the unlink.
        fs::hard_link(&out, &part).unwrap();
        assert!(matches!(
            PartialFile::open(&out, &id, &m),
            Err(StoreError::Exists(_))
        ));
        assert!(!part.exists(), "the stale link is gone");
        assert_eq!(fs::read(&out).unwrap(), data, "the output is untouched");

        // A different file under the partial name is not ours to remove.
        fs::write(&part, b"other").unwrap();
        assert!(!remove_stale_part(&out, &id));
        assert_eq!(fs::read(&part).unwrap(), b"other");
        fs::remove_dir_all(dir).unwrap();
    }
}
