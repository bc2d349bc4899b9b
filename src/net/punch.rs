//! TCP from a listening port, for a hole punch: a socket bound (with
//! `SO_REUSEADDR` and `SO_REUSEPORT`) to the port a listener holds, then
//! connected, so that the NAT in front maps it as it maps that port, and
//! a SYN crossing ours on the way in meets this socket (TCP simultaneous
//! open). Linux lets the two share the port only when both set
//! `SO_REUSEPORT` and belong to one user: [`share_port`] sets it on the
//! listener after its bind, so that binding the listener still fails on a
//! port in use.

use std::io;
use std::mem::size_of;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// How often a connect in progress looks whether it should give up.
const SLICE: Duration = Duration::from_millis(100);

/// A local TCP port free now (on every address, both families where the
/// host has IPv6), for a connection made from it soon after.
pub fn free_port() -> io::Result<u16> {
    let probe = TcpListener::bind("[::]:0").or_else(|_| TcpListener::bind("0.0.0.0:0"))?;
    Ok(probe.local_addr()?.port())
}

/// Lets [`connect_from`] bind to `listener`'s port.
pub fn share_port(listener: &TcpListener) -> io::Result<()> {
    set_flag(listener.as_raw_fd(), libc::SO_REUSEPORT)
}

fn set_flag(fd: RawFd, option: libc::c_int) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `fd` is open for the call; the value is a c_int of the
    // size given.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    match r {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// A TCP connection from local `port` (any address of `to`'s family) to
/// `to`, made within `timeout`; `give_up` is asked every 100 ms and ends
/// the attempt with `Interrupted` when it says so.
pub fn connect_from(
    port: u16,
    to: SocketAddr,
    timeout: Duration,
    give_up: &dyn Fn() -> bool,
) -> io::Result<TcpStream> {
    let family = match to {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    let kind = libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
    // SAFETY: plain socket(2); the descriptor is owned at once below.
    let fd = unsafe { libc::socket(family, kind, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    set_flag(fd.as_raw_fd(), libc::SO_REUSEADDR)?;
    set_flag(fd.as_raw_fd(), libc::SO_REUSEPORT)?;
    let local = match to {
        SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], port)),
        SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], port)),
    };
    let (addr, len) = raw(&local);
    // SAFETY: `addr` holds a sockaddr of `len` bytes for the call.
    if unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_storage).cast(),
            len,
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    let (addr, len) = raw(&to);
    // SAFETY: as for bind.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if r != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
        wait_connected(fd.as_raw_fd(), timeout, give_up)?;
    }
    let stream = TcpStream::from(fd);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// Waits for a non-blocking connect on `fd` to end, and says how.
fn wait_connected(fd: RawFd, timeout: Duration, give_up: &dyn Fn() -> bool) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if give_up() {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        let ms = left.min(SLICE).as_millis().max(1) as libc::c_int;
        // SAFETY: one pollfd, valid for the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n > 0 {
            let mut err: libc::c_int = 0;
            let mut len = size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: `err` and `len` are valid for the call.
            let r = unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_ERROR,
                    (&mut err as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            return match (r, err) {
                (0, 0) => Ok(()),
                (0, e) => Err(io::Error::from_raw_os_error(e)),
                _ => Err(io::Error::last_os_error()),
            };
        }
    }
}

/// `addr` as a `sockaddr_storage` and its length.
fn raw(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for
            // sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// A socket bound to a listener's port (shared) connects out, and the
    /// listener still accepts; an unshared listener's port is refused.
    #[test]
    fn a_shared_listen_port_also_connects_out() {
        let ours = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = ours.local_addr().expect("addr").port();
        let theirs = TcpListener::bind("127.0.0.1:0").expect("bind");
        let to = theirs.local_addr().expect("addr");
        let never = || false;
        let refused = connect_from(port, to, Duration::from_secs(2), &never);
        assert_eq!(
            refused.err().map(|e| e.kind()),
            Some(io::ErrorKind::AddrInUse)
        );
        share_port(&ours).expect("share");
        let mut out = connect_from(port, to, Duration::from_secs(2), &never).expect("connect");
        assert_eq!(out.local_addr().expect("local").port(), port);
        let (mut inn, _) = theirs.accept().expect("accept");
        out.write_all(b"x").expect("write");
        let mut b = [0u8; 1];
        inn.read_exact(&mut b).expect("read");
        let _back = TcpStream::connect(("127.0.0.1", port)).expect("the listener still accepts");
        ours.accept().expect("accept");
        let yes = || true;
        let closed = connect_from(0, to, Duration::from_secs(2), &yes);
        assert!(closed.is_err());
        let free = free_port().expect("a free port");
        let from = connect_from(free, to, Duration::from_secs(2), &never).expect("connect");
        assert_eq!(from.local_addr().expect("local").port(), free);
    }
}
