use super::*;
use std::net::Ipv4Addr;

/// An address of its own for connection `session` (the per-address
/// bound is tested on its own).
fn at(session: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x7f00_0000 + session as u32))
}

#[test]
fn each_connection_gets_its_own_fresh_chunks_until_all_are_sent() {
    let offers = Offers::default();
    let now = Instant::now();
    let none = ChunkSet::empty(24);
    let a = offers.offer(1, at(1), &none, now);
    let b = offers.offer(2, at(2), &none, now);
    assert!(a.count() as usize >= MIN_PROMISE && b.count() as usize >= MIN_PROMISE);
    assert!(a.iter().all(|i| !b.contains(i)), "no chunk promised twice");
    // Asked again, a connection is offered what it was promised.
    assert_eq!(offers.offer(1, at(1), &none, now), a);
    for i in 0..24 {
        offers.sent(1, i, 24, now);
    }
    assert_eq!(offers.fresh(24), 0);
    assert!(
        offers.offer(3, at(3), &none, now).is_empty(),
        "all just sent to 1"
    );
    assert!(
        offers.offer(1, at(1), &none, now).is_complete(),
        "its own sends do not count"
    );
    offers.release(1);
    assert!(
        offers.offer(3, at(3), &none, now).is_complete(),
        "1 may have left with them"
    );
    let later = now + SENT_GRACE;
    assert!(
        offers.offer(3, at(3), &none, later).is_complete(),
        "plain seeding now"
    );
    assert!(
        offers.offer(1, at(1), &none, now).is_complete(),
        "its own sends do not count"
    );
}

/// Issue 22: with more connections than the fresh chunks can give
/// promises to, one left without a promise is offered no chunk that was
/// already sent while any fresh one remains, however long ago it was sent.
#[test]
fn no_copy_is_offered_while_a_fresh_chunk_remains() {
    let offers = Offers::default();
    let t0 = Instant::now();
    let none = ChunkSet::empty(24);
    // Two chunks went out long ago; the other 22 are promised to four
    // fetching connections.
    offers.sent(100, 0, 24, t0);
    offers.sent(100, 1, 24, t0);
    let mut promised = 0;
    for s in 1..=4 {
        promised += offers.offer(s, at(s), &none, t0).count();
    }
    assert_eq!(promised, 22, "every fresh chunk is promised");
    let later = t0 + SENT_GRACE + Duration::from_millis(1);
    for s in 1..=4 {
        offers.sent(s, 23 - s as u32, 24, later);
    }
    let late = offers.offer(5, at(5), &none, later);
    assert!(late.is_empty(), "a copy offered: {late:?}");
    // Once every chunk has gone out, what was sent long enough ago is
    // offered again.
    for i in 2..24 {
        offers.sent(1, i, 24, t0);
    }
    let end = offers.offer(5, at(5), &none, later);
    assert!(end.contains(0) && end.contains(1), "{end:?}");
}

#[test]
fn only_chunks_the_asker_lacks_are_promised_a_few_at_a_time() {
    let offers = Offers::default();
    let theirs = ChunkSet::from_fn(100, |i| i < 10);
    let offered = offers.offer(7, at(7), &theirs, Instant::now());
    assert_eq!(offered.count() as usize, MAX_PROMISE);
    assert!(offered.iter().all(|i| i >= 10));
    let all_but_one = ChunkSet::from_fn(100, |i| i != 5);
    assert_eq!(
        offers
            .offer(8, at(8), &all_but_one, Instant::now())
            .iter()
            .collect::<Vec<_>>(),
        [5]
    );
}

#[test]
fn promises_lapse_with_their_connection_and_with_time() {
    let offers = Offers::default();
    let now = Instant::now();
    let none = ChunkSet::empty(12);
    let a = offers.offer(1, at(1), &none, now);
    let promised: u32 = (2..=MIN_SHARES as u64)
        .map(|s| offers.offer(s, at(s), &none, now).count())
        .sum();
    assert_eq!(a.count() + promised, 12, "{a:?}");
    // Everything fresh is promised: one more connection gets nothing yet.
    let late = MIN_SHARES as u64 + 1;
    let c = offers.offer(late, at(late), &none, now);
    assert!(c.is_empty(), "nothing sent yet, nothing free: {c:?}");
    offers.release(1);
    let c = offers.offer(late, at(late), &none, now);
    assert_eq!(c, a, "connection 1's chunks are free again");
    let later = now + PROMISE_TTL + Duration::from_secs(1);
    let d = offers.offer(late + 1, at(late + 1), &none, later);
    assert_eq!(d.count(), 3, "old promises lapsed");
}

