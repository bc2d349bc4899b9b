//! Peers that accept a connection and never answer, listed before the
//! honest seeder: three distinct ones, and the same ones listed over and
//! over by a hostile tracker. Each costs the 5 s `HELLO` timeout if waited
//! on; asked in parallel (and, for duplicates, once), they cost seconds in
//! all, not seconds each.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use p2pshare::bounds::CONNECT_TIMEOUT;
use p2pshare::storage::manifest_of;

use crate::support::fakes::{test_tls, Script, SilentPeer, StubTracker};
use crate::support::harness::{assert_same_bytes, figure, wait_until, TestDir, CHUNK, COMMAND};
use crate::support::programs::{HandListed, Peer, Tracker};
use crate::support::raw::{register, Raw};
use crate::support::status::{assert_every_chunk_once, sources};

/// Two silent peers' `HELLO` timeouts (`CONNECT_TIMEOUT`, 5 s each).
const TWO_TIMEOUTS: Duration = Duration::from_secs(10);

/// Three silent peers listed before the honest seeder cost one 5 s
/// timeout in all: the downloader asks one more peer for the manifest
/// every 500 ms, so the honest one is asked 1.5 s in, and the workers sent
/// to the silent peers wait out their timeouts side by side. Every chunk
/// comes from the honest seeder. Before f7cabf4 peers were asked for the
/// manifest one at a time: 3 x 5 s before the honest one was asked.
#[test]
fn silent_peers_cost_seconds_in_all_not_each() {
    let mut quiet = Quiet::start("silent");
    let started = Instant::now();
    let download = quiet
        .dl
        .download_checked("quiet.bin", 4, &quiet.out, &quiet.data);
    let took = started.elapsed();
    assert_every_chunk_once(&download, 4);
    assert_eq!(sources(&download), [quiet.honest.peer.addr].into());
    assert!(
        quiet.silent.iter().all(|s| s.accepted() > 0),
        "each was tried"
    );
    assert!(took < TWO_TIMEOUTS, "3 silent peers cost {took:?}");
    figure("silent peers", "download with 3 silent peers first", took);
}

/// The same download ends before its connections to the silent peers
/// time out. The workers connecting to a silent peer are interrupted with
/// the rest, since their sockets are registered with the download's stop
/// signal before the TLS handshake (by the `Dialer`, `peer/dial/dialer.rs`).
/// Until the fix that came only after the connection was made (then
/// `connect_peer` returned), so the download waited out their 5 s
/// timeouts: it ended no sooner than 5 s after the latest silent
/// connection. The bound is 1 s short of that (for the silent peers'
/// accept threads' lateness), and needs no wall-time window: working, the
/// download ends at its last chunk (the tail, a figure: well under 1 s).
/// It was "tail < 1 s", which a loaded machine could miss.
#[test]
fn a_download_ends_once_its_last_chunk_is_in() {
    let mut quiet = Quiet::start("silent-tail");
    quiet.dl.proc.send("download quiet.bin");
    let all_in = wait_until(COMMAND, "every chunk in", || {
        match quiet.dl.newest_download() {
            Some(d) if d.total_chunks > 0 && d.done_chunks == d.total_chunks => Ok(Instant::now()),
            other => Err(format!("{other:?}")),
        }
    });
    quiet
        .dl
        .finish_download(COMMAND)
        .unwrap_or_else(|l| panic!("the download failed: {l:?}"));
    let (ended, tail) = (Instant::now(), all_in.elapsed());
    figure("silent peers", "last chunk in to the download's end", tail);
    let last = quiet
        .silent
        .iter()
        .filter_map(SilentPeer::last_accepted)
        .max();
    let last = last.expect("the silent peers were tried");
    figure(
        "silent peers",
        "latest silent connection to the end",
        ended - last,
    );
    let timed_out = last + CONNECT_TIMEOUT - Duration::from_secs(1);
    assert!(
        ended < timed_out,
        "ended {:?} after the latest silent connection, {tail:?} after its last chunk",
        ended - last
    );
}

/// A hostile tracker lists each of three silent peers 8 times, then the
/// honest seeder: 25 rows, 4 distinct peers. Asked once each, they cost
/// what the distinct ones do (above). Until the fix the tracker's list
/// reached the manifest fetch as it was (`merge_peers` in `peer/locate.rs`
/// dropped only the DHT's duplicates of it), so the 24 silent rows, asked
/// 4 at a time, cost 6 rounds of 5 s before the honest one was asked.
#[test]
fn duplicate_addresses_are_asked_once() {
    let dir = TestDir::new("duplicates");
    let (path, data) = dir.random_file("seed/twice.bin", 4 * CHUNK, 44);
    let manifest = manifest_of(&path).unwrap();
    let silent = [
        SilentPeer::start(),
        SilentPeer::start(),
        SilentPeer::start(),
    ];
    let placeholder = StubTracker::start();
    let (honest, _) = Peer::seeder_port("honest", placeholder.port, &[&path], &[]);
    let mut peers: Vec<String> = (0..8)
        .flat_map(|_| silent.iter().map(|s| s.addr.to_string()))
        .collect();
    peers.push(honest.addr.to_string());
    let stub = StubTracker::scripted(Script {
        files: vec![format!("{} {} 1 twice.bin", manifest.id(), manifest.size())],
        peers,
        ..Script::default()
    });
    let mut dl = Peer::start_port("downloader", &dir.sub("dl"), stub.port, &[]);

    let started = Instant::now();
    dl.proc.send("download twice.bin");
    dl.finish_download(Duration::from_secs(15))
        .unwrap_or_else(|l| panic!("the download failed: {l:?}"));
    let took = started.elapsed();
    let got = std::fs::read(dir.path().join("dl/twice.bin")).unwrap();
    assert_same_bytes(&got, &data, "twice.bin");
    assert!(
        took < TWO_TIMEOUTS,
        "24 rows of 3 silent peers cost {took:?}"
    );
    figure(
        "duplicate addresses",
        "download with 24 duplicate rows first",
        took,
    );
}

/// A tracker listing three silent peers before an honest seeder of a
/// 4-chunk file, and a downloader with a status page.
struct Quiet {
    // Fields drop in order: the processes before the directory.
    dl: Peer,
    honest: HandListed,
    silent: [SilentPeer; 3],
    _tracker: Tracker,
    data: Vec<u8>,
    out: PathBuf,
    _dir: TestDir,
}

impl Quiet {
    fn start(test: &str) -> Quiet {
        let dir = TestDir::new(test);
        let tracker = Tracker::start(&dir);
        // Listed by hand before the silent peers, so they come first.
        let (path, data) = dir.random_file("seed/quiet.bin", 4 * CHUNK, 43);
        let honest = HandListed::start("honest", &dir, &path);
        honest.list_with(&tracker, "quiet.bin");
        let manifest = &honest.manifest;
        let silent = [
            SilentPeer::start(),
            SilentPeer::start(),
            SilentPeer::start(),
        ];
        for s in &silent {
            register(
                &test_tls(),
                tracker.addr(),
                s.addr.port(),
                manifest,
                "quiet.bin",
            );
        }
        let listed = Raw::connect(tracker.addr()).list(&format!("PEERS {}", manifest.id()));
        assert_eq!(
            listed.last(),
            Some(&honest.peer.addr.to_string()),
            "{listed:?}"
        );
        let dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &["--http", "0"]);
        Quiet {
            dl,
            honest,
            silent,
            _tracker: tracker,
            data,
            out: dir.path().join("dl/quiet.bin"),
            _dir: dir,
        }
    }
}
