//! A peer leaving by every route (`quit`, end of input, SIGINT, SIGTERM)
//! unregisters before it exits, and a `BYE` stays final even when an
//! announce round is in flight.

use std::time::{Duration, Instant};

use crate::support::fakes::StubTracker;
use crate::support::harness::{figure, TestDir, COMMAND, LEAVE};
use crate::support::programs::{Peer, Tracker};
use crate::support::raw::tracker_lists;

/// How a peer is told to leave.
#[derive(Clone, Copy, Debug)]
enum Leave {
    Quit,
    EndOfInput,
    Signal(&'static str),
}

/// A REPL peer sharing `leave.bin` is told to leave: it exits successfully
/// within [`LEAVE`], and the tracker, asked right after, lists only the
/// bystander's `stay.bin`: the unregistration is done before the exit and
/// touches no other peer.
///
/// `share` registers at once; the leaver's 60 s announce interval keeps its
/// announcer idle for the whole test. A round in flight as the peer leaves
/// is another case: [`a_bye_is_not_undone_by_an_announce_in_flight`].
fn leaves_and_unregisters(how: Leave, tag: &str) {
    let begun = Instant::now();
    let dir = TestDir::new(tag);
    let tracker = Tracker::start(&dir);
    let (stay, _) = dir.random_file("b/stay.bin", 1000, 14);
    let (_bystander, _) = Peer::seeder("bystander", &tracker, &[&stay]);
    let (path, _) = dir.random_file("l/leave.bin", 2000, 15);
    let share = path.to_str().unwrap();
    let args = ["--announce-interval", "60", "--share", share];
    let mut leaver = Peer::start("leaver", &dir.sub("l"), &tracker, &args);
    leaver
        .proc
        .expect_out("Successfully registered file: ", COMMAND);
    assert_eq!(
        tracker_lists(tracker.addr()),
        [("leave.bin".to_string(), 1), ("stay.bin".to_string(), 1)]
    );

    let asked = Instant::now();
    match how {
        Leave::Quit => leaver.proc.send("quit"),
        Leave::EndOfInput => leaver.proc.close_stdin(),
        Leave::Signal(sig) => leaver.proc.signal(sig),
    }
    let status = leaver.proc.await_exit(LEAVE);
    let took = asked.elapsed();
    assert!(status.success(), "{how:?}: {status}");
    assert_eq!(
        tracker_lists(tracker.addr()),
        [("stay.bin".to_string(), 1)],
        "after {how:?}"
    );
    figure(tag, "exit after the request", took);
    figure(tag, "test run time", begun.elapsed());
}

/// A `BYE` must be final, also when an announce round is in flight as the
/// peer leaves. A stand-in tracker holds the round's `REGISTER` unread, as
/// a busy tracker thread might, until it has handled a `BYE` or for
/// `HOLD` (less than the ~1 s a peer gives its `BYE`). A peer that lets
/// its round finish before saying `BYE` ends unlisted; one that does not
/// is listed again after it left, until the TTL (90 s by default).
#[test]
fn a_bye_is_not_undone_by_an_announce_in_flight() {
    let dir = TestDir::new("bye-race");
    let stub = StubTracker::start();
    let (path, _) = dir.random_file("l/round.bin", 100, 20);
    let share = path.to_str().unwrap();
    let args = ["--announce-interval", "1", "--share", share];
    let mut leaver = Peer::start_port("leaver", &dir.sub("l"), stub.port, &args);
    leaver
        .proc
        .expect_out("Successfully registered file: ", COMMAND);
    assert_eq!(stub.listed(), ["round.bin"]);

    // The next round comes within the 1 s interval; once it is held, leave.
    stub.hold_next_round(Duration::from_secs(5));
    leaver.proc.signal("INT");
    let status = leaver.proc.await_exit(LEAVE);
    assert!(status.success(), "{status}");
    stub.await_held_round(Duration::from_secs(5));
    let listed = stub.listed();
    assert!(
        listed.is_empty(),
        "listed after the peer left (BYE handled, then its round): {listed:?}"
    );
}

#[test]
fn quit_unregisters_and_exits() {
    leaves_and_unregisters(Leave::Quit, "leave-quit");
}

#[test]
fn end_of_input_unregisters_and_exits() {
    leaves_and_unregisters(Leave::EndOfInput, "leave-eof");
}

#[test]
fn sigint_unregisters_and_exits() {
    leaves_and_unregisters(Leave::Signal("INT"), "leave-sigint");
}

#[test]
fn sigterm_unregisters_and_exits() {
    leaves_and_unregisters(Leave::Signal("TERM"), "leave-sigterm");
}
