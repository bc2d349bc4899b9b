//! The file-system calls std does not expose, for partial files: opening
//! without following a symlink, an exclusive lock (and who holds it), free
//! space, where a sparse file has data, early writeback, and a rename that
//! never replaces.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Opens `path` for reading and writing, creating it (mode 0600) if it does
/// not exist, never through a symlink: a symlink there fails with `ELOOP`.
/// Returns the file and whether this call created it.
pub fn open_no_follow(path: &Path) -> io::Result<(File, bool)> {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    match options.clone().create_new(true).open(path) {
        Ok(file) => Ok((file, true)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok((options.open(path)?, false)),
        Err(e) => Err(e),
    }
}

/// Why an existing file is not one of our partial files, if it is not.
pub fn foreign(file: &File) -> io::Result<Option<String>> {
    let meta = file.metadata()?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    Ok(if !meta.is_file() {
        Some("it is not a regular file".into())
    } else if meta.nlink() != 1 {
        Some(format!("it has {} hard links", meta.nlink()))
    } else if meta.uid() != uid {
        Some(format!("it belongs to user {}, not {uid}", meta.uid()))
    } else {
        None
    })
}

/// Takes an exclusive lock on `file` (released when it is closed), or
/// reports the process that holds it (`Ok(Some(pid))`, 0 if unknown).
pub fn try_lock(file: &File) -> io::Result<Option<u32>> {
    // SAFETY: the descriptor belongs to `file`, borrowed for the call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(None);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
        return Err(e);
    }
    Ok(Some(lock_holder(file).unwrap_or(0)))
}

/// The pid of the process holding a `flock` on `file`, from /proc/locks.
fn lock_holder(file: &File) -> Option<u32> {
    let meta = file.metadata().ok()?;
    let dev = meta.dev();
    // SAFETY: major/minor only do arithmetic on the number.
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let inode = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [_, "FLOCK", _, _, pid, id, ..] if *id == inode => pid.parse().ok(),
            _ => None,
        }
    })
}

/// Bytes free for an unprivileged user on the file system holding `path`.
pub fn free_space(path: &Path) -> io::Result<u64> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path; statvfs fills `st` on success.
    if unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so `st` is initialised.
    let st = unsafe { st.assume_init() };
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Bytes of `file` that take space on disk (its holes do not).
pub fn allocated(file: &File) -> io::Result<u64> {
    Ok(file.metadata()?.blocks().saturating_mul(512))
}

/// The byte ranges of the first `len` bytes of `file` that hold data, as
/// `SEEK_DATA`/`SEEK_HOLE` see them; the whole range where the file system
/// cannot tell.
pub fn data_ranges(file: &File, len: u64) -> Vec<Range<u64>> {
    let fd = file.as_raw_fd();
    let mut ranges = Vec::new();
    let mut at = 0u64;
    while at < len {
        // SAFETY: lseek on a descriptor borrowed from `file`; it only
        // reports offsets and does not move anything we rely on.
        let start = unsafe { libc::lseek(fd, at as libc::off_t, libc::SEEK_DATA) };
        if start < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENXIO) {
                break; // only a hole from `at` to the end
            }
            return std::iter::once(0..len).collect(); // not supported: assume data everywhere
        }
        // SAFETY: as above.
        let end = unsafe { libc::lseek(fd, start, libc::SEEK_HOLE) };
        if end < 0 {
            return std::iter::once(0..len).collect();
        }
        let (start, end) = (start as u64, (end as u64).min(len));
        if end <= start {
            break;
        }
        ranges.push(start..end);
        at = end;
    }
    ranges
}

