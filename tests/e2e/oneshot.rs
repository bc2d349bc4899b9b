//! `peer send` and `peer get`: one file from one process to another with a
//! ticket pasted unquoted into a shell, no tracker running; tickets that are
//! damaged or point at nobody fail with a clear line and a nonzero exit;
//! and two peers with `--dht` and no tracker find each other.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use p2pshare::ticket::Ticket;

use crate::support::harness::{assert_same_bytes, figure, Proc, TestDir, CHUNK, COMMAND, STARTUP};
use crate::support::proc::Stream as ProcStream;
use crate::support::programs::Tracker;
use crate::support::raw::{tracker_lists, Raw};

const PEER: &str = env!("CARGO_BIN_EXE_peer");

/// `peer send --bind 127.0.0.1 EXTRA... PATH` in `cwd`; returns it and its
/// `Ticket:` line's ticket.
fn send(dir: &TestDir, path: &Path, extra: &[&str]) -> (Proc, String) {
    let mut cmd = Command::new(PEER);
    cmd.args(["send", "--bind", "127.0.0.1"])
        .args(extra)
        .arg(path)
        .current_dir(dir.path());
    let proc = Proc::spawn("sender", cmd);
    let line = proc.expect_out("Ticket: ", STARTUP);
    let ticket = line["Ticket: ".len()..].trim().to_string();
    proc.expect_out("  on the other machine: peer get ", STARTUP);
    (proc, ticket)
}

/// `bash -c "cd DIR && exec peer get WORDS"`: the words exactly as a user
/// pastes them, unquoted.
fn get_in_shell(cwd: &Path, words: &str) -> Proc {
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(format!(
        "cd {} && exec {PEER} get --bind 127.0.0.1 {words}",
        cwd.display()
    ));
    Proc::spawn("getter", cmd)
}

#[test]
fn send_and_get_move_a_file_with_an_unquoted_ticket() {
    let dir = TestDir::new("send-get");
    let (path, data) = dir.random_file("s/photo (1).jpg", 3 * CHUNK + 11, 41);
    let (_sender, ticket) = send(&dir, &path, &[]);
    assert!(
        ticket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":._+-".contains(&b)),
        "a shell would split or expand {ticket}"
    );

    let out = dir.sub("r");
    let mut getter = get_in_shell(&out, &ticket);
    getter.expect_out("Found 1 peer for photo (1).jpg", COMMAND);
    getter.expect_out("Successfully downloaded: photo (1).jpg", COMMAND);
    assert!(getter.wait_exit(COMMAND).success());
    assert_same_bytes(
        &fs::read(out.join("photo (1).jpg")).unwrap(),
        &data,
        "the file",
    );

    // Again into the same place: nothing is overwritten, and it says so.
    let mut again = get_in_shell(&out, &ticket);
    let status = again.wait_exit(COMMAND);
    assert_eq!(status.code(), Some(1));
    assert!(
        !again.seen("already exists; not overwriting it").is_empty(),
        "no clear refusal"
    );
    assert_same_bytes(
        &fs::read(out.join("photo (1).jpg")).unwrap(),
        &data,
        "untouched",
    );

    // Into a directory given as OUT.
    fs::create_dir_all(out.join("into")).unwrap();
    let mut into = get_in_shell(&out, &format!("{ticket} into/"));
    assert!(into.wait_exit(COMMAND).success());
    assert_same_bytes(
        &fs::read(out.join("into/photo (1).jpg")).unwrap(),
        &data,
        "into/",
    );
}

#[test]
fn damaged_or_unreachable_tickets_fail_clearly() {
    let dir = TestDir::new("bad-tickets");
    let (path, _) = dir.random_file("s/a.bin", 1000, 42);
    let (mut sender, ticket) = send(&dir, &path, &[]);
    let out = dir.sub("r");

    // Cut short, or one character appended (which once became part of
    // the name): the checksum refuses both.
    let cut = &ticket[..ticket.len() - 9];
    for damaged in [cut.to_string(), format!("{ticket}1")] {
        let mut getter = get_in_shell(&out, &damaged);
        assert_eq!(getter.wait_exit(COMMAND).code(), Some(1));
        assert!(
            !getter.seen("ticket is damaged").is_empty(),
            "no clear error for {damaged}"
        );
    }
    let mut garbage = get_in_shell(&out, "garbage");
    assert_eq!(garbage.wait_exit(COMMAND).code(), Some(1));
    assert!(
        !garbage
            .seen("is not a ticket (p2p2:...) or link")
            .is_empty(),
        "no clear error for garbage"
    );

    sender.kill();
    let mut nobody = get_in_shell(&out, &ticket);
    assert_eq!(nobody.wait_exit(COMMAND).code(), Some(1));
    let said = nobody.seen("unreachable from here");
    assert_eq!(said.len(), 1, "no clear error");
    // Each address tried, and how it failed: the sender is gone, so its
    // loopback address refuses.
    assert!(said[0].contains(" refused"), "{}", said[0]);
    assert!(said[0].contains("--public-addr"), "{}", said[0]);
    assert!(
        dir.entries("r").is_empty(),
        "a failed get wrote {:?}",
        dir.entries("r")
    );
}

/// `peer get T1 T2` fetches both, one after another; an OUT that is a
/// ticket is never taken for a file name.
#[test]
fn get_with_two_tickets_fetches_both() {
    let dir = TestDir::new("two-tickets");
    let (one, one_data) = dir.random_file("s/one.bin", CHUNK + 5, 43);
    let (two, two_data) = dir.random_file("t/two.bin", 777, 44);
    let (_s1, t1) = send(&dir, &one, &[]);
    let (_s2, t2) = send(&dir, &two, &[]);
    let out = dir.sub("r");
    let mut getter = get_in_shell(&out, &format!("{t1} {t2}"));
    assert!(getter.wait_exit(COMMAND).success(), "get T1 T2 failed");
    assert_eq!(dir.entries("r"), ["one.bin", "two.bin"]);
    assert_same_bytes(&fs::read(out.join("one.bin")).unwrap(), &one_data, "one");
    assert_same_bytes(&fs::read(out.join("two.bin")).unwrap(), &two_data, "two");
}

