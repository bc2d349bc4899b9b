//! A shared file changed behind the peer's back no longer matches its
//! manifest: the peer stops announcing and serving it, says so once, and
//! sharing the path again shares what it holds now, under its new id only.

use std::fs::{self, OpenOptions};
use std::time::{Duration, Instant};

use crate::support::harness::{figure, random_bytes, wait_until, TestDir, CHUNK, COMMAND};
use crate::support::programs::{Peer, Tracker};
use crate::support::raw::Raw;

/// A REPL peer (`--announce-interval 1`) shares `a.bin` and `b.bin`; then
/// `a.bin` is rewritten in place (same size, other bytes) and `b.bin`
/// truncated. Within a few announce rounds the tracker lists neither,
/// `GET` and `MANIFEST` for their ids get `ERR not sharing <id>`, and the
/// peer has warned once per file. `share a.bin` again then lists `a.bin`
/// under its new id alone. Before 211f56f the peer kept announcing and
/// serving both (downloaders caught the bad chunks and banned it, but it
/// never stopped), and sharing again listed the old id beside the new one.
#[test]
fn a_shared_file_changed_in_place_is_withdrawn() {
    let dir = TestDir::new("changed");
    let tracker = Tracker::start(&dir);
    let (a, _) = dir.random_file("s/a.bin", 2 * CHUNK, 51);
    let (b, _) = dir.random_file("s/b.bin", 2 * CHUNK, 52);
    let (a_arg, b_arg) = (a.to_str().unwrap(), b.to_str().unwrap());
    let args = [
        "--announce-interval",
        "1",
        "--share",
        a_arg,
        "--share",
        b_arg,
    ];
    let mut seeder = Peer::start("seeder", &dir.sub("s"), &tracker, &args);
    let (old_a, old_b) = (seeder.await_share(), seeder.await_share());
    assert_eq!(listed(&tracker).len(), 2);

    fs::write(&a, random_bytes(2 * CHUNK, 53)).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&b)
        .and_then(|f| f.set_len(CHUNK as u64))
        .unwrap();
    let changed = Instant::now();
    wait_until(
        Duration::from_secs(10),
        "both files withdrawn",
        || match listed(&tracker).as_slice() {
            [] => Ok(()),
            rows => Err(format!("{rows:?}")),
        },
    );
    let withdrawn = changed.elapsed();
    let mut c = Raw::peer(seeder.addr);
    assert_eq!(c.ask("HELLO 1"), "OK p2pshare 1");
    for id in [&old_a, &old_b] {
        let refused = format!("ERR not sharing {id}");
        assert_eq!(c.ask(&format!("GET {id} 0")), refused);
        assert_eq!(c.ask(&format!("MANIFEST {id}")), refused);
    }
    for path in [&a, &b] {
        let warning = format!("{} changed since it was shared", path.display());
        let seen = seeder.proc.seen_within(&warning, COMMAND);
        assert_eq!(seen.len(), 1, "{warning:?}");
    }

    seeder.proc.send(&format!("share {a_arg}"));
    let new_a = seeder.await_share();
    assert_ne!(new_a, old_a);
    let rows = listed(&tracker);
    assert_eq!(rows, [format!("{new_a} {} 1 a.bin", 2 * CHUNK)]);
    figure(
        "changed in place",
        "both files unlisted after the change",
        withdrawn,
    );
}

/// A peer that announces rarely (`--announce-interval 60`, so no round
/// notices the change) shares `c.bin`, which is then rewritten, and shared
/// again at once: the tracker lists the new id only, as soon as the share
/// returns. Before 211f56f the old id stayed listed beside the new one.
#[test]
fn sharing_a_changed_file_again_replaces_its_old_id() {
    let dir = TestDir::new("reshared");
    let tracker = Tracker::start(&dir);
    let (c, _) = dir.random_file("s/c.bin", CHUNK + 10, 55);
    let c_arg = c.to_str().unwrap();
    let args = ["--announce-interval", "60", "--share", c_arg];
    let mut seeder = Peer::start("seeder", &dir.sub("s"), &tracker, &args);
    let old = seeder.await_share();
    assert_eq!(listed(&tracker), [format!("{old} {} 1 c.bin", CHUNK + 10)]);

    fs::write(&c, random_bytes(CHUNK + 10, 56)).unwrap();
    seeder.proc.send(&format!("share {c_arg}"));
    let new = seeder.await_share();
    assert_ne!(new, old);
    assert_eq!(listed(&tracker), [format!("{new} {} 1 c.bin", CHUNK + 10)]);
}

/// The tracker's `SEARCH` rows, as it sends them.
fn listed(tracker: &Tracker) -> Vec<String> {
    Raw::connect(tracker.addr()).list("SEARCH")
}
