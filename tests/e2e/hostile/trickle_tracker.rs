//! A hostile tracker that promises the longest list a client accepts and
//! sends one row every 5 s: every tracker request has a deadline for its
//! whole reply, and in piped mode end of input interrupts a stuck one.

use std::time::{Duration, Instant};

use crate::support::fakes::{Script, StubTracker};
use crate::support::harness::{figure, Stream, TestDir};
use crate::support::programs::Peer;

/// `TRACKER_DEADLINE`: one tracker request, its whole reply included.
const DEADLINE: Duration = Duration::from_secs(15);

/// Against a tracker that answers `SEARCH` with `OK 100000` and then one
/// row every 5 s: one peer's `search` fails with a timeout once the 15 s
/// deadline has passed, and another peer, whose input ends while its own
/// `search` is stuck, exits 1 s later (its grace for the command), not
/// when the reply would end, saying its search was `interrupted`. Before
/// e6785c8 each row had its own 10 s read timeout, met every 5 s, so
/// `search` would have taken 100,000 x 5 s (about 6 days), and stdin was
/// read only between commands, so end of input could not stop it.
#[test]
fn a_trickling_tracker_holds_neither_search_nor_the_exit() {
    let dir = TestDir::new("tracker-trickle");
    let row = format!("{} 741 1 drip.txt", "ab".repeat(32));
    let stub = StubTracker::scripted(Script {
        files: vec![row],
        trickle_search: Some(Duration::from_secs(5)),
        ..Script::default()
    });
    let mut searcher = Peer::start_port("searcher", &dir.sub("a"), stub.port, &[]);
    let mut leaver = Peer::start_port("leaver", &dir.sub("b"), stub.port, &[]);

    searcher.proc.send("search");
    let asked = Instant::now();
    leaver.proc.send("search");
    leaver.proc.close_stdin();
    // Working, it exits about 1 s after input ends; broken, not before the
    // search's 15 s deadline. Half the deadline separates the two with
    // seconds to spare for a loaded machine (it was 3 s, which flaked).
    let status = leaver.proc.await_exit(DEADLINE / 2);
    let exited = asked.elapsed();
    assert_eq!(status.code(), Some(1), "its search failed: {status}");
    assert!(exited < DEADLINE / 2, "exited {exited:?} after input ended");
    // One error line for the search, which says what happened: the read of
    // the next row was interrupted. (Until the fix the interrupted read's
    // clean end of stream read as `connection closed by the other side`.)
    let error = format!("error: tracker 127.0.0.1:{}: ", stub.port);
    assert_eq!(leaver.proc.seen(&error).len(), 1, "{error:?}");
    let interrupted = format!("{error}interrupted");
    assert_eq!(leaver.proc.seen(&interrupted).len(), 1, "{interrupted:?}");

    let line = searcher.proc.expect_line(
        Stream::Out,
        DEADLINE + Duration::from_secs(10),
        "the search's end",
        |l| l.ends_with(" found") || l.starts_with("error:"),
    );
    let failed = asked.elapsed();
    let want = format!(
        "error: tracker 127.0.0.1:{}: timed out waiting for the tracker's whole reply",
        stub.port
    );
    assert_eq!(line, want);
    assert!(
        failed >= DEADLINE - Duration::from_secs(1) && failed < DEADLINE + Duration::from_secs(5),
        "search failed after {failed:?}"
    );
    figure("trickling tracker", "exit after end of input", exited);
    figure("trickling tracker", "search failed after", failed);
}
