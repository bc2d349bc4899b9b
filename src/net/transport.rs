//! The transport seam: [`Stream`] is what a `Connection` reads and writes,
//! whatever carries it: plain TCP (the tracker's text protocol for `nc`) or
//! TLS 1.3 over TCP (everything between peers, and peers to the tracker).
//! Code above this module never names `TcpStream`, except through
//! [`Stream::as_tcp`] for the zero-copy paths plain TCP allows (`sendfile`,
//! `MSG_MORE`).
//!
//! [`Interrupter`] is how another thread stops blocked I/O: it shuts the
//! socket down, which makes every read and write on it return at once,
//! whether or not TLS runs on top.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ClientConnection, ServerConfig, ServerConnection, StreamOwned};

use super::tls::{self, Tls};
use crate::bounds::TLS_SEND_BUFFER;
use crate::identity::PeerId;

/// One connection's byte stream.
pub enum Stream {
    Tcp(TcpStream),
    TlsClient(Box<StreamOwned<ClientConnection, TcpStream>>),
    TlsServer(Box<StreamOwned<ServerConnection, TcpStream>>),
}

/// What a TLS handshake failed on: a certificate that is not the pinned
/// one is told apart from the rest, since it means someone else answered.
pub fn is_wrong_identity(e: &io::Error) -> bool {
    matches!(tls_error(e), Some(rustls::Error::General(m)) if m.contains("is not the expected"))
}

/// Whether a TLS handshake was refused with the busy alert (a server at its
/// connection caps; see `server`).
pub fn is_busy_alert(e: &io::Error) -> bool {
    matches!(
        tls_error(e),
        Some(rustls::Error::AlertReceived(
            rustls::AlertDescription::UserCanceled
        ))
    )
}

fn tls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

impl Stream {
    /// Connects to `addr`, resolving it here and trying each address with
    /// `timeout`.
    pub fn connect(addr: &str, timeout: Duration) -> io::Result<TcpStream> {
        let mut last = None;
        for sa in addr.to_socket_addrs()? {
            match TcpStream::connect_timeout(&sa, timeout) {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "address resolved to nothing")
        }))
    }

    pub fn connect_addr(addr: SocketAddr, timeout: Duration) -> io::Result<Stream> {
        Ok(Stream::Tcp(TcpStream::connect_timeout(&addr, timeout)?))
    }

    /// Starts TLS as the client on `tcp`, pinning `pin` if given, and
    /// completes the handshake within `timeout`.
    pub fn tls_client(
        tcp: TcpStream,
        tls: &Tls,
        pin: Option<PeerId>,
        timeout: Duration,
    ) -> io::Result<Stream> {
        let conn = ClientConnection::new(Arc::clone(&tls.client), tls::server_name(pin))
            .map_err(io::Error::other)?;
        let mut s = StreamOwned::new(conn, tcp);
        handshake(&mut s.conn, &mut s.sock, timeout)?;
        s.conn.set_buffer_limit(Some(TLS_SEND_BUFFER));
        Ok(Stream::TlsClient(Box::new(s)))
    }

    /// Starts TLS as the server on `tcp` and completes the handshake within
    /// `timeout`.
    pub fn tls_server(
        tcp: TcpStream,
        config: &Arc<ServerConfig>,
        timeout: Duration,
    ) -> io::Result<Stream> {
        let conn = ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
        let mut s = StreamOwned::new(conn, tcp);
        handshake(&mut s.conn, &mut s.sock, timeout)?;
        s.conn.set_buffer_limit(Some(TLS_SEND_BUFFER));
        Ok(Stream::TlsServer(Box::new(s)))
    }

    /// The socket underneath, whatever the stream's kind: for its address,
    /// timeouts and shutdown; on TLS, reading or writing it directly would
    /// corrupt the session.
    pub fn socket(&self) -> &TcpStream {
        match self {
            Stream::Tcp(s) => s,
            Stream::TlsClient(s) => &s.sock,
            Stream::TlsServer(s) => &s.sock,
        }
    }

    /// Whether TLS holds records the socket has not taken yet (never on
    /// plain TCP): what a flush would still have to send.
    pub fn wants_write(&self) -> bool {
        match self {
            Stream::Tcp(_) => false,
            Stream::TlsClient(s) => s.conn.wants_write(),
            Stream::TlsServer(s) => s.conn.wants_write(),
        }
    }

    /// The plain TCP stream, for zero-copy writes; `None` if the stream
    /// transforms its bytes (TLS).
    pub fn as_tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Tcp(s) => Some(s),
            _ => None,
        }
    }

    /// The id of the certificate the other side proved, if any.
    pub fn peer_id(&self) -> Option<PeerId> {
        match self {
            Stream::Tcp(_) => None,
            Stream::TlsClient(s) => tls::peer_id_of(s.conn.peer_certificates()),
            Stream::TlsServer(s) => tls::peer_id_of(s.conn.peer_certificates()),
        }
    }

    /// 32 bytes both ends of this TLS session can compute and nobody else
    /// can (RFC 8446 exporter, `label`, `context`); `None` on plain TCP.
    pub fn exporter(&self, label: &[u8], context: &[u8]) -> Option<[u8; 32]> {
        let mut out = [0u8; 32];
        let ok = match self {
            Stream::Tcp(_) => return None,
            Stream::TlsClient(s) => s
                .conn
                .export_keying_material(&mut out, label, Some(context))
                .is_ok(),
            Stream::TlsServer(s) => s
                .conn
                .export_keying_material(&mut out, label, Some(context))
                .is_ok(),
        };
        ok.then_some(out)
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket().peer_addr()
    }

    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.socket().set_nodelay(on)
    }

    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket().set_read_timeout(timeout)
    }

    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket().set_write_timeout(timeout)
    }

    /// Stops sending (after TLS's close_notify): the other side reads end
    /// of stream.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(_) => {}
            Stream::TlsClient(s) => {
                s.conn.send_close_notify();
                let _ = s.conn.complete_io(&mut s.sock);
            }
            Stream::TlsServer(s) => {
                s.conn.send_close_notify();
                let _ = s.conn.complete_io(&mut s.sock);
            }
        }
        self.socket().shutdown(Shutdown::Write)
    }

    /// A handle another thread can use to interrupt this stream's I/O.
    pub fn interrupter(&self) -> io::Result<Interrupter> {
        Ok(Interrupter(self.socket().try_clone()?))
    }
}

