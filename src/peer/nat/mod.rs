//! Where this peer stands behind NAT, kept by a thread of its own
//! (`reach`): it asks the tracker `WHOAMI <listen port>` at start and every
//! [`REACH_RECHECK`], and keeps the answer for `status`. A tracker that
//! does not know the verb (an older one) is not asked again. While the
//! answer is "unreachable", the thread holds a control connection
//! (`LISTEN`), kept open across the `WHOAMI`s it asks meanwhile (so the
//! tracker can bring others here at any time), answers the tracker's
//! pings, and hands each `JOIN <token>` to the [`OnJoin`] it was given
//! (the relay's other end).
//!
//! Invariant: [`Reach::standing`] is `None` until the tracker answered
//! once, then always the latest answer; `held` is true exactly while a
//! control connection is open.

pub mod punch;
pub mod relay;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::portmap::PortMap;
use super::tracker_client::{Control, TrackerClient};
use crate::bounds::{MAPPING_RECHECK, REACH_RECHECK};
use crate::error::{Error, Result};
use crate::net::stop::StopSignal;
use crate::protocol::nat_msg::{ControlLine, Token};
use crate::sync::LockExt;

pub use self::punch::OnPunch;

/// What the tracker last said of this peer.
#[derive(Debug, Clone, Copy)]
pub struct Standing {
    /// The address the tracker saw our question come from.
    pub observed: SocketAddr,
    /// Whether the tracker reached our chunk server at the IP it saw.
    pub reachable: bool,
    pub at: Instant,
}

/// [`Standing`] for `status` and `/api/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReachView {
    pub observed: String,
    /// `true`: others can dial this peer directly.
    pub reachable: bool,
    pub secs_ago: u64,
    /// A control connection to the tracker is open: the tracker can bring
    /// others to this peer (through its relay).
    #[serde(default)]
    pub control: bool,
}

/// What the thread does with a `JOIN <token>` from the tracker: join the
/// relay session (without blocking the control connection).
pub type OnJoin = Arc<dyn Fn(Token) + Send + Sync>;

