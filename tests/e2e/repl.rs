//! The REPL as a user meets it: downloads run in the background while
//! other commands are answered; `cancel` keeps the verified chunks and
//! `resume` continues; `quit` waits for a download (a second `quit`
//! cancels it); a restarted peer shares again what it shared and offers to
//! resume what it did not finish; downloads into a directory; and the
//! `did you mean` for mistyped commands and names.

use std::fs;
use std::path::PathBuf;

use p2pshare::peer::status::State;

use crate::support::harness::{
    assert_same_bytes, part_file, wait_until, Stream, TestDir, CHUNK, COMMAND, LEAVE,
};
use crate::support::programs::{Peer, Tracker};
use crate::support::status::{fetched, resumed_chunks};

/// A tracker, and a seeder of a 16-chunk file capped at 2 MiB/s (a
/// download takes about 4 s): enough time to type while it runs.
struct Slow {
    seeder: Peer,
    tracker: Tracker,
    data: Vec<u8>,
    id: String,
    dir: TestDir,
}

const NAME: &str = "slow.bin";

impl Slow {
    fn start(test: &str) -> Slow {
        let dir = TestDir::new(test);
        let tracker = Tracker::start(&dir);
        let (path, data) = dir.random_file(&format!("s/{NAME}"), 16 * CHUNK, 51);
        let cap = ["--max-upload", "2M"];
        let (seeder, ids) = Peer::seeder_with("seeder", &tracker, &[&path], &cap);
        Slow {
            seeder,
            tracker,
            data,
            id: ids[0].clone(),
            dir,
        }
    }

    /// A peer in `sub/` with a status page and `extra` options.
    fn peer(&self, name: &str, sub: &str, extra: &[&str]) -> Peer {
        let mut args = vec!["--http", "0"];
        args.extend_from_slice(extra);
        Peer::start(name, &self.dir.sub(sub), &self.tracker, &args)
    }

    fn out(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub).join(NAME)
    }
}

/// `download` returns at once; `status` is answered while it runs; `wait`
/// returns once it is done.
#[test]
fn a_download_runs_in_the_background_while_status_answers() {
    let slow = Slow::start("background");
    let mut dl = slow.peer("downloader", "dl", &[]);
    dl.proc.send(&format!("download {NAME}"));
    dl.proc
        .expect_out(&format!("Found 1 peer for {NAME} "), COMMAND);
    dl.proc.send("status");
    let running = dl.proc.expect_out("downloads: ", COMMAND);
    assert_eq!(running, "downloads: 1 running, 0 finished");
    assert!(
        matches!(dl.newest_download().map(|d| d.state), Some(State::Running)),
        "status came only after the download"
    );
    dl.proc.send("wait");
    dl.proc
        .expect_out(&format!("Successfully downloaded: {NAME}"), COMMAND);
    assert_same_bytes(&fs::read(slow.out("dl")).unwrap(), &slow.data, NAME);
}

/// `cancel` stops a download, keeping its verified chunks; `resume` (which
/// the peer's memory makes possible) continues it from there.
#[test]
fn cancel_keeps_the_chunks_and_resume_continues() {
    let slow = Slow::start("cancel-resume");
    let mut dl = slow.peer("downloader", "dl", &[]);
    dl.proc.send(&format!("download {NAME}"));
    let before = dl.await_fetched(2);
    dl.proc.send(&format!("cancel {NAME}"));
    dl.proc.expect_out("cancelling download [", COMMAND);
    let ended = dl.proc.expect_out(&format!("Cancelled: {NAME} ("), COMMAND);
    assert!(
        ended.ends_with("chunks kept; resume continues it)"),
        "{ended}"
    );
    let out = slow.out("dl");
    assert!(!out.exists(), "a cancelled download wrote OUT");
    assert!(
        part_file(&out, &slow.id).exists(),
        "the partial file is gone"
    );

    dl.proc.send("status");
    let line = dl.proc.expect_out("downloads: ", COMMAND);
    assert_eq!(line, "downloads: 0 running, 0 finished, 1 cancelled");
    dl.proc
        .expect_out("unfinished (1 download; type resume to continue):", COMMAND);
    dl.proc.send("resume");
    dl.proc
        .expect_out(&format!("Successfully downloaded: {NAME}"), COMMAND);
    assert_same_bytes(&fs::read(&out).unwrap(), &slow.data, NAME);
    let resumed = resumed_chunks(&dl.ended_download());
    assert!(
        resumed >= fetched(&before),
        "{resumed} resumed of {}",
        fetched(&before)
    );
    dl.proc.send("status");
    let line = dl.proc.expect_out("uploads: ", COMMAND);
    assert!(line.starts_with("uploads: 1 file shared"), "{line}");
}

/// Piped input: `download` then end of input waits for the download, which
/// completes, and the peer exits 0 without claiming to share on; `status`
/// is answered while it waits.
#[test]
fn quit_waits_for_a_download_in_piped_mode() {
    let slow = Slow::start("quit-waits");
    let mut dl = slow.peer("downloader", "dl", &[]);
    dl.proc.send(&format!("download {NAME}"));
    dl.proc.send("quit");
    dl.proc
        .expect_out("waiting for 1 download to finish; quit again", COMMAND);
    dl.proc.send("status");
    let running = dl.proc.expect_out("downloads: ", COMMAND);
    assert_eq!(running, "downloads: 1 running, 0 finished");
    let stats = dl.proc.expect_out(" saved as ", COMMAND);
    assert!(!stats.contains("now sharing it"), "{stats}");
    dl.proc.close_stdin();
    assert!(dl.proc.wait_exit(LEAVE + COMMAND).success());
    assert_same_bytes(&fs::read(slow.out("dl")).unwrap(), &slow.data, NAME);
}

