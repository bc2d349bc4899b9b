//! The schedule on a clock passed in, and the race through a fake dialer
//! whose ways never answer, fail, answer busy, or reach a real chunk
//! server in-process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::*;
use crate::error::Result;
use crate::net::tls::Tls;
use crate::peer::dial::{Dialed, DirectDialer};
use crate::peer::library::Library;
use crate::peer::server::spawn_for_test;
use crate::server::ServerHandle;
use crate::sync::LockExt;

const MS: Duration = Duration::from_millis(1);

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], port))
}

/// Two direct addresses, a punch and a relay: a ticket with a tracker.
fn ticket() -> Vec<Way> {
    vec![
        Way::Direct(addr(1)),
        Way::Direct(addr(2)),
        Way::Punched(addr(1)),
        Way::Relayed(addr(1)),
    ]
}

#[test]
fn stages_start_a_stagger_apart_while_nothing_answers() {
    let t0 = Instant::now();
    let mut plan = Schedule::new(&ticket(), t0, 250 * MS, 5000 * MS);
    assert_eq!(plan.deadline(), t0 + 5500 * MS, "the last stage gets 5 s");
    assert_eq!(plan.due(t0), [Way::Direct(addr(1)), Way::Direct(addr(2))]);
    assert_eq!(plan.due(t0), [], "a stage starts once");
    assert_eq!(plan.wake(), t0 + 250 * MS);
    assert_eq!(plan.due(t0 + 249 * MS), []);
    assert_eq!(plan.due(t0 + 250 * MS), [Way::Punched(addr(1))]);
    // The relay's stagger counts from the punch's start.
    assert_eq!(plan.wake(), t0 + 500 * MS);
    assert_eq!(plan.due(t0 + 499 * MS), []);
    assert_eq!(plan.due(t0 + 500 * MS), [Way::Relayed(addr(1))]);
    assert_eq!(plan.due(t0 + 5000 * MS), [], "nothing left");
    assert_eq!(plan.wake(), plan.deadline());
    assert_eq!(plan.running(), 4);
    assert!(!plan.over(t0 + 5499 * MS));
    assert!(plan.over(t0 + 5500 * MS));
}

#[test]
fn when_every_way_started_has_failed_the_next_starts_at_once() {
    let t0 = Instant::now();
    let mut plan = Schedule::new(&ticket(), t0, 250 * MS, 5000 * MS);
    assert_eq!(plan.due(t0).len(), 2);
    plan.failed();
    assert_eq!(plan.due(t0 + 10 * MS), [], "one direct way still runs");
    plan.failed();
    assert_eq!(plan.due(t0 + 10 * MS), [Way::Punched(addr(1))]);
    plan.failed();
    assert_eq!(plan.due(t0 + 11 * MS), [Way::Relayed(addr(1))]);
    assert!(!plan.over(t0 + 11 * MS));
    plan.failed();
    assert!(plan.over(t0 + 12 * MS), "all failed, none left");
}

#[test]
fn a_busy_answer_starts_nothing_more() {
    let t0 = Instant::now();
    let mut plan = Schedule::new(&ticket(), t0, 250 * MS, 5000 * MS);
    assert_eq!(plan.due(t0).len(), 2);
    plan.busy(t0 + 100 * MS);
    assert_eq!(plan.due(t0 + 300 * MS), [], "no punch to a full peer");
    // The other address, silent (a NAT drops it), gets a stagger more,
    // not the whole deadline.
    assert_eq!(plan.wake(), t0 + 350 * MS);
    assert!(!plan.over(t0 + 349 * MS), "the other address may still win");
    assert!(plan.over(t0 + 350 * MS));
    plan.busy(t0 + 200 * MS);
    assert_eq!(plan.wake(), t0 + 350 * MS, "the first busy answer counts");
    // Or ends as soon as nothing runs.
    let mut plan = Schedule::new(&ticket(), t0, 250 * MS, 5000 * MS);
    assert_eq!(plan.due(t0).len(), 2);
    plan.busy(t0 + 10 * MS);
    plan.failed();
    assert!(plan.over(t0 + 11 * MS));
}

