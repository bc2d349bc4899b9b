//! Where a download writes: one partial file for a file's manifest, a
//! partial directory for a folder's (only the files `--only` selects, if
//! any). Both verify before they write and publish without replacing.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::DownloadError;
use crate::chunkset::ChunkSet;
use crate::manifest::tree::{EntryKind, Tree};
use crate::manifest::{Chunk, FileId, Manifest};
use crate::select::Globs;
use crate::storage::tree::PartialTree;
use crate::storage::{PartialFile, Storage, StoreError};

pub enum Target {
    File(PartialFile),
    Tree(PartialTree),
}

/// A target opened: the chunks verified there already, and the chunks
/// the download wants (all, unless a folder's files were selected).
pub struct Opened {
    pub target: Target,
    pub have: ChunkSet,
    pub wanted: ChunkSet,
    /// A folder's files, counted as they become whole.
    pub files: Option<Tally>,
}

impl Target {
    /// Opens (or resumes) the download of `manifest` (id `id`) to `out`.
    /// `only` selects files of a folder; for a file it is refused.
    pub fn open(
        out: &Path,
        id: &FileId,
        manifest: &Manifest,
        only: &[String],
    ) -> Result<Opened, DownloadError> {
        if manifest.as_tree().is_none() {
            if !only.is_empty() {
                return Err(DownloadError::OnlyForFolders);
            }
            let (partial, have) = PartialFile::open(out, id, manifest)?;
            let wanted = ChunkSet::full(manifest.chunk_count());
            return Ok(Opened {
                target: Target::File(partial),
                have,
                wanted,
                files: None,
            });
        }
        let globs = match only {
            [] => None,
            some => Some(Globs::new(some).map_err(DownloadError::Glob)?),
        };
        let (partial, have) = PartialTree::open(out, id, manifest, globs.as_ref())?;
        let wanted = partial.wanted().clone();
        let tree = manifest.as_tree().ok_or(DownloadError::OnlyForFolders)?;
        let files = Tally::new(tree, &have, |path| {
            globs.as_ref().is_none_or(|g| g.matches(path))
        });
        Ok(Opened {
            target: Target::Tree(partial),
            have,
            wanted,
            files: Some(files),
        })
    }

    /// Where the chunks are, for serving them while downloading.
    pub fn storage(&self) -> Arc<dyn Storage> {
        match self {
            Target::File(p) => p.storage(),
            Target::Tree(p) => p.storage(),
        }
    }

    /// The partial file's or directory's path.
    pub fn path(&self) -> &Path {
        match self {
            Target::File(p) => p.path(),
            Target::Tree(p) => p.path(),
        }
    }

    /// Writes a verified chunk.
    pub fn write_chunk(&self, chunk: Chunk, data: &[u8]) -> Result<(), StoreError> {
        match self {
            Target::File(p) => p.write_chunk(chunk, data),
            Target::Tree(p) => p.write_chunk(chunk, data),
        }
    }

    /// Syncs and publishes the output whole; never replaces one.
    pub fn finish(self) -> Result<PathBuf, StoreError> {
        match self {
            Target::File(p) => p.finish(),
            Target::Tree(p) => p.finish(),
        }
    }
}

/// A folder's selected files, whole or not: for each content, the chunks
/// still missing and the selected files it makes whole. Lock-free: each
/// chunk is written once, by one worker.
pub struct Tally {
    missing: Vec<AtomicU32>,
    files_of: Vec<u32>,
    /// Selected files, and those whole when the download began (empty
    /// files, and contents resumed whole).
    pub total: u32,
    pub whole: u32,
}

impl Tally {
    fn new(tree: &Tree, have: &ChunkSet, selected: impl Fn(&str) -> bool) -> Tally {
        let missing: Vec<AtomicU32> = tree
            .contents()
            .iter()
            .map(|c| {
                let absent =
                    (c.first_chunk..c.first_chunk + c.chunks).filter(|&i| !have.contains(i));
                AtomicU32::new(absent.count() as u32)
            })
            .collect();
        let mut files_of = vec![0; missing.len()];
        let (mut total, mut whole) = (0, 0);
        for e in tree.entries() {
            let EntryKind::File { content, .. } = e.kind else {
                continue;
            };
            if !selected(&e.path) {
                continue;
            }
            total += 1;
            match content {
                Some(c) if missing[c as usize].load(Ordering::Relaxed) > 0 => {
                    files_of[c as usize] += 1
                }
                _ => whole += 1,
            }
        }
        Tally {
            missing,
            files_of,
            total,
            whole,
        }
    }

    /// Chunk `index` was written (once): the number of
    /// selected files that became whole with it.
    pub fn written(&self, tree: &Tree, index: u32) -> u32 {
        let Some(at) = tree.content_index(index) else {
            return 0;
        };
        let before = self.missing[at]
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        match before {
            Ok(1) => self.files_of[at],
            _ => 0,
        }
    }
}
