//! Servers, the layer above connections (`protocol::conn`): the accept
//! loop shared by the tracker, the peer's chunk server and the
//! status page: one thread per connection, within the server's [`Slots`]
//! (caps in all and per IP address; a full server closes its longest-idle
//! connection for a newcomer), so one host flooding connections, or many
//! holding them open idle, cannot starve everyone else. A connection that
//! gets no slot gets `ERR busy` and is closed at once.
//!
//! [`spawn`] runs a server on its own thread and returns a [`ServerHandle`]
//! that stops it: the accept loop ends and every live connection is
//! interrupted. The listener is passed in, so tests can bind port 0 and run
//! servers in-process. [`for_each_request`] is the request loop they share.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use self::slots::{Slots, Taken};
use crate::bounds::{
    ConnCaps, BUSY_REPLY_TIMEOUT, CONN_STACK, FIRST_LINE_TIMEOUT, IDLE_TIMEOUT, LISTEN_BACKLOG,
};
use crate::error::Error;
use crate::net::stop::StopSignal;
use crate::net::sys;
use crate::net::transport::{Interrupter, Stream};
use crate::protocol::conn::Activity;
use crate::protocol::{Connection, Reply};
use rustls::ServerConfig;

mod slots;

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
        sys::wake_accept(&self.waker);
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

/// How a server's connections are carried.
#[derive(Clone)]
pub enum Security {
    /// Plain TCP (the status page).
    Plain,
    /// TLS 1.3 from the first byte (between peers).
    Tls(Arc<ServerConfig>),
    /// TLS if the first byte starts a TLS record (0x16, which no text line
    /// can start with), plain text otherwise (the tracker: peers use TLS,
    /// a person types into `nc`).
    Detect(Arc<ServerConfig>),
}

/// Serves `listener` on a thread named `role`, running `handler` on a thread
/// of its own for each accepted connection (after its TLS handshake, if
/// any), until the handle is stopped.
pub fn spawn<H>(
    listener: TcpListener,
    caps: ConnCaps,
    security: Security,
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
    let thread = thread::Builder::new().name(role.into()).spawn(move || {
        let server = Server {
            slots: thread_slots,
            security,
            role,
            stop: thread_stop,
        };
        server.serve(listener, handler)
    })?;
    Ok(ServerHandle {
        addr,
        stop,
        waker,
        slots,
        thread: Some(thread),
    })
}

/// What the accept loop and its connection threads share.
struct Server {
    slots: Arc<Slots>,
    security: Security,
    role: &'static str,
    stop: Arc<StopSignal>,
}

