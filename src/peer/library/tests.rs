//! The library's rules, one test each.

use super::*;
use crate::storage::FileStorage;
use std::fs::File;

fn manifest(n: u8) -> Manifest {
    Manifest::with_chunk_size(30, 10, vec![[n; 32]; 3]).expect("manifest")
}

fn storage() -> Arc<dyn Storage> {
    Arc::new(FileStorage::new(
        File::open("/dev/null").expect("/dev/null"),
    ))
}

#[test]
fn partial_entries_track_their_chunks_and_are_listed_apart() {
    let lib = Library::default();
    let m = manifest(1);
    let f = lib
        .add_partial(
            "a".into(),
            Path::new(".a.part"),
            m.clone(),
            storage(),
            ChunkSet::from_fn(3, |i| i == 1),
            None,
        )
        .expect("a new entry");
    assert!(f.has(1) && !f.has(0) && !f.is_complete());
    assert!(lib.list().is_empty());
    assert_eq!(lib.partial().len(), 1);
    f.add_uploaded(10);
    f.add_chunk(0);
    f.add_chunk(2);
    assert!(f.is_complete(), "every chunk present");
    f.add_uploaded(5);
    assert_eq!((f.uploaded(), f.uploaded_while_partial()), (15, 10));
    let d = crate::testing::temp_dir("library-complete");
    std::fs::write(d.join("a"), b"abc").unwrap();
    lib.complete(&f, d.join("a")).unwrap();
    assert_eq!(f.path(), d.join("a"));
    assert_eq!(lib.list().len(), 1);
    assert!(!f.changed());
    assert!(!f.fresh_first(), "downloaded here: offers all it has");
}

/// A file shared here offers fresh chunks first once complete; one
/// downloaded here does not (issue 22).
#[test]
fn only_a_file_shared_here_offers_fresh_chunks_first() {
    let lib = Library::default();
    let d = crate::testing::temp_dir("library-fresh-first");
    std::fs::write(d.join("s"), b"abc").unwrap();
    let shared = lib.add("s".into(), d.join("s"), manifest(7), None).unwrap();
    assert!(shared.file.fresh_first());
    let partial = lib
        .add_partial(
            "p".into(),
            Path::new(".p.part"),
            manifest(8),
            storage(),
            ChunkSet::empty(3),
            None,
        )
        .expect("a new entry");
    assert!(!partial.fresh_first(), "partial: offers what it has");
}

#[test]
fn a_partial_entry_never_replaces_a_complete_one_and_removal_is_exact() {
    let lib = Library::default();
    let m = manifest(2);
    let full = lib
        .add_partial(
            "b".into(),
            Path::new("b"),
            m.clone(),
            storage(),
            ChunkSet::full(3),
            None,
        )
        .expect("a new entry");
    let again = lib.add_partial(
        "b".into(),
        Path::new("p"),
        m.clone(),
        storage(),
        ChunkSet::empty(3),
        None,
    );
    assert!(again.is_none(), "the complete entry stays");
    assert!(Arc::ptr_eq(&full, &lib.get(&full.id).expect("still there")));
    let other = Arc::new(SharedFile::new(
        "b".into(),
        "b".into(),
        m,
        storage(),
        ChunkSet::empty(3),
        None,
        true,
    ));
    assert!(!lib.remove(&other), "not the library's entry");
    assert!(lib.remove(&full));
    assert!(lib.get(&full.id).is_none());
}

#[test]
fn a_file_changed_in_place_is_dropped_once_and_queued_for_unregistering() {
    let path = std::env::temp_dir().join(format!("p2pshare-lib-{}", std::process::id()));
    std::fs::write(&path, b"first").unwrap();
    let lib = Library::default();
    let m = crate::storage::manifest_of(&path).unwrap();
    let f = lib.add("f".into(), path.clone(), m, None).unwrap().file;
    assert!(!f.changed());
    lib.drop_changed();
    assert_eq!(lib.list().len(), 1, "unchanged files stay");
    std::fs::write(&path, b"second, longer").unwrap();
    assert!(f.changed());
    lib.drop_changed();
    assert!(lib.list().is_empty());
    assert!(!lib.withdraw_changed(&f), "dropped once");
    assert_eq!(lib.take_withdrawn(), [f.id]);
    assert!(lib.take_withdrawn().is_empty());

    let m2 = crate::storage::manifest_of(&path).unwrap();
    let old = lib.add("f".into(), path.clone(), m2.clone(), None).unwrap();
    assert!(old.replaced.is_empty());
    std::fs::write(&path, b"third").unwrap();
    let new = lib
        .add(
            "f".into(),
            path.clone(),
            crate::storage::manifest_of(&path).unwrap(),
            None,
        )
        .unwrap();
    assert_eq!(new.replaced.len(), 1, "the old content of the same path");
    assert_eq!(new.replaced[0].id, m2.id());
    assert_eq!(lib.list().len(), 1);
    let _ = std::fs::remove_file(path);
}

#[test]
fn the_same_content_shared_again_keeps_one_entry_and_its_path() {
    let d = crate::testing::temp_dir("library-again");
    let (a, b) = (d.join("a"), d.join("b"));
    std::fs::write(&a, b"same").unwrap();
    std::fs::write(&b, b"same").unwrap();
    let m = crate::storage::manifest_of(&a).unwrap();
    let lib = Library::default();
    let first = lib.add("a".into(), a.clone(), m.clone(), None).unwrap();
    let again = lib.add("a".into(), a.clone(), m.clone(), None).unwrap();
    assert!(again.replaced.is_empty(), "same listing: nothing withdrawn");
    assert!(lib
        .get(&m.id())
        .is_some_and(|f| Arc::ptr_eq(&f, &again.file)));
    // Now at b: a's later contents must not replace the entry at b.
    let moved = lib.add("b".into(), b.clone(), m.clone(), None).unwrap();
    assert!(moved.replaced.is_empty());
    std::fs::write(&a, b"other").unwrap();
    let other = crate::storage::manifest_of(&a).unwrap();
    let at_a = lib.add("a".into(), a, other, None).unwrap();
    assert!(
        at_a.replaced.is_empty(),
        "nothing of a's is shared any more"
    );
    assert_eq!(lib.list().len(), 2);
    drop(first);
    // A private share of the same content replaces the public listing.
    let private = lib.add("b".into(), b, m, Some(Secret([1; 16]))).unwrap();
    assert_eq!(private.replaced.len(), 1);
    let listed = private.file.listed;
    assert!(lib.find_listed(&listed).is_some());
    assert!(lib.find_listed(&moved.file.listed).is_none());
}

#[test]
fn shared_files_hold_no_descriptor_beyond_the_cache() {
    let d = crate::testing::temp_dir("library-fds");
    let lib = Library::default();
    let n = crate::bounds::MAX_OPEN_SHARES + 10;
    let files: Vec<_> = (0..n)
        .map(|i| {
            let path = d.join(format!("f{i}"));
            std::fs::write(&path, i.to_string()).unwrap();
            let m = crate::storage::manifest_of(&path).unwrap();
            lib.add(format!("f{i}"), path, m, None).unwrap().file
        })
        .collect();
    assert_eq!(lib.open_files(), 0, "none opened to share");
    for (i, f) in files.iter().enumerate() {
        let chunk = f.manifest.chunk(0).unwrap();
        let mut buf = vec![0; chunk.len as usize];
        f.storage().read_chunk(chunk, &mut buf).unwrap();
        assert_eq!(buf, i.to_string().as_bytes());
    }
    assert_eq!(lib.open_files(), crate::bounds::MAX_OPEN_SHARES);
}
