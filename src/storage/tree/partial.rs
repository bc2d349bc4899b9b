//! [`PartialTree`]: a folder download in progress, with the contract of
//! [`crate::storage::PartialFile`] for a whole tree.
//!
//! Everything is written inside `.<name>.<id12>.partdir` (0700) beside the
//! output, resolved from directory handles with no symlink followed; its
//! lock keeps a second download out. Before any chunk, the skeleton of the
//! selected entries is made (`skeleton.rs`), so a hostile or colliding
//! tree fails before data is fetched, and a fresh partial directory that
//! fails is removed. Each content is written once, in the file of the first
//! selected entry naming it (`parts.rs`); resume re-verifies the chunks
//! that hold data (`SEEK_DATA`, then a hash), with no progress file that
//! could disagree. [`PartialTree::finish`] (`publish.rs`) copies the
//! duplicates, syncs, sets modes under the umask and renames the directory
//! into place without replacing anything: the output appears whole or not
//! at all, and an existing output is never touched.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::beneath::{make_dir, open_dir, unlink_at};
use super::parts::Parts;
use super::{skeleton, Spans};
use crate::chunkset::ChunkSet;
use crate::manifest::tree::{Entry, EntryKind, Tree};
use crate::manifest::{Chunk, FileId, Manifest};
use crate::select::Globs;
use crate::storage::partial::hidden_beside;
use crate::storage::{fs, io_err, Storage, StoreError};

/// A folder download in progress (see the module docs).
pub struct PartialTree {
    pub(super) out: PathBuf,
    pub(super) part: PathBuf,
    /// The directory holding the output and the partial directory.
    pub(super) parent: File,
    /// The partial directory, locked.
    pub(super) dir: Arc<File>,
    pub(super) manifest: Manifest,
    /// Indices of the selected entries, in path order.
    pub(super) selected: Vec<usize>,
    /// Per content: the entry whose file holds it (None: not selected).
    pub(super) writer: Vec<Option<usize>>,
    wanted: ChunkSet,
    storage: Arc<Parts>,
}

impl PartialTree {
    /// Opens (or resumes) the download of the tree `manifest` (id `id`) to
    /// `out`, only the files `only` matches if given; returns it with the
    /// chunks already present and verified. Refuses if `out` exists, if a
    /// symlink or anything not ours sits at the partial directory's path,
    /// if another download holds its lock, if two entries are one name on
    /// this file system, if `only` matches no file, and if the disk lacks
    /// the space still needed.
    pub fn open(
        out: &Path,
        id: &FileId,
        manifest: &Manifest,
        only: Option<&Globs>,
    ) -> Result<(PartialTree, ChunkSet), StoreError> {
        let tree = manifest.as_tree().ok_or(StoreError::NotATree)?;
        let selected: Vec<usize> = (0..tree.entries().len())
            .filter(|&i| only.is_none_or(|g| g.matches(&tree.entries()[i].path)))
            .collect();
        let is_file = |&i: &usize| matches!(tree.entries()[i].kind, EntryKind::File { .. });
        if only.is_some() && !selected.iter().any(is_file) {
            return Err(StoreError::NothingSelected);
        }
        if out.symlink_metadata().is_ok() {
            return Err(StoreError::Exists(out.to_path_buf()));
        }
        let part = hidden_beside(out, id, "partdir");
        let parent_path = part.parent().filter(|d| !d.as_os_str().is_empty());
        let parent_path = parent_path.unwrap_or(Path::new("."));
        let parent = File::open(parent_path).map_err(io_err(parent_path))?;
        let part_name = part
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into());
        let created = make_dir(&parent, &part_name).map_err(io_err(&part))?;
        let dir = open_dir(&parent, &part_name)
            .map_err(|e| skeleton::error(parent_path, &part_name, e))?;
        lock(&dir, &part)?;
        let opened = {
            let mut writer = vec![None; tree.contents().len()];
            for &i in &selected {
                if let EntryKind::File {
                    content: Some(c), ..
                } = tree.entries()[i].kind
                {
                    writer[c as usize].get_or_insert(i);
                }
            }
            let resumed = !created;
            prepare(&dir, &part, manifest, tree, &selected, &writer, resumed)
                .map(|have| (writer, have))
        };
        let (writer, have) = match opened {
            Ok(done) => done,
            Err(e) => {
                if created {
                    discard(&parent, &part_name, &dir);
                }
                return Err(e);
            }
        };
        let mut wanted = ChunkSet::empty(manifest.chunk_count());
        for (c, w) in tree.contents().iter().zip(&writer) {
            if w.is_some() {
                (c.first_chunk..c.first_chunk + c.chunks).for_each(|i| _ = wanted.insert(i));
            }
        }
        let paths = writer
            .iter()
            .map(|w| w.map(|i| tree.entries()[i].path.clone()))
            .collect();
        let dir = Arc::new(dir);
        let spans = Spans::new(tree, manifest.chunk_size());
        let storage = Arc::new(Parts::new(Arc::clone(&dir), spans, paths, part.clone()));
        let partial = PartialTree {
            out: out.to_path_buf(),
            part,
            parent,
            dir,
            manifest: manifest.clone(),
            selected,
            writer,
            wanted,
            storage,
        };
        Ok((partial, have))
    }

    /// The chunks of the selected files (all, without `--only`).
    pub fn wanted(&self) -> &ChunkSet {
        &self.wanted
    }

    /// Where the chunks are, for serving those present while downloading.
    pub fn storage(&self) -> Arc<dyn Storage> {
        Arc::clone(&self.storage) as Arc<dyn Storage>
    }

    /// The partial directory's path.
    pub fn path(&self) -> &Path {
        &self.part
    }

    /// Writes a verified chunk into its file.
    pub fn write_chunk(&self, chunk: Chunk, data: &[u8]) -> Result<(), StoreError> {
        self.storage
            .write_chunk(chunk, data)
            .map_err(io_err(&self.part))
    }

    /// How many files are selected, and their bytes (duplicates counted
    /// each time).
    pub fn selected_files(&self) -> (usize, u64) {
        self.selected_entries()
            .filter_map(|e| match e.kind {
                EntryKind::File { size, .. } => Some(size),
                EntryKind::Dir => None,
            })
            .fold((0, 0), |(n, bytes), size| (n + 1, bytes + size))
    }

    pub(super) fn tree(&self) -> &Tree {
        // Checked in `open`.
        self.manifest
            .as_tree()
            .unwrap_or_else(|| unreachable!("opened from a tree"))
    }

    pub(super) fn selected_entries(&self) -> impl Iterator<Item = &Entry> {
        let entries = self.tree().entries();
        self.selected.iter().map(move |&i| &entries[i])
    }
}

