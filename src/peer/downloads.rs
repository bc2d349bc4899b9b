//! The peer's registry of downloads: every running one and the last
//! [`KEEP_FINISHED`] ended ones, each as its [`Progress`] (with how to
//! cancel it while it runs), and the output paths running downloads hold,
//! so two downloads never write one file.

use std::collections::HashMap;
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
    all: Vec<Arc<Progress>>,
    /// Output path -> key of the running download writing it.
    outputs: HashMap<PathBuf, u64>,
    /// Key -> how to cancel it, while it runs.
    cancellers: HashMap<u64, Canceller>,
    /// The threads that report background downloads' ends.
    watchers: Vec<std::thread::JoinHandle<()>>,
}

/// An output path held by a running download; released when dropped.
pub struct OutputClaim {
    downloads: Arc<Downloads>,
    out: PathBuf,
}

impl Drop for OutputClaim {
    fn drop(&mut self) {
        let mut inner = self.downloads.lock();
        if let Some(key) = inner.outputs.remove(&self.out) {
            inner.cancellers.remove(&key);
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

impl Downloads {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Each update is one push, retain or map change: consistent if poisoned.
        self.inner.locked()
    }

    /// Registers a new download of `id` as `name` to `out`. Fails with the
    /// key of the download already writing `out`, if one is.
    pub fn begin(
        self: &Arc<Self>,
        name: &str,
        id: FileId,
        size: Option<u64>,
        out: &Path,
    ) -> Result<(Arc<Progress>, OutputClaim), u64> {
        let mut inner = self.lock();
        if let Some(&key) = inner.outputs.get(out) {
            return Err(key);
        }
        let key = self.next_key.fetch_add(1, Ordering::Relaxed) + 1;
        let progress = Arc::new(Progress::new(key, name, id, size).saving_to(out));
        inner.outputs.insert(out.to_path_buf(), key);
        inner.all.push(Arc::clone(&progress));
        forget_oldest_finished(&mut inner.all);
        let claim = OutputClaim {
            downloads: Arc::clone(self),
            out: out.to_path_buf(),
        };
        Ok((progress, claim))
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

    /// Records how to cancel the running download `key`.
    pub fn set_canceller(&self, key: u64, canceller: Canceller) {
        let mut inner = self.lock();
        if inner.outputs.values().any(|&k| k == key) {
            inner.cancellers.insert(key, canceller);
        }
    }

    /// The running downloads, oldest first.
    pub fn running(&self) -> Vec<Arc<Progress>> {
        let inner = self.lock();
        inner
            .all
            .iter()
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
        let canceller = self.lock().cancellers.get(&key).cloned();
        canceller.map(|c| c.cancel()).is_some()
    }

    /// Cancels every running download; returns how many.
    pub fn cancel_all(&self) -> usize {
        let all: Vec<Canceller> = self.lock().cancellers.values().cloned().collect();
        all.iter().for_each(Canceller::cancel);
        all.len()
    }

    /// Waits until no download runs, calling `tick` about every 100 ms
    /// meanwhile (to read input that may cancel them).
    pub fn wait_all(&self, mut tick: impl FnMut()) {
        while let Some(first) = self.running().first().cloned() {
            tick();
            first.wait_timeout(Duration::from_millis(100));
        }
    }

    /// Cancels every running download, keeping verified chunks, and says
    /// so on the console.
    pub fn cancel_all_saying(&self) {
        let n = self.cancel_all();
        crate::console::say(format!(
            "cancelling {} (verified chunks are kept)",
            crate::ui::count(n, "download")
        ));
    }

    /// Every tracked download, oldest first.
    pub fn snapshot(&self, now: Instant) -> Vec<DownloadView> {
        let all: Vec<Arc<Progress>> = {
            let mut inner = self.lock();
            forget_oldest_finished(&mut inner.all);
            inner.all.clone()
        };
        all.iter().map(|d| d.view(now)).collect()
    }
}

/// Keeps the newest [`KEEP_FINISHED`] ended downloads and every running one.
fn forget_oldest_finished(all: &mut Vec<Arc<Progress>>) {
    let mut finished = all.iter().filter(|d| d.is_finished()).count();
    all.retain(|d| {
        let drop = finished > KEEP_FINISHED && d.is_finished();
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
        let (p, claim) = d.begin("a", FileId([1; 32]), None, Path::new("a")).unwrap();
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
        let (a, _ca) = d
            .begin("a", FileId([0xab; 32]), None, Path::new("a"))
            .unwrap();
        let (b, _cb) = d
            .begin("b", FileId([0xcd; 32]), None, Path::new("b"))
            .unwrap();
        let (b2, _cb2) = d
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
        assert!(!d.cancel(a.key()), "no canceller known");
    }

    #[test]
    fn history_is_bounded_and_running_downloads_are_kept() {
        let d = Arc::new(Downloads::default());
        let (running, _claim) = d
            .begin("running", FileId([1; 32]), None, Path::new("r"))
            .unwrap();
        for n in 0..KEEP_FINISHED + 5 {
            let out = PathBuf::from(format!("f{n}"));
            let (p, _) = d
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
