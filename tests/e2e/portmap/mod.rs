//! Port mapping in a namespace lab (root only; skipped, saying why, where
//! namespaces or miniupnpd are missing): a peer behind a miniupnpd router
//! maps its port, a client outside (which has no route to the LAN)
//! downloads through it, and the mapping is gone once the peer leaves.
//! One test per protocol: UPnP IGD with `peer send` and a ticket, NAT-PMP
//! with `peer --serve` found through a tracker outside; and the REPL's
//! `status` and `quit` with a router that speaks both.

mod lab;

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use p2pshare::peer::portmap::{PortMapView, Protocol};
use p2pshare::ticket::Ticket;

use self::lab::{Lab, Speaks, OUTSIDE, ROUTER_WAN};
use crate::support::harness::{
    assert_same_bytes, figure, wait_until, Proc, TestDir, CHUNK, COMMAND, LEAVE, STARTUP,
};
use crate::support::status::peer_status;

const PEER: &str = env!("CARGO_BIN_EXE_peer");

/// How long the tracker may take to check a mapping. A `WHOAMI` whose
/// dial-back came before the router mapped the port (common under load)
/// is asked again in `MAPPING_RECHECK` (2 s), then 2 s, 4 s, ... after
/// each failed dial-back (≤ 3 s): 20 s allows two failures after the
/// first. Less than `CONTROL_PING` (25 s): a peer that holds its control
/// connection until the tracker's next ping, not the 2 s, fails here.
const CHECKED: Duration = Duration::from_secs(20);

/// The port mapping `peer`'s status page (inside `ns`) reports, once it
/// reports one held.
fn mapping(lab: &Lab, ns: &str, peer: &Proc) -> PortMapView {
    let page = peer.status_page();
    wait_until(STARTUP, "a port mapping in the status", || {
        let status = lab.inside(ns, || peer_status(page));
        match status.port_map {
            Some(m) if m.mapped => Ok(m),
            other => Err(format!("{other:?}")),
        }
    })
}

/// Checks the mapping points at the router's public address and the
/// router forwards it to the peer; returns its port.
fn forwarded(lab: &Lab, map: &PortMapView) -> u16 {
    let external: SocketAddr = map
        .external
        .as_deref()
        .and_then(|e| e.parse().ok())
        .expect("an external address");
    assert_eq!(external.ip().to_string(), ROUTER_WAN, "{map:?}");
    let rule = format!("dport {} dnat ip to 10.0.1.2:", external.port());
    assert!(
        lab.forwards().contains(&rule),
        "no {rule:?} in {}",
        lab.forwards()
    );
    external.port()
}

/// Downloads with `peer get ARGS... OUT` from the outside namespace and
/// compares the bytes.
fn fetch_outside(lab: &Lab, dir: &TestDir, args: &[&str], want: &[u8]) {
    let out = dir.sub("got");
    let mut cmd = lab.command(&lab.outside, PEER);
    cmd.arg("get").args(args).arg(&out).current_dir(dir.path());
    let mut getter = Proc::spawn("getter", cmd);
    let status = getter.wait_exit(COMMAND);
    assert!(status.success(), "the outside download failed: {status}");
    let got = fs::read(out.join("big.bin")).expect("the downloaded file");
    assert_same_bytes(&got, want, "big.bin fetched through the mapping");
}

/// The peer leaves on `signal`; its mapping is gone from the router.
fn leaves_unmapped(lab: &Lab, mut peer: Proc, signal: &str, port: u16) {
    let asked = Instant::now();
    peer.signal(signal);
    peer.await_exit(LEAVE);
    figure(
        "portmap",
        &format!("SIG{signal} to exit, mapping deleted"),
        asked.elapsed(),
    );
    unmapped(lab, port);
}

/// The router forwards `port` no more.
fn unmapped(lab: &Lab, port: u16) {
    let forwards = lab.forwards();
    assert!(
        !forwards.contains(&format!("dport {port} ")),
        "still forwarded after the peer left: {forwards}"
    );
}

