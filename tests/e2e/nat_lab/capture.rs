//! A capture on the outside network during a relayed download: what the
//! relay (and anyone on its network) could see.

use std::collections::HashSet;
use std::process::Command;

use super::{download, hidden_seeder, peer, tracker, two_nats};
use crate::support::harness::{TestDir, STARTUP};
use crate::support::netns::Lab;
use crate::support::proc::{Proc, Stream};

/// A capture on the outside network (`tcpdump` on the bridge the routers
/// and the tracker share) during a relayed download holds no 32-byte slice
/// of the file, while it does hold the relay's plain-text `JOIN` line (the
/// positive control: the capture sees what crosses in the clear).
#[test]
fn a_capture_of_a_relayed_download_holds_no_slice_of_the_file() {
    let Some(mut lab) = Lab::new("nat-lab-capture") else {
        return;
    };
    assert!(
        Command::new("tcpdump").arg("--version").output().is_ok(),
        "tcpdump is missing (scripts/test.sh installs it)"
    );
    let dir = TestDir::new("nat-lab-capture");
    two_nats(&mut lab, true, false);
    let (_tracker_proc, port) = tracker(&lab, "inet", &dir);
    let pcap = dir.path().join("outside.pcap");
    let mut cmd = lab.command("inet", "tcpdump");
    cmd.args(["-i", "br0", "-U", "-s", "0", "-w"])
        .arg(&pcap)
        .arg("tcp");
    let mut capture = Proc::spawn("tcpdump", cmd);
    capture.expect_line(Stream::Err, STARTUP, "tcpdump listening", |l| {
        l.contains("listening on")
    });
    let (path, bytes) = dir.random_file("seed/secret.bin", 1024 * 1024 + 13, 67);
    let _seeder = hidden_seeder(&lab, &dir, port, path.to_str().expect("UTF-8"));
    let mut dl = peer(&lab, "b", "dl", &dir, port, &[]);
    download(&mut dl, &dir, "secret.bin", &bytes);
    capture.signal("INT");
    assert!(capture.await_exit(STARTUP).success(), "tcpdump failed");
    let seen = std::fs::read(&pcap).expect("the capture");
    let windows: HashSet<&[u8]> = seen.windows(32).collect();
    assert!(
        seen.windows(5).any(|w| w == b"JOIN "),
        "the capture lacks the relay's JOIN line: it saw nothing"
    );
    let leaked = bytes.windows(32).filter(|w| windows.contains(w)).count();
    assert_eq!(
        leaked, 0,
        "{leaked} 32-byte slices of the file crossed in the clear"
    );
}