/// A second `quit` cancels what the first waits for: the chunks stay, the
/// exit status says not everything was done.
#[test]
fn a_second_quit_cancels_the_downloads() {
    let slow = Slow::start("quit-twice");
    let mut dl = slow.peer("downloader", "dl", &[]);
    dl.proc.send(&format!("download {NAME}"));
    dl.await_fetched(1);
    dl.proc.send("quit");
    dl.proc.expect_out("waiting for 1 download", COMMAND);
    dl.proc.send("quit");
    dl.proc.expect_out("cancelling 1 download", COMMAND);
    assert_eq!(dl.proc.wait_exit(LEAVE + COMMAND).code(), Some(1));
    let out = slow.out("dl");
    assert!(!out.exists());
    assert!(part_file(&out, &slow.id).exists());
}

/// One state directory across runs: the seeder shares again without being
/// told (and without hashing an unchanged file), a changed file is hashed
/// again under its new id; a downloader killed mid-download is offered the
/// resume and finishes it.
#[test]
fn a_restarted_peer_shares_again_and_resumes() {
    let slow = Slow::start("restart");
    let (path, _) = slow.dir.random_file("a/kept.bin", 3 * CHUNK, 52);
    let state = slow.dir.path().join("state-a");
    let state_arg = state.to_str().unwrap();
    let mut a = slow.peer("a", "a", &["--state-dir", state_arg]);
    a.proc.send(&format!("share {}", path.display()));
    a.await_share();
    a.proc.close_stdin();
    assert!(a.proc.wait_exit(LEAVE).success());
    let lists = || crate::support::raw::tracker_lists(slow.tracker.addr());
    assert!(
        !lists().iter().any(|(n, _)| n == "kept.bin"),
        "still listed"
    );

    let a = slow.peer("a again", "a", &["--state-dir", state_arg]);
    a.proc
        .expect_line(Stream::Out, COMMAND, "the restore", |l| {
            l == "Sharing again 1 file from the last run"
        });
    wait_until(COMMAND, "kept.bin listed again", || {
        match lists().iter().any(|(n, p)| n == "kept.bin" && *p == 1) {
            true => Ok(()),
            false => Err(format!("{:?}", lists())),
        }
    });
    drop(a);

    let dl_state = slow.dir.path().join("state-dl");
    let dl_arg = ["--state-dir", dl_state.to_str().unwrap()];
    let mut dl = slow.peer("downloader", "dl", &dl_arg);
    dl.proc.send(&format!("download {NAME}"));
    dl.await_fetched(2);
    dl.proc.kill();
    let dl = slow.peer("downloader again", "dl", &dl_arg);
    dl.proc
        .expect_out("1 download left unfinished last time; type resume", COMMAND);
    assert_eq!(dl.status().unfinished.len(), 1);
    let mut dl = dl;
    dl.proc.send("resume");
    dl.proc
        .expect_out(&format!("Successfully downloaded: {NAME}"), COMMAND);
    assert_same_bytes(&fs::read(slow.out("dl")).unwrap(), &slow.data, NAME);
    assert!(resumed_chunks(&dl.ended_download()) >= 2);
    wait_until(COMMAND, "the finished download forgotten", || {
        match dl.status().unfinished.is_empty() {
            true => Ok(()),
            false => Err("still unfinished".into()),
        }
    });
    let _ = &slow.seeder;
}

/// `download NAME DIR/` and `download NAME EXISTING_DIR` save into it.
#[test]
fn downloads_go_into_a_directory_when_told_one() {
    let slow = Slow::start("into-dir");
    let dl_dir = slow.dir.sub("dl");
    fs::create_dir_all(dl_dir.join("there")).unwrap();
    let mut dl = slow.peer("downloader", "dl", &[]);
    for target in ["there", "fresh/"] {
        let lines = dl.download(NAME, Some(target));
        match target {
            "fresh/" => {
                let line = lines.expect_err("no such directory");
                assert!(line.last().unwrap().contains("does not exist"), "{line:?}");
            }
            _ => {
                lines.unwrap_or_else(|l| panic!("{l:?}"));
                let got = fs::read(dl_dir.join(target).join(NAME)).unwrap();
                assert_same_bytes(&got, &slow.data, target);
            }
        }
    }
}

/// A mistyped command or file name gets the closest right one.
#[test]
fn typos_get_a_did_you_mean() {
    let slow = Slow::start("did-you-mean");
    let mut dl = slow.peer("downloader", "dl", &[]);
    dl.proc.send("downlaod x");
    let line = dl.proc.expect_out("error: ", COMMAND);
    assert_eq!(
        line,
        "error: unknown command \"downlaod\"; did you mean download? (type help)"
    );
    dl.proc.send("download SLOW.BIN");
    let line = dl.proc.expect_out("error: ", COMMAND);
    assert!(line.ends_with("did you mean \"slow.bin\"?"), "{line}");
    dl.proc.send("share my file.txt");
    let line = dl.proc.expect_out("error: ", COMMAND);
    assert!(line.contains("share \"my file.txt\""), "{line}");
}
