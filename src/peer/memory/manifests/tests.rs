//! The manifest store: what it trusts, cuts and compacts.

use super::*;

fn dir(test: &str) -> crate::testing::TempDir {
    crate::testing::temp_dir(&format!("manifests-{test}"))
}

/// `n` encoded manifests (any bytes do: the store checks hashes only).
fn records(n: usize, len: usize) -> Vec<(FileId, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let mut bytes: Vec<u8> = (0..len).map(|j| j as u8).collect();
            bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
            (FileId(Sha256::digest(&bytes).into()), bytes)
        })
        .collect()
}

fn put(store: &mut ManifestStore, recs: &[(FileId, Vec<u8>)]) {
    store
        .put_all(recs.iter().map(|(id, b)| (*id, b.as_slice())))
        .unwrap();
}

#[test]
fn records_survive_a_restart_once_each_and_a_torn_tail_is_cut() {
    let d = dir("torn");
    let path = d.join("m");
    let recs = records(3, 100);
    let mut store = ManifestStore::open(&path).unwrap();
    put(&mut store, &recs);
    put(&mut store, &recs[..1]);
    let len = std::fs::metadata(&path).unwrap().len();
    assert_eq!(
        len,
        MAGIC.len() as u64 + 3 * 136,
        "an id stored is not appended again"
    );
    // A crash in the middle of appending a fourth.
    let torn = records(4, 100).pop().unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(&torn.0 .0).unwrap();
    f.write_all(&100u32.to_be_bytes()).unwrap();
    f.write_all(&torn.1[..40]).unwrap();
    drop(f);
    let store = ManifestStore::open(&path).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len, "cut");
    for (id, bytes) in &recs {
        assert_eq!(store.get(id).as_ref(), Some(bytes));
    }
    assert!(store.get(&torn.0).is_none());
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_record_that_does_not_hash_to_its_id_is_never_returned() {
    let d = dir("foreign");
    let path = d.join("m");
    let recs = records(2, 50);
    let mut store = ManifestStore::open(&path).unwrap();
    put(&mut store, &recs);
    // One byte of the first record's manifest flipped on disk after open:
    // the read checks again.
    let at = MAGIC.len() as u64 + HEAD + 10;
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&[recs[0].1[10] ^ 1], at).unwrap();
    assert!(store.get(&recs[0].0).is_none());
    // And at the next open it is not indexed; the other one is.
    let store = ManifestStore::open(&path).unwrap();
    assert!(!store.contains(&recs[0].0));
    assert_eq!(store.get(&recs[1].0).as_ref(), Some(&recs[1].1));
    // A file that is not a store of ours is started afresh.
    std::fs::write(&path, b"something else entirely").unwrap();
    let store = ManifestStore::open(&path).unwrap();
    assert!(store.index.is_empty());
    assert_eq!(std::fs::read(&path).unwrap(), MAGIC);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn forgotten_records_stay_forgotten_and_a_mostly_dead_file_is_compacted() {
    let d = dir("compact");
    let path = d.join("m");
    // 4,000 records of 200 bytes: about 0.9 MB, over the slack.
    let recs = records(4000, 200);
    let mut store = ManifestStore::open(&path).unwrap();
    put(&mut store, &recs);
    let full = std::fs::metadata(&path).unwrap().len();
    let ids: Vec<FileId> = recs.iter().map(|(id, _)| *id).collect();
    // Dead bytes (records and their tombstones) under half: not compacted.
    store.forget_all(&ids[..1700]).unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() > full);
    let reopened = ManifestStore::open(&path).unwrap();
    assert!(!reopened.contains(&ids[0]) && reopened.contains(&ids[1700]));
    // More than half: compacted to what is live.
    store.forget_all(&ids[1700..2200]).unwrap();
    let live = MAGIC.len() as u64 + 1800 * 236;
    assert_eq!(std::fs::metadata(&path).unwrap().len(), live);
    for (id, bytes) in &recs[2200..] {
        assert_eq!(store.get(id).as_ref(), Some(bytes));
    }
    put(&mut store, &recs[..1]);
    let store = ManifestStore::open(&path).unwrap();
    assert_eq!(store.index.len(), 1801);
    assert!(store.get(&ids[1]).is_none() && store.get(&ids[0]).is_some());
    let _ = std::fs::remove_dir_all(d);
}
