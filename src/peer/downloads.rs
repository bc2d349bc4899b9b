//! The peer's registry of downloads: every running one and the last
//! [`KEEP_FINISHED`] ended ones, each as its [`Progress`], and the output
//! paths running downloads hold, so two downloads never write one file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::download::progress::{DownloadView, Progress};
use crate::bounds::KEEP_FINISHED;
use crate::manifest::FileId;

#[derive(Default)]
pub struct Downloads {
    next_key: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Oldest first; running ones are never dropped.
    all: Vec<Arc<Progress>>,
    /// Output path -> key of the running download writing it.
    outputs: HashMap<PathBuf, u64>,
}

/// An output path held by a running download; released when dropped.
pub struct OutputClaim {
    downloads: Arc<Downloads>,
    out: PathBuf,
}

impl Drop for OutputClaim {
    fn drop(&mut self) {
        self.downloads.lock().outputs.remove(&self.out);
    }
}

impl Downloads {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Each update is one push, retain or map change: consistent if poisoned.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
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
        let progress = Arc::new(Progress::new(key, name, id, size));
        inner.outputs.insert(out.to_path_buf(), key);
        inner.all.push(Arc::clone(&progress));
        forget_oldest_finished(&mut inner.all);
        let claim = OutputClaim {
            downloads: Arc::clone(self),
            out: out.to_path_buf(),
        };
        Ok((progress, claim))
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
