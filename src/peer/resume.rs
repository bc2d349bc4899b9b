//! Picking up where the last run left off (see [`memory`](super::memory)):
//! sharing again what was shared, without hashing what did not change, and
//! resuming the downloads that did not finish, when asked.

use std::path::Path;

use super::background;
use super::memory::{secret_of, Share, Unfinished};
use super::{hash, known, Peer, PeerError};
use crate::manifest::FileId;
use crate::protocol::message::IdPrefix;
use crate::ui::count;

/// Shares again every file the last run shared; returns the lines to print
/// (one summary, and one for each file that could not be shared as it
/// was).
pub fn restore_shares(peer: &Peer) -> Vec<String> {
    let Some(memory) = peer.memory() else {
        return Vec::new();
    };
    let (mut again, mut rehashed, mut lines, mut gone) = (0, 0, Vec::new(), Vec::new());
    // Shared again in one batch: one tracker connection, one rewrite of
    // shares.json (none if nothing changed).
    let mut batch = Vec::new();
    for share in memory.shares() {
        let secret = match secret_of(&share) {
            Ok(secret) => secret,
            Err(e) => {
                lines.push(format!("not sharing {} again: {e}", share.path.display()));
                continue;
            }
        };
        if !share.path.is_file() {
            gone.push(share);
            continue;
        }
        let hashed = match memory.unchanged_manifest(&share) {
            Some(manifest) => known(&share.path, &share.name, manifest, secret),
            None => {
                rehashed += 1;
                hash(&share.path, secret.is_some(), &|_| {})
            }
        };
        match hashed {
            Ok(h) => batch.push(h),
            Err(e) => lines.push(format!("not sharing {} again: {e}", share.path.display())),
        }
    }
    let paths: Vec<_> = batch.iter().map(|h| h.path.clone()).collect();
    for (path, result) in paths.iter().zip(peer.publish_all(batch).files) {
        match result {
            Ok(_) => again += 1,
            Err(e) => lines.push(format!("not sharing {} again: {e}", path.display())),
        }
    }
    if !gone.is_empty() {
        let ids: Vec<FileId> = gone.iter().filter_map(|s| s.id.parse().ok()).collect();
        memory.forget_shares(&ids);
        lines.push(gone_line(&gone));
    }
    if again > 0 {
        let changed = match rehashed {
            0 => String::new(),
            n => format!(" ({n} changed since, hashed again)"),
        };
        lines.insert(
            0,
            format!(
                "Sharing again {} from the last run{changed}",
                count(again, "file")
            ),
        );
    }
    lines
}

/// One line for the remembered shares whose files are gone, naming the
/// first few: they are forgotten, not shared again.
fn gone_line(gone: &[Share]) -> String {
    const NAMED: usize = 3;
    let mut names: Vec<String> = gone
        .iter()
        .take(NAMED)
        .map(|s| s.path.display().to_string())
        .collect();
    if gone.len() > NAMED {
        names.push(format!("and {} more", gone.len() - NAMED));
    }
    format!(
        "Forgot {} shared last time, now gone: {}",
        count(gone.len(), "file"),
        names.join(", ")
    )
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

/// `resume [NAME|ID]`: starts again the unfinished downloads (those that
/// `which` names, by name or id prefix), each where it left off.
pub fn resume(peer: &Peer, which: Option<&str>) -> Result<(), PeerError> {
    let all = unfinished(peer);
    let prefix = which.and_then(|w| w.parse::<IdPrefix>().ok());
    let by_id = |u: &Unfinished| {
        let id = u.id.parse::<FileId>().ok();
        prefix
            .as_ref()
            .zip(id)
            .is_some_and(|(p, id)| p.matches(&id))
    };
    let chosen: Vec<&Unfinished> = all
        .iter()
        .filter(|u| which.is_none_or(|w| u.name == w || by_id(u)))
        .collect();
    if chosen.is_empty() {
        println!("nothing to resume");
        return Ok(());
    }
    for u in chosen {
        if u.out.symlink_metadata().is_ok() {
            // Finished some other way meanwhile.
            if let Some(memory) = peer.memory() {
                memory.finished(&u.out);
            }
            continue;
        }
        match background::start(peer, &u.target, Some(Path::new(&u.out))) {
            Ok(started) => println!("{}", started.found_line()),
            Err(e) => println!("error: cannot resume {}: {e}", u.name),
        }
    }
    Ok(())
}