/// However small the file, the first asker is not promised all of it
/// while others may come: a 12-chunk file is split among the first
/// `MIN_SHARES` askers, fresh chunks first. (Sized by the askers alone,
/// the first saw nobody to share with and was promised all 12.)
#[test]
fn a_small_file_is_shared_among_the_first_askers() {
    for chunks in [2, 4, 12, 16, 24] {
        let offers = Offers::default();
        let now = Instant::now();
        let none = ChunkSet::empty(chunks);
        let first = offers.offer(1, at(1), &none, now);
        assert!(
            first.count() >= 1 && first.count() < chunks,
            "{chunks} chunks: the first asker was promised {first:?}"
        );
        let second = offers.offer(2, at(2), &none, now);
        assert!(!second.is_empty(), "{chunks} chunks: none left for 2");
        assert!(second.iter().all(|i| !first.contains(i)), "{chunks}");
    }
}

#[test]
fn a_sent_chunk_is_no_longer_promised_or_fresh() {
    let offers = Offers::default();
    let now = Instant::now();
    let none = ChunkSet::empty(8);
    let a = offers.offer(1, at(1), &none, now);
    let first = a.iter().next().expect("a promise");
    offers.sent(1, first, 8, now);
    offers.sent(1, first, 8, now);
    assert_eq!(offers.fresh(8), 7);
    assert!(!offers.offer(1, at(1), &none, now).contains(first));
    offers.sent(1, 99, 8, now); // out of range: ignored
    assert_eq!(offers.fresh(8), 7);
}

/// Issue 22: a chunk being sent to a connection is fetching, however
/// long it takes (48 downloaders share the seeder's uplink: a chunk took
/// over `PROMISE_IDLE` on some connections, whose promises lapsed, went
/// to others, and were fetched twice).
#[test]
fn a_chunk_on_its_way_keeps_the_promises() {
    let offers = Offers::default();
    let t0 = Instant::now();
    let none = ChunkSet::empty(32);
    let mine = offers.offer(1, at(1), &none, t0);
    let first = mine.iter().next().unwrap();
    offers.sent(1, first, 32, t0);
    let slow = t0 + PROMISE_IDLE + Duration::from_secs(1);
    let other = offers.offer(2, at(2), &none, slow);
    assert!(
        other.iter().all(|i| !mine.contains(i)),
        "{mine:?} {other:?}"
    );
    assert_eq!(promised_to(&offers, at(1)), mine.count() as usize - 1);
    offers.delivered(1, slow);
    let later = slow + PROMISE_IDLE - Duration::from_millis(1);
    offers.offer(2, at(2), &none, later);
    assert_eq!(promised_to(&offers, at(1)), mine.count() as usize - 1);
    // A send that lasts longer than a promise's life keeps none.
    offers.sent(1, mine.iter().nth(1).unwrap(), 32, later);
    offers.offer(2, at(2), &none, later + PROMISE_TTL);
    assert_eq!(promised_to(&offers, at(1)), 0);
}

/// Issue 22: a connection that asked while every fresh chunk was promised
/// elsewhere had nothing to fetch; it is promised chunks once some are
/// free again, however long it waited (it lost its turn after
/// `FIRST_FETCH`, and was offered fresh chunks promised to nobody, as
/// every such connection was: two or three fetched each).
#[test]
fn a_connection_that_found_nothing_free_is_promised_chunks_later() {
    let offers = Offers::default();
    let t0 = Instant::now();
    let none = ChunkSet::empty(12);
    let holders = MIN_SHARES as u64;
    let held: Vec<ChunkSet> = (1..=holders)
        .map(|s| offers.offer(s, at(s), &none, t0))
        .collect();
    let late = holders + 1;
    assert!(offers.offer(late, at(late), &none, t0).is_empty());
    let t1 = t0 + FIRST_FETCH + Duration::from_secs(1);
    for (s, o) in (1..).zip(&held) {
        offers.sent(s, o.iter().next().unwrap(), 12, t1);
    }
    assert!(offers.offer(late, at(late), &none, t1).is_empty());
    offers.release(1);
    let got = offers.offer(late, at(late), &none, t1);
    assert!(!got.is_empty(), "1's chunks are free");
    assert_eq!(promised_to(&offers, at(late)), got.count() as usize);
}

/// Chunks promised to connections from `ip`, over all of them.
fn promised_to(offers: &Offers, ip: IpAddr) -> usize {
    let guard = offers.ledger.lock().unwrap();
    let l = guard.as_ref().unwrap();
    let counted = l
        .promised
        .iter()
        .flatten()
        .filter(|(s, _)| l.askers[s].ip == ip);
    let total = l
        .askers
        .values()
        .filter(|s| s.ip == ip)
        .map(|s| s.promised)
        .sum();
    assert_eq!(counted.count(), total, "the counts match the promises");
    total
}

