//! A folder's manifest: every file (path, size, executable bit, the id it
//! would have shared alone) and every empty directory, sorted by path
//! bytes, then the chunk hashes of the tree's *chunk space*.
//!
//! The chunk space holds each distinct non-empty file content once, in the
//! order the sorted entries first name it, each starting on a chunk
//! boundary; so a chunk belongs to exactly one content, verification is
//! per file, and identical files are fetched once. An empty file has no
//! chunks. The tree id is the SHA-256 of the canonical bytes below, as for
//! a file, so everything that counts chunks (offers, `HAVE`, the scheduler)
//! works on a tree unchanged; only storage maps a chunk to a file.
//!
//! ```text
//! p2pshare-tree 1
//! chunk-size 524288
//! entries 3
//! f - 1200000 <file id hex> docs/big.bin
//! f x 15 <file id hex> bin/run.sh
//! d empty/dir
//! chunks 4
//! <hex sha256 of chunk 0>
//! ...
//! ```
//!
//! Invariants of a decoded or built [`Tree`] (the downloader relies on
//! them before it creates anything on disk): every path is 1..=
//! `MAX_TREE_DEPTH` components, each a safe name (`name.rs`), at most
//! `MAX_TREE_PATH` bytes; paths are strictly sorted (no duplicates); no
//! path lies under a file; a `d` entry is a directory with nothing listed
//! under it; at most `MAX_TREE_ENTRIES` entries; each file id matches the
//! chunk hashes of its content. No mtimes, owners or other modes, so a
//! downloader who re-shares what it wrote gets the same id.

use std::collections::{HashMap, HashSet};

use super::{Digest32, FileId, Manifest, ManifestError};
use crate::bounds::{MAX_MANIFEST_LEN, MAX_TREE_DEPTH, MAX_TREE_ENTRIES, MAX_TREE_PATH};
use crate::name::{shown, validate_name};

/// First line of every tree manifest.
pub(super) const TREE_MAGIC: &str = "p2pshare-tree 1";

/// One entry of a tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `/`-separated, relative to the tree's root.
    pub path: String,
    pub kind: EntryKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    File {
        size: u64,
        exec: bool,
        id: FileId,
        /// Index into [`Tree::contents`]; `None` for an empty file.
        content: Option<u32>,
    },
    /// An empty directory.
    Dir,
}

/// One distinct non-empty file content and where it lies in the chunk space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Content {
    pub id: FileId,
    pub size: u64,
    pub first_chunk: u32,
    pub chunks: u32,
}

/// A validated tree (see the module docs for its invariants).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tree {
    entries: Vec<Entry>,
    contents: Vec<Content>,
}

/// A file to put in a tree being built: its path and its own manifest.
pub struct FileIn {
    pub path: String,
    pub exec: bool,
    pub manifest: Manifest,
}

impl Tree {
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn contents(&self) -> &[Content] {
        &self.contents
    }

    /// How many files (not directories) the tree lists.
    pub fn file_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e.kind, EntryKind::File { .. }))
            .count()
    }

    /// Bytes of all files, duplicates counted each time.
    pub fn total_size(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| match e.kind {
                EntryKind::File { size, .. } => size,
                EntryKind::Dir => 0,
            })
            .sum()
    }

    /// The content chunk `index` belongs to.
    pub fn content_of_chunk(&self, index: u32) -> Option<&Content> {
        self.contents.get(self.content_index(index)?)
    }

    /// The index in [`contents`](Self::contents) of the content chunk
    /// `index` belongs to (a binary search).
    pub fn content_index(&self, index: u32) -> Option<usize> {
        let at = self.contents.partition_point(|c| c.first_chunk <= index);
        let at = at.checked_sub(1)?;
        let c = self.contents.get(at)?;
        (index < c.first_chunk + c.chunks).then_some(at)
    }
}

