//! When a download worker next asks its peer what it offers (`HAVE`):
//! every [`HAVE_INTERVAL`]; and a complete peer, which promises fresh
//! chunks a few at a time, before its promise runs out. The question goes
//! pipelined behind the `GET`s on the way, so that its answer arrives
//! before the pipeline is empty. Waiting [`HAVE_MIN_GAP`] each time there
//! throttled a lone downloader to 16 chunks per 20 ms, so the gap applies
//! only while the peer's answers bring nothing new, or when less than a
//! pipeline's worth of `GET`s went out since the last question.

use std::time::Instant;

use crate::bounds::{HAVE_INTERVAL, HAVE_MIN_GAP};

/// One connection's record of its `HAVE`s.
pub struct Asking {
    sent: Instant,
    /// The last answer offered nothing this download could take.
    dry: bool,
    /// `GET`s sent since the last `HAVE`.
    gets: usize,
}

impl Asking {
    /// A `HAVE` has just been sent (the one before the first `GET`).
    pub fn new(now: Instant) -> Self {
        Asking {
            sent: now,
            dry: false,
            gets: 0,
        }
    }

    pub fn get_sent(&mut self) {
        self.gets += 1;
    }

    pub fn have_sent(&mut self, now: Instant) {
        self.sent = now;
        self.gets = 0;
    }

    /// The answer left `free` offered chunks that are needed and free.
    pub fn answered(&mut self, free: u32) {
        self.dry = free == 0;
    }

    /// When the next `HAVE` is due. `low`: the peer is complete and offers
    /// fewer free chunks than the pipeline's `depth` (or none at all).
    pub fn due(&self, low: bool, depth: usize) -> Instant {
        match (low, !self.dry && self.gets >= depth) {
            (false, _) => self.sent + HAVE_INTERVAL,
            (true, false) => self.sent + HAVE_MIN_GAP,
            (true, true) => self.sent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_with_enough_on_offer_is_asked_every_interval() {
        let t0 = Instant::now();
        let mut asking = Asking::new(t0);
        for _ in 0..10 {
            asking.get_sent();
        }
        assert_eq!(asking.due(false, 4), t0 + HAVE_INTERVAL);
    }

    #[test]
    fn a_seeder_running_low_is_asked_at_once_while_its_answers_bring_chunks() {
        let t0 = Instant::now();
        let mut asking = Asking::new(t0);
        asking.answered(16);
        for _ in 0..3 {
            asking.get_sent();
        }
        assert_eq!(asking.due(true, 4), t0 + HAVE_MIN_GAP, "not a pipeline yet");
        asking.get_sent();
        assert_eq!(asking.due(true, 4), t0, "a pipeline's worth went out");
        let t1 = t0 + HAVE_MIN_GAP;
        asking.have_sent(t1);
        assert_eq!(asking.due(true, 4), t1 + HAVE_MIN_GAP, "no GET since");
    }

    #[test]
    fn a_seeder_whose_answer_brought_nothing_is_asked_after_the_gap() {
        let t0 = Instant::now();
        let mut asking = Asking::new(t0);
        asking.answered(0);
        for _ in 0..8 {
            asking.get_sent();
        }
        assert_eq!(asking.due(true, 4), t0 + HAVE_MIN_GAP);
        asking.answered(2);
        assert_eq!(asking.due(true, 4), t0);
    }
}
