//! The peer's side of the tracker protocol. Each call opens a fresh connection
//! (cheap, and a restarted tracker needs no reconnect logic), says `HELLO`, and
//! reads a bounded reply, all of it within [`TRACKER_DEADLINE`]: a tracker
//! that promises 100,000 rows and sends one every few seconds costs that,
//! not hours. A tracker at its connection caps (`ERR busy`) is asked again
//! after a pause, within the same deadline. A client made
//! [`interruptible`](TrackerClient::interruptible) by a stop signal gives up
//! at once when it is stopped (the REPL's `quit` and end of input).
//!
//! Every call speaks TLS, with this peer's certificate (the tracker keys
//! our registrations by its id), and pins the tracker's id: given with
//! `--tracker-id`, else learned on first contact and kept in the state
//! directory's `known_trackers` (as ssh's `known_hosts`); a tracker whose id
//! changed is refused with a message saying how to accept it (see
//! [`tracker_pin`](super::tracker_pin)).

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::bounds::{
    CONNECT_TIMEOUT, IO_TIMEOUT, MAX_LIST_ENTRIES, TRACKER_BATCH, TRACKER_DEADLINE,
};
use crate::error::{Error, Result};
use crate::identity::PeerId;
use crate::manifest::FileId;
use crate::net::stop::{StopGuard, StopSignal};
use crate::net::tls::Tls;
use crate::protocol::message::{hello_line, parse_count, parse_list_header, IdPrefix};
use crate::protocol::{Connection, FileSummary, PeerEntry, TrackerRequest};
use crate::sync::LockExt;

use super::tracker_pin::TrackerPin;

/// The rows of a `SEARCH` or `INFO` reply, and whether the tracker said
/// more matched than one reply holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub files: Vec<FileSummary>,
    pub more: bool,
}

/// A file to announce: id, size, name, and whether this peer has all of it.
pub struct Announcement<'a> {
    pub id: FileId,
    pub size: u64,
    /// `None`: unlisted (a private share, under its blinded id).
    pub name: Option<&'a str>,
    pub complete: bool,
}

#[derive(Clone)]
pub struct TrackerClient {
    /// `host:port` of the tracker, resolved at each connection.
    addr: String,
    /// The port our chunk server listens on, announced with every file.
    listen_port: u16,
    tls: Tls,
    pin: Arc<TrackerPin>,
    /// Stops calls in flight when stopped.
    interrupt: Option<Arc<StopSignal>>,
    /// How the last call's connection went, for `status`.
    contact: Arc<Mutex<Option<Contact>>>,
}

/// How the last connection to the tracker went.
#[derive(Clone, Debug)]
pub struct Contact {
    pub at: Instant,
    /// `None`: it answered `HELLO`.
    pub error: Option<String>,
}

/// Asked on first contact, before a tracker's id is pinned: a tracker
/// answers with a (short) list, a peer's chunk server with `ERR unknown
/// command`.
const PROBE: &str = "INFO 0000\n";

/// One call's connection, with the deadline of its whole reply.
struct Call {
    conn: Connection,
    deadline: Instant,
    interrupt: Option<Arc<StopSignal>>,
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
    fn send(&mut self, line: &str) -> Result<()> {
        self.left()?;
        self.conn.write_all(line.as_bytes())
    }

    fn reply(&mut self) -> Result<String> {
        let left = self.left()?;
        self.conn.set_reply_timeout(left.min(IO_TIMEOUT));
        self.conn.read_reply().map_err(|e| self.why(e))
    }

