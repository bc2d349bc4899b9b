//! Peers that are slow on purpose: a sole source that sends chunks a byte a
//! second, a peer listed first that trickles its manifest, and two slow
//! partial peers holding the last chunk in endgame. Each costs a bounded,
//! small time instead of holding the download. The fakes trickle true
//! bytes, so only time tells them apart from honest peers.

use std::fs;
use std::time::{Duration, Instant};

use crate::support::fakes::{ChunkReply, FakeSpec, ManifestReply};
use crate::support::harness::{assert_same_bytes, figure, wait_until, TestDir, CHUNK, COMMAND};
use crate::support::programs::{unfetched, HandListed, Peer, Tracker};
use crate::support::raw::Raw;
use crate::support::status::{assert_every_chunk_once, chunks_from, is_benched, sources};

/// The only peer of a 2-chunk file answers each `GET` with the header and
/// then one byte a second. Each payload read fails once a 5 s window brings
/// less than 16 KiB/s, a strike; the third benches the peer, no peer is
/// usable, and after `--patience 1` the download fails with the message
/// that says how to resume. Before 859929b every byte restarted the 10 s
/// read timeout, so the download hung for as long as the peer trickled
/// (measured by hand: no progress and no error in 45 s).
#[test]
fn a_trickling_sole_source_fails_in_bounded_time() {
    let dir = TestDir::new("trickle-sole");
    let tracker = Tracker::start(&dir);
    let (path, _) = dir.random_file("src/drip.bin", 2 * CHUNK, 40);
    let drip = ChunkReply::Trickle {
        bytes: 1,
        every: Duration::from_secs(1),
    };
    let fake = FakeSpec::of(&path).chunks(drip).start();
    fake.register(tracker.addr(), "drip.bin");
    let args = ["--http", "0", "--patience", "1"];
    let mut dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &args);

    let started = Instant::now();
    let lines = dl.download("drip.bin", None).expect_err("a trickle only");
    let took = started.elapsed();
    assert_eq!(lines.last().unwrap(), &unfetched("drip.bin", 2, 2, 1));
    let download = dl.ended_download();
    assert!(is_benched(&download, fake.addr), "{download:?}");
    assert!(took < Duration::from_secs(20), "failed after {took:?}");
    figure("trickling sole source", "failure after the start", took);
}

/// A fake listed before the honest seeder sends its manifest, and any
/// chunk, a byte every 2 s. The downloader asks the next peer 500 ms later
/// without waiting, so the honest seeder's manifest wins; the chunks the
/// trickler holds are fetched again from the seeder in endgame, and the
/// download completes from the seeder alone in well under one of the
/// trickler's 5 s payload windows. Before f7cabf4 peers
/// were asked for the manifest one at a time, in order: the trickler held
/// the download until its read gave up, 5 s later by the minimum payload
/// rate (since 859929b), never before.
#[test]
fn a_trickled_manifest_does_not_hold_the_download() {
    let dir = TestDir::new("trickle-manifest");
    let tracker = Tracker::start(&dir);
    // Listed by hand before the trickler, so the trickler comes first.
    let (path, data) = dir.random_file("seed/first.bin", 4 * CHUNK, 41);
    let seeder = HandListed::start("honest", &dir, &path);
    seeder.list_with(&tracker, "first.bin");
    let (honest, manifest) = (&seeder.peer, &seeder.manifest);
    let every = Duration::from_secs(2);
    let drip = ChunkReply::Trickle { bytes: 1, every };
    let fake = FakeSpec::of(&path)
        .manifest(ManifestReply::Trickle(every))
        .chunks(drip)
        .start();
    fake.register(tracker.addr(), "first.bin");
    let listed = Raw::connect(tracker.addr()).list(&format!("PEERS {}", manifest.id()));
    assert_eq!(listed, [fake.addr.to_string(), honest.addr.to_string()]);
    let mut dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &["--http", "0"]);

    let started = Instant::now();
    let out = dir.path().join("dl/first.bin");
    let download = dl.download_checked("first.bin", 2, &out, &data);
    let took = started.elapsed();
    assert_every_chunk_once(&download, 4);
    assert_eq!(sources(&download), [honest.addr].into(), "{download:?}");
    assert_eq!(fake.count("MANIFEST "), 1, "{:?}", fake.requests());
    assert!(took < Duration::from_secs(4), "took {took:?}");
    figure(
        "trickled manifest",
        "download with the trickler first",
        took,
    );
}

