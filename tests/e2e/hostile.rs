//! Hostile peers and hostile input, against the real binaries. Fake peers
//! (threads of this test speaking the peer protocol) lie about chunks or
//! manifests; raw clients send the tracker and a peer's chunk server lines
//! over the bound, binary garbage, unknown verbs, absurd arguments, nothing at
//! all, one byte a second, or requests they never read the answers to; floods
//! open thousands of connections. Each test checks that the lie is caught or
//! the input refused within a bound, and that honest traffic carries on
//! meanwhile, byte-identical.
//!
//! Some clients connect from 127.0.0.2 and up, standing for other hosts: all
//! of 127.0.0.0/8 is loopback on Linux, and the tracker tells peers apart, and
//! the servers count connections, by source address. std cannot choose a
//! client's source address, so [`connect_from`] uses `libc`, which is a
//! dependency of the package and therefore usable here.
//!
//! Tests that print `[figures]` lines feed docs/RELIABILITY.md; see them with
//! `cargo test --test e2e hostile -- --nocapture`.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::FromRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use p2pshare::manifest::Manifest;
use p2pshare::storage::manifest_of;

use crate::support::harness::{
    assert_same_bytes, random_bytes, Peer, Stream, TestDir, Tracker, COMMAND,
};

const CHUNK: usize = p2pshare::bounds::CHUNK_SIZE as usize;

/// How long a server may take to answer a line or to close, on a loaded
/// machine; the servers themselves take milliseconds.
const REPLY: Duration = Duration::from_secs(5);

/// The slowest answer a probe may get from a server under attack (it takes
/// about a millisecond when idle).
const PROMPT: Duration = Duration::from_secs(2);

const TOO_LONG: &str = "ERR line too long (limit 4096 bytes)";

// ---------------------------------------------------------------------------
// Lying peers

/// A fake peer with the right manifest but one flipped byte in every chunk,
/// beside an honest seeder: the downloader (8 workers) detects the first bad
/// chunk, bans the fake for the rest of the download and gets every chunk
/// from the honest seeder, byte for byte. The fake sees at most one `GET` per
/// worker: only those already under way when the ban fell.
#[test]
fn a_peer_serving_wrong_chunks_is_banned_and_the_download_completes() {
    let dir = TestDir::new("liar-chunks");
    let tracker = Tracker::start(&dir);
    let chunks = 8;
    let (path, data) = dir.random_file("seed/lied.bin", chunks * CHUNK + 99, 11);
    // The upload cap keeps the honest seeder busy for about a second, so the
    // workers sent to the fake surely ask it before the file is complete.
    let honest = seeder("honest", &tracker, &path, &["--max-upload", "4M"]);
    let fake = FakePeer::start(Lie::FlippedChunks, &path);
    fake.register(tracker.addr(), "lied.bin");
    let mut dl = Peer::start(
        "downloader",
        &dir.sub("dl"),
        &tracker,
        &["-v", "--workers", "8"],
    );

    let lines = dl
        .download("lied.bin", None)
        .unwrap_or_else(|l| panic!("download failed: {l:?}"));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Found 2 peers for lied.bin")),
        "{lines:?}"
    );
    let got = fs::read(dir.path().join("dl/lied.bin")).unwrap();
    assert_same_bytes(&got, &data, "lied.bin");

    let log = stderr_through_chunks(&dl, chunks + 1);
    let sources = chunk_sources(&log);
    let indexes: Vec<u32> = sorted(sources.iter().map(|&(i, _)| i).collect());
    assert_eq!(indexes, (0..=chunks as u32).collect::<Vec<_>>(), "{log:?}");
    assert!(
        sources.iter().all(|&(_, from)| from == honest.addr),
        "a chunk came from elsewhere than the honest seeder: {sources:?}"
    );
    let gets = fake.count("GET ");
    let fake_addr = fake.addr.to_string();
    let verdicts = log
        .iter()
        .filter(|l| l.contains("failed verification") && l.contains(&fake_addr))
        .count();
    assert!(
        (1..=8).contains(&gets),
        "the fake got {gets} GETs; at least one, and at most one per worker"
    );
    assert_eq!(verdicts, gets, "every bad chunk detected: {log:?}");
    let hangups = fake.hangups();
    eprintln!(
        "[figures] liar: {gets} GET(s) before the ban (8 workers); downloader hung up \
         {:?} after the end of a bad chunk (slowest of {})",
        hangups.iter().max(),
        hangups.len()
    );
}

/// Three fakes listed before the honest seeder, each lying about the
/// manifest: a valid manifest of other content, the real one with one hash
/// digit changed, and `OK 18446744073709551615` with nothing after it. The
/// downloader asks each once, rejects each (it does not hash to the id, or
/// its length is over the 16 MiB bound, so nothing is allocated), never asks
/// them for a chunk, and gets the file from the honest seeder.
#[test]
fn a_manifest_that_does_not_hash_to_the_id_is_skipped() {
    let dir = TestDir::new("liar-manifest");
    let tracker = Tracker::start(&dir);
    // The honest seeder registers itself with a decoy tracker; the test
    // registers it with the real one by hand, before the fakes, so the order
    // of the tracker's list (freshest first) is the test's choice, not a race
    // with the seeder's own announcements.
    let decoy = Tracker::start(&dir);
    let (path, data) = dir.random_file("seed/m.bin", 3 * CHUNK + 5, 12);
    let honest = seeder("honest", &decoy, &path, &[]);
    let manifest = manifest_of(&path).unwrap();
    let id = manifest.id().to_hex();
    register(tracker.addr(), honest.addr.port(), &manifest, "m.bin");

    let mut changed = manifest.encode();
    let last_hash = changed.len() - 65;
    changed[last_hash] = if changed[last_hash] == b'0' {
        b'1'
    } else {
        b'0'
    };
    let other = Manifest::new(100, vec![[7; 32]]).unwrap().encode();
    let fakes = [
        FakePeer::start(Lie::Manifest(other), &path),
        FakePeer::start(Lie::Manifest(changed), &path),
        FakePeer::start(Lie::AbsurdManifestLength, &path),
    ];
    for fake in &fakes {
        fake.register(tracker.addr(), "m.bin");
    }
    let mut c = Raw::connect(tracker.addr());
    assert_eq!(c.ask(&format!("PEERS {id}")), "OK 4");
    let listed: Vec<String> = (0..4).map(|_| c.line()).collect();
    assert_eq!(listed[3], honest.addr.to_string(), "honest listed last");

    let mut dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &["-v"]);
    let lines = dl
        .download("m.bin", None)
        .unwrap_or_else(|l| panic!("download failed: {l:?}"));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Found 4 peers for m.bin")),
        "{lines:?}"
    );
    let got = fs::read(dir.path().join("dl/m.bin")).unwrap();
    assert_same_bytes(&got, &data, "m.bin");

    let log = stderr_through_chunks(&dl, 4);
    assert!(chunk_sources(&log).iter().all(|&(_, a)| a == honest.addr));
    for fake in &fakes {
        assert_eq!(
            fake.requests(),
            ["HELLO 1".to_string(), format!("MANIFEST {id}")],
            "asked once for the manifest, never for a chunk"
        );
        let warned = format!("manifest from {}", fake.addr);
        assert!(log.iter().any(|l| l.contains(&warned)), "{log:?}");
    }
}

