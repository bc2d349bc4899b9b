//! Every read and write of a file in a state directory (identity, pins,
//! memory, manifests, history) goes through here, so the rules live in one
//! place:
//!
//! - nothing is followed through a symbolic link (`O_NOFOLLOW`): a link
//!   planted there is refused, never read, written or `chmod`ed through;
//! - nothing blocks on opening (`O_NONBLOCK`), and anything but a regular
//!   file (a FIFO, a device, a directory) is refused after `fstat`, with one
//!   line naming it, so a FIFO cannot hang the process at start;
//! - a read is bounded (`bounds::MAX_STATE_FILE` unless the caller says
//!   less);
//! - a write goes to a temporary file (mode 0600), is synced, and renamed
//!   over the old one, so a crash leaves the old contents or the new, never
//!   part of either; [`write_new`] never replaces an existing file at all.
//!
//! The permission fix of a private file is an `fchmod` on the descriptor
//! opened this way, so it changes this file and nothing it might point at.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// The names of what a state directory holds, in one place: each module
/// that reads or writes one of these files takes its name from here.
pub mod names {
    /// The `flock` that gives the directory to one process.
    pub const LOCK: &str = "lock";
    /// The Ed25519 key (PKCS#8 DER, 0600) and its self-signed certificate.
    pub const IDENTITY_KEY: &str = "identity.key";
    pub const IDENTITY_CERT: &str = "identity.crt";
    /// A peer's pins of its trackers' ids, one `HOST:PORT ID` a line.
    pub const KNOWN_TRACKERS: &str = "known_trackers";
    /// A peer's memory: what it shares, the downloads it did not finish,
    /// and the manifests of its shares (`<id>.manifest` in a directory).
    pub const SHARES: &str = "shares.json";
    pub const DOWNLOADS: &str = "downloads.json";
    pub const MANIFESTS: &str = "manifests";
    /// The REPL's line history.
    pub const HISTORY: &str = "history";
}

/// What is wrong with a state file; each names the file and what to do.
#[derive(Debug, Error)]
pub enum StateFileError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is a symbolic link, and nothing in a state directory is followed through one: put the file itself there, or remove the link")]
    Link { path: PathBuf },
    #[error("{path} is {what}, not a regular file: remove it")]
    NotAFile { path: PathBuf, what: &'static str },
    #[error("{path} is over {max} bytes, too long for what it should hold: move it away")]
    TooLong { path: PathBuf, max: u64 },
    #[error("{path} is damaged ({why}): {fix}")]
    Damaged {
        path: PathBuf,
        why: String,
        fix: String,
    },
}

impl StateFileError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> StateFileError + '_ {
        move |source| match source.raw_os_error() {
            Some(libc::ELOOP) => StateFileError::Link {
                path: path.to_path_buf(),
            },
            _ => StateFileError::Io {
                path: path.to_path_buf(),
                source,
            },
        }
    }
}

/// A state file opened for reading: a regular file, reached through no
/// symbolic link.
pub struct Opened {
    file: File,
    path: PathBuf,
    meta: std::fs::Metadata,
}

/// Opens the state file at `path` for reading, without following a link or
/// blocking; `Ok(None)` if there is none.
pub fn open(path: &Path) -> Result<Option<Opened>, StateFileError> {
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StateFileError::io(path)(e)),
    };
    let meta = file.metadata().map_err(StateFileError::io(path))?;
    let kind = meta.file_type();
    let what = if kind.is_file() {
        return Ok(Some(Opened {
            file,
            path: path.to_path_buf(),
            meta,
        }));
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a device"
    };
    Err(StateFileError::NotAFile {
        path: path.to_path_buf(),
        what,
    })
}

impl Opened {
    /// Makes the file readable and writable by its owner only (`fchmod`),
    /// if it is not already.
    pub fn make_private(&self) -> Result<(), StateFileError> {
        if self.meta.mode() & 0o077 != 0 {
            self.file
                .set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(StateFileError::io(&self.path))?;
        }
        Ok(())
    }

    /// Refuses a file over `max` bytes long.
    pub fn within(&self, max: u64) -> Result<(), StateFileError> {
        match self.meta.len() > max {
            true => Err(StateFileError::TooLong {
                path: self.path.clone(),
                max,
            }),
            false => Ok(()),
        }
    }

