//! What a partial peer is asked for and what it serves: a real downloader
//! refuses `GET`s for chunks it has not verified yet; a downloader asks a
//! (fake) partial peer only for the chunks its `HAVE` reply offers; and a
//! partial peer that lies about a chunk it offers is banned like any liar.

use std::collections::BTreeSet;
use std::time::Instant;

use p2pshare::chunkset::ChunkSet;

use super::Crowd;
use crate::support::fakes::{ChunkReply, FakeSpec};
use crate::support::harness::{figure, TestDir, CHUNK};
use crate::support::programs::{Peer, Tracker};
use crate::support::raw::Raw;
use crate::support::status::{assert_every_chunk_once, chunks_from, is_banned, sources};

/// A real downloader, mid-download (seeder capped at 1 MiB/s), asked by
/// hand: `HELLO 2` gets version 2; `HAVE <id> 0` gets `OK <len> partial`
/// and the chunks it has; a `GET` for each chunk it lacks gets `ERR no
/// chunk N here yet: still downloading it` (or, if the chunk arrived in
/// the meantime, its true bytes), and one it has arrives byte for byte.
/// Before 5ae7a87 a download's chunks were not served at all.
#[test]
fn a_partial_peer_serves_only_the_chunks_it_has() {
    let mut crowd = Crowd::start("partial-serves", "half.bin", 16 * CHUNK, 33, "1M");
    let dl = crowd.join();
    crowd.downloaders[dl].await_fetched(2);
    let id = crowd.seeder.status().shared[0].id.clone();
    let mut c = Raw::peer(crowd.downloaders[dl].addr);
    assert_eq!(c.ask("HELLO 2"), "OK p2pshare 2");
    let header = c.ask(&format!("HAVE {id} 0"));
    let len: usize = header
        .strip_prefix("OK ")
        .and_then(|h| h.strip_suffix(" partial"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a partial peer's HAVE reply: {header:?}"));
    let has = ChunkSet::decode(&c.payload(len), 16).expect("a chunk map");
    assert!(has.count() >= 2 && !has.is_complete(), "{has:?}");

    let chunk = |i: u32| &crowd.data[i as usize * CHUNK..(i as usize + 1) * CHUNK];
    let mut refused = 0;
    for i in 0..16 {
        let reply = c.ask(&format!("GET {id} {i}"));
        if reply == format!("ERR no chunk {i} here yet: still downloading it") {
            assert!(!has.contains(i), "chunk {i} was offered, then refused");
            refused += 1;
            continue;
        }
        assert_eq!(reply, format!("OK {CHUNK}"), "GET {i}");
        assert!(c.payload(CHUNK) == chunk(i), "chunk {i} is not the file's");
    }
    assert!(refused > 0, "every chunk was there already: {has:?}");
    println!(
        "figure: partial peer: offered {} of 16 chunks, refused {refused} GETs",
        has.count()
    );
    crowd.finish(dl);
}

/// A fake partial peer (version 2) offering chunks 1, 4 and 6 of 8 in its
/// `HAVE` replies, beside a seeder capped at 2 MiB/s: it is asked for
/// those and nothing else (every `GET` it records is for an offered chunk),
/// it serves some of them, and the download is byte-identical. Its offer
/// spares the seeder: those chunks are not asked of the seeder while the
/// partial peer is connected. Before 5ae7a87 there was no `HAVE`: every
/// listed peer was asked for any chunk.
#[test]
fn a_partial_peer_is_asked_only_for_chunks_it_offers() {
    let begun = Instant::now();
    let dir = TestDir::new("partial-asked");
    let tracker = Tracker::start(&dir);
    let (path, data) = dir.random_file("seed/offer.bin", 8 * CHUNK, 34);
    let cap = ["--max-upload", "2M"];
    let (seeder, _) = Peer::seeder_with("seeder", &tracker, &[&path], &cap);
    let offered = [1, 4, 6];
    let fake = FakeSpec::of(&path).partial(&offered).start();
    fake.register(tracker.addr(), "offer.bin");
    let mut dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &["--http", "0"]);

    let out = dir.path().join("dl/offer.bin");
    let download = dl.download_checked("offer.bin", 2, &out, &data);
    assert_every_chunk_once(&download, 8);
    let gets = fake.gets();
    assert!(
        !gets.is_empty(),
        "the partial peer was never asked: {:?}",
        fake.requests()
    );
    assert!(
        gets.iter().all(|i| offered.contains(i)),
        "asked for chunks it does not offer: {gets:?}"
    );
    assert!(fake.count("HAVE ") > 0, "{:?}", fake.requests());
    let from_fake = chunks_from(&download, fake.addr);
    assert!(from_fake > 0, "{download:?}");
    assert_eq!(
        from_fake + chunks_from(&download, seeder.addr),
        8,
        "{download:?}"
    );
    println!(
        "figure: fake partial peer: {} GETs, all offered; it served {from_fake} of 8 chunks",
        gets.len()
    );
    figure("fake partial peer", "test run time", begun.elapsed());
}

/// A fake partial peer offering chunks 0, 2 and 5 of 8 with one byte of
/// each flipped: the first bad chunk bans it for the download, like a
/// complete liar, and every chunk comes from the honest seeder. Being
/// partial earns a peer no trust: its chunks are verified as anyone's.
#[test]
fn a_lying_partial_peer_is_banned() {
    let dir = TestDir::new("partial-liar");
    let tracker = Tracker::start(&dir);
    let (path, data) = dir.random_file("seed/lie.bin", 8 * CHUNK, 35);
    let cap = ["--max-upload", "4M"];
    let (honest, _) = Peer::seeder_with("honest", &tracker, &[&path], &cap);
    let offered = [0, 2, 5];
    let fake = FakeSpec::of(&path)
        .partial(&offered)
        .chunks(ChunkReply::Flipped)
        .start();
    fake.register(tracker.addr(), "lie.bin");
    let mut dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &["--http", "0"]);

    let out = dir.path().join("dl/lie.bin");
    let download = dl.download_checked("lie.bin", 2, &out, &data);
    assert_every_chunk_once(&download, 8);
    assert_eq!(sources(&download), BTreeSet::from([honest.addr]));
    assert!(is_banned(&download, fake.addr), "{download:?}");
    let gets = fake.gets();
    assert!(
        !gets.is_empty() && gets.iter().all(|i| offered.contains(i)),
        "{gets:?}"
    );
    println!(
        "figure: lying partial peer: {} GET(s) before the ban",
        gets.len()
    );
}
