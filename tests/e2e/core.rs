//! The core user stories, each against a tracker of its own: downloads are
//! byte-identical at every chunk boundary, spread over every seeder, re-shared
//! by whoever finished; names that are ambiguous, taken or unknown are clear
//! errors that write nothing; and the tracker's wire protocol behaves as
//! documented, including on abuse.

use std::collections::BTreeSet;
use std::fs;

use crate::support::fakes::test_tls;
use crate::support::harness::{assert_same_bytes, TestDir, CHUNK, COMMAND};
use crate::support::programs::{Peer, Tracker};
use crate::support::raw::{Raw, REPLY};
use crate::support::status::{assert_every_chunk_once, sources};

/// Empty, one byte, exactly one chunk, one chunk and a byte, and ~20 MiB
/// ending in a partial chunk: each arrives byte for byte, under its name in
/// the downloader's working directory, with no partial file left behind.
#[test]
fn downloads_are_byte_identical_at_chunk_boundaries() {
    let dir = TestDir::new("sizes");
    let tracker = Tracker::start(&dir);
    let cases = [
        ("empty.bin", 0),
        ("one.bin", 1),
        ("chunk.bin", CHUNK),
        ("chunk-plus-one.bin", CHUNK + 1),
        ("big.bin", 20 * 1024 * 1024 + 12_345),
    ];
    let files: Vec<_> = cases
        .iter()
        .zip(1..)
        .map(|(&(name, len), seed)| dir.random_file(&format!("seed/{name}"), len, seed))
        .collect();
    let paths: Vec<_> = files.iter().map(|(p, _)| p.as_path()).collect();
    let (_seeder, _) = Peer::seeder("seeder", &tracker, &paths);
    let mut dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &[]);

    for ((name, len), (_, data)) in cases.iter().zip(&files) {
        let lines = dl
            .download(name, None)
            .unwrap_or_else(|l| panic!("download {name} failed: {l:?}"));
        let found = format!("Found 1 peer for {name} (size: {len} bytes)");
        assert!(lines.contains(&found), "{lines:?} lacks {found:?}");
        let got = fs::read(dir.path().join("dl").join(name)).unwrap();
        assert_same_bytes(&got, data, name);
    }
    let mut want: Vec<String> = cases.iter().map(|(n, _)| n.to_string()).collect();
    want.sort();
    assert_eq!(dir.entries("dl"), want, "only the outputs, no .part files");
}

/// Three seeders with separate copies of one 16-chunk file: a downloader
/// with 8 workers gets every chunk exactly once, and every seeder serves at
/// least one of them (from `/api/status`), i.e. the download really is
/// spread.
#[test]
fn every_seeder_serves_part_of_a_parallel_download() {
    let dir = TestDir::new("swarm");
    let tracker = Tracker::start(&dir);
    let len = 16 * CHUNK;
    let mut seeders = Vec::new();
    let mut data = Vec::new();
    for i in 0..3 {
        let (path, bytes) = dir.random_file(&format!("s{i}/swarm.bin"), len, 42);
        let (seeder, ids) = Peer::seeder(&format!("seeder{i}"), &tracker, &[&path]);
        seeders.push((seeder, ids[0].clone()));
        data = bytes;
    }
    assert!(
        seeders.iter().all(|(_, id)| *id == seeders[0].1),
        "identical copies must have one id"
    );
    let args = ["--http", "0", "--workers", "8"];
    let mut dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &args);

    let out = dir.path().join("dl/swarm.bin");
    let download = dl.download_checked("swarm.bin", 3, &out, &data);
    assert_every_chunk_once(&download, 16);
    let sources = sources(&download);
    for (seeder, _) in &seeders {
        assert!(
            sources.contains(&seeder.addr),
            "seeder {} served nothing; sources {sources:?}",
            seeder.addr
        );
    }
    assert_eq!(sources.len(), 3, "only seeders serve: {sources:?}");
}

/// B downloads from A and is then listed as a second source; once A is gone,
/// C still gets the whole file, necessarily from B.
#[test]
fn a_finished_download_is_shared_onwards() {
    let dir = TestDir::new("onwards");
    let tracker = Tracker::start(&dir);
    let (path, data) = dir.random_file("a/relay.bin", 6 * CHUNK + 777, 7);
    let (a, _) = Peer::seeder("A", &tracker, &[&path]);
    let mut b = Peer::start("B", &dir.sub("b"), &tracker, &[]);
    b.download("relay.bin", None)
        .unwrap_or_else(|l| panic!("B's download failed: {l:?}"));

    let mut c = Peer::start("C", &dir.sub("c"), &tracker, &["--http", "0"]);
    let rows = c.search("relay.bin");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].peers, rows[0].size, rows[0].name.as_str()),
        (2, data.len() as u64, "relay.bin")
    );

    // Killed, not quit: the tracker still lists A, so C must also cope with a
    // listed peer that refuses connections.
    drop(a);
    c.download("relay.bin", None)
        .unwrap_or_else(|l| panic!("C's download failed: {l:?}"));
    let got = fs::read(dir.path().join("c/relay.bin")).unwrap();
    assert_same_bytes(&got, &data, "C's relay.bin");
    let download = c.ended_download();
    assert_every_chunk_once(&download, data.len().div_ceil(CHUNK));
    assert_eq!(sources(&download), BTreeSet::from([b.addr]), "{download:?}");
}

