//! A crowded tracker: tens of thousands of files registered from ten
//! addresses with as many identities as they like. They cannot fill it (a
//! newcomer still registers), 32 clients looping on a `SEARCH` that scans
//! every name do not hold up an honest `PEERS`, and slow readers of the
//! biggest `SEARCH` reply cost the tracker little memory.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::fakes::test_tls;
use crate::support::harness::{wait_until, TestDir, COMMAND};
use crate::support::programs::Tracker;
use crate::support::raw::Raw;

/// How long a `SEARCH` of every name may take on a loaded machine.
const SCAN: Duration = Duration::from_secs(30);

/// Registers new files from each of `hosts` (127.0.0.x), with one fresh
/// identity after another, until the tracker refuses the address; names are
/// `<n>` padded with `x` to `name_len` bytes. Returns how many it took.
fn fill(tracker: SocketAddr, hosts: std::ops::RangeInclusive<u8>, name_len: usize) -> usize {
    let mut n = 0usize;
    for host in hosts {
        let from = Ipv4Addr::new(127, 0, 0, host);
        'identities: for _ in 0..64 {
            let mut c = Raw::connect_tls_from(from, tracker, &test_tls());
            assert_eq!(c.ask("HELLO 2"), "OK p2pshare 2");
            loop {
                let batch: String = (n..n + 1000)
                    .map(|k| {
                        let name = format!("{k:0>width$}", width = name_len);
                        format!("REGISTER 4000 {k:064x} 1 {name}\n")
                    })
                    .collect();
                c.send(batch.as_bytes());
                let replies: Vec<String> = (0..1000).map(|_| c.line()).collect();
                n += replies.iter().filter(|r| *r == "OK registered").count();
                match replies.iter().find(|r| *r != "OK registered") {
                    None => continue,
                    Some(r) if r.contains("from one identity") => continue 'identities,
                    Some(r) if r.contains("from one address") => break 'identities,
                    Some(r) => panic!("refused: {r}"),
                }
            }
        }
    }
    n
}

/// The median and the longest of `times`.
fn median_max(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    (times[times.len() / 2], times[times.len() - 1])
}

