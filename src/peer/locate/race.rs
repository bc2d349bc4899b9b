//! Reaching a ticket's sender by the first of its ways, in the style of
//! Happy Eyeballs (RFC 8305): the ways start in stages (every direct
//! address at once, then the hole punch, then the relay), each stage a
//! stagger after the one before, or at once when every way started so far
//! has failed. The first way to complete a TLS handshake with the pinned
//! id wins; the others are stopped (a relayed session that completes after
//! the winner is closed like any loser's connection). The first busy
//! answer is the fallback if no handshake completes within a stagger of it.
//!
//! [`Schedule`] decides which stage starts when, on a clock passed in;
//! [`first`] is the thread-and-channel part around it. Invariants: a stage
//! starts at most once, and none after the deadline or after a way
//! answered busy (the peer, or the tracker's introductions, are full for
//! now: a later way would reach the same full server the long way round,
//! and the relay is for peers no punch reaches, not for those that must
//! wait their turn); the race ends by its one deadline, `each` after the
//! latest its last stage can start, or a stagger after the first busy
//! answer.

use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::net::stop::StopSignal;
use crate::peer::dial::{Dialer, PeerAddr, Way};

/// When each of a peer's ways starts, given what has become of those
/// started.
#[derive(Debug)]
pub(super) struct Schedule {
    /// The ways by stage, in the order they start; none empty.
    stages: Vec<Vec<Way>>,
    stagger: Duration,
    /// How many stages have started.
    started: usize,
    /// When the latest stage started.
    last_start: Option<Instant>,
    /// Ways started that have not answered.
    running: usize,
    /// When the first way answered busy, plus a stagger: nothing more
    /// starts, and the race ends then (a way still running that will
    /// answer has had as long as a stage gets).
    busy_until: Option<Instant>,
    deadline: Instant,
}

impl Schedule {
    /// `ways` in stages (the direct ones together, then each punch, then
    /// each relay, in their order), from `now`: each way gets at least
    /// `each` from the latest its stage can start.
    pub(super) fn new(ways: &[Way], now: Instant, stagger: Duration, each: Duration) -> Schedule {
        let direct: Vec<Way> = ways
            .iter()
            .copied()
            .filter(|w| matches!(w, Way::Direct(_)))
            .collect();
        let mut stages: Vec<Vec<Way>> = vec![direct];
        stages.extend(
            ways.iter()
                .filter(|w| matches!(w, Way::Punched(_)))
                .chain(ways.iter().filter(|w| matches!(w, Way::Relayed(_))))
                .map(|&w| vec![w]),
        );
        stages.retain(|s| !s.is_empty());
        let later = u32::try_from(stages.len().saturating_sub(1)).unwrap_or(u32::MAX);
        Schedule {
            deadline: now + each + stagger.saturating_mul(later),
            stages,
            stagger,
            started: 0,
            last_start: None,
            running: 0,
            busy_until: None,
        }
    }

    /// The stage to start at `now`, if one is due (the first at once, each
    /// next `stagger` after the one before, or at once when every way
    /// started so far has failed); its ways count as running from here.
    pub(super) fn due(&mut self, now: Instant) -> Vec<Way> {
        let Some(stage) = self.stages.get(self.started) else {
            return Vec::new();
        };
        let waited = self
            .last_start
            .is_none_or(|at| self.running == 0 || now >= at + self.stagger);
        if self.busy_until.is_some() || now >= self.deadline || !waited {
            return Vec::new();
        }
        self.started += 1;
        self.last_start = Some(now);
        self.running += stage.len();
        stage.clone()
    }

    /// A way started has failed.
    pub(super) fn failed(&mut self) {
        self.running = self.running.saturating_sub(1);
    }

    /// A way started has answered busy at `now`.
    pub(super) fn busy(&mut self, now: Instant) {
        self.failed();
        let until = (now + self.stagger).min(self.deadline);
        self.busy_until = self.busy_until.or(Some(until));
    }

    /// Whether the race is over at `now`: the deadline has passed, or a
    /// stagger since the first busy answer, or nothing runs and nothing
    /// more will start.
    pub(super) fn over(&self, now: Instant) -> bool {
        let more = self.busy_until.is_none() && self.started < self.stages.len();
        let busy_over = self.busy_until.is_some_and(|until| now >= until);
        now >= self.deadline || busy_over || (self.running == 0 && !more)
    }

    /// When to look again if no way answers: the next stage's start, or
    /// the end of the wait after a busy answer, or the deadline.
    pub(super) fn wake(&self) -> Instant {
        match (self.busy_until, self.last_start) {
            (Some(until), _) => until,
            (None, Some(at)) if self.started < self.stages.len() => {
                (at + self.stagger).min(self.deadline)
            }
            _ => self.deadline,
        }
    }

