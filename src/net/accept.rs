//! The accept loop shared by the tracker and the peer's chunk server: one
//! thread per connection, at most `ConnCaps::total` at once and at most
//! `ConnCaps::per_ip` from one IP address, so one host flooding connections (or
//! holding them open idle) cannot starve everyone else. A connection over a cap
//! gets `ERR busy` and is closed at once. The listener is passed in, so tests
//! can bind port 0.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::bounds::{
    BUSY_REPLY_TIMEOUT, CONN_STACK, FIRST_LINE_TIMEOUT, IDLE_TIMEOUT, LISTEN_BACKLOG,
};
use crate::error::Error;
use crate::protocol::{Connection, Reply};

/// Connection caps of one server.
#[derive(Clone, Copy, Debug)]
pub struct ConnCaps {
    pub total: usize,
    pub per_ip: usize,
}

/// Serves `listener` forever, running `handler` on its own thread for each
/// accepted connection.
pub fn serve<H>(listener: TcpListener, caps: ConnCaps, role: &'static str, handler: H)
where
    H: Fn(Connection) + Send + Sync + 'static,
{
    if let Err(e) = super::sys::set_backlog(&listener, LISTEN_BACKLOG) {
        log::warn!("{role}: cannot raise the listen backlog: {e}");
    }
    let handler = Arc::new(handler);
    let slots = Arc::new(Slots::new(caps));
    let mut backoff = Duration::from_millis(10);
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => {
                backoff = Duration::from_millis(10);
                stream
            }
            Err(e) => {
                // Typically EMFILE: back off instead of spinning.
                log::warn!("{role}: accept failed: {e}; retrying in {backoff:?}");
                thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Ok(ip) = stream.peer_addr().map(|a| a.ip()) else {
            continue;
        };
        let Some(slot) = Slots::take(&slots, ip) else {
            reject_busy(stream);
            continue;
        };
        let conn = match Connection::new(stream) {
            Ok(conn) => conn,
            Err(e) => {
                log::debug!("{role}: dropping connection: {e}");
                continue;
            }
        };
        let handler = Arc::clone(&handler);
        let spawned = thread::Builder::new()
            .name(format!("{role}-conn"))
            .stack_size(CONN_STACK)
            .spawn(move || {
                let _slot = slot;
                handler(conn)
            });
        if let Err(e) = spawned {
            log::warn!("{role}: cannot start a connection thread: {e}");
        }
    }
}

fn reject_busy(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(BUSY_REPLY_TIMEOUT));
    let _ = stream.write_all(b"ERR busy\n");
    log::debug!("connection limit reached; rejected a connection");
}

/// Live connections, in all and per IP address.
struct Slots {
    caps: ConnCaps,
    counts: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

impl Slots {
    fn new(caps: ConnCaps) -> Self {
        Slots {
            caps,
            counts: Mutex::new((0, HashMap::new())),
        }
    }

    fn take(slots: &Arc<Slots>, ip: IpAddr) -> Option<Slot> {
        let mut c = slots.counts.lock().unwrap_or_else(|e| e.into_inner());
        let from_ip = c.1.get(&ip).copied().unwrap_or(0);
        if c.0 >= slots.caps.total || from_ip >= slots.caps.per_ip {
            return None;
        }
        c.0 += 1;
        c.1.insert(ip, from_ip + 1);
        Some(Slot {
            slots: Arc::clone(slots),
            ip,
        })
    }
}

/// One taken connection slot; released when dropped, even on panic.
struct Slot {
    slots: Arc<Slots>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.slots.counts.lock().unwrap_or_else(|e| e.into_inner());
        c.0 -= 1;
        if let Some(n) = c.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.1.remove(&self.ip);
            }
        }
    }
}

/// What a request handler wants after answering one line.
pub enum Flow {
    Continue,
    Close,
}

/// Reads request lines from `conn` and hands each to `handle`, until the
/// client closes, idles past [`IDLE_TIMEOUT`] ([`FIRST_LINE_TIMEOUT`] before
/// its first request), sends a framing error (answered
/// with `ERR` before closing), or `handle` says `Close` or fails.
pub fn for_each_request<F>(mut conn: Connection, mut handle: F)
where
    F: FnMut(&mut Connection, &str) -> crate::error::Result<Flow>,
{
    let who = conn.peer_addr();
    let mut timeout = FIRST_LINE_TIMEOUT;
    loop {
        let line = match conn.read_line(timeout) {
            Ok(Some(line)) => line,
            Ok(None) => return,
            Err(Error::Protocol(e)) => {
                let _ = conn.write_all(Reply::err(&e).encode().as_bytes());
                log::debug!("{who}: closing after malformed input: {e}");
                conn.linger_close();
                return;
            }
            Err(e) => {
                log::debug!("{who}: closing: {e}");
                return;
            }
        };
        timeout = IDLE_TIMEOUT;
        match handle(&mut conn, &line) {
            Ok(Flow::Continue) => {}
            Ok(Flow::Close) => return,
            Err(e) => {
                log::debug!("{who}: closing: {e}");
                return;
            }
        }
    }
}
