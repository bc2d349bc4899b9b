//! Opening and creating paths inside a tree relative to a directory
//! handle, never through a symlink: the calls every tree storage makes.
//!
//! Invariant: a path handed here (already checked by the name rules: no
//! `..`, no empty component, no NUL) is resolved beneath `dir` with no
//! symlink followed at any component, also one planted a moment ago. One
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` where the kernel has it;
//! else one `openat(O_NOFOLLOW)` per component, each directory opened
//! before the next name is looked up in it (so at most two descriptors of
//! this module's are open at once).

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once `openat2` is found missing (or filtered), to stop trying it.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

fn c_name(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// `openat(dir, name, flags | O_NOFOLLOW | O_CLOEXEC, mode)` for one
/// component.
pub fn open_at(dir: &File, name: &str, flags: i32, mode: u32) -> io::Result<File> {
    let c = c_name(name)?;
    let flags = flags | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: a descriptor borrowed from `dir` and a NUL-terminated name;
    // on success the new descriptor is ours alone.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags, mode as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// The directory `name` in `dir`, not through a symlink.
pub fn open_dir(dir: &File, name: &str) -> io::Result<File> {
    open_at(dir, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)
}

/// Makes the directory `name` in `dir` (mode 0700) if it is not there;
/// returns whether this call made it.
pub fn make_dir(dir: &File, name: &str) -> io::Result<bool> {
    let c = c_name(name)?;
    // SAFETY: as in `open_at`; mkdirat never follows a final symlink.
    if unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o700) } == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.kind() {
        io::ErrorKind::AlreadyExists => Ok(false),
        _ => Err(e),
    }
}

/// Removes `name` from `dir`: a file or symlink (never followed), or a
/// directory with all it holds (std's `remove_dir_all`, which opens each
/// level without following symlinks), found through `dir`'s handle.
pub fn unlink_at(dir: &File, name: &str) -> io::Result<()> {
    let c = c_name(name)?;
    // SAFETY: a descriptor borrowed from `dir`, a NUL-terminated name.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if !matches!(e.raw_os_error(), Some(libc::EISDIR | libc::EPERM)) {
        return Err(e);
    }
    let at = std::path::PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    std::fs::remove_dir_all(at.join(name))
}

/// Opens `path` (`/`-separated, relative) beneath `dir` with `flags`
/// (`O_CREAT` and `O_EXCL` apply to the last component), never through a
/// symlink: one there fails with `ELOOP` or `ENOTDIR`.
pub fn open_beneath(dir: &File, path: &str, flags: i32, mode: u32) -> io::Result<File> {
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        match openat2(dir, path, flags, mode) {
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOSYS | libc::EPERM | libc::E2BIG)
                ) =>
            {
                NO_OPENAT2.store(true, Ordering::Relaxed);
            }
            done => return done,
        }
    }
    let mut parts = path.split('/');
    let last = parts.next_back().unwrap_or(path);
    let mut at: Option<File> = None;
    for part in parts {
        let next = open_dir(at.as_ref().unwrap_or(dir), part)?;
        at = Some(next);
    }
    open_at(at.as_ref().unwrap_or(dir), last, flags, mode)
}

fn openat2(dir: &File, path: &str, flags: i32, mode: u32) -> io::Result<File> {
    let c = c_name(path)?;
    // SAFETY: open_how is plain data; zero is a valid value of every field.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u64;
    how.mode = if flags & libc::O_CREAT != 0 {
        u64::from(mode)
    } else {
        0
    };
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS;
    // SAFETY: a borrowed descriptor, a NUL-terminated path, and `how` with
    // its exact size, as openat2(2) takes them.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor just opened, owned by nothing else.
    Ok(unsafe { File::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn no_component_is_followed_through_a_symlink_by_either_way() {
        let d = crate::testing::temp_dir("beneath");
        let root = d.join("root");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f"), b"inside").unwrap();
        std::fs::create_dir(d.join("outside")).unwrap();
        std::fs::write(d.join("outside/f"), b"canary").unwrap();
        symlink(d.join("outside"), root.join("a/link")).unwrap();
        symlink(d.join("outside/f"), root.join("a/b/g")).unwrap();
        let dir = File::open(&root).unwrap();
        for round in ["openat2", "per component"] {
            let f = open_beneath(&dir, "a/b/f", libc::O_RDONLY, 0).unwrap();
            assert_eq!(std::io::read_to_string(f).unwrap(), "inside", "{round}");
            for path in ["a/link/f", "a/b/g", "a/link"] {
                let e = open_beneath(&dir, path, libc::O_RDWR | libc::O_CREAT, 0o600);
                assert!(e.is_err(), "{round}: {path} followed");
            }
            NO_OPENAT2.store(true, Ordering::Relaxed);
        }
        NO_OPENAT2.store(false, Ordering::Relaxed);
        assert_eq!(std::fs::read(d.join("outside/f")).unwrap(), b"canary");
        assert!(open_dir(&dir, "a/link").is_err(), "one component only");
        assert!(make_dir(&dir, "new").unwrap());
        assert!(!make_dir(&dir, "new").unwrap());
    }
}