impl Server {
    /// The accept loop: runs until `stop` is stopped.
    fn serve<H>(self, listener: TcpListener, handler: H)
    where
        H: Fn(Connection) + Send + Sync + 'static,
    {
        let role = self.role;
        if let Err(e) = sys::set_backlog(&listener, LISTEN_BACKLOG) {
            log::warn!("{role}: cannot raise the listen backlog: {e}");
        }
        let handler = Arc::new(handler);
        let mut backoff = Duration::from_millis(10);
        for stream in listener.incoming() {
            if self.stop.is_stopped() {
                return;
            }
            let tcp = match stream {
                Ok(tcp) => {
                    backoff = Duration::from_millis(10);
                    tcp
                }
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    log::warn!("{role}: accept failed: {e}; retrying in {backoff:?}");
                    thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            if let Err(e) = self.admit(tcp, &handler) {
                log::debug!("{role}: dropping connection: {e}");
            }
        }
    }

    /// Takes a slot for `tcp` (or refuses it, busy) and starts its thread.
    fn admit<H>(&self, tcp: TcpStream, handler: &Arc<H>) -> io::Result<()>
    where
        H: Fn(Connection) + Send + Sync + 'static,
    {
        let ip = tcp.peer_addr()?.ip();
        let activity = Activity::new();
        let slot = match self.slots.take(ip, &activity, Interrupter::of(&tcp)?) {
            Taken::Slot(slot) => slot,
            Taken::Busy => {
                reject_busy(tcp, !matches!(self.security, Security::Plain));
                return Ok(());
            }
        };
        let guard = self.stop.guard(Interrupter::of(&tcp)?);
        let (handler, security, role) = (Arc::clone(handler), self.security.clone(), self.role);
        let spawned = thread::Builder::new()
            .name(format!("{role}-conn"))
            .stack_size(CONN_STACK)
            .spawn(move || {
                let _slot = slot;
                let _guard = guard;
                match open(tcp, &security) {
                    Ok(mut conn) => {
                        conn.set_activity(activity);
                        handler(conn)
                    }
                    Err(e) => log::debug!("{role}: no connection: {e}"),
                }
            });
        if let Err(e) = spawned {
            log::warn!("{role}: cannot start a connection thread: {e}");
        }
        Ok(())
    }
}

/// Makes a connection of `tcp`: a TLS handshake (or the detection of one)
/// and then the first request line, all within [`FIRST_LINE_TIMEOUT`] of
/// now, the time a client has to say anything.
fn open(tcp: TcpStream, security: &Security) -> io::Result<Connection> {
    let deadline = Instant::now() + FIRST_LINE_TIMEOUT;
    // Never zero: a zero timeout means none to the socket calls.
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let stream = match security {
        Security::Plain => Stream::from(tcp),
        Security::Tls(config) => Stream::tls_server(tcp, config, left())?,
        Security::Detect(config) => {
            tcp.set_read_timeout(Some(left()))?;
            let mut first = [0u8; 1];
            match tcp.peek(&mut first) {
                Ok(1) if first[0] == TLS_HANDSHAKE => Stream::tls_server(tcp, config, left())?,
                Ok(_) => Stream::from(tcp),
                Err(e) => return Err(e),
            }
        }
    };
    let mut conn = Connection::new(stream)?;
    conn.set_first_deadline(deadline);
    Ok(conn)
}

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// A fatal `user_canceled` TLS alert, as a plaintext record: what a TLS
/// server at its caps sends instead of a handshake. Clients read it as busy.
const TLS_BUSY_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 90];

fn reject_busy(mut tcp: TcpStream, tls: bool) {
    let _ = tcp.set_write_timeout(Some(BUSY_REPLY_TIMEOUT));
    let _ = match tls {
        true => tcp.write_all(&TLS_BUSY_ALERT),
        false => tcp.write_all(Reply::err(crate::protocol::conn::BUSY).encode().as_bytes()),
    };
    log::debug!("connection limit reached; rejected a connection");
}

/// What a request handler wants after answering one line.
pub enum Flow {
    Continue,
    Close,
    /// Close after an `ERR` reply to input that cannot be read past (a
    /// frame too big to skip, bytes that are not this protocol): what the
    /// client still sends is discarded first, so that a reset does not take
    /// the reply with it.
    CloseAfterError,
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
    let mut timeout = conn.first_line_timeout(FIRST_LINE_TIMEOUT);
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
                if matches!(e, Error::Timeout(_)) {
                    // An orderly close (close_notify on TLS): the client can
                    // tell "idle too long" from a cut connection.
                    conn.shutdown_write();
                }
                return;
            }
        };
        timeout = IDLE_TIMEOUT;
        conn.mark_busy();
        match handle(&mut conn, &line) {
            Ok(Flow::Continue) => {}
            Ok(Flow::Close) => {
                // On TLS this sends close_notify first, so that the client
                // can tell our close (after `QUIT`) from a cut connection.
                conn.shutdown_write();
                return;
            }
            Ok(Flow::CloseAfterError) => {
                conn.linger_close();
                return;
            }
            Err(e) => {
                log::debug!("{who}: closing: {e}");
                return;
            }
        }
    }
}
