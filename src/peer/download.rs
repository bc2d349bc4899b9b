//! One download: fetch the manifest from a peer and check it against the id,
//! then a fixed pool of worker threads takes chunk indexes from the
//! [`Scheduler`] and fetches them over one reused connection per worker,
//! spread across every peer. Each chunk is verified against the manifest
//! before it is written at its offset in the [`PartialFile`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use thiserror::Error;

use super::scheduler::{Fault, Next, PeerStats, Scheduler};
use crate::bounds::{CONNECT_TIMEOUT, MAX_MANIFEST_LEN};
use crate::error::{Error, Result};
use crate::manifest::{Chunk, FileId, Manifest};
use crate::net::rate::RateCap;
use crate::protocol::{Connection, PeerRequest};
use crate::store::{PartialFile, StoreError};
use crate::PROTOCOL_VERSION;

#[derive(Debug, Error)]
pub enum DownloadError {
    #[error("no peer supplied a valid manifest for {id} (tried {tried})")]
    NoManifest { id: FileId, tried: usize },
    #[error("{missing} of {total} chunks could not be fetched from any peer; progress is kept for a retry")]
    Incomplete { missing: u32, total: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A chunk just arrived: for progress display, status and verbose logs.
pub struct ChunkEvent {
    pub index: u32,
    pub from: SocketAddr,
    /// Chunks present and verified so far, of `total`.
    pub done: u32,
    pub total: u32,
    /// This chunk's length.
    pub bytes: u64,
    /// Bytes present and verified so far, including chunks resumed from an
    /// earlier attempt, of `size`.
    pub done_bytes: u64,
    pub size: u64,
}

#[derive(Debug)]
pub struct Report {
    pub path: PathBuf,
    pub bytes: u64,
    pub elapsed: Duration,
    /// Chunks found already verified in a partial file from an earlier try.
    pub resumed: u32,
    pub peers: Vec<PeerStats>,
}

/// Connects to a peer and says `HELLO`.
pub fn connect_peer(addr: SocketAddr) -> Result<Connection> {
    let mut conn = Connection::connect_addr(addr, CONNECT_TIMEOUT)?;
    conn.write_all(
        PeerRequest::Hello {
            version: PROTOCOL_VERSION,
        }
        .encode()
        .as_bytes(),
    )?;
    conn.read_reply()?;
    Ok(conn)
}

/// Fetches the manifest of `id` from the first peer whose manifest hashes to
/// `id`. Returns it with the peers that did not lie about it.
pub fn fetch_manifest(
    id: &FileId,
    peers: &[SocketAddr],
) -> Result<(Manifest, Vec<SocketAddr>), DownloadError> {
    for (i, &addr) in peers.iter().enumerate() {
        match manifest_from(addr, id) {
            Ok(manifest) => {
                let mut usable = peers.to_vec();
                usable.drain(..i);
                return Ok((manifest, usable));
            }
            Err(e) => log::warn!("manifest from {addr}: {e}"),
        }
    }
    Err(DownloadError::NoManifest {
        id: *id,
        tried: peers.len(),
    })
}

fn manifest_from(addr: SocketAddr, id: &FileId) -> Result<Manifest> {
    let mut conn = connect_peer(addr)?;
    conn.write_all(PeerRequest::Manifest { id: *id }.encode().as_bytes())?;
    let len = conn.read_payload_header(MAX_MANIFEST_LEN)?;
    let mut bytes = vec![0; len];
    conn.read_payload(&mut bytes)?;
    if Sha256::digest(&bytes).as_slice() != id.0 {
        return Err(Error::Remote(
            "manifest does not hash to the file id".into(),
        ));
    }
    Ok(Manifest::decode(&bytes)?)
}

/// Everything the workers share.
struct Job<'a> {
    id: FileId,
    manifest: &'a Manifest,
    partial: &'a PartialFile,
    scheduler: &'a Scheduler,
    limit: &'a RateCap,
    on_chunk: &'a (dyn Fn(ChunkEvent) + Sync),
    /// Bytes present and verified, for [`ChunkEvent::done_bytes`].
    done_bytes: AtomicU64,
}

/// Downloads `manifest` (file `id`) from `peers` to `out` with `workers`
/// threads. `out` must not exist; it appears only once complete.
pub fn download(
    id: &FileId,
    manifest: &Manifest,
    peers: &[SocketAddr],
    out: &Path,
    workers: usize,
    limit: &RateCap,
    on_chunk: &(dyn Fn(ChunkEvent) + Sync),
) -> Result<Report, DownloadError> {
    let started = Instant::now();
    let (partial, have) = PartialFile::open(out, id, manifest)?;
    let missing: Vec<u32> = (0..manifest.chunk_count())
        .filter(|&i| !have[i as usize])
        .collect();
    let resumed = manifest.chunk_count() - missing.len() as u32;
    let resumed_bytes: u64 = (0..manifest.chunk_count())
        .filter(|&i| have[i as usize])
        .filter_map(|i| manifest.chunk(i))
        .map(|c| u64::from(c.len))
        .sum();
    let threads = workers.clamp(1, missing.len().max(1));
    let scheduler = Scheduler::new(missing, manifest.chunk_count(), peers);
    let job = Job {
        id: *id,
        manifest,
        partial: &partial,
        scheduler: &scheduler,
        limit,
        on_chunk,
        done_bytes: AtomicU64::new(resumed_bytes),
    };
    let disk_error = thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(|| worker(&job))).collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().ok().and_then(|r| r.err()))
            .next()
    });
    if let Some(e) = disk_error {
        return Err(e.into());
    }
    let (done, total, peers) = scheduler.outcome();
    if done < total {
        return Err(DownloadError::Incomplete {
            missing: total - done,
            total,
        });
    }
    let path = partial.finish()?;
    Ok(Report {
        path,
        bytes: manifest.size(),
        elapsed: started.elapsed(),
        resumed,
        peers,
    })
}