/// A promise is kept by fetching: a connection that only asks loses its
/// promises `FIRST_FETCH` after its first `HAVE` and is promised nothing
/// more (its chunks go to others), while one that fetches keeps its own
/// until `PROMISE_IDLE` after its last `GET`.
#[test]
fn a_connection_that_never_fetches_loses_its_promises_for_good() {
    let offers = Offers::default();
    let t0 = Instant::now();
    let none = ChunkSet::empty(32);
    let hoarded = offers.offer(1, at(1), &none, t0);
    let kept = offers.offer(2, at(2), &none, t0);
    assert_eq!((hoarded.count(), kept.count()), (8, 8));
    let first = kept.iter().next().unwrap();
    offers.sent(2, first, 32, t0 + Duration::from_millis(500));
    let t1 = t0 + FIRST_FETCH + Duration::from_millis(1);
    let asked_again = offers.offer(1, at(1), &none, t1);
    assert_eq!(promised_to(&offers, at(1)), 0, "lapsed, not renewed");
    assert!(
        asked_again.is_empty(),
        "no fresh chunk unpromised while fresh ones remain: {asked_again:?}"
    );
    let still = offers.offer(2, at(2), &none, t1);
    let mut rest_kept = kept.iter().filter(|&i| i != first);
    assert!(
        rest_kept.all(|i| still.contains(i)) && still.count() == 8,
        "the fetcher keeps the rest of its promises, topped up: {kept:?} {still:?}"
    );
    // The hoarder's chunks are promised to others now.
    let mut others: Vec<ChunkSet> = (3..=6).map(|s| offers.offer(s, at(s), &none, t1)).collect();
    others.push(still);
    assert!(
        hoarded.iter().all(|i| others.iter().any(|n| n.contains(i))),
        "{hoarded:?} not passed on: {others:?}"
    );
    // Fetching earns it promises again.
    offers.sent(1, 31, 32, t1);
    offers.release(3);
    assert!(promised_to(&offers, at(1)) == 0);
    assert!(!offers.offer(1, at(1), &none, t1).is_empty());
    assert!(promised_to(&offers, at(1)) > 0, "earned again by a GET");
}

/// However many connections one address opens, it holds at most
/// `MAX_ADDRESS_PROMISES` promises of a file, and at most half its chunks.
#[test]
fn one_address_holds_a_bounded_share_of_the_promises() {
    for (chunks, cap) in [(200, MAX_ADDRESS_PROMISES), (32, 16), (12, 6)] {
        let offers = Offers::default();
        let now = Instant::now();
        let none = ChunkSet::empty(chunks);
        let hoarder = at(200);
        for s in 1..=16 {
            offers.offer(s, hoarder, &none, now);
        }
        assert_eq!(promised_to(&offers, hoarder), cap, "{chunks} chunks");
        let honest = offers.offer(100, at(100), &none, now);
        assert!(
            honest.count() as usize >= MIN_PROMISE.min(chunks as usize / MIN_SHARES),
            "{chunks} chunks: {honest:?}"
        );
        assert!(promised_to(&offers, at(100)) > 0, "{chunks} chunks");
    }
}

/// The attack of issue 20 on a simulated clock: sixteen connections from
/// one address ask `HAVE` every 5 ms for a minute and never fetch; an
/// honest downloader from another address asking meanwhile is promised
/// fresh chunks every time. (Before, the sixteen held all 32 chunks of a
/// 16 MiB file and the downloader was offered nothing.)
#[test]
fn hoarders_asking_all_the_time_cannot_starve_an_honest_downloader() {
    let offers = Offers::default();
    let t0 = Instant::now();
    let none = ChunkSet::empty(32);
    let hoarder = at(200);
    let mut honest_got = Vec::new();
    for tick in 0..12_000u64 {
        let now = t0 + Duration::from_millis(5 * tick);
        for s in 1..=16 {
            offers.offer(s, hoarder, &none, now);
        }
        if tick % 1000 == 999 {
            // A new honest connection each time, as after a reconnect.
            let s = 1000 + tick;
            honest_got.push(offers.offer(s, at(100), &none, now).count());
            offers.release(s);
        }
    }
    assert!(honest_got.iter().all(|&n| n == 8), "{honest_got:?}");
    assert_eq!(promised_to(&offers, hoarder), 0, "all lapsed long ago");
}

