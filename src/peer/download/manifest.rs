//! Getting a file's manifest from whichever peer delivers it first: peers
//! are asked in turn, a new one every [`MANIFEST_HEDGE`] (at once when one
//! fails), up to [`MANIFEST_PARALLEL`] at a time, so one that trickles or
//! never answers costs a fraction of a second, not its timeouts. A manifest
//! counts if it hashes to the id, decodes canonically, and declares a size
//! someone claimed (the tracker or the link): a peer that sends anything
//! else is not used again in this download. A peer that says `busy` is
//! asked again after a pause, never counted against (a sole seeder at its
//! caps still gives its manifest once it has room); one that cannot be
//! reached or does not answer is only benched for the download, not banned.

use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::scheduler::busy_pause;
use super::DownloadError;
use crate::bounds::{CONNECT_TIMEOUT, MANIFEST_HEDGE, MANIFEST_PARALLEL, MAX_MANIFEST_LEN};
use crate::error::{Error, Result};
use crate::manifest::{FileId, Manifest};
use crate::net::stop::{StopGuard, StopSignal};
use crate::net::tls::Tls;
use crate::peer::locate::Source;
use crate::private::{listed_id, Secret, EXPORTER_LABEL};
use crate::protocol::message::{hello_line, parse_hello_reply, OLDEST_VERSION, PROTOCOL_VERSION};
use crate::protocol::{Connection, PeerRequest};

/// What a connection is for: a file, and for a private share the secret
/// each connection proves before asking for it.
#[derive(Clone, Copy, Debug)]
pub struct FileKey {
    pub id: FileId,
    pub secret: Option<Secret>,
}

impl FileKey {
    /// The id the network knows the file by (the tracker, the DHT, and
    /// every request to a peer): its id, or for a private share its blinded
    /// id, so that a private share's real id never crosses the wire (a
    /// peer a hostile tracker lists learns nothing it could look up).
    pub fn listed(&self) -> FileId {
        listed_id(&self.id, self.secret.as_ref())
    }
}

/// A connection to a peer, ready for requests: the protocol version it
/// speaks, and its registration with the stop signal it was opened under.
pub struct PeerConn {
    pub conn: Connection,
    pub version: u32,
    _stop: StopGuard,
}

/// Connects to a peer over TLS (pinning its id if known), says `HELLO` and,
/// for a private share, proves its secret on this session (`AUTH`).
/// Returns the connection with the protocol version the peer speaks (an
/// older peer refuses ours and is asked again with version 1). The socket
/// is registered with `stop` from the moment it is connected, so stopping
/// interrupts a handshake or `HELLO` that a silent peer never answers.
pub fn connect_peer(
    peer: Source,
    tls: &Tls,
    key: &FileKey,
    stop: &Arc<StopSignal>,
) -> Result<PeerConn> {
    let addr = peer.addr.to_string();
    let (mut conn, guard) =
        Connection::connect_tls_stoppable(&addr, tls, peer.id, CONNECT_TIMEOUT, stop)?;
    conn.set_reply_timeout(CONNECT_TIMEOUT);
    let version = match conn.request(&hello_line()) {
        Ok(reply) => parse_hello_reply(&reply)?.min(PROTOCOL_VERSION),
        Err(Error::Remote(_)) => {
            let v1 = PeerRequest::Hello {
                version: OLDEST_VERSION,
            };
            conn.request(&v1.encode())?;
            OLDEST_VERSION
        }
        Err(e) => return Err(e),
    };
    if let Some(secret) = &key.secret {
        // Always TLS between peers, so there is always an exporter.
        let listed = key.listed();
        let exporter = conn
            .exporter(EXPORTER_LABEL, &listed.0)
            .ok_or(Error::Verification(
                "no TLS session to prove a secret on".into(),
            ))?;
        let proof = secret.proof(&listed, &exporter);
        conn.request(&PeerRequest::Auth { id: listed, proof }.encode())?;
    }
    conn.set_reply_timeout(crate::bounds::IO_TIMEOUT);
    Ok(PeerConn {
        conn,
        version,
        _stop: guard,
    })
}

/// What [`fetch_manifest`] found: the manifest, and what the peers did.
pub struct Fetched {
    pub manifest: Manifest,
    /// Peers that did not fail: the one that delivered, those not asked or
    /// not done yet, and those that were busy.
    pub usable: Vec<Source>,
    /// Peers that sent a false manifest: not to be used in this download.
    pub lied: Vec<Source>,
    /// Peers that could not be reached or did not answer (or stayed busy
    /// past the patience): worth another try later.
    pub failed: Vec<Source>,
}

/// A peer to ask for the manifest, not before `not_before`, and how many
/// times in a row it has said `busy`.
#[derive(Clone, Copy)]
struct Ask {
    peer: Source,
    not_before: Instant,
    busy: u32,
}

