//! One call's connection to the tracker: TLS with this peer's
//! certificate, the tracker's id pinned (learned on first contact, after
//! asking something only a tracker answers), `HELLO` at the newest version
//! both speak, and the deadline of the whole reply.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::{Contact, TrackerClient};
use crate::bounds::{CONNECT_TIMEOUT, IO_TIMEOUT, MAX_LIST_ENTRIES};
use crate::error::{Error, Result};
use crate::net::stop::{StopGuard, StopSignal};
use crate::protocol::message::{hello_at, parse_list_header, PROTOCOL_VERSION, TRACKER_VERSION};
use crate::protocol::Connection;
use crate::sync::LockExt;

/// Asked on first contact, before a tracker's id is pinned: a tracker
/// answers with a (short) list, a peer's chunk server with `ERR unknown
/// command`.
const PROBE: &str = "INFO 0000\n";

/// One call's connection, with the deadline of its whole reply.
pub(super) struct Call {
    pub(super) conn: Connection,
    /// The tracker protocol version both speak.
    pub(super) version: u32,
    deadline: Instant,
    pub(super) interrupt: Option<Arc<StopSignal>>,
    _interruptible: Option<StopGuard>,
}

impl Call {
    fn left(&self) -> Result<Duration> {
        if self.interrupt.as_ref().is_some_and(|s| s.is_stopped()) {
            return Err(Error::Interrupted);
        }
        match self.deadline.saturating_duration_since(Instant::now()) {
            d if d.is_zero() => Err(Error::Timeout("the tracker's whole reply")),
            d => Ok(d),
        }
    }

    /// Sends `line` (one or more requests).
    pub(super) fn send(&mut self, line: &str) -> Result<()> {
        self.left()?;
        self.conn.write_all(line.as_bytes())
    }

    pub(super) fn reply(&mut self) -> Result<String> {
        let left = self.left()?;
        self.conn.set_reply_timeout(left.min(IO_TIMEOUT));
        self.conn.read_reply().map_err(|e| self.why(e))
    }

    pub(super) fn line(&mut self) -> Result<String> {
        let left = self.left()?;
        let line = self.conn.read_line(left.min(IO_TIMEOUT));
        // Our own interrupt shuts the socket down, which reads as a clean
        // end of stream: that too is the interrupt, not the tracker.
        line.map_err(|e| self.why(e))?
            .ok_or_else(|| self.why(Error::Closed))
    }

    /// An error after an interrupt is the interrupt; a read that timed out
    /// once the whole call's deadline has passed is that deadline (its
    /// timeout was cut to what was left of it), not a stalled line.
    fn why(&self, e: Error) -> Error {
        match &self.interrupt {
            Some(s) if s.is_stopped() => Error::Interrupted,
            _ if matches!(e, Error::Timeout(_)) && Instant::now() >= self.deadline => {
                Error::Timeout("the tracker's whole reply")
            }
            _ => e,
        }
    }
}

impl TrackerClient {
    /// Connects and says `HELLO`, within `within` for the whole call
    /// (connecting at most [`CONNECT_TIMEOUT`] of it); a busy tracker is
    /// asked again after 250 ms, doubling, while time is left.
    pub(super) fn connect(&self, within: Duration) -> Result<Call> {
        let deadline = Instant::now() + within;
        let mut pause = Duration::from_millis(250);
        loop {
            match self.try_connect(deadline) {
                Err(Error::Busy) if Instant::now() + pause < deadline => {
                    log::debug!("tracker {} is busy; asking again in {pause:?}", self.addr);
                    thread::sleep(pause);
                    pause *= 2;
                }
                other => {
                    self.note_contact(&other);
                    return other;
                }
            }
        }
    }

    /// Keeps how a connection went, unless our side gave up on it.
    fn note_contact(&self, result: &Result<Call>) {
        let error = match result {
            Ok(_) => None,
            Err(Error::Interrupted) => return,
            Err(e) => Some(e.to_string()),
        };
        let contact = Contact {
            at: Instant::now(),
            error,
        };
        *self.contact.locked() = Some(contact);
    }

    fn try_connect(&self, deadline: Instant) -> Result<Call> {
        let left = deadline.saturating_duration_since(Instant::now());
        let pinned = self.pin.expected();
        let conn =
            match Connection::connect_tls(&self.addr, &self.tls, pinned, left.min(CONNECT_TIMEOUT))
            {
                Err(Error::WrongIdentity(e)) => return Err(self.pin.changed(&e)),
                other => other?,
            };
        let first_contact = match (pinned, conn.peer_id()) {
            (Some(_), _) => None,
            (None, Some(id)) => Some(id),
            (None, None) => {
                return Err(Error::Verification(
                    "the tracker sent no certificate".into(),
                ))
            }
        };
        let guard = match &self.interrupt {
            Some(signal) => Some(signal.guard(conn.interrupter()?)),
            None => None,
        };
        let mut call = Call {
            conn,
            version: TRACKER_VERSION,
            deadline,
            interrupt: self.interrupt.clone(),
            _interruptible: guard,
        };
        call.send(&hello_at(TRACKER_VERSION))?;
        match call.reply() {
            Ok(_) => {}
            // Older than version 3: it speaks 2.
            Err(Error::Remote(_)) => {
                call.send(&hello_at(PROTOCOL_VERSION))?;
                call.reply()?;
                call.version = PROTOCOL_VERSION;
            }
            Err(e) => return Err(e),
        }
        if let Some(id) = first_contact {
            // A peer's chunk server speaks TLS and answers HELLO too; only
            // a tracker lists files. Ask before pinning the id for good.
            call.send(PROBE)?;
            let reply = match call.reply() {
                Err(Error::Remote(e)) if e.contains("unknown command") => {
                    return Err(Error::NotATracker)
                }
                other => other?,
            };
            // Its rows are not wanted: skipped whatever they say, a cut
            // reply (`OK <n> more`) included.
            let (rows, _) = parse_list_header(&reply, MAX_LIST_ENTRIES)?;
            for _ in 0..rows {
                call.line()?;
            }
            self.pin.learned(id);
        }
        Ok(call)
    }
}
