//! Raw protocol clients, for saying on the wire what no real peer would:
//! [`Raw`] (lines out, lines and payloads back, each read bounded),
//! [`Slowloris`] (one byte a second), [`Probe`] (times a server's answers
//! while it is under attack), and [`connect_from`], which connects from
//! another loopback address.
//!
//! Some clients connect from 127.0.0.2 and up, standing for other hosts: all
//! of 127.0.0.0/8 is loopback on Linux, and the tracker tells peers apart,
//! and the servers count connections, by source address. std cannot choose
//! a client's source address, so [`connect_from`] uses `libc`, which is a
//! dependency of the package and therefore usable here.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use p2pshare::identity::PeerId;
use p2pshare::manifest::Manifest;
use p2pshare::net::tls::Tls;
use p2pshare::net::transport::Stream;

use super::harness::wait_until;

/// How long a server may take to answer a line or to close, on a loaded
/// machine; the servers themselves take milliseconds.
pub const REPLY: Duration = Duration::from_secs(5);

/// Connects to `to` from the local address `from` (any of 127.0.0.0/8),
/// which the server takes for another host. std cannot bind a client socket
/// before connecting, hence libc.
pub fn connect_from(from: Ipv4Addr, to: SocketAddr) -> io::Result<TcpStream> {
    let SocketAddr::V4(to) = to else {
        panic!("IPv4 only: {to}")
    };
    let sockaddr = |a: SocketAddrV4| {
        // SAFETY: sockaddr_in is plain data, valid when zeroed.
        let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_port = a.port().to_be();
        sa.sin_addr.s_addr = u32::from(*a.ip()).to_be();
        sa
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a fresh descriptor, owned by `stream` at once, so it is closed
    // on every path; bind and connect get a valid sockaddr_in and its size.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        // On Linux the send timeout also bounds a blocking connect.
        stream.set_write_timeout(Some(REPLY))?;
        let local = sockaddr(SocketAddrV4::new(from, 0));
        if libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(io::Error::last_os_error());
        }
        let remote = sockaddr(to);
        if libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stream)
    }
}

/// A raw protocol client: lines out, reply lines or payload bytes back, each
/// read bounded by [`REPLY`]. Over plain text (the tracker) or TLS (peers,
/// which speak nothing else).
pub struct Raw {
    r: BufReader<Stream>,
    /// The socket underneath, for its address and state; never written to
    /// directly on TLS.
    pub w: TcpStream,
}

impl Raw {
    /// Plain text, as `nc` speaks to a tracker.
    pub fn connect(to: SocketAddr) -> Raw {
        Raw::new(
            TcpStream::connect(to)
                .unwrap_or_else(|e| panic!("connect {to}: {e}"))
                .into(),
        )
    }

    pub fn connect_from(from: Ipv4Addr, to: SocketAddr) -> Raw {
        let tcp =
            connect_from(from, to).unwrap_or_else(|e| panic!("connect {to} from {from}: {e}"));
        Raw::new(tcp.into())
    }

    /// TLS as `tls` (pinning the server's id if `pin`), as peers speak.
    pub fn connect_tls(to: SocketAddr, tls: &Tls, pin: Option<PeerId>) -> Raw {
        let tcp = TcpStream::connect(to).unwrap_or_else(|e| panic!("connect {to}: {e}"));
        let stream =
            Stream::tls_client(tcp, tls, pin, REPLY).unwrap_or_else(|e| panic!("TLS to {to}: {e}"));
        Raw::new(stream)
    }

    /// TLS as `tls` from the local address `from` (see [`connect_from`]),
    /// pinning nothing: a client certificate for the tracker, from another
    /// host.
    pub fn connect_tls_from(from: Ipv4Addr, to: SocketAddr, tls: &Tls) -> Raw {
        let tcp =
            connect_from(from, to).unwrap_or_else(|e| panic!("connect {to} from {from}: {e}"));
        let stream = Stream::tls_client(tcp, tls, None, REPLY)
            .unwrap_or_else(|e| panic!("TLS to {to} from {from}: {e}"));
        Raw::new(stream)
    }

    /// TLS to a peer, as a stranger with an identity of its own.
    pub fn peer(to: SocketAddr) -> Raw {
        Raw::connect_tls(to, &super::fakes::test_tls(), None)
    }

    /// A client on a stream made elsewhere (a TLS session from a chosen
    /// address, say).
    pub fn new(stream: Stream) -> Raw {
        stream.set_read_timeout(Some(REPLY)).unwrap();
        stream.set_write_timeout(Some(REPLY)).unwrap();
        Raw {
            w: stream.socket().try_clone().unwrap(),
            r: BufReader::new(stream),
        }
    }

    /// Another handle on the same plain connection (unbuffered reads so far).
    pub fn clone_raw(&self) -> Raw {
        Raw::new(self.w.try_clone().unwrap().into())
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.try_send(bytes).expect("cannot send");
    }

