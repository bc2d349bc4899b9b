//! The engine's values and events in words: the lines the REPL, `peer get`,
//! the status page's console echo and the start-up print. The engine
//! returns and emits; only this layer says.

use std::path::{Path, PathBuf};

use super::{count, format_size, format_speed};
use crate::error::Error;
use crate::name::shown;
use crate::peer::background::Started;
use crate::peer::download::progress::DownloadView;
use crate::peer::download::{DownloadError, Report};
use crate::peer::events::Event;
use crate::peer::resume::Restored;

/// A refusal the REPL and the status page word alike.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{0:?} is ambiguous; download one of them by id")]
    Ambiguous(String),
    #[error("no running download matches {0:?} (see status)")]
    NoSuchDownload(String),
    #[error("{0:?} matches downloads {1}; cancel one by number")]
    SeveralDownloads(String, String),
}

/// `Found N peers for NAME (size: S bytes)`, and where it is saved when
/// that is not the plain default.
pub fn found_line(started: &Started) -> String {
    let file = &started.file;
    let size = file
        .size
        .map_or("unknown".to_string(), |s| format!("{s} bytes"));
    let mut line = format!(
        "Found {} for {} (size: {size})",
        count(file.peers.len(), "peer"),
        shown(&file.name)
    );
    // Named when it is not the plain default, so that two downloads of
    // one file (two `resume`d outputs, say) can be told apart.
    if started.out != Path::new(&file.name) {
        line.push_str(&format!("; saving as {}", started.out.display()));
    }
    line
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
    let name = &shown(name);
    match result {
        Ok(report) => finished_text(name, report, view, sharing),
        // Asked for: not an error. What it kept is what `resume` starts from.
        Err(DownloadError::Cancelled { done, total }) => cancelled_text(name, *done, *total),
        Err(e) => format!("error: {name}: {e}"),
    }
}

/// What the console says of an event; `None` for one it does not show (a
/// background download's start: the command that started it said so).
pub fn event_text(event: &Event) -> Option<String> {
    Some(match event {
        Event::DownloadStarted { .. } => return None,
        Event::DownloadFinished {
            name,
            report,
            view,
            sharing,
            ..
        } => finished_text(&shown(name), report, view, *sharing),
        Event::DownloadCancelled {
            name, done, total, ..
        } => cancelled_text(&shown(name), *done, *total),
        Event::DownloadFailed { name, error, .. } => {
            format!("error: {}: {error}", shown(name))
        }
    })
}

/// What the log records of an event, if anything.
pub fn event_log(event: &Event) -> Option<String> {
    match event {
        Event::DownloadStarted {
            from_tracker,
            from_dht,
            ..
        } => Some(format!(
            "{} from the tracker, {from_dht} more from the DHT",
            count(*from_tracker, "peer")
        )),
        _ => None,
    }
}

fn cancelled_text(name: &str, done: u32, total: u32) -> String {
    format!("Cancelled: {name} ({done} of {total} chunks kept; resume continues it)")
}

fn finished_text(name: &str, report: &Report, view: &DownloadView, sharing: bool) -> String {
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
    let files = match view.files_total {
        0 => String::new(),
        n => format!("{}, ", count(n as usize, "file")),
    };
    let mut text = format!(
        "Successfully downloaded: {name}\n  {files}{} bytes ({}) in {secs:.2} s ({}) from {}{sources}{resumed}; saved as {}{tail}",
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

/// The lines sharing again what the last run shared prints: one summary,
/// one for each file that could not be shared as it was, one for those gone.
pub fn restored_lines(r: &Restored) -> Vec<String> {
    let mut lines = Vec::new();
    if r.again > 0 {
        let changed = match r.rehashed {
            0 => String::new(),
            n => format!(" ({n} changed since, hashed again)"),
        };
        lines.push(format!(
            "Sharing again {} from the last run{changed}",
            count(r.again, "file")
        ));
    }
    for (path, e) in &r.failed {
        lines.push(format!("not sharing {} again: {e}", path.display()));
    }
    if !r.gone.is_empty() {
        lines.push(gone_line(&r.gone));
    }
    lines
}

/// One line for the remembered shares whose files are gone, naming the
/// first few: they are forgotten, not shared again.
fn gone_line(gone: &[PathBuf]) -> String {
    const NAMED: usize = 3;
    let mut names: Vec<String> = gone
        .iter()
        .take(NAMED)
        .map(|p| p.display().to_string())
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

/// The line printed at start-up when the tracker at `addr` does not
/// answer: what failed and what to do.
pub fn tracker_warning(addr: &str, e: &Error) -> String {
    let hint = match e {
        Error::WrongIdentity(_) | Error::NotATracker => "",
        _ => "; is the tracker running there? This peer goes on (links, tickets and the DHT work without it) and announces its files once the tracker answers",
    };
    format!("warning: cannot use the tracker at {addr}: {e}{hint}")
}

/// `cancelling 2 downloads (verified chunks are kept)`.
pub fn cancelling_line(n: usize) -> String {
    format!(
        "cancelling {} (verified chunks are kept)",
        count(n, "download")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::FileId;
    use crate::peer::download::progress::Progress;
    use crate::peer::PeerError;
    use std::time::Instant;

    #[test]
    fn an_event_reads_as_the_outcome_it_carries() {
        let view = Progress::new(1, "a", FileId([0; 32]), None).view(Instant::now());
        let cancelled = || Err(DownloadError::Cancelled { done: 3, total: 8 });
        let text = outcome_text("a.bin", &cancelled(), &view, true);
        assert_eq!(
            text,
            "Cancelled: a.bin (3 of 8 chunks kept; resume continues it)"
        );
        let event = Event::ended(1, "a.bin".into(), cancelled(), view, true);
        assert_eq!(event_text(&event), Some(text));
        let started = Event::DownloadStarted {
            key: 1,
            name: "a.bin".into(),
            out: "a.bin".into(),
            from_tracker: 1,
            from_dht: 2,
        };
        assert_eq!(event_text(&started), None, "its command said it");
        assert_eq!(
            event_log(&started).as_deref(),
            Some("1 peer from the tracker, 2 more from the DHT")
        );
    }

    #[test]
    fn restoring_says_the_summary_first_then_each_failure_then_the_gone() {
        let r = Restored {
            again: 2,
            rehashed: 1,
            failed: vec![(PathBuf::from("x"), PeerError::NoTracker)],
            gone: ["a", "b", "c", "d"].map(PathBuf::from).to_vec(),
        };
        assert_eq!(
            restored_lines(&r),
            [
                "Sharing again 2 files from the last run (1 changed since, hashed again)",
                &format!("not sharing x again: {}", PeerError::NoTracker),
                "Forgot 4 files shared last time, now gone: a, b, c, and 1 more",
            ]
        );
        assert!(restored_lines(&Restored::default()).is_empty());
    }

    #[test]
    fn the_tracker_warning_gives_a_hint_unless_it_is_the_wrong_server() {
        let refused = Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let line = tracker_warning("h:1", &refused);
        assert!(line.starts_with("warning: cannot use the tracker at h:1: "));
        assert!(line.contains("is the tracker running there?"), "{line}");
        let wrong = tracker_warning("h:1", &Error::NotATracker);
        assert!(!wrong.contains("is the tracker running there?"), "{wrong}");
    }
}
