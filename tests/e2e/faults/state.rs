//! State files that fail closed (issue 20): what a tracker or a peer does
//! at start when a file in its state directory is damaged, missing, a
//! symbolic link or a FIFO. Each is refused with one `error:` line naming
//! the file and the fix, exit 1, and the file (or what a link points at)
//! is left as it was.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::harness::{figure, Proc, TestDir, LEAVE, STARTUP};
use crate::support::programs::{Peer, Tracker};

/// `program` with `args`, which must refuse to start: its one `error:` line
/// on stderr once it has exited with status 1, and how long that took.
fn refused(name: &str, program: &str, args: &[&str]) -> (String, Duration) {
    let started = Instant::now();
    let mut cmd = Command::new(program);
    cmd.args(["--bind", "127.0.0.1"]).args(args);
    let mut proc = Proc::spawn(name, cmd);
    let status = proc.await_exit(STARTUP);
    let took = started.elapsed();
    assert_eq!(status.code(), Some(1), "{name}: {status}");
    let errors = proc.seen(": error: ");
    assert_eq!(errors.len(), 1, "{name}: one error line: {errors:?}");
    let (_, line) = errors[0].split_once(" | ").expect("a tagged line");
    (line.to_string(), took)
}

/// A peer with state directory `state` and the tracker at `port`, which
/// must refuse to start.
fn peer_refused(name: &str, state: &Path, port: u16) -> (String, Duration) {
    let state = state.to_str().expect("test paths are UTF-8");
    let port = port.to_string();
    let args = ["--state-dir", state, "127.0.0.1", &port, "0"];
    refused(name, env!("CARGO_BIN_EXE_peer"), &args)
}

/// The tracker's arguments with state directory `state`.
fn tracker_args(state: &Path) -> [&str; 3] {
    [
        "--state-dir",
        state.to_str().expect("test paths are UTF-8"),
        "0",
    ]
}

/// A tracker started in state directory `state`, and its id line.
fn tracker_started(name: &str, state: &Path) -> (Proc, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tracker"));
    cmd.args(["--bind", "127.0.0.1"]).args(tracker_args(state));
    let proc = Proc::spawn(name, cmd);
    let id = proc.expect_out("Tracker id: ", STARTUP);
    (proc, id)
}

/// The error line of a tracker in state directory `state`, which must
/// refuse to start.
fn tracker_refused(name: &str, state: &Path) -> String {
    refused(name, env!("CARGO_BIN_EXE_tracker"), &tracker_args(state)).0
}

/// A peer's state directory after one run against `tracker` that pinned
/// it (a `search`, then end of input): identity, pin and memory written.
fn first_run(dir: &TestDir, tracker: &Tracker) -> PathBuf {
    let state = dir.path().join("peer-state");
    let state_arg = state.to_str().expect("a UTF-8 path");
    let mut p = Peer::start("p", &dir.sub("p"), tracker, &["--state-dir", state_arg]);
    assert_eq!(p.search(""), []);
    assert_eq!(p.proc.wait_exit(LEAVE).code(), Some(0));
    state
}

/// A pin line cut short (as a crash mid-append left it) or with a byte
/// that is not UTF-8: the peer refuses to start, naming `known_trackers`
/// and the fix, and leaves the file as it was. Before, it read no pin
/// from such a line, pinned whichever tracker answered and appended it.
#[test]
fn a_damaged_pin_file_refuses_the_start() {
    let dir = TestDir::new("pin-damaged");
    let tracker = Tracker::start(&dir);
    let state = first_run(&dir, &tracker);
    let known = state.join("known_trackers");
    let whole = fs::read(&known).expect("the pin");
    let cut = whole[..whole.len() - 6].to_vec();
    let mut not_utf8 = whole.clone();
    let at = not_utf8.len() - 3;
    not_utf8[at] = 0xff;
    for (n, (bytes, why)) in [
        (cut, "line 1 has no whole tracker id"),
        (not_utf8, "line 1 is not UTF-8"),
    ]
    .into_iter()
    .enumerate()
    {
        fs::write(&known, &bytes).unwrap();
        let (line, took) = peer_refused(&format!("p{n}"), &state, tracker.port);
        assert_eq!(
            line,
            format!(
                "peer: error: cannot start the peer: {} is damaged ({why}): fix or remove \
                 that line (a tracker with no line is pinned again at first contact), \
                 or pass --tracker-id ID",
                known.display()
            )
        );
        assert_eq!(fs::read(&known).unwrap(), bytes, "left as it was");
        figure("pin-damaged", &format!("refused ({why}) after"), took);
    }
}

