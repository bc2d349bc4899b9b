//! Peers behind NAT, as far as loopback can show it: the tracker's
//! reflection and dial-back (`WHOAMI`), seen in each peer's
//! `/api/status`. The namespace lab (routers doing NAT) is `nat_lab`.

use std::process::Command;

use crate::support::harness::{wait_until, TestDir, STARTUP};
use crate::support::programs::{Peer, Tracker};
use crate::support::status::tracker_status;

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
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_peer"));
    cmd.args(["--bind", "127.0.0.2", "--http", "0"])
        .args(["127.0.0.1", &tracker.port.to_string(), "0"])
        .current_dir(dir.path());
    let hidden = Peer::spawn("hidden", cmd);
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
