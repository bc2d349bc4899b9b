//! Reading a folder (or several paths) from disk into a tree manifest, for
//! sharing it.
//!
//! The walk uses `read_dir` and each entry's own type (`lstat`): a symlink
//! is never followed (no loops, nothing outside the folder leaks), and it,
//! sockets, FIFOs and devices are skipped and counted, never silently.
//! Names are refused, never rewritten: a component that is not UTF-8 or
//! breaks the name rules, or a path too deep or too long, refuses the whole
//! scan with one line naming it (`--exclude` can leave it out). A directory
//! that ends up with nothing listed under it is kept as an empty directory.
//! Each directory is read once, then each file hashed once on every core
//! (`hash_files.rs`): O(N) in entries. The walk looks at no more than
//! [`MAX_SCAN_VISITS`] entries and keeps no more than [`MAX_TREE_ENTRIES`].

use std::fmt;
use std::fs::{self, FileType};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use super::hash_files::hash_files;
use crate::bounds::{CHUNK_SIZE, MAX_SCAN_VISITS, MAX_TREE_ENTRIES};
use crate::manifest::tree::{self, check_path};
use crate::manifest::{Manifest, ManifestError};
use crate::name::{shown, validate_name};
use crate::select::Globs;
use crate::storage::{io_err, StoreError};

/// Where a shared tree's files are on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TreeRoot {
    /// One directory (canonical): the tree is its contents.
    Dir(PathBuf),
    /// Several paths (canonical), each a top-level entry named by its file
    /// name.
    Several(Vec<PathBuf>),
}

/// What a scan left out, for the line `send` prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Skipped {
    pub symlinks: usize,
    /// Sockets, FIFOs and devices.
    pub special: usize,
    /// Matched by `--exclude` (a directory counts once).
    pub excluded: usize,
}

/// A scanned tree: its manifest, where it is, and its name.
#[derive(Debug)]
pub struct Scanned {
    pub manifest: Manifest,
    pub root: TreeRoot,
    pub name: String,
    pub skipped: Skipped,
}

impl fmt::Display for Skipped {
    /// "skipped 3 symlinks, 1 socket or device, 2 excluded", or nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: usize, one: &str, many: &str| match n {
            0 => None,
            1 => Some(format!("1 {one}")),
            n => Some(format!("{n} {many}")),
        };
        let parts: Vec<String> = [
            plural(self.symlinks, "symlink", "symlinks"),
            plural(self.special, "socket or device", "sockets or devices"),
            plural(self.excluded, "excluded", "excluded"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if parts.is_empty() {
            return Ok(());
        }
        write!(f, "skipped {}", parts.join(", "))
    }
}

/// Scans `paths` into a tree (see the module docs): one directory gives its
/// contents, named after it; several paths (files or directories) give one
/// top-level entry each, named after their common parent directory (or
/// "files"). `hashed` is called with the bytes of each file once hashed.
pub fn scan(
    paths: &[PathBuf],
    exclude: &Globs,
    hashed: &mut dyn FnMut(u64),
) -> Result<Scanned, StoreError> {
    let mut walk = Walk {
        exclude,
        files: Vec::new(),
        empty_dirs: Vec::new(),
        skipped: Skipped::default(),
        visits: 0,
    };
    let single_dir = match paths {
        [one] => one.symlink_metadata().map_err(io_err(one))?.is_dir(),
        _ => false,
    };
    let (root, name) = if single_dir {
        let dir = fs::canonicalize(&paths[0]).map_err(io_err(&paths[0]))?;
        let name = own_name(&dir)?;
        walk.dir(&dir, "")?; // an empty folder is a tree of no entries
        (TreeRoot::Dir(dir), name)
    } else {
        let kept = walk.several(paths)?;
        let name = common_name(&kept);
        (TreeRoot::Several(kept), name)
    };
    let files = hash_files(walk.files, hashed)?;
    let manifest = tree::build(CHUNK_SIZE, files, walk.empty_dirs)?;
    Ok(Scanned {
        manifest,
        root,
        name,
        skipped: walk.skipped,
    })
}

/// The state of one scan.
struct Walk<'a> {
    exclude: &'a Globs,
    /// Each file's path on disk and in the tree, hashed once all are found.
    files: Vec<(PathBuf, String)>,
    empty_dirs: Vec<String>,
    skipped: Skipped,
    /// Entries looked at, kept or not.
    visits: usize,
}