    pub(super) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Ways started that have not answered.
    pub(super) fn running(&self) -> usize {
        self.running
    }

    /// How many passes of a loop that starts what is due and waits for one
    /// answer or the next wake can make before the race is over.
    fn passes(&self) -> usize {
        2 * self.stages.len() + self.stages.iter().map(Vec::len).sum::<usize>() + 2
    }
}

/// `peer` by the first of its ways to complete a TLS handshake through
/// `dialer`, started as [`Schedule`] says (`stagger` apart, each way
/// given until the deadline), or else the first to answer busy (at its
/// connection caps, or the tracker at its punch caps: full for now, so the
/// download waits for it within its patience). Otherwise how each way
/// failed.
pub fn first(
    peer: &PeerAddr,
    dialer: &Arc<dyn Dialer>,
    stagger: Duration,
    each: Duration,
) -> Result<PeerAddr, Vec<String>> {
    let began = Instant::now();
    let mut plan = Schedule::new(peer.ways(), began, stagger, each);
    // Stopped when the race ends, so the losers' connects, handshakes and
    // tracker calls end with it.
    let stop = StopSignal::new();
    let _losers = Stopping(Arc::clone(&stop));
    let (tx, rx) = mpsc::channel::<Answer>();
    let (mut busy, mut failed) = (None, Vec::new());
    for _ in 0..plan.passes() {
        let now = Instant::now();
        for way in plan.due(now) {
            let left = plan.deadline().saturating_duration_since(now);
            if let Err(e) = start(peer.only(way), dialer, left, &stop, &tx) {
                plan.failed();
                failed.push(listed(way, &e.to_string()));
            }
        }
        if plan.over(now) {
            break;
        }
        match rx.recv_timeout(plan.wake().saturating_duration_since(now)) {
            Ok((way, Ok(()))) => {
                log::info!("{peer}: reached by {} in {:?}", shown(way), began.elapsed());
                return Ok(peer.led_by(way));
            }
            Ok((way, Err(Error::Busy))) => {
                log::info!("{}: busy for now; will ask again", shown(way));
                plan.busy(Instant::now());
                busy = busy.or(Some(peer.led_by(way)));
            }
            Ok((way, Err(e))) => {
                log::info!("{}: {e}", shown(way));
                plan.failed();
                failed.push(listed(way, &why_unreached(&e)));
            }
            Err(_) => {}
        }
    }
    if plan.running() > 0 && busy.is_none() {
        failed.push("the others did not answer in time".into());
    }
    busy.ok_or(failed)
}

/// An answer from a way: its handshake done (the connection then closed)
/// or its error.
type Answer = (Way, Result<(), Error>);

/// Dials `one` (a peer by one way) on a thread of its own for at most
/// `left`; its answer comes on `tx`.
fn start(
    one: PeerAddr,
    dialer: &Arc<dyn Dialer>,
    left: Duration,
    stop: &Arc<StopSignal>,
    tx: &mpsc::Sender<Answer>,
) -> std::io::Result<()> {
    let (tx, dialer, stop) = (tx.clone(), Arc::clone(dialer), Arc::clone(stop));
    let way = one.ways()[0];
    thread::Builder::new()
        .name("reach".into())
        .spawn(move || {
            let reached = dialer.dial(&one, left, &stop);
            let _ = tx.send((way, reached.map(drop)));
        })
        .map(drop)
}

/// Stops its signal when dropped.
struct Stopping(Arc<StopSignal>);

impl Drop for Stopping {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// A way, in logs.
fn shown(way: Way) -> String {
    match way {
        Way::Direct(addr) => addr.to_string(),
        Way::Punched(_) => "a hole punch through the tracker".into(),
        Way::Relayed(_) => "the tracker's relay".into(),
    }
}

/// A way that failed and why, in the line that lists them.
fn listed(way: Way, why: &str) -> String {
    match way {
        Way::Direct(addr) => format!("{addr} {why}"),
        other => format!("{}: {why}", shown(other)),
    }
}

/// A dial's failure in a word or two, for the line that lists them.
fn why_unreached(e: &Error) -> String {
    use std::io::ErrorKind::*;
    match e {
        Error::Io(io) => match io.kind() {
            ConnectionRefused => "refused".into(),
            TimedOut | WouldBlock => "timed out".into(),
            HostUnreachable | NetworkUnreachable | AddrNotAvailable => "no route".into(),
            _ => io.to_string(),
        },
        Error::Timeout(_) => "timed out".into(),
        Error::WrongIdentity(_) => "answered with another identity".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
