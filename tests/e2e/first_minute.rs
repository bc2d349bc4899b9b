//! The flow this project exists for, typed as a new user would on one
//! machine: a tracker, a peer that shares, a peer that downloads, and the
//! piped form beside them, all with one HOME and no `--state-dir`. Each
//! REPL peer gets a state directory of its own (one per listen port), so
//! none refuses to start, and one started again on its port is the same
//! peer with the same memory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::harness::{assert_same_bytes, unused_port, TestDir, COMMAND, LEAVE, STARTUP};
use crate::support::programs::{Peer, Tracker};

/// A `peer` command line as typed: no state flags, `HOME` as given and no
/// `XDG_STATE_HOME`, so the default state directory is used.
fn typed_peer(home: &Path, cwd: &Path, tracker: &Tracker, listen_port: u16) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_peer"));
    cmd.env("HOME", home)
        .env_remove("XDG_STATE_HOME")
        .args(["--bind", "127.0.0.1", "127.0.0.1"])
        .arg(tracker.port.to_string())
        .arg(listen_port.to_string())
        .current_dir(cwd);
    cmd
}

/// The default state directory of a peer of `home` (`sub`: `peer-9001`).
fn state(home: &Path, sub: &str) -> PathBuf {
    home.join(".local/state/p2pshare").join(sub)
}

/// Types `quit` and waits for a clean exit.
fn quit(peer: &mut Peer) {
    peer.proc.send("quit");
    let status = peer.proc.wait_exit(LEAVE * 5);
    assert!(status.success(), "{}: quit gave {status}", peer.proc.name());
}

#[test]
fn three_terminals_and_a_pipe_share_one_home_without_flags() {
    let dir = TestDir::new("three-terminals");
    let home = dir.sub("home");
    let tracker = Tracker::start(&dir);
    let (_, data) = dir.random_file("a/sample.txt", 741, 7);

    // Terminal 2: the sharing peer, on a port of its own.
    let port_a = unused_port();
    let mut a = Peer::spawn("a", typed_peer(&home, &dir.sub("a"), &tracker, port_a));
    a.proc.send("share sample.txt");
    a.await_share();

    // Terminal 3: the downloading peer, in another directory.
    let port_b = unused_port();
    let mut b = Peer::spawn("b", typed_peer(&home, &dir.sub("b"), &tracker, port_b));
    assert_ne!(a.id, b.id, "two peers of one user share an identity");
    b.download("sample.txt", None)
        .unwrap_or_else(|lines| panic!("download failed: {lines:?}"));
    assert_same_bytes(
        &fs::read(dir.path().join("b/sample.txt")).unwrap(),
        &data,
        "b's copy",
    );

    // The piped form, while both run: port 0, its own state directory.
    let mut c = Peer::spawn("c", typed_peer(&home, &dir.sub("c"), &tracker, 0));
    c.proc.send("download sample.txt");
    c.proc.close_stdin();
    let status = c.proc.wait_exit(COMMAND);
    assert!(status.success(), "piped download exited with {status}");
    assert_same_bytes(
        &fs::read(dir.path().join("c/sample.txt")).unwrap(),
        &data,
        "the piped copy",
    );

    for sub in [
        format!("peer-{port_a}"),
        format!("peer-{port_b}"),
        "peer-any".into(),
    ] {
        assert!(
            state(&home, &sub).join("identity.key").is_file(),
            "no identity in {sub}"
        );
    }

    // Started again on its port, `a` is the same peer and shares again.
    let a_id = a.id;
    quit(&mut a);
    let mut a = Peer::spawn(
        "a again",
        typed_peer(&home, &dir.sub("a"), &tracker, port_a),
    );
    assert_eq!(a.id, a_id, "a restarted on its port has a new identity");
    a.proc
        .expect_out("Sharing again 1 file from the last run", COMMAND);
    quit(&mut a);
    quit(&mut b);
}

