//! Remembering shares and downloads in a state directory.

use super::*;
use crate::peer::library::Library;
use crate::state_file::names::{SHARES, SHARES_JOURNAL};

fn dir(test: &str) -> crate::testing::TempDir {
    crate::testing::temp_dir(&format!("memory-{test}"))
}

#[test]
fn a_share_is_remembered_with_its_manifest_until_its_file_changes() {
    let d = dir("share");
    let path = d.join("f.bin");
    std::fs::write(&path, b"some bytes").unwrap();
    let manifest = crate::storage::manifest_of(&path).unwrap();
    let lib = Library::default();
    let secret = Secret([3; 16]);
    let file = lib
        .add("f.bin".into(), path.clone(), manifest.clone(), Some(secret))
        .unwrap()
        .file;
    let memory = Memory::open(&d).unwrap();
    memory.share(&file);
    memory.share(&file);
    let shares = Memory::open(&d).unwrap().shares();
    assert_eq!(shares.len(), 1, "once per path");
    assert_eq!(secret_of(&shares[0]), Ok(Some(secret)));
    assert_eq!(
        memory.unchanged_manifest(&shares[0], &std::fs::metadata(&path).unwrap()),
        Some(manifest)
    );
    std::fs::write(&path, b"other bytes, longer").unwrap();
    assert_eq!(
        memory.unchanged_manifest(&shares[0], &std::fs::metadata(&path).unwrap()),
        None,
        "changed"
    );
    memory.forget_share(&file.id);
    assert!(memory.shares().is_empty());
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_batch_is_remembered_in_one_write_and_restoring_it_writes_nothing() {
    let d = dir("batch");
    let lib = Library::default();
    let files: Vec<_> = (0..50u8)
        .map(|i| {
            let path = d.join(format!("f{i}"));
            std::fs::write(&path, [i; 100]).unwrap();
            let manifest = crate::storage::manifest_of(&path).unwrap();
            lib.add(format!("f{i}"), path, manifest, None).unwrap().file
        })
        .collect();
    let memory = Memory::open(&d).unwrap();
    let batch: Vec<(&SharedFile, bool)> = files.iter().map(|f| (&**f, false)).collect();
    memory.share_all(&batch, &[]);
    let size = |name: &str| std::fs::metadata(d.join(name)).map_or(0, |m| m.len());
    let written = (size(SHARES), size(SHARES_JOURNAL), size(MANIFEST_STORE));
    let shares = memory.shares();
    assert_eq!(shares.len(), 50);
    assert!(shares.iter().all(|s| memory
        .unchanged_manifest(s, &std::fs::metadata(&s.path).unwrap())
        .is_some()));
    // The same batch again (a restart sharing what it remembered) writes
    // nothing.
    let again: Vec<(&SharedFile, bool)> = files.iter().map(|f| (&**f, true)).collect();
    memory.share_all(&again, &[]);
    let after = (size(SHARES), size(SHARES_JOURNAL), size(MANIFEST_STORE));
    assert_eq!(after, written, "nothing written");
    let gone: Vec<FileId> = files[..10].iter().map(|f| f.id).collect();
    memory.share_all(&[], &gone);
    assert_eq!(memory.shares().len(), 40);
    let kept = memory.kept.locked();
    assert!(kept.manifests.get(&gone[0]).is_none());
    assert!(kept.manifests.get(&files[10].id).is_some());
}

#[test]
fn an_old_manifests_directory_is_moved_into_the_store() {
    let d = dir("migrate");
    let path = d.join("f.bin");
    std::fs::write(&path, b"old layout").unwrap();
    let manifest = crate::storage::manifest_of(&path).unwrap();
    let (encoded, id) = manifest.encoded_with_id();
    let old = d.join(MANIFESTS);
    std::fs::create_dir(&old).unwrap();
    std::fs::write(old.join(format!("{id}.manifest")), &encoded).unwrap();
    // A foreign file whose bytes are not its name's manifest.
    let other = FileId([7; 32]);
    std::fs::write(old.join(format!("{other}.manifest")), &encoded).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    let share = Share {
        path: path.clone(),
        name: "f.bin".into(),
        id: id.to_hex(),
        size: meta.len(),
        mtime_ns: mtime_ns(&meta).unwrap(),
        secret: None,
    };
    std::fs::write(d.join(SHARES), serde_json::to_vec(&[&share]).unwrap()).unwrap();
    let memory = Memory::open(&d).unwrap();
    assert!(!old.exists(), "the directory is gone");
    assert_eq!(memory.shares(), std::slice::from_ref(&share));
    assert_eq!(memory.unchanged_manifest(&share, &meta), Some(manifest));
    assert!(memory.kept.locked().manifests.get(&other).is_none());
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn unfinished_downloads_are_kept_until_finished_and_damage_is_ignored() {
    let d = dir("downloads");
    let memory = Memory::open(&d).unwrap();
    let entry = |out: &str| Unfinished {
        only: Vec::new(),
        target: "x".into(),
        name: "x".into(),
        id: "00".repeat(32),
        out: PathBuf::from(out),
    };
    memory.begin_download(entry("/a"));
    memory.begin_download(entry("/b"));
    memory.begin_download(entry("/a"));
    assert_eq!(memory.unfinished(), [entry("/b"), entry("/a")]);
    memory.finished(Path::new("/b"));
    assert_eq!(memory.unfinished(), [entry("/a")]);
    std::fs::write(d.join(DOWNLOADS), b"{ not json").unwrap();
    assert!(memory.unfinished().is_empty());
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_fifo_or_a_link_in_place_of_a_file_refuses_the_start() {
    let d = dir("fifo");
    let fifo =
        std::ffi::CString::new(d.join(SHARES).into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let e = Memory::open(&d).err().expect("refused").to_string();
    assert!(
        e.ends_with("shares.json is a FIFO, not a regular file: remove it"),
        "{e}"
    );
    std::fs::remove_file(d.join(SHARES)).unwrap();
    std::os::unix::fs::symlink(d.join("elsewhere"), d.join(MANIFESTS)).unwrap();
    let e = Memory::open(&d).err().expect("refused").to_string();
    assert!(e.contains("manifests is a symbolic link"), "{e}");
    std::fs::remove_file(d.join(MANIFESTS)).unwrap();
    std::os::unix::fs::symlink(d.join("elsewhere"), d.join(MANIFEST_STORE)).unwrap();
    let e = Memory::open(&d).err().expect("refused").to_string();
    assert!(e.contains("manifests.log is a symbolic link"), "{e}");
    let _ = std::fs::remove_dir_all(d);
}
