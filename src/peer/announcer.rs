//! The announcer thread: re-registers every shared file with the tracker and
//! (when on) announces it in the DHT, every interval, so a restarted tracker
//! learns them again and entries do not expire. While the tracker is
//! unreachable it retries sooner, backing off from 1 s. `register_now`
//! registers a newly shared file at once and kicks the thread only for what
//! is left (the slower DHT announce, or a retry).
//!
//! Leaving must win against a round in flight: every registration happens
//! under the `round` lock and only while not `stopped`, and [`Announcer::stop`]
//! sets the flag and then takes the lock, so once it returns no REGISTER can
//! reach the tracker after the caller's BYE.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::thread;
use std::time::{Duration, Instant};

use super::library::{Library, SharedFile};
use super::tracker_client::{Announcement, TrackerClient};
use crate::dht::DhtNode;
use crate::error::Error;
use crate::manifest::FileId;
use crate::sync::LockExt;

pub struct Announcer {
    kick: Mutex<Sender<()>>,
    gate: Arc<Gate>,
    /// `None`: a peer without a tracker (the DHT only, or neither).
    tracker: Option<TrackerClient>,
}

/// Orders registrations against leaving.
#[derive(Default)]
struct Gate {
    stopped: AtomicBool,
    round: Mutex<()>,
}

impl Gate {
    /// Unregisters `ids` (on one connection) unless stopped, holding the
    /// round lock throughout.
    fn unregister(&self, tracker: Option<&TrackerClient>, ids: &[FileId]) -> Result<(), Error> {
        if ids.is_empty() {
            return Ok(());
        }
        let _round = self.round.locked();
        match tracker {
            Some(tracker) if !self.stopped.load(Ordering::Acquire) => tracker.unregister_all(ids),
            _ => Ok(()),
        }
    }

    /// Registers `files` unless stopped, holding the round lock throughout.
    fn register(
        &self,
        tracker: Option<&TrackerClient>,
        files: &[Arc<SharedFile>],
    ) -> Result<(), Error> {
        let _round = self.round.locked();
        match tracker {
            Some(tracker) if !self.stopped.load(Ordering::Acquire) => to_tracker(tracker, files),
            _ => Ok(()),
        }
    }
}

