//! `PartialFile`: a download in progress. Verified chunks land at their
//! offsets in a temporary file beside the output, which becomes the output
//! only when complete. A partial file left by a killed download is
//! re-verified chunk by chunk on the next attempt, so resume needs no
//! separate progress file that could disagree with the data.

use std::fs::Permissions;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{fs, hash_some, io_err, FileStorage, Storage, StoreError};
use crate::bounds::MAX_NAME_LEN;
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
    /// `.<out file name>.<12 hex digits of id>.part` in the same directory,
    /// the out file name cut (at a character boundary) so that the whole is
    /// at most [`MAX_NAME_LEN`] bytes: any name the name rules accept can be
    /// downloaded (a 255-byte name's partial file would be 274 bytes, which
    /// file systems refuse). Two out names of one id that agree on their
    /// first 236 bytes share a partial file: the same content, verified
    /// chunk by chunk on resume, and its lock keeps them apart.
    pub fn part_path(out: &Path, id: &FileId) -> PathBuf {
        hidden_beside(out, id, "part")
    }

    /// Opens (or resumes) the partial download of `manifest` (id `id`) to
    /// `out`. Returns it with the chunks already present and verified.
    ///
    /// Refuses if `out` exists; if a symlink, or a file that is not a plain,
    /// singly linked file of this user's, sits at the partial file's path
    /// (nothing is written through it); if another download holds the
    /// partial file's lock; and if the disk lacks the space still needed.
    /// Resuming reads only the chunks that hold data, so a sparse partial
    /// file costs what is in it, not its apparent size.
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
        let (file, created) = match fs::open_no_follow(&part) {
            Ok(opened) => opened,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(StoreError::Symlink(part))
            }
            Err(e) => return Err(io_err(&part)(e)),
        };
        if !created {
            if let Some(reason) = fs::foreign(&file).map_err(io_err(&part))? {
                return Err(StoreError::Foreign { path: part, reason });
            }
        }
        if let Some(pid) = fs::try_lock(&file).map_err(io_err(&part))? {
            let holder = match pid {
                0 => "another process".to_string(),
                pid if pid == std::process::id() => "this peer".to_string(),
                pid => format!("process {pid}"),
            };
            return Err(StoreError::Locked { path: part, holder });
        }
        let existing = file.metadata().map_err(io_err(&part))?.len();
        let need = manifest
            .size()
            .saturating_sub(fs::allocated(&file).map_err(io_err(&part))?);
        let dir = part.parent().filter(|d| !d.as_os_str().is_empty());
        let free = fs::free_space(dir.unwrap_or(Path::new("."))).map_err(io_err(&part))?;
        if need > free {
            if created {
                let _ = std::fs::remove_file(&part);
            }
            return Err(StoreError::NoSpace {
                path: part,
                need,
                free,
            });
        }
        file.set_len(manifest.size()).map_err(io_err(&part))?;
        let have = if existing == 0 {
            ChunkSet::empty(manifest.chunk_count())
        } else {
            let data = fs::data_ranges(&file, existing.min(manifest.size()));
            let candidates = ChunkSet::from_fn(manifest.chunk_count(), |i| {
                manifest.chunk(i).is_some_and(|c| {
                    let end = c.offset + u64::from(c.len);
                    data.iter().any(|r| r.start <= c.offset && end <= r.end)
                })
            });
            hash_some(&part, manifest, &candidates)?
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

    /// Flushes the data and links it into place as the output, with mode
    /// 0666 under the process umask (a partial file is 0600). Fails,
    /// keeping the partial file, if the output appeared in the meantime.
    pub fn finish(self) -> Result<PathBuf, StoreError> {
        let started = std::time::Instant::now();
        let mode = Permissions::from_mode(0o666 & !fs::umask());
        self.storage
            .file
            .set_permissions(mode)
            .map_err(io_err(&self.part))?;
        self.storage.sync().map_err(io_err(&self.part))?;
        log::debug!(
            "{}: fsync took {:?}",
            self.part.display(),
            started.elapsed()
        );
        match std::fs::hard_link(&self.part, &self.out) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StoreError::Exists(self.out));
            }
            // File systems without hard links: a rename that never
            // replaces what may have appeared at the output meanwhile.
            Err(_) => {
                fs::rename_no_replace(&self.part, &self.out).map_err(|e| match e.kind() {
                    io::ErrorKind::AlreadyExists => StoreError::Exists(self.out.clone()),
                    _ => io_err(&self.out)(e),
                })?;
                return Ok(self.out);
            }
        }
        std::fs::remove_file(&self.part).map_err(io_err(&self.part))?;
        Ok(self.out)
    }
}

