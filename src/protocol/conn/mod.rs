//! `Connection`: a [`Stream`] with a fixed read buffer, bounded line reads
//! with deadlines (so a slow or silent sender cannot hold a thread forever),
//! exact payload reads, and whole-message writes. The only protocol code that
//! touches a stream.

use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::codec::{line_text, split_line, Frame, ParseError};
use super::message::{parse_payload_len, Reply};
use crate::bounds::{
    BODY_GRACE, IO_TIMEOUT, LINGER_BYTES, LINGER_TIME, MAX_LINE, MIN_PAYLOAD_RATE, MIN_READ_RATE,
    PROGRESS_WINDOW, RATE_SLICE, READ_BUF, WRITE_CALL_TIMEOUT,
};
use crate::error::{Error, Result};
use crate::identity::PeerId;
use crate::net::rate::{self, RateCap};
use crate::net::stop::{StopGuard, StopSignal};
use crate::net::sys;
use crate::net::tls::Tls;
use crate::net::transport::{is_busy_alert, is_wrong_identity, Interrupter, Stream};

pub struct Connection {
    stream: Stream,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    peer: SocketAddr,
    /// How long [`read_reply`](Self::read_reply) waits for a reply line.
    reply_timeout: Duration,
    /// A chunk being sent when it cannot go straight from the page cache.
    send_buf: Vec<u8>,
    /// On a server: whether it is waiting for a request, for its slots.
    activity: Option<Arc<Activity>>,
    /// On a server: when the first request line must be in (one deadline
    /// from accept, the TLS handshake included).
    first_deadline: Option<Instant>,
    /// The download cap the socket's receive buffer was sized for (0:
    /// none), and the round trip it was sized with.
    recv_sized_for: u64,
    recv_rtt: Option<Duration>,
}

