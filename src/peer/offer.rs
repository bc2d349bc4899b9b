//! What a complete peer offers each downloader in its `HAVE` replies, so
//! that a seeder's upload (the scarce resource of a swarm) goes to chunks no
//! downloader has been sent yet: *fresh first*, like BitTorrent's
//! super-seeding (BEP 16), but pull-based. While some chunk has never been
//! sent, each asking connection is promised its own handful of fresh chunks
//! it lacks, and offered only those; a chunk is promised to one connection
//! at a time. A connection with no fresh chunk left for it is offered the
//! rest, except chunks sent to someone else in the last [`SENT_GRACE`]: those
//! are about to be offered by the peer that got them, and a downloader that
//! has not heard so yet would otherwise ask the seeder for a second copy.
//!
//! Nothing here restricts what is *served*: a `GET` for any chunk the peer
//! has is answered. Offers steer well-behaved downloaders; they guard
//! nothing. Promises lapse when their connection ends or after
//! [`PROMISE_TTL`], so a downloader that vanishes holds no chunk hostage.
//!
//! Invariant: `fresh` equals the number of chunks with `sent == 0`.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::chunkset::ChunkSet;
use crate::sync::LockExt;

/// How long after sending a chunk to one connection it is not offered to
/// others: a few `HAVE` intervals, for the chunk to be offered onwards.
pub const SENT_GRACE: Duration = Duration::from_secs(2);

/// How long a promise of a chunk to a connection stands if it is not taken.
pub const PROMISE_TTL: Duration = Duration::from_secs(10);

/// Chunks promised to one connection at a time: at least enough to keep its
/// pipeline of requests full between two `HAVE`s, at most a few megabytes,
/// and never more than a [`MIN_SHARES`]th of the file, so that a downloader
/// that asks first cannot take every fresh chunk from the ones that arrive
/// a moment later, however small the file.
pub const MIN_PROMISE: usize = 6;
pub const MAX_PROMISE: usize = 16;

/// The fewest downloaders a file's fresh chunks are spread over when they
/// ask one after another: the first asker of a 12-chunk file is promised 3,
/// not all 12 (which made the swarm a chain: seeder, first, the rest).
pub const MIN_SHARES: usize = 4;

/// The offers of one complete file; created empty, filled on first use.
#[derive(Default)]
pub struct Offers {
    /// Boxed: most shares of a large collection are never asked for, and
    /// an empty slot costs 8 bytes, not the ledger's 136.
    ledger: Mutex<Option<Box<Ledger>>>,
}

struct Ledger {
    /// Times each chunk was sent (saturating), and to whom last, when.
    sent: Vec<u16>,
    last_sent: Vec<Option<(u64, Instant)>>,
    fresh: u32,
    /// Which connection a fresh chunk is promised to, and since when.
    promised: Vec<Option<(u64, Instant)>>,
    /// Live promises per connection.
    holders: HashMap<u64, usize>,
    /// A xorshift state for random picks, so chunks spread across the swarm.
    rng: u64,
}

impl Offers {
    fn lock(&self, chunks: u32) -> MutexGuard<'_, Option<Box<Ledger>>> {
        // Every update keeps the ledger consistent before it unlocks.
        let mut guard = self.ledger.locked();
        if guard.is_none() {
            *guard = Some(Box::new(Ledger {
                sent: vec![0; chunks as usize],
                last_sent: vec![None; chunks as usize],
                fresh: chunks,
                promised: vec![None; chunks as usize],
                holders: HashMap::new(),
                rng: seed(),
            }));
        }
        guard
    }

    /// What to offer connection `session`, which has `theirs`, of a file of
    /// `theirs.len()` chunks.
    pub fn offer(&self, session: u64, theirs: &ChunkSet, now: Instant) -> ChunkSet {
        let chunks = theirs.len();
        let mut guard = self.lock(chunks);
        let Some(l) = guard.as_mut() else {
            return ChunkSet::full(chunks);
        };
        l.expire(now);
        let mut mine = ChunkSet::empty(chunks);
        let mut free = Vec::new();
        for i in (0..chunks).filter(|&i| l.sent[i as usize] == 0 && !theirs.contains(i)) {
            match l.promised[i as usize] {
                Some((s, _)) if s == session => {
                    mine.insert(i);
                }
                Some(_) => {}
                None => free.push(i),
            }
        }
        let others = l.holders.keys().filter(|&&s| s != session).count();
        let window = (free.len() + mine.count() as usize)
            .div_ceil(others + 1)
            .clamp(MIN_PROMISE, MAX_PROMISE)
            .min((chunks as usize).div_ceil(MIN_SHARES));
        while (mine.count() as usize) < window && !free.is_empty() {
            let pick = l.next_random() as usize % free.len();
            let i = free.swap_remove(pick);
            l.promise(i, session, now);
            mine.insert(i);
        }
        if mine.is_empty() {
            // No fresh chunk for it: what it lacks and nobody else is about to
            // offer (promised, or just sent, to another connection).
            return ChunkSet::from_fn(chunks, |i| {
                let c = i as usize;
                let elsewhere = |p: Option<(u64, Instant)>, within: Duration| {
                    p.is_some_and(|(s, at)| s != session && now.duration_since(at) < within)
                };
                !theirs.contains(i)
                    && !elsewhere(l.promised[c], PROMISE_TTL)
                    && !elsewhere(l.last_sent[c], SENT_GRACE)
            });
        }
        mine
    }

    /// Chunk `index` of a file of `chunks` is being sent to `session`.
    pub fn sent(&self, session: u64, index: u32, chunks: u32, now: Instant) {
        let mut guard = self.lock(chunks);
        let Some(l) = guard.as_mut() else { return };
        let Some(count) = l.sent.get_mut(index as usize) else {
            return;
        };
        if *count == 0 {
            l.fresh -= 1;
        }
        *count = count.saturating_add(1);
        l.last_sent[index as usize] = Some((session, now));
        l.unpromise(index);
    }

    /// Connection `session` ended: its promises lapse, and so does the
    /// grace of what it was sent (its peer may have left with it).
    pub fn release(&self, session: u64) {
        let mut guard = self.ledger.locked();
        let Some(l) = guard.as_mut() else { return };
        l.holders.remove(&session);
        for p in l.promised.iter_mut().chain(l.last_sent.iter_mut()) {
            if matches!(p, Some((s, _)) if *s == session) {
                *p = None;
            }
        }
    }

    /// Chunks never sent, for status and tests.
    pub fn fresh(&self, chunks: u32) -> u32 {
        self.lock(chunks).as_ref().map_or(chunks, |l| l.fresh)
    }
}