/// A tracker's identity with its certificate missing, its key garbage, or
/// its key a symbolic link to a file of mode 0644: each refused with the
/// file named, the key never replaced, the link's target never `chmod`ed.
/// Put back whole, it is the same tracker. Before, a missing certificate
/// made a new key over the old one (a new id), and the start-up
/// permission fix set the link's target to 0600.
#[test]
fn an_identity_is_never_replaced_nor_followed_through_a_link() {
    let dir = TestDir::new("identity-files");
    let state = dir.path().join("tracker-state");
    let (key, cert) = (state.join("identity.key"), state.join("identity.crt"));
    let (mut first, id) = tracker_started("first", &state);
    first.kill();
    let (key_bytes, cert_bytes) = (fs::read(&key).unwrap(), fs::read(&cert).unwrap());
    let (s, k, c) = (state.display(), key.display(), cert.display());
    let prefix = format!("tracker: error: cannot load or create the identity in {s}: ");

    fs::remove_file(&cert).unwrap();
    let line = tracker_refused("no cert", &state);
    let fix = "restore it from a backup, or remove";
    assert_eq!(
        line,
        format!(
            "{prefix}{c} is missing beside {k}: {fix} {k} to start with a new identity \
             (whoever pinned the old id will then refuse this one)"
        )
    );
    assert_eq!(fs::read(&key).unwrap(), key_bytes, "the key is kept");
    assert!(!cert.exists());

    fs::write(&cert, &cert_bytes).unwrap();
    fs::write(&key, b"not a key\n").unwrap();
    let line = tracker_refused("garbage", &state);
    assert!(
        line.starts_with(&format!("{prefix}{k} is damaged (")),
        "{line}"
    );
    assert!(line.ends_with(&format!("): {fix} {k} and {c} to start with a new identity (whoever pinned the old id will then refuse this one)")), "{line}");

    let victim = dir.path().join("victim");
    fs::write(&victim, &key_bytes).unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
    fs::remove_file(&key).unwrap();
    std::os::unix::fs::symlink(&victim, &key).unwrap();
    let line = tracker_refused("link", &state);
    assert_eq!(
        line,
        format!(
            "{prefix}{k} is a symbolic link, and nothing in a state directory is followed \
             through one: put the file itself there, or remove the link"
        )
    );
    let mode = fs::metadata(&victim).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "the link's target was chmod'ed");

    fs::remove_file(&key).unwrap();
    fs::rename(&victim, &key).unwrap();
    let (_again, again) = tracker_started("again", &state);
    assert_eq!(again, id, "the same tracker");
}

/// A FIFO at `identity.key`, `shares.json`, its journal, the manifest
/// store, `downloads.json` or `known_trackers`: the peer refuses to start at once, naming it. Before,
/// it hung at start with no message (an open of a FIFO waits for a writer).
#[test]
fn a_fifo_in_the_state_directory_refuses_the_start_at_once() {
    let dir = TestDir::new("state-fifo");
    let tracker = Tracker::start(&dir);
    let state = first_run(&dir, &tracker);
    for name in [
        "identity.key",
        "shares.json",
        "shares.journal",
        "manifests.log",
        "downloads.json",
        "known_trackers",
    ] {
        let path = state.join(name);
        let saved = fs::read(&path).ok();
        let _ = fs::remove_file(&path);
        let made = Command::new("mkfifo").arg(&path).status().expect("mkfifo");
        assert!(made.success(), "mkfifo {}", path.display());
        let (line, took) = peer_refused(name, &state, tracker.port);
        assert!(line.starts_with("peer: error: cannot "), "{line}");
        let want = format!(
            "{} is a FIFO, not a regular file: remove it",
            path.display()
        );
        assert!(line.ends_with(&want), "{line}");
        figure("state-fifo", &format!("{name} refused after"), took);
        fs::remove_file(&path).unwrap();
        if let Some(bytes) = saved {
            fs::write(&path, bytes).unwrap();
        }
    }
}
