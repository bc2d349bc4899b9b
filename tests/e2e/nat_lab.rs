//! The NAT lab (issue 19): the tracker on an "outside" network (a bridge in
//! a namespace of its own, 100.64.0.0/24), peers in namespaces of their
//! own, each behind a router namespace doing NAT with nftables (plain
//! `masquerade`, which keeps source ports, or `masquerade fully-random`: a
//! symmetric NAT, whose ports no punching can guess) and dropping every
//! unsolicited packet from outside. Root
//! only: elsewhere each test prints why it skips. The lab's namespaces,
//! with their rules and the processes in them, go when the test ends,
//! however it ends (`support::netns::Lab`).

use std::fs;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Instant;

use p2pshare::peer::dial::Path;
use p2pshare::peer::status::{BytesByPath, PeerStatus};
use p2pshare::tracker::status::TrackerStatus;

use crate::support::harness::{
    assert_same_bytes, figure, wait_until, Proc, TestDir, COMMAND, STARTUP,
};
use crate::support::netns::{Lab, Router};
use crate::support::programs::{tracker_port, Peer};
use crate::support::status::{peer_status, tracker_status};

/// The tracker's address on the outside network.
const TRACKER_IP: &str = "100.64.0.10";

/// The tracker (with `--relay`) in namespace `ns`, and its port.
fn tracker(lab: &Lab, ns: &str, dir: &TestDir) -> (Proc, u16) {
    let mut cmd = lab.command(ns, env!("CARGO_BIN_EXE_tracker"));
    cmd.args([
        "--bind",
        TRACKER_IP,
        "--relay",
        "--http",
        "0",
        "--state-dir",
    ])
    .arg(dir.path().join(".tracker-state"))
    .arg("0");
    let proc = Proc::spawn("tracker", cmd);
    let port = tracker_port(&proc);
    (proc, port)
}

/// A peer in namespace `ns` with a status page, against the tracker.
fn peer(lab: &Lab, ns: &str, name: &str, dir: &TestDir, port: u16, extra: &[&str]) -> Peer {
    let mut cmd: Command = lab.command(ns, env!("CARGO_BIN_EXE_peer"));
    cmd.args(["--http", "0"])
        .args(extra)
        .args([TRACKER_IP, &port.to_string(), "0"])
        .current_dir(dir.path());
    Peer::spawn(name, cmd)
}

fn status_in(lab: &Lab, ns: &str, page: SocketAddr) -> PeerStatus {
    lab.inside(ns, || peer_status(page))
}

fn tracker_in(lab: &Lab, ns: &str, page: SocketAddr) -> TrackerStatus {
    lab.inside(ns, || tracker_status(page))
}

/// How `dl`'s download reached its one peer (asserting there was one), and
/// the bytes it got by each path (from the connections themselves), as
/// `dl`'s status says.
fn download_path(lab: &Lab, dl: &Peer) -> (Path, BytesByPath) {
    let got = status_in(lab, "b", dl.page())
        .downloads
        .pop()
        .expect("a download");
    match got.peers.iter().map(|p| p.path).collect::<Vec<_>>()[..] {
        [path] => (path, got.bytes_by_path),
        _ => panic!("not one peer: {got:?}"),
    }
}

/// Asserts that every one of `size` bytes came by `path`, none otherwise.
fn assert_all_by(by: BytesByPath, path: Path, size: usize) {
    let all = [Path::Direct, Path::Punched, Path::Relayed].map(|p| by.get(p));
    assert_eq!(
        (by.get(path), all.iter().sum::<u64>()),
        (size as u64, size as u64),
        "{path} bytes of {size}: {by:?}"
    );
}

/// Asserts that the seeder (in `a`, its page at `page`) served every
/// upload by `path`.
fn assert_uploads_by(lab: &Lab, page: SocketAddr, path: Path) {
    let uploads = status_in(lab, "a", page).uploads;
    assert!(
        !uploads.is_empty() && uploads.iter().all(|u| u.path == path),
        "{uploads:?}"
    );
}

