//! The fair-share rule behind the tracker's per-address and per-identity
//! caps, pure so that it can be tested on its own.
//!
//! A fixed cap per holder cannot both leave room for everybody and let one
//! holder use an empty tracker: ten holders of a tenth each fill it. So a
//! holder's cap is its *share* of an otherwise empty tracker, scaled by the
//! fraction the other holders left free. Alone, a holder gets its whole
//! share; `k` holders that all take what they can each end at
//! `share × cap / (cap + (k − 1) × share)`, which never fills the tracker,
//! and a newcomer still gets `share × free / cap`.

/// Whether a holder of `held` units may take one more of a resource of
/// `cap` units, `used` of them taken (its own included), when its share of
/// an otherwise empty resource is `share`. `Err` carries the most it may
/// hold now, for the refusal.
pub fn may_take(held: usize, share: usize, used: usize, cap: usize) -> Result<(), usize> {
    let allowed = allowed(held, share, used, cap);
    if held < allowed {
        Ok(())
    } else {
        Err(allowed)
    }
}

/// The most a holder of `held` may hold now (see [`may_take`]): its share
/// times the fraction of `cap` the others left free, rounded up.
fn allowed(held: usize, share: usize, used: usize, cap: usize) -> usize {
    if cap == 0 {
        return 0;
    }
    let others = used.saturating_sub(held);
    let left = cap.saturating_sub(others) as u128;
    let scaled = (share as u128 * left).div_ceil(cap as u128);
    // Never more than what is left, nor than the share.
    scaled.min(left).min(share as u128) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alone_a_holder_gets_its_whole_share() {
        assert_eq!(may_take(0, 20, 0, 100), Ok(()));
        assert_eq!(may_take(19, 20, 19, 100), Ok(()));
        assert_eq!(may_take(20, 20, 20, 100), Err(20));
    }

    #[test]
    fn the_share_shrinks_as_others_fill_the_resource() {
        // Others hold half: the share is halved.
        assert_eq!(may_take(9, 20, 59, 100), Ok(()));
        assert_eq!(may_take(10, 20, 60, 100), Err(10));
        // Others hold it all: nothing more, not even a first unit.
        assert_eq!(may_take(0, 20, 100, 100), Err(0));
    }

    /// Holders that each take all they may never fill the resource, and a
    /// newcomer still gets a unit.
    #[test]
    fn greedy_holders_leave_room_for_a_newcomer() {
        let (cap, share) = (100_000, 20_000);
        for k in [2, 10, 100, 1000] {
            let mut held = vec![0usize; k];
            let mut used = 0;
            loop {
                let mut took = false;
                for h in held.iter_mut() {
                    if may_take(*h, share, used, cap).is_ok() {
                        *h += 1;
                        used += 1;
                        took = true;
                    }
                }
                if !took {
                    break;
                }
            }
            assert!(used < cap, "{k} holders filled it");
            assert_eq!(may_take(0, share, used, cap), Ok(()), "{k} holders");
        }
    }

    #[test]
    fn no_overflow_at_the_extremes() {
        assert_eq!(may_take(0, usize::MAX, 0, usize::MAX), Ok(()));
        assert_eq!(may_take(0, 1, 0, 0), Err(0));
    }
}
