//! A worker's decisions on one connection, on a clock the caller passes in:
//! how many `GET`s may be on the way (one at first, one more per chunk
//! received, up to [`PIPELINE_DEPTH`]), when the next `HAVE` is due (see
//! [`Asking`]), and, with nothing to ask and nothing on the way, whether
//! to leave the peer (idle for [`IDLE_SWITCH`] while another peer waits
//! for a worker) or how long to wait. Only a chunk counts as something,
//! not the peer's periodic `HAVE` reply.

use std::time::{Duration, Instant};

use super::asking::Asking;
use crate::bounds::{HAVE_INTERVAL, IDLE_SWITCH, PIPELINE_DEPTH};

/// The shortest wait of an idle worker, so that it never spins.
const MIN_WAIT: Duration = Duration::from_millis(10);

/// What an idle worker does.
#[derive(Debug, PartialEq, Eq)]
pub enum Idle {
    /// Leave this peer for one that has no worker.
    Leave,
    /// Wait this long for a change (a chunk freed, a `HAVE` due).
    Wait(Duration),
}

/// One connection's pipeline.
pub struct Pipeline {
    depth: usize,
    asking: Asking,
    idle_since: Option<Instant>,
}

impl Pipeline {
    /// A connection whose first `HAVE` (if any) went out at `now`.
    pub fn new(now: Instant) -> Self {
        Pipeline {
            depth: 1,
            asking: Asking::new(now),
            idle_since: None,
        }
    }

    /// How many `GET`s may be on the way.
    pub fn depth(&self) -> usize {
        self.depth
    }

    pub fn get_sent(&mut self) {
        self.asking.get_sent();
    }

    /// A chunk came back (verified, or an endgame duplicate): one more may
    /// be on the way, and the peer is not idle.
    pub fn chunk_received(&mut self) {
        self.depth = (self.depth + 1).min(PIPELINE_DEPTH);
        self.idle_since = None;
    }

    /// When the next `HAVE` is due; `low` as in [`Asking::due`].
    pub fn have_due(&self, low: bool) -> Instant {
        self.asking.due(low, self.depth)
    }

    pub fn have_sent(&mut self, now: Instant) {
        self.asking.have_sent(now);
    }

    /// A `HAVE` answer left `free` offered chunks that are needed and free.
    pub fn have_answered(&mut self, free: u32) {
        self.asking.answered(free);
    }

    /// Nothing to ask the peer for and nothing on the way, at `now`. Leaves
    /// once idle for [`IDLE_SWITCH`] if `others_waiting` (asked only then);
    /// else waits until `have_due` (none, for a version 1 peer: a
    /// [`HAVE_INTERVAL`]), at least [`MIN_WAIT`].
    pub fn idle(
        &mut self,
        now: Instant,
        have_due: Option<Instant>,
        others_waiting: impl FnOnce() -> bool,
    ) -> Idle {
        let since = *self.idle_since.get_or_insert(now);
        if now.duration_since(since) >= IDLE_SWITCH && others_waiting() {
            return Idle::Leave;
        }
        let wait = have_due.map_or(HAVE_INTERVAL, |due| due.saturating_duration_since(now));
        Idle::Wait(wait.max(MIN_WAIT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pipeline_deepens_by_one_per_chunk_up_to_its_bound() {
        let mut p = Pipeline::new(Instant::now());
        assert_eq!(p.depth(), 1);
        for want in 2..=PIPELINE_DEPTH {
            p.chunk_received();
            assert_eq!(p.depth(), want);
        }
        p.chunk_received();
        assert_eq!(p.depth(), PIPELINE_DEPTH);
    }

    #[test]
    fn an_idle_worker_leaves_only_after_the_switch_time_and_only_for_a_waiting_peer() {
        let t0 = Instant::now();
        let mut p = Pipeline::new(t0);
        let due = t0 + HAVE_INTERVAL;
        assert_eq!(p.idle(t0, Some(due), || true), Idle::Wait(HAVE_INTERVAL));
        let almost = t0 + IDLE_SWITCH - Duration::from_millis(1);
        assert!(matches!(p.idle(almost, Some(due), || true), Idle::Wait(_)));
        let t1 = t0 + IDLE_SWITCH;
        assert_eq!(p.idle(t1, Some(due), || false), Idle::Wait(MIN_WAIT));
        assert_eq!(p.idle(t1, Some(due), || true), Idle::Leave);
    }

    #[test]
    fn a_chunk_ends_idleness_but_a_have_answer_does_not() {
        let t0 = Instant::now();
        let mut p = Pipeline::new(t0);
        p.idle(t0, None, || true);
        p.have_answered(3);
        let t1 = t0 + IDLE_SWITCH;
        assert_eq!(p.idle(t1, None, || true), Idle::Leave);
        p.chunk_received();
        assert_eq!(p.idle(t1, None, || true), Idle::Wait(HAVE_INTERVAL));
        let t2 = t1 + IDLE_SWITCH;
        assert_eq!(p.idle(t2, None, || true), Idle::Leave);
    }

    #[test]
    fn others_are_not_asked_about_before_the_switch_time() {
        let t0 = Instant::now();
        let mut p = Pipeline::new(t0);
        let asked = std::cell::Cell::new(false);
        p.idle(t0 + IDLE_SWITCH / 2, None, || {
            asked.set(true);
            true
        });
        assert!(!asked.get());
    }
}
