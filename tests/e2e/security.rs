//! Issue 12 end to end: TLS 1.3 between peers and ids pinned to
//! certificates, against the real binaries. What a passive observer sees of
//! a download is read off a relay of the test's own ([`Relay`]); peers are
//! listed with any address and id by a stand-in tracker
//! ([`ListingTracker`]), which no real tracker would do. (Who may
//! unregister whom: `hostile::unregister`.)

use std::fs;
use std::path::Path;

use p2pshare::link::ShareLink;
use p2pshare::private::Secret;

use crate::support::harness::{assert_same_bytes, wait_until, TestDir, CHUNK, STARTUP};
use crate::support::listing::ListingTracker;
use crate::support::programs::Peer;
use crate::support::relay::{slices_found, Relay};
use crate::support::status::chunks_from;

/// A link to `id` as `name` of `size` bytes, with `secret` if given.
fn link(id: &str, name: &str, size: usize, secret: Option<Secret>) -> String {
    let link = ShareLink {
        id: id.parse().expect("a file id"),
        name: Some(name.into()),
        size: Some(size as u64),
        secret,
    };
    link.to_string()
}

/// `download TARGET` must succeed from `peers` peers (the file called
/// `name`) and leave exactly `want` at `out`.
fn fetch(dl: &mut Peer, target: &str, name: &str, peers: usize, out: &Path, want: &[u8]) {
    let lines = dl
        .download(target, None)
        .unwrap_or_else(|l| panic!("download {target} failed: {l:?}"));
    let found = format!("Found {peers} peers for {name} ");
    assert!(lines.iter().any(|l| l.starts_with(&found)), "{lines:?}");
    assert_same_bytes(&fs::read(out).expect("the download"), want, name);
}

/// What a wiretap sees of a download: the downloader is sent through a
/// relay (listed at the relay's address with the seeder's real id, so
/// pinning holds) that records every byte. Every connection is TLS from its
/// first byte; the capture carries at least the file's size, yet none of
/// its bytes (a 32-byte slice every 512 bytes, looked for everywhere), nor
/// the manifest, nor the file id the requests name.
#[test]
fn a_wiretapped_download_carries_none_of_the_file() {
    let dir = TestDir::new("tls-capture");
    let stub = ListingTracker::start();
    let len = 3 * CHUNK + 4321;
    let (path, data) = dir.random_file("seed/capture.bin", len, 32);
    let (seeder, ids) = Peer::seeder_port("seeder", stub.port, &[&path], &[]);
    let relay = Relay::start(seeder.addr);
    stub.list(&[(relay.addr, seeder.id)]);
    let mut dl = Peer::start_port("downloader", &dir.sub("dl"), stub.port, &["--http", "0"]);
    let target = link(&ids[0], "capture.bin", len, None);
    fetch(
        &mut dl,
        &target,
        "capture.bin",
        1,
        &dir.path().join("dl/capture.bin"),
        &data,
    );
    assert_eq!(
        chunks_from(&dl.ended_download(), relay.addr),
        4,
        "all via the relay"
    );

    let captures = relay.captures();
    assert!(!captures.is_empty(), "nothing went through the relay");
    let down: usize = captures.iter().map(|c| c.down.len()).sum();
    assert!(
        down >= len,
        "the capture carried {down} bytes of a {len}-byte file"
    );
    // The search finds what is there, wherever it is: every slice but the
    // first in the file shifted by a byte.
    let shifted = slices_found(&data[1..], &data, 512, 32);
    assert_eq!(shifted.len(), len.div_ceil(512) - 1, "the search is broken");
    let manifest = p2pshare::storage::manifest_of(&path).expect("the manifest");
    let id = ids[0].as_bytes();
    for (n, c) in captures.iter().enumerate() {
        // A connection cut off before its first byte has nothing to show.
        let ways = [("up", &c.up), ("down", &c.down)];
        for (way, bytes) in ways.into_iter().filter(|(_, b)| !b.is_empty()) {
            assert_eq!(
                bytes.get(..2),
                Some(&[0x16, 0x03][..]),
                "{n} {way}: not TLS"
            );
            let leaked = slices_found(bytes, &data, 512, 32);
            assert!(leaked.is_empty(), "{n} {way}: file bytes at {leaked:?}");
            assert!(slices_found(bytes, &manifest.encode(), 16, 16).is_empty());
            assert!(
                slices_found(bytes, id, 64, 64).is_empty(),
                "{n} {way}: the id"
            );
        }
    }
}

/// A listed peer whose certificate is not the id the tracker gave is
/// refused at the handshake and the download completes from the real
/// seeder. The impostor is a real peer with the same file (so it would
/// serve good chunks), listed first under the seeder's id and reached
/// through a relay: it was contacted, but sent no chunk (the relay saw
/// only a handshake's worth, its own status counts no upload), and the
/// downloader's status credits it with none.
#[test]
fn a_peer_whose_certificate_is_not_the_listed_id_is_refused() {
    let dir = TestDir::new("tls-impostor");
    let stub = ListingTracker::start();
    let len = 6 * CHUNK + 77;
    let (path, data) = dir.random_file("seed/pinned.bin", len, 33);
    let (copy, _) = dir.random_file("impostor/pinned.bin", len, 33);
    let (seeder, ids) = Peer::seeder_port("seeder", stub.port, &[&path], &[]);
    let http = ["--http", "0"];
    let (impostor, _) = Peer::seeder_port("impostor", stub.port, &[&copy], &http);
    let tap = Relay::start(impostor.addr);
    stub.list(&[(tap.addr, seeder.id), (seeder.addr, seeder.id)]);
    let mut dl = Peer::start_port("downloader", &dir.sub("dl"), stub.port, &http);
    let target = link(&ids[0], "pinned.bin", len, None);
    fetch(
        &mut dl,
        &target,
        "pinned.bin",
        2,
        &dir.path().join("dl/pinned.bin"),
        &data,
    );

    let d = dl.ended_download();
    assert_eq!(chunks_from(&d, seeder.addr), 7, "{d:?}");
    assert_eq!(chunks_from(&d, tap.addr), 0, "{d:?}");
    // Asked first for the manifest, so certainly tried, though the relay
    // may not have taken the connection yet.
    let tried = wait_until(STARTUP, "a connection to the impostor", || {
        let tried = tap.captures();
        match tried.is_empty() {
            true => Err("none".into()),
            false => Ok(tried),
        }
    });
    for c in &tried {
        assert!(
            c.down.len() < 8192,
            "{} bytes from the impostor",
            c.down.len()
        );
    }
    let shared = impostor.status().shared;
    assert_eq!(shared.len(), 1, "{shared:?}");
    assert_eq!(shared[0].uploaded, 0, "the impostor served {shared:?}");
}
