//! A seeder made useless for almost nothing (issue 20): connections that
//! hoard its promises of fresh chunks, connections that trickle `HAVE`
//! bodies to look busy, and slow readers of a re-shared file whose
//! manifest declares 16 MiB chunks. Each costs the attacker little; the
//! tests check that an honest download still goes through, in bounded time
//! and memory.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use p2pshare::manifest::Manifest;
use p2pshare::net::transport::Stream;
use sha2::{Digest, Sha256};

use crate::support::fakes::{test_tls, FakeSpec};
use crate::support::harness::{figure, wait_until, TestDir, CHUNK, COMMAND};
use crate::support::programs::{Peer, Tracker};
use crate::support::raw::{Raw, REPLY};

/// Connections from one address asking `HAVE <id> 0` over and over, every
/// few milliseconds, and never `GET`: they only collect promises.
struct Hoard {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicUsize>,
    thread: JoinHandle<()>,
}

impl Hoard {
    fn start(from: Ipv4Addr, to: SocketAddr, id: &str, conns: usize) -> Hoard {
        let tls = test_tls();
        let mut all: Vec<Raw> = (0..conns)
            .map(|_| {
                let mut c = Raw::connect_tls_from(from, to, &tls);
                assert_eq!(c.ask("HELLO 2"), "OK p2pshare 2");
                c
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicUsize::new(0));
        let (stopped, counter) = (Arc::clone(&stop), Arc::clone(&rounds));
        let have = format!("HAVE {id} 0");
        let thread = thread::spawn(move || {
            // Bounded even if never stopped: 20,000 rounds of >= 2 ms.
            for _ in 0..20_000 {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                for c in &mut all {
                    let header = c.ask(&have);
                    let len = header
                        .strip_prefix("OK ")
                        .and_then(|r| r.strip_suffix(" complete"))
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| panic!("a HAVE reply: {header:?}"));
                    c.payload(len);
                }
                counter.fetch_add(1, Ordering::SeqCst);
                // The attacker's pace: "every few milliseconds".
                thread::sleep(Duration::from_millis(2));
            }
        });
        Hoard {
            stop,
            rounds,
            thread,
        }
    }

    fn await_rounds(&self, n: usize) {
        wait_until(COMMAND, "hoarding rounds", || {
            match self.rounds.load(Ordering::SeqCst) {
                r if r >= n => Ok(()),
                r => Err(format!("{r} of {n} rounds")),
            }
        });
    }

    /// Stops; returns how many rounds they asked.
    fn finish(self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("the hoarders panicked");
        self.rounds.load(Ordering::SeqCst)
    }
}

/// Sixteen connections from 127.0.0.2 ask a seeder of a 16 MiB file (32
/// chunks) `HAVE <id> 0` every few milliseconds and never fetch, from
/// before an honest downloader starts until it is done; the downloader
/// (`--patience 5`) finishes byte-identical in seconds. Before the fix the
/// sixteen were promised every fresh chunk, renewed as the promises lapsed
/// after 10 s, and the honest download was offered nothing: it failed after
/// its patience with 0 of 32 chunks.
#[test]
fn hoarded_promises_cannot_starve_an_honest_download() {
    let dir = TestDir::new("hoarders");
    let tracker = Tracker::start(&dir);
    let (path, data) = dir.random_file("seed/hoarded.bin", 32 * CHUNK, 61);
    let (seeder, ids) = Peer::seeder("seeder", &tracker, &[&path]);
    let hoard = Hoard::start(Ipv4Addr::new(127, 0, 0, 2), seeder.addr, &ids[0], 16);
    hoard.await_rounds(20);
    let args = ["--http", "0", "--patience", "5"];
    let mut dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &args);

    let started = Instant::now();
    let out = dir.path().join("dl/hoarded.bin");
    dl.download_checked("hoarded.bin", 1, &out, &data);
    let took = started.elapsed();
    let rounds = hoard.finish();
    eprintln!("[figures] hoarders: 16 connections asked {rounds} rounds of HAVE meanwhile");
    figure("hoarders", "honest 16 MiB download while 16 hoard", took);
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// Connections that keep a `HAVE` body of 4 bytes coming one byte a
/// second, for a file id nobody shares: when one body is whole, the next
/// request line and its first byte go with its last byte, so each is
/// always in the middle of a request. One the server closes is opened
/// again at the next tick. 8 threads, each with its share of connections.
struct Dawdlers {
    stop: Arc<AtomicBool>,
    /// Bodies started (the first round: every connection started one).
    started: Arc<AtomicUsize>,
    /// Connections the server closed on them.
    cut: Arc<AtomicUsize>,
    /// Passes over their connections, by all threads together.
    passes: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<()>>,
}