/// Only liars: two fakes with bad chunks fail the download with one clear
/// error once both are banned; two fakes with bad manifests fail it before
/// any chunk is asked for. Neither creates the output, and the REPL goes on.
#[test]
fn a_download_from_liars_only_fails_clearly_and_writes_nothing() {
    let dir = TestDir::new("all-liars");
    let tracker = Tracker::start(&dir);
    let (chunky, _) = dir.random_file("src/chunky.bin", 4 * CHUNK, 13);
    let (manifesty, _) = dir.random_file("src/manifesty.bin", CHUNK + 1, 14);
    let other = Manifest::new(100, vec![[7; 32]]).unwrap().encode();
    let fakes = [
        FakePeer::start(Lie::FlippedChunks, &chunky),
        FakePeer::start(Lie::FlippedChunks, &chunky),
        FakePeer::start(Lie::Manifest(other), &manifesty),
        FakePeer::start(Lie::AbsurdManifestLength, &manifesty),
    ];
    for fake in &fakes[..2] {
        fake.register(tracker.addr(), "chunky.bin");
    }
    for fake in &fakes[2..] {
        fake.register(tracker.addr(), "manifesty.bin");
    }
    let mut dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &[]);

    let started = Instant::now();
    let lines = dl.download("chunky.bin", None).expect_err("liars only");
    let chunky_took = started.elapsed();
    assert_eq!(
        lines.last().unwrap(),
        "error: 4 of 4 chunks could not be fetched from any peer; progress is kept for a retry"
    );
    for fake in &fakes[..2] {
        assert!(
            (1..=8).contains(&fake.count("GET ")),
            "{:?}",
            fake.requests()
        );
    }

    let started = Instant::now();
    let lines = dl.download("manifesty.bin", None).expect_err("liars only");
    let manifesty_took = started.elapsed();
    let id = manifest_of(&manifesty).unwrap().id();
    assert_eq!(
        lines.last().unwrap(),
        &format!("error: no peer supplied a valid manifest for {id} (tried 2)")
    );
    for fake in &fakes[2..] {
        assert_eq!(fake.count("GET "), 0);
    }

    // At most the hidden partial file (empty of verified chunks) of the
    // first download, kept for a resume; never an output.
    let entries = dir.entries("dl");
    assert!(
        entries
            .iter()
            .all(|e| e.starts_with(".chunky.bin.") && e.ends_with(".part")),
        "{entries:?}"
    );
    assert_eq!(dl.search("").len(), 2, "the REPL carries on");
    eprintln!(
        "[figures] liars only: bad chunks failed the download in {chunky_took:?}, \
         bad manifests in {manifesty_took:?}"
    );
}

// ---------------------------------------------------------------------------
// Hostile input

/// The tracker against hostile lines: framing errors (over the bound, binary
/// garbage with and without newlines, control characters, invalid UTF-8,
/// 10 MB of spaces) get `ERR` and a close; unknown verbs and absurd arguments
/// get `ERR` on a connection that stays usable and change nothing; an idle
/// and a one-byte-a-second connection are not dropped early and block no
/// one. A probe client is answered promptly throughout.
#[test]
fn the_tracker_refuses_hostile_input_and_keeps_serving() {
    let dir = TestDir::new("tracker-input");
    let tracker = Tracker::start(&dir);
    let to = tracker.addr();
    let probe = Probe::start(to, "SEARCH", "OK ");
    let (idle, slow) = (Raw::connect(to), Slowloris::start(to, b"SEARCH slowly\n"));

    refuses_framing_errors(to);
    let id = "ab".repeat(32);
    let mut c = Raw::connect(to);
    for (req, want) in [
        ("FROB".to_string(), "ERR unknown command: FROB".to_string()),
        (format!("GET {id} 0"), "ERR unknown command: GET".into()),
        (
            "X".repeat(1000),
            format!("ERR unknown command: {}", "X".repeat(40)),
        ),
        (
            "\u{1F600} 1".into(),
            "ERR unknown command: \u{1F600}".into(),
        ),
        (
            format!("REGISTER 5000 {id} 99999999999999999999 absurd.bin"),
            "ERR invalid size: 99999999999999999999".into(),
        ),
        (
            format!("REGISTER 70000 {id} 1 absurd.bin"),
            "ERR invalid port: 70000".into(),
        ),
        (
            format!("REGISTER -1 {id} 1 absurd.bin"),
            "ERR invalid port: -1".into(),
        ),
        (
            format!("REGISTER 5000 {id}0 1 absurd.bin"),
            format!("ERR invalid id: {id}0"),
        ),
        (
            format!("REGISTER 5000 {id} 1 ../../etc/passwd"),
            "ERR invalid file name: ../../etc/passwd".into(),
        ),
        (
            format!("REGISTER 5000 {id} 1 {}", "n".repeat(256)),
            format!("ERR invalid file name: {}", "n".repeat(80)),
        ),
        ("PEERS 1a82".into(), "ERR invalid id: 1a82".into()),
        (
            "HELLO 99999999999".into(),
            "ERR invalid version: 99999999999".into(),
        ),
        (
            "HELLO 2".into(),
            "ERR unsupported protocol version 2 (this tracker speaks 1)".into(),
        ),
        ("BYE 1 2".into(), "ERR unexpected argument: 2".into()),
        (" ".repeat(4000), "ERR empty request".into()),
    ] {
        assert_eq!(c.ask(&req), want, "{:.60}", req);
    }
    assert_eq!(c.ask("SEARCH"), "OK 0", "usable, and nothing registered");
    // The bound itself: 4096 bytes with the newline is a line.
    assert_eq!(c.ask(&format!("SEARCH {}", "a".repeat(4088))), "OK 0");
    refuses_ten_megabytes_of_spaces(to);

    // Slow clients are not dropped early (the bound is 30 s; the ignored
    // test `idle_and_slowloris_connections_are_closed_after_the_idle_timeout`
    // waits it out), and the probe showed the tracker served others meanwhile.
    slow.wait_sent(2);
    assert!(idle.is_open() && slow.raw.is_open(), "dropped within 2 s");
    probe.finish("tracker", PROMPT);
    assert!(
        tracker_panics(&tracker).is_empty(),
        "{:?}",
        tracker_panics(&tracker)
    );
}

