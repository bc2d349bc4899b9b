//! One download worker: takes a peer from the [`Scheduler`] and fetches
//! chunks over one connection to it, pipelined, until the peer fails, has
//! nothing more to give, or the download ends; then takes another peer.
//!
//! On the connection: `HELLO 2`, then `HAVE` (our chunk map for theirs)
//! every `HAVE_INTERVAL`, and `GET`s for what the scheduler picks among
//! what the peer offers, several in flight (one at first, one more per
//! verified chunk, up to [`PIPELINE_DEPTH`](crate::bounds::PIPELINE_DEPTH);
//! see `pipeline`). Replies come back in request order. A complete peer,
//! which promises fresh chunks a few at a time, is asked `HAVE` again
//! before its promise runs out (see `asking`). Each chunk is verified
//! against the manifest before it is written and added to the library's
//! chunk set (from which this peer serves it onwards), then counted in the
//! download's [`Progress`] (one short lock), under the path this
//! connection was made by ([`PeerClient::path`]: direct, punched or
//! relayed).
//! The connection is registered with the download's stop signal from the
//! moment it is connected (before the TLS handshake and `HELLO`), so a
//! cancel or the end of the download interrupts it at once, even one still
//! waiting for a silent peer to answer.
//!
//! A worker whose peer has nothing it needs (nothing offered, or only
//! chunks others are fetching) for
//! [`IDLE_SWITCH`](crate::bounds::IDLE_SWITCH) leaves it for a peer that
//! has no worker; only a chunk counts as something, not the peer's
//! periodic `HAVE` reply.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use super::pipeline::{Idle, Pipeline};
use super::progress::Progress;
use super::scheduler::{Fault, Held, Lease, Next, Scheduler};
use super::target::{Tally, Target};
use crate::bounds::MAX_GETS_IN_FLIGHT;
use crate::error::{Error, Result};
use crate::manifest::{Chunk, Manifest};
use crate::net::rate::RateCap;
use crate::net::stop::StopSignal;
use crate::peer::dial::{Dialer, FileKey, Got, Have, PeerClient};
use crate::peer::library::SharedFile;

use crate::storage::StoreError;

/// Everything the workers of one download share.
pub struct Job<'a> {
    /// The id and, for a private share, the secret each connection proves.
    pub key: FileKey,
    pub manifest: &'a Manifest,
    pub partial: &'a Target,
    /// A folder's files, counted as they become whole.
    pub files: Option<&'a Tally>,
    /// The library's entry for this download, whose chunk set grows as
    /// chunks are written (`None` if the file is already shared complete).
    pub entry: Option<&'a Arc<SharedFile>>,
    pub scheduler: &'a Scheduler,
    pub rate: &'a RateCap,
    /// How workers reach their peers.
    pub dialer: &'a dyn Dialer,
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

/// A request sent and not answered yet.
enum Pending<'a> {
    Get(Held<'a>, Chunk),
    Have,
}