impl Dawdlers {
    fn start(from: &[Ipv4Addr], per_addr: usize, to: SocketAddr) -> Dawdlers {
        let jobs: Vec<Ipv4Addr> = from
            .iter()
            .flat_map(|&a| std::iter::repeat_n(a, per_addr))
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let counter = || Arc::new(AtomicUsize::new(0));
        let (started, cut, passes) = (counter(), counter(), counter());
        let threads = jobs
            .chunks(jobs.len().div_ceil(8))
            .map(|part| {
                let part = part.to_vec();
                let counts = [&started, &cut, &passes].map(Arc::clone);
                let stop = Arc::clone(&stop);
                thread::spawn(move || dawdle(&part, to, &stop, &counts))
            })
            .collect();
        Dawdlers {
            stop,
            started,
            cut,
            passes,
            threads,
        }
    }

    /// Waits until every connection is a second into its first body (each
    /// thread made two passes): the server has long read their lines.
    fn await_dawdling(&self) {
        wait_until(COMMAND, "two passes of every dawdler thread", || match self
            .passes
            .load(Ordering::SeqCst)
        {
            p if p >= 16 => Ok(()),
            p => Err(format!("{p} of 16 passes")),
        });
    }

    /// Stops; returns how many bodies they started and how many
    /// connections the server closed on them.
    fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().expect("a dawdler panicked");
        }
        (
            self.started.load(Ordering::SeqCst),
            self.cut.load(Ordering::SeqCst),
        )
    }
}

/// One thread of [`Dawdlers`]: a connection from each of `from`.
/// `counts`: bodies started, connections cut, passes made.
fn dawdle(from: &[Ipv4Addr], to: SocketAddr, stop: &AtomicBool, counts: &[Arc<AtomicUsize>; 3]) {
    let [started, cut, passes] = counts;
    let tls = test_tls();
    let line = format!("HAVE {} 4\n", "0".repeat(64));
    // Each connection and how many body bytes of its request it has sent.
    let mut conns: Vec<Option<(Raw, usize)>> = from.iter().map(|_| None).collect();
    // Bounded even if never stopped: 60 ticks of a second.
    for _ in 0..60 {
        for (slot, &addr) in conns.iter_mut().zip(from) {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let (conn, sent) = match slot {
                Some(c) => c,
                None => {
                    // A fresh connection starts with a line and a byte.
                    let Ok(tcp) = crate::support::raw::connect_from(addr, to) else {
                        continue;
                    };
                    let Ok(stream) = Stream::tls_client(tcp, &tls, None, REPLY) else {
                        continue;
                    };
                    slot.insert((Raw::new(stream), 0))
                }
            };
            let mut bytes = Vec::new();
            if *sent == 0 {
                bytes.extend_from_slice(line.as_bytes());
                started.fetch_add(1, Ordering::SeqCst);
            }
            bytes.push(b'x');
            *sent += 1;
            if *sent == 4 {
                // Whole: the next request starts at once.
                bytes.extend_from_slice(line.as_bytes());
                bytes.push(b'x');
                started.fetch_add(1, Ordering::SeqCst);
                *sent = 1;
            }
            if conn.try_send(&bytes).is_err() || !conn.is_alive() {
                cut.fetch_add(1, Ordering::SeqCst);
                *slot = None;
            }
        }
        passes.fetch_add(1, Ordering::SeqCst);
        // The point of these clients: a byte a second.
        thread::sleep(Duration::from_secs(1));
    }
}