impl Ledger {
    fn promise(&mut self, index: u32, session: u64, now: Instant) {
        self.promised[index as usize] = Some((session, now));
        *self.holders.entry(session).or_default() += 1;
    }

    fn unpromise(&mut self, index: u32) {
        if let Some((s, _)) = self.promised[index as usize].take() {
            if let Some(n) = self.holders.get_mut(&s) {
                *n -= 1;
                if *n == 0 {
                    self.holders.remove(&s);
                }
            }
        }
    }

    fn expire(&mut self, now: Instant) {
        for i in 0..self.promised.len() {
            if matches!(self.promised[i], Some((_, at)) if now.duration_since(at) > PROMISE_TTL) {
                self.unpromise(i as u32);
            }
        }
    }

    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }
}

/// A nonzero seed that differs between processes and between files.
pub(crate) fn seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now()) | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_connection_gets_its_own_fresh_chunks_until_all_are_sent() {
        let offers = Offers::default();
        let now = Instant::now();
        let none = ChunkSet::empty(24);
        let a = offers.offer(1, &none, now);
        let b = offers.offer(2, &none, now);
        assert!(a.count() as usize >= MIN_PROMISE && b.count() as usize >= MIN_PROMISE);
        assert!(a.iter().all(|i| !b.contains(i)), "no chunk promised twice");
        // Asked again, a connection is offered what it was promised.
        assert_eq!(offers.offer(1, &none, now), a);
        for i in 0..24 {
            offers.sent(1, i, 24, now);
        }
        assert_eq!(offers.fresh(24), 0);
        assert!(offers.offer(3, &none, now).is_empty(), "all just sent to 1");
        assert!(
            offers.offer(1, &none, now).is_complete(),
            "its own sends do not count"
        );
        offers.release(1);
        assert!(
            offers.offer(3, &none, now).is_complete(),
            "1 may have left with them"
        );
        let later = now + SENT_GRACE;
        assert!(
            offers.offer(3, &none, later).is_complete(),
            "plain seeding now"
        );
        assert!(
            offers.offer(1, &none, now).is_complete(),
            "its own sends do not count"
        );
    }

    #[test]
    fn only_chunks_the_asker_lacks_are_promised_a_few_at_a_time() {
        let offers = Offers::default();
        let theirs = ChunkSet::from_fn(100, |i| i < 10);
        let offered = offers.offer(7, &theirs, Instant::now());
        assert_eq!(offered.count() as usize, MAX_PROMISE);
        assert!(offered.iter().all(|i| i >= 10));
        let all_but_one = ChunkSet::from_fn(100, |i| i != 5);
        assert_eq!(
            offers
                .offer(8, &all_but_one, Instant::now())
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
        let a = offers.offer(1, &none, now);
        let promised: u32 = (2..=MIN_SHARES as u64)
            .map(|s| offers.offer(s, &none, now).count())
            .sum();
        assert_eq!(a.count() + promised, 12, "{a:?}");
        // Everything fresh is promised: one more connection gets nothing yet.
        let late = MIN_SHARES as u64 + 1;
        let c = offers.offer(late, &none, now);
        assert!(c.is_empty(), "nothing sent yet, nothing free: {c:?}");
        offers.release(1);
        let c = offers.offer(late, &none, now);
        assert_eq!(c, a, "connection 1's chunks are free again");
        let later = now + PROMISE_TTL + Duration::from_secs(1);
        let d = offers.offer(late + 1, &none, later);
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
            let first = offers.offer(1, &none, now);
            assert!(
                first.count() >= 1 && first.count() < chunks,
                "{chunks} chunks: the first asker was promised {first:?}"
            );
            let second = offers.offer(2, &none, now);
            assert!(!second.is_empty(), "{chunks} chunks: none left for 2");
            assert!(second.iter().all(|i| !first.contains(i)), "{chunks}");
        }
    }

    #[test]
    fn a_sent_chunk_is_no_longer_promised_or_fresh() {
        let offers = Offers::default();
        let now = Instant::now();
        let none = ChunkSet::empty(8);
        let a = offers.offer(1, &none, now);
        let first = a.iter().next().expect("a promise");
        offers.sent(1, first, 8, now);
        offers.sent(1, first, 8, now);
        assert_eq!(offers.fresh(8), 7);
        assert!(!offers.offer(1, &none, now).contains(first));
        offers.sent(1, 99, 8, now); // out of range: ignored
        assert_eq!(offers.fresh(8), 7);
    }
}
