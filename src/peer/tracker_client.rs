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

use crate::bounds::{MAX_LIST_ENTRIES, TRACKER_BATCH, TRACKER_DEADLINE};
use crate::error::{Error, Result};
use crate::identity::PeerId;
use crate::manifest::FileId;
use crate::net::stop::StopSignal;
use crate::net::tls::Tls;
use crate::protocol::message::{parse_count, parse_list_header, IdPrefix};
use crate::protocol::{FileSummary, PeerEntry, TrackerRequest};
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
    /// Whether the NAT in front keeps the ports of connections to the
    /// tracker, as its replies show.
    ports: Arc<nat::PortsSeen>,
}

/// How the last connection to the tracker went.
#[derive(Clone, Debug)]
pub struct Contact {
    pub at: Instant,
    /// `None`: it answered `HELLO`.
    pub error: Option<String>,
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
            ports: Arc::default(),
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

mod call;
mod nat;

pub use self::nat::Control;
use call::Call;
