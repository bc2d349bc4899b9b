//! Swarming (issue 10): downloaders register as partial peers once their
//! manifest is in, serve the chunks they have verified, and fetch from each
//! other, so a crowd needs the seeder's uplink about once. By subject:
//! `crowd`, real downloaders of one capped seeder (started together, one
//! late, one killed); `partial`, what a partial peer is asked for and
//! serves, with fakes that offer a few chunks (honestly or not).
//!
//! The seeder is capped (`--max-upload`), so a download takes a few
//! seconds and downloaders overlap; every figure comes from the peers'
//! `/api/status`. Figures are printed as `figure:` lines (see them with
//! `cargo test --test e2e swarm -- --nocapture`).

mod crowd;
mod partial;

use std::fs;

use p2pshare::peer::status::DownloadView;

use crate::support::harness::{assert_same_bytes, TestDir, COMMAND};
use crate::support::programs::{Peer, Tracker};
use crate::support::status::chunks_from;

/// A tracker, one seeder of a random file capped at `cap`, and downloaders
/// started on demand, each in a directory of its own with a status page.
struct Crowd {
    // Fields drop in order: the processes before the directory.
    downloaders: Vec<Peer>,
    seeder: Peer,
    tracker: Tracker,
    name: String,
    data: Vec<u8>,
    dir: TestDir,
}

impl Crowd {
    /// For the test `test`: `name` of `len` bytes from `seed`, shared by a
    /// seeder with `--max-upload cap` and a status page.
    fn start(test: &str, name: &str, len: usize, seed: u64, cap: &str) -> Crowd {
        let dir = TestDir::new(test);
        let tracker = Tracker::start(&dir);
        let (path, data) = dir.random_file(&format!("seed/{name}"), len, seed);
        let args = ["--max-upload", cap, "--http", "0"];
        let (seeder, _) = Peer::seeder_with("seeder", &tracker, &[&path], &args);
        Crowd {
            downloaders: Vec::new(),
            seeder,
            tracker,
            name: name.to_string(),
            data,
            dir,
        }
    }

    /// Starts downloader number `downloaders.len()` and sends it
    /// `download NAME`; returns its index.
    fn join(&mut self) -> usize {
        let i = self.enter();
        self.go(i);
        i
    }

    /// Starts downloader number `downloaders.len()` (once it listens) without
    /// a command; returns its index.
    fn enter(&mut self) -> usize {
        let i = self.downloaders.len();
        let cwd = self.dir.sub(&format!("dl{i}"));
        let dl = Peer::start(&format!("dl{i}"), &cwd, &self.tracker, &["--http", "0"]);
        self.downloaders.push(dl);
        i
    }

    /// Types `download NAME` into downloader `i`.
    fn go(&mut self, i: usize) {
        let line = format!("download {}", self.name);
        self.downloaders[i].proc.send(&line);
    }

    /// Waits for downloader `i`'s download to succeed and checks its file
    /// byte for byte; returns the download as its `/api/status` ends it.
    #[track_caller]
    fn finish(&self, i: usize) -> DownloadView {
        let dl = &self.downloaders[i];
        dl.finish_download(COMMAND)
            .unwrap_or_else(|l| panic!("dl{i}'s download failed: {l:?}"));
        let out = self.dir.path().join(format!("dl{i}")).join(&self.name);
        assert_same_bytes(&fs::read(out).unwrap(), &self.data, &format!("dl{i}"));
        dl.ended_download()
    }

    /// The chunks download `d` got from the downloaders other than `i`.
    fn chunks_from_others(&self, i: usize, d: &DownloadView) -> u32 {
        self.downloaders
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, other)| chunks_from(d, other.addr))
            .sum()
    }

    /// Bytes the seeder has uploaded of the file.
    fn seeder_uploaded(&self) -> u64 {
        uploaded_of(&self.seeder, &self.name)
            .expect("the seeder shares its file")
            .0
    }
}

/// What `peer` has uploaded of its shared file `name`, and of that how much
/// while it was still downloading it (`/api/status`); `None` while it does
/// not share it (a downloader before its manifest is in).
fn uploaded_of(peer: &Peer, name: &str) -> Option<(u64, u64)> {
    let status = peer.status();
    let file = status.shared.iter().find(|f| f.name == name)?;
    Some((file.uploaded, file.uploaded_while_partial))
}