impl Announcer {
    pub fn spawn(
        library: Arc<Library>,
        tracker: Option<TrackerClient>,
        dht: Option<Arc<DhtNode>>,
        tcp_port: u16,
        interval: Duration,
    ) -> std::io::Result<Announcer> {
        let (kick, kicked) = mpsc::channel();
        let gate = Arc::new(Gate::default());
        let (thread_gate, thread_tracker) = (Arc::clone(&gate), tracker.clone());
        thread::Builder::new()
            .name("announcer".into())
            .spawn(move || {
                let (mut retry, mut failing, mut refused) = (None, false, false);
                loop {
                    match kicked.recv_timeout(retry.unwrap_or(interval)) {
                        Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                    // Kicks that came meanwhile are all served by this one
                    // round (it announces every file).
                    while kicked.try_recv().is_ok() {}
                    if thread_gate.stopped.load(Ordering::Acquire) {
                        return;
                    }
                    library.drop_changed();
                    let withdrawn = library.take_withdrawn();
                    if let Err(e) = thread_gate.unregister(thread_tracker.as_ref(), &withdrawn) {
                        log::info!("unregistering changed files: {e}");
                    }
                    let files = library.all();
                    let addr = thread_tracker.as_ref().map_or("", |t| t.addr());
                    retry = match thread_gate.register(thread_tracker.as_ref(), &files) {
                        Ok(()) if failing => {
                            (failing, refused) = (false, false);
                            log::info!("tracker {addr} answers again; files announced");
                            None
                        }
                        Ok(()) => {
                            refused = false;
                            None
                        }
                        // The tracker answered and refused some files (a
                        // cap): not an outage. Retrying within seconds would
                        // send every file again for the same answer; the
                        // next round is the usual interval away.
                        Err(e @ Error::Remote(_)) => {
                            let level = match std::mem::replace(&mut refused, true) {
                                true => log::Level::Info,
                                false => log::Level::Warn,
                            };
                            log::log!(level, "tracker {addr} refused a registration: {e}");
                            failing = false;
                            None
                        }
                        Err(e) => {
                            let next = next_retry(retry, interval);
                            // Said once per outage, not once per retry.
                            let level = match std::mem::replace(&mut failing, true) {
                                true => log::Level::Info,
                                false => log::Level::Warn,
                            };
                            log::log!(
                                level,
                                "announce to tracker {addr} failed: {e}; retrying in {next:?}"
                            );
                            Some(next)
                        }
                    };
                    if let Some(dht) = &dht {
                        let ids: Vec<_> = files.iter().map(|f| f.listed).collect();
                        if let Err(e) = dht.announce(&ids, tcp_port) {
                            // Routine while this node is alone in its DHT
                            // (no other node yet to store the announce at):
                            // retried sooner, not shouted about.
                            log::info!("{e}");
                            retry = Some(next_retry(retry, interval));
                        }
                    }
                }
            })?;
        Ok(Announcer {
            kick: Mutex::new(kick),
            gate,
            tracker,
        })
    }

    /// Registers newly shared files at once (so the caller can report a
    /// failure) and, if `more` or the registration failed, wakes the thread
    /// for the rest (the slower DHT announce, or retries).
    pub fn register_now(&self, files: &[Arc<SharedFile>], more: bool) -> Result<(), Error> {
        let result = self.gate.register(self.tracker.as_ref(), files);
        if more || result.is_err() {
            self.kick();
        }
        result
    }

    /// Stops announcing and waits, at most `timeout`, for a registration in
    /// flight to finish. While the returned guard lives none can start, so a
    /// BYE sent under it is final. `None` if the wait timed out (a round is
    /// stuck on an unresponsive tracker, whose BYE would not arrive either).
    pub fn stop(&self, timeout: Duration) -> Option<MutexGuard<'_, ()>> {
        self.gate.stopped.store(true, Ordering::Release);
        let deadline = Instant::now() + timeout;
        loop {
            match self.gate.round.try_lock() {
                Ok(guard) => return Some(guard),
                Err(TryLockError::Poisoned(e)) => return Some(e.into_inner()),
                Err(TryLockError::WouldBlock) if Instant::now() >= deadline => return None,
                Err(TryLockError::WouldBlock) => thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    /// Tells the tracker this peer no longer has the file it lists as `id`
    /// (a private share's blinded id), after any round in
    /// flight (which may still have listed it) has landed, so that the
    /// withdrawal is the tracker's last word. The caller removes the file
    /// from the library first, so no later round lists it again.
    pub fn withdraw(&self, id: &FileId) -> Result<(), Error> {
        self.withdraw_all(std::slice::from_ref(id))
    }

    /// [`withdraw`](Self::withdraw) for many files, on one connection.
    pub fn withdraw_all(&self, ids: &[FileId]) -> Result<(), Error> {
        // Leaving (stopped): the BYE withdraws everything.
        self.gate.unregister(self.tracker.as_ref(), ids)
    }

    /// Asks for an announce round now.
    pub fn kick(&self) {
        let _ = self.kick.locked().send(());
    }
}

/// Registers `files` with the tracker in one connection.
fn to_tracker(tracker: &TrackerClient, files: &[Arc<SharedFile>]) -> Result<(), Error> {
    let list: Vec<Announcement<'_>> = files
        .iter()
        .map(|f| Announcement {
            // A private share is registered unlisted, under its blinded id.
            id: f.listed,
            size: f.manifest.size(),
            name: f.secret.is_none().then_some(f.name.as_str()),
            complete: f.is_complete(),
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