/// Bytes the tracker (in `inet`, its page at `page`) has relayed.
fn relayed_bytes(lab: &Lab, page: SocketAddr) -> u64 {
    let relay = tracker_in(lab, "inet", page).nat.and_then(|n| n.relay);
    relay.expect("the tracker relays").bytes
}

/// Downloads `name` into `got.bin` on `dl`, checks it against `bytes`,
/// and prints how long it took.
fn download(dl: &mut Peer, dir: &TestDir, name: &str, bytes: &[u8]) {
    let started = Instant::now();
    let done = dl.download(name, Some("got.bin"));
    figure(name, "download", started.elapsed());
    assert!(done.is_ok(), "{done:?}");
    let got = fs::read(dir.path().join("got.bin")).expect("the download");
    assert_same_bytes(&got, bytes, name);
}

/// Peers `a` and `b`, each behind its own router (`symmetric` or not)
/// that drops unsolicited inbound, and the outside network.
fn two_nats(lab: &mut Lab, symmetric: bool, resets: bool) {
    mixed_nats(lab, [symmetric, symmetric], resets);
}

/// As [`two_nats`], `symmetric[0]` for the seeder's router (`a`) and
/// `symmetric[1]` for the downloader's (`b`).
fn mixed_nats(lab: &mut Lab, symmetric: [bool; 2], resets: bool) {
    lab.outside("inet", TRACKER_IP);
    for (router, port, wan, host, n, symmetric) in [
        ("ra", "pa", "100.64.0.1", "a", 1, symmetric[0]),
        ("rb", "pb", "100.64.0.2", "b", 2, symmetric[1]),
    ] {
        lab.router(
            &Router {
                name: router,
                port,
                wan_ip: wan,
                host,
                n,
                symmetric,
                resets,
            },
            "inet",
        );
        lab.await_route(host, "inet", TRACKER_IP);
    }
}

/// A seeder of `share` in namespace `a`, once it holds a control
/// connection (it cannot be dialled).
fn hidden_seeder(lab: &Lab, dir: &TestDir, port: u16, share: &str) -> Peer {
    let seeder = peer(
        lab,
        "a",
        "seeder",
        dir,
        port,
        &["--serve", "--share", share],
    );
    seeder.await_share();
    let page = seeder.page();
    wait_until(
        STARTUP,
        "the seeder's control connection",
        || match status_in(lab, "a", page).reach {
            Some(r) if !r.reachable && r.control => Ok(r),
            other => Err(format!("{other:?}")),
        },
    );
    seeder
}

/// Two peers, each behind its own port-keeping NAT that drops unsolicited
/// inbound: the tracker introduces them, both connect at once from their
/// listen ports, and the download arrives byte-identical over the punched
/// connection, `punched` on both ends, with nothing through the relay
/// (every byte the downloader counts came punched).
#[test]
fn peers_behind_two_nats_meet_through_a_hole_punch() {
    let Some(mut lab) = Lab::new("nat-lab-punch") else {
        return;
    };
    let dir = TestDir::new("nat-lab-punch");
    two_nats(&mut lab, false, false);
    let (tracker_proc, port) = tracker(&lab, "inet", &dir);
    let tracker_page = tracker_proc.status_page();
    let (path, bytes) = dir.random_file("seed/punch.bin", 2 * 1024 * 1024 + 7, 53);
    let seeder = hidden_seeder(&lab, &dir, port, path.to_str().expect("UTF-8"));
    let mut dl = peer(&lab, "b", "dl", &dir, port, &[]);
    download(&mut dl, &dir, "punch.bin", &bytes);

    let (path, by_path) = download_path(&lab, &dl);
    assert_eq!(path, Path::Punched);
    assert_all_by(by_path, Path::Punched, bytes.len());
    assert_uploads_by(&lab, seeder.page(), Path::Punched);
    let relayed = relayed_bytes(&lab, tracker_page);
    assert_eq!(relayed, 0, "relayed {relayed} bytes");
}

