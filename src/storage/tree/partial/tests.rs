use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};

use sha2::{Digest, Sha256};

use super::*;
use crate::manifest::tree::{build, FileIn};
use crate::testing::temp_dir;

/// Chunk size of the test trees: small, so files have several chunks.
const CS: u32 = 4;

/// A tree of `files` (path, bytes, exec) and `dirs`, and each content's
/// bytes by file id.
fn tree_of(files: &[(&str, &[u8], bool)], dirs: &[&str]) -> (Manifest, HashMap<FileId, Vec<u8>>) {
    tree_with(CS, files, dirs)
}

fn tree_with(
    cs: u32,
    files: &[(&str, &[u8], bool)],
    dirs: &[&str],
) -> (Manifest, HashMap<FileId, Vec<u8>>) {
    let mut bytes = HashMap::new();
    let files = files
        .iter()
        .map(|&(path, data, exec)| {
            let hashes = data
                .chunks(cs as usize)
                .map(|c| Sha256::digest(c).into())
                .collect();
            let manifest = Manifest::with_chunk_size(data.len() as u64, cs, hashes).unwrap();
            bytes.insert(manifest.id(), data.to_vec());
            FileIn {
                path: path.to_string(),
                exec,
                manifest,
            }
        })
        .collect();
    let dirs = dirs.iter().map(|d| d.to_string()).collect();
    (build(cs, files, dirs).unwrap(), bytes)
}

fn sample() -> (Manifest, HashMap<FileId, Vec<u8>>) {
    tree_of(
        &[
            ("bin/run.sh", b"#!/bin/sh\necho hi\n", true),
            ("docs/été.txt", b"0123456789", false),
            ("docs/twin.txt", b"0123456789", false),
            ("empty", b"", false),
            ("z/one", b"1", false),
        ],
        &["keep/me"],
    )
}

/// The bytes of chunk `i` of `m`.
fn chunk_bytes(m: &Manifest, bytes: &HashMap<FileId, Vec<u8>>, i: u32) -> (Chunk, Vec<u8>) {
    let tree = m.as_tree().unwrap();
    let content = tree.content_of_chunk(i).unwrap();
    let c = m.chunk(i).unwrap();
    let start = (u64::from(i - content.first_chunk) * u64::from(CS)) as usize;
    (
        c,
        bytes[&content.id][start..start + c.len as usize].to_vec(),
    )
}