/// Starts writing `len` bytes of `file` at `offset` to the disk, without
/// waiting (`sync_file_range(SYNC_FILE_RANGE_WRITE)`): a download's chunks
/// then go to the disk while the rest arrive, and the `fsync` before the
/// file is published has little left to do. It promises nothing about
/// durability (the `fsync` does that), so a failure is ignored.
pub fn start_writeback(file: &File, offset: u64, len: usize) {
    let (Ok(offset), Ok(len)) = (
        libc::off64_t::try_from(offset),
        libc::off64_t::try_from(len),
    ) else {
        return;
    };
    // SAFETY: a descriptor borrowed from `file`; the call only schedules I/O
    // of the file's own pages.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Writes everything dirty on the file system holding `file` to the disk
/// and waits (`syncfs`): one journal commit where an `fsync` per file of a
/// folder would make one each.
pub fn sync_file_system(file: &File) -> io::Result<()> {
    // SAFETY: a descriptor borrowed from `file`.
    if unsafe { libc::syncfs(file.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Renames `from` to `to` unless `to` exists (symlinks included).
pub fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    renameat2(libc::AT_FDCWD, from, libc::AT_FDCWD, to)
}

/// Renames `from` in the directory `from_dir` to `to` in `to_dir` unless
/// `to` exists: resolved from the directory handles, so a parent swapped
/// for a symlink by its path meanwhile changes nothing.
pub fn rename_no_replace_at(
    from_dir: &File,
    from: &Path,
    to_dir: &File,
    to: &Path,
) -> io::Result<()> {
    renameat2(from_dir.as_raw_fd(), from, to_dir.as_raw_fd(), to)
}

fn renameat2(from_dir: i32, from: &Path, to_dir: i32, to: &Path) -> io::Result<()> {
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
    };
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: both are NUL-terminated paths, resolved from descriptors the
    // callers borrow (or AT_FDCWD, as rename(2) would).
    let r = unsafe {
        libc::renameat2(
            from_dir,
            from.as_ptr(),
            to_dir,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The process's umask, read from `/proc/self/status` (Linux 4.7+). Never
/// by umask(2): the only way it reads the mask is by setting it, which
/// would race every other thread creating files meanwhile. Where it cannot
/// be read, 0o077: what is published is then no more open than a partial
/// file was.
pub fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Umask:"))?;
            u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
        })
        .map_or(0o077, |mask| mask & 0o777)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    fn dir(tag: &str) -> crate::testing::TempDir {
        crate::testing::temp_dir(&format!("fs-{tag}"))
    }

    #[test]
    fn symlinks_are_not_followed_and_foreign_files_are_named() {
        let d = dir("nofollow");
        let victim = d.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let link = d.join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(open_no_follow(&link).is_err(), "opened through a symlink");
        let hard = d.join("hard");
        std::fs::hard_link(&victim, &hard).unwrap();
        let (f, created) = open_no_follow(&hard).unwrap();
        assert!(!created);
        assert_eq!(foreign(&f).unwrap().as_deref(), Some("it has 2 hard links"));
        let (f, created) = open_no_follow(&d.join("fresh")).unwrap();
        assert!(created && foreign(&f).unwrap().is_none());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_second_lock_names_the_holder() {
        let d = dir("lock");
        let p = d.join("f");
        let (a, _) = open_no_follow(&p).unwrap();
        let (b, _) = open_no_follow(&p).unwrap();
        assert_eq!(try_lock(&a).unwrap(), None);
        let holder = try_lock(&b).unwrap().expect("held");
        assert!(holder == std::process::id() || holder == 0, "{holder}");
        drop(a);
        assert_eq!(try_lock(&b).unwrap(), None, "released with its file");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn data_ranges_skip_holes_and_renames_never_replace() {
        let d = dir("sparse");
        let p = d.join("sparse");
        let (f, _) = open_no_follow(&p).unwrap();
        f.set_len(64 << 20).unwrap();
        f.write_all_at(&[1u8; 4096], 32 << 20).unwrap();
        let ranges = data_ranges(&f, 64 << 20);
        let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
        assert!(total < 64 << 20, "holes seen: {ranges:?}");
        assert!(ranges.iter().any(|r| r.contains(&(32 << 20))), "{ranges:?}");
        assert!(free_space(&d).unwrap() > 0);
        let other = d.join("other");
        std::fs::write(&other, b"x").unwrap();
        assert!(rename_no_replace(&p, &other).is_err());
        assert_eq!(std::fs::read(&other).unwrap(), b"x");
        rename_no_replace(&p, &d.join("new")).unwrap();
        // A child inherits the umask: the shell's word for it is ours.
        let shell = std::process::Command::new("sh")
            .args(["-c", "umask"])
            .output()
            .unwrap();
        let said = String::from_utf8(shell.stdout).unwrap();
        assert_eq!(umask(), u32::from_str_radix(said.trim(), 8).unwrap());
        std::fs::remove_dir_all(d).unwrap();
    }
}