    /// Sends `bytes`, or says why it could not (the server closed).
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.r.get_mut().write_all(bytes)?;
        self.r.get_mut().flush()
    }

    /// The next reply line, without its `\n`.
    pub fn line(&mut self) -> String {
        let mut buf = Vec::new();
        let read = self.r.read_until(b'\n', &mut buf);
        if !buf.ends_with(b"\n") {
            panic!(
                "no whole reply line within {REPLY:?}: {read:?}, got {:?}",
                String::from_utf8_lossy(&buf)
            );
        }
        buf.pop();
        String::from_utf8(buf).expect("replies are UTF-8")
    }

    /// Sends `req` and a newline; returns the reply line.
    pub fn ask(&mut self, req: &str) -> String {
        self.send(format!("{req}\n").as_bytes());
        self.line()
    }

    /// Sends `req`, expects `OK N` (or `OK N more`) and returns the N lines
    /// that follow (a tracker's `SEARCH` or `PEERS`).
    pub fn list(&mut self, req: &str) -> Vec<String> {
        let header = self.ask(req);
        let n: usize = header
            .strip_prefix("OK ")
            .map(|n| n.strip_suffix(" more").unwrap_or(n))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("`{req}`: not a list reply: {header:?}"));
        (0..n).map(|_| self.line()).collect()
    }

    pub fn payload(&mut self, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        self.r.read_exact(&mut buf).expect("a whole payload");
        buf
    }

    /// Asserts that the server closes the connection within `within` and
    /// sends nothing more first; returns how it closed: `closed` (FIN) or
    /// `reset`.
    pub fn expect_close(&mut self, within: Duration) -> &'static str {
        assert!(
            self.r.buffer().is_empty(),
            "data after the reply: {:?}",
            self.r.buffer()
        );
        self.w.set_read_timeout(Some(within)).unwrap();
        let mut byte = [0u8; 1];
        match self.r.get_mut().read(&mut byte) {
            Ok(0) => "closed",
            Ok(_) => panic!("data instead of a close: {byte:?}"),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => "reset",
            Err(e) => panic!("not closed within {within:?}: {e}"),
        }
    }

    /// Asserts that the server gives this plain-text client no service: it
    /// closes within `within`, having sent nothing or only a TLS alert (a
    /// TLS server's answer to text).
    pub fn expect_no_service(&mut self, within: Duration) {
        self.w.set_read_timeout(Some(within)).unwrap();
        let mut got = Vec::new();
        let end = self.r.read_to_end(&mut got);
        assert!(
            got.is_empty() || got.starts_with(&[0x15, 0x03]),
            "a plain-text answer: {:?}",
            String::from_utf8_lossy(&got)
        );
        let closed = match &end {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        };
        assert!(closed, "not closed within {within:?}: {end:?}");
    }

    /// Whether the server has neither closed the connection nor sent
    /// anything on it.
    pub fn is_open(&self) -> bool {
        matches!(self.peek(), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Whether the server has not closed the connection (it may have
    /// sent something).
    pub fn is_alive(&self) -> bool {
        self.is_open() || matches!(self.peek(), Ok(1..))
    }

    /// Peeks at the socket without blocking: `Ok(0)` is a close.
    fn peek(&self) -> io::Result<usize> {
        self.w.set_nonblocking(true).unwrap();
        let peeked = self.w.peek(&mut [0u8; 1]);
        self.w.set_nonblocking(false).unwrap();
        peeked
    }
}

/// `REGISTER`s `port` with the tracker at `tracker` as having `manifest`'s
/// file under `name`, from 127.0.0.1, as the identity of `tls` (the tracker
/// lists it with that id, which downloaders then pin).
pub fn register(tls: &Tls, tracker: SocketAddr, port: u16, manifest: &Manifest, name: &str) {
    let id = manifest.id().to_hex();
    claim(tls, tracker, "REGISTER", port, &id, manifest.size(), name);
}

/// Sends `<verb> <port> <id> <size> <name>` (`REGISTER` or `PARTIAL`) to the
/// tracker at `tracker` from 127.0.0.1, over TLS as `tls`, which it must
/// accept.
pub fn claim(
    tls: &Tls,
    tracker: SocketAddr,
    verb: &str,
    port: u16,
    id: &str,
    size: u64,
    name: &str,
) {
    let req = format!("{verb} {port} {id} {size} {name}");
    let mut c = Raw::connect_tls(tracker, tls, None);
    assert_eq!(c.ask("HELLO 2"), "OK p2pshare 2");
    assert_eq!(c.ask(&req), "OK registered", "{req}");
}

/// The tracker's own answer to `SEARCH`, over a connection of ours, as
/// `(name, peers)` pairs: what it knows, independent of any peer's view.
pub fn tracker_lists(tracker: SocketAddr) -> Vec<(String, u32)> {
    let mut c = Raw::connect(tracker);
    assert_eq!(c.ask("HELLO 1"), "OK p2pshare 1");
    c.list("SEARCH")
        .iter()
        .map(|row| match row.split(' ').collect::<Vec<_>>().as_slice() {
            [_id, _size, peers, name] => (name.to_string(), peers.parse().unwrap()),
            _ => panic!("bad SEARCH row {row:?}"),
        })
        .collect()
}

/// A client that sends `line` one byte a second, on a thread of its own,
/// until the server closes or the line is out.
pub struct Slowloris {
    pub raw: Raw,
    sent: Arc<AtomicUsize>,
    writer: JoinHandle<()>,
}

impl Slowloris {
    pub fn start(to: SocketAddr, line: &[u8]) -> Slowloris {
        let raw = Raw::connect(to);
        let mut w = raw.w.try_clone().unwrap();
        let sent = Arc::new(AtomicUsize::new(0));
        let (counter, line) = (Arc::clone(&sent), line.to_vec());
        let writer = thread::spawn(move || {
            for byte in line {
                if w.write_all(&[byte]).is_err() {
                    return;
                }
                counter.fetch_add(1, Ordering::SeqCst);
                // The point of this client: a byte a second.
                thread::sleep(Duration::from_secs(1));
            }
        });
        Slowloris { raw, sent, writer }
    }

    /// Waits until `n` bytes are out (about `n - 1` seconds after the start).
    pub fn wait_sent(&self, n: usize) {
        let within = Duration::from_secs(n as u64 + 5);
        wait_until(within, "slowloris bytes sent", || {
            match self.sent.load(Ordering::SeqCst) {
                sent if sent >= n => Ok(()),
                sent => Err(format!("{sent} of {n} sent")),
            }
        });
    }

    /// Waits for the writer to stop (the server closed, or the line is out).
    pub fn wait_closed(self, within: Duration) {
        wait_until(within, "the slowloris writer stopped", || {
            if self.writer.is_finished() {
                Ok(())
            } else {
                Err("still writing".into())
            }
        });
    }
}

/// A client asking `request` on a fresh connection every 50 ms until
/// finished, timing each answer: the server under attack still serves others.
pub struct Probe {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<Result<Duration, String>>>,
}

impl Probe {
    /// A probe of a tracker, in plain text.
    pub fn start(to: SocketAddr, request: &'static str, want: &'static str) -> Probe {
        Probe::run(to, request, want, false)
    }

    /// A probe of a peer, over TLS (its handshake included in the times).
    pub fn peer(to: SocketAddr, request: &'static str, want: &'static str) -> Probe {
        Probe::run(to, request, want, true)
    }

    fn run(to: SocketAddr, request: &'static str, want: &'static str, tls: bool) -> Probe {
        let identity = super::fakes::test_tls();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let handle = thread::spawn(move || {
            let mut results = Vec::new();
            // Bounded even if never stopped: 2000 x 50 ms is 100 s.
            while !stopped.load(Ordering::SeqCst) && results.len() < 2000 {
                let started = Instant::now();
                let reply = (|| -> io::Result<String> {
                    let tcp = TcpStream::connect_timeout(&to, REPLY)?;
                    tcp.set_read_timeout(Some(REPLY))?;
                    let mut s = match tls {
                        true => Stream::tls_client(tcp, &identity, None, REPLY)?,
                        false => Stream::from(tcp),
                    };
                    s.write_all(format!("{request}\n").as_bytes())?;
                    let mut line = String::new();
                    BufReader::new(s).read_line(&mut line)?;
                    Ok(line)
                })();
                results.push(match reply {
                    Ok(line) if line.starts_with(want) => Ok(started.elapsed()),
                    Ok(line) => Err(line),
                    Err(e) => Err(e.to_string()),
                });
                // The probe's pace, not synchronisation.
                thread::sleep(Duration::from_millis(50));
            }
            results
        });
        Probe { stop, handle }
    }

    /// Stops the probe; asserts every request was answered within `bound`.
    pub fn finish(self, server: &str, bound: Duration) {
        self.stop.store(true, Ordering::SeqCst);
        let results = self.handle.join().expect("the probe panicked");
        let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(
            failures.is_empty(),
            "{server} failed the probe: {failures:?}"
        );
        let mut times: Vec<Duration> = results.into_iter().map(Result::unwrap).collect();
        times.sort();
        let slowest = *times.last().expect("at least one probe");
        eprintln!(
            "[figures] {server} probe: {} answers during the attack, median {:?}, slowest {slowest:?}",
            times.len(),
            times[times.len() / 2]
        );
        assert!(slowest < bound, "{server} answered a probe in {slowest:?}");
    }
}