#[test]
fn nothing_starts_after_the_deadline_and_a_lone_stage_gets_each() {
    let t0 = Instant::now();
    let direct = [Way::Direct(addr(1))];
    let plan = Schedule::new(&direct, t0, 250 * MS, 5000 * MS);
    assert_eq!(plan.deadline(), t0 + 5000 * MS);
    let mut late = Schedule::new(&ticket(), t0, 250 * MS, 100 * MS);
    assert_eq!(late.due(t0).len(), 2);
    assert_eq!(late.due(t0 + 600 * MS), [], "past the deadline");
    assert!(late.over(t0 + 600 * MS));
}

/// What a way of the fake dialer does.
#[derive(Clone, Copy)]
enum Answer {
    /// Nothing until stopped.
    Never,
    Refuse,
    Busy,
    /// A TLS handshake with the real chunk server.
    Reach,
}

/// A dialer whose ways answer as told, noting when each started and how
/// many silent ones were stopped.
struct Fake {
    answers: HashMap<Way, Answer>,
    real: DirectDialer,
    server: PeerAddr,
    started: Mutex<Vec<(Way, Instant)>>,
    stopped: AtomicUsize,
    _server: ServerHandle,
}

impl Fake {
    fn new(answers: &[(Way, Answer)]) -> Arc<Fake> {
        let (handle, tls) = spawn_for_test(Arc::new(Library::default()));
        Arc::new(Fake {
            answers: answers.iter().copied().collect(),
            real: DirectDialer::new(Tls::ephemeral()),
            server: PeerAddr::direct(handle.local_addr(), Some(tls.id())),
            started: Mutex::default(),
            stopped: AtomicUsize::new(0),
            _server: handle,
        })
    }

    /// The ways started, in order, with when.
    fn started(&self) -> Vec<(Way, Instant)> {
        self.started.locked().clone()
    }

    /// The peer whose ways these are, pinned to the server's id.
    fn peer(&self) -> PeerAddr {
        let mut ways: Vec<Way> = self.answers.keys().copied().collect();
        ways.sort_by_key(|w| (!matches!(w, Way::Direct(_)), w.addr()));
        PeerAddr::with_ways(self.server.id, ways).expect("ways")
    }
}

impl Dialer for Fake {
    fn dial(&self, to: &PeerAddr, timeout: Duration, stop: &Arc<StopSignal>) -> Result<Dialed> {
        let way = to.ways()[0];
        self.started.locked().push((way, Instant::now()));
        match self.answers.get(&way).copied().unwrap_or(Answer::Refuse) {
            // Past its own timeout too (a real dial's connect and
            // handshake each get it): only the race's stop ends it.
            Answer::Never => {
                if stop.wait_timeout(timeout + Duration::from_secs(60)) {
                    self.stopped.fetch_add(1, Ordering::SeqCst);
                }
                Err(Error::Timeout("never"))
            }
            Answer::Refuse => {
                Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into())
            }
            Answer::Busy => Err(Error::Busy),
            Answer::Reach => self.real.dial(&self.server, timeout, stop),
        }
    }
}

fn race(fake: &Arc<Fake>, stagger: Duration, each: Duration) -> Result<PeerAddr, Vec<String>> {
    let dialer: Arc<dyn Dialer> = Arc::clone(fake) as Arc<dyn Dialer>;
    first(&fake.peer(), &dialer, stagger, each)
}

/// A direct SYN a NAT drops delays the punch by the stagger alone (not
/// the 3 s it once did), the punch wins, the relay never starts, and the
/// silent way is stopped.
#[test]
fn a_silent_way_delays_the_next_by_the_stagger_alone() {
    let fake = Fake::new(&[
        (Way::Direct(addr(1)), Answer::Never),
        (Way::Punched(addr(1)), Answer::Reach),
        (Way::Relayed(addr(1)), Answer::Never),
    ]);
    let stagger = 300 * MS;
    let began = Instant::now();
    let got = race(&fake, stagger, Duration::from_secs(20)).expect("reached");
    // The winner first, the relay after it for a later connection.
    assert_eq!(got.ways(), [Way::Punched(addr(1)), Way::Relayed(addr(1))]);
    assert_eq!(got.id, fake.server.id);
    let started = fake.started();
    let ways: Vec<Way> = started.iter().map(|s| s.0).collect();
    assert_eq!(ways, [Way::Direct(addr(1)), Way::Punched(addr(1))]);
    let (direct, punch) = (started[0].1 - began, started[1].1 - began);
    assert!(punch >= stagger, "the punch started after {punch:?}");
    // Generous for a loaded machine; the old wait was 3 s.
    assert!(
        punch < direct + stagger + 1000 * MS,
        "{direct:?}, then {punch:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while fake.stopped.load(Ordering::SeqCst) < 1 && Instant::now() < deadline {
        thread::sleep(10 * MS);
    }
    assert_eq!(fake.stopped.load(Ordering::SeqCst), 1, "the loser runs on");
}