/// 256 connections from three other addresses (86 + 85 + 85: every slot
/// of a seeder) keep trickling 4-byte `HAVE` bodies a byte a second. A
/// newcomer from 127.0.0.1 is served at once, and an honest download
/// finishes byte-identical meanwhile: a connection dawdling over a body is
/// idle, so it is evicted for a newcomer, and a body must arrive within
/// 1 s + its length at 16 KiB/s or the connection is closed. Before the fix
/// each counted as busy from its request line on, so no slot could be
/// evicted: the newcomer got the busy alert.
#[test]
fn slow_have_bodies_do_not_hold_a_seeders_slots() {
    let dir = TestDir::new("dawdlers");
    let tracker = Tracker::start(&dir);
    let (path, data) = dir.random_file("seed/dawdled.bin", 8 * CHUNK, 62);
    let (seeder, _) = Peer::seeder("seeder", &tracker, &[&path]);
    let addrs: Vec<Ipv4Addr> = (1..=3).map(|i| Ipv4Addr::new(127, 0, 5, i)).collect();
    let dawdlers = Dawdlers::start(&addrs, 86, seeder.addr);
    dawdlers.await_dawdling();

    let asked = Instant::now();
    let tcp = TcpStream::connect(seeder.addr).unwrap();
    let newcomer = Stream::tls_client(tcp, &test_tls(), None, REPLY);
    assert!(
        newcomer.is_ok(),
        "a newcomer was refused while they dawdled: {:?}",
        newcomer.err()
    );
    let mut newcomer = Raw::new(newcomer.unwrap());
    assert_eq!(newcomer.ask("HELLO 2"), "OK p2pshare 2");
    let served = asked.elapsed();
    drop(newcomer);
    let mut dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &["--http", "0"]);
    let started = Instant::now();
    let out = dir.path().join("dl/dawdled.bin");
    dl.download_checked("dawdled.bin", 1, &out, &data);
    let took = started.elapsed();
    let (bodies, cut) = dawdlers.finish();
    eprintln!(
        "[figures] dawdlers: {bodies} bodies started, {cut} connections closed on them; \
         newcomer served in {served:?}, 4 MiB download took {took:?}"
    );
    figure("dawdlers", "honest 4 MiB download while 256 dawdle", took);
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// A file whose manifest declares one 16 MiB chunk (allowed: the bound is
/// `MAX_CHUNK_SIZE`) is downloaded from a fake and so shared on by the
/// downloader; then 16 readers each ask it for the chunk, take the reply
/// line and read nothing more. The re-sharing peer's memory grows by less
/// than three chunks' worth: a chunk is sent a 64 KiB slice at a time.
/// Before the fix each reader cost a whole chunk read into a buffer of its
/// connection, 16 MiB each (the issue measured 48 readers: 7 -> 781 MiB).
#[test]
fn big_chunks_from_a_remote_manifest_cost_a_slice_per_reader() {
    let dir = TestDir::new("big-chunks");
    let tracker = Tracker::start(&dir);
    let chunk = p2pshare::bounds::MAX_CHUNK_SIZE as usize;
    let data = crate::support::harness::random_bytes(chunk, 63);
    let hash: [u8; 32] = Sha256::digest(&data).into();
    let manifest = Manifest::with_chunk_size(chunk as u64, chunk as u32, vec![hash]).unwrap();
    let id = manifest.id().to_hex();
    let fake = FakeSpec::of_manifest(manifest, data.clone()).start();
    fake.register(tracker.addr(), "big.bin");
    let mut dl = Peer::start("resharer", &dir.sub("dl"), &tracker, &["--http", "0"]);
    dl.download_checked("big.bin", 1, &dir.path().join("dl/big.bin"), &data);
    let before = dl.proc.vm("VmRSS");

    let readers: Vec<Raw> = (0..16)
        .map(|_| {
            let mut c = Raw::peer(dl.addr);
            assert_eq!(c.ask("HELLO 2"), "OK p2pshare 2");
            assert_eq!(c.ask(&format!("GET {id} 0")), format!("OK {chunk}"));
            c
        })
        .collect();
    let during = dl.proc.vm("VmRSS");
    let grew = during.saturating_sub(before);
    eprintln!(
        "[figures] big chunks: re-sharer RSS {before} kB before, {during} kB with 16 \
         readers of a 16 MiB chunk (+{grew} kB); peak {} kB",
        dl.proc.vm("VmHWM")
    );
    drop(readers);
    assert!(grew < 3 * 16 * 1024, "grew by {grew} kB");
}
