//! What a complete peer offers each downloader in its `HAVE` replies, so
//! that a seeder's upload (the scarce resource of a swarm) goes to chunks no
//! downloader has been sent yet: *fresh first*, like BitTorrent's
//! super-seeding (BEP 16), but pull-based. While some chunk has never been
//! sent, each asking connection is promised its own handful of fresh chunks
//! it lacks, and offered only those; a chunk is promised to one connection
//! at a time. A connection with no fresh chunk promised to it is offered
//! nothing while any fresh chunk remains: not a copy (it would delay the
//! fresh ones), nor a fresh chunk unpromised (several such connections
//! would fetch it at once); once every chunk has gone out, it is offered the
//! rest, except chunks sent to someone else in the last [`SENT_GRACE`]: those
//! are about to be offered by the peer that got them, and a downloader that
//! has not heard so yet would otherwise ask the seeder for a second copy.
//!
//! Nothing here restricts what is *served*: a `GET` for any chunk the peer
//! has is answered. Offers steer well-behaved downloaders; they guard
//! nothing. But they must not be hoarded (issue 20: sixteen connections
//! asking `HAVE` and never `GET` were promised every fresh chunk, and an
//! honest downloader was offered nothing), so:
//!
//! - a promise is earned and kept by fetching: a connection that has
//!   fetched nothing of the file [`FIRST_FETCH`] after its first `HAVE`, or
//!   [`PROMISE_IDLE`] after its last `GET` was answered (a chunk still
//!   being sent to it counts as fetching, up to [`PROMISE_TTL`] after it
//!   was asked for), loses its promises and is
//!   promised nothing more until it fetches; any promise lapses after
//!   [`PROMISE_TTL`] and when its connection ends. A connection that was
//!   promised nothing because every fresh chunk was promised elsewhere
//!   when it asked (not because of a bound below) had nothing to fetch:
//!   its time runs from its latest `HAVE` until it is promised a chunk;
//! - one address's connections that have not fetched yet hold at most
//!   [`MAX_ADDRESS_PROMISES`] promises of a file, and never more than half
//!   its chunks, however many connections it opens;
//! - nobody is starved: a connection that lacks chunks and gets none from
//!   anywhere (its chunk map does not grow) is offered nothing for at most
//!   [`STARVE_AFTER`]; then [`MIN_PROMISE`] of the chunks promised or just
//!   sent elsewhere, at random (a duplicate upload now and then, instead
//!   of a stalled download).
//!
//! Promises are counted in chunks of the file's chunk size: a folder of
//! small files, whose chunks are mostly shorter, is promised as many more
//! of them as carry the same bytes on average ([`Offers::for_manifest`]).
//! Counted in chunks alone, 16 promises of 4 KiB chunks gave a lone
//! downloader 64 KiB per `HAVE` round trip, and 10,000 files of 4 KiB took
//! three times as long to fetch from a fresh seeder as from one that had
//! sent them all before (which offers everything).
//!
//! Time is a parameter, so the rules are tested on a simulated clock.
//!
//! Invariants: `fresh` equals the number of chunks with `sent == 0`; each
//! asker's `promised` counts exactly the chunks promised to it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::chunkset::ChunkSet;
use crate::manifest::Manifest;
use crate::sync::LockExt;

/// How long after sending a chunk to one connection it is not offered to
/// others: a few `HAVE` intervals, for the chunk to be offered onwards.
pub const SENT_GRACE: Duration = Duration::from_secs(2);

/// How long a promise of a chunk to a connection stands if it is not taken.
pub const PROMISE_TTL: Duration = Duration::from_secs(10);

/// How long a connection keeps its promises without fetching anything of
/// the file: from its first `HAVE` to its first `GET` (a downloader asks
/// for a chunk one round trip after the reply), and then between two
/// `GET`s, while it keeps a pipeline going (a 512 KiB chunk takes 3 s at
/// 170 KiB/s, so only a downloader slower than that lets its promises go
/// between two chunks, and it is offered the unpromised rest meanwhile).
pub const FIRST_FETCH: Duration = Duration::from_secs(1);
pub const PROMISE_IDLE: Duration = Duration::from_secs(3);

