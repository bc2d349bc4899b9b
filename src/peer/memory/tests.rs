//! Remembering shares and downloads in a state directory.

use super::*;
use crate::peer::library::Library;

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
        .unwrap();
    let memory = Memory::open(&d).unwrap();
    memory.share(&file);
    memory.share(&file);
    let shares = Memory::open(&d).unwrap().shares();
    assert_eq!(shares.len(), 1, "once per path");
    assert_eq!(secret_of(&shares[0]), Ok(Some(secret)));
    assert_eq!(memory.unchanged_manifest(&shares[0]), Some(manifest));
    std::fs::write(&path, b"other bytes, longer").unwrap();
    assert_eq!(memory.unchanged_manifest(&shares[0]), None, "changed");
    memory.forget_share(&file.id);
    assert!(memory.shares().is_empty());
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn unfinished_downloads_are_kept_until_finished_and_damage_is_ignored() {
    let d = dir("downloads");
    let memory = Memory::open(&d).unwrap();
    let entry = |out: &str| Unfinished {
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
    let _ = std::fs::remove_dir_all(d);
}
