//! `ERR busy`, what a server at its connection caps says, is a reason to
//! come back later, never a strike against the peer: downloaders sharing
//! one address and a seeder's per-address slots both finish, and a peer
//! that is busy at first is used once it has room.

use std::fs;
use std::net::TcpStream;
use std::ops::Range;
use std::time::{Duration, Instant};

use p2pshare::net::transport::{is_busy_alert, Stream};
use p2pshare::peer::status::DownloadView;

use crate::support::fakes::{test_tls, FakePeer, FakeSpec};
use crate::support::harness::{assert_same_bytes, figure, TestDir, CHUNK, COMMAND};
use crate::support::programs::{Peer, Tracker};
use crate::support::raw::{Raw, REPLY};
use crate::support::status::{assert_every_chunk_once, is_banned, is_benched};

/// A peer's chunk server serves at most 96 connections per address.
const PER_ADDRESS: usize = 96;

/// Two downloaders on 127.0.0.1 with `--workers 64` each, against one
/// seeder (capped at 2 MiB/s) whose per-address slots the test has filled
/// but for 4 with idle connections from 127.0.0.1: while both download, a
/// newcomer from that address gets `ERR busy`, and both downloads succeed,
/// byte-identical, without banning or benching the seeder. Before 5ae7a87
/// each worker had a connection of its own, so 2 x 64 workers went past the
/// cap, and until d6fdac3 each `ERR busy` was a strike: three in a row
/// banned the only seeder, and the download failed.
#[test]
fn two_downloaders_on_one_address_both_finish_at_a_full_seeder() {
    let dir = TestDir::new("busy-seeder");
    let tracker = Tracker::start(&dir);
    let (path, data) = dir.random_file("seed/shared.bin", 16 * CHUNK, 46);
    let cap = ["--max-upload", "2M"];
    let (seeder, _) = Peer::seeder_with("seeder", &tracker, &[&path], &cap);
    let _held: Vec<Raw> = (0..PER_ADDRESS - 4)
        .map(|_| {
            let mut c = Raw::peer(seeder.addr);
            assert_eq!(c.ask("HELLO 1"), "OK p2pshare 1");
            c
        })
        .collect();
    let args = ["--http", "0", "--workers", "64"];
    let mut dls = [
        Peer::start("dl1", &dir.sub("dl1"), &tracker, &args),
        Peer::start("dl2", &dir.sub("dl2"), &tracker, &args),
    ];

    let started = Instant::now();
    for dl in &mut dls {
        dl.proc.send("download shared.bin");
    }
    for dl in &dls {
        dl.await_fetched(1);
    }
    // A TLS server at its caps sends the busy alert instead of a handshake.
    let tcp = TcpStream::connect(seeder.addr).unwrap();
    let newcomer = Stream::tls_client(tcp, &test_tls(), None, REPLY).err();
    assert!(
        newcomer.as_ref().is_some_and(is_busy_alert),
        "the address is at its cap meanwhile: {newcomer:?}"
    );
    for (i, dl) in dls.iter().enumerate() {
        dl.finish_download(COMMAND)
            .unwrap_or_else(|l| panic!("dl{} failed: {l:?}", i + 1));
        let got = fs::read(dir.path().join(format!("dl{}/shared.bin", i + 1))).unwrap();
        assert_same_bytes(&got, &data, "shared.bin");
        let d = dl.ended_download();
        assert_every_chunk_once(&d, 16);
        assert!(
            !is_banned(&d, seeder.addr) && !is_benched(&d, seeder.addr),
            "{d:?}"
        );
    }
    figure(
        "busy seeder",
        "both downloads (8 MiB, 4 slots, 2 MiB/s)",
        started.elapsed(),
    );
}

/// A fake sole source that gives its manifest, then answers its next three
/// connections (the download's first worker connections) with `ERR busy`
/// and serves from then on: the download backs off (1 s, then 2 s, ...),
/// completes from it, byte-identical, and does not ban or bench it. Before
/// d6fdac3 each `ERR busy` was a strike: the three banned the only peer
/// and the download failed.
#[test]
fn a_peer_busy_at_first_is_used_once_it_has_room() {
    let (download, fake, took) = busy_at_first("busy-fake", 1..4);
    let only_fake = [fake.addr.to_string()];
    assert!(
        download.peers.iter().map(|p| &p.addr).eq(&only_fake),
        "{download:?}"
    );
    assert!(
        fake.connections() >= 5,
        "{} connections",
        fake.connections()
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
    figure("busy at first", "download after 3 busy replies", took);
}

/// The same fake answering its first three connections with `ERR busy`,
/// the manifest's included: the manifest is asked again after 1 s, 2 s and
/// 4 s, and the download completes from it. Until the fix the manifest
/// fetch counted `busy` as a failure like any other (`fetch_manifest` in
/// `peer/download/manifest.rs`), so with no other peer the download failed
/// at once with `no peer supplied a valid manifest ... (tried 1)`; beside
/// another peer, the busy one was banned from the download.
#[test]
fn a_sole_seeder_busy_at_first_still_gives_its_manifest() {
    busy_at_first("busy-manifest", 0..3);
}

/// A fake sole source of a 4-chunk file answering connections `busy` with
/// `ERR busy`: the download must succeed, byte-identical, every chunk once,
/// and neither ban nor bench it. Returns the download, the fake and how
/// long the download took.
fn busy_at_first(test: &str, busy: Range<usize>) -> (DownloadView, FakePeer, Duration) {
    let dir = TestDir::new(test);
    let tracker = Tracker::start(&dir);
    let (path, data) = dir.random_file("src/later.bin", 4 * CHUNK, 47);
    let fake = FakeSpec::of(&path).busy(busy).start();
    fake.register(tracker.addr(), "later.bin");
    let mut dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &["--http", "0"]);

    let started = Instant::now();
    let out = dir.path().join("dl/later.bin");
    let download = dl.download_checked("later.bin", 1, &out, &data);
    let took = started.elapsed();
    assert_every_chunk_once(&download, 4);
    assert!(!is_banned(&download, fake.addr) && !is_benched(&download, fake.addr));
    (download, fake, took)
}