/// A peer's chunk server against the same hostile lines, plus requests that
/// try to reach beyond what it shares: chunk 4294967295, an id it does not
/// share, ids that are paths. Each gets `ERR`, never data, never a panic; the
/// connection stays in step (a real chunk and the manifest asked for after
/// all the errors arrive exactly), and a real download from the same peer,
/// running meanwhile, arrives byte-identical.
#[test]
fn a_peer_refuses_hostile_input_and_keeps_serving() {
    let dir = TestDir::new("peer-input");
    let tracker = Tracker::start(&dir);
    let len = 8 * CHUNK - 1000;
    let (path, data) = dir.random_file("seed/served.bin", len, 15);
    // Capped so the real download below spans the whole barrage.
    let seeder = seeder("seeder", &tracker, &path, &["--max-upload", "2M"]);
    let manifest = manifest_of(&path).unwrap();
    let id = manifest.id().to_hex();
    let to = seeder.addr;
    let mut dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &[]);
    dl.proc.send("download served.bin");
    let probe = Probe::start(to, "HELLO 1", "OK p2pshare 1");
    let (idle, slow) = (Raw::connect(to), Slowloris::start(to, b"HELLO 1\n"));

    refuses_framing_errors(to);
    // Whether the connection then stays open is the peer's choice.
    let reply = Raw::connect(to).ask("HELLO 2");
    assert!(
        reply.starts_with("ERR unsupported protocol version 2"),
        "{reply}"
    );

    let unshared = "cd".repeat(32);
    let mut c = Raw::connect(to);
    for (req, want) in [
        ("FROB".to_string(), "ERR unknown command: FROB".to_string()),
        (
            format!("REGISTER 1 {id} 1 x"),
            "ERR unknown command: REGISTER".into(),
        ),
        (
            format!("GET {id} 4294967295"),
            "ERR no chunk 4294967295: file has 8 chunks".into(),
        ),
        (
            format!("GET {id} 4294967296"),
            "ERR invalid chunk index: 4294967296".into(),
        ),
        (format!("GET {id} -1"), "ERR invalid chunk index: -1".into()),
        (
            format!("GET {id} 8"),
            "ERR no chunk 8: file has 8 chunks".into(),
        ),
        (
            format!("GET {id}"),
            "ERR missing argument: chunk index".into(),
        ),
        (
            format!("GET {unshared} 0"),
            format!("ERR not sharing {unshared}"),
        ),
        (
            format!("MANIFEST {unshared}"),
            format!("ERR not sharing {unshared}"),
        ),
        (
            "MANIFEST ../../etc/passwd".into(),
            "ERR invalid id: ../../etc/passwd".into(),
        ),
        (
            "GET ../../etc/passwd 0".into(),
            "ERR invalid id: ../../etc/passwd".into(),
        ),
        (
            "GET /etc/passwd 0".into(),
            "ERR invalid id: /etc/passwd".into(),
        ),
        (
            format!("MANIFEST {id} x"),
            "ERR unexpected argument: x".into(),
        ),
        (String::new(), "ERR empty request".into()),
    ] {
        assert_eq!(c.ask(&req), want, "{req}");
    }
    // A thousand pipelined bad requests: a thousand ERR lines, in order.
    c.send(format!("GET {id} 4294967295\n").repeat(1000).as_bytes());
    for _ in 0..1000 {
        assert_eq!(c.line(), "ERR no chunk 4294967295: file has 8 chunks");
    }
    // Still in step: the last chunk and the manifest, exactly.
    assert_eq!(
        c.ask(&format!("GET {id} 7")),
        format!("OK {}", len - 7 * CHUNK)
    );
    assert_same_bytes(&c.payload(len - 7 * CHUNK), &data[7 * CHUNK..], "chunk 7");
    let encoded = manifest.encode();
    assert_eq!(
        c.ask(&format!("MANIFEST {id}")),
        format!("OK {}", encoded.len())
    );
    assert_eq!(c.payload(encoded.len()), encoded);
    refuses_ten_megabytes_of_spaces(to);

    slow.wait_sent(2);
    assert!(idle.is_open() && slow.raw.is_open(), "dropped within 2 s");
    let done = dl
        .proc
        .expect_line(Stream::Out, COMMAND, "the download", |l| {
            l.starts_with("Successfully downloaded: ") || l.starts_with("error:")
        });
    assert_eq!(done, "Successfully downloaded: served.bin");
    let got = fs::read(dir.path().join("dl/served.bin")).unwrap();
    assert_same_bytes(&got, &data, "served.bin");
    probe.finish("peer", PROMPT);
    assert!(
        seeder.proc.seen("panicked").is_empty(),
        "a handler panicked"
    );
}

