//! Hashing a file into its manifest: chunk by chunk, one contiguous range of
//! chunks per core, never the whole file in memory.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::thread;

use sha2::{Digest, Sha256};

use super::{io_err, StoreError};
use crate::bounds::CHUNK_SIZE;
use crate::chunkset::ChunkSet;
use crate::manifest::{Digest32, Manifest};

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
    if count <= 1 {
        // One chunk (most files of a large collection): no thread to start,
        // and no look at the cores (a few system calls each time).
        return hash_range(path, size, chunk_size, 0..count, on_bytes);
    }
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

/// Which of the chunks in `candidates` of the file at `path` match
/// `manifest`, hashed on all cores, reading only those chunks.
pub fn hash_some(
    path: &Path,
    manifest: &Manifest,
    candidates: &ChunkSet,
) -> Result<ChunkSet, StoreError> {
    let wanted: Vec<u32> = candidates.iter().collect();
    let threads = thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(16);
    let per_thread = wanted.len().div_ceil(threads).max(1);
    let verified = thread::scope(|s| {
        let workers: Vec<_> = wanted
            .chunks(per_thread)
            .map(|part| {
                s.spawn(move || -> Result<Vec<u32>, StoreError> {
                    let file = File::open(path).map_err(io_err(path))?;
                    let mut buf = vec![0u8; manifest.chunk_size() as usize];
                    let mut good = Vec::new();
                    for &i in part {
                        let Some(c) = manifest.chunk(i) else { continue };
                        let data = &mut buf[..c.len as usize];
                        file.read_exact_at(data, c.offset).map_err(io_err(path))?;
                        if manifest.verify_chunk(i, data) {
                            good.push(i);
                        }
                    }
                    Ok(good)
                })
            })
            .collect();
        let mut all = Vec::new();
        for w in workers {
            // A hashing thread only panics on a bug: pass it on as one.
            all.extend(w.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?);
        }
        Ok::<_, StoreError>(all)
    })?;
    let mut set = ChunkSet::empty(manifest.chunk_count());
    for i in verified {
        set.insert(i);
    }
    Ok(set)
}

fn hash_range(
    path: &Path,
    size: u64,
    chunk_size: u32,
    chunks: std::ops::Range<u64>,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<Vec<Digest32>, StoreError> {
    let file = File::open(path).map_err(io_err(path))?;
    // No bigger than the file: a 4 KiB file zeroes 4 KiB, not a chunk's
    // 512 KiB (5% of sharing 10,000 small files went to that memset).
    let mut buf = vec![0u8; size.min(u64::from(chunk_size)) as usize];
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_chunks_matches_a_single_threaded_hash() {
        let dir = crate::testing::temp_dir("hash");
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
}
