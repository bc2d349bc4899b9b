//! Fault injection (issue 3): trackers that die and come back, or start
//! late; peers that vanish without a word or leave by every route; seeders
//! and downloaders killed with SIGKILL mid-download. Each test runs real
//! processes, hurts them with real signals, and checks what the survivors
//! see and what is on disk.
//!
//! "Mid-download" comes from upload caps, not timing luck: a 12 MiB file
//! from seeders capped at 1-2 MiB/s takes seconds, and a test acts on what
//! the downloader's `/api/status` shows, never after a sleep. States without a line to
//! wait for (what the tracker lists) are polled with a deadline.
//!
//! Each test prints `figure:` lines (seen with `--nocapture`) for
//! docs/RELIABILITY.md: its run time and how long the fault took to handle.

use std::fs;
use std::time::{Duration, Instant};

use crate::support::fakes::StubTracker;
use crate::support::harness::{
    assert_same_bytes, figure, part_file, unused_port, wait_until, Stream, TestDir, CHUNK, COMMAND,
    LEAVE,
};
use crate::support::programs::{Peer, Row, Tracker};
use crate::support::raw::tracker_lists;
use crate::support::status::{
    assert_every_chunk_once, chunks_from, fetched, is_banned, resumed_chunks,
};

const MIB: usize = 1024 * 1024;

/// A "big" file: 24 chunks, 6 s from one seeder capped at 2 MiB/s.
const BIG: usize = 12 * MIB;

/// The tail of the error a download prints when no peer is left.
const ALL_GONE: &str = "chunks could not be fetched from any peer; progress is kept for a retry";

/// A tracker killed with SIGKILL and started again on the same port, with
/// empty memory, lists both seeders again within a few announce intervals
/// (1 s here) with no user action, and a download through it works.
#[test]
fn a_restarted_tracker_relearns_every_live_peer() {
    let begun = Instant::now();
    let dir = TestDir::new("tracker-restart");
    let mut tracker = Tracker::start_with(&dir, unused_port(), &[]);
    let fast = ["--announce-interval", "1"];
    let (p0, data) = dir.random_file("s0/restart.bin", 5 * CHUNK + 99, 11);
    let (p1, _) = dir.random_file("s1/restart.bin", 5 * CHUNK + 99, 11);
    let (_s0, _) = Peer::seeder_with("seeder0", &tracker, &[&p0], &fast);
    let (_s1, _) = Peer::seeder_with("seeder1", &tracker, &[&p1], &fast);
    let mut dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &[]);
    let two = |rows: &[Row]| matches!(rows, [r] if r.peers == 2 && r.name == "restart.bin");
    let rows = dl.search("restart.bin");
    assert!(two(&rows), "before the restart: {rows:?}");

    let port = tracker.port;
    tracker.kill();
    let down = dl.try_search("");
    assert!(down.is_err(), "the tracker still answers: {down:?}");
    let tracker = Tracker::start_with(&dir, port, &[]);
    let restarted = Instant::now();
    wait_until(Duration::from_secs(10), "2 peers listed again", || {
        let rows = dl.try_search("restart.bin")?;
        if two(&rows) {
            Ok(())
        } else {
            Err(format!("{rows:?}"))
        }
    });
    assert_eq!(
        tracker_lists(tracker.addr()),
        [("restart.bin".to_string(), 2)]
    );
    figure(
        "tracker restart",
        "both seeders relisted after",
        restarted.elapsed(),
    );

    let lines = dl
        .download("restart.bin", None)
        .unwrap_or_else(|l| panic!("download after the restart failed: {l:?}"));
    assert!(
        lines.iter().any(|l| l.starts_with("Found 2 peers for ")),
        "{lines:?}"
    );
    let got = fs::read(dir.path().join("dl/restart.bin")).unwrap();
    assert_same_bytes(&got, &data, "restart.bin");
    figure("tracker restart", "test run time", begun.elapsed());
}