/// A client that pipelines 128 chunk requests (64 MiB) and never reads: once
/// the socket buffers are full, the peer must drop it after about
/// `IO_TIMEOUT` (10 s) without progress, freeing its thread and slot, while
/// others are served meanwhile. (It took ~41 s when the timeout applied to
/// each system call rather than to progress on the reply.)
#[test]

fn a_client_that_never_reads_is_dropped_after_the_write_timeout() {
    let dir = TestDir::new("never-reads");
    let tracker = Tracker::start(&dir);
    let (path, _) = dir.random_file("seed/big.bin", 8 * CHUNK, 16);
    let seeder = seeder("seeder", &tracker, &path, &[]);
    let id = manifest_of(&path).unwrap().id();
    let probe = Probe::start(seeder.addr, "HELLO 1", "OK p2pshare 1");

    let mut c = Raw::connect(seeder.addr);
    let local = c.w.local_addr().unwrap().to_string();
    let requests: String = (0..128).map(|i| format!("GET {id} {}\n", i % 8)).collect();
    let started = Instant::now();
    c.send(requests.as_bytes());
    let gave_up = Duration::from_secs(45);
    let line = seeder
        .proc
        .expect_line(Stream::Err, gave_up, "a write timeout", |l| {
            l.contains("sending chunk") && l.contains(&local)
        });
    let gave_up = started.elapsed();
    probe.finish("peer", PROMPT);
    eprintln!("[figures] never-reading client: dropped {gave_up:?} after its requests: {line}");
    assert!(line.contains("timed out"), "{line}");
    assert!(
        gave_up < Duration::from_secs(15),
        "held {gave_up:?}, IO_TIMEOUT is 10 s"
    );
}

/// Idle and one-byte-a-second connections to a tracker and a peer are each
/// closed, without a reply, 5 to 12 s after they opened (the bound is
/// `FIRST_LINE_TIMEOUT`, 5 s, for a new connection's whole first line; the
/// kernel may fire a socket timeout up to ~2 s late), while both servers go
/// on answering others.
#[test]
fn idle_and_slowloris_connections_are_closed_after_the_first_line_timeout() {
    let dir = TestDir::new("idle");
    let tracker = Tracker::start(&dir);
    let (path, _) = dir.random_file("seed/x.bin", 10, 17);
    let seeder = seeder("seeder", &tracker, &path, &[]);
    let probes = [
        Probe::start(tracker.addr(), "SEARCH", "OK "),
        Probe::start(seeder.addr, "HELLO 1", "OK p2pshare 1"),
    ];
    let started = Instant::now();
    let mut watchers = Vec::new();
    for (server, to) in [("tracker", tracker.addr()), ("peer", seeder.addr)] {
        let idle = Raw::connect(to);
        let slow = Slowloris::start(to, format!("SEARCH {}\n", "a".repeat(100)).as_bytes());
        for (kind, mut raw) in [("idle", idle), ("slowloris", slow.raw.clone_raw())] {
            watchers.push(thread::spawn(move || {
                let how = raw.expect_close(Duration::from_secs(12));
                (server, kind, how, started.elapsed())
            }));
        }
        watchers.push(thread::spawn(move || {
            slow.wait_closed(Duration::from_secs(15));
            (server, "slowloris writer", "stopped", started.elapsed())
        }));
    }
    for w in watchers {
        let (server, kind, how, after) = w.join().expect("a watcher failed");
        eprintln!("[figures] {server}: {kind} connection {how} after {after:?}");
        if kind != "slowloris writer" {
            assert!(
                after >= Duration::from_millis(4900),
                "{server} {kind}: {after:?}"
            );
        }
    }
    for (probe, what) in probes.into_iter().zip(["tracker", "peer"]) {
        probe.finish(what, PROMPT);
    }
}

// ---------------------------------------------------------------------------
// Floods

/// 2000 idle connections to the tracker and 500 to a seeder, all from one
/// other host (127.0.0.2 and .3), opened while two downloads start from
/// 127.0.0.1: the per-address caps hold exactly 128 and 96 of them, every
/// other one gets `ERR busy` (or is closed) at once, the downloads arrive
/// byte-identical, and a probe client is answered throughout. A burst can
/// still overflow the listen backlog (1024) now and then, and a dropped SYN
/// costs whoever sent it, flood or not, a 1 s retransmission: the figures
/// show how much of that the downloads and the probe saw.
#[test]
fn a_flood_from_one_host_does_not_starve_intact_downloads() {
    let dir = TestDir::new("flood");
    let tracker = Tracker::start(&dir);
    let len = 8 * CHUNK;
    let files: Vec<_> = ["a", "b", "c", "d"]
        .iter()
        .zip(20..)
        .map(|(n, seed)| dir.random_file(&format!("seed/{n}.bin"), len, seed))
        .collect();
    let paths: Vec<&Path> = files.iter().map(|(p, _)| p.as_path()).collect();
    let (seeder, _) = Peer::seeder("seeder", &tracker, &paths);
    let mut dls = [
        Peer::start("dl1", &dir.sub("dl1"), &tracker, &[]),
        Peer::start("dl2", &dir.sub("dl2"), &tracker, &[]),
    ];

    let quiet = download_pair(&mut dls, ["a.bin", "b.bin"]);
    let probe = Probe::start(tracker.addr(), "SEARCH", "OK ");
    let flood_started = Instant::now();
    let at_tracker = Flood::start(&[Ipv4Addr::new(127, 0, 0, 2)], 2000, tracker.addr());
    let at_seeder = Flood::start(&[Ipv4Addr::new(127, 0, 0, 3)], 500, seeder.addr);
    // In full flow, and the per-address caps already reached.
    at_tracker.wait_opened(400);
    at_seeder.wait_opened(200);
    let flooded = download_pair(&mut dls, ["c.bin", "d.bin"]);
    let (at_tracker, failed_t) = at_tracker.finish();
    let (at_seeder, failed_s) = at_seeder.finish();
    let flood_took = flood_started.elapsed();

    for (i, (name, (_, data))) in ["a", "b", "c", "d"].iter().zip(&files).enumerate() {
        let got = fs::read(dir.path().join(format!("dl{}/{name}.bin", i % 2 + 1))).unwrap();
        assert_same_bytes(&got, data, name);
    }
    let fate_t = settle(&at_tracker, 128);
    let fate_s = settle(&at_seeder, 96);
    assert_eq!(fate_t.open, 128, "tracker: {fate_t:?}");
    assert_eq!(fate_s.open, 96, "seeder: {fate_s:?}");
    assert!(fate_t.busy > 0 && fate_s.busy > 0);
    let tracker_pid = tracker.proc().pid();
    let (t_rss, s_rss) = (vm(tracker_pid, "VmHWM"), vm(seeder.proc.pid(), "VmHWM"));
    let (t_threads, s_threads) = (vm(tracker_pid, "Threads"), vm(seeder.proc.pid(), "Threads"));
    drop((at_tracker, at_seeder));
    assert_eq!(Raw::connect(tracker.addr()).ask("SEARCH nomatch"), "OK 0");
    eprintln!(
        "[figures] one-host flood: 2000 + 500 connections tried in {flood_took:?} \
         ({failed_t} + {failed_s} timed out connecting); tracker {fate_t:?}, seeder {fate_s:?}; \
         two 4 MiB downloads took {quiet:?} without, {flooded:?} during the flood; \
         peak RSS tracker {t_rss} kB ({t_threads} threads), seeder {s_rss} kB ({s_threads} threads)"
    );
    // Not starved (a starved download fails on `ERR busy`), and slowed by
    // no more than a few dropped SYNs (1 s each, then 2 s, 4 s).
    assert!(
        flooded < quiet + Duration::from_secs(15),
        "downloads took {flooded:?} during the flood, {quiet:?} without"
    );
    probe.finish("tracker during the flood", REPLY);
}