/// The `reach` thread and what it learned; stopped when dropped.
pub struct Reach {
    standing: Arc<Mutex<Option<Standing>>>,
    held: Arc<AtomicBool>,
    stop: Arc<StopSignal>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Reach {
    /// Starts asking `tracker` (the chunk server must be listening: the
    /// tracker dials it back).
    /// `port_map`, if this peer maps its port: a mapping is offered to
    /// others once a dial-back reached this peer at it.
    pub fn spawn(
        tracker: &TrackerClient,
        on_join: OnJoin,
        on_punch: OnPunch,
        port_map: Option<Arc<PortMap>>,
    ) -> std::io::Result<Reach> {
        let stop = StopSignal::new();
        let standing = Arc::new(Mutex::new(None));
        let held = Arc::new(AtomicBool::new(false));
        let asker = Asker {
            tracker: tracker.interruptible(Arc::clone(&stop)),
            standing: Arc::clone(&standing),
            held: Arc::clone(&held),
            on_join,
            on_punch,
            stop: Arc::clone(&stop),
            port_map,
        };
        let thread = thread::Builder::new()
            .name("reach".into())
            .spawn(move || asker.run())?;
        Ok(Reach {
            standing,
            held,
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The tracker's latest answer, if it gave one.
    pub fn standing(&self) -> Option<Standing> {
        *self.standing.locked()
    }

    pub fn view(&self) -> Option<ReachView> {
        self.standing().map(|s| ReachView {
            observed: s.observed.to_string(),
            reachable: s.reachable,
            secs_ago: s.at.elapsed().as_secs(),
            control: self.held.load(Ordering::Acquire),
        })
    }

    /// Stops the thread (interrupting a call in flight) and waits for it.
    pub fn stop(&self) {
        self.stop.stop();
        if let Some(thread) = self.thread.locked().take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Reach {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The thread's side.
struct Asker {
    tracker: TrackerClient,
    standing: Arc<Mutex<Option<Standing>>>,
    held: Arc<AtomicBool>,
    on_join: OnJoin,
    on_punch: OnPunch,
    stop: Arc<StopSignal>,
    port_map: Option<Arc<PortMap>>,
}

impl Asker {
    fn run(self) {
        // After a failure: 1 s, doubling up to REACH_RECHECK.
        let mut pause = Duration::from_secs(1);
        let mut failed = |why: Error| {
            log::debug!("{why}; asking the tracker again in {pause:?}");
            let wait = pause;
            pause = (pause * 2).min(REACH_RECHECK);
            wait
        };
        // How soon to ask again while a mapping is held but unchecked:
        // MAPPING_RECHECK, doubling (a dial-back may fail under load) up
        // to REACH_RECHECK (a router behind a carrier's NAT maps a port
        // nobody outside reaches).
        let mut unchecked = MAPPING_RECHECK;
        // Kept open across the WHOAMIs asked while unreachable, so that the
        // tracker can bring others here in between.
        let mut control = None;
        while !self.stop.is_stopped() {
            let wait = match self.tracker.whoami() {
                Ok(r) if r.reachable == Some(true) => {
                    control = None;
                    self.learned(r.observed, true);
                    self.confirm_mapping(r.observed)
                }
                Ok(r) => {
                    self.learned(r.observed, false);
                    // The dial-back may have come before the router mapped
                    // the port: ask again soon while it is being asked,
                    // and soon (backing off) after a mapping appears.
                    let recheck = match &self.port_map {
                        Some(map) if map.view().trying => MAPPING_RECHECK,
                        Some(map) if map.candidate().is_some() => {
                            let wait = unchecked;
                            unchecked = (unchecked * 2).min(REACH_RECHECK);
                            wait
                        }
                        _ => REACH_RECHECK,
                    };
                    match self.hold_control(&mut control, Instant::now() + recheck) {
                        Ok(()) => continue,
                        Err(Error::Interrupted) => return,
                        Err(e) => {
                            control = None;
                            failed(e)
                        }
                    }
                }
                Err(Error::Remote(e)) if e.contains("unknown command") => {
                    log::info!("the tracker does not say whether this peer is reachable: {e}");
                    return;
                }
                Err(Error::Interrupted) => return,
                Err(e) => {
                    control = None;
                    failed(e)
                }
            };
            self.stop.wait_timeout(wait);
        }
    }

    fn learned(&self, observed: SocketAddr, reachable: bool) {
        let how = match reachable {
            true => "reachable",
            false => "not reachable directly",
        };
        log::info!("the tracker sees this peer at {observed}: {how}");
        let at = Instant::now();
        *self.standing.locked() = Some(Standing {
            observed,
            reachable,
            at,
        });
    }

    /// The tracker dialled this peer back at the observed IP and its
    /// listen port, and reached it: if the router maps exactly that
    /// address to this peer, the mapping is checked and offered from now
    /// on. Returns when to ask again: soon while a mapping is still being
    /// asked for (the first answer may come before the router's).
    fn confirm_mapping(&self, observed: SocketAddr) -> Duration {
        let Some(map) = &self.port_map else {
            return REACH_RECHECK;
        };
        match map.candidate() {
            Some(mapped)
                if mapped.ip() == observed.ip() && mapped.port() == self.tracker.listen_port() =>
            {
                if map.confirm(mapped) {
                    log::info!("the port mapping {mapped} is reachable from outside; offering it");
                }
                REACH_RECHECK
            }
            Some(_) => REACH_RECHECK,
            None if map.view().trying => MAPPING_RECHECK,
            None => REACH_RECHECK,
        }
    }

    /// Holds the control connection in `slot` (opening one if it is
    /// empty) until `until`, answering the tracker's lines, and leaves it
    /// open there; fails when it breaks or goes silent.
    fn hold_control<'a>(&'a self, slot: &mut Option<Held<'a>>, until: Instant) -> Result<()> {
        let Held { control, .. } = match slot {
            Some(held) => held,
            None => {
                let control = self.tracker.listen()?;
                log::info!(
                    "holding a control connection to the tracker: {}",
                    control.greeting
                );
                self.held.store(true, Ordering::Release);
                slot.insert(Held {
                    control,
                    held: &self.held,
                })
            }
        };
        // Read up to `until` itself: the tracker's pings come only every
        // CONTROL_PING, far later than a MAPPING_RECHECK.
        while let Some(line) = control.next_by(until)? {
            match line {
                ControlLine::Ping => control.answer("pong")?,
                ControlLine::Join(token) => {
                    control.answer("joining")?;
                    (self.on_join)(token);
                }
                ControlLine::Punch(to) => {
                    control.answer("punching")?;
                    (self.on_punch)(to);
                }
            }
        }
        Ok(())
    }
}

/// An open control connection; clears `held` when it ends, however it
/// ends.
struct Held<'a> {
    control: Control,
    held: &'a AtomicBool,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.held.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests;
