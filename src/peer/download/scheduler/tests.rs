use super::*;
use crate::bounds::{ENDGAME_AFTER, HOLD_PATIENCE, MAX_STRIKES, RANDOM_FIRST};
use std::thread;

/// A clock the test moves by hand: no test sleeps, and none depends on how
/// fast the machine is.
#[derive(Clone)]
struct Clock(Arc<Mutex<Instant>>);

impl Clock {
    fn new() -> Self {
        Clock(Arc::new(Mutex::new(Instant::now())))
    }

    fn now(&self) -> Instant {
        *self.0.locked()
    }

    fn advance(&self, by: Duration) {
        *self.0.locked() += by;
    }
}

fn on(clock: &Clock, have: &ChunkSet, n: u16, stop: Arc<StopSignal>) -> Scheduler {
    let clock = clock.clone();
    Scheduler::with_clock(have, &peers(n), stop, move || clock.now())
}

fn peers(n: u16) -> Vec<PeerAddr> {
    (0..n)
        .map(|i| PeerAddr::unpinned(SocketAddr::from(([127, 0, 0, 1], 1000 + i))))
        .collect()
}

/// A scheduler lacking `missing` of `total` chunks, with `n` peers, on a
/// clock that moves only when the test says.
fn timed(missing: &[u32], total: u32, n: u16) -> (Scheduler, Clock) {
    let clock = Clock::new();
    let have = ChunkSet::from_fn(total, |i| !missing.contains(&i));
    (on(&clock, &have, n, StopSignal::new()), clock)
}

fn scheduler(missing: &[u32], total: u32, n: u16) -> Scheduler {
    timed(missing, total, n).0
}

/// A scheduler past its random start: `RANDOM_FIRST` chunks already done.
fn warm(total: u32, n: u16) -> Scheduler {
    let have = ChunkSet::from_fn(total, |i| i < RANDOM_FIRST);
    on(&Clock::new(), &have, n, StopSignal::new())
}

fn set(total: u32, chunks: &[u32]) -> ChunkSet {
    ChunkSet::from_fn(total, |i| chunks.contains(&i))
}

/// A worker that leaves a peer takes the one left longest ago (or never
/// used) next, not the first in the list again: with more peers than
/// workers, every peer gets its turn (issue 22).
#[test]
fn a_worker_leaving_a_peer_goes_round_the_others() {
    let (s, clock) = timed(&[0, 1, 2, 3], 4, 3);
    let mut order = Vec::new();
    for _ in 0..6 {
        let lease = s.try_pick_peer().expect("a peer");
        order.push(lease.peer);
        clock.advance(Duration::from_millis(10));
        drop(lease);
    }
    assert_eq!(order, [0, 1, 2, 0, 1, 2]);
}

#[test]
fn workers_spread_evenly_over_peers_up_to_the_connection_cap() {
    let s = scheduler(&[0, 1, 2], 3, 3);
    let leases: Vec<_> = (0..6).filter_map(|_| s.pick_peer()).collect();
    let picked: Vec<usize> = leases.iter().map(|l| l.peer).collect();
    assert_eq!(picked, vec![0, 1, 2, 0, 1, 2]);
    assert_eq!(CONNS_PER_PEER, 2, "the test assumes two per peer");
    // A seventh waits; stopping the download releases it with nothing.
    assert!(s.try_pick_peer().is_none(), "every peer is at its cap");
    thread::scope(|scope| {
        let waiter = scope.spawn(|| s.pick_peer().map(|l| l.peer));
        s.abort();
        assert_eq!(waiter.join().unwrap(), None);
    });
}

