//! Hostile input to the tracker and to a peer's chunk server: framing
//! errors, unknown verbs and absurd arguments get `ERR` (and, for framing,
//! a close); idle, slow and never-reading clients are dropped after their
//! timeouts; a probe client is answered promptly throughout.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use p2pshare::bounds::{FIRST_LINE_TIMEOUT, IDLE_TIMEOUT};
use p2pshare::storage::manifest_of;

use crate::support::harness::{assert_same_bytes, random_bytes, Stream, TestDir, CHUNK, COMMAND};
use crate::support::programs::{Peer, Tracker};
use crate::support::raw::{Probe, Raw, Slowloris, REPLY};

/// The slowest answer a probe may get from a server under attack (it takes
/// about a millisecond when idle).
const PROMPT: Duration = Duration::from_secs(2);

const TOO_LONG: &str = "ERR line too long (limit 4096 bytes)";

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

    refuses_framing_errors(&|| Raw::connect(to));
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
            "HELLO 4".into(),
            "ERR unsupported protocol version 4 (this tracker speaks 1 to 3)".into(),
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

    // Slow clients are not dropped early (the bound is 5 s for the first
    // line; `idle_and_slowloris_connections_are_closed_after_the_first_line_timeout`
    // waits it out), and the probe showed the tracker served others meanwhile.
    slow.wait_sent(2);
    assert!(idle.is_open() && slow.raw.is_open(), "dropped within 2 s");
    probe.finish("tracker", PROMPT);
    assert!(
        tracker.proc().seen("panicked").is_empty(),
        "{:?}",
        tracker.proc().seen("panicked")
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
    let (seeder, _) = Peer::seeder_with("seeder", &tracker, &[&path], &["--max-upload", "2M"]);
    let manifest = manifest_of(&path).unwrap();
    let id = manifest.id().to_hex();
    let to = seeder.addr;
    let mut dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &[]);
    dl.proc.send("download served.bin");
    let probe = Probe::peer(to, "HELLO 1", "OK p2pshare 1");
    let (idle, slow) = (Raw::connect(to), Slowloris::start(to, TLS_HELLO_START));

    refuses_framing_errors(&|| Raw::peer(to));
    // Plain text gets no service at all: the peer speaks TLS only.
    let mut plain = Raw::connect(to);
    plain.send(b"HELLO 1\n");
    plain.expect_no_service(REPLY);
    // Whether the connection then stays open is the peer's choice.
    let reply = Raw::peer(to).ask("HELLO 3");
    assert!(
        reply.starts_with("ERR unsupported protocol version 3"),
        "{reply}"
    );

    let unshared = "cd".repeat(32);
    let mut c = Raw::peer(to);
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

    slow.wait_sent(2);
    assert!(idle.is_open() && slow.raw.is_open(), "dropped within 2 s");
    let lines = dl
        .finish_download(COMMAND)
        .unwrap_or_else(|l| panic!("the download failed: {l:?}"));
    assert!(lines.contains(&"Successfully downloaded: served.bin".to_string()));
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
/// each system call rather than to progress on the reply.) Over TLS a write
/// can leave records in the session's buffer for the next bounded flush,
/// so the drop may come up to one more stall budget later: 10 to 20 s.
#[test]
fn a_client_that_never_reads_is_dropped_after_the_write_timeout() {
    let dir = TestDir::new("never-reads");
    let tracker = Tracker::start(&dir);
    let (path, _) = dir.random_file("seed/big.bin", 8 * CHUNK, 16);
    let (seeder, _) = Peer::seeder("seeder", &tracker, &[&path]);
    let id = manifest_of(&path).unwrap().id();
    let probe = Probe::peer(seeder.addr, "HELLO 1", "OK p2pshare 1");

    let mut c = Raw::peer(seeder.addr);
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
        gave_up < Duration::from_secs(20),
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
    let (seeder, _) = Peer::seeder("seeder", &tracker, &[&path]);
    let probes = [
        Probe::start(tracker.addr(), "SEARCH", "OK "),
        Probe::peer(seeder.addr, "HELLO 1", "OK p2pshare 1"),
    ];
    let started = Instant::now();
    let mut watchers = Vec::new();
    let slow_line = format!("SEARCH {}\n", "a".repeat(100));
    for (server, to, trickle) in [
        ("tracker", tracker.addr(), slow_line.as_bytes()),
        // A peer expects a TLS handshake: this one starts and stalls.
        ("peer", seeder.addr, TLS_HELLO_START),
    ] {
        let idle = Raw::connect(to);
        let slow = Slowloris::start(to, trickle);
        for (kind, mut raw) in [("idle", idle), ("slowloris", slow.raw.clone_raw())] {
            watchers.push(thread::spawn(move || {
                let how = raw.expect_close(CLOSED_WITHIN);
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
        // Connected after `started`, so closed no sooner than the first-line
        // timeout after it (less 100 ms for the socket timer's rounding);
        // without that timeout, a slowloris would be held for good, an idle
        // one for the idle timeout (30 s): the upper bound. It was a lower
        // bound of 4.9 s only, with the close awaited 12 s.
        if kind != "slowloris writer" {
            assert!(
                after >= FIRST_LINE_TIMEOUT - Duration::from_millis(100) && after < IDLE_TIMEOUT,
                "{server} {kind}: {after:?}"
            );
        }
    }
    for (probe, what) in probes.into_iter().zip(["tracker", "peer"]) {
        probe.finish(what, PROMPT);
    }
}

/// How long a watcher waits for the close: three times the first-line
/// timeout, half the idle timeout (the close a broken server gives an
/// idle connection).
const CLOSED_WITHIN: Duration = Duration::from_secs(15);

/// The start of a TLS ClientHello record, then zeros: what a slow TLS
/// client sends before the handshake can complete.
const TLS_HELLO_START: &[u8] = &[
    0x16, 0x03, 0x01, 0x00, 0xff, 0x01, 0x00, 0x00, 0xfb, 0x03, 0x03, 0, 0, 0,
];

/// Framing errors, each on a fresh connection from `connect`: `ERR`, then
/// a close.
fn refuses_framing_errors(connect: &dyn Fn() -> Raw) {
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
        let mut c = connect();
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
