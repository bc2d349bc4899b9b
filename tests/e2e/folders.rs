//! Folders: `peer send DIR` and `peer get TICKET` recreate a tree byte for
//! byte (nested and empty directories, empty and chunk-edge files, an
//! executable, twins, UTF-8 names); a re-share of what arrived has the
//! same id; `--only` fetches only what it selects; symlinks are skipped
//! when sharing, never followed; several paths make one ticket; a folder
//! through a tracker, its download killed and resumed.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::Command;

use p2pshare::ticket::Ticket;

use crate::support::harness::{random_bytes, Proc, TestDir, CHUNK, COMMAND, STARTUP};
use crate::support::programs::{Peer, Tracker};
use crate::support::status::fetched;

const PEER: &str = env!("CARGO_BIN_EXE_peer");

/// `peer send --bind 127.0.0.1 EXTRA... PATHS...`; returns it and its ticket.
fn send(dir: &Path, paths: &[&Path], extra: &[&str]) -> (Proc, String) {
    let mut cmd = Command::new(PEER);
    cmd.args(["send", "--bind", "127.0.0.1"])
        .args(extra)
        .args(paths)
        .current_dir(dir);
    let proc = Proc::spawn("sender", cmd);
    let line = proc.expect_out("Ticket: ", STARTUP);
    let ticket = line["Ticket: ".len()..].trim().to_string();
    (proc, ticket)
}

/// `peer get --bind 127.0.0.1 ARGS...` in `cwd`, run to its end.
fn get(cwd: &Path, args: &[&str]) -> Proc {
    let mut cmd = Command::new(PEER);
    cmd.args(["get", "--bind", "127.0.0.1"])
        .args(args)
        .current_dir(cwd);
    let mut proc = Proc::spawn("getter", cmd);
    let status = proc.wait_exit(COMMAND);
    assert!(status.success(), "peer get failed: {status:?}");
    proc
}

