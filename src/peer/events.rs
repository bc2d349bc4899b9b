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
    /// Calls `subscriber` with every event emitted from now on.
    pub fn subscribe(&self, subscriber: impl Fn(&Event) + Send + Sync + 'static) {
        self.subscribers.locked().push(Box::new(subscriber));
    }

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
        self.events.subscribe(subscriber);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::FileId;
    use crate::peer::download::progress::Progress;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    fn cancelled(key: u64) -> Event {
        let view = Progress::new(key, "a", FileId([0; 32]), None).view(Instant::now());
        let result = Err(DownloadError::Cancelled { done: 3, total: 8 });
        Event::ended(key, "a".into(), result, view, true)
    }

    #[test]
    fn every_subscriber_hears_every_event_in_order() {
        let events = Events::default();
        events.emit(&cancelled(1));
        let heard = Arc::new(Mutex::new(Vec::new()));
        for who in ["first", "second"] {
            let heard = Arc::clone(&heard);
            events.subscribe(move |e| {
                if let Event::DownloadCancelled { key, .. } = e {
                    heard.locked().push((who, *key));
                }
            });
        }
        events.emit(&cancelled(2));
        assert_eq!(
            *heard.locked(),
            [("first", 2), ("second", 2)],
            "before subscribing nothing is heard; after, each once, in order"
        );
    }
}
