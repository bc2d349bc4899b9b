//! Who may unregister whom: the tracker tells peers apart by the address
//! their connection came from, and a port that names no peer is refused.

use std::net::Ipv4Addr;

use p2pshare::storage::manifest_of;

use crate::support::harness::TestDir;
use crate::support::programs::{Peer, Tracker};
use crate::support::raw::Raw;

/// The tracker records a peer under the address its connection came from.
/// A client at 127.0.0.2 cannot unregister or `BYE` a peer at 127.0.0.1:P,
/// and its own `REGISTER P` creates 127.0.0.2:P, not 127.0.0.1:P. Known
/// limit (no authentication): any process on the peer's own address can.
#[test]
fn only_the_registering_address_can_unregister() {
    let dir = TestDir::new("unregister");
    let tracker = Tracker::start(&dir);
    let (path, _) = dir.random_file("seed/mine.bin", 1000, 19);
    // No re-announcement during the test, so what is listed is what the
    // test's requests left.
    let (seeder, _) = Peer::seeder_with(
        "seeder",
        &tracker,
        &[&path],
        &["--announce-interval", "3600"],
    );
    let manifest = manifest_of(&path).unwrap();
    let id = manifest.id();
    let port = seeder.addr.port();
    let peers = || {
        let mut listed = Raw::connect(tracker.addr()).list(&format!("PEERS {id}"));
        listed.sort();
        listed
    };
    let real = seeder.addr.to_string();
    assert_eq!(peers(), [real.as_str()]);

    let mut other = Raw::connect_from(Ipv4Addr::new(127, 0, 0, 2), tracker.addr());
    assert_eq!(
        other.ask(&format!("UNREGISTER {port} {id}")),
        "OK unregistered"
    );
    assert_eq!(other.ask(&format!("BYE {port}")), "OK removed 0");
    assert_eq!(peers(), [real.as_str()], "intact");
    let req = format!("REGISTER {port} {id} {} mine.bin", manifest.size());
    assert_eq!(other.ask(&req), "OK registered");
    assert_eq!(peers(), [real.clone(), format!("127.0.0.2:{port}")]);
    assert_eq!(
        other.ask(&format!("BYE {port}")),
        "OK removed 1",
        "its own only"
    );
    assert_eq!(peers(), [real.as_str()]);

    // The known limit: from the same address, it works.
    let mut same = Raw::connect(tracker.addr());
    assert_eq!(
        same.ask(&format!("UNREGISTER {port} {id}")),
        "OK unregistered"
    );
    assert!(peers().is_empty(), "removed by a stranger on the same host");
}

/// `REGISTER`, `UNREGISTER` and `BYE` with port 0 name no reachable peer
/// (nothing listens on port 0), so like port 70000 they are refused, and
/// nothing is listed. (Until 65e44f2 the tracker listed `127.0.0.1:0`.)
#[test]
fn register_with_port_zero_is_refused() {
    let dir = TestDir::new("port-zero");
    let tracker = Tracker::start(&dir);
    let id = "ab".repeat(32);
    let mut c = Raw::connect(tracker.addr());
    assert_eq!(
        c.ask(&format!("REGISTER 0 {id} 1 zero.bin")),
        "ERR invalid port: 0"
    );
    assert_eq!(c.ask(&format!("UNREGISTER 0 {id}")), "ERR invalid port: 0");
    assert_eq!(c.ask("BYE 0"), "ERR invalid port: 0");
    assert_eq!(c.ask(&format!("PEERS {id}")), "OK 0");
}
