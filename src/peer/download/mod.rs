//! One download, owned: [`start`] runs it on a thread of its own and returns
//! a [`DownloadHandle`] to watch its [`Progress`], cancel it (verified chunks
//! stay in the partial file for a resume) or join it for its result.
//!
//! The download thread fetches the manifest and checks it against the id,
//! opens (or resumes) the partial file, adds it to the library as a file
//! being downloaded, then runs a fixed pool of [`worker`]s that take chunks
//! from the [`Scheduler`] and fetch them over one reused connection each,
//! spread across every peer. Each chunk is verified against the manifest
//! before it is written at its offset. Once complete, the partial file is
//! published under its output name and the library entry becomes a complete
//! file, announced through the [`Swarm`].
//!
//! Modules: `manifest` (fetching it), `scheduler` (chunk and peer state),
//! `worker` (the fetch loop), `watch` (the workers' threads and the search
//! for more peers), `progress` (what every display reads).

mod asking;
mod manifest;
pub mod progress;
pub mod scheduler;
mod watch;
mod worker;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use thiserror::Error;

use self::progress::{Outcome, Progress};
use self::scheduler::{PeerStats, Scheduler};
use super::library::{Library, SharedFile};
use super::locate::Source;
use crate::manifest::{FileId, Manifest};
use crate::net::rate::RateCap;
use crate::net::stop::StopSignal;
use crate::net::tls::Tls;
use crate::private::Secret;
use crate::storage::{PartialFile, StoreError};

use self::manifest::FileKey;

#[derive(Debug, Error)]
pub enum DownloadError {
    #[error("no peer supplied a valid manifest for {id} (tried {tried})")]
    NoManifest { id: FileId, tried: usize },
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
    fn peers(&self, listed: &FileId) -> Vec<Source>;
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
    /// This peer's TLS identity and configs, for connecting to others.
    pub tls: Tls,
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
    pub peers: Vec<Source>,
}

/// A running (or finished) download.
pub struct DownloadHandle {
    progress: Arc<Progress>,
    canceller: Canceller,
    thread: JoinHandle<Result<Report, DownloadError>>,
}

/// Cancels one download from anywhere (the REPL, the status page).
#[derive(Clone)]
pub struct Canceller {
    stop: Arc<StopSignal>,
    cancelled: Arc<AtomicBool>,
}

