//! The peer's side of the tracker protocol. Each call opens a fresh connection
//! (cheap, and a restarted tracker needs no reconnect logic), says `HELLO`, and
//! reads a bounded reply.

use std::time::Duration;

use crate::bounds::{CONNECT_TIMEOUT, IO_TIMEOUT, MAX_LIST_ENTRIES};
use crate::error::{Error, Result};
use crate::manifest::FileId;
use crate::protocol::message::{hello_line, parse_count, IdPrefix};
use crate::protocol::{Connection, FileSummary, PeerEntry, TrackerRequest};

/// A file to announce: id, size, name, and whether this peer has all of it.
pub struct Announcement<'a> {
    pub id: FileId,
    pub size: u64,
    pub name: &'a str,
    pub complete: bool,
}

#[derive(Clone, Debug)]
pub struct TrackerClient {
    /// `host:port` of the tracker, resolved at each connection.
    addr: String,
    /// The port our chunk server listens on, announced with every file.
    listen_port: u16,
}

impl TrackerClient {
    pub fn new(host: &str, port: u16, listen_port: u16) -> Self {
        let addr = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        TrackerClient { addr, listen_port }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Connects and says `HELLO`; `timeout` bounds the connect and (if
    /// shorter than usual) every reply.
    fn connect(&self, timeout: Duration) -> Result<Connection> {
        let mut conn = Connection::connect(&self.addr, timeout)?;
        conn.set_reply_timeout(timeout.min(IO_TIMEOUT));
        conn.request(&hello_line())?;
        Ok(conn)
    }

    /// Registers (or refreshes) files, pipelined on one connection.
    pub fn register(&self, files: &[Announcement<'_>]) -> Result<()> {
        if files.is_empty() {
            return Ok(());
        }
        let mut conn = self.connect(CONNECT_TIMEOUT)?;
        let mut batch = String::new();
        for f in files {
            let req = TrackerRequest::Register {
                port: self.listen_port,
                id: f.id,
                size: f.size,
                name: f.name.to_string(),
                complete: f.complete,
            };
            batch.push_str(&req.encode());
        }
        conn.write_all(batch.as_bytes())?;
        // Read every reply, so one refused file does not hide the others;
        // a broken connection ends it at once.
        let mut first_refusal = None;
        for _ in files {
            match conn.read_reply() {
                Ok(_) => {}
                Err(e @ Error::Remote(_)) => {
                    first_refusal.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        first_refusal.map_or(Ok(()), Err)
    }

    /// Files whose names contain `text` (all files when empty).
    pub fn search(&self, text: &str) -> Result<Vec<FileSummary>> {
        let mut conn = self.connect(CONNECT_TIMEOUT)?;
        let req = TrackerRequest::Search {
            text: text.to_string(),
        };
        conn.write_all(req.encode().as_bytes())?;
        read_list(&mut conn, FileSummary::parse)
    }

    /// The files whose id starts with `prefix` (one at most for a full id).
    pub fn info(&self, prefix: &IdPrefix) -> Result<Vec<FileSummary>> {
        let mut conn = self.connect(CONNECT_TIMEOUT)?;
        let req = TrackerRequest::Info {
            prefix: prefix.clone(),
        };
        conn.write_all(req.encode().as_bytes())?;
        read_list(&mut conn, FileSummary::parse)
    }

    /// The peers that have file `id`, all of it or part of it.
    pub fn peers(&self, id: &FileId) -> Result<Vec<PeerEntry>> {
        let mut conn = self.connect(CONNECT_TIMEOUT)?;
        conn.write_all(TrackerRequest::Peers { id: *id }.encode().as_bytes())?;
        read_list(&mut conn, PeerEntry::parse)
    }

    /// Says this peer no longer has file `id` (a download that stopped).
    pub fn unregister(&self, id: &FileId) -> Result<()> {
        let mut conn = self.connect(CONNECT_TIMEOUT)?;
        let req = TrackerRequest::Unregister {
            port: self.listen_port,
            id: *id,
        };
        conn.request(&req.encode()).map(drop)
    }

    /// Unregisters everything this peer shares. Quick, for use at exit.
    pub fn bye(&self, timeout: Duration) -> Result<()> {
        let mut conn = self.connect(timeout)?;
        let req = TrackerRequest::Bye {
            port: self.listen_port,
        };
        conn.write_all(req.encode().as_bytes())?;
        conn.read_reply().map(drop)
    }
}

/// Reads `OK <n>` and then `n` lines, each parsed by `parse`.
fn read_list<T, E>(conn: &mut Connection, parse: impl Fn(&str) -> Result<T, E>) -> Result<Vec<T>>
where
    Error: From<E>,
{
    let count = parse_count(&conn.read_reply()?, MAX_LIST_ENTRIES)?;
    let mut items = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let line = conn.read_line(IO_TIMEOUT)?.ok_or(Error::Closed)?;
        items.push(parse(&line)?);
    }
    Ok(items)
}
