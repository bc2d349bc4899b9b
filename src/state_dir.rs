//! Taking a state directory for this process: a `flock` on its `lock`
//! file, held while the [`StateLock`] lives. Two processes never share a
//! state directory: they would be one identity, and each would take the
//! other's offers for its own and leave them out.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::identity::{ensure_private_dir, io_err, IdentityError};
use crate::storage::fs;

use crate::state_file::names::LOCK as LOCK_FILE;

/// A state directory held by this process while the lock lives.
pub struct StateLock {
    _file: File,
}

/// Takes the state directory `dir` (created if need be) for this process.
pub fn lock_state_dir(dir: &Path) -> Result<StateLock, IdentityError> {
    ensure_private_dir(dir)?;
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        // Never blocking: a FIFO planted there fails (ENXIO) at once.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
        .map_err(io_err(&path))?;
    match fs::try_lock(&file).map_err(io_err(&path))? {
        None => Ok(StateLock { _file: file }),
        Some(pid) => Err(IdentityError::InUse {
            path: dir.to_path_buf(),
            holder: match pid {
                0 => "unknown pid".into(),
                pid => format!("pid {pid}"),
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::ensure_private_dir;

    #[test]
    fn a_fifo_at_the_lock_fails_at_once() {
        let d = crate::testing::temp_dir("lock-fifo").within("state");
        ensure_private_dir(&d).unwrap();
        let fifo = std::ffi::CString::new(d.join(LOCK_FILE).into_os_string().into_encoded_bytes());
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.unwrap().as_ptr(), 0o600) }, 0);
        let e = lock_state_dir(&d).err().expect("refused").to_string();
        assert!(e.contains("lock: "), "{e}");
        std::fs::remove_dir_all(d.parent().unwrap()).unwrap();
    }
}
