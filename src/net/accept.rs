//! The accept loop shared by the tracker, the peer's chunk server and the
//! status page: one thread per connection, within the server's [`Slots`]
//! (caps in all and per IP address; a full server closes its longest-idle
//! connection for a newcomer), so one host flooding connections, or many
//! holding them open idle, cannot starve everyone else. A connection that
//! gets no slot gets `ERR busy` and is closed at once.
//!
//! [`spawn`] runs a server on its own thread and returns a [`ServerHandle`]
//! that stops it: the accept loop ends and every live connection is
//! interrupted. The listener is passed in, so tests can bind port 0 and run
//! servers in-process.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::slots::{Activity, Slots, Taken};
use super::stop::StopSignal;
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

/// A server running on a thread of its own; stopped when dropped.
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Arc<StopSignal>,
    /// A second handle on the listening socket, to wake the blocked accept.
    waker: TcpListener,
    slots: Arc<Slots>,
    thread: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The address the server listens on (the real port if it bound 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Live connections being served.
    pub fn connections(&self) -> usize {
        self.slots.count()
    }

    /// Stops accepting, interrupts every live connection, and waits (at most
    /// a second) for their threads to let go of their slots.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        self.stop.stop();
        super::sys::wake_accept(&self.waker);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.connections() > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Serves `listener` on a thread named `role`, running `handler` on a thread
/// of its own for each accepted connection, until the handle is stopped.
pub fn spawn<H>(
    listener: TcpListener,
    caps: ConnCaps,
    role: &'static str,
    handler: H,
) -> io::Result<ServerHandle>
where
    H: Fn(Connection) + Send + Sync + 'static,
{
    let addr = listener.local_addr()?;
    let waker = listener.try_clone()?;
    let stop = StopSignal::new();
    let slots = Slots::new(caps);
    let (thread_stop, thread_slots) = (Arc::clone(&stop), Arc::clone(&slots));
    let thread = thread::Builder::new()
        .name(role.into())
        .spawn(move || serve(listener, &thread_slots, role, &thread_stop, handler))?;
    Ok(ServerHandle {
        addr,
        stop,
        waker,
        slots,
        thread: Some(thread),
    })
}

/// The accept loop: runs until `stop` is stopped.
fn serve<H>(
    listener: TcpListener,
    slots: &Arc<Slots>,
    role: &'static str,
    stop: &Arc<StopSignal>,
    handler: H,
) where
    H: Fn(Connection) + Send + Sync + 'static,
{
    if let Err(e) = super::sys::set_backlog(&listener, LISTEN_BACKLOG) {
        log::warn!("{role}: cannot raise the listen backlog: {e}");
    }
    let handler = Arc::new(handler);
    let mut backoff = Duration::from_millis(10);
    for stream in listener.incoming() {
        if stop.is_stopped() {
            return;
        }
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
        let activity = Activity::new();
        let interrupters = Connection::new(stream).and_then(|conn| {
            let both = (conn.interrupter()?, conn.interrupter()?);
            Ok((conn, both))
        });
        let (mut conn, (for_slot, for_stop)) = match interrupters {
            Ok(made) => made,
            Err(e) => {
                log::debug!("{role}: dropping connection: {e}");
                continue;
            }
        };
        let slot = match slots.take(ip, &activity, for_slot) {
            Taken::Slot(slot) => slot,
            Taken::Busy => {
                reject_busy(conn);
                continue;
            }
        };
        let guard = stop.guard(for_stop);
        conn.set_activity(activity);
        let handler = Arc::clone(&handler);
        let spawned = thread::Builder::new()
            .name(format!("{role}-conn"))
            .stack_size(CONN_STACK)
            .spawn(move || {
                let _slot = slot;
                let _guard = guard;
                handler(conn)
            });
        if let Err(e) = spawned {
            log::warn!("{role}: cannot start a connection thread: {e}");
        }
    }
}

fn reject_busy(mut conn: Connection) {
    conn.set_write_timeout(BUSY_REPLY_TIMEOUT);
    let _ = conn.write_all(Reply::err(crate::protocol::conn::BUSY).encode().as_bytes());
    log::debug!("connection limit reached; rejected a connection");
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
        conn.mark_idle();
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
        conn.mark_busy();
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
