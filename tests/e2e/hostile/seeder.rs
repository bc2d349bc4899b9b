//! A seeder made useless for almost nothing (issue 20): connections that
//! hoard its promises of fresh chunks, connections that trickle `HAVE`
//! bodies to look busy, and slow readers of a re-shared file whose
//! manifest declares 16 MiB chunks. Each costs the attacker little; the
//! tests check that an honest download still goes through, in bounded time
//! and memory.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::support::fakes::test_tls;
use crate::support::harness::{figure, wait_until, TestDir, CHUNK, COMMAND};
use crate::support::programs::{Peer, Tracker};
use crate::support::raw::Raw;

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