/// Builds a tree's manifest from its files (each with its own manifest, all
/// of `chunk_size`) and empty directories, checking every path.
pub fn build(
    chunk_size: u32,
    files: Vec<FileIn>,
    empty_dirs: Vec<String>,
) -> Result<Manifest, ManifestError> {
    let mut hashes_of: HashMap<FileId, Vec<Digest32>> = HashMap::new();
    let mut entries = Vec::with_capacity(files.len() + empty_dirs.len());
    for f in files {
        if f.manifest.chunk_size() != chunk_size {
            return Err(ManifestError::Malformed(
                "files of a tree differ in chunk size",
            ));
        }
        let id = f.manifest.id();
        let size = f.manifest.size();
        hashes_of
            .entry(id)
            .or_insert_with(|| f.manifest.hashes.clone());
        let kind = EntryKind::File {
            size,
            exec: f.exec,
            id,
            content: None,
        };
        entries.push(Entry { path: f.path, kind });
    }
    entries.extend(empty_dirs.into_iter().map(|path| Entry {
        path,
        kind: EntryKind::Dir,
    }));
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    if entries.len() > MAX_TREE_ENTRIES {
        return Err(ManifestError::TooManyEntries(entries.len()));
    }
    check_paths(&entries)?;
    let (contents, chunk_total) = lay_out(&mut entries, chunk_size)?;
    let mut hashes = Vec::with_capacity(chunk_total as usize);
    for c in &contents {
        hashes.extend_from_slice(&hashes_of[&c.id]);
    }
    let size = contents.iter().map(|c| c.size).sum();
    let tree = Tree { entries, contents };
    let manifest = Manifest::tree(size, chunk_size, hashes, tree);
    if manifest.encode().len() > MAX_MANIFEST_LEN {
        return Err(ManifestError::TooLarge(manifest.encode().len()));
    }
    Ok(manifest)
}

/// Gives each distinct non-empty content its place in the chunk space, in
/// the order the (sorted) entries first name it; returns the contents and
/// the number of chunks.
fn lay_out(entries: &mut [Entry], chunk_size: u32) -> Result<(Vec<Content>, u32), ManifestError> {
    let mut contents: Vec<Content> = Vec::new();
    let mut index_of: HashMap<FileId, u32> = HashMap::new();
    let mut next_chunk: u64 = 0;
    for e in entries.iter_mut() {
        let EntryKind::File {
            size, id, content, ..
        } = &mut e.kind
        else {
            continue;
        };
        if *size == 0 {
            continue;
        }
        if let Some(&i) = index_of.get(id) {
            if contents[i as usize].size != *size {
                return Err(ManifestError::Malformed("one file id with two sizes"));
            }
            *content = Some(i);
            continue;
        }
        let chunks = size.div_ceil(u64::from(chunk_size));
        let first_chunk =
            u32::try_from(next_chunk).map_err(|_| ManifestError::Malformed("too many chunks"))?;
        next_chunk += chunks;
        if next_chunk > u64::from(u32::MAX) {
            return Err(ManifestError::Malformed("too many chunks"));
        }
        let i = contents.len() as u32;
        index_of.insert(*id, i);
        *content = Some(i);
        contents.push(Content {
            id: *id,
            size: *size,
            first_chunk,
            chunks: chunks as u32,
        });
    }
    Ok((contents, next_chunk as u32))
}

/// Checks every path (see the module docs); `entries` sorted by path.
fn check_paths(entries: &[Entry]) -> Result<(), ManifestError> {
    let mut ancestors = HashSet::new();
    for (n, e) in entries.iter().enumerate() {
        check_path(&e.path)?;
        if n > 0 && entries[n - 1].path >= e.path {
            return Err(if entries[n - 1].path == e.path {
                bad_path(&e.path, "listed twice")
            } else {
                ManifestError::Malformed("entries not sorted by path")
            });
        }
        let mut at = 0;
        while let Some(slash) = e.path[at..].find('/') {
            ancestors.insert(&e.path[..at + slash]);
            at += slash + 1;
        }
    }
    for e in entries {
        if ancestors.contains(e.path.as_str()) {
            return Err(match e.kind {
                EntryKind::File { .. } => bad_path(&e.path, "is a file with paths under it"),
                EntryKind::Dir => ManifestError::Malformed("a directory entry that is not empty"),
            });
        }
    }
    Ok(())
}

/// One path: components, depth and length.
pub fn check_path(path: &str) -> Result<(), ManifestError> {
    if path.len() > MAX_TREE_PATH {
        return Err(bad_path(path, "is too long"));
    }
    let mut depth = 0;
    for component in path.split('/') {
        depth += 1;
        if depth > MAX_TREE_DEPTH {
            return Err(bad_path(path, "is too deep"));
        }
        if let Err(e) = validate_name(component) {
            return Err(bad_path(path, &e.to_string()));
        }
    }
    Ok(())
}

fn bad_path(path: &str, why: &str) -> ManifestError {
    let shown: String = shown(path).chars().take(120).collect();
    ManifestError::BadPath(format!("{shown:?} {why}"))
}

mod text;
pub(super) use text::{decode, encode};

#[cfg(test)]
mod tests;