impl Walk<'_> {
    /// The top-level paths of a several-path tree; returns the canonical
    /// paths of those kept (symlinks and special files are skipped).
    fn several(&mut self, paths: &[PathBuf]) -> Result<Vec<PathBuf>, StoreError> {
        let mut kept: Vec<PathBuf> = Vec::new();
        for path in paths {
            let meta = path.symlink_metadata().map_err(io_err(path))?;
            if self.skip(meta.file_type()) {
                continue;
            }
            // Not a symlink itself: only its parents are resolved.
            let canonical = fs::canonicalize(path).map_err(io_err(path))?;
            let name = own_name(&canonical)?;
            if let Some(other) = kept.iter().find(|k| k.file_name() == canonical.file_name()) {
                return Err(StoreError::SameName {
                    first: other.clone(),
                    second: canonical,
                });
            }
            if self.entry(&canonical, &name, meta.file_type())? {
                kept.push(canonical);
            }
        }
        Ok(kept)
    }

    /// Reads the directory `dir` (tree path `prefix`, "" for the root);
    /// returns how many entries were kept directly under it.
    fn dir(&mut self, dir: &Path, prefix: &str) -> Result<usize, StoreError> {
        // Read it all, then close it: one descriptor open at a time,
        // whatever the depth.
        let mut children = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let kind = entry.file_type().map_err(io_err(&entry.path()))?;
            self.visits += 1;
            if self.visits > MAX_SCAN_VISITS {
                return Err(StoreError::TooBig {
                    path: dir.to_path_buf(),
                    visits: MAX_SCAN_VISITS,
                });
            }
            children.push((entry.file_name(), kind));
        }
        let mut kept = 0;
        for (name, kind) in children {
            let path = dir.join(&name);
            let Some(name) = name.to_str() else {
                return Err(bad_name(&path, "its name is not UTF-8".into()));
            };
            let tree_path = match prefix {
                "" => name.to_string(),
                _ => format!("{prefix}/{name}"),
            };
            if self.entry(&path, &tree_path, kind)? {
                kept += 1;
            }
        }
        Ok(kept)
    }

    /// One entry at `path` (tree path `tree_path`) of type `kind` (not
    /// followed); returns whether it was kept.
    fn entry(&mut self, path: &Path, tree_path: &str, kind: FileType) -> Result<bool, StoreError> {
        if self.skip(kind) {
            return Ok(false);
        }
        if self.exclude.matches(tree_path) {
            self.skipped.excluded += 1;
            return Ok(false);
        }
        check_path(tree_path).map_err(|e| bad_name(path, why(e)))?;
        if self.files.len() + self.empty_dirs.len() >= MAX_TREE_ENTRIES {
            return Err(ManifestError::TooManyEntries(MAX_TREE_ENTRIES + 1).into());
        }
        if kind.is_dir() {
            if self.dir(path, tree_path)? == 0 {
                self.empty_dirs.push(tree_path.to_string());
            }
            return Ok(true);
        }
        self.files.push((path.to_path_buf(), tree_path.to_string()));
        Ok(true)
    }

    /// Whether an entry of type `kind` is left out (and counted): a
    /// symlink, socket, FIFO or device.
    fn skip(&mut self, kind: FileType) -> bool {
        if kind.is_symlink() {
            self.skipped.symlinks += 1;
        } else if kind.is_socket()
            || kind.is_fifo()
            || kind.is_block_device()
            || kind.is_char_device()
        {
            self.skipped.special += 1;
        } else {
            return false;
        }
        true
    }
}

/// The last component of a canonical path, as a tree name.
fn own_name(path: &Path) -> Result<String, StoreError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| bad_name(path, "it has no UTF-8 name to share it under".into()))?;
    validate_name(name).map_err(|e| bad_name(path, e.to_string()))?;
    Ok(name.to_string())
}

/// The name of the deepest directory holding every path, or "files".
fn common_name(paths: &[PathBuf]) -> String {
    let mut common: Option<&Path> = paths.first().and_then(|p| p.parent());
    for p in paths.iter().skip(1) {
        while let Some(c) = common {
            if p.starts_with(c) {
                break;
            }
            common = c.parent();
        }
    }
    common
        .and_then(|c| c.file_name())
        .and_then(|n| n.to_str())
        .filter(|n| validate_name(n).is_ok())
        .unwrap_or("files")
        .to_string()
}

fn why(e: ManifestError) -> String {
    match e {
        ManifestError::BadPath(why) => why,
        other => other.to_string(),
    }
}

fn bad_name(path: &Path, why: String) -> StoreError {
    StoreError::BadName {
        path: PathBuf::from(shown(&path.to_string_lossy()).into_owned()),
        why,
    }
}

#[cfg(test)]
mod tests;
