//! Issue 6: finding peers through the Mainline DHT. Every peer here runs
//! `--dht` on loopback, in a DHT network of its own that starts at a
//! `tracker --dht` (nothing reaches the public DHT). The tests show that a
//! download works with the tracker dead, by link or by bare id, from peers
//! the DHT alone supplied; that peers known to both the tracker and the DHT
//! count once; and that dead or lying peers announced in the DHT do not hurt
//! a download.
//!
//! Announces reach the DHT nodes a lookup asks only after a round or two
//! (each bounded by the crate's ~2 s request timeout), so the tests retry a
//! lookup or a download within a deadline instead of sleeping a fixed time.
//! Seeders re-announce every 2 s (`--announce-interval`): with the default
//! 30 s, a seeder whose only announce went to the tracker's node
//! would not be found again for half a minute once that node is killed.

use std::collections::BTreeSet;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use p2pshare::dht::DhtNode;
use p2pshare::manifest::FileId;

use crate::support::fakes::{FakePeer, Lie};
use crate::support::harness::{
    assert_same_bytes, wait_until, ReservedPort, TestDir, CHUNK, COMMAND,
};
use crate::support::programs::{Peer, Tracker};
use crate::support::status::{assert_every_chunk_once, is_banned, sources};

/// How long the DHT may take to know what was announced: a few lookup and
/// re-announce rounds of ~2 s each, on a loaded machine.
const CONVERGE: Duration = Duration::from_secs(25);

/// Seeders re-announce this often (seconds), so that announces lost with a
/// killed node are made again soon.
const REANNOUNCE: &str = "2";

/// Five seeders join the DHT through a tracker, which is then SIGKILLed. A
/// sixth peer, started afterwards against the dead tracker and joining
/// through one seeder's DHT node, downloads the file by its share link:
/// byte-identical, every chunk once, every chunk from one of the seeders,
/// and every peer it used came from the DHT (none from the tracker).
#[test]
fn a_link_downloads_from_dht_peers_after_the_tracker_dies() {
    let dir = TestDir::new("dht-no-tracker");
    let mut tracker = Tracker::start_with(&dir, 0, &["--dht"]);
    let len = 6 * CHUNK + 1234;
    let mut seeders = Vec::new();
    let mut data = Vec::new();
    for i in 0..5 {
        let (path, bytes) = dir.random_file(&format!("s{i}/swarm.bin"), len, 61);
        seeders.push(DhtSeeder::start(&format!("seeder{i}"), tracker.port, &path));
        data = bytes;
    }
    let link = seeders[0].link.clone();
    assert!(
        seeders.iter().all(|s| s.link == link),
        "identical copies must have one link"
    );
    let seeder_addrs: BTreeSet<SocketAddr> = seeders.iter().map(|s| s.peer.addr).collect();

    tracker.kill();
    let bootstrap = seeders[0].dht.to_string();
    let args = ["--dht-bootstrap", &bootstrap, "--http", "0"];
    let mut dl = start_dht_peer("downloader", &dir.sub("dl"), tracker.port, &args).0;

    let lines = download_until_found(&mut dl, &link, None);
    let found = found_count(&lines, "swarm.bin");
    assert!(
        (1..=5).contains(&found),
        "found {found} peers, expected 1 to 5 seeders: {lines:?}"
    );
    let download = dl.ended_download();
    assert_eq!(
        (download.peers_from_tracker, download.peers_from_dht),
        (0, found),
        "all peers from the DHT"
    );
    let got = fs::read(dir.path().join("dl/swarm.bin")).unwrap();
    assert_same_bytes(&got, &data, "swarm.bin");
    assert_every_chunk_once(&download, len.div_ceil(CHUNK));
    let sources = sources(&download);
    assert!(
        sources.is_subset(&seeder_addrs),
        "chunks from {sources:?}, seeders are {seeder_addrs:?}"
    );
}

