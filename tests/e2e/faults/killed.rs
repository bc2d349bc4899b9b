//! Downloads whose peers die, or that die themselves, mid-transfer: a
//! seeder SIGKILLed is routed around, a downloader SIGKILLed or interrupted
//! keeps its verified chunks for a resume, and a download whose every peer
//! is gone fails clearly and resumes later.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use p2pshare::peer::status::DownloadView;

use crate::support::harness::{
    assert_same_bytes, figure, part_file, TestDir, CHUNK, COMMAND, LEAVE,
};
use crate::support::programs::{unfetched, Peer, Tracker};
use crate::support::status::{
    assert_every_chunk_once, chunks_from, fetched, is_benched, resumed_chunks,
};

const MIB: usize = 1024 * 1024;

/// A "big" file: 24 chunks, 6 s from one seeder capped at 2 MiB/s.
const BIG: usize = 12 * MIB;

/// How long the downloaders here wait for a usable peer (`--patience`).
const PATIENCE: &str = "2";

/// Ctrl-C while a download is in flight (seeder capped at 1 MiB/s): the
/// peer still exits within [`LEAVE`], writes nothing at OUT, and leaves its
/// verified chunks in the `.part` file for a resume.
#[test]
fn sigint_mid_download_keeps_the_partial_file() {
    let begun = Instant::now();
    let setup = Capped::start("sigint-download", "busy.bin", 19, "1M", "busy.bin");
    let mut dl = setup.downloader("downloader");

    dl.proc.send("download busy.bin");
    dl.await_fetched(1);
    let asked = Instant::now();
    dl.proc.signal("INT");
    let status = dl.proc.await_exit(LEAVE);
    let took = asked.elapsed();
    assert!(status.success(), "{status}");
    assert!(!setup.out.exists(), "an interrupted download wrote OUT");
    setup.assert_only_the_part_file();
    figure("sigint mid-download", "exit after SIGINT", took);
    figure("sigint mid-download", "test run time", begun.elapsed());
}