/// Known limit, pinned: idle connections from enough addresses, each under
/// its per-address cap (11 x 100 to the tracker, 3 x 100 to a peer), take
/// every slot (1024 and 256), and then everyone else gets `ERR busy` until
/// they go (or the 5 s first-line timeout closes them). What does hold: the excess
/// is refused at once, memory stays bounded, and service resumes as soon as
/// the flood lets go.
#[test]
fn a_flood_from_many_addresses_takes_every_slot_until_it_lets_go() {
    let dir = TestDir::new("flood-many");
    let tracker = Tracker::start(&dir);
    let (path, _) = dir.random_file("seed/x.bin", 10, 18);
    let seeder = seeder("seeder", &tracker, &path, &[]);
    let addrs = |third: u8, n: u8| {
        (1..=n)
            .map(|i| Ipv4Addr::new(127, 0, third, i))
            .collect::<Vec<_>>()
    };
    let (at_tracker, _) = Flood::start(&addrs(1, 11), 100, tracker.addr()).finish();
    let (at_seeder, _) = Flood::start(&addrs(2, 3), 100, seeder.addr).finish();
    let fate_t = settle(&at_tracker, 1024);
    let fate_s = settle(&at_seeder, 256);
    assert_eq!(
        (fate_t.open, fate_s.open),
        (1024, 256),
        "{fate_t:?} {fate_s:?}"
    );

    assert_eq!(Raw::connect(tracker.addr()).line(), "ERR busy");
    assert_eq!(Raw::connect(seeder.addr).line(), "ERR busy");
    let tracker_pid = tracker.proc().pid();
    let (t_rss, s_rss) = (vm(tracker_pid, "VmHWM"), vm(seeder.proc.pid(), "VmHWM"));

    let let_go = Instant::now();
    drop((at_tracker, at_seeder));
    let served = |to: SocketAddr, req: &str, want: &str| {
        let deadline = Instant::now() + REPLY;
        loop {
            let reply = Raw::connect(to).ask(req);
            if reply.starts_with(want) {
                return;
            }
            assert!(Instant::now() < deadline, "still {reply:?} {REPLY:?} after");
        }
    };
    served(tracker.addr(), "SEARCH", "OK 1");
    served(seeder.addr, "HELLO 1", "OK p2pshare 1");
    eprintln!(
        "[figures] many-address flood: tracker {fate_t:?}, seeder {fate_s:?}; \
         legitimate clients got ERR busy until the flood let go, served again \
         {:?} after; peak RSS tracker {t_rss} kB with 1024 connections, \
         seeder {s_rss} kB with 256",
        let_go.elapsed()
    );
}