/// A seeder killed with SIGKILL sends no `BYE`: the tracker (`--peer-ttl 2`)
/// keeps listing it until the TTL has passed since its last announcement,
/// then forgets it on its own.
#[test]
fn a_silently_killed_peer_is_forgotten_after_the_ttl() {
    const TTL: Duration = Duration::from_secs(2);
    let begun = Instant::now();
    let dir = TestDir::new("ttl");
    let tracker = Tracker::start_with(&dir, 0, &["--peer-ttl", "2"]);
    let mut searcher = Peer::start("searcher", &dir.sub("q"), &tracker, &[]);
    let (path, _) = dir.random_file("s/ttl.bin", CHUNK + 1, 12);
    // Its last announcement is after this instant (and, with a 60 s
    // interval, it makes no other before it is killed).
    let spawned = Instant::now();
    let (mut seeder, _) =
        Peer::seeder_with("seeder", &tracker, &[&path], &["--announce-interval", "60"]);
    seeder.proc.kill();
    let killed = Instant::now();

    let rows = searcher.search("ttl.bin");
    if spawned.elapsed() < TTL {
        // The tracker answered within the TTL of the last announcement.
        assert_eq!(rows.len(), 1, "forgotten before the TTL: {rows:?}");
        assert_eq!(rows[0].peers, 1, "{rows:?}");
    } else {
        println!("note: too slow to check the listing within the TTL");
    }
    wait_until(
        Duration::from_secs(10),
        "the dead seeder forgotten",
        || match searcher.search("ttl.bin").as_slice() {
            [] => Ok(()),
            rows => Err(format!("{rows:?}")),
        },
    );
    assert!(
        spawned.elapsed() > TTL,
        "forgotten within the TTL of its announcement"
    );
    assert!(tracker_lists(tracker.addr()).is_empty());
    figure("ttl", "SIGKILLed seeder forgotten after", killed.elapsed());
    figure("ttl", "test run time", begun.elapsed());
}

/// A peer whose tracker is not up yet: `share` succeeds locally and says
/// so; once a tracker starts on that port, the peer's announce retries
/// (backoff 1 s, 2 s, ... capped by `--announce-interval 4`) register the
/// file without any user action, and another peer downloads it intact.
#[test]
fn a_peer_announces_once_its_late_tracker_is_up() {
    let begun = Instant::now();
    let dir = TestDir::new("late-tracker");
    let port = unused_port();
    let (path, data) = dir.random_file("s/late.bin", 3 * CHUNK + 5, 13);
    let args = ["--announce-interval", "4"];
    let mut sharer = Peer::start_port("sharer", &dir.sub("s"), port, &args);
    sharer.proc.send(&format!("share {}", path.display()));
    let lines: Vec<String> = (0..3)
        .map(|_| {
            sharer
                .proc
                .expect_line(Stream::Out, COMMAND, "a share line", |_| true)
        })
        .collect();
    assert!(
        lines[0].starts_with("Successfully registered file: ") && lines[1].starts_with("  link: "),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with("warning: ")
            && lines[2].ends_with("; shared locally, will announce when the tracker is back"),
        "{lines:?}"
    );

    let tracker = Tracker::start_with(&dir, port, &[]);
    let up = Instant::now();
    let mut dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &[]);
    wait_until(Duration::from_secs(15), "the file announced", || {
        match dl.search("late.bin").as_slice() {
            [r] if r.peers == 1 => Ok(()),
            rows => Err(format!("{rows:?}")),
        }
    });
    figure(
        "late tracker",
        "file announced after tracker start",
        up.elapsed(),
    );
    dl.download("late.bin", None)
        .unwrap_or_else(|l| panic!("download failed: {l:?}"));
    let got = fs::read(dir.path().join("dl/late.bin")).unwrap();
    assert_same_bytes(&got, &data, "late.bin");
    figure("late tracker", "test run time", begun.elapsed());
}

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

/// Ctrl-C while a download is in flight (seeder capped at 1 MiB/s): the
/// peer still exits within [`LEAVE`], writes nothing at OUT, and leaves its
/// verified chunks in the `.part` file for a resume.
#[test]
fn sigint_mid_download_keeps_the_partial_file() {
    let begun = Instant::now();
    let dir = TestDir::new("sigint-download");
    let tracker = Tracker::start(&dir);
    let (path, _) = dir.random_file("s/busy.bin", BIG, 19);
    let cap = ["--max-upload", "1M"];
    let (_seeder, ids) = Peer::seeder_with("seeder", &tracker, &[&path], &cap);
    let dl_dir = dir.sub("dl");
    let out = dl_dir.join("busy.bin");
    let mut dl = Peer::start("downloader", &dl_dir, &tracker, &["--http", "0"]);

    dl.proc.send("download busy.bin");
    dl.await_fetched(1);
    let asked = Instant::now();
    dl.proc.signal("INT");
    let status = dl.proc.await_exit(LEAVE);
    let took = asked.elapsed();
    assert!(status.success(), "{status}");
    assert!(!out.exists(), "an interrupted download wrote OUT");
    let part = part_file(&out, &ids[0]);
    assert_eq!(
        dir.entries("dl"),
        [part.file_name().unwrap().to_str().unwrap()]
    );
    figure("sigint mid-download", "exit after SIGINT", took);
    figure("sigint mid-download", "test run time", begun.elapsed());
}

