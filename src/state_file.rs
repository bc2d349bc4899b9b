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
    /// A peer's memory: what it shares (a JSON list and a journal of
    /// changes since), the downloads it did not finish, and the manifests
    /// of its shares (one append-only file; before, `<id>.manifest` files
    /// in the `manifests` directory, migrated on the first start).
    pub const SHARES: &str = "shares.json";
    pub const SHARES_JOURNAL: &str = "shares.journal";
    pub const DOWNLOADS: &str = "downloads.json";
    pub const MANIFEST_STORE: &str = "manifests.log";
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

    /// Its length when opened.
    pub fn size(&self) -> u64 {
        self.meta.len()
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
    write_with(path, |w| w.write_all(bytes))
}

/// Replaces the state file at `path` with what `fill` writes, as [`write`]
/// does (temporary file, `fsync`, rename), streamed through a buffer
/// rather than held whole in memory.
pub fn write_with(
    path: &Path,
    fill: impl FnOnce(&mut io::BufWriter<&File>) -> io::Result<()>,
) -> Result<(), StateFileError> {
    let (file, tmp) = create_temp(path)?;
    let mut w = io::BufWriter::with_capacity(64 * 1024, &file);
    let filled = fill(&mut w).and_then(|()| w.flush());
    drop(w);
    if let Err(e) = filled.and_then(|()| file.sync_all()) {
        let _ = std::fs::remove_file(&tmp);
        return Err(StateFileError::io(&tmp)(e));
    }
    std::fs::rename(&tmp, path).map_err(StateFileError::io(path))?;
    sync_dir(path);
    Ok(())
}

/// Opens the state file at `path` for reading and appending, creating it
/// (mode 0600) if absent, and refused as [`open`] refuses: a link, a FIFO
/// or anything but a regular file (checked without blocking first).
pub fn open_appending(path: &Path) -> Result<File, StateFileError> {
    if let Some(opened) = open(path)? {
        opened.make_private()?;
    }
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(StateFileError::io(path))?;
    match file.metadata().map_err(StateFileError::io(path))?.is_file() {
        true => Ok(file),
        false => Err(StateFileError::NotAFile {
            path: path.to_path_buf(),
            what: "not a regular file",
        }),
    }
}

/// Writes `bytes` to a new state file at `path`, mode 0600; fails if
/// anything (a link included) is there already, which it never replaces.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<(), StateFileError> {
    let tmp = write_temp(path, bytes)?;
    let renamed = crate::storage::fs::rename_no_replace(&tmp, path);
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed.map_err(StateFileError::io(path))?;
    sync_dir(path);
    Ok(())
}

/// `bytes` in `<path>.tmp` ([`create_temp`]), synced.
fn write_temp(path: &Path, bytes: &[u8]) -> Result<PathBuf, StateFileError> {
    let (mut f, tmp) = create_temp(path)?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(StateFileError::io(&tmp))?;
    Ok(tmp)
}

/// `<path>.tmp`, created afresh (whatever was there is removed, not
/// followed), mode 0600, and its path.
fn create_temp(path: &Path) -> Result<(File, PathBuf), StateFileError> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let _ = std::fs::remove_file(&tmp);
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(StateFileError::io(&tmp))?;
    Ok((f, tmp))
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
