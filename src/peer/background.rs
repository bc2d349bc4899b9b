//! Downloads in the background, as the REPL and the status page start them:
//! located and started at once (what goes wrong then is returned to the
//! caller), then watched by a thread of their own that emits the end as an
//! [`Event`] for the peer's subscribers (the front words it).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use super::events::Event;
use super::locate::Located;
use super::memory::Unfinished;
use super::{Peer, PeerError};
use crate::net::stop::StopSignal;

/// A download that has started.
pub struct Started {
    pub key: u64,
    pub file: Located,
    pub out: PathBuf,
}

/// Locates `target` (its tracker requests stopped by `stop`), checks the
/// output (`out`: a file, or a directory to save into, default the file's
/// name here), and starts the download; its start and end are emitted as
/// events.
pub fn start(
    peer: &Peer,
    target: &str,
    out: Option<&Path>,
    only: &[String],
    stop: &Arc<StopSignal>,
) -> Result<Started, PeerError> {
    let file = peer.locate(target, stop)?;
    let out = peer.output_path(&file, out)?;
    let handle = peer.download_only(&file, &out, only.to_vec())?;
    if let Some(memory) = peer.memory() {
        // Until it finishes, for `resume` in a later run.
        memory.begin_download(Unfinished {
            target: target.to_string(),
            name: file.name.clone(),
            id: file.id.to_hex(),
            out: out.clone(),
            only: only.to_vec(),
        });
    }
    let key = handle.progress().key();
    peer.events.emit(&Event::DownloadStarted {
        key,
        name: file.name.clone(),
        out: out.clone(),
        from_tracker: file.from_tracker,
        from_dht: file.from_dht,
    });
    let name = file.name.clone();
    let leaving = peer.leaving_flag();
    let events = Arc::clone(&peer.events);
    let watcher = thread::Builder::new()
        .name("download-watch".into())
        .spawn(move || {
            let progress = Arc::clone(handle.progress());
            let result = handle.join();
            let view = progress.view(Instant::now());
            let sharing = !leaving.load(Ordering::Acquire);
            events.emit(&Event::ended(key, name, result, view, sharing));
        })
        .map_err(PeerError::Spawn)?;
    peer.downloads().watch(watcher);
    Ok(Started { key, file, out })
}