/// `.<out file name>.<12 hex digits of id>.<ext>` beside `out`, the out
/// name cut at a character boundary so that the whole is at most
/// [`MAX_NAME_LEN`] bytes (see [`PartialFile::part_path`]).
pub(crate) fn hidden_beside(out: &Path, id: &FileId, ext: &str) -> PathBuf {
    let name = out
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy());
    let suffix = format!(".{}.{ext}", id.short());
    let mut end = name.len().min(MAX_NAME_LEN - 1 - suffix.len());
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    out.with_file_name(format!(".{}{suffix}", &name[..end]))
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
    same && std::fs::remove_file(&part).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::temp_dir;
    use sha2::{Digest, Sha256};
    use std::fs;

    fn sample() -> (Vec<u8>, Manifest) {
        let data: Vec<u8> = (0..2500u32).map(|i| (i % 256) as u8).collect();
        let hashes = data
            .chunks(1000)
            .map(|c| Sha256::digest(c).into())
            .collect();
        (data, Manifest::with_chunk_size(2500, 1000, hashes).unwrap())
    }

    /// Every name the name rules accept gets a partial file name the file
    /// system takes: at most 255 bytes, cut at a character boundary, and a
    /// short name is kept whole.
    #[test]
    fn partial_names_fit_for_every_accepted_name() {
        let id = FileId([0xab; 32]);
        let short = PartialFile::part_path(Path::new("d/a.bin"), &id);
        assert_eq!(short, Path::new("d/.a.bin.abababababab.part"));
        for name in [
            "x".repeat(255),
            "é".repeat(127),
            format!("{}€", "y".repeat(233)),
        ] {
            assert_eq!(crate::name::validate_name(&name), Ok(()));
            let part = PartialFile::part_path(&Path::new("d").join(&name), &id);
            let part = part.file_name().unwrap().to_str().unwrap();
            assert!(part.len() <= MAX_NAME_LEN, "{} bytes", part.len());
            assert!(part.ends_with(".abababababab.part"), "{part}");
        }
        // Created for real where the file system allows 255 bytes a name.
        let dir = temp_dir("long-name");
        let (_, m) = sample();
        let out = dir.join("z".repeat(255));
        let (p, _) = PartialFile::open(&out, &m.id(), &m).expect("a partial file");
        assert!(p.path().exists());
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
        let mode = fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666 & !super::fs::umask(), "the umask's, not 0600");

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

    #[test]
    fn nothing_is_written_through_a_planted_symlink_or_hard_link() {
        let dir = temp_dir("planted");
        let (_, m) = sample();
        let id = m.id();
        let out = dir.join("out.bin");
        let part = PartialFile::part_path(&out, &id);
        let victim = dir.join("victim");
        fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, &part).unwrap();
        assert!(matches!(
            PartialFile::open(&out, &id, &m),
            Err(StoreError::Symlink(_))
        ));
        fs::remove_file(&part).unwrap();
        fs::hard_link(&victim, &part).unwrap();
        assert!(matches!(
            PartialFile::open(&out, &id, &m),
            Err(StoreError::Foreign { .. })
        ));
        assert_eq!(fs::read(&victim).unwrap(), b"precious", "never written");
        assert_eq!(fs::metadata(&victim).unwrap().len(), 8, "never resized");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_partial_file_in_use_is_refused_with_its_holder() {
        let dir = temp_dir("locked");
        let (_, m) = sample();
        let id = m.id();
        let out = dir.join("out.bin");
        let (first, _) = PartialFile::open(&out, &id, &m).unwrap();
        match PartialFile::open(&out, &id, &m) {
            Err(StoreError::Locked { holder, .. }) => assert_eq!(holder, "this peer"),
            other => panic!("{:?}", other.map(|_| ())),
        }
        drop(first);
        assert!(PartialFile::open(&out, &id, &m).is_ok(), "free once closed");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn resume_reads_only_chunks_that_hold_data() {
        let dir = temp_dir("sparse-resume");
        // 64 chunks of 64 KiB, most of them holes.
        let chunk = 64 * 1024u32;
        let data: Vec<u8> = (0..64 * chunk).map(|i| (i % 253) as u8).collect();
        let hashes = data
            .chunks(chunk as usize)
            .map(|c| Sha256::digest(c).into())
            .collect();
        let m = Manifest::with_chunk_size(data.len() as u64, chunk, hashes).unwrap();
        let id = m.id();
        let out = dir.join("big.bin");
        let (p, _) = PartialFile::open(&out, &id, &m).unwrap();
        for i in [3u32, 40] {
            let c = m.chunk(i).unwrap();
            let range = c.offset as usize..(c.offset + u64::from(c.len)) as usize;
            p.write_chunk(c, &data[range]).unwrap();
        }
        drop(p);
        let (_, have) = PartialFile::open(&out, &id, &m).unwrap();
        assert_eq!(have.iter().collect::<Vec<_>>(), [3, 40]);
        fs::remove_dir_all(dir).unwrap();
    }
}