#[test]
fn a_sender_behind_a_upnp_router_is_fetched_through_its_mapping_until_it_leaves() {
    let dir = TestDir::new("portmap_upnp");
    let speaks = Speaks {
        upnp: true,
        natpmp: false,
    };
    let Some(lab) = Lab::up(dir.path(), speaks) else {
        return;
    };
    let (path, bytes) = dir.random_file("big.bin", 3 * CHUNK + 1234, 19);
    let (sender, ticket) = send(
        &lab,
        &dir,
        &path,
        &[],
        "send start to ticket, mapped by UPnP",
    );
    let map = mapping(&lab, &lab.lan, &sender);
    assert_eq!(
        map.protocol,
        Some(Protocol::Upnp),
        "{}",
        lab.miniupnpd_log()
    );
    // No tracker to check it with: offered, first in the ticket.
    assert!(map.offered && map.lease_secs_left.is_some(), "{map:?}");
    let port = forwarded(&lab, &map);
    let parsed: Ticket = ticket.parse().expect("a ticket");
    assert_eq!(parsed.addrs.first().map(|a| a.to_string()), map.external);
    fetch_outside(&lab, &dir, &[&ticket], &bytes);
    leaves_unmapped(&lab, sender, "INT", port);
}

#[test]
fn a_serving_peer_behind_a_natpmp_router_is_found_through_the_tracker_and_unmaps_on_sigterm() {
    let dir = TestDir::new("portmap_natpmp");
    let speaks = Speaks {
        upnp: false,
        natpmp: true,
    };
    let Some(lab) = Lab::up(dir.path(), speaks) else {
        return;
    };
    let (tracker_proc, tracker_port) = tracker(&lab, &dir);
    let (path, bytes) = dir.random_file("big.bin", 3 * CHUNK + 99, 23);
    let started = Instant::now();
    let seeder = serve(&lab, dir.path(), &path, &tracker_port);
    let map = mapping(&lab, &lab.lan, &seeder);
    figure(
        "portmap",
        "--serve start to mapped by NAT-PMP (polled)",
        started.elapsed(),
    );
    assert_eq!(
        map.protocol,
        Some(Protocol::NatPmp),
        "{}",
        lab.miniupnpd_log()
    );
    let port = forwarded(&lab, &map);
    let listen = seeder.startup_line("Peer listening on ");
    assert!(
        listen.ends_with(&format!(":{port}")),
        "mapped {port}, listening on {listen}"
    );
    // The tracker lists the peer at the router's address and the port it
    // announced, which the mapping forwards.
    let at_tracker = format!("{OUTSIDE}:{tracker_port}");
    fetch_outside(&lab, &dir, &["--tracker", &at_tracker, "big.bin"], &bytes);
    // The tracker's dial-back reached the peer through the mapping: it is
    // checked, and offered in tickets from then on.
    let page = seeder.status_page();
    wait_until(CHECKED, "the mapping checked by the tracker", || {
        let status = lab.inside(&lab.lan, || peer_status(page));
        match status.port_map {
            Some(m) if m.offered => Ok(m),
            other => Err(format!("{other:?}")),
        }
    });
    figure(
        "portmap",
        "--serve start to mapping checked by the tracker (polled)",
        started.elapsed(),
    );
    leaves_unmapped(&lab, seeder, "TERM", port);
    drop(tracker_proc);
}

/// A tracker (no relay) in the outside namespace, and its port.
fn tracker(lab: &Lab, dir: &TestDir) -> (Proc, String) {
    let mut cmd = lab.command(&lab.outside, env!("CARGO_BIN_EXE_tracker"));
    cmd.arg("--state-dir")
        .arg(dir.sub("tracker-state"))
        .arg("0");
    let tracker_proc = Proc::spawn("tracker", cmd);
    let line = tracker_proc.startup_line("Tracker running on port ");
    let port = line.split('.').next().unwrap_or_default().to_string();
    (tracker_proc, port)
}