/// `send` is private unless `--public`: a tracker it announces to lists
/// a public send by name and a private one not at all.
#[test]
fn send_is_private_unless_public() {
    let dir = TestDir::new("send-private");
    let tracker = Tracker::start(&dir);
    let at = format!("127.0.0.1:{}", tracker.port);
    let (hidden, _) = dir.random_file("s/hidden.bin", 1000, 43);
    let (shown, _) = dir.random_file("s/shown.bin", 1000, 44);
    let (_a, _) = send(&dir, &hidden, &["--tracker", &at]);
    let (b, _) = send(&dir, &shown, &["--tracker", &at, "--public"]);
    b.expect_out("  link: p2pshare:", STARTUP);
    assert_eq!(
        tracker_lists(tracker.addr()),
        [("shown.bin".to_string(), 1)]
    );
}

/// Two peers, `--dht`, no tracker anywhere: the downloader joins through the
/// seeder's DHT node and fetches by link.
#[test]
fn two_dht_peers_find_each_other_with_no_tracker() {
    let dir = TestDir::new("dht-two");
    let (path, data) = dir.random_file("s/pair.bin", 2 * CHUNK + 3, 45);
    let (sender, _) = send(&dir, &path, &["--dht", "--public"]);
    let node = sender.startup_line("DHT node on UDP ");
    let link = sender.startup_line("  link: ");

    let out = dir.sub("r");
    let words = format!("--dht --dht-bootstrap {node} '{link}'");
    let mut getter = get_in_shell(&out, &words);
    getter.expect_out("Successfully downloaded: pair.bin", COMMAND);
    assert!(getter.wait_exit(COMMAND).success());
    assert_same_bytes(&fs::read(out.join("pair.bin")).unwrap(), &data, "pair.bin");
}

/// With every slot of the sender's for 127.0.0.1 taken (96 idle
/// connections of the test's), `peer get --patience 45` from there finds
/// the sender busy, not unreachable: it starts the download, is refused as
/// busy (at locate, then twice for the manifest, 1 s and 2 s apart), and
/// once the test lets go of the slots it finishes byte-identical. Before the fix the busy sender counted as unreachable:
/// the get exited at once with `no peers for <name> (asked: the ticket's
/// addresses, unreachable from here)`.
#[test]
fn a_busy_sender_is_waited_for_not_unreachable() {
    let dir = TestDir::new("busy-sender");
    let (path, data) = dir.random_file("s/busy.bin", 2 * CHUNK, 45);
    let (_sender, ticket) = send(&dir, &path, &[]);
    let parsed: Ticket = ticket.parse().unwrap();
    let at = parsed.addrs[0];
    let held: Vec<Raw> = (0..96)
        .map(|_| {
            let mut c = Raw::peer(at);
            assert_eq!(c.ask("HELLO 1"), "OK p2pshare 1");
            c
        })
        .collect();
    let out = dir.sub("r");

    let started = Instant::now();
    let mut getter = get_in_shell(&out, &format!("-vv --patience 45 {ticket}"));
    let found = getter.expect_line(ProcStream::Out, COMMAND, "found or failed", |l| {
        l.starts_with("Found 1 peer for busy.bin") || l.starts_with("error:")
    });
    assert!(found.starts_with("Found"), "{found}");
    // Refused twice more, for the manifest, before the slots are let go.
    getter.expect_line(ProcStream::Err, COMMAND, "a second busy", |l| {
        l.contains("busy; asking again in 2s")
    });
    let busy_for = started.elapsed();
    drop(held);
    getter.expect_out("Successfully downloaded: busy.bin", COMMAND);
    assert!(getter.wait_exit(COMMAND).success());
    assert_same_bytes(&fs::read(out.join("busy.bin")).unwrap(), &data, "busy.bin");
    figure("busy sender", "slots held from the get's start", busy_for);
    figure("busy sender", "get done after the start", started.elapsed());
}

/// The sender sees who fetches its file and when each has it all: three
/// `get`s of one ticket give three `sent` lines, and `/api/status` lists
/// the three downloaders done.
#[test]
fn the_sender_sees_each_download_and_its_end() {
    let dir = TestDir::new("send-sees");
    let (path, data) = dir.random_file("s/shown.bin", 3 * CHUNK + 5, 45);
    let (sender, ticket) = send(&dir, &path, &["--http", "0"]);
    let page = sender.status_page();
    for n in 0..3 {
        let out = dir.sub(&format!("r{n}"));
        let mut getter = get_in_shell(&out, &ticket);
        assert!(getter.wait_exit(COMMAND).success(), "get {n} failed");
        assert_same_bytes(&fs::read(out.join("shown.bin")).unwrap(), &data, "a copy");
    }
    let sent = crate::support::harness::wait_until(COMMAND, "three sent lines", || {
        let lines = sender.seen("sent shown.bin to 127.0.0.1:");
        match lines.len() {
            3 => Ok(lines),
            n => Err(format!("{n} so far")),
        }
    });
    assert!(
        sent.iter().all(|l| l.contains(" from here in ")),
        "{sent:?}"
    );
    let status = crate::support::status::peer_status(page);
    let done: Vec<_> = status.uploads.iter().filter(|u| u.done).collect();
    assert_eq!(done.len(), 3, "{:?}", status.uploads);
    assert!(done.iter().all(|u| u.bytes == data.len() as u64));
}
