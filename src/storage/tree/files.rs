//! [`TreeFiles`]: a shared folder's chunks, read from its files on disk.
//!
//! A chunk belongs to one content; a content is read from the first entry
//! of the tree naming it (its twins hold the same bytes); that entry's file
//! is opened when a chunk of it is asked for, through the peer's
//! [`OpenFiles`] cache, so a folder of 100,000 files costs no descriptor
//! until served and no more than the cache's bound after.
//!
//! Invariants: a file is opened beneath the directory it was shared from
//! (checked to be the same directory, by device and inode), never through
//! a symlink at any component (`beneath.rs`), so a symlink planted inside
//! the folder after it was shared is not followed; a file whose size is no
//! longer the one shared is not served (a downloader verifies every chunk
//! anyway). Nothing is ever written.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::beneath::open_beneath;
use super::{Spans, TreeRoot};
use crate::manifest::tree::EntryKind;
use crate::manifest::{Chunk, Manifest};
use crate::storage::on_demand::stamp_of;
use crate::storage::{io_err, OpenFiles, Stamp, Storage, StoreError};

/// A shared folder's files as one read-only [`Storage`] (see the module
/// docs).
pub struct TreeFiles {
    root: TreeRoot,
    /// The directories files are resolved beneath (the folder itself, or
    /// the parents of several paths), each with its (device, inode).
    bases: Vec<(PathBuf, (u64, u64))>,
    /// One per content, in chunk-space order.
    served: Vec<Served>,
    spans: Spans,
    cache: Arc<OpenFiles>,
    /// The cache keys of the contents, one each, in order.
    keys: Range<u64>,
}

/// Where one content is read from.
struct Served {
    base: usize,
    /// Relative to its base: the tree path, or for several paths the tree
    /// path (whose first component is the shared path's file name).
    path: String,
    size: u64,
}

impl TreeFiles {
    /// Serves `manifest` (a tree's) from `root`, opening files through
    /// `cache`. Takes one `stat` per base directory; opens nothing.
    pub fn new(
        root: TreeRoot,
        manifest: &Manifest,
        cache: Arc<OpenFiles>,
    ) -> Result<TreeFiles, StoreError> {
        let tree = manifest.as_tree().ok_or(StoreError::NotATree)?;
        let mut bases: Vec<(PathBuf, (u64, u64))> = Vec::new();
        // First component of a several-path tree -> its base.
        let mut base_of: HashMap<String, usize> = HashMap::new();
        let mut base = |dir: &Path| -> Result<usize, StoreError> {
            if let Some(at) = bases.iter().position(|(p, _)| p == dir) {
                return Ok(at);
            }
            let meta = std::fs::metadata(dir).map_err(io_err(dir))?;
            bases.push((dir.to_path_buf(), (meta.dev(), meta.ino())));
            Ok(bases.len() - 1)
        };
        match &root {
            TreeRoot::Dir(dir) => _ = base(dir)?,
            TreeRoot::Several(paths) => {
                for top in paths {
                    let at = base(top.parent().unwrap_or(top))?;
                    if let Some(name) = top.file_name().and_then(|n| n.to_str()) {
                        base_of.insert(name.to_string(), at);
                    }
                }
            }
        }
        let mut first: Vec<Option<&str>> = vec![None; tree.contents().len()];
        for e in tree.entries() {
            if let EntryKind::File {
                content: Some(c), ..
            } = e.kind
            {
                first[c as usize].get_or_insert(e.path.as_str());
            }
        }
        let mut served = Vec::with_capacity(first.len());
        for (content, path) in tree.contents().iter().zip(first) {
            let path = path.unwrap_or_default();
            let base = match &root {
                TreeRoot::Dir(_) => Some(0),
                TreeRoot::Several(_) => base_of.get(path.split('/').next().unwrap_or("")).copied(),
            };
            let Some(base) = base else {
                let why = format!("{path} is under none of the paths shared");
                let at = bases.first().map_or(Path::new(""), |(p, _)| p.as_path());
                return Err(io_err(at)(io::Error::new(io::ErrorKind::InvalidInput, why)));
            };
            served.push(Served {
                base,
                path: path.to_string(),
                size: content.size,
            });
        }
        let keys = cache.keys(served.len() as u64);
        Ok(TreeFiles {
            root,
            bases,
            served,
            spans: Spans::new(tree, manifest.chunk_size()),
            cache,
            keys,
        })
    }

    /// The open file holding `chunk` and the chunk's offset in it.
    fn locate(&self, chunk: Chunk) -> io::Result<(Arc<File>, u64)> {
        let (at, offset) = self.spans.locate(chunk)?;
        let file = self
            .cache
            .get(self.keys.start + at as u64, || self.open(&self.served[at]))?;
        Ok((file, offset))
    }

    fn open(&self, s: &Served) -> io::Result<File> {
        let (dir_path, inode) = &self.bases[s.base];
        let dir = File::open(dir_path)?;
        let meta = dir.metadata()?;
        if (meta.dev(), meta.ino()) != *inode || !meta.is_dir() {
            return Err(io::Error::other(format!(
                "{} was replaced since it was shared",
                dir_path.display()
            )));
        }
        let file = open_beneath(&dir, &s.path, libc::O_RDONLY, 0)?;
        let meta = file.metadata()?;
        if !meta.is_file() || meta.len() != s.size {
            return Err(io::Error::other(format!(
                "{} changed since it was shared",
                dir_path.join(&s.path).display()
            )));
        }
        Ok(file)
    }
}

impl Drop for TreeFiles {
    fn drop(&mut self) {
        self.cache.forget_all(self.keys.clone());
    }
}

impl Storage for TreeFiles {
    fn read_chunk(&self, chunk: Chunk, buf: &mut [u8]) -> io::Result<()> {
        let (file, offset) = self.locate(chunk)?;
        file.read_exact_at(buf, offset)
    }

    fn write_chunk(&self, _: Chunk, _: &[u8]) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "a shared folder is only read",
        ))
    }

    fn file_range(&self, chunk: Chunk) -> Option<(Arc<File>, u64)> {
        // On failure `read_chunk` will say why.
        self.locate(chunk).ok()
    }

    fn sync(&self) -> io::Result<()> {
        Ok(())
    }

    /// The shared directory's stamp (for several paths, the first's): a
    /// file added, removed or renamed at its top level changes it.
    fn stamp(&self) -> io::Result<Stamp> {
        let path = match &self.root {
            TreeRoot::Dir(dir) => dir,
            TreeRoot::Several(paths) => paths.first().ok_or(io::ErrorKind::NotFound)?,
        };
        Ok(stamp_of(&std::fs::symlink_metadata(path)?))
    }
}

#[cfg(test)]
mod tests;