#[test]
fn failed_chunk_is_freed_and_bad_peer_banned() {
    let s = scheduler(&[0], 1, 2);
    assert_eq!(s.next_chunk(0), Next::Chunk(0));
    s.fail(0, 0, Fault::BadData);
    assert_eq!(s.next_chunk(0), Next::SwitchPeer);
    assert_eq!(
        s.next_chunk(1),
        Next::Chunk(0),
        "free again, for another peer"
    );
    assert_eq!(s.complete(1, 0), Some((1, 1)));
    assert_eq!(s.next_chunk(1), Next::Finished);
    let (done, total, stats) = s.outcome();
    assert_eq!((done, total), (1, 1));
    assert!(stats[0].banned && !stats[1].banned);
    assert_eq!(stats[1].chunks, 1);
}

#[test]
fn the_rarest_chunk_a_peer_offers_comes_first() {
    let s = warm(10, 3);
    // Peer 1 and 2 are partial; chunk 7 only peer 1 has, 5 both.
    s.set_offers(1, set(10, &[5, 7]), false);
    s.set_offers(2, set(10, &[5]), false);
    // Peer 0 (unknown offers: everything) makes 7 offered twice, 5 thrice.
    assert_eq!(s.next_chunk(1), Next::Chunk(7));
    assert_eq!(s.next_chunk(1), Next::Chunk(5));
    assert_eq!(s.next_chunk(2), Next::Idle, "5 is taken, nothing else");
}

#[test]
fn a_seeder_is_not_asked_for_what_a_connected_partial_peer_offers() {
    let s = warm(6, 2);
    s.set_offers(0, ChunkSet::full(6), true);
    s.set_offers(1, set(6, &[4, 5]), false);
    let partial = loop {
        let lease = s.pick_peer().expect("a peer");
        if lease.peer == 1 {
            break lease;
        }
        std::mem::forget(lease); // keep peer 0 busy, not released
    };
    let mut from_seeder = Vec::new();
    while let Next::Chunk(c) = s.next_chunk(0) {
        from_seeder.push(c);
    }
    assert!(
        !from_seeder.contains(&4) && !from_seeder.contains(&5),
        "{from_seeder:?}"
    );
    drop(partial);
    // With no worker on the partial peer, the seeder may serve those too.
    assert!(matches!(s.next_chunk(0), Next::Chunk(4 | 5)));
}

#[test]
fn endgame_duplicates_a_stalled_chunk_on_another_peer_once() {
    let (s, clock) = timed(&[0], 1, 3);
    assert_eq!(s.next_chunk(0), Next::Chunk(0)); // peer 0 stalls on it
    clock.advance(ENDGAME_AFTER - Duration::from_millis(1));
    assert_eq!(s.next_chunk(1), Next::Idle, "not before ENDGAME_AFTER");
    clock.advance(Duration::from_millis(1));
    assert_eq!(s.next_chunk(1), Next::Chunk(0)); // peer 1 duplicates it
                                                 // A failure of one holder does not free it: the other still holds it.
    s.fail(0, 0, Fault::Unreliable);
    assert_eq!(s.next_chunk(2), Next::Idle, "peer 1's copy is recent");
    clock.advance(ENDGAME_AFTER);
    assert_eq!(s.next_chunk(2), Next::Chunk(0));
    assert_eq!(s.complete(2, 0), Some((1, 1)));
    assert_eq!(s.complete(1, 0), None); // the slower copy is discarded
    assert_eq!(s.outcome().2.iter().map(|p| p.chunks).sum::<u32>(), 1);
}

/// A seeder offers a connection only the fresh chunks it promised it:
/// when that chunk is stalled on a slow peer, the worker on the seeder
/// takes it in endgame although another chunk is free (offered only by the
/// slow peer, whose connection is busy). Until then endgame waited for no
/// chunk to be free anywhere, and such a download sat until the slow
/// peer's read failed.
#[test]
fn endgame_takes_a_stalled_chunk_while_others_are_free_elsewhere() {
    let (s, clock) = timed(&[0, 1], 2, 2);
    s.set_offers(0, set(2, &[1]), true);
    assert_eq!(s.next_chunk(0), Next::Chunk(1)); // the slow peer takes 1
    s.set_offers(0, set(2, &[0, 1]), true);
    s.set_offers(1, set(2, &[1]), true); // the seeder's promise: chunk 1
    assert_eq!(s.next_chunk(1), Next::Idle, "not at once");
    clock.advance(ENDGAME_AFTER);
    assert_eq!(
        s.next_chunk(1),
        Next::Chunk(1),
        "chunk 0 is free, elsewhere"
    );
}