/// Two seeders capped at 2 MiB/s each; once the downloader has fetched 2
/// chunks, one seeder is SIGKILLed. Its chunks in flight go back to the
/// queue, it is banned after its failures, and the download completes from
/// the survivor: every chunk exactly once, byte-identical.
#[test]
fn a_seeder_killed_mid_download_is_routed_around() {
    let begun = Instant::now();
    let dir = TestDir::new("seeder-killed");
    let tracker = Tracker::start(&dir);
    let cap = ["--max-upload", "2M"];
    let (p0, data) = dir.random_file("s0/big.bin", BIG, 16);
    let (p1, _) = dir.random_file("s1/big.bin", BIG, 16);
    let (mut victim, _) = Peer::seeder_with("victim", &tracker, &[&p0], &cap);
    let (survivor, _) = Peer::seeder_with("survivor", &tracker, &[&p1], &cap);
    let mut dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &["--http", "0"]);

    dl.proc.send("download big.bin");
    let started = Instant::now();
    dl.await_fetched(2);
    victim.proc.kill();
    let killed = Instant::now();
    let lines = dl
        .finish_download(COMMAND)
        .unwrap_or_else(|l| panic!("the download failed: {l:?}"));
    let failover = killed.elapsed();
    assert!(
        lines.iter().any(|l| l.starts_with("Found 2 peers for ")),
        "{lines:?}"
    );
    let got = fs::read(dir.path().join("dl/big.bin")).unwrap();
    assert_same_bytes(&got, &data, "big.bin");
    assert_eq!(dir.entries("dl"), ["big.bin"], "no .part file left");

    let download = dl.ended_download();
    // The victim's failures were noticed (it is banned), and what it held
    // went back to the queue: every chunk still arrived, each once.
    assert!(
        is_banned(&download, victim.addr),
        "the victim is not banned: {download:?}"
    );
    assert_every_chunk_once(&download, BIG / CHUNK);
    let from_survivor = chunks_from(&download, survivor.addr);
    let from_victim = chunks_from(&download, victim.addr);
    assert_eq!(
        from_survivor + from_victim,
        download.total_chunks,
        "{download:?}"
    );
    println!("figure: seeder killed: chunks from victim {from_victim}, survivor {from_survivor}");
    figure("seeder killed", "chunks 2.. after the kill", failover);
    figure(
        "seeder killed",
        "whole download (12 MiB, 2x2 MiB/s caps)",
        started.elapsed(),
    );
    figure("seeder killed", "test run time", begun.elapsed());
}

