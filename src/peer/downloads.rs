//! The peer's registry of downloads: every running one and the last
//! [`KEEP_FINISHED`] ended ones, each one [`Entry`]: its [`Progress`], how
//! to cancel it, and whether it still holds its output path, so two
//! downloads never write one file.
//!
//! Invariants: an entry is inserted whole, in one step under the lock, by
//! [`Downloads::begin`], before its download starts, so a cancel finds
//! every download that `running` lists (one cancelled before its thread
//! runs ends at once, cancelled). An entry holds its output from `begin`
//! until its [`OutputClaim`] is dropped (when the download ends); only then
//! may another download claim that path, and only until then does a cancel
//! reach it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use std::time::Duration;

use super::download::progress::{DownloadView, Progress};
use super::download::Canceller;
use crate::bounds::KEEP_FINISHED;
use crate::manifest::FileId;
use crate::protocol::message::IdPrefix;
use crate::sync::LockExt;

#[derive(Default)]
pub struct Downloads {
    next_key: AtomicU64,
    /// Downloads of this run that failed or were cancelled.
    failed: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Oldest first; running ones are never dropped.
    all: Vec<Entry>,
    /// The threads that report background downloads' ends.
    watchers: Vec<std::thread::JoinHandle<()>>,
}

/// One download: what it has done, how to cancel it, where it writes.
struct Entry {
    progress: Arc<Progress>,
    canceller: Canceller,
    out: PathBuf,
    /// It still writes `out`: no other download may, and a cancel reaches it.
    holds_output: bool,
}

/// An output path held by a running download; released when dropped.
pub struct OutputClaim {
    downloads: Arc<Downloads>,
    key: u64,
}

impl Drop for OutputClaim {
    fn drop(&mut self) {
        let mut inner = self.downloads.lock();
        if let Some(e) = inner.all.iter_mut().find(|e| e.progress.key() == self.key) {
            e.holds_output = false;
        }
    }
}

/// Why [`Downloads::matching`] found no one download.
#[derive(Debug, PartialEq, Eq)]
pub enum NoMatch {
    None,
    /// The keys of the running downloads that match.
    Several(Vec<u64>),
}

/// A download just registered: its progress, its canceller (to hand to
/// the download), and its hold on the output path.
pub type Begun = (Arc<Progress>, Canceller, OutputClaim);

impl Downloads {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Each update is one push, retain or map change: consistent if poisoned.
        self.inner.locked()
    }

    /// Registers a new download of `id` as `name` to `out`, whole (see the
    /// module docs). Fails with the key of the download already writing
    /// `out`, if one is.
    pub fn begin(
        self: &Arc<Self>,
        name: &str,
        id: FileId,
        size: Option<u64>,
        out: &Path,
    ) -> Result<Begun, u64> {
        let mut inner = self.lock();
        if let Some(e) = inner.all.iter().find(|e| e.holds_output && e.out == out) {
            return Err(e.progress.key());
        }
        let key = self.next_key.fetch_add(1, Ordering::Relaxed) + 1;
        let progress = Arc::new(Progress::new(key, name, id, size).saving_to(out));
        let canceller = Canceller::new();
        inner.all.push(Entry {
            progress: Arc::clone(&progress),
            canceller: canceller.clone(),
            out: out.to_path_buf(),
            holds_output: true,
        });
        forget_oldest_finished(&mut inner.all);
        let claim = OutputClaim {
            downloads: Arc::clone(self),
            key,
        };
        Ok((progress, canceller, claim))
    }

    /// Keeps the thread that reports a background download's end, so that
    /// leaving can wait for the report ([`join_watchers`](Self::join_watchers)).
    pub fn watch(&self, watcher: std::thread::JoinHandle<()>) {
        let mut inner = self.lock();
        inner.watchers.retain(|w| !w.is_finished());
        inner.watchers.push(watcher);
    }

    /// Waits for the reports of downloads that have ended (call once none
    /// runs: each watcher ends right after its download).
    pub fn join_watchers(&self) {
        let watchers = std::mem::take(&mut self.lock().watchers);
        for w in watchers {
            let _ = w.join();
        }
    }

    /// Counts a download that ended without its file.
    pub fn note_failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// How many downloads of this run ended without their file.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// The running downloads, oldest first.
    pub fn running(&self) -> Vec<Arc<Progress>> {
        let inner = self.lock();
        inner
            .all
            .iter()
            .map(|e| &e.progress)
            .filter(|d| !d.is_finished())
            .cloned()
            .collect()
    }

    /// The running download `which` names: `N` (its number, as `status`
    /// shows it in brackets; `#N` and `[N]` too), its
    /// name, or a prefix (4 hex digits or more) of its file id.
    pub fn matching(&self, which: &str) -> Result<Arc<Progress>, NoMatch> {
        let bare = which.trim_start_matches(['#', '[']).trim_end_matches(']');
        let key = bare.parse::<u64>().ok();
        let prefix = which.parse::<IdPrefix>().ok();
        let found: Vec<Arc<Progress>> = self
            .running()
            .into_iter()
            .filter(|d| {
                Some(d.key()) == key
                    || d.name() == which
                    || prefix.as_ref().is_some_and(|p| p.matches(&d.id()))
            })
            .collect();
        match found.as_slice() {
            [] => Err(NoMatch::None),
            [one] => Ok(Arc::clone(one)),
            many => Err(NoMatch::Several(many.iter().map(|d| d.key()).collect())),
        }
    }

    /// Cancels the running download `key`; returns whether it was running.
    pub fn cancel(&self, key: u64) -> bool {
        let canceller = self.cancellers(|e| e.progress.key() == key);
        canceller.iter().for_each(Canceller::cancel);
        !canceller.is_empty()
    }

    /// Cancels every running download; returns how many.
    pub fn cancel_all(&self) -> usize {
        let all = self.cancellers(|_| true);
        all.iter().for_each(Canceller::cancel);
        all.len()
    }

    /// The cancellers of the running downloads `which` picks.
    fn cancellers(&self, which: impl Fn(&Entry) -> bool) -> Vec<Canceller> {
        let inner = self.lock();
        let running = inner.all.iter().filter(|e| e.holds_output && which(e));
        running.map(|e| e.canceller.clone()).collect()
    }

    /// Waits until no download runs, calling `tick` about every 100 ms
    /// meanwhile (to read input that may cancel them).
    pub fn wait_all(&self, mut tick: impl FnMut()) {
        while let Some(first) = self.running().first().cloned() {
            tick();
            first.wait_timeout(Duration::from_millis(100));
        }
    }

    /// Every tracked download, oldest first.
    pub fn snapshot(&self, now: Instant) -> Vec<DownloadView> {
        let all: Vec<Arc<Progress>> = {
            let mut inner = self.lock();
            forget_oldest_finished(&mut inner.all);
            inner.all.iter().map(|e| Arc::clone(&e.progress)).collect()
        };
        all.iter().map(|d| d.view(now)).collect()
    }
}