/// Two peers, each behind a NAT that answers unsolicited inbound TCP with
/// a reset (so a punch's first SYNs are refused, not lost): the file
/// arrives byte-identical, punched or relayed, and both ends say which.
#[test]
fn peers_behind_two_resetting_nats_get_the_file_punched_or_relayed() {
    let Some(mut lab) = Lab::new("nat-lab-reset") else {
        return;
    };
    let dir = TestDir::new("nat-lab-reset");
    two_nats(&mut lab, false, true);
    let (tracker_proc, port) = tracker(&lab, "inet", &dir);
    let (path, bytes) = dir.random_file("seed/reset.bin", 2 * 1024 * 1024 + 9, 59);
    let seeder = hidden_seeder(&lab, &dir, port, path.to_str().expect("UTF-8"));
    let mut dl = peer(&lab, "b", "dl", &dir, port, &[]);
    download(&mut dl, &dir, "reset.bin", &bytes);
    let (path, by_path) = download_path(&lab, &dl);
    assert!(matches!(path, Path::Punched | Path::Relayed), "{path:?}");
    println!("figure: resetting NATs: {path:?}, bytes by path {by_path:?}");
    // Punched or relayed, connection by connection; never direct.
    let not_direct = by_path.punched + by_path.relayed;
    assert_eq!((by_path.direct, not_direct), (0, bytes.len() as u64));
    assert_uploads_by(&lab, seeder.page(), path);
    drop(tracker_proc);
}

/// A seeder behind a port-keeping NAT and a downloader behind a symmetric
/// one, both dropping unsolicited inbound: the punch cannot meet (the
/// downloader's NAT does not keep the port it named), so the file comes
/// through the relay, byte-identical, `relayed` on both ends.
#[test]
fn a_peer_behind_nat_and_one_behind_a_symmetric_nat_meet_through_the_relay() {
    let Some(mut lab) = Lab::new("nat-lab-mixed") else {
        return;
    };
    let dir = TestDir::new("nat-lab-mixed");
    mixed_nats(&mut lab, [false, true], false);
    let (tracker_proc, port) = tracker(&lab, "inet", &dir);
    let tracker_page = tracker_proc.status_page();
    let (path, bytes) = dir.random_file("seed/mixed.bin", 1024 * 1024 + 11, 61);
    let seeder = hidden_seeder(&lab, &dir, port, path.to_str().expect("UTF-8"));
    let mut dl = peer(&lab, "b", "dl", &dir, port, &[]);
    download(&mut dl, &dir, "mixed.bin", &bytes);
    let (path, by_path) = download_path(&lab, &dl);
    assert_eq!(path, Path::Relayed);
    assert_all_by(by_path, Path::Relayed, bytes.len());
    assert_uploads_by(&lab, seeder.page(), Path::Relayed);
    let relayed = relayed_bytes(&lab, tracker_page);
    assert!(relayed >= bytes.len() as u64, "relayed {relayed} bytes");
}

/// Two peers, each behind its own symmetric NAT that drops unsolicited
/// inbound: neither can dial the other and no punch guesses the ports, so
/// the seeder holds a control connection and the download goes through
/// the tracker's relay, byte-identical, `relayed` on both ends (every
/// byte the downloader counts came relayed).
#[test]
fn peers_behind_two_symmetric_nats_meet_through_the_relay() {
    let Some(mut lab) = Lab::new("nat-lab-relay") else {
        return;
    };
    let dir = TestDir::new("nat-lab-relay");
    two_nats(&mut lab, true, false);
    let (tracker_proc, port) = tracker(&lab, "inet", &dir);
    let tracker_page = tracker_proc.status_page();
    let (path, bytes) = dir.random_file("seed/lab.bin", 2 * 1024 * 1024 + 5, 41);
    let seeder = hidden_seeder(&lab, &dir, port, path.to_str().expect("UTF-8"));
    let page = seeder.page();
    let mut dl = peer(&lab, "b", "dl", &dir, port, &[]);
    download(&mut dl, &dir, "lab.bin", &bytes);

    let (path, by_path) = download_path(&lab, &dl);
    assert_eq!(path, Path::Relayed);
    assert_all_by(by_path, Path::Relayed, bytes.len());
    assert_uploads_by(&lab, page, Path::Relayed);
    let relayed = relayed_bytes(&lab, tracker_page);
    assert!(relayed >= bytes.len() as u64, "relayed {relayed} bytes");
}