/// Two different files both named `same.bin`: the name alone lists both ids
/// and writes nothing; the full id, or an 8-digit prefix, picks one.
#[test]
fn an_ambiguous_name_needs_an_id() {
    let dir = TestDir::new("ambiguous");
    let tracker = Tracker::start(&dir);
    let (path1, data1) = dir.random_file("s1/same.bin", CHUNK + 10, 1);
    let (path2, data2) = dir.random_file("s2/same.bin", 3 * CHUNK, 2);
    let (_s1, ids1) = Peer::seeder("seeder1", &tracker, &[&path1]);
    let (_s2, ids2) = Peer::seeder("seeder2", &tracker, &[&path2]);
    let (id1, id2) = (&ids1[0], &ids2[0]);
    assert_ne!(
        id1[..8],
        id2[..8],
        "the test needs distinct 8-digit prefixes"
    );
    let mut dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &[]);

    let lines = dl
        .download("same.bin", None)
        .expect_err("an ambiguous name must fail");
    assert!(
        lines.contains(&r#"2 files are named "same.bin":"#.to_string()),
        "{lines:?}"
    );
    for id in [id1, id2] {
        assert!(
            lines.iter().any(|l| l.contains(id.as_str())),
            "{id} in {lines:?}"
        );
    }
    assert!(
        dir.entries("dl").is_empty(),
        "wrote {:?}",
        dir.entries("dl")
    );

    dl.download(id1, None)
        .unwrap_or_else(|l| panic!("download by id failed: {l:?}"));
    assert_same_bytes(
        &fs::read(dir.path().join("dl/same.bin")).unwrap(),
        &data1,
        "by id",
    );
    dl.download(&id2[..8], Some("second.bin"))
        .unwrap_or_else(|l| panic!("download by prefix failed: {l:?}"));
    assert_same_bytes(
        &fs::read(dir.path().join("dl/second.bin")).unwrap(),
        &data2,
        "by prefix",
    );
    assert_eq!(dir.entries("dl"), ["same.bin", "second.bin"]);
}

/// An existing output is refused and left alone; an unknown name is one
/// clear error; the REPL carries on after both, and the exit code reports
/// that something failed.
#[test]
fn taken_outputs_and_unknown_names_are_errors() {
    let dir = TestDir::new("errors");
    let tracker = Tracker::start(&dir);
    let (path, data) = dir.random_file("s/x.bin", 2 * CHUNK + 5, 3);
    let (_seeder, _) = Peer::seeder("seeder", &tracker, &[&path]);
    let dl_dir = dir.sub("dl");
    fs::write(dl_dir.join("x.bin"), b"precious").unwrap();
    let mut dl = Peer::start("downloader", &dl_dir, &tracker, &[]);

    let lines = dl.download("x.bin", None).expect_err("must not overwrite");
    assert_eq!(
        lines.last().unwrap(),
        "error: x.bin already exists; not overwriting it"
    );
    assert_eq!(fs::read(dl_dir.join("x.bin")).unwrap(), b"precious");
    assert_eq!(dir.entries("dl"), ["x.bin"], "no .part file either");

    let lines = dl.download("nosuch.bin", None).expect_err("unknown name");
    let last = lines.last().unwrap();
    assert!(
        last.starts_with("error: ") && last.contains("nosuch.bin"),
        "{last}"
    );
    assert_eq!(lines.len(), 1, "one line, no download attempt: {lines:?}");

    let rows = dl.search("");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].name, "x.bin");
    dl.download("x.bin", Some("fresh.bin"))
        .unwrap_or_else(|l| panic!("download after errors failed: {l:?}"));
    assert_same_bytes(
        &fs::read(dl_dir.join("fresh.bin")).unwrap(),
        &data,
        "fresh.bin",
    );

    dl.proc.send("quit");
    let status = dl.proc.wait_exit(COMMAND);
    assert_eq!(status.code(), Some(1), "two commands failed");
}

/// The tracker's wire protocol by hand, in plain text as `nc` speaks it:
/// version handshake, an unknown verb answered without dropping the
/// connection, `SEARCH` as a counted list, a change refused without
/// authentication (and made over TLS with a certificate, on the same port),
/// and an over-long line answered with `ERR` and a close.
#[test]
fn tracker_speaks_its_line_protocol() {
    let dir = TestDir::new("wire");
    let tracker = Tracker::start(&dir);
    let mut c = Raw::connect(tracker.addr());
    let port = c.w.local_addr().unwrap().port();

    assert_eq!(c.ask("HELLO 1"), "OK p2pshare 1");
    let reply = c.ask("FROB");
    assert!(reply.starts_with("ERR unknown command"), "{reply}");
    assert_eq!(c.ask("SEARCH"), "OK 0", "still usable after ERR");

    let id = "ab".repeat(32);
    let req = format!("REGISTER {port} {id} 1234 wire.bin");
    let refused = c.ask(&req);
    assert!(
        refused.starts_with("ERR authentication required"),
        "{refused}"
    );
    assert_eq!(c.ask("SEARCH"), "OK 0", "nothing registered");
    let me = test_tls();
    let mut authed = Raw::connect_tls(tracker.addr(), &me, Some(tracker.id));
    assert_eq!(authed.ask("HELLO 2"), "OK p2pshare 2");
    assert_eq!(authed.ask(&req), "OK registered");
    assert_eq!(c.list("SEARCH"), [format!("{id} 1234 1 wire.bin")]);
    assert_eq!(
        authed.list(&format!("PEERS {id}")),
        [format!("127.0.0.1:{port} complete {}", me.id())],
        "version 2 rows name the state and the id"
    );
    assert!(c.list("SEARCH nomatch").is_empty());

    c.send("x".repeat(10_000).as_bytes());
    let reply = c.line();
    assert!(reply.starts_with("ERR line too long"), "{reply}");
    // The tracker read the whole line before answering, so it closes
    // cleanly (FIN): end of stream, not a reset or a timeout.
    assert_eq!(c.expect_close(REPLY), "closed");
}