/// Most chunks of one file promised to one IP address's connections that
/// have not fetched anything yet, over all of them: a downloader's two
/// connections to a seeder need two windows (2 x [`MAX_PROMISE`]). Never
/// more than half of the file's chunks either, so one address cannot take
/// every fresh chunk of a small file by asking alone. (Connections that
/// fetch are bounded by [`PROMISE_IDLE`]: they pay in upload taken, and a
/// crowd behind one address, a NAT or the loopback benchmarks, is served
/// as before.)
pub const MAX_ADDRESS_PROMISES: usize = 2 * MAX_PROMISE;

/// How long a connection may be offered nothing while it gets no chunk
/// from anywhere (its chunk map stays the same) before it is offered
/// others' chunks: a last resort, after the promises it waits for lapsed
/// ([`FIRST_FETCH`], [`PROMISE_IDLE`]). Long, because a crowd's slow
/// downloaders often go a second or two without a new chunk, and each
/// duplicate costs the seeder a chunk's upload: measured on the
/// four-downloader crowd of 12 chunks, 1 s took the seeder's upload from
/// 1.17-1.25 copies to 1.42-1.67; 5 s left 1.00-1.42.
pub const STARVE_AFTER: Duration = Duration::from_secs(5);

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
pub struct Offers {
    /// Boxed: most shares of a large collection are never asked for, and
    /// an empty slot costs 8 bytes, not the ledger's 136.
    ledger: Mutex<Option<Box<Ledger>>>,
    /// How many of this file's chunks count as one in the promise bounds
    /// (at least 1): its chunk size over its mean chunk length.
    scale: usize,
}

impl Default for Offers {
    fn default() -> Self {
        Offers::scaled(1)
    }
}

struct Ledger {
    /// Times each chunk was sent (saturating), and to whom last, when.
    sent: Vec<u16>,
    last_sent: Vec<Option<(u64, Instant)>>,
    fresh: u32,
    /// Which connection a fresh chunk is promised to, and since when.
    promised: Vec<Option<(u64, Instant)>>,
    /// Every connection that asked, until it ends.
    askers: HashMap<u64, Asker>,
    /// A xorshift state for random picks, so chunks spread across the swarm.
    rng: u64,
}

/// One asking connection.
struct Asker {
    ip: IpAddr,
    /// Since when it has been offered nothing, and how many chunks it had
    /// then: it is starving while that count stays the same.
    starving: Option<(Instant, u32)>,
    /// Whether it has fetched any chunk of this file, and whether it was
    /// ever promised one.
    fetched: bool,
    ever_promised: bool,
    /// Whether its last `HAVE` found no fresh chunk free to promise it,
    /// while it could have held some.
    wanting: bool,
    /// Chunks being sent to it now.
    sending: u32,
    /// Chunks promised to it now.
    promised: usize,
    /// Its first `HAVE` (its latest while `wanting` before any promise),
    /// or the start or end of its last chunk sent since: promises stand
    /// only while this is within [`FIRST_FETCH`] or [`PROMISE_IDLE`]
    /// ([`PROMISE_TTL`] while a chunk is being sent to it).
    earned: Instant,
}

impl Asker {
    fn earning(&self, now: Instant) -> bool {
        let grace = if self.fetched {
            PROMISE_IDLE
        } else {
            FIRST_FETCH
        };
        // A chunk on its way counts as fetching, for at most a promise's
        // life: a reader slow on purpose keeps no promise longer.
        let grace = match self.sending > 0 {
            true => grace.max(PROMISE_TTL),
            false => grace,
        };
        now.saturating_duration_since(self.earned) < grace
    }
}

impl Offers {
    /// Offers whose promise bounds count `scale` chunks as one.
    pub fn scaled(scale: usize) -> Self {
        Offers {
            ledger: Mutex::new(None),
            scale: scale.max(1),
        }
    }

    /// Offers of the file `manifest` describes, its promise bounds in
    /// bytes of its chunk size: a file's chunks are whole but its last, so
    /// the scale is 1; a folder of 4 KiB files has a scale of 128 (512 KiB
    /// chunks).
    pub fn for_manifest(manifest: &Manifest) -> Self {
        let nominal = u64::from(manifest.chunk_count()) * u64::from(manifest.chunk_size());
        let scale = nominal / manifest.size().max(1);
        Offers::scaled(usize::try_from(scale).unwrap_or(usize::MAX))
    }