/// A connection that lacks only chunks promised to others, and gets no
/// chunk elsewhere either, is offered them after `STARVE_AFTER` rather
/// than nothing; one whose chunk map grows meanwhile is not.
#[test]
fn a_connection_lacking_only_promised_chunks_is_offered_them() {
    let offers = Offers::default();
    let t0 = Instant::now();
    let secs = |n: u64| t0 + Duration::from_secs(n);
    // A chunk sent before, which the holders below fetch again and again
    // to keep their promises.
    offers.sent(100, 39, 40, t0);
    let promised = offers.offer(1, at(1), &ChunkSet::empty(40), t0);
    let only = promised.iter().next().unwrap();
    for s in 4..=12 {
        offers.offer(s, at(s), &ChunkSet::empty(40), t0);
    }
    let keep = |t: Instant| {
        for s in [1].into_iter().chain(4..=12) {
            offers.sent(s, 39, 40, t);
        }
    };
    let lacks_one = ChunkSet::from_fn(40, |i| i != only);
    assert!(offers.offer(2, at(2), &lacks_one, t0).is_empty());
    let mut growing = ChunkSet::from_fn(40, |i| i != only && (i % 2 == 0 || i == 39));
    for n in [0, 2, 4, 6] {
        keep(secs(n));
        let offered = offers.offer(3, at(3), &growing, secs(n));
        assert!(offered.is_empty(), "{n} s: {offered:?}");
        growing.insert(2 * n as u32 + 1);
    }
    let got = offers.offer(2, at(2), &lacks_one, secs(6));
    assert_eq!(got.iter().collect::<Vec<_>>(), [only], "starved for 6 s");
}

/// The per-address bound is on connections that only ask: once they
/// fetch, a crowd behind one address (a NAT, the loopback tests) gets
/// windows of its own again.
#[test]
fn connections_that_fetch_are_not_held_to_the_address_bound() {
    let offers = Offers::default();
    let now = Instant::now();
    let none = ChunkSet::empty(200);
    let home = at(1);
    for s in 1..=3 {
        offers.offer(s, home, &none, now);
    }
    assert_eq!(
        promised_to(&offers, home),
        MAX_ADDRESS_PROMISES,
        "the bound"
    );
    offers.sent(3, 199, 200, now);
    offers.offer(3, home, &none, now);
    assert!(
        promised_to(&offers, home) >= MAX_ADDRESS_PROMISES - 1 + MAX_PROMISE,
        "earned by a GET: {}",
        promised_to(&offers, home)
    );
}

/// A folder of 4 KiB files (10,000 chunks of a 512 KiB chunk size) is
/// promised the bytes a file's connection is, not 16 chunks of 4 KiB: a
/// lone downloader got 64 KiB per `HAVE` round trip before.
#[test]
fn a_folder_of_small_chunks_is_promised_a_files_bytes() {
    let scale = 128; // 512 KiB / 4 KiB
    let offers = Offers::scaled(scale);
    let none = ChunkSet::empty(10_000);
    let first = offers.offer(1, at(1), &none, Instant::now());
    assert_eq!(first.count() as usize, MAX_PROMISE * scale);
    // Still at most a quarter of the chunks, however small they are.
    let few = Offers::scaled(scale).offer(1, at(1), &ChunkSet::empty(100), Instant::now());
    assert_eq!(few.count() as usize, 100 / MIN_SHARES);
}

#[test]
fn the_scale_is_the_chunk_size_over_the_mean_chunk_length() {
    use crate::manifest::tree::{build, FileIn};
    // Distinct contents (a file's id comes from its chunk hashes).
    let file = |n: u8, len: u64| {
        let chunks = len.div_ceil(512).max(1);
        let hashes = (0..chunks)
            .map(|i| [n, i as u8].repeat(16))
            .map(|h| h.try_into().unwrap())
            .collect();
        FileIn {
            path: format!("f{n}"),
            exec: false,
            manifest: Manifest::with_chunk_size(len, 512, hashes).unwrap(),
        }
    };
    let whole = Manifest::with_chunk_size(3000, 512, vec![[0; 32]; 6]).unwrap();
    assert_eq!(Offers::for_manifest(&whole).scale, 1, "a file: 1");
    let small: Vec<FileIn> = (0..8).map(|n| file(n, 64)).collect();
    let tree = build(512, small, Vec::new()).unwrap();
    assert_eq!(tree.chunk_count(), 8);
    assert_eq!(
        Offers::for_manifest(&tree).scale,
        8,
        "64-byte chunks of 512"
    );
    let mixed = build(512, vec![file(0, 64), file(1, 1024)], Vec::new()).unwrap();
    assert_eq!(
        Offers::for_manifest(&mixed).scale,
        1,
        "3 chunks, 1,088 bytes"
    );
}