/// Takes the partial directory's lock, or names who holds it.
fn lock(dir: &File, part: &Path) -> Result<(), StoreError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let meta = dir.metadata().map_err(io_err(part))?;
    if std::os::unix::fs::MetadataExt::uid(&meta) != uid {
        return Err(StoreError::Foreign {
            path: part.to_path_buf(),
            reason: format!(
                "it belongs to user {}, not {uid}",
                std::os::unix::fs::MetadataExt::uid(&meta)
            ),
        });
    }
    match fs::try_lock(dir).map_err(io_err(part))? {
        None => Ok(()),
        Some(pid) => Err(StoreError::Locked {
            path: part.to_path_buf(),
            holder: match pid {
                0 => "another process".to_string(),
                pid if pid == std::process::id() => "this peer".to_string(),
                pid => format!("process {pid}"),
            },
        }),
    }
}

/// Makes the skeleton, checks the free space and re-verifies what a
/// previous attempt wrote; returns the chunks present.
fn prepare(
    dir: &File,
    part: &Path,
    manifest: &Manifest,
    tree: &Tree,
    selected: &[usize],
    writer: &[Option<usize>],
    resumed: bool,
) -> Result<ChunkSet, StoreError> {
    let entries: Vec<&Entry> = selected.iter().map(|&i| &tree.entries()[i]).collect();
    if resumed {
        let removed = skeleton::prune(dir, part, &entries)?;
        if removed > 0 {
            log::info!(
                "{}: removed {removed} entries no longer selected",
                part.display()
            );
        }
    }
    let mut have = ChunkSet::empty(manifest.chunk_count());
    let mut allocated = 0u64;
    let mut buf = Vec::new();
    skeleton::make(dir, part, &entries, &mut |n, file, existed| {
        let entry = entries[n];
        let EntryKind::File { size, content, .. } = entry.kind else {
            return Ok(());
        };
        let at = |e| io_err(&part.join(&entry.path))(e);
        let writes = content.is_some_and(|c| writer[c as usize] == Some(selected[n]));
        if existed {
            allocated += fs::allocated(file).map_err(at)?.min(size);
        }
        if !writes {
            return Ok(());
        }
        let content = &tree.contents()[content.unwrap_or_default() as usize];
        let len = file.metadata().map_err(at)?.len();
        if len != size {
            file.set_len(size).map_err(at)?;
        }
        if existed && len > 0 {
            verify(file, manifest, content, len.min(size), &mut buf, &mut have).map_err(at)?;
        }
        Ok(())
    })?;
    let need: u64 = entries
        .iter()
        .map(|e| match e.kind {
            EntryKind::File { size, .. } => size,
            EntryKind::Dir => 0,
        })
        .sum::<u64>()
        .saturating_sub(allocated);
    let free = fs::free_space(part).map_err(io_err(part))?;
    if need > free {
        return Err(StoreError::NoSpace {
            path: part.to_path_buf(),
            need,
            free,
        });
    }
    Ok(have)
}

/// Adds to `have` the chunks of `content` whose bytes in `file` (of which
/// the first `len` may hold data) are present and match their hashes.
fn verify(
    file: &File,
    manifest: &Manifest,
    content: &crate::manifest::tree::Content,
    len: u64,
    buf: &mut Vec<u8>,
    have: &mut ChunkSet,
) -> std::io::Result<()> {
    let data = fs::data_ranges(file, len);
    let chunk_size = u64::from(manifest.chunk_size());
    for i in content.first_chunk..content.first_chunk + content.chunks {
        let Some(c) = manifest.chunk(i) else { continue };
        let start = u64::from(i - content.first_chunk) * chunk_size;
        let end = start + u64::from(c.len);
        if !data.iter().any(|r| r.start <= start && end <= r.end) {
            continue;
        }
        buf.resize(c.len as usize, 0);
        file.read_exact_at(buf, start)?;
        if manifest.verify_chunk(i, buf) {
            have.insert(i);
        }
    }
    Ok(())
}

/// Removes a partial directory this attempt made and could not use, if
/// its name still names it (a directory swapped in meanwhile is not ours).
fn discard(parent: &File, name: &str, dir: &File) {
    let inode = |d: &File| d.metadata().map(|m| (m.dev(), m.ino())).ok();
    let there = open_dir(parent, name).ok();
    if there
        .as_ref()
        .and_then(inode)
        .is_some_and(|i| Some(i) == inode(dir))
    {
        let _ = unlink_at(parent, name);
    }
}

#[cfg(test)]
mod tests;