/// Two seeders are known to the tracker and, once their announces are in,
/// to the DHT as well (checked with a lookup of our own). A downloader using
/// both counts each seeder once: `Found 2 peers`, 2 from the tracker and none
/// more from the DHT, and every chunk comes from one of the two.
#[test]
fn peers_known_to_tracker_and_dht_count_once() {
    let dir = TestDir::new("dht-both");
    let tracker = Tracker::start_with(&dir, 0, &["--dht"]);
    let len = 8 * CHUNK;
    let mut seeders = Vec::new();
    let mut data = Vec::new();
    for i in 0..2 {
        let (path, bytes) = dir.random_file(&format!("s{i}/pair.bin"), len, 62);
        seeders.push(DhtSeeder::start(&format!("seeder{i}"), tracker.port, &path));
        data = bytes;
    }
    let id: FileId = seeders[0].id.parse().unwrap();
    let seeder_addrs: Vec<SocketAddr> = seeders.iter().map(|s| s.peer.addr).collect();

    // Without this, "none more from the DHT" could mean the DHT found
    // nothing yet, and the test would prove nothing about duplicates.
    let probe = DhtNode::start(Ipv4Addr::LOCALHOST, 0, &[tracker.addr().to_string()])
        .expect("cannot start the test's DHT node");
    await_dht_peers(&probe, &id, &seeder_addrs);

    let args = ["--http", "0", "--workers", "4"];
    let mut dl = start_dht_peer("downloader", &dir.sub("dl"), tracker.port, &args).0;
    let out = dir.path().join("dl/pair.bin");
    let download = dl.download_checked("pair.bin", 2, &out, &data);
    assert_eq!(
        (download.peers_from_tracker, download.peers_from_dht),
        (2, 0),
        "tracker 2, DHT none more"
    );
    assert_every_chunk_once(&download, len / CHUNK);
    let sources = sources(&download);
    assert!(
        sources.iter().all(|s| seeder_addrs.contains(s)),
        "chunks from {sources:?}, seeders are {seeder_addrs:?}"
    );
}

/// Besides one honest seeder, the DHT lists a dead port (nothing listens)
/// and a liar that sends the true manifest but a wrong byte in every chunk,
/// both announced from the test through DHT nodes of its own. The
/// downloader's tracker has never heard of the file, so all three peers come
/// from the DHT. The download is byte-identical, every chunk comes from the
/// honest seeder, the liar is caught by verification (banned) and gets no
/// more GETs than there are workers.
#[test]
fn dead_and_lying_dht_peers_do_not_spoil_a_download() {
    const WORKERS: usize = 4;
    let dir = TestDir::new("dht-liars");
    let network = Tracker::start_with(&dir, 0, &["--dht"]);
    let len = 8 * CHUNK + 99;
    let (path, data) = dir.random_file("honest/bait.bin", len, 63);
    let honest = DhtSeeder::start("honest", network.port, &path);
    let manifest = p2pshare::storage::manifest_of(&path).unwrap();
    let id = manifest.id();
    assert_eq!(
        id.to_hex(),
        honest.id,
        "the test's manifest is the seeder's"
    );

    let liar = FakePeer::start(Lie::FlippedChunks, &path);
    let dead = ReservedPort::new();
    // A DHT node stores one peer per announcing node, so each false peer
    // needs a node of its own.
    let boot = [network.addr().to_string()];
    let liar_node = DhtNode::start(Ipv4Addr::LOCALHOST, 0, &boot).unwrap();
    let dead_node = DhtNode::start(Ipv4Addr::LOCALHOST, 0, &boot).unwrap();
    announce_until_stored(&liar_node, &id, liar.addr.port());
    announce_until_stored(&dead_node, &id, dead.addr.port());
    await_dht_peers(&dead_node, &id, &[honest.peer.addr, liar.addr, dead.addr]);

    let empty = Tracker::start(&dir);
    let workers = WORKERS.to_string();
    let bootstrap = network.addr().to_string();
    let args = [
        "--dht-bootstrap",
        &bootstrap,
        "--http",
        "0",
        "--workers",
        &workers,
    ];
    let mut dl = start_dht_peer("downloader", &dir.sub("dl"), empty.port, &args).0;
    let lines = dl
        .download(&honest.link, None)
        .unwrap_or_else(|l| panic!("download failed: {l:?}"));
    assert_eq!(found_count(&lines, "bait.bin"), 3, "{lines:?}");
    let download = dl.ended_download();
    assert_eq!(
        (download.peers_from_tracker, download.peers_from_dht),
        (0, 3),
        "all three from the DHT"
    );
    let got = fs::read(dir.path().join("dl/bait.bin")).unwrap();
    assert_same_bytes(&got, &data, "bait.bin");
    assert_every_chunk_once(&download, len.div_ceil(CHUNK));
    assert_eq!(
        sources(&download),
        BTreeSet::from([honest.peer.addr]),
        "only the honest seeder"
    );
    let gets = liar.count("GET ");
    assert!(
        (1..=WORKERS).contains(&gets),
        "the liar answered {gets} GETs; expected 1 (it was tried) to {WORKERS}"
    );
    // Caught by verification: none of its chunks counted (above), and its
    // first bad one banned it.
    assert!(
        is_banned(&download, liar.addr),
        "the liar is not banned: {download:?}"
    );
}

