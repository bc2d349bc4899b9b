//! False claims: a manifest that hashes to its id but declares a size
//! nobody listed, another host registering the real id with a false size
//! first, and one address registering without end. No claim locks out an
//! honest peer, and none costs the downloader more than a refusal.

use std::fs;
use std::net::Ipv4Addr;
use std::time::Instant;

use p2pshare::manifest::Manifest;
use p2pshare::storage::manifest_of;

use crate::support::fakes::{test_tls, FakeSpec};
use crate::support::harness::{assert_same_bytes, figure, ReservedPort, TestDir, CHUNK};
use crate::support::programs::{Peer, Tracker};
use crate::support::raw::Raw;

/// A fake serves a manifest that does hash to the id it is registered
/// under, but declares 2 TiB in 16 MiB chunks (131,072 hashes, 8.5 MB),
/// while the tracker lists the file as 741 bytes. The manifest is refused
/// as a lie (`manifest declares 2199023255552 bytes, but the file was
/// listed as 741`), the fake is never asked for a chunk, the download fails
/// with one error, and nothing is created, not even a `.part` file. Before
/// f7cabf4 such a manifest was accepted: the download created a 2 TiB
/// sparse `.part` and asked for 16 MiB chunks.
#[test]
fn a_manifest_declaring_an_unclaimed_size_is_refused() {
    let dir = TestDir::new("huge-manifest");
    let tracker = Tracker::start(&dir);
    let chunk = 16 << 20;
    let chunks = (2u64 << 40) / chunk;
    let huge =
        Manifest::with_chunk_size(2 << 40, chunk as u32, vec![[7; 32]; chunks as usize]).unwrap();
    let id = huge.id();
    let fake = FakeSpec::of_manifest(huge, Vec::new()).start();
    fake.register_claiming(tracker.addr(), "REGISTER", 741, "huge.bin");
    let mut dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &[]);

    let asked = Instant::now();
    let lines = dl.download("huge.bin", None).expect_err("a lie only");
    let refused = asked.elapsed();
    // Refused for its size, and the one line says so.
    let why = "manifest declares 2199023255552 bytes, but the file was listed as 741";
    assert_eq!(
        lines,
        [
            "Found 1 peer for huge.bin (size: 741 bytes)".to_string(),
            format!(
                "error: huge.bin: no peer supplied a valid manifest for {id} (tried 1); refused: {why}"
            ),
        ]
    );
    assert_eq!(
        fake.requests(),
        ["HELLO 2".to_string(), format!("MANIFEST {id}")]
    );
    assert!(dir.entries("dl").is_empty(), "{:?}", dir.entries("dl"));
    figure(
        "huge manifest",
        "refused after (8.5 MB manifest, debug build)",
        refused,
    );
}

/// A squatter's tracker session from 127.0.0.2 (past its `HELLO`), and a
/// port where nothing listens, for the address it claims.
fn squatter(tracker: &Tracker) -> (Raw, ReservedPort) {
    let from = Ipv4Addr::new(127, 0, 0, 2);
    let mut raw = Raw::connect_tls_from(from, tracker.addr(), &test_tls());
    assert_eq!(raw.ask("HELLO 2"), "OK p2pshare 2");
    (raw, ReservedPort::new())
}

/// Another host (127.0.0.2) registers the real file's id with a false size,
/// and another file under the same name, before two real seeders share it.
/// The seeders' `REGISTER`s succeed; the tracker lists one row per claimed
/// size; `download NAME` is ambiguous and lists both ids with their peer
/// counts (the real one with the size most of its peers claim, its true
/// one, and all 3 of its peers); `download ID` gets the file,
/// byte-identical. Before f7cabf4 the tracker refused a `REGISTER` whose
/// size differed from the first claim, so the squatter locked the real
/// seeders out of the listing.
#[test]
fn a_false_size_registered_first_locks_no_seeder_out() {
    let dir = TestDir::new("squatter");
    let tracker = Tracker::start(&dir);
    let (path, data) = dir.random_file("s1/real.bin", 3 * CHUNK + 7, 45);
    dir.random_file("s2/real.bin", 3 * CHUNK + 7, 45);
    let manifest = manifest_of(&path).unwrap();
    let (id, size) = (manifest.id().to_hex(), manifest.size());
    let (mut squatter, nobody) = squatter(&tracker);
    let port = nobody.addr.port();
    let junk = "ee".repeat(32);
    for claim in [format!("{id} 999 real.bin"), format!("{junk} 5 real.bin")] {
        assert_eq!(
            squatter.ask(&format!("REGISTER {port} {claim}")),
            "OK registered"
        );
    }
    let s2 = dir.path().join("s2/real.bin");
    let (_s1, ids1) = Peer::seeder("seeder1", &tracker, &[&path]);
    let (_s2, ids2) = Peer::seeder("seeder2", &tracker, &[&s2]);
    assert_eq!((&ids1[0], &ids2[0]), (&id, &id));
    let mut rows = Raw::connect(tracker.addr()).list("SEARCH real.bin");
    rows.sort();
    let mut want = vec![
        format!("{id} 999 1 real.bin"),
        format!("{id} {size} 2 real.bin"),
        format!("{junk} 5 1 real.bin"),
    ];
    want.sort();
    assert_eq!(rows, want, "one row per claimed size");

    let mut dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &[]);
    let lines = dl.download("real.bin", None).expect_err("ambiguous");
    let candidate = |id: &str, size: u64, peers: u32| {
        lines.iter().any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.first() == Some(&id) && w.get(1) == Some(&size.to_string().as_str()) && {
                let at = w.iter().position(|x| *x == "peer" || *x == "peers");
                at.is_some_and(|at| w[at - 1] == peers.to_string())
            }
        })
    };
    assert!(
        lines.contains(&r#"2 files are named "real.bin":"#.to_string()),
        "{lines:?}"
    );
    assert!(candidate(&id, size, 3), "{lines:?}");
    assert!(candidate(&junk, 5, 1), "{lines:?}");

    let lines = dl
        .download(&id, None)
        .unwrap_or_else(|l| panic!("download by id failed: {l:?}"));
    let found = format!("Found 3 peers for real.bin (size: {size} bytes)");
    assert!(lines.contains(&found), "{lines:?}");
    let got = fs::read(dir.path().join("dl/real.bin")).unwrap();
    assert_same_bytes(&got, &data, "real.bin");
}

