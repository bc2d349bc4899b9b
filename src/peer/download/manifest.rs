//! Getting a file's manifest from whichever peer delivers it first (whom to
//! ask when is [`Racing`]'s to decide), so that one that trickles or never
//! answers costs a fraction of a second, not its timeouts. A manifest
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

use super::racing::Racing;
use super::DownloadError;
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::net::stop::StopSignal;
use crate::peer::dial::{Dialer, FileKey, PeerAddr, PeerClient};

/// What [`fetch_manifest`] found: the manifest, and what the peers did.
pub struct Fetched {
    pub manifest: Manifest,
    /// Peers that did not fail: the one that delivered, those not asked or
    /// not done yet, and those that were busy.
    pub usable: Vec<PeerAddr>,
    /// Peers that sent a false manifest: not to be used in this download.
    pub lied: Vec<PeerAddr>,
    /// Peers that could not be reached or did not answer (or stayed busy
    /// past the patience): worth another try later.
    pub failed: Vec<PeerAddr>,
}

/// Fetches the manifest of `key.id` (see the module docs). `sizes` are the
/// sizes claimed for it (empty: no check). A peer that says `busy` is asked
/// again for as long as `patience` lasts. Gives up early once `stop` is
/// stopped.
pub fn fetch_manifest(
    key: &FileKey,
    sizes: &[u64],
    peers: &[PeerAddr],
    dialer: &Arc<dyn Dialer>,
    stop: &Arc<StopSignal>,
    patience: Duration,
) -> Result<Fetched, DownloadError> {
    // The others' connections are interrupted once a manifest is in; their
    // threads are not waited for (each ends within its own timeouts).
    let phase = StopSignal::new();
    let (tx, rx) = mpsc::channel();
    let sizes = Arc::new(sizes.to_vec());
    let mut racing = Racing::new(peers, Instant::now(), patience);
    let mut refused = None;
    let found = loop {
        if stop.is_stopped() {
            break None;
        }
        if let Some(ask) = racing.launch(Instant::now()) {
            let (key, tx, dialer) = (*key, tx.clone(), Arc::clone(dialer));
            let (sizes, signal) = (Arc::clone(&sizes), Arc::clone(&phase));
            let spawned = thread::Builder::new()
                .name("manifest".into())
                .spawn(move || {
                    let got = manifest_from(&*dialer, &ask.peer, &key, &sizes, &signal);
                    let _ = tx.send((ask, got));
                });
            if let Err(e) = spawned {
                phase.stop();
                return Err(DownloadError::Spawn(e));
            }
        }
        if racing.exhausted() {
            break None;
        }
        match rx.recv_timeout(racing.wait(Instant::now())) {
            Ok((_, Ok(manifest))) => break Some(manifest),
            Ok((ask, Err(e))) => {
                if let Error::Verification(why) = &e {
                    refused = Some(why.clone());
                }
                racing.failed(ask, &e, Instant::now())
            }
            Err(_) => {}
        }
    };
    phase.stop();
    let Some(manifest) = found else {
        return Err(DownloadError::NoManifest {
            id: key.id,
            tried: racing.tried(),
            refused,
        });
    };
    Ok(Fetched {
        manifest,
        usable: racing.usable(peers),
        lied: racing.lied,
        failed: racing.failed,
    })
}

/// Asks `peer` for the manifest and checks it. Anything wrong with what it
/// sent in reply (a length over the bound, bytes that do not hash to the
/// id or do not decode, a size nobody claimed) is [`Error::Verification`]:
/// a lie, unlike a failure to connect or answer.
fn manifest_from(
    dialer: &dyn Dialer,
    peer: &PeerAddr,
    key: &FileKey,
    sizes: &[u64],
    stop: &Arc<StopSignal>,
) -> Result<Manifest> {
    // Held to the end: the stop signal interrupts it once a manifest is in.
    let mut client = PeerClient::open(dialer, peer, key, stop)?;
    let bytes = client.manifest(&key.listed())?;
    check(&bytes, key, sizes)
}

/// The manifest in `bytes`, if it is the one of `key.id` and declares one
/// of `sizes` (any size if there are none).
fn check(bytes: &[u8], key: &FileKey, sizes: &[u64]) -> Result<Manifest> {
    if Sha256::digest(bytes).as_slice() != key.id.0 {
        return Err(Error::Verification(
            "manifest does not hash to the file id".into(),
        ));
    }
    let manifest = Manifest::decode(bytes).map_err(|e| Error::Verification(e.to_string()))?;
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
