use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};

use super::*;
use crate::manifest::tree::EntryKind;
use crate::storage::manifest_of;
use crate::testing::temp_dir;

fn no_globs() -> Globs {
    Globs::new::<&str>(&[]).unwrap()
}

/// (path, 'f'/'d', size, exec) of every entry.
fn listing(m: &Manifest) -> Vec<(String, char, u64, bool)> {
    m.as_tree()
        .unwrap()
        .entries()
        .iter()
        .map(|e| match e.kind {
            EntryKind::File { size, exec, .. } => (e.path.clone(), 'f', size, exec),
            EntryKind::Dir => (e.path.clone(), 'd', 0, false),
        })
        .collect()
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[test]
fn a_folder_becomes_its_contents_skipping_links_and_special_files() {
    let d = temp_dir("scan-folder");
    let root = d.join("photos");
    fs::create_dir_all(root.join("a/deep")).unwrap();
    fs::create_dir_all(root.join("empty/inner")).unwrap();
    fs::create_dir_all(root.join("only-links")).unwrap();
    fs::create_dir_all(root.join("target")).unwrap();
    fs::write(root.join("a/deep/x.bin"), vec![7u8; 600_000]).unwrap();
    fs::write(root.join("a/twin"), vec![7u8; 600_000]).unwrap();
    fs::write(root.join("empty.txt"), b"").unwrap();
    fs::write(root.join("run.sh"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(root.join("target/big"), b"left out").unwrap();
    fs::write(d.join("outside"), b"secret").unwrap();
    symlink(d.join("outside"), root.join("only-links/leak")).unwrap();
    symlink(&root, root.join("a/loop")).unwrap();
    mkfifo(&root.join("fifo"));

    let mut hashed = 0;
    let exclude = Globs::new(&["target"]).unwrap();
    let s = scan(std::slice::from_ref(&root), &exclude, &mut |n| hashed += n).unwrap();
    assert_eq!(s.name, "photos");
    assert_eq!(s.root, TreeRoot::Dir(fs::canonicalize(&root).unwrap()));
    assert_eq!(
        listing(&s.manifest),
        [
            ("a/deep/x.bin".to_string(), 'f', 600_000, false),
            ("a/twin".to_string(), 'f', 600_000, false),
            ("empty.txt".to_string(), 'f', 0, false),
            ("empty/inner".to_string(), 'd', 0, false),
            ("only-links".to_string(), 'd', 0, false),
            ("run.sh".to_string(), 'f', 10, true),
        ]
    );
    let tree = s.manifest.as_tree().unwrap();
    assert_eq!(hashed, 1_200_010, "every byte hashed reported");
    assert_eq!(
        s.skipped.to_string(),
        "skipped 2 symlinks, 1 socket or device, 1 excluded"
    );
    // A file keeps the id it has alone; twins are one content.
    let alone = manifest_of(&root.join("a/twin")).unwrap().id();
    assert!(matches!(tree.entries()[1].kind, EntryKind::File { id, .. } if id == alone));
    assert_eq!(tree.contents().len(), 2);
}

#[test]
fn an_empty_directory_deep_down_is_listed_as_itself() {
    let d = temp_dir("scan-empty");
    fs::create_dir_all(d.join("t/a/b/c")).unwrap();
    let s = scan(&[d.join("t")], &no_globs(), &mut |_| {}).unwrap();
    assert_eq!(listing(&s.manifest), [("a/b/c".to_string(), 'd', 0, false)]);
    assert_eq!(s.skipped.to_string(), "");
    let empty = d.join("nothing");
    fs::create_dir(&empty).unwrap();
    let s = scan(&[empty], &no_globs(), &mut |_| {}).unwrap();
    assert!(listing(&s.manifest).is_empty());
}

#[test]
fn a_bad_name_refuses_the_scan_naming_it_unless_excluded() {
    let d = temp_dir("scan-bad");
    let root = d.join("t");
    fs::create_dir_all(root.join("sub")).unwrap();
    fs::write(root.join("sub/trailing "), b"x").unwrap();
    fs::write(root.join("fine"), b"x").unwrap();
    let e = scan(std::slice::from_ref(&root), &no_globs(), &mut |_| {}).unwrap_err();
    let line = e.to_string();
    assert!(
        line.contains("sub/trailing ") && line.contains("never rewritten"),
        "{line}"
    );
    assert!(!line.contains('\n'), "one line: {line}");
    let exclude = Globs::new(&["trailing *"]).unwrap();
    let s = scan(&[root], &exclude, &mut |_| {}).unwrap();
    assert_eq!(s.manifest.as_tree().unwrap().file_count(), 1);

    // Not UTF-8.
    let odd = d.join("odd");
    fs::create_dir(&odd).unwrap();
    let raw = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"\xff.bin");
    fs::write(odd.join(raw), b"x").unwrap();
    let e = scan(&[odd], &no_globs(), &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("not UTF-8"), "{e}");
}

#[test]
fn several_paths_are_top_level_entries_under_their_parent_name() {
    let d = temp_dir("scan-several");
    let base = d.join("holiday");
    fs::create_dir_all(base.join("pics/sub")).unwrap();
    fs::write(base.join("pics/sub/1.jpg"), b"jpeg").unwrap();
    fs::write(base.join("notes.txt"), b"notes").unwrap();
    symlink(base.join("notes.txt"), base.join("link")).unwrap();
    let paths = [base.join("notes.txt"), base.join("pics"), base.join("link")];
    let s = scan(&paths, &no_globs(), &mut |_| {}).unwrap();
    assert_eq!(s.name, "holiday");
    let canon = |p: &str| fs::canonicalize(base.join(p)).unwrap();
    assert_eq!(
        s.root,
        TreeRoot::Several(vec![canon("notes.txt"), canon("pics")])
    );
    let paths: Vec<_> = listing(&s.manifest).into_iter().map(|e| e.0).collect();
    assert_eq!(paths, ["notes.txt", "pics/sub/1.jpg"]);
    assert_eq!(s.skipped.symlinks, 1);

    // Two paths of one name cannot both be top-level entries.
    let other = d.join("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("notes.txt"), b"other").unwrap();
    let e = scan(
        &[base.join("notes.txt"), other.join("notes.txt")],
        &no_globs(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(matches!(e, StoreError::SameName { .. }), "{e}");
    // Different parents: named after the deepest one holding both.
    let s = scan(&[base.join("notes.txt"), other], &no_globs(), &mut |_| {}).unwrap();
    assert_eq!(s.name, d.file_name().unwrap().to_str().unwrap());
}

#[test]
fn skipped_counts_read_as_a_sentence() {
    let s = |symlinks, special, excluded| {
        Skipped {
            symlinks,
            special,
            excluded,
        }
        .to_string()
    };
    assert_eq!(s(0, 0, 0), "");
    assert_eq!(s(1, 0, 0), "skipped 1 symlink");
    assert_eq!(s(3, 2, 0), "skipped 3 symlinks, 2 sockets or devices");
    assert_eq!(s(0, 0, 4), "skipped 4 excluded");
}

#[test]
#[ignore = "a measurement: cargo test --lib scan_timing -- --ignored --nocapture"]
fn scan_timing() {
    let dir = PathBuf::from(std::env::var("SCAN_DIR").unwrap_or("/usr/lib/python3.11".into()));
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let s = scan(std::slice::from_ref(&dir), &no_globs(), &mut |_| {}).unwrap();
        let tree = s.manifest.as_tree().unwrap();
        eprintln!(
            "TIMING {} files, {} bytes: {:?} ({})",
            tree.file_count(),
            tree.total_size(),
            t.elapsed(),
            s.skipped
        );
    }
}
