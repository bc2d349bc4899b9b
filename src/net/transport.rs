//! The transport seam: [`Stream`] is what a `Connection` reads and writes,
//! whatever carries it. Today that is plain TCP; TLS is the next variant.
//! Code above this module never names `TcpStream`, except through
//! [`Stream::as_tcp`] for the zero-copy paths plain TCP allows (`sendfile`,
//! `MSG_MORE`).
//!
//! [`Interrupter`] is how another thread stops blocked I/O: it shuts the
//! socket down, which makes every read and write on it return at once.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// One connection's byte stream.
pub enum Stream {
    Tcp(TcpStream),
}

impl Stream {
    /// Connects to `addr`, resolving it here and trying each address with
    /// `timeout`.
    pub fn connect(addr: &str, timeout: Duration) -> io::Result<Stream> {
        let mut last = None;
        for sa in addr.to_socket_addrs()? {
            match Self::connect_addr(sa, timeout) {
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

    /// The socket underneath, whatever the stream's kind.
    fn socket(&self) -> &TcpStream {
        match self {
            Stream::Tcp(s) => s,
        }
    }

    /// The plain TCP stream, for zero-copy writes; `None` if the stream
    /// transforms its bytes (TLS).
    pub fn as_tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Tcp(s) => Some(s),
        }
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

    /// Stops sending: the other side reads end of stream.
    pub fn shutdown_write(&self) -> io::Result<()> {
        self.socket().shutdown(Shutdown::Write)
    }

    /// A handle another thread can use to interrupt this stream's I/O.
    pub fn interrupter(&self) -> io::Result<Interrupter> {
        Ok(Interrupter(self.socket().try_clone()?))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
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
    pub fn interrupt(&self) {
        // Fails only if the socket is already gone, which is what we want.
        let _ = self.0.shutdown(Shutdown::Both);
    }
}