/// Ten addresses, each registering new files with identity after identity
/// until refused, stop at 89,000 of the tracker's 100,000 files; a
/// newcomer then registers 1,000 more. While 32 plain-text clients loop on
/// a `SEARCH` that matches nothing (each scans every name), an honest
/// `PEERS` is answered in about a millisecond. On main the ten addresses
/// took all 100,000 files in 0.6 s and nobody could register after them,
/// and one such `SEARCH` held the registry's only lock 110-130 ms: the
/// searching clients pushed `PEERS` from 0.5 ms to a median of 3.8 s.
#[test]
fn ten_addresses_cannot_fill_the_tracker_nor_searches_slow_lookups() {
    let dir = TestDir::new("crowded-tracker");
    let tracker = Tracker::start(&dir);
    let started = Instant::now();
    let filled = fill(tracker.addr(), 10..=19, 24);
    println!(
        "figure: crowded tracker: ten addresses registered {filled} files in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let mut newcomer =
        Raw::connect_tls_from(Ipv4Addr::new(127, 0, 0, 100), tracker.addr(), &test_tls());
    assert_eq!(newcomer.ask("HELLO 2"), "OK p2pshare 2");
    let batch: String = (0..1000u64)
        .map(|k| format!("REGISTER 5000 {:064x} 1 honest{k}.bin\n", u64::MAX - k))
        .collect();
    newcomer.send(batch.as_bytes());
    let refused = (0..1000)
        .map(|_| newcomer.line())
        .filter(|r| r != "OK registered")
        .count();

    // `PEERS` of one file, one after another for `window`.
    let honest = format!("{:064x}", 0);
    let peers = |probe: &mut Raw, window: Duration| -> Vec<Duration> {
        let begun = Instant::now();
        let mut times = Vec::new();
        while begun.elapsed() < window {
            let asked = Instant::now();
            assert_eq!(probe.list(&format!("PEERS {honest}")).len(), 1);
            times.push(asked.elapsed());
        }
        times
    };
    let mut probe = Raw::connect(tracker.addr());
    let (quiet, _) = median_max(peers(&mut probe, Duration::from_millis(200)));
    probe.w.set_read_timeout(Some(SCAN)).expect("a timeout");
    let (scan, _) = median_max(
        (0..5)
            .map(|_| {
                let asked = Instant::now();
                assert_eq!(probe.ask("SEARCH no-such-name-anywhere"), "OK 0");
                asked.elapsed()
            })
            .collect(),
    );

    const SEARCHERS: usize = 32;
    let stop = Arc::new(AtomicBool::new(false));
    // Searchers that have had a first answer: PEERS is timed once all have.
    let going = Arc::new(AtomicUsize::new(0));
    let searchers: Vec<_> = (0..SEARCHERS)
        .map(|_| {
            let (stop, going) = (Arc::clone(&stop), Arc::clone(&going));
            let to = tracker.addr();
            thread::spawn(move || {
                let mut c = Raw::connect(to);
                c.w.set_read_timeout(Some(SCAN)).expect("a timeout");
                let mut asked = 0;
                while !stop.load(Ordering::Relaxed) {
                    assert_eq!(c.ask("SEARCH no-such-name-anywhere"), "OK 0");
                    asked += 1;
                    if asked == 1 {
                        going.fetch_add(1, Ordering::Relaxed);
                    }
                }
                asked
            })
        })
        .collect();
    wait_until(COMMAND, "every searcher answered once", || {
        match going.load(Ordering::Relaxed) {
            SEARCHERS => Ok(()),
            n => Err(format!("{n} of {SEARCHERS}")),
        }
    });
    let busy = peers(&mut probe, Duration::from_secs(3));
    let asked = busy.len();
    stop.store(true, Ordering::Relaxed);
    let searches: usize = searchers.into_iter().map(|t| t.join().unwrap()).sum();
    let (median, longest) = median_max(busy);
    println!(
        "figure: crowded tracker: PEERS alone {:.2} ms, a SEARCH matching nothing alone \
         {:.1} ms; PEERS under 32 searching clients ({searches} searches) median {:.2} ms, \
         longest {:.2} ms, {asked} asked in 3 s",
        quiet.as_secs_f64() * 1e3,
        scan.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3,
        longest.as_secs_f64() * 1e3,
    );
    assert!(filled < 90_000, "ten addresses took {filled} files");
    assert_eq!(refused, 0, "the newcomer was refused");
    assert!(
        median < Duration::from_millis(50),
        "median PEERS {median:?}"
    );
    assert!(
        longest < Duration::from_secs(2),
        "longest PEERS {longest:?}"
    );
}

/// Twelve clients ask for every file (`SEARCH`, 89,000 files with
/// 200-byte names) and never read a byte, then twelve more: the tracker
/// sends each at most 64 KiB (`OK <n> more`), and its memory grows by
/// a few MiB. On main each reply was the whole 32 MB listing, built in
/// memory: twelve such readers took the tracker from 110 to 955 MiB.
#[test]
fn slow_readers_of_the_biggest_search_reply_cost_little_memory() {
    let dir = TestDir::new("big-search-replies");
    let tracker = Tracker::start(&dir);
    let filled = fill(tracker.addr(), 30..=39, 200);
    // A scan of 89,000 names takes milliseconds alone, but the whole suite
    // runs beside it on 2 cores: a generous wait for the first line.
    let patient = |c: &Raw| c.w.set_read_timeout(Some(SCAN)).expect("a timeout");
    let mut reader = Raw::connect(tracker.addr());
    patient(&reader);
    reader.send(b"SEARCH\n");
    let header = reader.line();
    let rows = header
        .strip_prefix("OK ")
        .map(|n| n.strip_suffix(" more").unwrap_or(n))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("not a listing: {header:?}"));
    let bytes: usize = header.len() + 1 + (0..rows).map(|_| reader.line().len() + 1).sum::<usize>();
    let before = tracker.proc().vm("VmRSS");
    // Each reads the header of its reply (so the reply is being sent),
    // then nothing more.
    let mut readers: Vec<Raw> = (0..24)
        .map(|_| {
            let mut c = Raw::connect(tracker.addr());
            patient(&c);
            c.send(b"SEARCH\n");
            c
        })
        .collect();
    let headers: Vec<String> = readers.iter_mut().map(Raw::line).collect();
    let during = tracker.proc().vm("VmRSS");
    drop(readers);
    println!(
        "figure: big search replies: {filled} files, one reply {rows} rows / {bytes} bytes; \
         tracker RSS {} MiB before 24 unread replies, {} MiB with them",
        before / 1024,
        during / 1024
    );
    assert!(header.ends_with(" more"), "{header}");
    assert!(bytes <= 64 * 1024, "{bytes} bytes");
    assert!(
        headers
            .iter()
            .all(|h| h.starts_with("OK ") || h == "ERR busy"),
        "{headers:?}"
    );
    assert!(during < before + 32 * 1024, "{before} kB -> {during} kB");
}