/// A downloader SIGKILLed after fetching 6 chunks leaves nothing at OUT and
/// its verified chunks in the `.part` file beside it. A new downloader with
/// the same `download NAME OUT` keeps them (re-verified) and fetches only
/// the rest: exactly as many chunks as it did not resume.
#[test]
fn a_killed_download_resumes_where_it_stopped() {
    let begun = Instant::now();
    let dir = TestDir::new("resume");
    let tracker = Tracker::start(&dir);
    let (path, data) = dir.random_file("s/half.bin", BIG, 17);
    let cap = ["--max-upload", "2M"];
    let (_seeder, ids) = Peer::seeder_with("seeder", &tracker, &[&path], &cap);
    let dl_dir = dir.sub("dl");
    let out = dl_dir.join("out.bin");
    let part = part_file(&out, &ids[0]);
    let total = (BIG / CHUNK) as u32;

    let mut first = Peer::start("downloader1", &dl_dir, &tracker, &["--http", "0"]);
    first.proc.send("download half.bin out.bin");
    // Chunks reach the partial file before they are counted.
    let seen = fetched(&first.await_fetched(6));
    first.proc.kill();
    let killed = Instant::now();
    assert!(!out.exists(), "a killed download wrote OUT");
    assert!(part.exists(), "no partial file {}", part.display());
    assert_eq!(
        dir.entries("dl"),
        [part.file_name().unwrap().to_str().unwrap()]
    );

    let mut second = Peer::start("downloader2", &dl_dir, &tracker, &["--http", "0"]);
    let lines = second
        .download("half.bin", Some("out.bin"))
        .unwrap_or_else(|l| panic!("the resumed download failed: {l:?}"));
    let resumed_after = killed.elapsed();
    let download = second.ended_download();
    let n = resumed_chunks(&download);
    assert!(
        n >= seen && n < total,
        "resumed {n} of {total}, {seen} were fetched before the kill: {download:?}"
    );
    assert_stats_say_resumed(&lines, n);
    assert_same_bytes(&fs::read(&out).unwrap(), &data, "out.bin");
    assert_eq!(dir.entries("dl"), ["out.bin"], "no .part file left");
    // Fetched only the rest, each chunk once.
    assert_every_chunk_once(&download, total as usize);
    println!("figure: resume: {seen} chunks fetched before the kill, {n} of {total} resumed");
    figure(
        "resume",
        "kill to complete (2nd peer start + rest)",
        resumed_after,
    );
    figure("resume", "test run time", begun.elapsed());
}

/// The only seeder (capped at 1 MiB/s) is SIGKILLed once a chunk arrived:
/// the download gives up within a bounded time with one clear error, keeps
/// its `.part` file and writes nothing at OUT. A new seeder later lets the
/// same command resume: exactly the chunks of the first try are kept.
#[test]
fn a_download_whose_peers_are_all_gone_fails_and_resumes_later() {
    let begun = Instant::now();
    let dir = TestDir::new("all-gone");
    let tracker = Tracker::start(&dir);
    let (path, data) = dir.random_file("s0/gone.bin", BIG, 18);
    let (mut seeder, ids) =
        Peer::seeder_with("seeder", &tracker, &[&path], &["--max-upload", "1M"]);
    let dl_dir = dir.sub("dl");
    let out = dl_dir.join("out.bin");
    let part = part_file(&out, &ids[0]);
    let total = (BIG / CHUNK) as u32;
    let mut dl = Peer::start("downloader", &dl_dir, &tracker, &["--http", "0"]);

    dl.proc.send("download gone.bin out.bin");
    dl.await_fetched(1);
    seeder.proc.kill();
    let killed = Instant::now();
    let lines = dl
        .finish_download(Duration::from_secs(20))
        .expect_err("a download with no peer left must fail");
    let failed_after = killed.elapsed();
    let error = lines.last().unwrap();
    assert!(error.ends_with(ALL_GONE), "{error}");
    let missing: u32 = error
        .strip_prefix("error: ")
        .and_then(|e| e.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {error:?}"));
    assert!(missing >= 1 && missing < total, "{error}");
    assert!(!out.exists(), "a failed download wrote OUT");
    assert!(part.exists(), "the partial file was not kept");

    let (p2, _) = dir.random_file("s2/gone.bin", BIG, 18);
    let (_seeder2, _) = Peer::seeder("seeder2", &tracker, &[&p2]);
    let lines = dl
        .download("gone.bin", Some("out.bin"))
        .unwrap_or_else(|l| panic!("the retry failed: {l:?}"));
    let retry = dl.ended_download();
    assert_eq!(resumed_chunks(&retry), total - missing, "{retry:?}");
    assert_stats_say_resumed(&lines, total - missing);
    assert_same_bytes(&fs::read(&out).unwrap(), &data, "out.bin");
    assert_eq!(dir.entries("dl"), ["out.bin"], "no .part file left");
    println!("figure: all gone: {missing} of {total} chunks missing at the failure");
    figure("all gone", "failure after the kill", failed_after);
    figure("all gone", "test run time", begun.elapsed());
}

/// Asserts that the stats line, the last of `lines`, reports `n` chunks
/// resumed from an earlier attempt.
#[track_caller]
fn assert_stats_say_resumed(lines: &[String], n: u32) {
    let stats = lines.last().expect("a stats line");
    let says = format!(", {n} chunks resumed from an earlier attempt;");
    assert!(stats.contains(&says), "{stats:?} lacks {says:?}");
}