/// Fetches the manifest of `key.id` (see the module docs). `sizes` are the
/// sizes claimed for it (empty: no check). A peer that says `busy` is asked
/// again after a pause (1 s, doubling), for as long as `patience` lasts.
/// Gives up early once `stop` is stopped.
pub fn fetch_manifest(
    key: &FileKey,
    sizes: &[u64],
    peers: &[Source],
    tls: &Tls,
    stop: &Arc<StopSignal>,
    patience: Duration,
) -> Result<Fetched, DownloadError> {
    // The others' connections are interrupted once a manifest is in; their
    // threads are not waited for (each ends within its own timeouts).
    let phase = StopSignal::new();
    let (tx, rx) = mpsc::channel();
    let sizes = Arc::new(sizes.to_vec());
    let started = Instant::now();
    let mut queue: Vec<Ask> = peers
        .iter()
        .map(|&peer| Ask {
            peer,
            not_before: started,
            busy: 0,
        })
        .collect();
    let (mut lied, mut failed) = (Vec::new(), Vec::new());
    let (mut running, mut launch_at) = (0, started);
    let found = loop {
        if stop.is_stopped() {
            break None;
        }
        let now = Instant::now();
        let due = queue.iter().position(|a| a.not_before <= now);
        if let (Some(at), true) = (due, running < MANIFEST_PARALLEL && now >= launch_at) {
            let ask = queue.remove(at);
            let (key, tx, tls) = (*key, tx.clone(), tls.clone());
            let (sizes, signal) = (Arc::clone(&sizes), Arc::clone(&phase));
            let spawned = thread::Builder::new()
                .name("manifest".into())
                .spawn(move || {
                    let _ = tx.send((ask, manifest_from(ask.peer, &key, &sizes, &tls, &signal)));
                });
            if let Err(e) = spawned {
                phase.stop();
                return Err(DownloadError::Spawn(e));
            }
            running += 1;
            launch_at = now + MANIFEST_HEDGE;
        }
        if running == 0 && queue.is_empty() {
            break None;
        }
        // Until the next launch may be due, or a reply; at most 100 ms, to
        // see a stop.
        let next = queue
            .iter()
            .map(|a| a.not_before.max(launch_at))
            .min()
            .filter(|_| running < MANIFEST_PARALLEL);
        let wait = next.map_or(Duration::from_millis(100), |t| {
            t.saturating_duration_since(now)
                .min(Duration::from_millis(100))
        });
        match rx.recv_timeout(wait.max(Duration::from_millis(1))) {
            Ok((_, Ok(manifest))) => break Some(manifest),
            Ok((ask, Err(e))) => {
                running -= 1;
                launch_at = Instant::now(); // the next one at once
                let pause = busy_pause(ask.busy);
                match e {
                    Error::Busy if started.elapsed() + pause <= patience => {
                        log::debug!(
                            "manifest from {}: busy; asking again in {pause:?}",
                            ask.peer.addr
                        );
                        queue.push(Ask {
                            not_before: Instant::now() + pause,
                            busy: ask.busy + 1,
                            ..ask
                        });
                    }
                    Error::Verification(_) => {
                        log::warn!("manifest from {}: {e}; not using that peer", ask.peer.addr);
                        lied.push(ask.peer);
                    }
                    _ => {
                        // Unreachable or gone: routine among peers.
                        log::info!("manifest from {}: {e}", ask.peer.addr);
                        failed.push(ask.peer);
                    }
                }
            }
            Err(_) => {}
        }
    };
    phase.stop();
    let Some(manifest) = found else {
        return Err(DownloadError::NoManifest {
            id: key.id,
            tried: lied.len() + failed.len(),
        });
    };
    let usable = peers
        .iter()
        .filter(|p| !lied.contains(p) && !failed.contains(p))
        .copied()
        .collect();
    Ok(Fetched {
        manifest,
        usable,
        lied,
        failed,
    })
}

/// Asks `peer` for the manifest and checks it. Anything wrong with what it
/// sent in reply (a length over the bound, bytes that do not hash to the
/// id or do not decode, a size nobody claimed) is [`Error::Verification`]:
/// a lie, unlike a failure to connect or answer.
fn manifest_from(
    peer: Source,
    key: &FileKey,
    sizes: &[u64],
    tls: &Tls,
    stop: &Arc<StopSignal>,
) -> Result<Manifest> {
    let id = &key.id;
    // Held to the end: the stop signal interrupts it once a manifest is in.
    let mut connected = connect_peer(peer, tls, key, stop)?;
    let conn = &mut connected.conn;
    let listed = key.listed();
    conn.write_all(PeerRequest::Manifest { id: listed }.encode().as_bytes())?;
    let len = conn
        .read_payload_header(MAX_MANIFEST_LEN)
        .map_err(|e| match e {
            Error::Protocol(e) => Error::Verification(format!("manifest reply: {e}")),
            other => other,
        })?;
    let mut bytes = vec![0; len];
    conn.read_payload(&mut bytes)?;
    if Sha256::digest(&bytes).as_slice() != id.0 {
        return Err(Error::Verification(
            "manifest does not hash to the file id".into(),
        ));
    }
    let manifest = Manifest::decode(&bytes).map_err(|e| Error::Verification(e.to_string()))?;
    if !sizes.is_empty() && !sizes.contains(&manifest.size()) {
        return Err(Error::Verification(format!(
            "manifest declares {} bytes, but the file was listed as {}",
            manifest.size(),
            sizes
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" or ")
        )));
    }
    Ok(manifest)
}