/// A seeder on the outside network and a downloader behind a symmetric
/// NAT: the downloader dials out, so the download is direct and the relay
/// carries nothing.
#[test]
fn a_public_seeder_serves_a_peer_behind_nat_directly() {
    let Some(mut lab) = Lab::new("nat-lab-direct") else {
        return;
    };
    let dir = TestDir::new("nat-lab-direct");
    lab.outside("inet", TRACKER_IP);
    lab.router(
        &Router {
            name: "rb",
            port: "pb",
            wan_ip: "100.64.0.2",
            host: "b",
            n: 2,
            symmetric: true,
            resets: false,
        },
        "inet",
    );
    lab.await_route("b", "inet", TRACKER_IP);
    let (tracker_proc, port) = tracker(&lab, "inet", &dir);
    let tracker_page = tracker_proc.status_page();
    let (path, bytes) = dir.random_file("seed/public.bin", 2 * 1024 * 1024 + 9, 43);
    let share = path.to_str().expect("UTF-8");
    let seeder = peer(
        &lab,
        "inet",
        "seeder",
        &dir,
        port,
        &["--bind", TRACKER_IP, "--serve", "--share", share],
    );
    seeder.await_share();
    let page = seeder.page();
    let reach = wait_until(STARTUP, "the tracker's answer", || {
        status_in(&lab, "inet", page)
            .reach
            .ok_or_else(|| "none yet".to_string())
    });
    assert!(reach.reachable, "{reach:?}");
    let mut dl = peer(&lab, "b", "dl", &dir, port, &[]);
    download(&mut dl, &dir, "public.bin", &bytes);

    let (path, by_path) = download_path(&lab, &dl);
    assert_eq!(path, Path::Direct);
    assert_all_by(by_path, Path::Direct, bytes.len());
    let relayed = relayed_bytes(&lab, tracker_page);
    assert_eq!(relayed, 0, "relayed {relayed} bytes");
}

/// `peer send --tracker` behind one NAT, `peer get TICKET` (no tracker
/// named) behind another: the ticket carries the tracker and its id, the
/// sender's own addresses cannot be reached from the getter, and the file
/// arrives byte-identical through the relay.
#[test]
fn a_ticket_carries_its_tracker_through_two_nats() {
    let Some(mut lab) = Lab::new("nat-lab-ticket") else {
        return;
    };
    let dir = TestDir::new("nat-lab-ticket");
    two_nats(&mut lab, true, false);
    let (tracker_proc, port) = tracker(&lab, "inet", &dir);
    let (path, bytes) = dir.random_file("seed/sent.bin", 1024 * 1024 + 3, 47);
    let tracker_at = format!("{TRACKER_IP}:{port}");
    let mut send = lab.command("a", env!("CARGO_BIN_EXE_peer"));
    send.args(["send", "--http", "0", "--tracker", &tracker_at])
        .arg(&path)
        .current_dir(dir.path());
    let sender = Proc::spawn("send", send);
    let line = sender.expect_out("Ticket: ", STARTUP);
    let ticket = line.trim_start_matches("Ticket: ").trim().to_string();
    let page = sender.status_page();
    wait_until(
        STARTUP,
        "the sender's control connection",
        || match status_in(&lab, "a", page).reach {
            Some(r) if r.control => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    let out = dir.path().join("got.bin");
    let mut get = lab.command("b", env!("CARGO_BIN_EXE_peer"));
    get.args(["get", &ticket]).arg(&out).current_dir(dir.path());
    let started = Instant::now();
    let mut getter = Proc::spawn("get", get);
    assert!(getter.await_exit(COMMAND).success(), "peer get failed");
    figure("sent.bin", "get through the relay", started.elapsed());
    assert_same_bytes(
        &fs::read(&out).expect("the file"),
        &bytes,
        "the ticket's file",
    );
    let page = tracker_proc.status_page();
    let relayed = relayed_bytes(&lab, page);
    assert!(relayed >= bytes.len() as u64, "relayed {relayed} bytes");
}

mod capture;
mod moving;