/// Fetches chunks from the leased peer until it fails, is banned, stays
/// idle while other peers wait for a worker, or the download ends. When to
/// ask what is [`Pipeline`]'s to decide; this loop does the asking.
fn fetch_from_peer(job: &Job<'_>, lease: &Lease<'_>, buf: &mut [u8]) -> Result<(), StoreError> {
    // Registered with the stop signal until it drops, at the return.
    let Some(mut client) = open(job, lease) else {
        return Ok(());
    };
    let client = &mut client;
    let version = client.version();
    // What requests call the file (a private share by its blinded id).
    let listed = job.key.listed();
    if version >= 2 {
        // What it offers, before asking it for anything.
        let offers = client
            .send_have(&listed, &job.scheduler.done())
            .and_then(|()| client.read_have(job.manifest.chunk_count(), job.rate));
        if !take_offers(job, lease, offers) {
            return Ok(());
        }
    }
    let mut pending: VecDeque<Pending<'_>> = VecDeque::new();
    let mut pipeline = Pipeline::new(Instant::now());
    loop {
        // The tracker's row for this peer changed (say it can be dialled
        // now, not only relayed): take what is on the way, then leave, so
        // that the next connection is made the new way.
        let starved = match job.scheduler.moved(lease) {
            true if pending.is_empty() => {
                log::debug!(
                    "peer {}: reached another way now; connecting again",
                    lease.source
                );
                return Ok(());
            }
            true => true,
            false => match send_gets(job, lease, client, &mut pending, &mut pipeline) {
                Some(starved) => starved,
                // What is on the way is given back as `pending` drops.
                None => return Ok(()),
            },
        };
        // See `asking` for when: a seeder is asked before its offer runs out.
        let have_in_flight = pending.iter().any(|p| matches!(p, Pending::Have));
        let have_due = (version >= 2 && !have_in_flight).then(|| {
            let depth = pipeline.depth() as u32;
            pipeline.have_due(job.scheduler.low_on_offers(lease.peer, starved, depth))
        });
        if have_due.is_some_and(|due| Instant::now() >= due) {
            // What is verified here: the entry's set, which (unlike the
            // scheduler's) leaves out chunks `--only` did not want.
            let done = job.entry.map_or_else(|| job.scheduler.done(), |e| e.have());
            if let Err(e) = client.send_have(&listed, &done) {
                log::debug!("HAVE to {}: {e}", lease.source);
                job.scheduler.strike(lease.peer, Fault::Unreliable);
                return Ok(());
            }
            pending.push_back(Pending::Have);
            pipeline.have_sent(Instant::now());
        }
        let Some(next) = pending.pop_front() else {
            // Nothing to ask this peer for, and nothing on the way.
            match pipeline.idle(Instant::now(), have_due, || {
                job.scheduler.others_waiting(lease.peer)
            }) {
                Idle::Leave => return Ok(()),
                Idle::Wait(wait) => job.scheduler.wait_for_change(wait),
            }
            continue;
        };
        match next {
            Pending::Have => {
                let offers = client.read_have(job.manifest.chunk_count(), job.rate);
                if !take_offers(job, lease, offers) {
                    return Ok(());
                }
                pipeline.have_answered(job.scheduler.free_offers(lease.peer, 1));
            }
            Pending::Get(held, chunk) => {
                if !receive_chunk(job, lease, client, held, chunk, buf)? {
                    return Ok(());
                }
                pipeline.chunk_received();
            }
        }
    }
}

/// Sends `GET`s until the pipeline is full. Returns whether the peer ran
/// out of chunks to give (`Some(true)`: starved), or `None` if this
/// connection is done (banned meanwhile, the download over, or a failed
/// send).
fn send_gets<'s>(
    job: &Job<'_>,
    lease: &Lease<'s>,
    client: &mut PeerClient,
    pending: &mut VecDeque<Pending<'s>>,
    pipeline: &mut Pipeline,
) -> Option<bool> {
    // In flight: at most the pipeline's depth in whole chunks' bytes (a
    // folder's short last chunks count for what they are), and at most
    // MAX_GETS_IN_FLIGHT requests.
    let budget = pipeline.depth() as u64 * u64::from(job.manifest.chunk_size());
    let (mut gets, mut bytes) = (0, 0u64);
    for p in pending.iter() {
        if let Pending::Get(_, chunk) = p {
            gets += 1;
            bytes += u64::from(chunk.len);
        }
    }
    while gets < MAX_GETS_IN_FLIGHT && bytes < budget {
        match lease.next() {
            Ok(held) => {
                let Some(chunk) = job.manifest.chunk(held.chunk) else {
                    job.scheduler.abort();
                    return None;
                };
                if let Err(e) = client.send_get(&job.key.listed(), chunk) {
                    give_up(job, lease, held, e);
                    return None;
                }
                pending.push_back(Pending::Get(held, chunk));
                pipeline.get_sent();
                gets += 1;
                bytes += u64::from(chunk.len);
            }
            Err(Next::Idle | Next::Chunk(_)) => return Some(true),
            Err(Next::SwitchPeer | Next::Finished) => return None,
        }
    }
    Some(false)
}

/// Connects to the leased peer. A failure is the peer's, as the scheduler
/// counts it (`busy` nothing, a wrong identity a ban, anything else a
/// strike), unless the download stopped meanwhile.
fn open(job: &Job<'_>, lease: &Lease<'_>) -> Option<PeerClient> {
    let addr = &lease.source;
    let within = job.scheduler.connect_timeout(lease.peer);
    match PeerClient::open_within(job.dialer, addr, &job.key, job.stop, within) {
        Ok(client) => Some(client),
        Err(e) if job.scheduler.is_stopped() => {
            log::debug!("peer {addr}: {e} (download already stopped)");
            None
        }
        Err(Error::Busy) => {
            log::debug!("peer {addr} is busy; trying it again later");
            job.scheduler.busy(lease.peer);
            None
        }
        Err(Error::WrongIdentity(e)) => {
            log::warn!("peer {addr}: {e}; not using that address again");
            job.scheduler.strike(lease.peer, Fault::BadData);
            note_ban(job, lease);
            None
        }
        Err(Error::Io(e)) if e.kind() == io::ErrorKind::TimedOut => {
            log::info!("peer {addr}: {e} (within {within:?})");
            job.scheduler.timed_out(lease.peer);
            note_ban(job, lease);
            None
        }
        Err(e) => {
            // Peers come and go (and DHT rows go stale): routine.
            log::info!("cannot use peer {addr}: {e}");
            job.scheduler.strike(lease.peer, Fault::Unreliable);
            note_ban(job, lease);
            None
        }
    }
}

