//! [`Tmpfs`]: a small tmpfs mounted on a directory of the test, for a disk
//! that fills up. Mounting needs root (or CAP_SYS_ADMIN); where it fails,
//! [`Tmpfs::mount`] says so and returns `None`, and the test skips.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for one test; unmounted (lazily, so a process still
/// inside does not keep it) when dropped.
pub struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `2m`) on the directory `path`.
    pub fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755")])
            .arg("tmpfs")
            .arg(path)
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Tmpfs {
                path: path.to_path_buf(),
            }),
            Ok(out) => {
                let why = String::from_utf8_lossy(&out.stderr);
                println!("note: cannot mount a tmpfs ({}); skipping", why.trim());
                None
            }
            Err(e) => {
                println!("note: cannot run mount ({e}); skipping");
                None
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