    fn lock(&self, chunks: u32) -> MutexGuard<'_, Option<Box<Ledger>>> {
        // Every update keeps the ledger consistent before it unlocks.
        let mut guard = self.ledger.locked();
        if guard.is_none() {
            *guard = Some(Box::new(Ledger {
                sent: vec![0; chunks as usize],
                last_sent: vec![None; chunks as usize],
                fresh: chunks,
                promised: vec![None; chunks as usize],
                askers: HashMap::new(),
                rng: seed(),
            }));
        }
        guard
    }

    /// What to offer connection `session`, from `ip`, which has `theirs`,
    /// of a file of `theirs.len()` chunks.
    pub fn offer(&self, session: u64, ip: IpAddr, theirs: &ChunkSet, now: Instant) -> ChunkSet {
        let chunks = theirs.len();
        let mut guard = self.lock(chunks);
        let Some(l) = guard.as_mut() else {
            return ChunkSet::full(chunks);
        };
        l.expire(now);
        let asker = l.askers.entry(session).or_insert(Asker {
            ip,
            starving: None,
            fetched: false,
            ever_promised: false,
            wanting: false,
            sending: 0,
            promised: 0,
            earned: now,
        });
        if asker.wanting && !asker.ever_promised {
            // Refused for want of a free fresh chunk, not by a bound: it
            // had nothing to fetch, so no time lost fetching it.
            asker.earned = now;
        }
        let earning = asker.earning(now);
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
        let window = match earning {
            true => l.window(
                session,
                ip,
                free.len() + mine.count() as usize,
                chunks,
                self.scale,
            ),
            false => 0,
        };
        let wanting = window > 0 && mine.is_empty() && free.is_empty();
        while (mine.count() as usize) < window && !free.is_empty() {
            let pick = l.next_random() as usize % free.len();
            let i = free.swap_remove(pick);
            l.promise(i, session, now);
            mine.insert(i);
        }
        if let Some(a) = l.askers.get_mut(&session) {
            a.wanting = wanting;
        }
        if let Some(a) = l.askers.get_mut(&session).filter(|_| !mine.is_empty()) {
            a.starving = None;
            return mine;
        }
        l.rest(session, theirs, now)
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
        if let Some(s) = l.askers.get_mut(&session) {
            s.earned = now;
            s.fetched = true;
            s.sending += 1;
        }
    }

    /// A chunk [`sent`](Self::sent) to `session` is on its way, or its
    /// sending failed.
    pub fn delivered(&self, session: u64, now: Instant) {
        let mut guard = self.ledger.locked();
        let Some(l) = guard.as_mut() else { return };
        if let Some(s) = l.askers.get_mut(&session) {
            s.earned = now;
            s.sending = s.sending.saturating_sub(1);
        }
    }

    /// Connection `session` ended: its promises lapse, and so does the
    /// grace of what it was sent (its peer may have left with it).
    pub fn release(&self, session: u64) {
        let mut guard = self.ledger.locked();
        let Some(l) = guard.as_mut() else { return };
        l.askers.remove(&session);
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
    /// How many fresh chunks `session` (from `ip`) may hold, `available`
    /// being those it lacks that are free or its own already: a share of
    /// them among the connections holding promises, within the bounds of
    /// the module docs (each `scale` chunks counting as one), per
    /// connection and, until it fetches, per address.
    fn window(
        &self,
        session: u64,
        ip: IpAddr,
        available: usize,
        chunks: u32,
        scale: usize,
    ) -> usize {
        let holding = |s: &&Asker| s.promised > 0;
        let others = self
            .askers
            .iter()
            .filter(|(&id, s)| id != session && holding(s));
        let share = available
            .div_ceil(others.count() + 1)
            .clamp(
                MIN_PROMISE.saturating_mul(scale),
                MAX_PROMISE.saturating_mul(scale),
            )
            .min((chunks as usize).div_ceil(MIN_SHARES));
        if self.askers.get(&session).is_some_and(|a| a.fetched) {
            return share;
        }
        let (own, address): (usize, usize) = self
            .askers
            .iter()
            .filter(|(_, s)| s.ip == ip && !s.fetched)
            .fold((0, 0), |(own, all), (&id, s)| {
                let own = if id == session { s.promised } else { own };
                (own, all + s.promised)
            });
        let address_cap = MAX_ADDRESS_PROMISES
            .saturating_mul(scale)
            .min((chunks as usize).div_ceil(2));
        share.min(own + address_cap.saturating_sub(address))
    }

    /// What to offer `session` when no fresh chunk is promised to it:
    /// what it lacks and nobody else is about to offer (promised, or just
    /// sent, to another connection). If that is nothing, and has been while
    /// its own chunk map stayed the same for [`STARVE_AFTER`] (it gets
    /// nothing elsewhere either), a few of the others' chunks at random,
    /// not yet sent elsewhere if there are such.
    fn rest(&mut self, session: u64, theirs: &ChunkSet, now: Instant) -> ChunkSet {
        let chunks = theirs.len();
        let elsewhere = |p: Option<(u64, Instant)>, within: Duration| {
            p.is_some_and(|(s, at)| s != session && now.saturating_duration_since(at) < within)
        };
        // While some chunk has never been sent, nothing: a copy of one
        // already sent would take the seeder's upload from the fresh ones,
        // which then reach the swarm more slowly still (issue 22: past ten
        // downloaders the promises ran out, every connection without one
        // was offered old chunks, and the seeder sent 3.5 copies of a file
        // while the crowd waited for its last fresh chunks); and a fresh
        // chunk promised to nobody, offered to every such connection at
        // once, went out two or three times (issue 22 again, at N = 48:
        // 39 to 52 copies before the last fresh chunk in the slow runs).
        let fresh_left = self.fresh > 0;
        let rest = ChunkSet::from_fn(chunks, |i| {
            let c = i as usize;
            let coming = elsewhere(self.promised[c], PROMISE_TTL)
                || elsewhere(self.last_sent[c], SENT_GRACE);
            !theirs.contains(i) && !fresh_left && !coming
        });
        let Some(asker) = self.askers.get_mut(&session) else {
            return rest;
        };
        let has = theirs.count();
        let starved = match asker.starving {
            _ if !rest.is_empty() || theirs.is_complete() => {
                asker.starving = None;
                false
            }
            Some((since, had)) if had == has => {
                now.saturating_duration_since(since) >= STARVE_AFTER
            }
            _ => {
                asker.starving = Some((now, has));
                false
            }
        };
        if !starved {
            return rest;
        }
        let lacks = |i: &u32| !theirs.contains(*i);
        let mut pool: Vec<u32> = (0..chunks)
            .filter(lacks)
            .filter(|&i| !elsewhere(self.last_sent[i as usize], SENT_GRACE))
            .collect();
        if pool.is_empty() {
            pool = (0..chunks).filter(lacks).collect();
        }
        let mut some = ChunkSet::empty(chunks);
        while (some.count() as usize) < MIN_PROMISE && !pool.is_empty() {
            let pick = self.next_random() as usize % pool.len();
            some.insert(pool.swap_remove(pick));
        }
        some
    }

    fn promise(&mut self, index: u32, session: u64, now: Instant) {
        self.promised[index as usize] = Some((session, now));
        if let Some(s) = self.askers.get_mut(&session) {
            s.promised += 1;
            s.ever_promised = true;
        }
    }

    fn unpromise(&mut self, index: u32) {
        if let Some((s, _)) = self.promised[index as usize].take() {
            if let Some(s) = self.askers.get_mut(&s) {
                s.promised -= 1;
            }
        }
    }

    /// Drops promises past [`PROMISE_TTL`], and every promise of a
    /// connection that stopped earning them (see [`PROMISE_IDLE`]).
    fn expire(&mut self, now: Instant) {
        for i in 0..self.promised.len() {
            let Some((s, at)) = self.promised[i] else {
                continue;
            };
            let idle = self.askers.get(&s).is_none_or(|s| !s.earning(now));
            if idle || now.saturating_duration_since(at) > PROMISE_TTL {
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
mod tests;
