//! Who may unregister whom: the tracker changes its registry only for a
//! client that proved a certificate over TLS, and only that id's entries;
//! a port that names no peer is refused.

use std::net::Ipv4Addr;

use p2pshare::storage::manifest_of;

use crate::support::fakes::test_tls;
use crate::support::harness::TestDir;
use crate::support::programs::{Peer, Tracker};
use crate::support::raw::Raw;

/// The tracker records a peer under the id its certificate proved, the
/// address its connection came from and the port it announces. Plain-text
/// `UNREGISTER`/`BYE` are refused, from any address; a stranger with an
/// identity of its own, from another address or from the peer's own, can
/// neither remove nor refresh the peer's entry, and its own `REGISTER P`
/// creates an entry of its own. (Before TLS, any process on the peer's own
/// address could unregister it.)
#[test]
fn only_the_registering_identity_can_unregister() {
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
    let stranger = test_tls();
    let peers = || {
        let mut c = Raw::connect_tls(tracker.addr(), &stranger, Some(tracker.id));
        assert_eq!(c.ask("HELLO 2"), "OK p2pshare 2");
        let mut listed = c.list(&format!("PEERS {id}"));
        listed.sort();
        listed
    };
    let real = format!("{} complete {}", seeder.addr, seeder.id);
    assert_eq!(peers(), [real.as_str()]);

    for from in [Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::LOCALHOST] {
        let mut plain = Raw::connect_from(from, tracker.addr());
        for req in [format!("UNREGISTER {port} {id}"), format!("BYE {port}")] {
            let reply = plain.ask(&req);
            assert!(reply.starts_with("ERR authentication required"), "{reply}");
        }
    }
    assert_eq!(peers(), [real.as_str()], "intact");

    let mut other = Raw::connect_tls(tracker.addr(), &stranger, Some(tracker.id));
    assert_eq!(other.ask("HELLO 2"), "OK p2pshare 2");
    assert_eq!(
        other.ask(&format!("UNREGISTER {port} {id}")),
        "OK unregistered"
    );
    assert_eq!(other.ask(&format!("BYE {port}")), "OK removed 0");
    assert_eq!(
        peers(),
        [real.as_str()],
        "a stranger on the same host removes nothing"
    );
    let req = format!("REGISTER {port} {id} {} mine.bin", manifest.size());
    assert_eq!(other.ask(&req), "OK registered");
    let theirs = format!("{} complete {}", seeder.addr, stranger.id());
    let mut both = vec![real.clone(), theirs];
    both.sort();
    assert_eq!(peers(), both, "its own entry, beside the real one");
    assert_eq!(
        other.ask(&format!("BYE {port}")),
        "OK removed 1",
        "its own only"
    );
    assert_eq!(peers(), [real.as_str()]);
}

/// `REGISTER`, `UNREGISTER` and `BYE` with port 0 name no reachable peer
/// (nothing listens on port 0), so like port 70000 they are refused, and
/// nothing is listed. (Until 65e44f2 the tracker listed `127.0.0.1:0`.)
#[test]
fn register_with_port_zero_is_refused() {
    let dir = TestDir::new("port-zero");
    let tracker = Tracker::start(&dir);
    let id = "ab".repeat(32);
    let mut c = Raw::connect_tls(tracker.addr(), &test_tls(), Some(tracker.id));
    assert_eq!(
        c.ask(&format!("REGISTER 0 {id} 1 zero.bin")),
        "ERR invalid port: 0"
    );
    assert_eq!(c.ask(&format!("UNREGISTER 0 {id}")), "ERR invalid port: 0");
    assert_eq!(c.ask("BYE 0"), "ERR invalid port: 0");
    assert_eq!(c.ask(&format!("PEERS {id}")), "OK 0");
}
