//! Which chunk a worker asks its peer for: the rarest free one it offers,
//! or in endgame one in flight elsewhere (see the parent module's docs).

use std::time::Instant;

use super::State;
use crate::bounds::{ENDGAME_AFTER, HOLD_PATIENCE, MAX_HOLDERS, RANDOM_FIRST};

/// The rarest free chunk `peer` offers (random among equals, and at random
/// altogether for the first [`RANDOM_FIRST`] chunks). From a complete peer,
/// not a chunk that a connected partial peer offers.
pub(super) fn pick_free(s: &mut State, peer: usize) -> Option<u32> {
    let n = s.done.len();
    if n == 0 {
        return None;
    }
    let random_only = s.done.count() < RANDOM_FIRST;
    let from_seeder = s.peers[peer].complete;
    let start = next_random(&mut s.rng) % u64::from(n);
    let mut best: Option<(u32, u16)> = None;
    for k in 0..n {
        let i = ((start + u64::from(k)) % u64::from(n)) as u32;
        let wanted = !s.done.contains(i) && !s.holders.contains_key(&i);
        if !wanted || !s.peers[peer].offers(i) {
            continue;
        }
        if from_seeder && s.from_partial[i as usize] > 0 {
            continue; // a connected partial peer will fetch it
        }
        let rarity = s.available[i as usize];
        if random_only || rarity <= 1 {
            return Some(i); // nothing is rarer
        }
        if best.is_none_or(|(_, b)| rarity < b) {
            best = Some((i, rarity));
        }
    }
    best.map(|(i, _)| i)
}

/// How many chunks `peer` offers that are needed and free, counting no
/// further than `enough`.
pub(super) fn free_offered(s: &State, peer: usize, enough: u32) -> u32 {
    let free = |i: &u32| !s.done.contains(*i) && !s.holders.contains_key(i);
    match &s.peers[peer].offers {
        Some(offers) => offers.iter().filter(free).take(enough as usize).count() as u32,
        None => (0..s.done.len()).filter(free).take(enough as usize).count() as u32,
    }
}

/// Endgame, when `peer` offers no free chunk: a chunk it offers that has
/// been in flight on other peers for at least [`ENDGAME_AFTER`], the
/// fewest holders first. (Sooner, a duplicate is more likely waste than
/// rescue.) Chunks free elsewhere do not prevent it: a seeder offers a
/// connection only the fresh chunks it promised it, and when those are
/// stalled on a slow peer whose connections are all busy, the chunks only
/// that peer offers stay free too.
pub(super) fn pick_endgame(s: &State, peer: usize, now: Instant) -> Option<u32> {
    // Holders that have had the chunk longer than HOLD_PATIENCE are not
    // counted against MAX_HOLDERS: two slow peers cannot lock out a third.
    let patient = |h: &[(usize, Instant)]| {
        h.iter()
            .filter(|(_, since)| now - *since < HOLD_PATIENCE)
            .count()
    };
    s.holders
        .iter()
        .filter(|(c, h)| {
            patient(h) < MAX_HOLDERS
                && h.iter()
                    .all(|&(p, since)| p != peer && now - since >= ENDGAME_AFTER)
                && s.peers[peer].offers(**c)
        })
        .min_by_key(|(c, h)| (patient(h), **c))
        .map(|(c, _)| *c)
}

fn next_random(rng: &mut u64) -> u64 {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    *rng
}