/// With a stagger far longer than the test may take, failures start each
/// next stage at once: refused addresses, a refused punch, then the relay.
#[test]
fn a_failed_way_starts_the_next_at_once() {
    let fake = Fake::new(&[
        (Way::Direct(addr(1)), Answer::Refuse),
        (Way::Direct(addr(2)), Answer::Refuse),
        (Way::Punched(addr(1)), Answer::Refuse),
        (Way::Relayed(addr(1)), Answer::Reach),
    ]);
    let began = Instant::now();
    let got = race(&fake, Duration::from_secs(60), Duration::from_secs(60)).expect("reached");
    assert_eq!(got.ways(), [Way::Relayed(addr(1)), Way::Punched(addr(1))]);
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(fake.started().len(), 4);
}

/// A busy answer is kept while another way may yet complete a handshake
/// (within a stagger), and nothing more starts after it.
#[test]
fn a_handshake_beats_busy_and_busy_beats_nothing() {
    let fake = Fake::new(&[
        (Way::Direct(addr(1)), Answer::Busy),
        (Way::Direct(addr(2)), Answer::Reach),
        (Way::Punched(addr(1)), Answer::Reach),
    ]);
    let got = race(&fake, Duration::from_secs(60), Duration::from_secs(60)).expect("reached");
    assert_eq!(got.ways(), [Way::Direct(addr(2)), Way::Punched(addr(1))]);

    let fake = Fake::new(&[
        (Way::Direct(addr(1)), Answer::Busy),
        (Way::Direct(addr(2)), Answer::Refuse),
        (Way::Punched(addr(1)), Answer::Reach),
    ]);
    let began = Instant::now();
    let got = race(&fake, Duration::from_secs(60), Duration::from_secs(60)).expect("busy");
    assert_eq!(got.ways(), [Way::Direct(addr(1)), Way::Punched(addr(1))]);
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(fake.started().len(), 2, "no punch to a busy peer");

    // An address a NAT drops does not hold a busy answer back for long.
    let fake = Fake::new(&[
        (Way::Direct(addr(1)), Answer::Busy),
        (Way::Direct(addr(2)), Answer::Never),
        (Way::Punched(addr(1)), Answer::Reach),
    ]);
    let began = Instant::now();
    let got = race(&fake, 200 * MS, Duration::from_secs(60)).expect("busy");
    assert_eq!(got.ways(), [Way::Direct(addr(1)), Way::Punched(addr(1))]);
    let took = began.elapsed();
    assert!(took >= 200 * MS && took < 5000 * MS, "{took:?}");
    assert_eq!(fake.started().len(), 2, "no punch to a busy peer");
}

/// Nothing answers: the race ends at its one deadline, says how each way
/// failed and that the others did not answer, and stops them.
#[test]
fn silence_ends_at_the_deadline() {
    let fake = Fake::new(&[
        (Way::Direct(addr(1)), Answer::Refuse),
        (Way::Direct(addr(2)), Answer::Never),
        (Way::Punched(addr(1)), Answer::Never),
        (Way::Relayed(addr(1)), Answer::Refuse),
    ]);
    let began = Instant::now();
    let failed = race(&fake, 100 * MS, 400 * MS).expect_err("nobody");
    let took = began.elapsed();
    assert!(took >= 600 * MS && took < 3000 * MS, "{took:?}");
    assert_eq!(
        failed,
        [
            "192.0.2.1:1 refused",
            "the tracker's relay: refused",
            "the others did not answer in time"
        ]
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while fake.stopped.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
        thread::sleep(10 * MS);
    }
    assert_eq!(fake.stopped.load(Ordering::SeqCst), 2);
}