/// With the tracker dead (and dead already when the downloader starts), a
/// bare full id is enough: peers come from the DHT, and the file is saved
/// under the id's hex, or under OUT when given.
#[test]
fn a_bare_id_downloads_without_a_tracker() {
    let dir = TestDir::new("dht-bare-id");
    let mut tracker = Tracker::start_with(&dir, 0, &["--dht"]);
    let len = 3 * CHUNK + 5;
    let mut seeders = Vec::new();
    let mut data = Vec::new();
    for i in 0..2 {
        let (path, bytes) = dir.random_file(&format!("s{i}/named.bin"), len, 64);
        seeders.push(DhtSeeder::start(&format!("seeder{i}"), tracker.port, &path));
        data = bytes;
    }
    let id = seeders[0].id.clone();

    tracker.kill();
    let bootstrap = seeders[1].dht.to_string();
    let args = ["--dht-bootstrap", &bootstrap];
    let mut dl = start_dht_peer("downloader", &dir.sub("dl"), tracker.port, &args).0;

    let lines = download_until_found(&mut dl, &id, None);
    let found = format!(" peer for {id} (size: unknown)");
    assert!(lines.iter().any(|l| l.ends_with(&found)), "{lines:?}");
    assert_same_bytes(
        &fs::read(dir.path().join("dl").join(&id)).unwrap(),
        &data,
        "saved under the id",
    );
    download_until_found(&mut dl, &id, Some("copy.bin"));
    assert_same_bytes(
        &fs::read(dir.path().join("dl/copy.bin")).unwrap(),
        &data,
        "saved as OUT",
    );
    let mut want = vec![id, "copy.bin".to_string()];
    want.sort();
    assert_eq!(dir.entries("dl"), want, "only the outputs, no .part files");
}

/// A folder is announced in the DHT like a file: with the tracker dead, its
/// link alone brings it whole from the DHT's seeders (two: in a DHT of two
/// nodes a lookup cannot find the other's announce, see `dht.rs`).
#[test]
fn a_folder_is_found_through_the_dht() {
    let dir = TestDir::new("dht-folder");
    let mut tracker = Tracker::start_with(&dir, 0, &["--dht"]);
    let mut seeders = Vec::new();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..2 {
        a = dir
            .random_file(&format!("s{i}/album/a.bin"), 2 * CHUNK + 3, 65)
            .1;
        b = dir.random_file(&format!("s{i}/album/sub/b.bin"), 77, 66).1;
        let album = dir.path().join(format!("s{i}/album"));
        seeders.push(DhtSeeder::start(
            &format!("seeder{i}"),
            tracker.port,
            &album,
        ));
    }
    assert_eq!(seeders[0].link, seeders[1].link, "one folder, one link");
    tracker.kill();
    let bootstrap = seeders[1].dht.to_string();
    let args = ["--dht-bootstrap", &bootstrap];
    let mut dl = start_dht_peer("downloader", &dir.sub("dl"), tracker.port, &args).0;
    download_until_found(&mut dl, &seeders[0].link, None);
    let got = dir.path().join("dl/album");
    assert_same_bytes(&fs::read(got.join("a.bin")).unwrap(), &a, "a.bin");
    assert_same_bytes(&fs::read(got.join("sub/b.bin")).unwrap(), &b, "sub/b.bin");
}