    /// The whole file, if it is at most `max` bytes long.
    pub fn read(self, max: u64) -> Result<Vec<u8>, StateFileError> {
        let too_long = || StateFileError::TooLong {
            path: self.path.clone(),
            max,
        };
        self.within(max)?;
        let mut bytes = Vec::with_capacity(self.meta.len() as usize);
        // One byte more than allowed tells a file that grew meanwhile.
        (&self.file)
            .take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(StateFileError::io(&self.path))?;
        match bytes.len() as u64 > max {
            true => Err(too_long()),
            false => Ok(bytes),
        }
    }
}

/// The whole state file at `path` (at most `max` bytes), `Ok(None)` if
/// there is none.
pub fn read(path: &Path, max: u64) -> Result<Option<Vec<u8>>, StateFileError> {
    open(path)?.map(|f| f.read(max)).transpose()
}

/// Replaces the state file at `path` with `bytes`, mode 0600, atomically.
/// A symbolic link at `path` is replaced, not written through.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), StateFileError> {
    let tmp = write_temp(path, bytes, true)?;
    std::fs::rename(&tmp, path).map_err(StateFileError::io(path))?;
    sync_dir(path);
    Ok(())
}

/// Replaces the state file at `path` with `bytes`, mode 0600, as [`write`]
/// does but without syncing anything: for a cache whose damage is found on
/// reading (a manifest, named by its own hash), where a crash may lose or
/// tear the file but never mislead, so that writing thousands costs no
/// disk flush each.
pub fn write_unsynced(path: &Path, bytes: &[u8]) -> Result<(), StateFileError> {
    let tmp = write_temp(path, bytes, false)?;
    std::fs::rename(&tmp, path).map_err(StateFileError::io(path))
}

/// Writes `bytes` to a new state file at `path`, mode 0600; fails if
/// anything (a link included) is there already, which it never replaces.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<(), StateFileError> {
    let tmp = write_temp(path, bytes, true)?;
    let renamed = crate::storage::fs::rename_no_replace(&tmp, path);
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed.map_err(StateFileError::io(path))?;
    sync_dir(path);
    Ok(())
}

/// `bytes` in `<path>.tmp`, created afresh (whatever was there is removed,
/// not followed), mode 0600, and synced if `sync`.
fn write_temp(path: &Path, bytes: &[u8], sync: bool) -> Result<PathBuf, StateFileError> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let _ = std::fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(StateFileError::io(&tmp))?;
    f.write_all(bytes).map_err(StateFileError::io(&tmp))?;
    if sync {
        f.sync_all().map_err(StateFileError::io(&tmp))?;
    }
    Ok(tmp)
}

/// Syncs the directory holding `path`, so a rename in it survives a crash.
/// Best effort: the data itself is synced already.
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> crate::testing::TempDir {
        crate::testing::temp_dir(&format!("state-{tag}"))
    }

    fn mkfifo(path: &Path) {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    #[test]
    fn links_fifos_and_directories_are_refused_without_blocking() {
        let d = dir("refuse");
        let victim = d.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(&victim, d.join("link")).unwrap();
        mkfifo(&d.join("fifo"));
        std::fs::create_dir(d.join("dir")).unwrap();
        assert!(matches!(
            open(&d.join("link")),
            Err(StateFileError::Link { .. })
        ));
        for (name, what) in [("fifo", "a FIFO"), ("dir", "a directory")] {
            match open(&d.join(name)) {
                Err(StateFileError::NotAFile { what: w, .. }) => assert_eq!(w, what),
                other => panic!("{name}: {:?}", other.map(|_| ())),
            }
        }
        assert!(read(&d.join("none"), 10).unwrap().is_none());
        // Writing replaces the link itself; its target keeps bytes and mode.
        write(&d.join("link"), b"new").unwrap();
        assert_eq!(read(&d.join("link"), 10).unwrap().unwrap(), b"new");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let mode = std::fs::metadata(&victim).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o644);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn reads_are_bounded_and_new_files_never_replace() {
        let d = dir("bounds");
        let p = d.join("f");
        write(&p, b"0123456789").unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        assert_eq!(read(&p, 10).unwrap().unwrap(), b"0123456789");
        assert!(matches!(read(&p, 9), Err(StateFileError::TooLong { .. })));
        assert!(write_new(&p, b"other").is_err());
        assert_eq!(read(&p, 10).unwrap().unwrap(), b"0123456789");
        assert!(!d.join("f.tmp").exists(), "no temporary file left");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        open(&p).unwrap().unwrap().make_private().unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        std::fs::remove_dir_all(d).unwrap();
    }
}