/// Another host (127.0.0.2) registers the real file's id, with its true
/// size, under a made-up name before the real seeder shares it. `search`
/// by the real name finds the file, shown under the seeder's name, and
/// `download NAME` gets it byte-identical; the squatter's name still finds
/// the id (it is a live peer's name) but is not the one shown while a
/// complete peer gave another. Before this fix the tracker kept the first
/// name for good: searching for the real name found nothing.
#[test]
fn a_made_up_name_registered_first_hides_nothing() {
    let dir = TestDir::new("name-squatter");
    let tracker = Tracker::start(&dir);
    let (path, data) = dir.random_file("s/report.pdf", 2 * CHUNK + 3, 46);
    let manifest = manifest_of(&path).unwrap();
    let (id, size) = (manifest.id().to_hex(), manifest.size());
    let (mut squatter, nobody) = squatter(&tracker);
    let port = nobody.addr.port();
    let claim = format!("PARTIAL {port} {id} {size} decoy.bin");
    assert_eq!(squatter.ask(&claim), "OK registered");
    let (_seeder, ids) = Peer::seeder("seeder", &tracker, &[&path]);
    assert_eq!(ids[0], id);

    let mut dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &[]);
    let rows = dl.search("report");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].id.as_str(), rows[0].name.as_str(), rows[0].peers),
        (id.as_str(), "report.pdf", 2)
    );
    let decoy = dl.search("decoy");
    assert_eq!(decoy.len(), 1, "{decoy:?}");
    assert_eq!(
        decoy[0].name, "report.pdf",
        "a complete peer's name is shown"
    );
    dl.download("report.pdf", None)
        .unwrap_or_else(|l| panic!("download by name failed: {l:?}"));
    let got = fs::read(dir.path().join("dl/report.pdf")).unwrap();
    assert_same_bytes(&got, &data, "report.pdf");
}

/// One identity from one address (127.0.0.3) registers 10,000 files,
/// pipelined, its whole share of an empty tracker: each is accepted, and
/// the 10,001st is refused with `ERR too many registrations from one
/// identity (...)`, while another address still registers. Before f7cabf4
/// only the tracker's total (1,000,000) bounded one host.
#[test]
fn one_identity_holds_at_most_ten_thousand_registrations() {
    const CAP: usize = 10_000;
    let dir = TestDir::new("per-identity-cap");
    let tracker = Tracker::start(&dir);
    let from = |last| Ipv4Addr::new(127, 0, 0, last);
    let mut flooder = Raw::connect_tls_from(from(3), tracker.addr(), &test_tls());
    assert_eq!(flooder.ask("HELLO 2"), "OK p2pshare 2");
    let register = |n: usize| format!("REGISTER 4000 {n:064x} 1 f{n}.bin\n");
    let started = Instant::now();
    // In batches, so that neither side's buffers fill with unread replies.
    for batch in (0..CAP).collect::<Vec<_>>().chunks(1000) {
        let lines: String = batch.iter().map(|&n| register(n)).collect();
        flooder.send(lines.as_bytes());
        for &n in batch {
            assert_eq!(flooder.line(), "OK registered", "registration {n}");
        }
    }
    let refused = flooder.ask(register(CAP).trim_end());
    assert!(
        refused.starts_with("ERR too many registrations from one identity (its share is 10000 "),
        "{refused}"
    );
    let took = started.elapsed();
    let mut other = Raw::connect_tls_from(from(4), tracker.addr(), &test_tls());
    assert_eq!(other.ask("HELLO 2"), "OK p2pshare 2");
    assert_eq!(other.ask(register(CAP).trim_end()), "OK registered");
    figure(
        "per-identity cap",
        "10,001 registrations from one identity",
        took,
    );
}

/// Twenty peers behind one address (a NAT'd office: 127.0.0.5, twenty
/// identities, ports 5001-5020) register one file: all are accepted and
/// `PEERS` lists all twenty. Before, a fixed cap of 16 per address and
/// file refused the 17th.
#[test]
fn twenty_peers_behind_one_address_are_all_listed() {
    let dir = TestDir::new("nat-office");
    let tracker = Tracker::start(&dir);
    let id = "cd".repeat(32);
    for port in 5001..=5020 {
        let from = Ipv4Addr::new(127, 0, 0, 5);
        let mut peer = Raw::connect_tls_from(from, tracker.addr(), &test_tls());
        assert_eq!(peer.ask("HELLO 2"), "OK p2pshare 2");
        let register = format!("REGISTER {port} {id} 741 office.bin");
        assert_eq!(peer.ask(&register), "OK registered", "port {port}");
    }
    let rows = Raw::connect(tracker.addr()).list(&format!("PEERS {id}"));
    assert_eq!(rows.len(), 20, "{rows:?}");
}
