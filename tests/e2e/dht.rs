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
//! lookup or a download within a deadline instead of sleeping a fixed time. Seeders re-announce every 2 s (`--announce-interval`): with
//! the default 30 s, a seeder whose only announce went to the tracker's node
//! would not be found again for half a minute once that node is killed.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use p2pshare::dht::DhtNode;
use p2pshare::manifest::FileId;

use crate::support::harness::{
    assert_same_bytes, Peer, Stream, TestDir, Tracker, COMMAND, STARTUP,
};

const CHUNK: usize = p2pshare::bounds::CHUNK_SIZE as usize;

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
    let args = ["--dht-bootstrap", &bootstrap, "-v"];
    let mut dl = start_dht_peer("downloader", &dir.sub("dl"), tracker.port, &args).0;

    let lines = download_until_found(&mut dl, &link, None);
    let found = found_count(&lines, "swarm.bin");
    assert!(
        (1..=5).contains(&found),
        "found {found} peers, expected 1 to 5 seeders: {lines:?}"
    );
    let (from_tracker, from_dht) = peer_sources(&dl);
    assert_eq!(
        (from_tracker, from_dht),
        (0, found),
        "all peers from the DHT"
    );
    let got = fs::read(dir.path().join("dl/swarm.bin")).unwrap();
    assert_same_bytes(&got, &data, "swarm.bin");
    let (sources, _) = chunk_log(&dl, len.div_ceil(CHUNK));
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

    let args = ["-v", "--workers", "4"];
    let mut dl = start_dht_peer("downloader", &dir.sub("dl"), tracker.port, &args).0;
    let lines = dl
        .download("pair.bin", None)
        .unwrap_or_else(|l| panic!("download failed: {l:?}"));
    assert_eq!(found_count(&lines, "pair.bin"), 2, "{lines:?}");
    assert_eq!(peer_sources(&dl), (2, 0), "tracker 2, DHT none more");
    let got = fs::read(dir.path().join("dl/pair.bin")).unwrap();
    assert_same_bytes(&got, &data, "pair.bin");
    let (sources, _) = chunk_log(&dl, len / CHUNK);
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
/// honest seeder, the liar is caught by verification and gets no more GETs
/// than there are workers.
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

    let liar = LyingPeer::start(id, manifest.encode(), data.clone());
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
    let args = ["--dht-bootstrap", &bootstrap, "-v", "--workers", &workers];
    let mut dl = start_dht_peer("downloader", &dir.sub("dl"), empty.port, &args).0;
    let lines = dl
        .download(&honest.link, None)
        .unwrap_or_else(|l| panic!("download failed: {l:?}"));
    assert_eq!(found_count(&lines, "bait.bin"), 3, "{lines:?}");
    assert_eq!(peer_sources(&dl), (0, 3), "all three from the DHT");
    let got = fs::read(dir.path().join("dl/bait.bin")).unwrap();
    assert_same_bytes(&got, &data, "bait.bin");
    let (sources, log) = chunk_log(&dl, len.div_ceil(CHUNK));
    assert_eq!(
        sources,
        BTreeSet::from([honest.peer.addr]),
        "only the honest seeder"
    );
    let gets = liar.gets.load(Ordering::SeqCst);
    assert!(
        (1..=WORKERS).contains(&gets),
        "the liar answered {gets} GETs; expected 1 (it was tried) to {WORKERS}"
    );
    let caught = format!("from {} failed verification", liar.addr);
    assert!(
        log.iter().any(|l| l.contains(&caught)),
        "no {caught:?} in {log:?}"
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
    let found = format!(" peers for {id} (size: unknown)");
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

/// Starts `peer --dht` with `extra` options against `tracker_port`, which
/// may be dead; returns it with its DHT node's address. The node gets a UDP
/// port of its own (`--dht-port 0`): the default, the number of the TCP
/// port the kernel picked, may already be taken for UDP on a busy machine.
fn start_dht_peer(name: &str, cwd: &Path, tracker_port: u16, extra: &[&str]) -> (Peer, SocketAddr) {
    let args: Vec<&str> = ["--dht", "--dht-port", "0"]
        .iter()
        .chain(extra)
        .copied()
        .collect();
    let peer = Peer::start_port(name, cwd, tracker_port, &args);
    let line = peer.proc.expect_out("DHT node on UDP ", STARTUP);
    let dht = line
        .strip_prefix("DHT node on UDP ")
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name}: unexpected DHT line {line:?}"));
    (peer, dht)
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
        let path = file.to_str().expect("test paths are UTF-8");
        let cwd = file.parent().expect("a file has a directory");
        let args = [
            "--announce-interval",
            REANNOUNCE,
            "--serve",
            "--share",
            path,
        ];
        let (peer, dht) = start_dht_peer(name, cwd, tracker_port, &args);
        let shared = peer.proc.expect_line(Stream::Out, COMMAND, "a share", |l| {
            l.starts_with("Successfully registered file: ") || l.starts_with("error:")
        });
        let id = match shared.rsplit_once("id ") {
            Some((_, rest)) => rest.trim_end_matches(')').to_string(),
            None => panic!("{name}: no id in {shared:?}"),
        };
        let link = peer.proc.expect_out("  link: ", COMMAND);
        let link = link.trim_start().trim_start_matches("link: ").to_string();
        assert!(
            link.starts_with(&format!("p2pshare:{id}?")),
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
    let give_up = Instant::now() + CONVERGE;
    let mut attempts = 0;
    loop {
        attempts += 1;
        match peer.download(target, out) {
            Ok(lines) => return lines,
            Err(lines)
                if Instant::now() < give_up
                    && lines.last().is_some_and(|l| l.contains("no peer has")) =>
            {
                // A lookup that fails fast (an empty routing table) must not
                // turn this into a busy loop.
                thread::sleep(Duration::from_millis(200));
            }
            Err(lines) => panic!("download {target} failed after {attempts} attempt(s): {lines:?}"),
        }
    }
}

/// Looks `id` up through `node` until every one of `want` is among the
/// peers found, or panics after [`CONVERGE`].
fn await_dht_peers(node: &DhtNode, id: &FileId, want: &[SocketAddr]) {
    let give_up = Instant::now() + CONVERGE;
    loop {
        let found = node.peers(id);
        if want.iter().all(|w| found.contains(w)) {
            return;
        }
        assert!(
            Instant::now() < give_up,
            "the DHT lists {found:?} for {id}, still not all of {want:?} after {CONVERGE:?}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// Announces `id` at TCP `port` through `node` until at least one DHT node
/// stored it; right after start-up `node` may know no one yet.
fn announce_until_stored(node: &DhtNode, id: &FileId, port: u16) {
    let give_up = Instant::now() + CONVERGE;
    loop {
        match node.announce(&[*id], port) {
            Ok(n) if n > 0 => return,
            other => assert!(
                Instant::now() < give_up,
                "announce of port {port} never stored: {other:?}"
            ),
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// N in the `Found N peers for NAME ...` line of a download.
fn found_count(lines: &[String], name: &str) -> usize {
    let tail = format!(" peers for {name} ");
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

/// (from the tracker, more from the DHT) in the `-v` log of the latest
/// download that found peers.
fn peer_sources(peer: &Peer) -> (usize, usize) {
    let line = peer
        .proc
        .expect_line(Stream::Err, COMMAND, "the peer sources", |l| {
            l.contains(" peer(s) from the tracker, ")
        });
    let numbers: Vec<usize> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    match numbers.as_slice() {
        [tracker, dht] => (*tracker, *dht),
        _ => panic!("bad log line {line:?}"),
    }
}

/// Reads the `-v` log of a download of `chunks` chunks up to its last
/// `Downloaded chunk` line; checks each chunk arrived once. Returns the
/// addresses they came from, and every log line read (warnings included).
fn chunk_log(peer: &Peer, chunks: usize) -> (BTreeSet<SocketAddr>, Vec<String>) {
    let mut indexes = BTreeSet::new();
    let mut sources = BTreeSet::new();
    let mut lines = Vec::new();
    for _ in 0..chunks {
        lines.extend(
            peer.proc
                .lines_until(Stream::Err, COMMAND, "a chunk log line", |l| {
                    l.contains("Downloaded chunk ")
                }),
        );
        let line = lines.last().unwrap();
        let rest = line.split("Downloaded chunk ").nth(1).unwrap();
        let parsed = rest
            .split_once(" from ")
            .and_then(|(i, a)| Some((i.parse::<usize>().ok()?, a.trim().parse().ok()?)));
        let Some((index, from)) = parsed else {
            panic!("bad log line {line:?}");
        };
        assert!(indexes.insert(index), "chunk {index} twice");
        sources.insert(from);
    }
    assert_eq!(indexes, (0..chunks).collect(), "every chunk once");
    (sources, lines)
}

/// A TCP port on 127.0.0.1 where nothing listens, kept from reuse for as
/// long as this lives: it is the local end of a connection we hold open, so
/// the kernel gives it to no listener, and a connect to it is refused.
struct ReservedPort {
    addr: SocketAddr,
    _held: (TcpListener, TcpStream, TcpStream),
}

impl ReservedPort {
    fn new() -> ReservedPort {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let addr = client.local_addr().unwrap();
        assert!(
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).is_err(),
            "something answers on the reserved port {addr}"
        );
        ReservedPort {
            addr,
            _held: (listener, client, server),
        }
    }
}

/// A peer that tells the truth about the manifest and lies about every
/// chunk: the right length, the first byte flipped. Counts the GETs it
/// answers. Stops accepting when dropped; its connection threads end when
/// the downloader hangs up (or after 10 s idle).
struct LyingPeer {
    addr: SocketAddr,
    gets: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl LyingPeer {
    fn start(id: FileId, manifest: Vec<u8>, data: Vec<u8>) -> LyingPeer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let gets = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new((id.to_hex(), manifest, data));
        let (count, stopped) = (Arc::clone(&gets), Arc::clone(&stop));
        let acceptor = thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (shared, count) = (Arc::clone(&shared), Arc::clone(&count));
                thread::spawn(move || {
                    let (id, manifest, data) = &*shared;
                    let _ = serve_lies(conn, id, manifest, data, &count);
                });
            }
        });
        LyingPeer {
            addr,
            gets,
            stop,
            acceptor: Some(acceptor),
        }
    }
}

impl Drop for LyingPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocked accept, which then sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// One connection of the [`LyingPeer`]: the peer protocol's requests, each
/// answered at once.
fn serve_lies(
    conn: TcpStream,
    id: &str,
    manifest: &[u8],
    data: &[u8],
    gets: &AtomicUsize,
) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut w = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["HELLO", _] => w.write_all(b"OK p2pshare 1\n")?,
            ["MANIFEST", asked] if *asked == id => {
                w.write_all(format!("OK {}\n", manifest.len()).as_bytes())?;
                w.write_all(manifest)?;
            }
            ["GET", asked, index] if *asked == id => {
                let start = index
                    .parse::<usize>()
                    .unwrap_or(usize::MAX)
                    .saturating_mul(CHUNK);
                if start >= data.len() {
                    w.write_all(b"ERR no such chunk\n")?;
                    continue;
                }
                gets.fetch_add(1, Ordering::SeqCst);
                let mut chunk = data[start..data.len().min(start + CHUNK)].to_vec();
                chunk[0] ^= 0xff;
                w.write_all(format!("OK {}\n", chunk.len()).as_bytes())?;
                w.write_all(&chunk)?;
            }
            _ => w.write_all(b"ERR not sharing that\n")?,
        }
    }
}