/// Drives a handshake to its end within `timeout`, one read or write at a
/// time, so that a peer trickling its handshake a byte at a time is cut off
/// at the deadline (rustls's `complete_io` would go on while bytes come).
fn handshake<C, S>(conn: &mut C, tcp: &mut TcpStream, timeout: Duration) -> io::Result<()>
where
    C: std::ops::DerefMut<Target = rustls::ConnectionCommon<S>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake"));
        }
        if conn.wants_write() {
            tcp.set_write_timeout(Some(left))?;
            conn.write_tls(tcp)?;
            continue;
        }
        if !conn.is_handshaking() {
            return Ok(());
        }
        tcp.set_read_timeout(Some(left))?;
        if conn.read_tls(tcp)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if let Err(e) = conn.process_new_packets() {
            // Tell the other side why (an alert is queued), then fail.
            let _ = conn.write_tls(tcp);
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::TlsClient(s) => s.read(buf),
            Stream::TlsServer(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::TlsClient(s) => s.write(buf),
            Stream::TlsServer(s) => s.write(buf),
        }
    }

    /// Gathered: one `writev` on TCP; on TLS, one plaintext write that
    /// rustls cuts into records across the slices. (`StreamOwned` has no
    /// `write_vectored` of its own: the default would write the first
    /// slice alone, so this goes through rustls's borrowed `Stream`.)
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::TlsClient(s) => {
                rustls::Stream::new(&mut s.conn, &mut s.sock).write_vectored(bufs)
            }
            Stream::TlsServer(s) => {
                rustls::Stream::new(&mut s.conn, &mut s.sock).write_vectored(bufs)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::TlsClient(s) => s.flush(),
            Stream::TlsServer(s) => s.flush(),
        }
    }
}

impl From<TcpStream> for Stream {
    fn from(s: TcpStream) -> Self {
        Stream::Tcp(s)
    }
}

/// Interrupts a stream from another thread: blocked reads and writes on it
/// return at once, and so does every later one.
pub struct Interrupter(TcpStream);

impl Interrupter {
    /// An interrupter of the socket `tcp`.
    pub fn of(tcp: &TcpStream) -> io::Result<Interrupter> {
        Ok(Interrupter(tcp.try_clone()?))
    }

    pub fn interrupt(&self) {
        // Fails only if the socket is already gone, which is what we want.
        let _ = self.0.shutdown(Shutdown::Both);
    }
}