#[test]
fn stopping_stops_the_downloads_signal() {
    let stop = StopSignal::new();
    let s = on(&Clock::new(), &ChunkSet::empty(1), 1, Arc::clone(&stop));
    s.abort();
    assert!(stop.is_stopped(), "workers' connections get interrupted");
    assert_eq!(s.next_chunk(0), Next::Finished);
}

#[test]
fn strikes_bench_a_peer_for_a_while_and_busy_is_no_fault() {
    let s = scheduler(&[0], 1, 2);
    for _ in 0..MAX_STRIKES - 1 {
        s.strike(0, Fault::Unreliable);
        assert_eq!(s.ban_state(0), None);
    }
    s.strike(0, Fault::Unreliable);
    assert_eq!(s.ban_state(0), Some(false), "benched, not banned");
    assert_eq!(
        s.usable(),
        Usable {
            peers: 1,
            benched: 1,
            banned: 0
        }
    );
    s.busy(1);
    assert_eq!(s.usable().peers, 1, "a busy peer is still usable");
    assert_eq!(s.ban_state(1), None);
    s.strike(1, Fault::BadData);
    assert_eq!(s.ban_state(1), Some(true));
    assert_eq!(s.usable().peers, 0);
    assert!(!s.is_stopped(), "whether to wait is the download's call");
    assert_eq!(s.outcome().0, 0);
}

/// A first connect that times out is short and no strike; the next is
/// full length, and timing out again is one; a chunk delivered starts over.
#[test]
fn a_short_first_connect_timeout_is_no_strike_and_a_full_one_is() {
    use crate::bounds::{CONNECT_TIMEOUT, FIRST_CONNECT_TIMEOUT};
    let s = scheduler(&[0, 1], 2, 1);
    assert_eq!(s.connect_timeout(0), FIRST_CONNECT_TIMEOUT);
    s.timed_out(0);
    assert_eq!(s.connect_timeout(0), CONNECT_TIMEOUT);
    for _ in 0..MAX_STRIKES - 1 {
        s.timed_out(0);
        assert_eq!(s.ban_state(0), None);
    }
    s.timed_out(0);
    assert_eq!(
        s.ban_state(0),
        Some(false),
        "benched after MAX_STRIKES full ones"
    );
    // The first chunks are picked at random: whichever it is.
    let Next::Chunk(chunk) = s.next_chunk(0) else {
        panic!("no chunk for peer 0");
    };
    s.complete(0, chunk);
    assert_eq!(s.connect_timeout(0), FIRST_CONNECT_TIMEOUT);
}

#[test]
fn slow_holders_do_not_lock_a_chunk_away_from_a_third_peer() {
    let (s, clock) = timed(&[0], 1, 3);
    assert_eq!(s.next_chunk(0), Next::Chunk(0));
    clock.advance(ENDGAME_AFTER);
    assert_eq!(s.next_chunk(1), Next::Chunk(0));
    clock.advance(ENDGAME_AFTER);
    assert_eq!(s.next_chunk(2), Next::Idle, "two holders, both recent");
    let just_before = HOLD_PATIENCE - ENDGAME_AFTER * 2 - Duration::from_millis(1);
    clock.advance(just_before);
    assert_eq!(s.next_chunk(2), Next::Idle, "peer 0 not yet past patience");
    clock.advance(ENDGAME_AFTER * 2 + Duration::from_millis(1));
    assert_eq!(s.next_chunk(2), Next::Chunk(0), "both held it too long");
}

#[test]
fn nothing_missing_is_finished_at_once() {
    let s = scheduler(&[], 4, 1);
    assert!(s.pick_peer().is_none());
    assert_eq!(s.outcome().0, 4);
}

