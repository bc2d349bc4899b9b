//! Picking up where the last run left off (see [`memory`](super::memory)):
//! sharing again what was shared, without hashing what did not change, and
//! resuming the downloads that did not finish, when asked. What happened is
//! returned; the front words it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::background::{self, Started};
use super::memory::{secret_of, Unfinished};
use super::{hash, known, Peer, PeerError};
use crate::manifest::FileId;
use crate::net::stop::StopSignal;
use crate::protocol::message::IdPrefix;

/// What [`restore_shares`] did.
#[derive(Debug, Default)]
pub struct Restored {
    /// Files shared again.
    pub again: usize,
    /// Of those, the ones hashed again (changed since).
    pub rehashed: usize,
    /// Files not shared again, and why, in the order they were tried.
    pub failed: Vec<(PathBuf, PeerError)>,
    /// Remembered files that are gone: forgotten, not shared again.
    pub gone: Vec<PathBuf>,
}

/// Shares again every file the last run shared, in one batch: one tracker
/// connection, one rewrite of `shares.json` (none if nothing changed).
pub fn restore_shares(peer: &Peer) -> Restored {
    let mut restored = Restored::default();
    let Some(memory) = peer.memory() else {
        return restored;
    };
    let (mut gone, mut batch) = (Vec::new(), Vec::new());
    for share in memory.shares() {
        let secret = match secret_of(&share) {
            Ok(secret) => secret,
            Err(e) => {
                restored.failed.push((share.path, e.into()));
                continue;
            }
        };
        // One `stat` a share: whether it is there, and whether it changed.
        let meta = match std::fs::metadata(&share.path) {
            Ok(meta) if meta.is_file() => meta,
            _ => {
                gone.push(share);
                continue;
            }
        };
        let hashed = match memory.unchanged_manifest(&share, &meta) {
            Some(manifest) => known(&share.path, &share.name, manifest, secret),
            None => {
                restored.rehashed += 1;
                hash(&share.path, secret.is_some(), &|_| {})
            }
        };
        match hashed {
            Ok(h) => batch.push(h),
            Err(e) => restored.failed.push((share.path, e)),
        }
    }
    let paths: Vec<_> = batch.iter().map(|h| h.path.clone()).collect();
    for (path, result) in paths.into_iter().zip(peer.publish_all(batch).files) {
        match result {
            Ok(_) => restored.again += 1,
            Err(e) => restored.failed.push((path, e)),
        }
    }
    if !gone.is_empty() {
        let ids: Vec<FileId> = gone.iter().filter_map(|s| s.id.parse().ok()).collect();
        memory.forget_shares(&ids);
        restored.gone = gone.into_iter().map(|s| s.path).collect();
    }
    restored
}

/// The downloads the last runs left unfinished, less those running now.
pub fn unfinished(peer: &Peer) -> Vec<Unfinished> {
    let Some(memory) = peer.memory() else {
        return Vec::new();
    };
    let running = peer.downloads().running();
    memory
        .unfinished()
        .into_iter()
        .filter(|u| !running.iter().any(|r| r.id().to_hex() == u.id))
        .collect()
}

/// The unfinished downloads `resume [NAME|ID]` starts again: all, or
/// those `which` names (by name or id prefix).
pub fn chosen(peer: &Peer, which: Option<&str>) -> Vec<Unfinished> {
    let prefix = which.and_then(|w| w.parse::<IdPrefix>().ok());
    let by_id = |u: &Unfinished| {
        let id = u.id.parse::<FileId>().ok();
        prefix
            .as_ref()
            .zip(id)
            .is_some_and(|(p, id)| p.matches(&id))
    };
    unfinished(peer)
        .into_iter()
        .filter(|u| which.is_none_or(|w| u.name == w || by_id(u)))
        .collect()
}

/// Starts `u` again where it left off (its look-up stopped by `stop`);
/// `Ok(None)` if its output exists meanwhile (finished some other way:
/// forgotten, not started).
pub fn resume_one(
    peer: &Peer,
    u: &Unfinished,
    stop: &Arc<StopSignal>,
) -> Result<Option<Started>, PeerError> {
    if u.out.symlink_metadata().is_ok() {
        if let Some(memory) = peer.memory() {
            memory.finished(&u.out);
        }
        return Ok(None);
    }
    background::start(peer, &u.target, Some(Path::new(&u.out)), &u.only, stop).map(Some)
}