/// Shares whose files are gone by the next start are forgotten, in one line
/// for all of them, and not mentioned again.
#[test]
fn gone_shares_are_forgotten_in_one_line() {
    let dir = TestDir::new("gone-shares");
    let home = dir.sub("home");
    let tracker = Tracker::start(&dir);
    let names = ["one.bin", "two.bin", "three.bin"];
    for (n, name) in names.iter().enumerate() {
        dir.random_file(&format!("a/{name}"), 1000 + n, n as u64);
    }
    let port = unused_port();
    let mut peer = Peer::spawn("a", typed_peer(&home, &dir.sub("a"), &tracker, port));
    for name in names {
        peer.proc.send(&format!("share {name}"));
        peer.await_share();
    }
    peer.proc.send("share one.bin");
    peer.await_share();
    peer.proc
        .expect_out("  (it was already shared, unchanged)", COMMAND);
    peer.proc.send("list");
    let path = dir.path().join("a/one.bin").canonicalize().unwrap();
    peer.proc
        .expect_out(&format!("  path: {}", path.display()), COMMAND);
    quit(&mut peer);

    for name in &names[..2] {
        fs::remove_file(dir.path().join("a").join(name)).unwrap();
    }
    let mut peer = Peer::spawn("a again", typed_peer(&home, &dir.sub("a"), &tracker, port));
    peer.proc
        .expect_out("Sharing again 1 file from the last run", COMMAND);
    let line = peer.proc.expect_out("Forgot ", COMMAND);
    assert!(
        line.starts_with("Forgot 2 files shared last time, now gone: "),
        "{line}"
    );
    quit(&mut peer);

    let mut peer = Peer::spawn("a third", typed_peer(&home, &dir.sub("a"), &tracker, port));
    peer.proc
        .expect_out("Sharing again 1 file from the last run", COMMAND);
    quit(&mut peer);
    assert!(
        peer.proc.seen("Forgot ").is_empty(),
        "forgotten shares came back"
    );
}

/// Piped input that ends right after ten `download` lines: every one is
/// carried out and waited for, never interrupted by the end of input
/// while it still looks its file up (it once lost a file in 8 of 19 runs).
#[test]
fn piped_input_ending_after_ten_downloads_fetches_all_ten() {
    const FILES: usize = 10;
    const RUNS: usize = 4;
    let dir = TestDir::new("ten-piped");
    let tracker = Tracker::start(&dir);
    let files: Vec<(PathBuf, Vec<u8>)> = (0..FILES)
        .map(|n| dir.random_file(&format!("s/f{n}.bin"), 3000 + n, 100 + n as u64))
        .collect();
    let paths: Vec<&Path> = files.iter().map(|(p, _)| p.as_path()).collect();
    let (_seeder, _) = Peer::seeder("seeder", &tracker, &paths);
    for run in 0..RUNS {
        let sub = format!("r{run}");
        let mut peer = Peer::start(&sub, &dir.sub(&sub), &tracker, &[]);
        for n in 0..FILES {
            peer.proc.send(&format!("download f{n}.bin"));
        }
        peer.proc.close_stdin();
        let status = peer.proc.wait_exit(COMMAND);
        assert!(status.success(), "run {run}: exited with {status}");
        for (n, (_, data)) in files.iter().enumerate() {
            let got = fs::read(dir.path().join(&sub).join(format!("f{n}.bin")));
            let got = got.unwrap_or_else(|e| panic!("run {run}: f{n}.bin: {e}"));
            assert_same_bytes(&got, data, &format!("run {run}: f{n}.bin"));
        }
    }
}

/// A tracker address that is really a peer's port (swapped ports) is named
/// as such at start, and that peer's id is not pinned as the tracker's.
#[test]
fn a_peer_port_given_as_the_tracker_is_named_at_start() {
    let dir = TestDir::new("swapped-ports");
    let tracker = Tracker::start(&dir);
    let a = Peer::start("a", &dir.sub("a"), &tracker, &[]);
    let mut b = Peer::start_port("b", &dir.sub("b"), a.addr.port(), &[]);
    let said = b
        .proc
        .seen_within("it answers as a p2pshare peer, not a tracker", STARTUP);
    assert_eq!(said.len(), 1, "no clear line at start");
    b.proc.send("search");
    let line = b.proc.expect_out("error: ", COMMAND);
    assert!(line.contains("not a tracker"), "{line}");
}

/// A listen port already in use (the tracker's, the ports given in the
/// wrong order) is refused at start with a word on the likely swap.
#[test]
fn a_listen_port_in_use_hints_at_swapped_ports() {
    let dir = TestDir::new("port-in-use");
    let home = dir.sub("home");
    let tracker = Tracker::start(&dir);
    let mut cmd = typed_peer(&home, &dir.sub("a"), &tracker, tracker.port);
    cmd.stdin(std::process::Stdio::null());
    let out = cmd.output().expect("run peer");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Address already in use"), "{err}");
    assert!(err.contains("swapped?"), "{err}");
}
