//! One download, owned: [`start`] runs it on a thread of its own and returns
//! a [`DownloadHandle`] to watch its [`Progress`], cancel it (verified chunks
//! stay in the partial file for a resume) or join it for its result.
//!
//! The download thread fetches the manifest and checks it against the id,
//! opens (or resumes) the partial file, adds it to the library as a file
//! being downloaded, then runs a fixed pool of [`worker`]s that take chunks
//! from the [`Scheduler`](scheduler::Scheduler) and fetch them over one reused connection each,
//! spread across every peer. Each chunk is verified against the manifest
//! before it is written at its offset. Once complete, the partial file is
//! published under its output name and the library entry becomes a complete
//! file, announced through the [`Swarm`].
//!
//! Modules: `run` (the steps, and what the end means), `manifest`
//! (fetching it) and `racing` (whom to ask for it when), `scheduler`
//! (chunk and peer state), `worker` (the fetch loop) with `pipeline` (its
//! decisions) and `asking` (when it asks `HAVE`), `watch` (the workers'
//! threads and the search for more peers), `progress` (what every display
//! reads). Peers are reached through [`dial`](crate::peer::dial).

mod asking;
mod manifest;
mod pipeline;
pub mod progress;
mod racing;
mod run;
pub mod scheduler;
mod target;
mod watch;
mod worker;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use thiserror::Error;

use self::progress::{Outcome, Progress};
use self::scheduler::PeerStats;
use super::dial::{Dialer, PeerAddr};
use super::library::{Library, SharedFile};
use crate::manifest::FileId;
use crate::net::rate::RateCap;
use crate::net::stop::StopSignal;
use crate::private::Secret;
use crate::storage::StoreError;

#[derive(Debug, Error)]
pub enum DownloadError {
    #[error("no peer supplied a valid manifest for {id} (tried {tried}){}",
        refused.as_ref().map_or(String::new(), |why| format!("; refused: {why}")))]
    NoManifest {
        id: FileId,
        tried: usize,
        /// Why the last false manifest was refused, if one was.
        refused: Option<String>,
    },
    #[error("{missing} of {total} chunks could not be fetched from any peer (none usable for {waited} s); progress is kept: run the same download again to resume")]
    Incomplete {
        missing: u32,
        total: u32,
        waited: u64,
    },
    #[error("cancelled with {done} of {total} chunks; progress is kept for a retry")]
    Cancelled { done: u32, total: u32 },
    #[error("a download worker panicked ({0}); progress is kept for a retry")]
    Panicked(String),
    #[error("cannot start a download thread: {0}")]
    Spawn(std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("--only selects files of a folder; this is a single file")]
    OnlyForFolders,
    #[error(transparent)]
    Glob(crate::select::BadGlob),
}

#[derive(Debug)]
pub struct Report {
    pub path: PathBuf,
    pub bytes: u64,
    pub elapsed: Duration,
    /// Chunks found already verified in a partial file from an earlier try.
    pub resumed: u32,
    pub peers: Vec<PeerStats>,
    /// The file is shared, but announcing it failed (shown, not fatal).
    pub warning: Option<String>,
}

/// What a download needs from the peer that runs it, beyond the library:
/// finding peers and telling the tracker and the DHT what it has.
pub trait Swarm: Send + Sync {
    /// The peers of the file listed as `listed` (its id, or a private
    /// share's blinded id) known now (tracker and DHT), this peer left out.
    fn peers(&self, listed: &FileId) -> Vec<PeerAddr>;
    /// `file` is in the library, complete or partial: announce it so. Returns
    /// a warning to show if that failed.
    fn announce(&self, file: &Arc<SharedFile>) -> Option<String>;
    /// `file` stays incomplete here (a failed or cancelled download): drop
    /// it from the library and unregister it.
    fn withdraw(&self, file: &Arc<SharedFile>);
}