/// Two seeders capped at 2 MiB/s each; once the downloader has fetched 2
/// chunks, one seeder is SIGKILLed. Its chunks in flight go back to the
/// queue, it is benched after its failures, and the download completes from
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
    // The victim's failures were noticed (it is benched), and what it held
    // went back to the queue: every chunk still arrived, each once.
    assert!(
        is_benched(&download, victim.addr),
        "the victim is not benched: {download:?}"
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
    let setup = Capped::start("resume", "half.bin", 17, "2M", "out.bin");
    let total = (BIG / CHUNK) as u32;

    let mut first = setup.downloader("downloader1");
    first.proc.send("download half.bin out.bin");
    // Chunks reach the partial file before they are counted.
    let seen = fetched(&first.await_fetched(6));
    first.proc.kill();
    let killed = Instant::now();
    assert!(!setup.out.exists(), "a killed download wrote OUT");
    setup.assert_only_the_part_file();

    let mut second = setup.downloader("downloader2");
    let (download, n) = setup.download_again(&mut second, "half.bin");
    let resumed_after = killed.elapsed();
    assert!(
        n >= seen && n < total,
        "resumed {n} of {total}, {seen} were fetched before the kill: {download:?}"
    );
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
/// the download waits for a usable peer for its patience (2 s here), then
/// gives up within a bounded time with one clear error that says how to
/// resume, keeps
/// its `.part` file and writes nothing at OUT. A new seeder later lets the
/// same command resume: exactly the chunks of the first try are kept.
#[test]
fn a_download_whose_peers_are_all_gone_fails_and_resumes_later() {
    let begun = Instant::now();
    let mut setup = Capped::start("all-gone", "gone.bin", 18, "1M", "out.bin");
    let total = (BIG / CHUNK) as u32;
    let mut dl = setup.downloader("downloader");

    dl.proc.send("download gone.bin out.bin");
    dl.await_fetched(1);
    setup.seeder.proc.kill();
    let killed = Instant::now();
    let lines = dl
        .finish_download(Duration::from_secs(20))
        .expect_err("a download with no peer left must fail");
    let failed_after = killed.elapsed();
    let error = lines.last().unwrap();
    let missing: u32 = error
        .strip_prefix("error: gone.bin: ")
        .and_then(|e| e.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {error:?}"));
    assert!(missing >= 1 && missing < total, "{error}");
    assert_eq!(
        error,
        &unfetched("gone.bin", missing, total, PATIENCE.parse().unwrap())
    );
    assert!(!setup.out.exists(), "a failed download wrote OUT");
    assert!(setup.part.exists(), "the partial file was not kept");

    let (p2, _) = setup.dir.random_file("s2/gone.bin", BIG, 18);
    let (_seeder2, _) = Peer::seeder("seeder2", &setup.tracker, &[&p2]);
    let (_, resumed) = setup.download_again(&mut dl, "gone.bin");
    assert_eq!(resumed, total - missing);
    println!("figure: all gone: {missing} of {total} chunks missing at the failure");
    figure("all gone", "failure after the kill", failed_after);
    figure("all gone", "test run time", begun.elapsed());
}

/// What most tests here start from: a tracker and one seeder of a [`BIG`]
/// random file, capped so that a download of it takes seconds, and where a
/// download of it to `dl/OUT` writes.
struct Capped {
    // Fields drop in order: the processes before the directory.
    seeder: Peer,
    tracker: Tracker,
    data: Vec<u8>,
    /// `dl/OUT`, and the partial file beside it.
    out: PathBuf,
    part: PathBuf,
    dir: TestDir,
}

impl Capped {
    /// For the test `test`: the seeder shares `name` (made from `seed`)
    /// with `--max-upload cap`; downloads go to `dl/out`.
    fn start(test: &str, name: &str, seed: u64, cap: &str, out: &str) -> Capped {
        let dir = TestDir::new(test);
        let tracker = Tracker::start(&dir);
        let (path, data) = dir.random_file(&format!("s/{name}"), BIG, seed);
        let cap = ["--max-upload", cap];
        let (seeder, ids) = Peer::seeder_with("seeder", &tracker, &[&path], &cap);
        let out = dir.sub("dl").join(out);
        let part = part_file(&out, &ids[0]);
        Capped {
            seeder,
            tracker,
            data,
            out,
            part,
            dir,
        }
    }

    /// A peer in `dl/` with a status page.
    fn downloader(&self, name: &str) -> Peer {
        let cwd = self.dir.path().join("dl");
        let args = ["--http", "0", "--patience", PATIENCE];
        Peer::start(name, &cwd, &self.tracker, &args)
    }

    /// Asserts that `dl/` holds the partial file and nothing else.
    #[track_caller]
    fn assert_only_the_part_file(&self) {
        assert!(
            self.part.exists(),
            "no partial file {}",
            self.part.display()
        );
        let part = self.part.file_name().unwrap().to_str().unwrap();
        assert_eq!(self.dir.entries("dl"), [part]);
    }

    /// `download NAME OUT` by `dl`, after an earlier attempt: it must leave
    /// the file intact at OUT and nothing else in `dl/`, and its stats line
    /// must say as many chunks resumed as `/api/status` does. Returns the
    /// download and that count.
    #[track_caller]
    fn download_again(&self, dl: &mut Peer, name: &str) -> (DownloadView, u32) {
        let out = self.out.file_name().unwrap().to_str().unwrap();
        let lines = dl
            .download(name, Some(out))
            .unwrap_or_else(|l| panic!("the download after the first failed: {l:?}"));
        let download = dl.ended_download();
        let n = resumed_chunks(&download);
        let stats = lines.last().expect("a stats line");
        let noun = if n == 1 { "chunk" } else { "chunks" };
        let says = format!(", {n} {noun} resumed from an earlier attempt;");
        assert!(stats.contains(&says), "{stats:?} lacks {says:?}");
        assert_same_bytes(&fs::read(&self.out).unwrap(), &self.data, out);
        assert_eq!(self.dir.entries("dl"), [out], "no .part file left");
        (download, n)
    }
}
