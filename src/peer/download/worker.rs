//! One download worker: takes the least-used peer from the [`Scheduler`],
//! fetches chunks over one connection until the queue is empty or the peer
//! fails, verifies each against the manifest, writes it, and switches peers
//! on failure. Its connection is registered with the download's stop signal,
//! so a cancel or the end of the download interrupts it at once.

use std::sync::Arc;

use super::manifest::connect_peer;
use super::progress::Progress;
use super::scheduler::{Fault, Lease, Next, Scheduler};
use crate::error::{Error, Result};
use crate::manifest::{Chunk, FileId, Manifest};
use crate::net::rate::RateCap;
use crate::net::stop::StopSignal;
use crate::peer::library::SharedFile;
use crate::protocol::{Connection, PeerRequest};
use crate::storage::{PartialFile, StoreError};

/// Everything the workers of one download share.
pub struct Job<'a> {
    pub id: FileId,
    pub manifest: &'a Manifest,
    pub partial: &'a PartialFile,
    /// The library's entry for this download, whose chunk set grows as
    /// chunks are written (`None` if the file is already shared complete).
    pub entry: Option<&'a Arc<SharedFile>>,
    pub scheduler: &'a Scheduler,
    pub rate: &'a RateCap,
    pub progress: &'a Progress,
    pub stop: &'a Arc<StopSignal>,
}

/// Runs one worker until the download is over. Returns an error only for
/// local disk failures, which stop the whole download.
pub fn run(job: &Job<'_>) -> Result<(), StoreError> {
    let mut buf = vec![0u8; job.manifest.chunk_size() as usize];
    while let Some(lease) = job.scheduler.pick_peer() {
        fetch_from_peer(job, &lease, &mut buf)?;
    }
    Ok(())
}

/// Fetches chunks from the leased peer until finished or the peer fails.
fn fetch_from_peer(job: &Job<'_>, lease: &Lease<'_>, buf: &mut [u8]) -> Result<(), StoreError> {
    let addr = lease.addr;
    let mut conn = match connect_peer(addr) {
        Ok(conn) => conn,
        Err(e) => {
            log::warn!("cannot use peer {addr}: {e}");
            job.scheduler.strike(lease.peer, Fault::Unreliable);
            note_ban(job, lease);
            return Ok(());
        }
    };
    let _interruptible = match conn.interrupter() {
        Ok(i) => job.stop.guard(i),
        Err(e) => {
            log::debug!("peer {addr}: {e}");
            return Ok(());
        }
    };
    loop {
        let held = match lease.next() {
            Ok(held) => held,
            Err(Next::SwitchPeer | Next::Finished | Next::Chunk(_)) => return Ok(()),
        };
        let index = held.chunk;
        let Some(chunk) = job.manifest.chunk(index) else {
            job.scheduler.abort();
            return Ok(());
        };
        match fetch_chunk(&mut conn, &job.id, chunk, job.rate, buf) {
            Ok(data) if job.manifest.verify_chunk(index, data) => {
                if let Err(e) = job.partial.write_chunk(chunk, data) {
                    job.scheduler.abort();
                    return Err(e);
                }
                if let Some(entry) = job.entry {
                    entry.add_chunk(index);
                }
                if held.complete().is_some() {
                    job.progress.chunk(addr, u64::from(chunk.len));
                    log::info!("Downloaded chunk {index} from {addr}");
                }
                // Else an endgame duplicate: another worker was first.
            }
            Ok(_) => {
                log::warn!(
                    "chunk {index} from {addr} failed verification; not using that peer again"
                );
                held.fail(Fault::BadData);
                note_ban(job, lease);
                return Ok(());
            }
            Err(e) if job.scheduler.is_stopped() => {
                // Our own stop interrupted the connection, not the peer.
                log::debug!("chunk {index} from {addr}: {e} (download already stopped)");
                drop(held);
                return Ok(());
            }
            Err(e) => {
                log::warn!("chunk {index} from {addr}: {e}");
                held.fail(Fault::Unreliable);
                note_ban(job, lease);
                return Ok(());
            }
        }
    }
}

/// Shows the peer as banned in the progress once the scheduler bans it.
fn note_ban(job: &Job<'_>, lease: &Lease<'_>) {
    if job.scheduler.is_banned(lease.peer) {
        job.progress.banned(lease.addr);
    }
}

fn fetch_chunk<'a>(
    conn: &mut Connection,
    id: &FileId,
    chunk: Chunk,
    rate: &RateCap,
    buf: &'a mut [u8],
) -> Result<&'a [u8]> {
    let req = PeerRequest::Get {
        id: *id,
        index: chunk.index,
    };
    conn.write_all(req.encode().as_bytes())?;
    let len = conn.read_payload_header(chunk.len as usize)?;
    if len != chunk.len as usize {
        return Err(Error::Verification(format!(
            "chunk of {len} bytes, expected {}",
            chunk.len
        )));
    }
    let data = &mut buf[..len];
    conn.read_payload_limited(data, rate)?;
    Ok(data)
}