/// Everything a download runs with.
pub struct Context {
    pub library: Arc<Library>,
    pub rate: Arc<RateCap>,
    /// Most worker threads (and so connections) at once.
    pub workers: usize,
    /// How long to wait for a usable peer when none is left.
    pub patience: Duration,
    /// How this peer connects to others.
    pub dialer: Arc<dyn Dialer>,
    pub swarm: Arc<dyn Swarm>,
}

/// What to download and where.
pub struct Request {
    pub id: FileId,
    /// A private share's secret, proved to every peer (and the file shared
    /// privately here once downloaded).
    pub secret: Option<Secret>,
    pub name: String,
    pub out: PathBuf,
    /// The sizes the tracker or link claimed; the manifest must declare one
    /// (none: nothing to check against).
    pub sizes: Vec<u64>,
    pub peers: Vec<PeerAddr>,
    /// `--only` globs: of a folder, fetch only the files they match.
    pub only: Vec<String>,
}

/// A running (or finished) download.
pub struct DownloadHandle {
    progress: Arc<Progress>,
    canceller: Canceller,
    thread: JoinHandle<Result<Report, DownloadError>>,
}

/// Cancels one download from anywhere (the REPL, the status page).
#[derive(Clone, Default)]
pub struct Canceller {
    stop: Arc<StopSignal>,
    cancelled: Arc<AtomicBool>,
}

impl Canceller {
    /// A canceller for a download not started yet: made first, so that the
    /// download can be cancelled from the moment it is registered (a cancel
    /// before [`start`] makes it end at once, cancelled).
    pub fn new() -> Canceller {
        Canceller::default()
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Stops the download; what is verified stays in the partial file.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.stop.stop();
    }
}

impl DownloadHandle {
    pub fn progress(&self) -> &Arc<Progress> {
        &self.progress
    }

    pub fn canceller(&self) -> Canceller {
        self.canceller.clone()
    }

    /// Waits at most `timeout` for the end; returns whether it has come.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.progress.wait_timeout(timeout)
    }

    /// Waits for the end and returns the result.
    pub fn join(self) -> Result<Report, DownloadError> {
        self.thread
            .join()
            .unwrap_or_else(|p| Err(DownloadError::Panicked(panic_message(&*p))))
    }
}

/// Starts downloading `req` on a thread of its own; `progress` is where it
/// reports, `canceller` what stops it. `on_end` runs on that thread once the download is over (told
/// whether it succeeded), before its progress says it ended, whatever
/// the outcome (the peer releases the output path there).
pub fn start(
    ctx: Context,
    req: Request,
    progress: Arc<Progress>,
    canceller: Canceller,
    on_end: impl FnOnce(bool) + Send + 'static,
) -> Result<DownloadHandle, DownloadError> {
    let thread_progress = Arc::clone(&progress);
    let thread_stop = Arc::clone(&canceller.stop);
    let thread_cancelled = Arc::clone(&canceller.cancelled);
    let thread = thread::Builder::new()
        .name("download".into())
        .spawn(move || {
            let stopping = Stopping {
                stop: &thread_stop,
                cancelled: &thread_cancelled,
            };
            let result = run::run(&ctx, &req, &thread_progress, &stopping);
            on_end(result.is_ok());
            thread_progress.finish(match &result {
                Ok(_) => Outcome::Done,
                Err(e @ DownloadError::Cancelled { .. }) => Outcome::Cancelled(e.to_string()),
                Err(e) => Outcome::Failed(e.to_string()),
            });
            result
        })
        .map_err(|e| {
            // Never ran: it ends here, so no one waits for it.
            progress.finish(Outcome::Failed(format!(
                "cannot start a download thread: {e}"
            )));
            DownloadError::Spawn(e)
        })?;
    Ok(DownloadHandle {
        progress,
        canceller,
        thread,
    })
}

/// How a download is stopped: the signal its workers watch, and whether a
/// stop came from a cancel (rather than the download ending by itself).
struct Stopping<'a> {
    stop: &'a Arc<StopSignal>,
    cancelled: &'a AtomicBool,
}

impl Stopping<'_> {
    fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