impl Canceller {
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
/// reports. `on_end` runs on that thread once the download is over (told
/// whether it succeeded), before its progress says it ended, whatever
/// the outcome (the peer releases the output path there).
pub fn start(
    ctx: Context,
    req: Request,
    progress: Arc<Progress>,
    on_end: impl FnOnce(bool) + Send + 'static,
) -> Result<DownloadHandle, DownloadError> {
    let stop = StopSignal::new();
    let cancelled = Arc::new(AtomicBool::new(false));
    let (thread_progress, thread_stop) = (Arc::clone(&progress), Arc::clone(&stop));
    let thread_cancelled = Arc::clone(&cancelled);
    let thread = thread::Builder::new()
        .name("download".into())
        .spawn(move || {
            let stopping = Stopping {
                stop: &thread_stop,
                cancelled: &thread_cancelled,
            };
            let result = run(&ctx, &req, &thread_progress, &stopping);
            on_end(result.is_ok());
            thread_progress.finish(match &result {
                Ok(_) => Outcome::Done,
                Err(e @ DownloadError::Cancelled { .. }) => Outcome::Cancelled(e.to_string()),
                Err(e) => Outcome::Failed(e.to_string()),
            });
            result
        })
        .map_err(DownloadError::Spawn)?;
    Ok(DownloadHandle {
        progress,
        canceller: Canceller { stop, cancelled },
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

fn run(
    ctx: &Context,
    req: &Request,
    progress: &Progress,
    stopping: &Stopping<'_>,
) -> Result<Report, DownloadError> {
    let started = Instant::now();
    let stop = stopping.stop;
    let key = FileKey {
        id: req.id,
        secret: req.secret,
    };
    let fetched =
        manifest::fetch_manifest(&key, &req.sizes, &req.peers, &ctx.tls, stop, ctx.patience);
    let fetched = match fetched {
        Err(_) if stopping.cancelled() => {
            return Err(DownloadError::Cancelled { done: 0, total: 0 })
        }
        other => other?,
    };
    let manifest = fetched.manifest;
    if stopping.cancelled() {
        return Err(DownloadError::Cancelled {
            done: 0,
            total: manifest.chunk_count(),
        });
    }
    let (partial, have) = PartialFile::open(&req.out, &req.id, &manifest)?;
    let resumed_bytes: u64 = have
        .iter()
        .filter_map(|i| manifest.chunk(i))
        .map(|c| u64::from(c.len))
        .sum();
    progress.start(
        manifest.size(),
        manifest.chunk_count(),
        have.count(),
        resumed_bytes,
    );
    let entry = ctx.library.add_partial(
        req.name.clone(),
        partial.path(),
        manifest.clone(),
        partial.storage(),
        have.clone(),
        req.secret,
    );
    if let Some(entry) = &entry {
        // Found while downloading: others can fetch what is verified here.
        if let Some(w) = ctx.swarm.announce(entry) {
            log::info!("announcing the partial file: {w}");
        }
    }
    let scheduler = Scheduler::new(&have, &fetched.usable, Arc::clone(stop));
    // A false manifest bans its peer; a failure to connect or answer only
    // benches it (it may be back soon); `busy` counts for nothing.
    scheduler.ban(&fetched.lied);
    scheduler.bench(&fetched.failed);
    let job = worker::Job {
        key,
        manifest: &manifest,
        partial: &partial,
        entry: entry.as_ref(),
        scheduler: &scheduler,
        rate: &ctx.rate,
        tls: &ctx.tls,
        progress,
        stop,
    };
    let missing = manifest.chunk_count() - have.count();
    let threads = ctx.workers.clamp(1, (missing as usize).max(1));
    let ended = watch::run_workers(&job, threads, ctx);
    let (done, total, peer_stats) = scheduler.outcome();
    let failed = match ended {
        Err(e) => Some(e),
        Ok(_) if done == total => None,
        Ok(_) if stopping.cancelled() => Some(DownloadError::Cancelled { done, total }),
        Ok(waited) => Some(DownloadError::Incomplete {
            missing: total - done,
            total,
            waited: waited.as_secs(),
        }),
    };
    if let Some(e) = failed {
        if let Some(entry) = &entry {
            ctx.swarm.withdraw(entry);
        }
        return Err(e);
    }
    let path = partial.finish()?;
    let shared = publish(ctx, entry, req, &path, manifest)?;
    let warning = ctx.swarm.announce(&shared);
    Ok(Report {
        path,
        bytes: shared.manifest.size(),
        elapsed: started.elapsed(),
        resumed: have.count(),
        peers: peer_stats,
        warning,
    })
}

/// Makes the finished file at `path` a complete library entry: the download's
/// own entry, or (if the content was already shared) a fresh one.
fn publish(
    ctx: &Context,
    entry: Option<Arc<SharedFile>>,
    req: &Request,
    path: &std::path::Path,
    manifest: Manifest,
) -> Result<Arc<SharedFile>, DownloadError> {
    match entry {
        Some(entry) => ctx
            .library
            .complete(&entry, path.to_path_buf())
            .map(|()| entry)
            .map_err(|source| io_error(path, source)),
        None => ctx
            .library
            .add(req.name.clone(), path.to_path_buf(), manifest, req.secret)
            .map(|added| added.file)
            .map_err(|source| io_error(path, source)),
    }
}

fn io_error(path: &std::path::Path, source: std::io::Error) -> DownloadError {
    StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
    .into()
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
