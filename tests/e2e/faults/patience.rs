//! `--patience`: a download with no usable peer waits for one, asking the
//! tracker again meanwhile, and shows that it waits; it completes if a
//! seeder appears in time, and fails with a clear message if none does.

use std::fs;
use std::time::Instant;

use p2pshare::peer::status::State;

use crate::support::fakes::FakeSpec;
use crate::support::harness::{assert_same_bytes, figure, wait_until, TestDir, CHUNK, COMMAND};
use crate::support::programs::{unfetched, Peer, Tracker};
use crate::support::status::chunks_from;

/// The only peer listed is a (fake) partial peer with no chunk yet: it
/// gives the manifest and offers nothing. Two downloaders: one with
/// `--patience 1` fails after a second of waiting with `4 of 4 chunks could
/// not be fetched from any peer (none usable for 1 s); progress is kept:
/// run the same download again to resume`; the other (`--patience 20`) shows
/// `waiting` in `/api/status` (and `waiting for peers` in the text `status`
/// prints), keeps asking the tracker, and completes from a seeder that
/// appears meanwhile, byte-identical. Before d6fdac3 a download with no
/// usable peer failed at once: no waiting, no asking again.
#[test]
fn a_download_waits_for_a_peer_for_its_patience() {
    let begun = Instant::now();
    let dir = TestDir::new("patience");
    let tracker = Tracker::start(&dir);
    let (path, data) = dir.random_file("src/wait.bin", 4 * CHUNK, 50);
    let empty = FakeSpec::of(&path).partial(&[]).start();
    empty.register(tracker.addr(), "wait.bin");
    let start = |name: &str, patience: &str| {
        let args = ["--http", "0", "--patience", patience];
        let mut dl = Peer::start(name, &dir.sub(name), &tracker, &args);
        dl.proc.send("download wait.bin");
        dl
    };
    let hasty = start("hasty", "1");
    let patient = start("patient", "20");
    let started = Instant::now();

    let waiting = wait_until(COMMAND, "the patient download waiting", || {
        match patient.newest_download() {
            Some(d) if d.state == State::Waiting && d.waiting_secs.is_some() => Ok(d),
            other => Err(format!("{other:?}")),
        }
    });
    assert_eq!(waiting.done_chunks, 0, "{waiting:?}");
    let text = p2pshare::ui::status::status_text(&patient.status());
    let row = format!("  [{}] wait.bin  waiting for peers  0.0%", waiting.key);
    assert!(text.contains(&row), "{text}");

    let lines = hasty
        .finish_download(COMMAND)
        .expect_err("no usable peer within 1 s");
    let hasty_failed = started.elapsed();
    assert_eq!(lines.last().unwrap(), &unfetched("wait.bin", 4, 4, 1));

    let (seeder, _) = Peer::seeder("seeder", &tracker, &[&path]);
    let appeared = Instant::now();
    patient
        .finish_download(COMMAND)
        .unwrap_or_else(|l| panic!("the patient download failed: {l:?}"));
    let found = appeared.elapsed();
    let got = fs::read(dir.path().join("patient/wait.bin")).unwrap();
    assert_same_bytes(&got, &data, "wait.bin");
    let done = patient.ended_download();
    assert_eq!(chunks_from(&done, seeder.addr), 4, "{done:?}");
    assert!(
        chunks_from(&done, empty.addr) == 0 && empty.count("GET ") == 0,
        "the empty peer was asked for a chunk: {:?}",
        empty.requests()
    );
    figure("patience", "--patience 1 failed after", hasty_failed);
    figure("patience", "seeder started to patient download done", found);
    figure("patience", "test run time", begun.elapsed());
}
