//! Peers behind NAT, as far as loopback can show it: the tracker's
//! reflection and dial-back (`WHOAMI`), seen in each peer's
//! `/api/status`. The namespace lab (routers doing NAT) is `nat_lab`.

use std::fs;
use std::process::Command;

use p2pshare::peer::dial::Path;

use crate::support::harness::{assert_same_bytes, wait_until, TestDir, STARTUP};
use crate::support::programs::{Peer, Tracker};
use crate::support::status::tracker_status;

/// A peer listening on 127.0.0.2 that reaches the tracker from 127.0.0.1,
/// as a NATed peer does from its router's address (the lab in `nat_lab`
/// does it with real NAT).
fn hidden_peer(name: &str, dir: &TestDir, tracker: &Tracker, extra: &[&str]) -> Peer {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_peer"));
    cmd.args(["--bind", "127.0.0.2", "--http", "0"])
        .args(extra)
        .args(["127.0.0.1", &tracker.port.to_string(), "0"])
        .current_dir(dir.path());
    Peer::spawn(name, cmd)
}

/// A peer whose chunk server the tracker reaches at the address its
/// connection came from is `reachable`; one listening on another address
/// (127.0.0.2, while it reaches the tracker from 127.0.0.1) is not: the
/// tracker dials only the IP it saw, never one the peer names. The one not
/// reachable holds a control connection, which the tracker's status counts.
#[test]
fn the_tracker_tells_a_peer_whether_it_is_reachable() {
    let dir = TestDir::new("nat-reach");
    let tracker = Tracker::start_with(&dir, 0, &["--http", "0"]);
    let open = Peer::start("open", dir.path(), &tracker, &["--http", "0"]);
    let hidden = hidden_peer("hidden", &dir, &tracker, &[]);
    for (peer, want) in [(&open, true), (&hidden, false)] {
        let reach = wait_until(STARTUP, "the tracker's answer", || {
            peer.status().reach.ok_or_else(|| "none yet".to_string())
        });
        assert_eq!(reach.reachable, want, "{}: {reach:?}", peer.proc.name());
        assert!(reach.observed.starts_with("127.0.0.1:"), "{reach:?}");
    }
    wait_until(STARTUP, "a control connection", || {
        let held = (
            hidden.status().reach,
            tracker_status(tracker.proc().status_page()).nat,
        );
        match &held {
            (Some(r), Some(n)) if r.control && n.control_connections == 1 => Ok(()),
            _ => Err(format!("{held:?}")),
        }
    });
    assert!(!open.status().reach.expect("an answer").control);
}

/// A seeder nobody can dial (the tracker lists it at 127.0.0.1, where
/// nothing of it listens) serves a downloader through `tracker --relay`:
/// the file arrives byte-identical, both ends show the path `relayed`,
/// and the tracker counts at least the file's bytes relayed.
#[test]
fn a_download_from_a_peer_nobody_can_dial_goes_through_the_relay() {
    let dir = TestDir::new("nat-relay");
    let tracker = Tracker::start_with(&dir, 0, &["--relay", "--http", "0"]);
    let (path, bytes) = dir.random_file("seed/hidden.bin", 3 * 1024 * 1024 + 77, 19);
    let share = path.to_str().expect("UTF-8");
    let seeder = hidden_peer("seeder", &dir, &tracker, &["--serve", "--share", share]);
    seeder.await_share();
    wait_until(
        STARTUP,
        "the seeder's control connection",
        || match seeder.status().reach {
            Some(r) if r.control => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    let mut dl = Peer::start("dl", dir.path(), &tracker, &["--http", "0"]);
    let done = dl.download("hidden.bin", Some("got.bin"));
    assert!(done.is_ok(), "{done:?}");
    let got = fs::read(dir.path().join("got.bin")).expect("the download");
    assert_same_bytes(&got, &bytes, "the relayed download");
    let relay = tracker_status(tracker.proc().status_page())
        .nat
        .and_then(|n| n.relay)
        .expect("a relay");
    assert!(relay.bytes >= bytes.len() as u64, "{relay:?}");
    let download = dl.newest_download().expect("a download");
    let paths: Vec<Path> = download.peers.iter().map(|p| p.path).collect();
    assert_eq!(paths, [Path::Relayed], "{download:?}");
    let uploads = seeder.status().uploads;
    assert!(
        !uploads.is_empty() && uploads.iter().all(|u| u.path == Path::Relayed),
        "{uploads:?}"
    );
}