impl Connection {
    /// Wraps an accepted or connected stream, setting `TCP_NODELAY` and a
    /// write timeout.
    pub fn new(stream: impl Into<Stream>) -> io::Result<Self> {
        let stream = stream.into();
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(WRITE_CALL_TIMEOUT))?;
        let peer = stream.peer_addr()?;
        Ok(Connection {
            stream,
            buf: vec![0; READ_BUF].into_boxed_slice(),
            start: 0,
            end: 0,
            peer,
            reply_timeout: IO_TIMEOUT,
            send_buf: Vec::new(),
            activity: None,
            first_deadline: None,
            recv_sized_for: 0,
            recv_rtt: None,
        })
    }

    /// Connects to `addr` (a `host:port`, resolved here), trying each resolved
    /// address with `timeout`.
    pub fn connect(addr: &str, timeout: Duration) -> Result<Self> {
        Ok(Connection::new(Stream::connect(addr, timeout)?)?)
    }

    pub fn connect_addr(addr: SocketAddr, timeout: Duration) -> Result<Self> {
        Ok(Connection::new(Stream::connect_addr(addr, timeout)?)?)
    }

    /// Connects to `addr` (a `host:port`) and completes a TLS handshake,
    /// pinning the server's id if `pin` is given, all within `timeout`. A
    /// server whose certificate is not the pinned one is
    /// [`Error::WrongIdentity`].
    pub fn connect_tls(
        addr: &str,
        tls: &Tls,
        pin: Option<PeerId>,
        timeout: Duration,
    ) -> Result<Self> {
        let tcp = Stream::connect(addr, timeout)?;
        tcp.set_nodelay(true)?;
        let stream = Stream::tls_client(tcp, tls, pin, timeout).map_err(handshake_error)?;
        Ok(Connection::new(stream)?)
    }

    /// [`connect_tls`](Self::connect_tls), with the socket registered with
    /// `stop` as soon as it is connected: stopping interrupts the handshake
    /// too, and anything after it for as long as the guard is held.
    pub fn connect_tls_stoppable(
        addr: &str,
        tls: &Tls,
        pin: Option<PeerId>,
        timeout: Duration,
        stop: &Arc<StopSignal>,
    ) -> Result<(Self, StopGuard)> {
        Connection::connect_tls_within(addr, tls, pin, (timeout, timeout), stop)
    }

    /// [`connect_tls_stoppable`](Self::connect_tls_stoppable) with one
    /// timeout for the TCP connect and another for the TLS handshake.
    pub fn connect_tls_within(
        addr: &str,
        tls: &Tls,
        pin: Option<PeerId>,
        (connect, timeout): (Duration, Duration),
        stop: &Arc<StopSignal>,
    ) -> Result<(Self, StopGuard)> {
        let tcp = Stream::connect(addr, connect)?;
        tcp.set_nodelay(true)?;
        let guard = stop.guard(Interrupter::of(&tcp)?);
        let stream = Stream::tls_client(tcp, tls, pin, timeout).map_err(handshake_error)?;
        Ok((Connection::new(stream)?, guard))
    }

    /// The id the other side proved over TLS, if it did.
    pub fn peer_id(&self) -> Option<PeerId> {
        self.stream.peer_id()
    }

    /// A value only the two ends of this TLS session know (see
    /// [`Stream::exporter`]).
    pub fn exporter(&self, label: &[u8], context: &[u8]) -> Option<[u8; 32]> {
        self.stream.exporter(label, context)
    }

    /// The address of the other side.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The address of this side.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.stream.socket().local_addr()?)
    }

    /// Has the request loop report, through `activity`, whether this
    /// connection is waiting for a request (see [`Activity`]).
    pub(crate) fn set_activity(&mut self, activity: Arc<Activity>) {
        self.activity = Some(activity);
    }

    /// The first request line must be in by `at` (see
    /// [`first_line_timeout`](Self::first_line_timeout)).
    pub fn set_first_deadline(&mut self, at: Instant) {
        self.first_deadline = Some(at);
    }

    /// How long is left for the first request line: `default` unless a
    /// deadline was set when the connection was accepted.
    pub fn first_line_timeout(&self, default: Duration) -> Duration {
        self.first_deadline
            .map_or(default, |at| at.saturating_duration_since(Instant::now()))
    }

    /// Waiting for the next request line, from now.
    pub fn mark_idle(&self) {
        if let Some(a) = &self.activity {
            a.idle();
        }
    }

    /// A whole request line came in.
    pub fn mark_busy(&self) {
        if let Some(a) = &self.activity {
            a.busy();
        }
    }

    /// For a relay that splices this plain connection to another: a second
    /// handle on its socket, and the bytes read past the last line (taken
    /// out of the buffer). `None` on TLS, whose bytes cannot be spliced.
    pub fn detach_plain(&mut self) -> Option<io::Result<(std::net::TcpStream, Vec<u8>)>> {
        let tcp = self.stream.as_tcp()?;
        let early = self.buf[self.start..self.end].to_vec();
        self.start = self.end;
        Some(tcp.try_clone().map(|tcp| (tcp, early)))
    }

    /// A handle that interrupts this connection's I/O from another thread.
    pub fn interrupter(&self) -> io::Result<Interrupter> {
        self.stream.interrupter()
    }

    /// Stops sending: the other side reads end of stream after what was sent.
    pub fn shutdown_write(&mut self) {
        // Fails only if the connection is already gone.
        let _ = self.stream.shutdown_write();
    }

    /// Reads one line, which must arrive whole within `timeout`. `Ok(None)` is
    /// a clean close between lines.
    pub fn read_line(&mut self, timeout: Duration) -> Result<Option<String>> {
        let deadline = Instant::now() + timeout;
        loop {
            match split_line(&self.buf[self.start..self.end], MAX_LINE) {
                Frame::Line { len, consumed } => {
                    let line = &self.buf[self.start..self.start + len];
                    let text = line_text(line).map(str::to_string);
                    self.start += consumed;
                    return Ok(Some(text?));
                }
                Frame::TooLong => return Err(ParseError::LineTooLong(MAX_LINE).into()),
                Frame::Incomplete => {}
            }
            if self.fill(deadline, "a request line")? == 0 {
                return if self.start == self.end {
                    Ok(None)
                } else {
                    Err(Error::Closed)
                };
            }
        }
    }

    /// Reads exactly `len` bytes (at most the read buffer's size), which
    /// must all have arrived by `deadline`: a small request body.
    pub fn read_exact_by(&mut self, len: usize, deadline: Instant) -> Result<Vec<u8>> {
        if len > self.buf.len() {
            return Err(ParseError::LineTooLong(self.buf.len()).into());
        }
        while self.end - self.start < len {
            if self.fill(deadline, "a request body")? == 0 {
                return Err(Error::Closed);
            }
        }
        let body = self.buf[self.start..self.start + len].to_vec();
        self.start += len;
        Ok(body)
    }

    /// Reads a request body of `len` bytes (at most the read buffer's
    /// size) on a server: it must arrive at [`MIN_PAYLOAD_RATE`], within
    /// [`BODY_GRACE`] + `len / MIN_PAYLOAD_RATE`, or the request fails
    /// (the caller closes). Until it is in, the connection counts as idle
    /// since its last request ended (see `net::slots`), so one trickling
    /// bodies holds no slot against newcomers.
    pub fn read_body(&mut self, len: usize) -> Result<Vec<u8>> {
        if let Some(a) = &self.activity {
            a.waiting();
        }
        let at_rate = Duration::from_secs_f64(len as f64 / MIN_PAYLOAD_RATE as f64);
        let allowed = BODY_GRACE + at_rate;
        let body = self.read_exact_by(len, Instant::now() + allowed)?;
        self.mark_busy();
        Ok(body)
    }

    /// Sets how long [`read_reply`](Self::read_reply) waits (default
    /// [`IO_TIMEOUT`]), e.g. shorter when leaving at exit.
    pub fn set_reply_timeout(&mut self, timeout: Duration) {
        self.reply_timeout = timeout;
    }

    /// Reads a reply line (`OK ...` / `ERR ...`) and returns the `OK` text;
    /// `ERR busy` (a server at its connection caps) becomes [`Error::Busy`],
    /// any other `ERR` [`Error::Remote`].
    pub fn read_reply(&mut self) -> Result<String> {
        let line = self.read_line(self.reply_timeout)?.ok_or(Error::Closed)?;
        Reply::parse(&line)?
            .into_result()
            .map_err(|reason| match reason.as_str() {
                BUSY => Error::Busy,
                _ => Error::Remote(reason),
            })
    }

    /// Sends one request line and reads its reply (see
    /// [`read_reply`](Self::read_reply)).
    pub fn request(&mut self, line: &str) -> Result<String> {
        self.write_all(line.as_bytes())?;
        self.read_reply()
    }

    /// Closes after an error reply so that the reply is not lost: stops
    /// sending, then discards what the client still sends (at most 1 MiB, for
    /// at most 500 ms). Closing with unread input would reset the connection,
    /// and a reset may discard the `ERR` line before the client reads it.
    pub fn linger_close(mut self) {
        self.shutdown_write();
        let deadline = Instant::now() + LINGER_TIME;
        let mut discarded = 0;
        while discarded < LINGER_BYTES {
            self.start = 0;
            self.end = 0;
            match self.fill(deadline, "the client to finish") {
                Ok(0) | Err(_) => return,
                Ok(n) => discarded += n,
            }
        }
    }

    /// Reads more bytes into the buffer, compacting it first; returns 0 at EOF.
    fn fill(&mut self, deadline: Instant, what: &'static str) -> Result<usize> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Error::Timeout(what));
        }
        self.stream.set_read_timeout(Some(remaining))?;
        loop {
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(e.kind()) => return Err(Error::Timeout(what)),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The reason a server at its connection caps gives.
pub const BUSY: &str = "busy";

/// A failed TLS handshake: the wrong certificate, or any other failure.
pub fn handshake_error(e: io::Error) -> Error {
    if is_wrong_identity(&e) {
        // The verifier's own words, without rustls's "unexpected error: ".
        let text = e.to_string();
        let plain = text.strip_prefix("unexpected error: ").unwrap_or(&text);
        Error::WrongIdentity(plain.to_string())
    } else if is_busy_alert(&e) {
        Error::Busy
    } else {
        Error::Io(e)
    }
}

fn is_timeout(kind: io::ErrorKind) -> bool {
    matches!(kind, io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

mod activity;
mod payload;

pub(crate) use activity::Activity;
pub use payload::Payload;

#[cfg(test)]
mod tests;