/// Reads the reply to a `GET` of `chunk`, verifies it and writes it.
/// Returns whether the connection is still good for more.
fn receive_chunk(
    job: &Job<'_>,
    lease: &Lease<'_>,
    client: &mut PeerClient,
    held: Held<'_>,
    chunk: Chunk,
    buf: &mut [u8],
) -> Result<bool, StoreError> {
    let addr = lease.source.shown();
    let index = chunk.index;
    match client.read_got(chunk, job.rate, buf) {
        Ok(Got::Chunk(data)) if job.manifest.verify_chunk(index, data) => {
            if let Err(e) = job.partial.write_chunk(chunk, data) {
                job.scheduler.abort();
                return Err(e);
            }
            if let Some(entry) = job.entry {
                entry.add_chunk(index);
            }
            if held.complete().is_some() {
                let complete = job.scheduler.is_complete_peer(lease.peer);
                job.progress
                    .chunk(addr, u64::from(chunk.len), complete, client.path());
                if let (Some(files), Some(tree)) = (job.files, job.manifest.as_tree()) {
                    match files.written(tree, index) {
                        0 => {}
                        whole => job.progress.files_done(whole),
                    }
                }
                log::info!("Downloaded chunk {index} from {addr}");
            }
            // Else an endgame duplicate: another worker was first.
            Ok(true)
        }
        Ok(Got::Chunk(_)) => {
            log::warn!("chunk {index} from {addr} failed verification; not using that peer again");
            held.fail(Fault::BadData);
            note_ban(job, lease);
            Ok(false)
        }
        // Refusals count as failures to answer, as any error does.
        Ok(Got::Busy) => Ok(give_up(job, lease, held, Error::Busy)),
        Ok(Got::NotHere(reason) | Got::Refused(reason)) => {
            Ok(give_up(job, lease, held, Error::Remote(reason)))
        }
        Err(e) => Ok(give_up(job, lease, held, e)),
    }
}

/// A request to the peer failed: unless the download itself stopped, the
/// peer gets a strike and the chunk goes back. Returns `false` (the
/// connection is done).
fn give_up(job: &Job<'_>, lease: &Lease<'_>, held: Held<'_>, e: Error) -> bool {
    let addr = &lease.source;
    if job.scheduler.is_stopped() {
        // Our own stop interrupted the connection, not the peer.
        log::debug!(
            "chunk {} from {addr}: {e} (download already stopped)",
            held.chunk
        );
        drop(held);
    } else {
        match e.is_hangup() {
            true => log::info!("chunk {} from {addr}: {e}", held.chunk),
            false => log::warn!("chunk {} from {addr}: {e}", held.chunk),
        }
        held.fail(Fault::Unreliable);
        note_ban(job, lease);
    }
    false
}

/// Shows the peer as banned or benched in the progress if the scheduler
/// has just put it so.
fn note_ban(job: &Job<'_>, lease: &Lease<'_>) {
    if let Some(forever) = job.scheduler.ban_state(lease.peer) {
        job.progress.banned(lease.source.shown(), forever);
    }
}

/// Records what a peer's `HAVE` reply offers. A failed reply strikes the
/// peer (a hang-up is routine, anything else worth a warning) and returns
/// false: this connection is done.
fn take_offers(job: &Job<'_>, lease: &Lease<'_>, reply: Result<Have>) -> bool {
    match reply {
        Ok(Have { set, complete }) => {
            job.scheduler.set_offers(lease.peer, set, complete);
            true
        }
        Err(e) => {
            if !job.scheduler.is_stopped() {
                let addr = &lease.source;
                match e.is_hangup() {
                    true => log::info!("peer {addr} hung up instead of answering HAVE"),
                    false => log::warn!("peer {addr} answered HAVE with {e}"),
                }
                job.scheduler.strike(lease.peer, Fault::Unreliable);
                note_ban(job, lease);
            }
            false
        }
    }
}