/// What a tree holds, as a person comparing two trees would look: each
/// path with its type, and for a file its bytes and executable bit.
fn tree_of(root: &Path) -> BTreeMap<String, (char, bool, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (char, bool, Vec<u8>)>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                out.insert(rel, ('d', false, Vec::new()));
                walk(root, &path, out);
            } else if meta.is_file() {
                let exec = meta.permissions().mode() & 0o100 != 0;
                out.insert(rel, ('f', exec, fs::read(&path).unwrap()));
            } else {
                out.insert(rel, ('l', false, Vec::new()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn write(path: &Path, data: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

/// The sample tree of the issue, under `root`.
fn sample_tree(root: &Path) {
    let twin = random_bytes(CHUNK + 7, 3);
    for (rel, len) in [
        ("one", 1),
        ("edge/below", CHUNK - 1),
        ("edge/exact", CHUNK),
        ("edge/above", CHUNK + 1),
        ("deep/a/b/c/d.txt", 100),
        ("ünïcødé/名前.txt", 50),
    ] {
        write(&root.join(rel), &random_bytes(len, len as u64));
    }
    write(&root.join("empty.bin"), b"");
    write(&root.join("twins/first"), &twin);
    write(&root.join("twins/second"), &twin);
    write(&root.join("bin/run.sh"), b"#!/bin/sh\necho hi\n");
    fs::set_permissions(root.join("bin/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir_all(root.join("empty/dir")).unwrap();
}

fn id_of(ticket: &str) -> String {
    ticket.parse::<Ticket>().unwrap().id.to_hex()
}

#[test]
fn a_folder_arrives_whole_and_a_reshare_has_the_same_id() {
    let dir = TestDir::new("folder-round-trip");
    let src = dir.sub("s/album");
    sample_tree(&src);
    let (_sender, ticket) = send(dir.path(), &[&src], &[]);
    let out = dir.sub("r");
    let getter = get(&out, &[&ticket]);
    assert!(!getter.seen("Successfully downloaded: album").is_empty());
    assert_eq!(
        tree_of(&out.join("album")),
        tree_of(&src),
        "the trees differ"
    );
    // No partial directory left beside it.
    assert_eq!(dir.entries("r"), ["album"]);

    // What arrived, shared again, is the same folder.
    let (_again, ticket2) = send(dir.path(), &[&out.join("album")], &[]);
    assert_eq!(id_of(&ticket2), id_of(&ticket));

    // Fetched again into the same place: refused, nothing touched.
    let mut cmd = Command::new(PEER);
    cmd.args(["get", "--bind", "127.0.0.1", &ticket])
        .current_dir(&out);
    let mut again = Proc::spawn("again", cmd);
    assert_eq!(again.wait_exit(COMMAND).code(), Some(1));
    assert_eq!(tree_of(&out.join("album")), tree_of(&src));
}

#[test]
fn only_fetches_the_selected_files() {
    let dir = TestDir::new("folder-only");
    let src = dir.sub("s/mix");
    write(&src.join("keep/a.txt"), &random_bytes(3 * CHUNK, 1));
    write(&src.join("keep/b.txt"), &random_bytes(10, 2));
    write(&src.join("skip/big.bin"), &random_bytes(8 * CHUNK, 3));
    write(&src.join("top.txt"), &random_bytes(20, 4));
    let (_sender, ticket) = send(dir.path(), &[&src], &[]);
    let out = dir.sub("r");
    let getter = get(&out, &["--only", "*.txt", &ticket]);
    let got = tree_of(&out.join("mix"));
    let want: Vec<&str> = vec!["keep", "keep/a.txt", "keep/b.txt", "top.txt"];
    assert_eq!(got.keys().map(String::as_str).collect::<Vec<_>>(), want);
    assert_eq!(
        got["keep/a.txt"].2,
        fs::read(src.join("keep/a.txt")).unwrap()
    );
    // Bytes received: the selected files', not the tree's.
    let line = getter.seen(" bytes (");
    let words: Vec<&str> = line[0].split_whitespace().collect();
    let at = words.iter().position(|w| *w == "bytes").unwrap();
    let bytes: u64 = words[at - 1].parse().unwrap();
    assert!(line[0].contains("3 files, "), "{line:?}");
    assert_eq!(bytes, (3 * CHUNK + 10 + 20) as u64, "{line:?}");
}

#[test]
fn symlinks_and_excluded_files_are_left_out_and_never_followed() {
    let dir = TestDir::new("folder-links");
    let src = dir.sub("s/tree");
    let secret = dir.path().join("secret.txt");
    fs::write(&secret, b"outside the folder").unwrap();
    write(&src.join("kept.txt"), b"kept");
    write(&src.join("target/junk.o"), b"junk");
    symlink(&secret, src.join("link-to-secret")).unwrap();
    symlink(dir.path(), src.join("link-to-dir")).unwrap();
    let (sender, ticket) = send(dir.path(), &[&src], &["--exclude", "target"]);
    assert!(
        !sender.seen("skipped 2 symlinks").is_empty(),
        "{:?}",
        sender.seen("skipped")
    );
    let out = dir.sub("r");
    get(&out, &[&ticket]);
    let got = tree_of(&out.join("tree"));
    assert_eq!(
        got.keys().map(String::as_str).collect::<Vec<_>>(),
        ["kept.txt"]
    );
}

#[test]
fn several_paths_make_one_folder_and_one_ticket() {
    let dir = TestDir::new("folder-several");
    let base = dir.sub("s/docs");
    let a = base.join("a.txt");
    write(&a, b"alpha");
    let sub = base.join("sub");
    write(&sub.join("b.txt"), b"beta");
    let (sender, ticket) = send(dir.path(), &[&a, &sub], &[]);
    assert_eq!(sender.seen("Ticket: ").len(), 1);
    let out = dir.sub("r");
    get(&out, &[&ticket]);
    let got = tree_of(&out.join("docs"));
    assert_eq!(
        got.keys().map(String::as_str).collect::<Vec<_>>(),
        ["a.txt", "sub", "sub/b.txt"]
    );
}

/// A folder served by a `--serve` peer through a tracker (capped at
/// 2 MiB/s), fetched by a REPL peer that is SIGKILLed once some chunks
/// are in: nothing appears at the output, the partial directory keeps what
/// was verified, and a new peer's `download` fetches only the rest; the
/// folder arrives whole, and `/api/status` counted its files.
#[test]
fn a_killed_folder_download_resumes_with_only_the_missing_chunks() {
    let dir = TestDir::new("folder-killed");
    let src = dir.sub("s/set");
    for i in 0..8 {
        write(
            &src.join(format!("part{i}.bin")),
            &random_bytes(3 * CHUNK / 2, i),
        );
    }
    write(&src.join("notes/readme.txt"), b"eight parts");
    let tracker = Tracker::start(&dir);
    let (_seeder, _) = Peer::seeder_with("seeder", &tracker, &[&src], &["--max-upload", "2M"]);
    let dl_dir = dir.sub("dl");
    let args = ["--http", "0", "--patience", "2"];
    let mut first = Peer::start("first", &dl_dir, &tracker, &args);
    first.proc.send("download set");
    let seen = fetched(&first.await_fetched(6));
    first.proc.kill();
    let entries = dir.entries("dl");
    assert!(!entries.contains(&"set".to_string()), "{entries:?}");
    assert!(
        entries
            .iter()
            .any(|e| e.starts_with(".set.") && e.ends_with(".partdir")),
        "{entries:?}"
    );

    let mut second = Peer::start("second", &dl_dir, &tracker, &args);
    second.download("set", None).expect("the resumed download");
    let download = second.ended_download();
    let total = download.total_chunks;
    assert_eq!(total, 8 * 2 + 1, "{download:?}");
    let resumed = total - fetched(&download);
    assert!(
        resumed >= seen && resumed < total,
        "resumed {resumed} of {total}, {seen} seen"
    );
    assert_eq!((download.files_done, download.files_total), (9, 9));
    assert_eq!(tree_of(&dl_dir.join("set")), tree_of(&src));
    assert_eq!(dir.entries("dl"), ["set"], "no partial directory left");
}

/// Symlinks planted where a folder download writes: at the output name,
/// and inside a partial directory left as if by an earlier attempt (a file
/// of the tree made a link to a canary outside). The canary is never
/// written, whatever the download does.
#[test]
fn symlinks_planted_where_a_folder_is_written_are_never_followed() {
    let dir = TestDir::new("folder-planted");
    let src = dir.sub("s/pics");
    write(&src.join("a.bin"), &random_bytes(CHUNK + 5, 7));
    write(&src.join("sub/b.bin"), &random_bytes(100, 8));
    let (_sender, ticket) = send(dir.path(), &[&src], &[]);
    let canary = dir.path().join("canary");
    fs::write(&canary, b"untouched").unwrap();

    // At the output: refused, nothing touched.
    let out = dir.sub("r1");
    symlink(dir.sub("elsewhere"), out.join("pics")).unwrap();
    let mut cmd = Command::new(PEER);
    cmd.args(["get", "--bind", "127.0.0.1", &ticket])
        .current_dir(&out);
    let mut refused = Proc::spawn("refused", cmd);
    assert_eq!(refused.wait_exit(COMMAND).code(), Some(1));
    assert!(fs::read_dir(dir.path().join("elsewhere"))
        .unwrap()
        .next()
        .is_none());

    // Inside the partial directory: a file of the tree is a link out.
    let out = dir.sub("r2");
    let part = out.join(format!(".pics.{}.partdir", &id_of(&ticket)[..12]));
    fs::create_dir_all(part.join("sub")).unwrap();
    symlink(&canary, part.join("a.bin")).unwrap();
    symlink(&canary, part.join("sub/b.bin")).unwrap();
    let mut cmd = Command::new(PEER);
    cmd.args(["get", "--bind", "127.0.0.1", &ticket])
        .current_dir(&out);
    let mut planted = Proc::spawn("planted", cmd);
    let status = planted.wait_exit(COMMAND);
    assert_eq!(fs::read(&canary).unwrap(), b"untouched");
    if status.success() {
        assert_eq!(tree_of(&out.join("pics")), tree_of(&src));
    }
}

/// A folder swarms like a file: three downloaders started together on a
/// seeder capped at 4 MiB/s, of a 12 MiB folder of six files, each get it
/// whole, fetch chunks from the others while those are still downloading,
/// and the seeder uploads less than twice the folder.
#[test]
fn downloaders_of_a_folder_serve_each_other() {
    let dir = TestDir::new("folder-swarm");
    let src = dir.sub("s/crowd");
    for i in 0..6 {
        write(
            &src.join(format!("d{}/f{i}.bin", i % 2)),
            &random_bytes(4 * CHUNK, 50 + i),
        );
    }
    let tracker = Tracker::start(&dir);
    let args = ["--max-upload", "4M", "--http", "0"];
    let (seeder, _) = Peer::seeder_with("seeder", &tracker, &[&src], &args);
    let mut dls: Vec<Peer> = (0..3)
        .map(|i| {
            Peer::start(
                &format!("dl{i}"),
                &dir.sub(&format!("dl{i}")),
                &tracker,
                &["--http", "0"],
            )
        })
        .collect();
    for dl in &mut dls {
        dl.proc.send("download crowd");
    }
    let mut from_partial = 0;
    for (i, dl) in dls.iter().enumerate() {
        dl.finish_download(COMMAND)
            .unwrap_or_else(|l| panic!("dl{i}: {l:?}"));
        assert_eq!(
            tree_of(&dir.path().join(format!("dl{i}/crowd"))),
            tree_of(&src),
            "dl{i}"
        );
        from_partial += dl.ended_download().from_partial_bytes;
    }
    assert!(from_partial > 0, "no downloader served another");
    let status = seeder.status();
    let uploaded = status
        .shared
        .iter()
        .find(|f| f.name == "crowd")
        .unwrap()
        .uploaded;
    assert!(
        uploaded < 2 * 24 * CHUNK as u64,
        "the seeder uploaded {uploaded} bytes"
    );
}