/// `peer send --tracker` behind a NAT-PMP router: the ticket waits for the
/// tracker to check the mapping and carries it first (a sender reachable
/// through its mapping holds no control connection, so without it the
/// ticket would lead nowhere: its LAN address is not reachable from
/// outside and the tracker has no relay), and a getter outside fetches
/// the file through it.
#[test]
fn a_sender_with_a_tracker_puts_its_checked_mapping_in_the_ticket() {
    let dir = TestDir::new("portmap_send_tracker");
    let speaks = Speaks {
        upnp: false,
        natpmp: true,
    };
    let Some(lab) = Lab::up(dir.path(), speaks) else {
        return;
    };
    let (_tracker_proc, tracker_port) = tracker(&lab, &dir);
    let (path, bytes) = dir.random_file("big.bin", 2 * CHUNK + 7, 29);
    let at_tracker = format!("{OUTSIDE}:{tracker_port}");
    let extra = ["-v", "--tracker", &at_tracker];
    let what = "send --tracker start to ticket, mapping checked";
    let (sender, ticket) = send(&lab, &dir, &path, &extra, what);
    let map = mapping(&lab, &lab.lan, &sender);
    assert!(map.offered, "{map:?}");
    let parsed: Ticket = ticket.parse().expect("a ticket");
    assert_eq!(parsed.addrs.first().map(|a| a.to_string()), map.external);
    assert!(parsed.tracker.is_some(), "{parsed:?}");
    fetch_outside(&lab, &dir, &[&ticket], &bytes);
    let port = forwarded(&lab, &map);
    leaves_unmapped(&lab, sender, "INT", port);
}

/// `peer send --http 0 EXTRA... PATH` in the LAN, and its ticket; prints
/// the time to the ticket as figure `what`.
fn send(lab: &Lab, dir: &TestDir, path: &Path, extra: &[&str], what: &str) -> (Proc, String) {
    let mut cmd = lab.command(&lab.lan, PEER);
    cmd.args(["send", "--http", "0"])
        .args(extra)
        .arg(path)
        .current_dir(dir.path());
    let started = Instant::now();
    let sender = Proc::spawn("sender", cmd);
    let ticket = sender.startup_line("Ticket: ");
    figure("portmap", what, started.elapsed());
    (sender, ticket)
}

/// `peer --serve --share PATH TRACKER PORT 0` in the LAN, announced once.
fn serve(lab: &Lab, cwd: &Path, path: &Path, tracker_port: &str) -> Proc {
    let mut cmd = lab.command(&lab.lan, PEER);
    // -v: a failure's transcript shows the tracker's answers and the mapping.
    cmd.args(["-v", "--serve", "--http", "0", "--share"])
        .arg(path)
        .args([OUTSIDE, tracker_port, "0"])
        .current_dir(cwd);
    let seeder = Proc::spawn("seeder", cmd);
    seeder.expect_out("Successfully registered", STARTUP);
    seeder
}

#[test]
fn a_repl_peer_says_its_mapping_in_status_and_deletes_it_on_quit() {
    let dir = TestDir::new("portmap_repl");
    let speaks = Speaks {
        upnp: true,
        natpmp: true,
    };
    let Some(lab) = Lab::up(dir.path(), speaks) else {
        return;
    };
    // No tracker listens there: the REPL starts all the same, warning.
    let mut cmd = lab.command(&lab.lan, PEER);
    cmd.args(["--http", "0", OUTSIDE, "1", "0"])
        .current_dir(dir.path());
    let mut peer = Proc::spawn("repl", cmd);
    let map = mapping(&lab, &lab.lan, &peer);
    // NAT-PMP is asked first; a tracker is given, so nothing is offered
    // before a dial-back.
    assert_eq!(map.protocol, Some(Protocol::NatPmp), "{map:?}");
    let port = forwarded(&lab, &map);
    peer.send("status");
    let line = peer.expect_out("port mapping: ", COMMAND);
    let want = format!("port mapping: {ROUTER_WAN}:{port} on the router (NAT-PMP), lease ");
    assert!(
        line.starts_with(&want)
            && line.ends_with("not offered until a dial-back from outside reaches it"),
        "{line}"
    );
    peer.send("quit");
    peer.await_exit(LEAVE);
    unmapped(&lab, port);
}
