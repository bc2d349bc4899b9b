//! Files on disk. Hashing a file into its manifest (chunk by chunk, one
//! contiguous range of chunks per core, never the whole file in memory), and
//! `PartialFile`, where a download writes verified chunks at their offsets
//! under a temporary name beside the output, which becomes the output only
//! when complete. A partial file left by a
//! killed download is re-verified chunk by chunk on the next attempt, so
//! resume needs no separate progress file that could disagree with the data.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread;

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::bounds::CHUNK_SIZE;
use crate::manifest::{Chunk, Digest32, FileId, Manifest, ManifestError};

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
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Hashes the file at `path` into its manifest.
pub fn manifest_of(path: &Path) -> Result<Manifest, StoreError> {
    manifest_of_reporting(path, &|_| {})
}

/// Like [`manifest_of`], calling `on_bytes` with the length of each chunk
/// as it is hashed (from several threads at once), for a progress bar.
pub fn manifest_of_reporting(
    path: &Path,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<Manifest, StoreError> {
    let meta = fs::metadata(path).map_err(io_err(path))?;
    if !meta.is_file() {
        return Err(StoreError::NotAFile(path.to_path_buf()));
    }
    let hashes = hash_chunks_reporting(path, meta.len(), CHUNK_SIZE, on_bytes)?;
    let after = fs::metadata(path).map_err(io_err(path))?;
    if after.len() != meta.len() || after.modified().ok() != meta.modified().ok() {
        return Err(StoreError::Changed {
            path: path.to_path_buf(),
        });
    }
    Ok(Manifest::with_chunk_size(meta.len(), CHUNK_SIZE, hashes)?)
}

/// SHA-256 of every `chunk_size` chunk of the first `size` bytes of `path`,
/// on all cores. Each thread opens the file itself so the kernel's readahead
/// sees a sequential reader per range.
pub fn hash_chunks(path: &Path, size: u64, chunk_size: u32) -> Result<Vec<Digest32>, StoreError> {
    hash_chunks_reporting(path, size, chunk_size, &|_| {})
}

/// Like [`hash_chunks`], calling `on_bytes` after each chunk.
pub fn hash_chunks_reporting(
    path: &Path,
    size: u64,
    chunk_size: u32,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<Vec<Digest32>, StoreError> {
    let count = size.div_ceil(u64::from(chunk_size));
    let threads = thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(16) as u64;
    let per_thread = count.div_ceil(threads.max(1)).max(1);
    let ranges: Vec<(u64, u64)> = (0..count)
        .step_by(per_thread as usize)
        .map(|start| (start, (start + per_thread).min(count)))
        .collect();
    thread::scope(|s| {
        let workers: Vec<_> = ranges
            .iter()
            .map(|&(start, end)| {
                s.spawn(move || hash_range(path, size, chunk_size, start..end, on_bytes))
            })
            .collect();
        let mut all = Vec::with_capacity(count as usize);
        for w in workers {
            // A hashing thread only panics on a bug: pass it on as one.
            let part = w.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?;
            all.extend(part);
        }
        Ok(all)
    })
}

fn hash_range(
    path: &Path,
    size: u64,
    chunk_size: u32,
    chunks: std::ops::Range<u64>,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<Vec<Digest32>, StoreError> {
    let file = File::open(path).map_err(io_err(path))?;
    let mut buf = vec![0u8; chunk_size as usize];
    chunks
        .map(|i| {
            let offset = i * u64::from(chunk_size);
            let len = (size - offset).min(u64::from(chunk_size)) as usize;
            file.read_exact_at(&mut buf[..len], offset)
                .map_err(io_err(path))?;
            let digest = Sha256::digest(&buf[..len]).into();
            on_bytes(len as u64);
            Ok(digest)
        })
        .collect()
}

/// A download in progress: verified chunks land in a temporary file beside
/// the output; [`PartialFile::finish`] publishes it without overwriting.
pub struct PartialFile {
    file: File,
    part: PathBuf,
    out: PathBuf,
    /// Serialises writes. The kernel takes the inode lock for each buffered
    /// write anyway; contending writers spin on it (measured: ~11% of the
    /// downloader's CPU with 8 workers), while a mutex puts them to sleep.
    write_lock: Mutex<()>,
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
    /// `out`. Returns it with, per chunk, whether that chunk is already
    /// present and verified. Refuses if `out` already exists.
    pub fn open(
        out: &Path,
        id: &FileId,
        manifest: &Manifest,
    ) -> Result<(Self, Vec<bool>), StoreError> {
        if out.symlink_metadata().is_ok() {
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
            vec![false; manifest.chunk_count() as usize]
        } else {
            let hashes = hash_chunks(&part, manifest.size(), manifest.chunk_size())?;
            (0..manifest.chunk_count())
                .map(|i| manifest.chunk_hash(i) == hashes.get(i as usize))
                .collect()
        };
        Ok((
            PartialFile {
                file,
                part,
                out: out.to_path_buf(),
                write_lock: Mutex::new(()),
            },
            have,
        ))
    }

    /// Writes a verified chunk at its offset.
    pub fn write_chunk(&self, chunk: Chunk, data: &[u8]) -> Result<(), StoreError> {
        let _serial = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.file
            .write_all_at(data, chunk.offset)
            .map_err(io_err(&self.part))
    }

    /// Flushes the data and links it into place as the output. Fails, keeping
    /// the partial file, if the output appeared in the meantime.
    pub fn finish(self) -> Result<PathBuf, StoreError> {
        self.file.sync_all().map_err(io_err(&self.part))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("p2pshare-store-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn hash_chunks_matches_a_single_threaded_hash() {
        let dir = temp_dir("hash");
        let path = dir.join("f");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        fs::write(&path, &data).unwrap();
        for chunk_size in [1000, 4096, 99_999, 100_000, 1 << 20] {
            let hashed = std::sync::atomic::AtomicU64::new(0);
            let count = |n| {
                hashed.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            };
            let got = hash_chunks_reporting(&path, data.len() as u64, chunk_size, &count).unwrap();
            assert_eq!(
                hashed.into_inner(),
                data.len() as u64,
                "every byte reported"
            );
            let want: Vec<Digest32> = data
                .chunks(chunk_size as usize)
                .map(|c| Sha256::digest(c).into())
                .collect();
            assert_eq!(got, want, "chunk size {chunk_size}");
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn partial_file_resumes_verified_chunks_and_never_overwrites() {
        let dir = temp_dir("partial");
        let data: Vec<u8> = (0..2500u32).map(|i| (i % 256) as u8).collect();
        let hashes = data
            .chunks(1000)
            .map(|c| Sha256::digest(c).into())
            .collect();
        let m = Manifest::with_chunk_size(2500, 1000, hashes).unwrap();
        let id = m.id();
        let out = dir.join("out.bin");

        let (p, have) = PartialFile::open(&out, &id, &m).unwrap();
        assert_eq!(have, vec![false; 3]);
        let c1 = m.chunk(1).unwrap();
        p.write_chunk(c1, &data[1000..2000]).unwrap();
        drop(p); // as if killed

        let (p, have) = PartialFile::open(&out, &id, &m).unwrap();
        assert_eq!(have, vec![false, true, false]);
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
}
