//! Publishing a complete folder download: [`PartialTree::finish`].
//!
//! Invariants: every selected file is complete (each duplicate copied
//! from the file that holds its content), and every file and directory is
//! on disk (one `syncfs`) before the rename; files get 0666 (0777 if
//! the sender's was executable) and directories 0777, each masked by the
//! process umask; the partial directory becomes the output by one
//! `renameat2(RENAME_NOREPLACE)` from the parent's handle: the output
//! appears whole or not at all, an output that appeared meanwhile is
//! never replaced (the partial directory is kept, to publish elsewhere or
//! resume), and a parent swapped for a symlink by its path is not
//! followed.

use std::fs::{File, Permissions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::beneath::{open_at, open_beneath};
use super::partial::PartialTree;
use super::skeleton::{self, DirStack};
use crate::manifest::tree::EntryKind;
use crate::storage::{fs, io_err, StoreError};

impl PartialTree {
    /// Completes the download and moves it into place (see the module
    /// docs); returns the output's path.
    pub fn finish(self) -> Result<PathBuf, StoreError> {
        let started = std::time::Instant::now();
        let mask = fs::umask();
        let shown = self.part.as_path();
        let mut dirs: Vec<String> = Vec::new();
        let mut stack = DirStack::new(&self.dir, shown);
        let mut note = |path: &str, _: &File| {
            dirs.push(path.to_string());
            Ok(())
        };
        for entry in self.selected_entries() {
            let path = entry.path.as_str();
            let EntryKind::File {
                size,
                exec,
                content,
                ..
            } = entry.kind
            else {
                stack.enter(path, false, &mut note)?;
                continue;
            };
            let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
            let at = stack.enter(parent, false, &mut note)?;
            let mut file =
                open_at(at, name, libc::O_RDWR, 0).map_err(|e| skeleton::error(shown, path, e))?;
            let holder = content.and_then(|c| self.writer[c as usize]);
            let holder = holder.map(|i| self.tree().entries()[i].path.as_str());
            if let Some(from) = holder.filter(|&from| from != path) {
                self.copy(from, &mut file, size)
                    .map_err(io_err(&shown.join(path)))?;
            }
            let done = file.metadata().map(|m| m.len()).and_then(|len| {
                if len != size {
                    return Err(io::Error::other(format!("{len} bytes, not {size}")));
                }
                file.set_permissions(Permissions::from_mode(mode(exec, mask)))
            });
            done.map_err(io_err(&shown.join(path)))?;
        }
        drop(stack);
        // Innermost first: a directory's mode is set after what it holds.
        for path in dirs.iter().rev() {
            let dir = open_beneath(&self.dir, path, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .map_err(|e| skeleton::error(shown, path, e))?;
            publish_dir(&dir, mask).map_err(io_err(&shown.join(path)))?;
        }
        publish_dir(&self.dir, mask).map_err(io_err(shown))?;
        // One `syncfs` instead of an `fsync` per file and directory: the
        // same durability (every file's data and every directory entry on
        // disk, write errors reported since Linux 5.8), one journal commit
        // instead of thousands for a folder of small files.
        fs::sync_file_system(&self.dir).map_err(io_err(shown))?;
        let name = |p: &Path| PathBuf::from(p.file_name().unwrap_or_default());
        match fs::rename_no_replace_at(
            &self.parent,
            &name(&self.part),
            &self.parent,
            &name(&self.out),
        ) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StoreError::Exists(self.out));
            }
            Err(e) => return Err(io_err(&self.out)(e)),
        }
        self.parent.sync_all().map_err(io_err(&self.out))?;
        log::debug!(
            "{}: published in {:?}",
            self.out.display(),
            started.elapsed()
        );
        Ok(self.out)
    }

    /// Copies the `size` bytes of the file at tree path `from` (which holds
    /// their content) into `to` (`copy_file_range` where it can).
    fn copy(&self, from: &str, to: &mut File, size: u64) -> io::Result<()> {
        let mut source = open_beneath(&self.dir, from, libc::O_RDONLY, 0)?;
        to.set_len(0)?;
        let copied = io::copy(&mut source, to)?;
        if copied != size {
            return Err(io::Error::other(format!(
                "copied {copied} bytes of {from}, not {size}"
            )));
        }
        Ok(())
    }
}

/// A file's published mode: 0666, or 0777 if executable, under `mask`.
fn mode(exec: bool, mask: u32) -> u32 {
    (if exec { 0o777 } else { 0o666 }) & !mask
}

fn publish_dir(dir: &File, mask: u32) -> io::Result<()> {
    dir.set_permissions(Permissions::from_mode(0o777 & !mask))
}
