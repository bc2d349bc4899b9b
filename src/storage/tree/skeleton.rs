//! The skeleton of a folder being downloaded: every selected directory and
//! file made (or, on resume, found) inside the partial directory before
//! any chunk is fetched, relative to directory handles.
//!
//! Invariants: directories are made `mkdirat` 0700 and entered with
//! `openat(O_NOFOLLOW | O_DIRECTORY)`, files made `openat(O_CREAT | O_EXCL
//! | O_NOFOLLOW)` 0600 (or, when there, reopened `O_NOFOLLOW` and checked to
//! be this user's singly linked plain files), so nothing is made or opened
//! through a symlink; no two entries are one file or directory (same
//! device and inode): a file system that merges two names (case-insensitive
//! vfat, ext4 casefold) fails here, naming both, before data is fetched.
//! On resume, whatever the partial directory holds that is not a selected
//! entry (left by an attempt with another `--only`) is removed first
//! ([`prune`]), so it is never published half-written.
//! Entries come sorted by path, so the entries under a directory are
//! consecutive: each directory is entered once, and at most one handle per
//! level of depth is open.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::beneath::{make_dir, open_at, open_dir, unlink_at};
use crate::manifest::tree::{Entry, EntryKind};
use crate::storage::{fs, StoreError};

/// The directories entered so far, one handle per level (see the module
/// docs).
pub(super) struct DirStack<'a> {
    root: &'a File,
    /// For messages: the root's path.
    shown: &'a Path,
    /// (tree path, handle) of each directory entered, outermost first.
    open: Vec<(String, File)>,
}

impl<'a> DirStack<'a> {
    pub fn new(root: &'a File, shown: &'a Path) -> Self {
        DirStack {
            root,
            shown,
            open: Vec::new(),
        }
    }

    /// The handle of the directory `path` ("" for the root), entered from
    /// the deepest one open that holds it, each missing directory made
    /// first if `create`; `entered` sees each directory opened.
    pub fn enter(
        &mut self,
        path: &str,
        create: bool,
        entered: &mut dyn FnMut(&str, &File) -> Result<(), StoreError>,
    ) -> Result<&File, StoreError> {
        while let Some((open, _)) = self.open.last() {
            let holds = path == open
                || (path.starts_with(open.as_str()) && path.as_bytes()[open.len()] == b'/');
            if holds {
                break;
            }
            self.open.pop();
        }
        let base = self.open.last().map_or(0, |(p, _)| p.len());
        let rest = path[base..].trim_start_matches('/');
        if !rest.is_empty() {
            let mut end = path.len() - rest.len();
            for name in rest.split('/') {
                end += name.len();
                let sub = &path[..end];
                end += 1;
                let parent = self.open.last().map_or(self.root, |(_, f)| f);
                let err = |e| error(self.shown, sub, e);
                if create {
                    make_dir(parent, name).map_err(err)?;
                }
                let dir = open_dir(parent, name).map_err(err)?;
                entered(sub, &dir)?;
                self.open.push((sub.to_string(), dir));
            }
        }
        Ok(self.open.last().map_or(self.root, |(_, f)| f))
    }
}

/// `e`, met at `path` under `shown`, as the error to report.
pub(super) fn error(shown: &Path, path: &str, e: io::Error) -> StoreError {
    let at = shown.join(path);
    // `O_DIRECTORY | O_NOFOLLOW` on a symlink fails ENOTDIR: look, for
    // the message only (nothing was opened through it).
    let link = || {
        at.symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
    };
    match e.raw_os_error() {
        Some(libc::ELOOP) => StoreError::Symlink(at),
        Some(libc::ENOTDIR) if link() => StoreError::Symlink(at),
        Some(libc::ENOTDIR) => StoreError::Foreign {
            path: at,
            reason: "a file where a directory belongs".into(),
        },
        _ => StoreError::Io {
            path: at,
            source: e,
        },
    }
}

/// Which entry each (device, inode) made so far is.
#[derive(Default)]
pub(super) struct Inodes(HashMap<(u64, u64), String>);

impl Inodes {
    /// Refuses `path` if `file` is already another entry.
    pub fn check(&mut self, path: &str, file: &File, shown: &Path) -> Result<(), StoreError> {
        let meta = file.metadata().map_err(|e| StoreError::Io {
            path: shown.join(path),
            source: e,
        })?;
        match self.0.insert((meta.dev(), meta.ino()), path.to_string()) {
            Some(first) => Err(StoreError::Collision {
                first,
                second: path.to_string(),
            }),
            None => Ok(()),
        }
    }
}

/// Makes (or finds) every entry of `entries` (sorted by path) under `dir`
/// (the partial directory, at `shown`); calls `file` with each file entry's
/// index in `entries`, its handle and whether it was already there.
pub(super) fn make(
    dir: &File,
    shown: &Path,
    entries: &[&Entry],
    file: &mut dyn FnMut(usize, &File, bool) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut stack = DirStack::new(dir, shown);
    let mut inodes = Inodes::default();
    let mut check = |path: &str, f: &File| inodes.check(path, f, shown);
    for (i, entry) in entries.iter().enumerate() {
        let path = entry.path.as_str();
        if let EntryKind::Dir = entry.kind {
            stack.enter(path, true, &mut check)?;
            continue;
        }
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        let at = stack.enter(parent, true, &mut check)?;
        let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL;
        let (f, existed) = match open_at(at, name, flags, 0o600) {
            Ok(f) => (f, false),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let f = open_at(at, name, libc::O_RDWR, 0).map_err(|e| error(shown, path, e))?;
                (f, true)
            }
            Err(e) => return Err(error(shown, path, e)),
        };
        if existed {
            if let Some(reason) = fs::foreign(&f).map_err(|e| error(shown, path, e))? {
                return Err(StoreError::Foreign {
                    path: shown.join(path),
                    reason,
                });
            }
        }
        check(path, &f)?;
        file(i, &f, existed)?;
    }
    Ok(())
}

/// Removes from `dir` (the partial directory, at `shown`) everything that
/// is not one of `entries` or a directory holding one; returns how many
/// it removed. Reads each directory through its handle
/// (`/proc/self/fd`), never through a symlink.
pub(super) fn prune(dir: &File, shown: &Path, entries: &[&Entry]) -> Result<usize, StoreError> {
    let mut keep: HashSet<&str> = HashSet::with_capacity(entries.len() * 2);
    for e in entries {
        let mut at = e.path.len();
        keep.insert(&e.path);
        while let Some(slash) = e.path[..at].rfind('/') {
            if !keep.insert(&e.path[..slash]) {
                break; // its parents are in already
            }
            at = slash;
        }
    }
    let mut removed = 0;
    let mut todo: Vec<(String, File)> = vec![(
        String::new(),
        dir.try_clone().map_err(|e| error(shown, "", e))?,
    )];
    while let Some((prefix, handle)) = todo.pop() {
        let listed = std::fs::read_dir(format!("/proc/self/fd/{}", handle.as_raw_fd()));
        for name in listed.map_err(|e| error(shown, &prefix, e))? {
            let name = name.map_err(|e| error(shown, &prefix, e))?.file_name();
            let name = name.to_string_lossy();
            let path = match prefix.as_str() {
                "" => name.to_string(),
                _ => format!("{prefix}/{name}"),
            };
            if keep.contains(path.as_str()) {
                if let Ok(sub) = open_dir(&handle, &name) {
                    todo.push((path, sub)); // a file: not a directory, kept as is
                }
                continue;
            }
            unlink_at(&handle, &name).map_err(|e| error(shown, &path, e))?;
            removed += 1;
        }
    }
    Ok(removed)
}
