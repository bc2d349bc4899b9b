//! The partial file on disk, where things go wrong: a symlink or a hard
//! link planted at its path, a second download of the same file into the
//! same place, and a disk too small or filling up. Each is one clear error
//! that names the partial file, and nothing outside it is touched.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::symlink;
use std::time::Instant;

use crate::support::harness::{assert_same_bytes, figure, part_file, TestDir, CHUNK, COMMAND};
use crate::support::programs::{Peer, Tracker};
use crate::support::tmpfs::Tmpfs;

/// A symlink to an unrelated file (`victim.txt`, outside the download
/// directory) planted at the partial file's path: the download refuses
/// with `<part> is a symbolic link; not writing through it`, and the
/// victim is untouched (bytes and size). A hard link to the victim planted
/// there instead: refused with `... is not a partial download of ours (it
/// has 2 hard links) ...`, the victim again untouched. With the path clear,
/// the download works. Before 8aa11e7 the partial file was opened through
/// the link: the download resized the victim to the file's size and wrote
/// its chunks into it.
#[test]
fn links_planted_at_the_partial_file_are_refused() {
    let dir = TestDir::new("planted");
    let tracker = Tracker::start(&dir);
    let (path, data) = dir.random_file("s/p.bin", 2 * CHUNK, 57);
    let (_seeder, ids) = Peer::seeder("seeder", &tracker, &[&path]);
    let dl_dir = dir.sub("dl");
    let victim = dir.path().join("victim.txt");
    fs::write(&victim, b"precious").unwrap();
    let part = part_file(&dl_dir.join("p.bin"), &ids[0]);
    let part_name = part.file_name().unwrap().to_str().unwrap().to_string();
    let mut dl = Peer::start("downloader", &dl_dir, &tracker, &[]);
    let untouched = || {
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert!(!dl_dir.join("p.bin").exists(), "no output");
    };

    symlink(&victim, &part).unwrap();
    let lines = dl.download("p.bin", None).expect_err("a symlink");
    let want = format!("error: p.bin: {part_name} is a symbolic link; not writing through it");
    assert_eq!(lines.last().unwrap(), &want);
    untouched();

    fs::remove_file(&part).unwrap();
    fs::hard_link(&victim, &part).unwrap();
    let lines = dl.download("p.bin", None).expect_err("a hard link");
    let want = format!(
        "error: p.bin: {part_name} exists and is not a partial download of ours \
         (it has 2 hard links); remove it or download to another name"
    );
    assert_eq!(lines.last().unwrap(), &want);
    untouched();

    fs::remove_file(&part).unwrap();
    dl.download("p.bin", None)
        .unwrap_or_else(|l| panic!("the download with the path clear failed: {l:?}"));
    assert_same_bytes(&fs::read(dl_dir.join("p.bin")).unwrap(), &data, "p.bin");
}

/// Two peers in one directory download the same file to the same name,
/// the first mid-download (seeder capped at 1 MiB/s) when the second asks:
/// the second fails at once with `<part> is being written by another
/// download (process <pid of the first>); wait for it, or download to
/// another name`, and the first completes, byte-identical, with nothing
/// else left in the directory. Before 8aa11e7 both wrote into the same
/// partial file, and whichever finished second failed with a false
/// `already exists`.
#[test]
fn a_second_download_to_the_same_place_names_the_first() {
    let dir = TestDir::new("same-out");
    let tracker = Tracker::start(&dir);
    let (path, data) = dir.random_file("s/two.bin", 8 * CHUNK, 58);
    let cap = ["--max-upload", "1M"];
    let (_seeder, ids) = Peer::seeder_with("seeder", &tracker, &[&path], &cap);
    let dl_dir = dir.sub("dl");
    let mut first = Peer::start("first", &dl_dir, &tracker, &["--http", "0"]);
    let mut second = Peer::start("second", &dl_dir, &tracker, &[]);

    first.proc.send("download two.bin");
    first.await_fetched(1);
    let asked = Instant::now();
    let lines = second.download("two.bin", None).expect_err("taken");
    let refused = asked.elapsed();
    let part = part_file(&dl_dir.join("two.bin"), &ids[0]);
    let want = format!(
        "error: two.bin: {} is being written by another download (process {}); \
         wait for it, or download to another name",
        part.file_name().unwrap().to_str().unwrap(),
        first.proc.pid()
    );
    assert_eq!(lines.last().unwrap(), &want);
    first
        .finish_download(COMMAND)
        .unwrap_or_else(|l| panic!("the first download failed: {l:?}"));
    assert_same_bytes(&fs::read(dl_dir.join("two.bin")).unwrap(), &data, "two.bin");
    assert_eq!(dir.entries("dl"), ["two.bin"]);
    figure("same output", "second download refused after", refused);
}

/// Downloads into a 2 MiB tmpfs (skipped where it cannot be mounted): a
/// 4 MiB file is refused before anything is written, with `not enough
/// space for <part>: ... needed, ... free`, and no partial file is left; a
/// 1.5 MiB file fits, but once its first chunk is in the test fills the
/// disk, and the next chunk's write fails the download with `<part>: No
/// space left on device`. Both errors name the hidden partial file. Before
/// 8aa11e7 the space was not checked, and a write error named no file.
#[test]
fn a_full_disk_is_an_error_that_names_the_partial_file() {
    let dir = TestDir::new("enospc");
    let Some(disk) = Tmpfs::mount(&dir.sub("small"), "2m") else {
        return;
    };
    let tracker = Tracker::start(&dir);
    let (big, _) = dir.random_file("s/big.bin", 8 * CHUNK, 59);
    let (fits, _) = dir.random_file("s/fits.bin", 3 * CHUNK, 60);
    let cap = ["--max-upload", "512K"];
    let (_seeder, ids) = Peer::seeder_with("seeder", &tracker, &[&big, &fits], &cap);
    let mut dl = Peer::start("downloader", disk.path(), &tracker, &["--http", "0"]);
    let part_name = |name: &str, id: &str| {
        let part = part_file(&disk.path().join(name), id);
        part.file_name().unwrap().to_str().unwrap().to_string()
    };

    let lines = dl.download("big.bin", None).expect_err("too big");
    let error = lines.last().unwrap();
    let want = format!(
        "error: big.bin: not enough space for {}: {} more bytes needed, ",
        part_name("big.bin", &ids[0]),
        8 * CHUNK
    );
    assert!(
        error.starts_with(&want) && error.ends_with(" free"),
        "{error}"
    );
    assert!(
        fs::read_dir(disk.path()).unwrap().next().is_none(),
        "nothing left"
    );

    dl.proc.send("download fits.bin");
    dl.await_fetched(1);
    let filled = fill(disk.path());
    let lines = dl.finish_download(COMMAND).expect_err("the disk is full");
    let want = format!(
        "error: fits.bin: {}: No space left on device (os error 28)",
        part_name("fits.bin", &ids[1])
    );
    assert_eq!(lines.last().unwrap(), &want);
    println!(
        "figure: full disk: filled with {} KiB after the first chunk",
        filled / 1024
    );
}

/// Writes a file into `dir` until its file system is full; returns the
/// bytes written.
fn fill(dir: &std::path::Path) -> usize {
    let mut f = File::create(dir.join("filler")).unwrap();
    let block = vec![0xa5u8; 64 * 1024];
    let mut written = 0;
    loop {
        match f.write(&block) {
            Ok(0) => return written,
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::StorageFull => return written,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
}