    fn line(&mut self) -> Result<String> {
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
    /// A client of the tracker at `addr` (see [`tracker_addr`]) that
    /// announces `listen_port`, speaks TLS as `tls`, and pins as `pin` says.
    pub fn new(addr: String, listen_port: u16, tls: Tls, pin: Arc<TrackerPin>) -> Self {
        TrackerClient {
            addr,
            listen_port,
            tls,
            pin,
            interrupt: None,
            contact: Arc::default(),
        }
    }

    /// How the last connection to the tracker went (`None`: none yet).
    pub fn last_contact(&self) -> Option<Contact> {
        self.contact.locked().clone()
    }

    /// The id this client expects of the tracker, if it knows one yet.
    pub fn tracker_id(&self) -> Option<PeerId> {
        self.pin.expected()
    }

    /// The same client, whose calls `signal` interrupts.
    pub fn interruptible(&self, signal: Arc<StopSignal>) -> TrackerClient {
        TrackerClient {
            interrupt: Some(signal),
            ..self.clone()
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The listen port this client announces (and `WHOAMI` asks about).
    pub fn listen_port(&self) -> u16 {
        self.listen_port
    }

    /// Connects and says `HELLO`, within `within` for the whole call
    /// (connecting at most [`CONNECT_TIMEOUT`] of it); a busy tracker is
    /// asked again after 250 ms, doubling, while time is left.
    fn connect(&self, within: Duration) -> Result<Call> {
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
            deadline,
            interrupt: self.interrupt.clone(),
            _interruptible: guard,
        };
        call.send(&hello_line())?;
        call.reply()?;
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

    /// Registers (or refreshes) files, pipelined on one connection in
    /// batches of [`TRACKER_BATCH`] lines.
    pub fn register(&self, files: &[Announcement<'_>]) -> Result<()> {
        let requests = files.iter().map(|f| TrackerRequest::Register {
            port: self.listen_port,
            id: f.id,
            size: f.size,
            name: f.name.map(str::to_string),
            complete: f.complete,
        });
        self.pipelined(requests.collect())
    }

    /// Says this peer no longer has files `ids`, pipelined on one
    /// connection as [`register`](Self::register) is.
    pub fn unregister_all(&self, ids: &[FileId]) -> Result<()> {
        let requests = ids.iter().map(|&id| TrackerRequest::Unregister {
            port: self.listen_port,
            id,
        });
        self.pipelined(requests.collect())
    }

    /// Sends `requests`, each answered by one reply line, on one
    /// connection: a batch of lines, then its replies, so that neither
    /// side's buffers fill while the other waits. Every reply is read, so
    /// one refused file does not hide the others; a broken connection ends
    /// it at once.
    fn pipelined(&self, requests: Vec<TrackerRequest>) -> Result<()> {
        if requests.is_empty() {
            return Ok(());
        }
        let mut call = self.connect(TRACKER_DEADLINE)?;
        let mut first_refusal = None;
        for batch in requests.chunks(TRACKER_BATCH) {
            let lines: String = batch.iter().map(TrackerRequest::encode).collect();
            call.send(&lines)?;
            for _ in batch {
                match call.reply() {
                    Ok(_) => {}
                    Err(e @ Error::Remote(_)) => {
                        first_refusal.get_or_insert(e);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        first_refusal.map_or(Ok(()), Err)
    }

    /// Files whose names contain `text` (all files when empty), as many
    /// as one reply holds.
    pub fn search(&self, text: &str) -> Result<Found> {
        self.listing(&TrackerRequest::Search {
            text: text.to_string(),
        })
    }

    /// The files whose id starts with `prefix` (one at most for a full id).
    pub fn info(&self, prefix: &IdPrefix) -> Result<Vec<FileSummary>> {
        let req = TrackerRequest::Info {
            prefix: prefix.clone(),
        };
        Ok(self.listing(&req)?.files)
    }

    /// Asks `req` and reads its rows. A tracker sending as many big replies
    /// as it will at once says `busy`: asked again after 250 ms, doubling,
    /// within the same deadline.
    fn listing(&self, req: &TrackerRequest) -> Result<Found> {
        let deadline = Instant::now() + TRACKER_DEADLINE;
        let mut pause = Duration::from_millis(250);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut call = self.connect(left)?;
            call.send(&req.encode())?;
            match read_rows(&mut call) {
                Err(Error::Busy) if Instant::now() + pause < deadline => {
                    log::debug!("tracker {} is busy; asking again in {pause:?}", self.addr);
                    thread::sleep(pause);
                    pause *= 2;
                }
                other => return other,
            }
        }
    }

    /// The peers that have file `id`, all of it or part of it.
    pub fn peers(&self, id: &FileId) -> Result<Vec<PeerEntry>> {
        let mut call = self.connect(TRACKER_DEADLINE)?;
        call.send(&TrackerRequest::Peers { id: *id }.encode())?;
        read_list(&mut call, PeerEntry::parse)
    }

    /// Says this peer no longer has file `id` (a download that stopped).
    pub fn unregister(&self, id: &FileId) -> Result<()> {
        let mut call = self.connect(TRACKER_DEADLINE)?;
        let req = TrackerRequest::Unregister {
            port: self.listen_port,
            id: *id,
        };
        call.send(&req.encode())?;
        call.reply().map(drop)
    }

    /// Connects and says `HELLO` (pinning the tracker's id on first
    /// contact), within `within`: is the tracker there, and the one we know?
    pub fn check(&self, within: Duration) -> Result<()> {
        self.connect(within).map(drop)
    }

    /// Unregisters everything this peer shares. Quick, for use at exit.
    pub fn bye(&self, timeout: Duration) -> Result<()> {
        let mut call = self.connect(timeout)?;
        let req = TrackerRequest::Bye {
            port: self.listen_port,
        };
        call.send(&req.encode())?;
        call.reply().map(drop)
    }
}

/// `host:port` for a tracker at `host` (an IPv6 address in brackets).
pub fn tracker_addr(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Reads `OK <n>[ more]` and then `n` file rows.
fn read_rows(call: &mut Call) -> Result<Found> {
    let (count, more) = parse_list_header(&call.reply()?, MAX_LIST_ENTRIES)?;
    let mut files = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        files.push(FileSummary::parse(&call.line()?)?);
    }
    Ok(Found { files, more })
}

/// Reads `OK <n>` and then `n` lines, each parsed by `parse`.
fn read_list<T, E>(call: &mut Call, parse: impl Fn(&str) -> Result<T, E>) -> Result<Vec<T>>
where
    Error: From<E>,
{
    let count = parse_count(&call.reply()?, MAX_LIST_ENTRIES)?;
    let mut items = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let line = call.line()?;
        items.push(parse(&line)?);
    }
    Ok(items)
}

mod nat;

pub use self::nat::Control;
