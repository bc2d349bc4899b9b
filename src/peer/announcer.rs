//! The announcer thread: re-registers every shared file with the tracker and
//! (when on) announces it in the DHT, every interval, so a restarted tracker
//! learns them again and entries do not expire. While the tracker is
//! unreachable it retries sooner, backing off from 1 s. `kick` asks for a
//! round now (after `share` or a download).

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::library::{Library, SharedFile};
use super::tracker_client::{Announcement, TrackerClient};
use crate::dht::DhtNode;
use crate::error::Error;

pub struct Announcer {
    kick: Mutex<Sender<()>>,
}

impl Announcer {
    pub fn spawn(
        library: Arc<Library>,
        tracker: TrackerClient,
        dht: Option<Arc<DhtNode>>,
        tcp_port: u16,
        interval: Duration,
    ) -> std::io::Result<Announcer> {
        let (kick, kicked) = mpsc::channel();
        thread::Builder::new()
            .name("announcer".into())
            .spawn(move || {
                let mut retry = None;
                loop {
                    match kicked.recv_timeout(retry.unwrap_or(interval)) {
                        Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                    let files = library.list();
                    retry = match to_tracker(&tracker, &files) {
                        Ok(()) => None,
                        Err(e) => {
                            let next = next_retry(retry, interval);
                            log::warn!(
                                "announce to tracker {} failed: {e}; retrying in {next:?}",
                                tracker.addr()
                            );
                            Some(next)
                        }
                    };
                    if let Some(dht) = &dht {
                        let ids: Vec<_> = files.iter().map(|f| f.id).collect();
                        if let Err(e) = dht.announce(&ids, tcp_port) {
                            log::warn!("{e}");
                        }
                    }
                }
            })?;
        Ok(Announcer {
            kick: Mutex::new(kick),
        })
    }

    /// Asks for an announce round now.
    pub fn kick(&self) {
        let _ = self.kick.lock().unwrap_or_else(|e| e.into_inner()).send(());
    }
}

/// Registers `files` with the tracker in one connection.
pub fn to_tracker(tracker: &TrackerClient, files: &[Arc<SharedFile>]) -> Result<(), Error> {
    let list: Vec<Announcement<'_>> = files
        .iter()
        .map(|f| Announcement {
            id: f.id,
            size: f.manifest.size(),
            name: &f.name,
        })
        .collect();
    tracker.register(&list)
}

/// The delay before retrying a failed announce, given the previous retry
/// delay (`None` after a success): 1 s, then doubling, at most `interval`.
fn next_retry(previous: Option<Duration>, interval: Duration) -> Duration {
    previous
        .map_or(Duration::from_secs(1), |d| d * 2)
        .min(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_up_to_the_interval() {
        let interval = Duration::from_secs(30);
        let mut d = None;
        let mut seen = vec![];
        for _ in 0..7 {
            d = Some(next_retry(d, interval));
            seen.extend(d.map(|d| d.as_secs()));
        }
        assert_eq!(seen, vec![1, 2, 4, 8, 16, 30, 30]);
        let short = Duration::from_millis(500);
        assert_eq!(next_retry(None, short), short);
    }
}
