//! The library's rules, one test each.

use super::*;

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
    f.complete(PathBuf::from("a"));
    assert_eq!(f.path(), PathBuf::from("a"));
    assert_eq!(lib.list().len(), 1);
}

#[test]
fn a_partial_entry_never_replaces_a_complete_one_and_removal_is_exact() {
    let lib = Library::default();
    let m = manifest(2);
    let full = lib.insert(SharedFile::new(
        "b".into(),
        "b".into(),
        m.clone(),
        storage(),
        ChunkSet::full(3),
        None,
    ));
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
    let f = lib.add("f".into(), path.clone(), m, None).unwrap();
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
    let old = lib.add(
        "f".into(),
        path.clone(),
        crate::storage::manifest_of(&path).unwrap(),
        None,
    );
    std::fs::write(&path, b"third").unwrap();
    let new = lib
        .add(
            "f".into(),
            path.clone(),
            crate::storage::manifest_of(&path).unwrap(),
            None,
        )
        .unwrap();
    let gone = lib.remove_others_at(&path, &new.id);
    assert_eq!(gone.len(), 1, "the old content of the same path");
    assert_eq!(gone[0].id, m2.id());
    assert!(old.is_ok());
    assert_eq!(lib.list().len(), 1);
    let _ = std::fs::remove_file(path);
}
