//! A NAT-PMP client on one connected UDP socket (so only the gateway's
//! `IP:5351` can answer it): each exchange resends after
//! `NATPMP_FIRST_WAIT`, doubling, `NATPMP_TRIES` times, and ignores
//! datagrams that answer something else. A gateway that refuses the port
//! (ICMP port unreachable) ends the exchange at once.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use super::wire::{self, WireError, MAX_ANSWER};
use super::{Granted, MapError, Protocol, Router};
use crate::bounds::{NATPMP_FIRST_WAIT, NATPMP_TRIES};

/// Most datagrams one wait reads before it resends: stray ones cannot
/// keep it reading past its deadline anyway, nor forever within it.
const MAX_STRAYS: usize = 64;

/// A gateway spoken to with NAT-PMP.
pub struct NatPmp {
    gateway: SocketAddr,
    socket: UdpSocket,
    /// The first wait of an exchange (doubling), and how many sends.
    first_wait: Duration,
    tries: u32,
}

impl NatPmp {
    /// A client of the NAT-PMP gateway at `gateway` (`IP:5351`), sending
    /// from `bind` (unspecified: the address facing the gateway).
    pub fn new(gateway: SocketAddr, bind: IpAddr) -> io::Result<NatPmp> {
        let socket = UdpSocket::bind(SocketAddr::new(bind, 0))?;
        socket.connect(gateway)?;
        Ok(NatPmp {
            gateway,
            socket,
            first_wait: NATPMP_FIRST_WAIT,
            tries: NATPMP_TRIES,
        })
    }

    /// The same, waiting `first_wait` and sending `tries` times (tests).
    pub fn with_waits(mut self, first_wait: Duration, tries: u32) -> NatPmp {
        (self.first_wait, self.tries) = (first_wait, tries.max(1));
        self
    }

    /// The gateway's external IPv4 address (RFC 6886 3.2).
    pub fn external(&self) -> Result<Ipv4Addr, MapError> {
        let answer = self.exchange(&wire::address_request(), wire::address_answer)?;
        Ok(answer.external)
    }

    /// Sends `request` and waits for an answer `decode` accepts.
    fn exchange<T>(
        &self,
        request: &[u8],
        decode: impl Fn(&[u8]) -> Result<T, WireError>,
    ) -> Result<T, MapError> {
        let mut wait = self.first_wait;
        for _ in 0..self.tries {
            self.socket.send(request).map_err(|e| self.io_error(e))?;
            if let Some(answer) = self.await_answer(wait, &decode)? {
                return Ok(answer);
            }
            wait *= 2;
        }
        Err(MapError::NoAnswer(self.gateway))
    }

    /// The answer to the request just sent, if one comes within `wait`.
    fn await_answer<T>(
        &self,
        wait: Duration,
        decode: &impl Fn(&[u8]) -> Result<T, WireError>,
    ) -> Result<Option<T>, MapError> {
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; MAX_ANSWER + 1];
        for _ in 0..MAX_STRAYS {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.socket
                .set_read_timeout(Some(left))
                .map_err(|e| self.io_error(e))?;
            let n = match self.socket.recv(&mut buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break;
                }
                Err(e) => return Err(self.io_error(e)),
            };
            match decode(&buf[..n]) {
                Ok(answer) => return Ok(Some(answer)),
                Err(e) if e.is_unrelated() => continue,
                Err(e) => return Err(MapError::NatPmp(e)),
            }
        }
        Ok(None)
    }

    fn io_error(&self, e: io::Error) -> MapError {
        match e.kind() {
            // ICMP port unreachable: the router runs no NAT-PMP.
            io::ErrorKind::ConnectionRefused => MapError::NoAnswer(self.gateway),
            _ => MapError::Io(e),
        }
    }

    fn local_v4(&self) -> Result<Ipv4Addr, MapError> {
        match self.socket.local_addr().map_err(MapError::Io)?.ip() {
            IpAddr::V4(ip) => Ok(ip),
            IpAddr::V6(ip) => Err(MapError::NoExternal(ip.into())),
        }
    }
}

impl Router for NatPmp {
    fn protocol(&self) -> Protocol {
        Protocol::NatPmp
    }

    fn map(&mut self, internal: u16, wanted: u16, lease: Duration) -> Result<Granted, MapError> {
        let ip = self.external()?;
        if ip.is_unspecified() {
            return Err(MapError::NoExternal(ip.into()));
        }
        let secs = u32::try_from(lease.as_secs()).unwrap_or(u32::MAX).max(1);
        let request = wire::map_request(internal, wanted, secs);
        let answer = self.exchange(&request, |b| wire::map_answer(b, internal))?;
        Ok(Granted {
            protocol: Protocol::NatPmp,
            internal: SocketAddrV4::new(self.local_v4()?, internal),
            external: SocketAddrV4::new(ip, answer.external),
            lease: Some(Duration::from_secs(answer.lifetime.into())),
        })
    }

    fn unmap(&mut self, granted: &Granted) -> Result<(), MapError> {
        let internal = granted.internal.port();
        let request = wire::map_request(internal, 0, 0);
        self.exchange(&request, |b| wire::map_answer(b, internal))
            .map(|_| ())
    }
}