// ---------------------------------------------------------------------------
// Who may unregister whom

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
    let seeder = seeder("seeder", &tracker, &path, &["--announce-interval", "3600"]);
    let manifest = manifest_of(&path).unwrap();
    let id = manifest.id();
    let port = seeder.addr.port();
    let peers = || {
        let mut c = Raw::connect(tracker.addr());
        let n: usize = c.ask(&format!("PEERS {id}"))[3..].parse().unwrap();
        sorted((0..n).map(|_| c.line()).collect())
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

// ---------------------------------------------------------------------------
// Helpers: processes and logs

/// Starts a `--serve` peer sharing `path` with `extra` options, once the
/// tracker has the file.
fn seeder(name: &str, tracker: &Tracker, path: &Path, extra: &[&str]) -> Peer {
    let mut args = vec!["--serve", "--share", path.to_str().expect("UTF-8 paths")];
    args.extend_from_slice(extra);
    let peer = Peer::start(name, path.parent().unwrap(), tracker, &args);
    let line = peer
        .proc
        .expect_line(Stream::Out, COMMAND, "the share", |l| {
            l.starts_with("Successfully registered file: ") || l.starts_with("error:")
        });
    assert!(!line.starts_with("error:"), "{name}: {line}");
    peer
}

/// Stderr lines of `dl` up to and including its `n`th `Downloaded chunk`
/// line. Every verification warning of a download precedes its last chunk
/// (a chunk a liar held must come back and be fetched elsewhere first).
fn stderr_through_chunks(dl: &Peer, n: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut seen = 0;
    while seen < n {
        let line = dl
            .proc
            .expect_line(Stream::Err, COMMAND, "a log line", |_| true);
        seen += usize::from(line.contains("Downloaded chunk "));
        lines.push(line);
    }
    lines
}

/// `(index, from)` of each `... Downloaded chunk I from HOST:PORT` line.
fn chunk_sources(log: &[String]) -> Vec<(u32, SocketAddr)> {
    log.iter()
        .filter_map(|l| l.split("Downloaded chunk ").nth(1))
        .map(|rest| {
            let (i, from) = rest.split_once(" from ").expect("a chunk log line");
            (i.parse().unwrap(), from.trim().parse().unwrap())
        })
        .collect()
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// Lines of the tracker's stderr so far that report a panic.
fn tracker_panics(tracker: &Tracker) -> Vec<String> {
    tracker.proc().seen("panicked")
}

/// Starts `download NAME` on both peers at once; returns when both have
/// succeeded, with the time that took.
fn download_pair(dls: &mut [Peer; 2], names: [&str; 2]) -> Duration {
    let started = Instant::now();
    for (dl, name) in dls.iter_mut().zip(names) {
        dl.proc.send(&format!("download {name}"));
    }
    for (dl, name) in dls.iter().zip(names) {
        let done = dl
            .proc
            .expect_line(Stream::Out, COMMAND, "a download", |l| {
                l.starts_with("Successfully downloaded: ") || l.starts_with("error:")
            });
        assert_eq!(done, format!("Successfully downloaded: {name}"));
    }
    let took = started.elapsed();
    for dl in dls.iter() {
        dl.proc.expect_out(" saved as ", COMMAND);
    }
    took
}

/// A `Vm*` (kB) or `Threads` figure of process `pid`, from /proc.
fn vm(pid: u32, field: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("a live process");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

// ---------------------------------------------------------------------------
// Helpers: raw clients

/// Connects to `to` from the local address `from` (any of 127.0.0.0/8),
/// which the server takes for another host. std cannot bind a client socket
/// before connecting, hence libc.
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> io::Result<TcpStream> {
    let SocketAddr::V4(to) = to else {
        panic!("IPv4 only: {to}")
    };
    let sockaddr = |a: SocketAddrV4| {
        // SAFETY: sockaddr_in is plain data, valid when zeroed.
        let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_port = a.port().to_be();
        sa.sin_addr.s_addr = u32::from(*a.ip()).to_be();
        sa
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a fresh descriptor, owned by `stream` at once, so it is closed
    // on every path; bind and connect get a valid sockaddr_in and its size.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        // On Linux the send timeout also bounds a blocking connect.
        stream.set_write_timeout(Some(REPLY))?;
        let local = sockaddr(SocketAddrV4::new(from, 0));
        if libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(io::Error::last_os_error());
        }
        let remote = sockaddr(to);
        if libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stream)
    }
}

/// A raw protocol client: lines out, reply lines or payload bytes back, each
/// read bounded by [`REPLY`].
struct Raw {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Raw {
    fn connect(to: SocketAddr) -> Raw {
        Raw::new(TcpStream::connect(to).unwrap_or_else(|e| panic!("connect {to}: {e}")))
    }

    fn connect_from(from: Ipv4Addr, to: SocketAddr) -> Raw {
        Raw::new(connect_from(from, to).unwrap_or_else(|e| panic!("connect {to} from {from}: {e}")))
    }

    fn new(stream: TcpStream) -> Raw {
        stream.set_read_timeout(Some(REPLY)).unwrap();
        stream.set_write_timeout(Some(REPLY)).unwrap();
        Raw {
            w: stream.try_clone().unwrap(),
            r: BufReader::new(stream),
        }
    }

    /// Another handle on the same connection (unbuffered reads so far).
    fn clone_raw(&self) -> Raw {
        Raw::new(self.w.try_clone().unwrap())
    }

    fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).expect("cannot send");
    }

    /// The next reply line, without its `\n`.
    fn line(&mut self) -> String {
        let mut buf = Vec::new();
        let read = self.r.read_until(b'\n', &mut buf);
        if !buf.ends_with(b"\n") {
            panic!(
                "no whole reply line within {REPLY:?}: {read:?}, got {:?}",
                String::from_utf8_lossy(&buf)
            );
        }
        buf.pop();
        String::from_utf8(buf).expect("replies are UTF-8")
    }

    fn ask(&mut self, req: &str) -> String {
        self.send(format!("{req}\n").as_bytes());
        self.line()
    }

    fn payload(&mut self, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        self.r.read_exact(&mut buf).expect("a whole payload");
        buf
    }

    /// Asserts that the server closes the connection within `within` and
    /// sends nothing more first; returns how it closed.
    fn expect_close(&mut self, within: Duration) -> &'static str {
        assert!(
            self.r.buffer().is_empty(),
            "data after the reply: {:?}",
            self.r.buffer()
        );
        self.w.set_read_timeout(Some(within)).unwrap();
        let mut byte = [0u8; 1];
        match self.r.get_mut().read(&mut byte) {
            Ok(0) => "closed",
            Ok(_) => panic!("data instead of a close: {byte:?}"),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => "reset",
            Err(e) => panic!("not closed within {within:?}: {e}"),
        }
    }

    /// Whether the server has neither closed the connection nor sent
    /// anything on it.
    fn is_open(&self) -> bool {
        self.w.set_nonblocking(true).unwrap();
        let peeked = self.w.peek(&mut [0u8; 1]);
        self.w.set_nonblocking(false).unwrap();
        matches!(peeked, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

/// Framing errors, each on a fresh connection: `ERR`, then a close.
fn refuses_framing_errors(to: SocketAddr) {
    let mut garbage = random_bytes(8192, 99);
    garbage.retain(|&b| b != b'\n');
    let mut with_newlines = random_bytes(8192, 98);
    for b in with_newlines.iter_mut().step_by(64) {
        *b = b'\n';
    }
    // Starts with an empty line, which is only a mistake (`ERR empty
    // request`); the next line is not UTF-8, which is the end.
    assert_eq!(with_newlines[0], b'\n');
    let over = [b"SEARCH ".as_slice(), &[b'a'; 10_000], b"\n"].concat();
    for (what, bytes, want) in [
        ("a line over the bound", over, TOO_LONG),
        ("binary garbage without a newline", garbage, TOO_LONG),
        (
            "binary garbage with newlines",
            with_newlines,
            "ERR line is not valid UTF-8",
        ),
        (
            "a NUL byte",
            b"SEARCH a\0b\n".to_vec(),
            "ERR line contains a control character",
        ),
        (
            "invalid UTF-8",
            b"SEARCH \xff\xfe\n".to_vec(),
            "ERR line is not valid UTF-8",
        ),
    ] {
        let mut c = Raw::connect(to);
        c.send(&bytes);
        let mut reply = c.line();
        if bytes[0] == b'\n' {
            assert_eq!(reply, "ERR empty request", "{what}");
            reply = c.line();
        }
        assert_eq!(reply, want, "{what}");
        c.expect_close(REPLY);
    }
}

/// `SEARCH` and 10 MB of spaces, written by a thread of its own: the server
/// answers once 4096 bytes are in, closes, and the writer then fails instead
/// of hanging.
fn refuses_ten_megabytes_of_spaces(to: SocketAddr) {
    let mut c = Raw::connect(to);
    let mut w = c.w.try_clone().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = b"SEARCH".to_vec();
        line.resize(10_000_000, b' ');
        line.push(b'\n');
        let _ = tx.send(w.write_all(&line));
    });
    assert_eq!(c.line(), TOO_LONG);
    c.expect_close(REPLY);
    let written = rx.recv_timeout(REPLY).expect("the writer hung");
    assert!(written.is_err(), "the server read all 10 MB");
}

