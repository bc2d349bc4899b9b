//! What the engine tells whoever listens: a download started in the
//! background, and how it ended. The engine prints nothing; the front (the
//! REPL's console, the log) subscribes with [`Peer::subscribe`] and words
//! each [`Event`] itself.
//!
//! Invariants: subscribers are called on the thread the event happens on
//! (a download's end: its `download-watch` thread), in the order they
//! subscribed, each event once; a peer without subscribers drops events. A
//! subscriber must not block for long: the thread it runs on is the
//! engine's.

use std::path::PathBuf;

use super::download::progress::DownloadView;
use super::download::{DownloadError, Report};
use super::Peer;
use crate::sync::LockExt;

/// Something that happened in the engine.
#[derive(Debug)]
pub enum Event {
    /// A download was located and started in the background (the REPL,
    /// the status page, `resume`).
    DownloadStarted {
        key: u64,
        name: String,
        out: PathBuf,
        /// Peers that had it: from the tracker, and more from the DHT.
        from_tracker: usize,
        from_dht: usize,
    },
    /// A background download ended with its file verified and saved.
    /// `sharing`: the peer goes on serving it (it is not leaving).
    DownloadFinished {
        key: u64,
        name: String,
        report: Report,
        /// Its progress at the end (boxed: it is large, the others small).
        view: Box<DownloadView>,
        sharing: bool,
    },
    /// A background download was cancelled; its verified chunks are kept.
    DownloadCancelled {
        key: u64,
        name: String,
        done: u32,
        total: u32,
    },
    /// A background download ended without its file.
    DownloadFailed {
        key: u64,
        name: String,
        error: DownloadError,
    },
}

impl Event {
    /// The event for a download's end: finished, cancelled or failed.
    pub fn ended(
        key: u64,
        name: String,
        result: Result<Report, DownloadError>,
        view: DownloadView,
        sharing: bool,
    ) -> Event {
        match result {
            Ok(report) => Event::DownloadFinished {
                key,
                name,
                report,
                view: Box::new(view),
                sharing,
            },
            Err(DownloadError::Cancelled { done, total }) => Event::DownloadCancelled {
                key,
                name,
                done,
                total,
            },
            Err(error) => Event::DownloadFailed { key, name, error },
        }
    }
}

/// A function called with every event.
pub type Subscriber = Box<dyn Fn(&Event) + Send + Sync>;

/// The subscribers of one peer.
#[derive(Default)]
pub struct Events {
    subscribers: std::sync::Mutex<Vec<Subscriber>>,
}

impl Events {
    /// Calls every subscriber with `event`.
    pub fn emit(&self, event: &Event) {
        // A subscriber that panicked left the list whole: it is only pushed to.
        for s in self.subscribers.locked().iter() {
            s(event);
        }
    }
}

impl Peer {
    /// Calls `subscriber` with every [`Event`] from now on.
    pub fn subscribe(&self, subscriber: impl Fn(&Event) + Send + Sync + 'static) {
        self.events.subscribers.locked().push(Box::new(subscriber));
    }
}