/// Keeps the newest [`KEEP_FINISHED`] ended downloads and every running one.
fn forget_oldest_finished(all: &mut Vec<Entry>) {
    let ended = |e: &Entry| e.progress.is_finished() && !e.holds_output;
    let mut finished = all.iter().filter(|e| ended(e)).count();
    all.retain(|e| {
        let drop = finished > KEEP_FINISHED && ended(e);
        finished -= usize::from(drop);
        !drop
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::download::progress::{Outcome, State};

    #[test]
    fn an_output_is_held_by_one_download_at_a_time() {
        let d = Arc::new(Downloads::default());
        let (p, _, claim) = d.begin("a", FileId([1; 32]), None, Path::new("a")).unwrap();
        assert_eq!(
            d.begin("a", FileId([1; 32]), None, Path::new("a")).err(),
            Some(p.key())
        );
        assert!(d.begin("a", FileId([1; 32]), None, Path::new("b")).is_ok());
        drop(claim);
        assert!(d.begin("a", FileId([1; 32]), None, Path::new("a")).is_ok());
    }

    #[test]
    fn running_downloads_are_found_by_number_name_or_id() {
        let d = Arc::new(Downloads::default());
        let (a, _, _ca) = d
            .begin("a", FileId([0xab; 32]), None, Path::new("a"))
            .unwrap();
        let (b, _, _cb) = d
            .begin("b", FileId([0xcd; 32]), None, Path::new("b"))
            .unwrap();
        let (b2, _, _cb2) = d
            .begin("b", FileId([0xce; 32]), None, Path::new("b2"))
            .unwrap();
        let key = |r: Result<Arc<Progress>, NoMatch>| r.map(|p| p.key());
        assert_eq!(key(d.matching(&format!("#{}", a.key()))), Ok(a.key()));
        assert_eq!(key(d.matching("a")), Ok(a.key()));
        assert_eq!(key(d.matching("ABAB")), Ok(a.key()));
        assert_eq!(
            key(d.matching("cd")),
            Err(NoMatch::None),
            "too short a prefix"
        );
        assert_eq!(key(d.matching("cdcd")), Ok(b.key()));
        assert_eq!(
            key(d.matching("b")),
            Err(NoMatch::Several(vec![b.key(), b2.key()]))
        );
        b.finish(Outcome::Done);
        assert_eq!(key(d.matching("b")), Ok(b2.key()), "only running ones");
        assert_eq!(d.running().len(), 2);
        assert!(!d.cancel(9999), "no such download");
    }

    #[test]
    fn a_download_is_cancellable_from_its_registration_until_its_end() {
        let d = Arc::new(Downloads::default());
        let (p, canceller, claim) = d.begin("a", FileId([1; 32]), None, Path::new("a")).unwrap();
        // Not started yet: the cancel reaches the canceller it will run with.
        assert!(d.cancel(p.key()));
        assert!(canceller.is_cancelled());
        assert_eq!(d.cancel_all(), 1);
        drop(claim);
        p.finish(Outcome::Cancelled("cancelled".into()));
        assert!(!d.cancel(p.key()), "ended: nothing to cancel");
        assert_eq!(d.cancel_all(), 0);
    }

    #[test]
    fn history_is_bounded_and_running_downloads_are_kept() {
        let d = Arc::new(Downloads::default());
        let (running, _, _claim) = d
            .begin("running", FileId([1; 32]), None, Path::new("r"))
            .unwrap();
        for n in 0..KEEP_FINISHED + 5 {
            let out = PathBuf::from(format!("f{n}"));
            let (p, _, _) = d
                .begin(&format!("f{n}"), FileId([2; 32]), None, &out)
                .unwrap();
            p.finish(Outcome::Failed("stopped".into()));
        }
        let all = d.snapshot(Instant::now());
        assert_eq!(all.len(), KEEP_FINISHED + 1);
        assert_eq!(all[0].name, "running");
        assert_eq!(all[1].name, "f5");
        assert_eq!(all[1].state, State::Failed);
        assert_eq!(all[1].error.as_deref(), Some("stopped"));
        drop(running);
    }
}
