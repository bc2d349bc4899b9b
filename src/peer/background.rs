//! Downloads in the background, as the REPL and the status page start them:
//! located and started at once (what goes wrong then is returned to the
//! caller), then watched by a thread of their own that reports the end on
//! the [`console`](crate::console), above the prompt.

use std::path::{Path, PathBuf};
use std::thread;
use std::time::Instant;

use super::download::{DownloadError, Report};
use super::locate::Located;
use super::memory::Unfinished;
use super::{Peer, PeerError};
use crate::name::shown;
use crate::peer::download::progress::DownloadView;
use crate::ui::{count, format_size, format_speed};

/// A download that has started.
pub struct Started {
    pub key: u64,
    pub file: Located,
    pub out: PathBuf,
}

impl Started {
    /// `Found N peers for NAME (size: S bytes)`.
    pub fn found_line(&self) -> String {
        let size = self
            .file
            .size
            .map_or("unknown".to_string(), |s| format!("{s} bytes"));
        let mut line = format!(
            "Found {} for {} (size: {size})",
            count(self.file.peers.len(), "peer"),
            shown(&self.file.name)
        );
        // Named when it is not the plain default, so that two downloads of
        // one file (two `resume`d outputs, say) can be told apart.
        if self.out != Path::new(&self.file.name) {
            line.push_str(&format!("; saving as {}", self.out.display()));
        }
        line
    }
}

/// Locates `target`, checks the output (`out`: a file, or a directory to
/// save into, default the file's name here), and starts the download; its
/// end is reported on the console.
pub fn start(peer: &Peer, target: &str, out: Option<&Path>) -> Result<Started, PeerError> {
    let file = peer.locate(target)?;
    let out = peer.output_path(&file, out)?;
    let handle = peer.download(&file, &out)?;
    if let Some(memory) = peer.memory() {
        // Until it finishes, for `resume` in a later run.
        memory.begin_download(Unfinished {
            target: target.to_string(),
            name: file.name.clone(),
            id: file.id.to_hex(),
            out: out.clone(),
        });
    }
    log::info!(
        "{} from the tracker, {} more from the DHT",
        count(file.from_tracker, "peer"),
        file.from_dht
    );
    let started = Started {
        key: handle.progress().key(),
        file,
        out,
    };
    let name = started.file.name.clone();
    let leaving = peer.leaving_flag();
    let watcher = thread::Builder::new()
        .name("download-watch".into())
        .spawn(move || {
            let progress = std::sync::Arc::clone(handle.progress());
            let result = handle.join();
            let view = progress.view(Instant::now());
            let sharing = !leaving.load(std::sync::atomic::Ordering::Acquire);
            crate::console::say(outcome_text(&name, &result, &view, sharing));
        })
        .map_err(PeerError::Spawn)?;
    peer.downloads().watch(watcher);
    Ok(started)
}

/// How a download ended, as the REPL and `peer get` print it: on success
/// `Successfully downloaded: NAME` and a line of figures, else one `error:`
/// line. `sharing`: the peer goes on serving the file.
pub fn outcome_text(
    name: &str,
    result: &Result<Report, DownloadError>,
    view: &DownloadView,
    sharing: bool,
) -> String {
    let name = shown(name);
    let report = match result {
        Ok(report) => report,
        // Asked for: not an error. What it kept is what `resume` starts from.
        Err(DownloadError::Cancelled { done, total }) => {
            return format!(
                "Cancelled: {name} ({done} of {total} chunks kept; resume continues it)"
            )
        }
        Err(e) => return format!("error: {name}: {e}"),
    };
    let used = report.peers.iter().filter(|p| p.chunks > 0).count();
    let secs = report.elapsed.as_secs_f64().max(1e-6);
    let resumed = match report.resumed {
        0 => String::new(),
        n => format!(
            ", {} resumed from an earlier attempt",
            count(n as usize, "chunk")
        ),
    };
    let sources = match view.from_partial_bytes {
        0 => String::new(),
        partial => format!(
            " ({} from peers still downloading it)",
            format_size(partial)
        ),
    };
    let tail = if sharing { "; now sharing it" } else { "" };
    let mut text = format!(
        "Successfully downloaded: {name}\n  {} bytes ({}) in {secs:.2} s ({}) from {}{sources}{resumed}; saved as {}{tail}",
        report.bytes,
        format_size(report.bytes),
        format_speed(report.bytes.saturating_sub(view.resumed_bytes) as f64 / secs),
        count(used, "peer"),
        report.path.display()
    );
    if let Some(w) = &report.warning {
        text.push_str(&format!("\nwarning: {w}"));
    }
    text
}
