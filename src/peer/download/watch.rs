//! A download's worker threads and, beside them on the download's own
//! thread, the watch that asks the swarm for more peers and gives up once
//! no peer has been usable for the patience.

use std::thread;
use std::time::{Duration, Instant};

use super::scheduler::Scheduler;
use super::{panic_message, worker, Context, DownloadError};
use crate::bounds::PEER_REFRESH_MAX;

/// Runs `threads` workers to the end, meanwhile watching the swarm (see
/// [`watch`]). A disk error from any worker, or a panic (its chunk is back
/// in the queue through the scheduler's guard), stops the others and is
/// returned; otherwise how long the download had waited for a usable peer
/// when it stopped.
pub(super) fn run_workers(
    job: &worker::Job<'_>,
    threads: usize,
    ctx: &Context,
) -> Result<Duration, DownloadError> {
    thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    // A panic stops the others at once (and `watch` with
                    // them), not when they run out of work; a disk error
                    // does too (`receive_chunk` aborts the download).
                    let _on_panic = AbortOnPanic(job.scheduler);
                    worker::run(job)
                })
            })
            .collect();
        let waited = watch(job, ctx);
        let mut first_error = None;
        for h in handles {
            let error = match h.join() {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => DownloadError::Store(e),
                Err(panic) => DownloadError::Panicked(panic_message(&*panic)),
            };
            log::error!("download of {}: {error}", job.key.id.short());
            first_error.get_or_insert(error);
        }
        first_error.map_or(Ok(waited), Err)
    })
}

/// Aborts the download when a worker's thread unwinds.
struct AbortOnPanic<'a>(&'a Scheduler);

impl Drop for AbortOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.abort();
        }
    }
}

/// While the workers run: asks the swarm for more peers (after 1 s, then
/// at doubling intervals up to [`PEER_REFRESH_MAX`]), which join as they
/// appear. When no peer can give a missing chunk, the download waits for
/// one (shown in its progress), asking again from 1 s on, for up to the
/// context's patience, and then stops. Returns how long it had been
/// waiting at the end (zero if it was not).
fn watch(job: &worker::Job<'_>, ctx: &Context) -> Duration {
    const TICK: Duration = Duration::from_millis(250);
    let mut interval = Duration::from_secs(1);
    let mut next_lookup = Instant::now() + interval;
    let mut waiting: Option<Instant> = None;
    while !job.stop.wait_timeout(TICK) {
        let now = Instant::now();
        if job.scheduler.usable().peers == 0 {
            let since = *waiting.get_or_insert_with(|| {
                job.progress.set_waiting(true);
                interval = Duration::from_secs(1);
                next_lookup = now;
                now
            });
            if now - since >= ctx.patience {
                log::info!(
                    "download of {}: no usable peer for {:?}",
                    job.key.id.short(),
                    now - since
                );
                job.scheduler.abort();
                return now - since;
            }
        } else if waiting.take().is_some() {
            job.progress.set_waiting(false);
        }
        if now >= next_lookup {
            let added = job.scheduler.add_peers(&ctx.swarm.peers(&job.key.listed()));
            if added > 0 {
                log::info!("download of {}: {added} more peer(s)", job.key.id.short());
            }
            interval = (interval * 2).min(PEER_REFRESH_MAX);
            next_lookup = Instant::now() + interval;
        }
    }
    waiting.map_or(Duration::ZERO, |since| since.elapsed())
}