/// Two slow partial peers (30 KiB/s, above the minimum rate, so never cut
/// off) offer only the last chunk of eight, and both are fetching it before
/// the honest seeder is listed; the seeder then gives the other chunks at
/// once, and in endgame it takes the last chunk too, since holders older
/// than 3 s no longer count against the two-holder limit. Before d6fdac3
/// both slow holders filled that limit, so the honest seeder could not take
/// the chunk until the first slow copy was in (17 s at 30 KiB/s), and that
/// chunk came from a slow peer.
#[test]
fn two_slow_holders_cannot_keep_the_last_chunk_from_an_honest_seeder() {
    slow_holders("slow-holders", 8);
}

/// The same with four chunks. Four chunks get four workers (`--workers`
/// is capped by the chunks missing), two on each slow peer; each must
/// leave its peer, which offers nothing else, after `IDLE_SWITCH` for the
/// seeder found later. Until the fix the `HAVE` a worker asks every 500 ms
/// reset its idle time (`idle_since` in `peer/download/worker.rs`), so no
/// worker ever left: the seeder got none, and once the slow copy of chunk 3
/// was in (17 s) the other three chunks were never fetched.
#[test]
fn a_seeder_found_later_gets_the_workers_of_idle_partial_peers() {
    slow_holders("slow-holders-4", 4);
}

/// Two slow partial peers offering only the last of `chunks` chunks; the
/// honest seeder is listed once both fetch it. See the tests above.
fn slow_holders(test: &str, chunks: u32) {
    let dir = TestDir::new(test);
    let tracker = Tracker::start(&dir);
    let name = format!("{test}.bin");
    let last = chunks - 1;
    let (path, data) = dir.random_file(&format!("seed/{name}"), chunks as usize * CHUNK, 42);
    let honest = HandListed::start("honest", &dir, &path);
    let slow = || {
        let crawl = ChunkReply::Trickle {
            bytes: 3 * 1024,
            every: Duration::from_millis(100),
        };
        let fake = FakeSpec::of(&path).partial(&[last]).chunks(crawl).start();
        fake.register(tracker.addr(), &name);
        fake
    };
    let slow = [slow(), slow()];
    let mut dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &["--http", "0"]);

    dl.proc.send(&format!("download {name}"));
    let started = Instant::now();
    wait_until(
        COMMAND,
        "both slow peers fetching the last chunk",
        || match slow.iter().all(|f| f.gets().contains(&last)) {
            true => Ok(()),
            false => Err(format!("{:?} {:?}", slow[0].gets(), slow[1].gets())),
        },
    );
    let both_held = started.elapsed();
    honest.list_with(&tracker, &name);
    dl.finish_download(Duration::from_secs(15))
        .unwrap_or_else(|l| panic!("the download failed: {l:?}"));
    let took = started.elapsed();
    let got = fs::read(dir.path().join("dl").join(&name)).unwrap();
    assert_same_bytes(&got, &data, &name);
    let download = dl.ended_download();
    assert_every_chunk_once(&download, chunks as usize);
    assert_eq!(
        chunks_from(&download, honest.peer.addr),
        chunks,
        "{download:?}"
    );
    for fake in &slow {
        assert!(fake.gets().iter().all(|&i| i == last), "{:?}", fake.gets());
    }
    figure(test, "both slow peers holding the last chunk", both_held);
    figure(test, "whole download", took);
}