/// A client that sends `line` one byte a second, on a thread of its own,
/// until the server closes or the line is out.
struct Slowloris {
    raw: Raw,
    sent: Arc<AtomicUsize>,
    writer: JoinHandle<()>,
}

impl Slowloris {
    fn start(to: SocketAddr, line: &[u8]) -> Slowloris {
        let raw = Raw::connect(to);
        let mut w = raw.w.try_clone().unwrap();
        let sent = Arc::new(AtomicUsize::new(0));
        let (counter, line) = (Arc::clone(&sent), line.to_vec());
        let writer = thread::spawn(move || {
            for byte in line {
                if w.write_all(&[byte]).is_err() {
                    return;
                }
                counter.fetch_add(1, Ordering::SeqCst);
                thread::sleep(Duration::from_secs(1));
            }
        });
        Slowloris { raw, sent, writer }
    }

    /// Waits until `n` bytes are out (about `n - 1` seconds after the start).
    fn wait_sent(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(n as u64 + 5);
        while self.sent.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "the slowloris writer stalled");
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the writer to stop (the server closed, or the line is out).
    fn wait_closed(self, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.writer.is_finished() {
            assert!(Instant::now() < deadline, "the slowloris writer still runs");
            thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A client asking `request` on a fresh connection every 50 ms until
/// finished, timing each answer: the server under attack still serves others.
struct Probe {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<Result<Duration, String>>>,
}

impl Probe {
    fn start(to: SocketAddr, request: &'static str, want: &'static str) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let handle = thread::spawn(move || {
            let mut results = Vec::new();
            // Bounded even if never stopped: 2000 x 50 ms is 100 s.
            while !stopped.load(Ordering::SeqCst) && results.len() < 2000 {
                let started = Instant::now();
                let reply = (|| -> io::Result<String> {
                    let s = TcpStream::connect_timeout(&to, REPLY)?;
                    s.set_read_timeout(Some(REPLY))?;
                    (&s).write_all(format!("{request}\n").as_bytes())?;
                    let mut line = String::new();
                    BufReader::new(s).read_line(&mut line)?;
                    Ok(line)
                })();
                results.push(match reply {
                    Ok(line) if line.starts_with(want) => Ok(started.elapsed()),
                    Ok(line) => Err(line),
                    Err(e) => Err(e.to_string()),
                });
                thread::sleep(Duration::from_millis(50));
            }
            results
        });
        Probe { stop, handle }
    }

    /// Stops the probe; asserts every request was answered within `bound`.
    fn finish(self, server: &str, bound: Duration) {
        self.stop.store(true, Ordering::SeqCst);
        let results = self.handle.join().expect("the probe panicked");
        let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(
            failures.is_empty(),
            "{server} failed the probe: {failures:?}"
        );
        let mut times: Vec<Duration> = results.into_iter().map(Result::unwrap).collect();
        times.sort();
        let slowest = *times.last().expect("at least one probe");
        eprintln!(
            "[figures] {server} probe: {} answers during the attack, median {:?}, slowest {slowest:?}",
            times.len(),
            times[times.len() / 2]
        );
        assert!(slowest < bound, "{server} answered a probe in {slowest:?}");
    }
}

/// Connections being opened to `to`, `per_addr` from each address of
/// `from`, by 8 threads; they send nothing.
struct Flood {
    opened: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<Vec<io::Result<TcpStream>>>>,
}

impl Flood {
    fn start(from: &[Ipv4Addr], per_addr: usize, to: SocketAddr) -> Flood {
        let jobs: Vec<Ipv4Addr> = from
            .iter()
            .flat_map(|&a| std::iter::repeat_n(a, per_addr))
            .collect();
        let opened = Arc::new(AtomicUsize::new(0));
        let threads = jobs
            .chunks(jobs.len().div_ceil(8))
            .map(|part| {
                let (part, opened) = (part.to_vec(), Arc::clone(&opened));
                thread::spawn(move || {
                    let conn = |&a: &Ipv4Addr| {
                        let c = connect_from(a, to);
                        opened.fetch_add(1, Ordering::SeqCst);
                        c
                    };
                    part.iter().map(conn).collect()
                })
            })
            .collect();
        Flood { opened, threads }
    }

    /// Waits until `n` connections have been tried.
    fn wait_opened(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.opened.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "the flood stalled");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for every attempt; returns the connections and how many could
    /// not connect (each try is bounded by the connect timeout).
    fn finish(self) -> (Vec<TcpStream>, usize) {
        let mut open = Vec::new();
        let mut failed = 0;
        for t in self.threads {
            for conn in t.join().expect("a flood thread panicked") {
                match conn {
                    Ok(c) => open.push(c),
                    Err(_) => failed += 1,
                }
            }
        }
        (open, failed)
    }
}

/// What became of the connections of a flood.
#[derive(Debug, Default, PartialEq, Eq)]
struct Fate {
    /// Accepted and held: nothing received, not closed.
    open: usize,
    /// Got `ERR busy`.
    busy: usize,
    /// Closed (or reset) without a word.
    closed: usize,
}

/// Waits until `held` connections remain open (the rest have been refused),
/// or [`REPLY`] passes; returns the last count.
fn settle(conns: &[TcpStream], held: usize) -> Fate {
    let deadline = Instant::now() + REPLY;
    loop {
        let fate = fates(conns);
        if fate.open <= held || Instant::now() >= deadline {
            return fate;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn fates(conns: &[TcpStream]) -> Fate {
    let mut fate = Fate::default();
    let mut buf = [0u8; 16];
    for c in conns {
        c.set_nonblocking(true).unwrap();
        match c.peek(&mut buf) {
            Ok(n) if buf[..n].starts_with(b"ERR busy") => fate.busy += 1,
            Ok(0) => fate.closed += 1,
            Ok(n) => panic!("unexpected bytes from a server: {:?}", &buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => fate.open += 1,
            Err(_) => fate.closed += 1,
        }
        c.set_nonblocking(false).unwrap();
    }
    fate
}

// ---------------------------------------------------------------------------
// Helpers: fake peers

/// How a fake peer lies. Whatever the lie, every chunk it sends has the
/// right length and one flipped byte.
enum Lie {
    /// The right manifest, so it is trusted until its first chunk.
    FlippedChunks,
    /// These bytes as the manifest: not the file's, so not hashing to its id.
    Manifest(Vec<u8>),
    /// `OK 18446744073709551615` for the manifest, and nothing after it.
    AbsurdManifestLength,
}

/// What a fake peer serves and what it saw.
struct Fake {
    lie: Lie,
    manifest: Manifest,
    data: Vec<u8>,
    requests: Mutex<Vec<String>>,
    /// Per connection that got a bad chunk: from the end of the first bad
    /// chunk to the downloader hanging up.
    hangups: Mutex<Vec<Duration>>,
}

/// A peer-protocol server on a thread of this test, sharing the file at a
/// path under that file's id, and lying about it.
struct FakePeer {
    addr: SocketAddr,
    fake: Arc<Fake>,
    stop: Arc<AtomicBool>,
}

impl FakePeer {
    fn start(lie: Lie, path: &Path) -> FakePeer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let fake = Arc::new(Fake {
            lie,
            manifest: manifest_of(path).unwrap(),
            data: fs::read(path).unwrap(),
            requests: Mutex::new(Vec::new()),
            hangups: Mutex::new(Vec::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (f, stopped) = (Arc::clone(&fake), Arc::clone(&stop));
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(conn) = conn {
                    let f = Arc::clone(&f);
                    thread::spawn(move || serve_fake(conn, &f));
                }
            }
        });
        FakePeer { addr, fake, stop }
    }

    /// Registers this fake with the tracker at `tracker` for its file.
    fn register(&self, tracker: SocketAddr, name: &str) {
        register(tracker, self.addr.port(), &self.fake.manifest, name);
    }

    fn requests(&self) -> Vec<String> {
        self.fake.requests.lock().unwrap().clone()
    }

    fn count(&self, prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.starts_with(prefix))
            .count()
    }

    fn hangups(&self) -> Vec<Duration> {
        self.fake.hangups.lock().unwrap().clone()
    }
}

impl Drop for FakePeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// `REGISTER`s `port` as having `manifest`'s file, from 127.0.0.1.
fn register(tracker: SocketAddr, port: u16, manifest: &Manifest, name: &str) {
    let req = format!(
        "REGISTER {port} {} {} {name}",
        manifest.id(),
        manifest.size()
    );
    assert_eq!(Raw::connect(tracker).ask(&req), "OK registered");
}

fn serve_fake(stream: TcpStream, fake: &Fake) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut w) = stream.try_clone() else {
        return;
    };
    let mut r = BufReader::new(stream);
    let mut first_bad: Option<Instant> = None;
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let req = line.trim_end().to_string();
        fake.requests.lock().unwrap().push(req.clone());
        let words: Vec<&str> = req.split(' ').collect();
        let (reply, bad) = match words.as_slice() {
            ["HELLO", "1"] => (b"OK p2pshare 1\n".to_vec(), false),
            ["MANIFEST", _] => match &fake.lie {
                Lie::FlippedChunks => (with_payload(&fake.manifest.encode()), false),
                Lie::Manifest(bytes) => (with_payload(bytes), false),
                Lie::AbsurdManifestLength => (b"OK 18446744073709551615\n".to_vec(), false),
            },
            ["GET", _, index] => match index.parse().ok().and_then(|i| fake.manifest.chunk(i)) {
                Some(c) => {
                    let start = c.offset as usize;
                    let mut bytes = fake.data[start..start + c.len as usize].to_vec();
                    bytes[c.len as usize / 2] ^= 1;
                    (with_payload(&bytes), true)
                }
                None => (b"ERR no such chunk\n".to_vec(), false),
            },
            _ => (b"ERR unknown command\n".to_vec(), false),
        };
        if w.write_all(&reply).is_err() {
            break;
        }
        if bad && first_bad.is_none() {
            first_bad = Some(Instant::now());
        }
    }
    if let Some(t) = first_bad {
        fake.hangups.lock().unwrap().push(t.elapsed());
    }
}

fn with_payload(bytes: &[u8]) -> Vec<u8> {
    [format!("OK {}\n", bytes.len()).as_bytes(), bytes].concat()
}