#[test]
fn new_peers_join_and_known_ones_are_not_added_twice() {
    let s = scheduler(&[0], 1, 1);
    assert_eq!(s.add_peers(&peers(3)), 2);
    assert_eq!(s.add_peers(&peers(3)), 0);
    assert_eq!(s.outcome().2.len(), 3);
}

/// A worker that panics while holding the only chunk must not leave the
/// others waiting for it: the chunk comes back.
#[test]
fn a_panicking_worker_gives_its_chunk_back() {
    let s = scheduler(&[0], 1, 1);
    let panicked = thread::scope(|scope| {
        scope
            .spawn(|| {
                let lease = s.pick_peer().expect("a peer");
                let _held = lease.next().expect("the chunk");
                panic!("a bug in a worker");
            })
            .join()
            .is_err()
    });
    assert!(panicked);
    let lease = s.pick_peer().expect("the peer is free again");
    let held = lease.next().expect("the chunk is back, not held by nobody");
    assert_eq!(held.chunk, 0);
    assert_eq!(held.complete(), Some((1, 1)));
}

/// What the manifest fetch learnt is passed on: a peer that sent a false
/// manifest is banned, one that did not answer is benched (tried again
/// later), and the download picks neither now.
#[test]
fn peers_that_failed_the_manifest_are_banned_or_benched() {
    let s = scheduler(&[0, 1], 2, 3);
    let all = peers(3);
    s.ban(&all[..1]);
    s.bench(&all[1..2]);
    let usable = s.usable();
    assert_eq!((usable.peers, usable.benched, usable.banned), (1, 1, 1));
    let lease = s.pick_peer().expect("the third peer");
    assert_eq!(lease.source, all[2]);
}

#[test]
fn free_offers_counts_what_is_needed_and_nobody_holds() {
    let s = warm(10, 2);
    // Chunks 0..RANDOM_FIRST are done; the seeder promised 2, 3, 6, 7, 8.
    s.set_offers(0, set(10, &[2, 3, 6, 7, 8]), true);
    assert_eq!(RANDOM_FIRST, 4, "the test assumes chunks 0..4 are done");
    assert_eq!(s.free_offers(0, 10), 3, "2 and 3 are done already");
    assert_eq!(s.free_offers(0, 2), 2, "counts no further than asked");
    let Next::Chunk(taken) = s.next_chunk(0) else {
        panic!("a chunk to take")
    };
    assert!([6, 7, 8].contains(&taken));
    assert_eq!(s.free_offers(0, 10), 2, "a held chunk is not free");
    assert_eq!(s.free_offers(1, 10), 5, "no HAVE yet: everything missing");
}

/// A known pinned peer whose row changes (the tracker now says it can be
/// dialled) takes the new ways, and a lease taken before sees it moved; a
/// row without a pin does not overwrite a pinned one.
#[test]
fn a_peer_whose_row_changes_is_reached_the_new_way() {
    use crate::identity::PeerId;
    use crate::protocol::nat_msg::Via;
    let at = SocketAddr::from(([127, 0, 0, 1], 2000));
    let id = Some(PeerId([4; 16]));
    let s = scheduler(&[0, 1], 2, 0);
    assert_eq!(s.add_peers(&[PeerAddr::listed(at, id, Via::Relay)]), 1);
    let lease = s.try_pick_peer().expect("a peer");
    assert!(!s.moved(&lease));
    assert_eq!(s.add_peers(&[PeerAddr::unpinned(at)]), 0);
    assert!(!s.moved(&lease), "an unpinned row changes nothing");
    assert_eq!(s.add_peers(&[PeerAddr::listed(at, id, Via::Direct)]), 0);
    assert!(s.moved(&lease));
    drop(lease);
    let again = s.try_pick_peer().expect("the same peer");
    assert_eq!(again.source, PeerAddr::listed(at, id, Via::Direct));
}