/// One worker: connect to the least-used peer, fetch chunks over that
/// connection until the queue is empty, switch peers on failure. Returns an
/// error only for local disk failures, which stop the whole download.
fn worker(job: &Job<'_>) -> Result<(), StoreError> {
    let mut buf = vec![0u8; job.manifest.chunk_size() as usize];
    while let Some((peer, addr)) = job.scheduler.pick_peer() {
        let result = serve_from_peer(job, peer, addr, &mut buf);
        job.scheduler.release(peer);
        result?;
    }
    Ok(())
}

/// Fetches chunks from one peer until finished or the peer fails.
fn serve_from_peer(
    job: &Job<'_>,
    peer: usize,
    addr: SocketAddr,
    buf: &mut [u8],
) -> Result<(), StoreError> {
    let mut conn = match connect_peer(addr) {
        Ok(conn) => conn,
        Err(e) => {
            log::warn!("cannot use peer {addr}: {e}");
            job.scheduler.strike(peer, Fault::Unreliable);
            return Ok(());
        }
    };
    let _attached = job.scheduler.attach(conn.stream());
    loop {
        let index = match job.scheduler.next_chunk(peer) {
            Next::Chunk(index) => index,
            Next::SwitchPeer | Next::Finished => return Ok(()),
        };
        let Some(chunk) = job.manifest.chunk(index) else {
            job.scheduler.abort();
            return Ok(());
        };
        match fetch_chunk(&mut conn, &job.id, chunk, job.limit, buf) {
            Ok(data) if job.manifest.verify_chunk(index, data) => {
                if let Err(e) = job.partial.write_chunk(chunk, data) {
                    job.scheduler.abort();
                    return Err(e);
                }
                let Some((done, total)) = job.scheduler.complete(peer, index) else {
                    continue; // an endgame duplicate: another worker was first
                };
                let bytes = u64::from(chunk.len);
                let done_bytes = job.done_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
                (job.on_chunk)(ChunkEvent {
                    index,
                    from: addr,
                    done,
                    total,
                    bytes,
                    done_bytes,
                    size: job.manifest.size(),
                });
            }
            Ok(_) => {
                log::warn!(
                    "chunk {index} from {addr} failed verification; not using that peer again"
                );
                job.scheduler.fail(peer, index, Fault::BadData);
                return Ok(());
            }
            Err(e) if job.scheduler.is_stopped() => {
                // Our own shutdown of the remaining sockets, not the peer.
                log::debug!("chunk {index} from {addr}: {e} (download already stopped)");
                job.scheduler.fail(peer, index, Fault::Unreliable);
                return Ok(());
            }
            Err(e) => {
                log::warn!("chunk {index} from {addr}: {e}");
                job.scheduler.fail(peer, index, Fault::Unreliable);
                return Ok(());
            }
        }
    }
}

fn fetch_chunk<'a>(
    conn: &mut Connection,
    id: &FileId,
    chunk: Chunk,
    limit: &RateCap,
    buf: &'a mut [u8],
) -> Result<&'a [u8]> {
    let req = PeerRequest::Get {
        id: *id,
        index: chunk.index,
    };
    conn.write_all(req.encode().as_bytes())?;
    let len = conn.read_payload_header(chunk.len as usize)?;
    if len != chunk.len as usize {
        return Err(Error::Remote(format!(
            "chunk of {len} bytes, expected {}",
            chunk.len
        )));
    }
    let data = &mut buf[..len];
    conn.read_payload_limited(data, limit)?;
    Ok(data)
}