/// Starts `peer --dht` with `extra` options against `tracker_port`, which
/// may be dead; returns it with its DHT node's address. The node gets a UDP
/// port of its own (`--dht-port 0`): the default, the number of the TCP
/// port the kernel picked, may already be taken for UDP on a busy machine.
fn start_dht_peer(name: &str, cwd: &Path, tracker_port: u16, extra: &[&str]) -> (Peer, SocketAddr) {
    let args: Vec<&str> = DHT.iter().chain(extra).copied().collect();
    let peer = Peer::start_port(name, cwd, tracker_port, &args);
    let dht = dht_node(&peer);
    (peer, dht)
}

/// The options that make a peer join the DHT on a UDP port of its own.
const DHT: [&str; 3] = ["--dht", "--dht-port", "0"];

/// The address in a `--dht` peer's `DHT node on UDP ADDR` line.
fn dht_node(peer: &Peer) -> SocketAddr {
    let addr = peer.proc.startup_line("DHT node on UDP ");
    addr.parse()
        .unwrap_or_else(|_| panic!("{}: bad DHT address {addr:?}", peer.proc.name()))
}

/// A `--serve --dht` peer sharing one file, re-announcing every
/// [`REANNOUNCE`] seconds.
struct DhtSeeder {
    peer: Peer,
    /// Its DHT node (UDP).
    dht: SocketAddr,
    id: String,
    link: String,
}

impl DhtSeeder {
    /// Starts the seeder in `file`'s directory; returns once the file is
    /// shared (registered with the tracker if that is up, and announced).
    fn start(name: &str, tracker_port: u16, file: &Path) -> DhtSeeder {
        let args: Vec<&str> = DHT
            .iter()
            .chain(&["--announce-interval", REANNOUNCE])
            .copied()
            .collect();
        let (peer, ids) = Peer::seeder_port(name, tracker_port, &[file], &args);
        let dht = dht_node(&peer);
        let id = ids[0].clone();
        let link = peer.proc.expect_out("  link: ", COMMAND);
        let link = link.trim_start().trim_start_matches("link: ").to_string();
        assert!(
            link.starts_with(&format!("p2pshare:{id},")),
            "{name}: link {link:?} for id {id}"
        );
        DhtSeeder {
            peer,
            dht,
            id,
            link,
        }
    }
}

/// `download TARGET [OUT]`, repeated while it fails only because no peer
/// was found: the announces may not have reached the DHT nodes this peer
/// asks yet. Panics on any other error, or when [`CONVERGE`] runs out.
fn download_until_found(peer: &mut Peer, target: &str, out: Option<&str>) -> Vec<String> {
    let mut attempts = 0;
    wait_until(CONVERGE, &format!("a peer for {target}"), || {
        attempts += 1;
        match peer.download(target, out) {
            Ok(lines) => Ok(lines),
            Err(lines) if lines.last().is_some_and(|l| l.contains("no peer has")) => {
                Err(format!("attempt {attempts}: {lines:?}"))
            }
            Err(lines) => panic!("download {target} failed after {attempts} attempt(s): {lines:?}"),
        }
    })
}

/// Looks `id` up through `node` until every one of `want` is among the
/// peers found, or panics after [`CONVERGE`].
fn await_dht_peers(node: &DhtNode, id: &FileId, want: &[SocketAddr]) {
    wait_until(CONVERGE, &format!("all of {want:?} in the DHT"), || {
        let found = node.peers(id);
        if want.iter().all(|w| found.contains(w)) {
            Ok(())
        } else {
            Err(format!("the DHT lists {found:?} for {id}"))
        }
    });
}

/// Announces `id` at TCP `port` through `node` until at least one DHT node
/// stored it; right after start-up `node` may know no one yet.
fn announce_until_stored(node: &DhtNode, id: &FileId, port: u16) {
    wait_until(
        CONVERGE,
        &format!("announce of port {port} stored"),
        || match node.announce(&[*id], port) {
            Ok(n) if n > 0 => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
}

/// N in the `Found N peers for NAME ...` line of a download.
fn found_count(lines: &[String], name: &str) -> usize {
    let tail = format!(" for {name} ");
    let line = lines
        .iter()
        .find(|l| l.starts_with("Found ") && l.contains(&tail))
        .unwrap_or_else(|| panic!("no `Found N peers for {name}` in {lines:?}"));
    line["Found ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad line {line:?}"))
}
