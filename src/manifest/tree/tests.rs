use sha2::{Digest, Sha256};

use super::*;
use crate::manifest::CHUNK_SIZE;

/// A file's own manifest for `data`, with chunks of `cs` bytes.
fn file(path: &str, data: &[u8], cs: u32, exec: bool) -> FileIn {
    let hashes = data
        .chunks(cs as usize)
        .map(|c| Sha256::digest(c).into())
        .collect();
    let manifest = Manifest::with_chunk_size(data.len() as u64, cs, hashes).unwrap();
    FileIn {
        path: path.to_string(),
        exec,
        manifest,
    }
}

fn sample() -> Manifest {
    build(
        4,
        vec![
            file("b/long", b"0123456789", 4, false),
            file("a", b"xy", 4, true),
            file("b/twin", b"0123456789", 4, false),
            file("empty", b"", 4, false),
        ],
        vec!["c/d".to_string()],
    )
    .unwrap()
}

#[test]
fn build_sorts_lays_out_once_per_content_and_round_trips() {
    let m = sample();
    let tree = m.as_tree().unwrap();
    let paths: Vec<_> = tree.entries().iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["a", "b/long", "b/twin", "c/d", "empty"]);
    // "xy" is one chunk, "0123456789" three; the twin adds none.
    assert_eq!(m.chunk_count(), 4);
    assert_eq!(m.size(), 12);
    assert_eq!(tree.total_size(), 22);
    assert_eq!(tree.file_count(), 4);
    let lens: Vec<_> = m.chunks().map(|c| c.len).collect();
    assert_eq!(lens, [2, 4, 4, 2]);
    assert!(m.verify_chunk(0, b"xy"));
    assert!(m.verify_chunk(3, b"89"));
    assert!(!m.verify_chunk(3, b"8"));
    let back = Manifest::decode(&m.encode()).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.id(), m.id());
}

#[test]
fn a_file_in_a_tree_keeps_the_id_it_has_alone() {
    let alone = file("x", b"hello", CHUNK_SIZE, false).manifest.id();
    let m = build(
        CHUNK_SIZE,
        vec![file("dir/x", b"hello", CHUNK_SIZE, false)],
        vec![],
    )
    .unwrap();
    match m.as_tree().unwrap().entries()[0].kind {
        EntryKind::File { id, .. } => assert_eq!(id, alone),
        EntryKind::Dir => panic!("a file became a directory"),
    }
}

#[test]
fn order_of_input_does_not_change_the_id_but_a_rename_does() {
    let one = build(
        4,
        vec![file("a", b"1", 4, false), file("b", b"2", 4, false)],
        vec![],
    )
    .unwrap();
    let two = build(
        4,
        vec![file("b", b"2", 4, false), file("a", b"1", 4, false)],
        vec![],
    )
    .unwrap();
    let renamed = build(
        4,
        vec![file("a", b"1", 4, false), file("c", b"2", 4, false)],
        vec![],
    )
    .unwrap();
    assert_eq!(one.id(), two.id());
    assert_ne!(one.id(), renamed.id());
    let exec = build(
        4,
        vec![file("a", b"1", 4, true), file("b", b"2", 4, false)],
        vec![],
    )
    .unwrap();
    assert_ne!(one.id(), exec.id());
}

#[test]
fn build_refuses_unsafe_paths() {
    let bad = [
        "..", "a/../b", "/abs", "a//b", "a/", "a\\b", "a/\u{7}", " a", "a/./b",
    ];
    for path in bad {
        let got = build(4, vec![file(path, b"1", 4, false)], vec![]);
        assert!(got.is_err(), "accepted {path:?}");
    }
    let long = "x".repeat(256);
    assert!(build(4, vec![file(&long, b"1", 4, false)], vec![]).is_err());
    let deep = vec!["d"; MAX_TREE_DEPTH + 1].join("/");
    assert!(build(4, vec![file(&deep, b"1", 4, false)], vec![]).is_err());
    let dup = vec![file("a", b"1", 4, false), file("a", b"2", 4, false)];
    assert!(matches!(
        build(4, dup, vec![]),
        Err(ManifestError::BadPath(_))
    ));
    let under = vec![file("a", b"1", 4, false), file("a/b", b"2", 4, false)];
    assert!(matches!(
        build(4, under, vec![]),
        Err(ManifestError::BadPath(_))
    ));
    let dir_and_file = build(4, vec![file("a", b"1", 4, false)], vec!["a".to_string()]);
    assert!(dir_and_file.is_err());
}

/// `sample`'s text with `from` replaced by `to`.
fn edited(from: &str, to: &str) -> String {
    let text = String::from_utf8(sample().encode()).unwrap();
    assert!(text.contains(from), "{from:?} not in {text}");
    text.replacen(from, to, 1)
}

#[test]
fn decode_refuses_hostile_and_non_canonical_trees() {
    let cases = [
        edited("f x 2", "f y 2"),
        edited(" b/long\n", " ../long\n"),
        edited(" b/long\n", " /long\n"),
        edited(" b/long\n", " b//long\n"),
        edited(" b/long\n", " b/lo\tng\n"),
        edited(" b/twin\n", " b/long\n"),
        edited(" b/twin\n", " a/twin\n"),
        edited("d c/d\n", "d b\n"),
        edited("d c/d\n", "l c/d\n"),
        edited("entries 5", "entries 6"),
        edited("entries 5", "entries 4"),
        edited("chunks 4", "chunks 5"),
        edited("f x 2", "f x 3"),
        edited("chunk-size 4", "chunk-size 5"),
        edited("p2pshare-tree 1", "p2pshare-tree 2"),
        edited("entries 5", "entries 100001"),
    ];
    for case in cases {
        assert!(
            Manifest::decode(case.as_bytes()).is_err(),
            "accepted {case:?}"
        );
    }
    let good = sample().encode();
    for cut in 0..good.len() {
        assert!(Manifest::decode(&good[..cut]).is_err());
    }
}

#[test]
fn a_swapped_chunk_hash_is_caught_at_decode() {
    let text = String::from_utf8(sample().encode()).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let n = lines.len();
    lines.swap(n - 1, n - 2);
    let swapped = lines.join("\n") + "\n";
    let err = Manifest::decode(swapped.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
}

#[test]
fn content_of_chunk_finds_each_chunk_and_nothing_past_the_end() {
    let m = sample();
    let tree = m.as_tree().unwrap();
    assert_eq!(tree.content_of_chunk(0).unwrap().size, 2);
    for i in 1..4 {
        assert_eq!(tree.content_of_chunk(i).unwrap().first_chunk, 1);
    }
    assert!(tree.content_of_chunk(4).is_none());
    assert!(m.chunk(4).is_none());
}

#[test]
fn an_empty_tree_is_a_tree_of_no_chunks() {
    let m = build(CHUNK_SIZE, vec![], vec![]).unwrap();
    assert_eq!(m.chunk_count(), 0);
    assert_eq!(Manifest::decode(&m.encode()).unwrap(), m);
}
