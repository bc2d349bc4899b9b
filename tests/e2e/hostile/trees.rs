//! Hostile folder manifests: a fake peer shares manifests that hash to
//! their ids but describe trees no downloader may write (paths that climb
//! out, absolute or empty components, control characters, names and paths
//! over the bounds, too deep, listed twice, a path under a file, too many
//! entries, over 16 MiB). Each download is refused with one line naming
//! the reason, and nothing is left on disk.

use crate::support::fakes::FakeSpec;
use crate::support::harness::TestDir;
use crate::support::programs::{Peer, Tracker};

/// A tree manifest listing these entry lines, whatever they say.
fn tree(entries: &[String]) -> Vec<u8> {
    let mut text = format!(
        "p2pshare-tree 1\nchunk-size 524288\nentries {}\n",
        entries.len()
    );
    for e in entries {
        text.push_str(e);
        text.push('\n');
    }
    text.push_str("chunks 0\n");
    text.into_bytes()
}

/// An empty file at `path` (its id is any: the path is refused first).
fn file(path: &str) -> String {
    format!("f - 0 {} {path}", "0".repeat(64))
}

#[test]
fn hostile_tree_manifests_are_refused_before_anything_is_written() {
    let dir = TestDir::new("hostile-trees");
    let tracker = Tracker::start(&dir);
    let dl_dir = dir.sub("dl");
    let mut dl = Peer::start("downloader", &dl_dir, &tracker, &[]);
    let deep = vec!["d"; 65].join("/");
    let long_path = format!("{}/x", vec!["y".repeat(200); 21].join("/"));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("climbs out", tree(&[file("../escape")])),
        ("absolute", tree(&[file("/etc/passwd")])),
        ("empty component", tree(&[file("a//b")])),
        ("control character", tree(&[file("a\u{1b}b")])),
        ("backslash", tree(&[file("a\\b")])),
        ("long name", tree(&[file(&"n".repeat(256))])),
        ("long path", tree(&[file(&long_path)])),
        ("too deep", tree(&[file(&deep)])),
        ("twice", tree(&[file("a"), file("a")])),
        ("under a file", tree(&[file("a"), file("a/b")])),
        ("dir and file", tree(&["d a".into(), file("a")])),
        ("symlink entry", tree(&["l a".into()])),
        (
            "too many entries",
            b"p2pshare-tree 1\nchunk-size 524288\nentries 100001\nchunks 0\n".to_vec(),
        ),
        ("over 16 MiB", {
            let mut big = tree(&[file("a")]);
            big.resize(16 * 1024 * 1024 + 1, b'\n');
            big
        }),
    ];
    let mut fakes = Vec::new();
    for (n, (what, bytes)) in cases.into_iter().enumerate() {
        let fake = FakeSpec::of_bytes(bytes).start();
        let name = format!("evil{n}");
        fake.register_claiming(tracker.addr(), "REGISTER", 0, &name);
        let refused = dl
            .download(&name, None)
            .expect_err(&format!("{what}: the download did not fail"));
        let line = refused.join(" ");
        assert!(
            line.contains("no peer supplied a valid manifest"),
            "{what}: {line}"
        );
        assert_eq!(
            std::fs::read_dir(&dl_dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains("evil"))
                .collect::<Vec<_>>(),
            Vec::<String>::new(),
            "{what}: something was written"
        );
        fakes.push(fake);
    }
}