fn write(
    p: &PartialTree,
    m: &Manifest,
    bytes: &HashMap<FileId, Vec<u8>>,
    which: impl Fn(u32) -> bool,
) {
    for i in p.wanted().iter().filter(|&i| which(i)) {
        let (c, data) = chunk_bytes(m, bytes, i);
        p.write_chunk(c, &data).unwrap();
    }
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_tree_is_written_resumed_and_published_whole_under_the_umask() {
    let d = temp_dir("ptree-round");
    let (m, bytes) = sample();
    let out = d.join("folder");
    let (p, have) = PartialTree::open(&out, &m.id(), &m, None).unwrap();
    assert!(have.is_empty());
    assert_eq!(p.wanted().count(), m.chunk_count());
    assert_eq!(p.selected_files(), (5, 39));
    assert_eq!(mode_of(p.path()), 0o700, "private while in progress");
    assert!(
        p.path().join("keep/me").is_dir() && p.path().join("z/one").is_file(),
        "skeleton first"
    );
    write(&p, &m, &bytes, |i| i % 2 == 0);
    drop(p); // as if killed

    let (p, have) = PartialTree::open(&out, &m.id(), &m, None).unwrap();
    let even: Vec<u32> = (0..m.chunk_count()).filter(|i| i % 2 == 0).collect();
    assert_eq!(
        have.iter().collect::<Vec<_>>(),
        even,
        "resumed, re-verified"
    );
    assert!(!out.exists());
    // Served from while downloading.
    let (c, data) = chunk_bytes(&m, &bytes, 0);
    let mut buf = vec![0; c.len as usize];
    p.storage().read_chunk(c, &mut buf).unwrap();
    assert_eq!(buf, data);
    write(&p, &m, &bytes, |i| i % 2 == 1);
    let part = p.path().to_path_buf();
    assert_eq!(p.finish().unwrap(), out);
    assert!(!part.exists());

    let mask = crate::storage::fs::umask();
    assert_eq!(
        fs::read(out.join("bin/run.sh")).unwrap(),
        b"#!/bin/sh\necho hi\n"
    );
    assert_eq!(fs::read(out.join("docs/été.txt")).unwrap(), b"0123456789");
    assert_eq!(
        fs::read(out.join("docs/twin.txt")).unwrap(),
        b"0123456789",
        "copied at publish"
    );
    assert_eq!(fs::read(out.join("empty")).unwrap(), b"");
    assert_eq!(fs::read(out.join("z/one")).unwrap(), b"1");
    assert!(out.join("keep/me").is_dir());
    assert_eq!(mode_of(&out.join("bin/run.sh")), 0o777 & !mask);
    assert_eq!(mode_of(&out.join("empty")), 0o666 & !mask);
    assert_eq!(mode_of(&out.join("keep/me")), 0o777 & !mask);
    assert_eq!(mode_of(&out), 0o777 & !mask);

    // Never twice, never over what is there.
    assert!(matches!(
        PartialTree::open(&out, &m.id(), &m, None),
        Err(StoreError::Exists(_))
    ));
}

#[test]
fn only_the_selected_files_are_fetched_and_published() {
    let d = temp_dir("ptree-only");
    let (m, bytes) = sample();
    let out = d.join("folder");
    // A first attempt with another selection, killed before any chunk:
    // its files are not published half-written by the next.
    let before = Globs::new(&["bin", "keep"]).unwrap();
    let (p, _) = PartialTree::open(&out, &m.id(), &m, Some(&before)).unwrap();
    assert!(p.path().join("bin/run.sh").exists());
    drop(p);
    let only = Globs::new(&["twin.txt", "z"]).unwrap();
    let (p, _) = PartialTree::open(&out, &m.id(), &m, Some(&only)).unwrap();
    assert!(!p.path().join("bin").exists() && !p.path().join("keep").exists());
    assert_eq!(p.selected_files(), (2, 11));
    // "docs/été.txt" is not selected: its twin holds the content.
    let wanted: u32 = p.wanted().count();
    assert_eq!(wanted, 3 + 1, "the twin's 3 chunks and z/one's");
    write(&p, &m, &bytes, |_| true);
    p.finish().unwrap();
    assert_eq!(fs::read(out.join("docs/twin.txt")).unwrap(), b"0123456789");
    assert_eq!(fs::read(out.join("z/one")).unwrap(), b"1");
    assert!(!out.join("docs/été.txt").exists() && !out.join("bin").exists());
    assert!(!out.join("keep").exists());

    let none = Globs::new(&["nothing-matches"]).unwrap();
    let other = d.join("other");
    assert!(matches!(
        PartialTree::open(&other, &m.id(), &m, Some(&none)),
        Err(StoreError::NothingSelected)
    ));
    assert_eq!(
        fs::read_dir(&*d).unwrap().count(),
        1,
        "nothing left on disk"
    );
}

#[test]
fn an_output_present_or_appearing_is_never_touched_and_a_second_download_waits() {
    let d = temp_dir("ptree-exists");
    let (m, bytes) = sample();
    let canary = d.join("canary");
    fs::write(&canary, b"precious").unwrap();
    let out = d.join("folder");
    symlink(&canary, &out).unwrap();
    assert!(matches!(
        PartialTree::open(&out, &m.id(), &m, None),
        Err(StoreError::Exists(_))
    ));
    fs::remove_file(&out).unwrap();

    let (p, _) = PartialTree::open(&out, &m.id(), &m, None).unwrap();
    match PartialTree::open(&out, &m.id(), &m, None) {
        Err(StoreError::Locked { holder, .. }) => assert_eq!(holder, "this peer"),
        other => panic!("{:?}", other.map(|_| ())),
    }
    write(&p, &m, &bytes, |_| true);
    fs::create_dir(&out).unwrap();
    fs::write(out.join("theirs"), b"theirs").unwrap();
    let part = p.path().to_path_buf();
    assert!(matches!(p.finish(), Err(StoreError::Exists(_))));
    assert_eq!(fs::read(out.join("theirs")).unwrap(), b"theirs");
    assert_eq!(fs::read_dir(&out).unwrap().count(), 1, "not merged into");
    assert!(part.is_dir(), "kept, to resume");
    assert_eq!(fs::read(&canary).unwrap(), b"precious");
}

#[test]
fn symlinks_planted_in_the_partial_directory_are_never_followed() {
    let d = temp_dir("ptree-planted");
    let (m, bytes) = sample();
    let canary_dir = d.join("canaries");
    fs::create_dir(&canary_dir).unwrap();
    fs::write(canary_dir.join("one"), b"precious").unwrap();
    let out = d.join("folder");
    let (p, _) = PartialTree::open(&out, &m.id(), &m, None).unwrap();
    let part = p.path().to_path_buf();
    // z/one's single chunk is the last one.
    let last = m.chunk_count() - 1;
    fs::remove_file(part.join("z/one")).unwrap();
    symlink(canary_dir.join("one"), part.join("z/one")).unwrap();
    let (c, data) = chunk_bytes(&m, &bytes, last);
    assert!(
        p.write_chunk(c, &data).is_err(),
        "a file swapped for a symlink"
    );
    fs::remove_file(part.join("z/one")).unwrap();
    fs::remove_dir(part.join("z")).unwrap();
    symlink(&canary_dir, part.join("z")).unwrap();
    assert!(
        p.write_chunk(c, &data).is_err(),
        "a directory swapped for a symlink"
    );
    drop(p);
    let e = PartialTree::open(&out, &m.id(), &m, None).map(|_| ());
    assert!(matches!(e, Err(StoreError::Symlink(_))), "{e:?}");
    // At the partial directory itself.
    fs::remove_dir_all(&part).unwrap();
    symlink(&canary_dir, &part).unwrap();
    assert!(matches!(
        PartialTree::open(&out, &m.id(), &m, None),
        Err(StoreError::Symlink(_))
    ));
    assert_eq!(fs::read(canary_dir.join("one")).unwrap(), b"precious");
    assert_eq!(fs::read_dir(&canary_dir).unwrap().count(), 1);
}

#[test]
fn a_parent_swapped_for_a_symlink_mid_download_is_not_followed() {
    let d = temp_dir("ptree-parent");
    let (m, bytes) = sample();
    let canary_dir = d.join("canaries");
    fs::create_dir(&canary_dir).unwrap();
    fs::create_dir(d.join("sub")).unwrap();
    let out = d.join("sub/folder");
    let (p, _) = PartialTree::open(&out, &m.id(), &m, None).unwrap();
    fs::rename(d.join("sub"), d.join("moved")).unwrap();
    symlink(&canary_dir, d.join("sub")).unwrap();
    write(&p, &m, &bytes, |_| true);
    p.finish().unwrap();
    assert_eq!(
        fs::read_dir(&canary_dir).unwrap().count(),
        0,
        "nothing through the link"
    );
    assert_eq!(fs::read(d.join("moved/folder/z/one")).unwrap(), b"1");
}

#[test]
fn two_entries_that_are_one_file_are_refused_naming_both() {
    let d = temp_dir("ptree-collide");
    fs::write(d.join("A"), b"x").unwrap();
    fs::hard_link(d.join("A"), d.join("a")).unwrap();
    let mut inodes = skeleton::Inodes::default();
    let a = File::open(d.join("A")).unwrap();
    inodes.check("dir/A", &a, &d).unwrap();
    let b = File::open(d.join("a")).unwrap();
    match inodes.check("dir/a", &b, &d) {
        Err(e @ StoreError::Collision { .. }) => {
            let line = e.to_string();
            assert!(line.contains("dir/A") && line.contains("dir/a"), "{line}");
        }
        other => panic!("{other:?}"),
    }
}

/// 10,000 files under `ulimit -n 256`: run again in a child process with
/// the limit set, so that other tests keep their descriptors.
#[test]
fn ten_thousand_files_need_few_descriptors() {
    const VAR: &str = "P2PSHARE_TEST_FD_LIMIT";
    if std::env::var_os(VAR).is_none() {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "storage::tree::partial::tests::ten_thousand_files_need_few_descriptors",
            ])
            .env(VAR, "256")
            .status()
            .unwrap();
        assert!(status.success());
        return;
    }
    let limit = libc::rlimit {
        rlim_cur: 256,
        rlim_max: 256,
    };
    // SAFETY: a plain struct, read by the call.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    let d = temp_dir("ptree-many");
    let names: Vec<(String, Vec<u8>)> = (0..10_000u32)
        .map(|i| (format!("d{}/f{i}", i % 100), i.to_le_bytes().to_vec()))
        .collect();
    let files: Vec<(&str, &[u8], bool)> = names
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_slice(), false))
        .collect();
    let (m, bytes) = tree_of(&files, &[]);
    let out = d.join("many");
    let (p, _) = PartialTree::open(&out, &m.id(), &m, None).unwrap();
    write(&p, &m, &bytes, |_| true);
    p.finish().unwrap();
    assert_eq!(
        fs::read(out.join("d42/f9942")).unwrap(),
        9942u32.to_le_bytes()
    );
}

/// A small file system mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_fresh_tree_refused_before_data_leaves_nothing_on_disk() {
    let d = temp_dir("ptree-full");
    let disk = d.join("disk");
    fs::create_dir(&disk).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&disk)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    }
    let _mount = Tmpfs(disk.clone());
    let big = vec![5u8; 300 * 1024];
    let (m, _) = tree_with(
        64 * 1024,
        &[("a/big", &big, false), ("b", b"x", false)],
        &[],
    );
    match PartialTree::open(&disk.join("folder"), &m.id(), &m, None) {
        Err(e @ StoreError::NoSpace { .. }) => assert!(e.to_string().contains("partdir"), "{e}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
    assert_eq!(
        fs::read_dir(&disk).unwrap().count(),
        0,
        "nothing left on disk"
    );
}
