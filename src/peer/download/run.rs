//! One download's course, on its own thread, in steps: the manifest (from
//! whichever peer gives it first), the partial file and the library entry,
//! the workers, and the end. What the end means (complete, cancelled, or
//! incomplete for want of peers) is [`verdict`]'s to decide, apart from
//! the I/O, so it is tested alone.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::manifest::{self, Fetched};
use super::progress::Progress;
use super::scheduler::Scheduler;
use super::target::{Opened, Target};
use super::{watch, worker, Context, DownloadError, Report, Request, Stopping};
use crate::chunkset::ChunkSet;
use crate::manifest::Manifest;
use crate::peer::dial::FileKey;
use crate::peer::library::SharedFile;
use crate::storage::StoreError;

pub(super) fn run(
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
    let fetched = fetch_manifest(ctx, req, &key, stopping)?;
    let manifest = &fetched.manifest;
    let Opened {
        target: partial,
        have,
        wanted,
        files,
    } = Target::open(&req.out, &req.id, manifest, &req.only)?;
    if let Some(files) = &files {
        progress.set_files(files.whole, files.total);
    }
    let entry = begin(ctx, req, progress, &partial, manifest, &have, &wanted);
    // The scheduler fetches what is neither here nor left out by `--only`.
    let mut settled = have.clone();
    let mut unwanted = ChunkSet::full(manifest.chunk_count());
    for i in wanted.iter() {
        unwanted.remove(i);
    }
    settled.union_with(&unwanted);
    let scheduler = Scheduler::new(&settled, &fetched.usable, Arc::clone(stop));
    // A false manifest bans its peer; a failure to connect or answer only
    // benches it (it may be back soon); `busy` counts for nothing.
    scheduler.ban(&fetched.lied);
    scheduler.bench(&fetched.failed);
    let job = worker::Job {
        key,
        manifest,
        partial: &partial,
        files: files.as_ref(),
        entry: entry.as_ref(),
        scheduler: &scheduler,
        rate: &ctx.rate,
        dialer: &*ctx.dialer,
        progress,
        stop,
    };
    let missing = manifest.chunk_count() - settled.count();
    let threads = ctx.workers.clamp(1, (missing as usize).max(1));
    let ended = watch::run_workers(&job, threads, ctx);
    let (done, total, peer_stats) = scheduler.outcome();
    if let Some(e) = verdict(ended, done, total, stopping.cancelled()) {
        if let Some(entry) = &entry {
            ctx.swarm.withdraw(entry);
        }
        return Err(e);
    }
    let path = partial.finish()?;
    let bytes = bytes_of(manifest, &wanted);
    if !wanted.is_complete() {
        // Some files of a folder: kept, not shared as the folder (which
        // this peer does not have whole).
        if let Some(entry) = &entry {
            ctx.swarm.withdraw(entry);
        }
        return Ok(Report {
            path,
            bytes,
            elapsed: started.elapsed(),
            resumed: have.count(),
            peers: peer_stats,
            warning: None,
        });
    }
    let shared = publish(ctx, entry, req, &path, fetched.manifest)?;
    let warning = ctx.swarm.announce(&shared);
    Ok(Report {
        path,
        bytes,
        elapsed: started.elapsed(),
        resumed: have.count(),
        peers: peer_stats,
        warning,
    })
}

/// The manifest, and what its peers did; a cancel meanwhile wins over
/// whatever the fetch found.
fn fetch_manifest(
    ctx: &Context,
    req: &Request,
    key: &FileKey,
    stopping: &Stopping<'_>,
) -> Result<Fetched, DownloadError> {
    let fetched = manifest::fetch_manifest(
        key,
        &req.sizes,
        &req.peers,
        &ctx.dialer,
        stopping.stop,
        ctx.patience,
    );
    let fetched = match fetched {
        Err(_) if stopping.cancelled() => {
            return Err(DownloadError::Cancelled { done: 0, total: 0 })
        }
        other => other?,
    };
    if stopping.cancelled() {
        return Err(DownloadError::Cancelled {
            done: 0,
            total: fetched.manifest.chunk_count(),
        });
    }
    Ok(fetched)
}

/// Starts the progress at what the partial file already `have`s, and adds
/// the file to the library as being downloaded (announced, so that others
/// can fetch what is verified here). Returns the library entry (`None` if
/// the file is already shared complete).
fn begin(
    ctx: &Context,
    req: &Request,
    progress: &Progress,
    partial: &Target,
    manifest: &Manifest,
    have: &ChunkSet,
    wanted: &ChunkSet,
) -> Option<Arc<SharedFile>> {
    let resumed = ChunkSet::from_fn(manifest.chunk_count(), |i| {
        have.contains(i) && wanted.contains(i)
    });
    progress.start(
        bytes_of(manifest, wanted),
        wanted.count(),
        resumed.count(),
        bytes_of(manifest, &resumed),
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
        if let Some(w) = ctx.swarm.announce(entry) {
            log::info!("announcing the partial file: {w}");
        }
    }
    entry
}

/// The bytes of the chunks in `set`.
fn bytes_of(manifest: &Manifest, set: &ChunkSet) -> u64 {
    set.iter()
        .filter_map(|i| manifest.chunk(i))
        .map(|c| u64::from(c.len))
        .sum()
}

/// What the workers' end means, with `done` of `total` chunks: `None` for
/// a complete file, else the error the download ends with. `ended` is the
/// workers' result (a disk failure, or how long they had waited for a
/// usable peer); a download stopped short by a cancel is cancelled.
fn verdict(
    ended: Result<Duration, DownloadError>,
    done: u32,
    total: u32,
    cancelled: bool,
) -> Option<DownloadError> {
    match ended {
        Err(e) => Some(e),
        Ok(_) if done == total => None,
        Ok(_) if cancelled => Some(DownloadError::Cancelled { done, total }),
        Ok(waited) => Some(DownloadError::Incomplete {
            missing: total - done,
            total,
            waited: waited.as_secs(),
        }),
    }
}

/// Makes the finished file at `path` a complete library entry: the download's
/// own entry, or (if the content was already shared) a fresh one.
fn publish(
    ctx: &Context,
    entry: Option<Arc<SharedFile>>,
    req: &Request,
    path: &Path,
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

fn io_error(path: &Path, source: std::io::Error) -> DownloadError {
    StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAITED: Duration = Duration::from_secs(7);

    #[test]
    fn all_chunks_done_is_success_even_if_cancelled_at_the_end() {
        assert!(verdict(Ok(WAITED), 5, 5, false).is_none());
        assert!(verdict(Ok(WAITED), 5, 5, true).is_none());
    }

    #[test]
    fn short_of_chunks_a_cancel_is_a_cancel_and_else_peers_were_missing() {
        assert!(matches!(
            verdict(Ok(WAITED), 2, 5, true),
            Some(DownloadError::Cancelled { done: 2, total: 5 })
        ));
        assert!(matches!(
            verdict(Ok(WAITED), 2, 5, false),
            Some(DownloadError::Incomplete {
                missing: 3,
                total: 5,
                waited: 7
            })
        ));
    }

    #[test]
    fn a_disk_failure_is_the_end_whatever_else() {
        let disk = || Err(DownloadError::Panicked("disk".into()));
        assert!(matches!(
            verdict(disk(), 5, 5, true),
            Some(DownloadError::Panicked(_))
        ));
    }
}
