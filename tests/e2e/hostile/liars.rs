//! Peers that lie: a fake with bad chunks beside an honest seeder, fakes
//! whose manifests do not hash to the id, and downloads from liars only.
//! Each lie is caught and the liar used no further.

use std::collections::BTreeSet;
use std::time::Instant;

use p2pshare::manifest::Manifest;
use p2pshare::storage::manifest_of;

use crate::support::fakes::{FakePeer, Lie};
use crate::support::harness::{TestDir, CHUNK};
use crate::support::programs::{unfetched, HandListed, Peer, Tracker};
use crate::support::raw::Raw;
use crate::support::status::{assert_every_chunk_once, is_banned, sources};

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
    let (honest, _) = Peer::seeder_with("honest", &tracker, &[&path], &["--max-upload", "4M"]);
    let fake = FakePeer::start(Lie::FlippedChunks, &path);
    fake.register(tracker.addr(), "lied.bin");
    let mut dl = Peer::start(
        "downloader",
        &dir.sub("dl"),
        &tracker,
        &["--http", "0", "--workers", "8"],
    );

    let out = dir.path().join("dl/lied.bin");
    let download = dl.download_checked("lied.bin", 2, &out, &data);
    assert_every_chunk_once(&download, chunks + 1);
    assert_eq!(
        sources(&download),
        BTreeSet::from([honest.addr]),
        "a chunk came from elsewhere than the honest seeder: {download:?}"
    );
    let gets = fake.count("GET ");
    assert!(
        (1..=8).contains(&gets),
        "the fake got {gets} GETs; at least one, and at most one per worker"
    );
    // Every bad chunk detected: none counted (above), and the fake is banned.
    assert!(
        is_banned(&download, fake.addr),
        "the fake is not banned: {download:?}"
    );
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
    // Listed by hand before the fakes, so they come first (freshest first).
    let (path, data) = dir.random_file("seed/m.bin", 3 * CHUNK + 5, 12);
    let seeder = HandListed::start("honest", &dir, &path);
    seeder.list_with(&tracker, "m.bin");
    let (honest, manifest) = (&seeder.peer, &seeder.manifest);
    let id = manifest.id().to_hex();

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
    let listed = Raw::connect(tracker.addr()).list(&format!("PEERS {id}"));
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert_eq!(listed[3], honest.addr.to_string(), "honest listed last");

    let mut dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &["--http", "0"]);
    let out = dir.path().join("dl/m.bin");
    let download = dl.download_checked("m.bin", 4, &out, &data);
    assert_every_chunk_once(&download, 4);
    assert_eq!(sources(&download), BTreeSet::from([honest.addr]));
    for fake in &fakes {
        assert_eq!(
            fake.requests(),
            ["HELLO 2".to_string(), format!("MANIFEST {id}")],
            "asked once for the manifest, never for a chunk"
        );
        // Rejected: a peer whose manifest is taken takes part in the
        // download, which lists every peer that delivered or was banned.
        let fake = fake.addr.to_string();
        assert!(
            download.peers.iter().all(|p| p.addr != fake),
            "{fake} took part: {download:?}"
        );
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
    // No patience: with every peer banned, fail at once.
    let args = ["--patience", "0"];
    let mut dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &args);

    let started = Instant::now();
    let lines = dl.download("chunky.bin", None).expect_err("liars only");
    let chunky_took = started.elapsed();
    assert_eq!(lines.last().unwrap(), &unfetched("chunky.bin", 4, 4, 0));
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
    // Whichever lie was refused last is named after the count.
    let want = format!(
        "error: manifesty.bin: no peer supplied a valid manifest for {id} (tried 2); refused: "
    );
    let last = lines.last().unwrap();
    assert!(last.starts_with(&want), "{last:?}");
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
