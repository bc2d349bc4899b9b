//! Linux system calls std does not expose: `sendfile` (file pages to a socket
//! without a trip through user space; `std::io::copy` does not use it for a
//! `File` to a `TcpStream`), `send` with `MSG_MORE` (so a reply header
//! leaves in the same segment as the payload that follows), a longer
//! `listen` backlog than std's 128, waking a blocked `accept`, the
//! addresses of this host's interfaces (`getifaddrs`), a fixed receive
//! buffer (`SO_RCVBUF`) and the kernel's round-trip estimate.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::OnceLock;
use std::time::Duration;

/// Sends all of `bytes`, telling the kernel more data follows at once.
pub fn send_more(stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: the pointer and length describe a live, initialised slice,
        // and the descriptor belongs to `stream`, borrowed for the call.
        let n = unsafe {
            libc::send(
                stream.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_MORE | libc::MSG_NOSIGNAL,
            )
        };
        match n {
            n if n > 0 => bytes = &bytes[n as usize..],
            0 => return Err(io::ErrorKind::WriteZero.into()),
            _ => retry_or_fail()?,
        }
    }
    Ok(())
}

/// Sends `len` bytes of `file` starting at `offset` to `stream`. Fails with
/// `UnexpectedEof` if the file ends first.
pub fn send_file(
    stream: &TcpStream,
    file: &File,
    mut offset: u64,
    mut len: usize,
) -> io::Result<()> {
    while len > 0 {
        let mut off = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: both descriptors are open for the duration of the call
        // (borrowed from `stream` and `file`); `off` is a valid local.
        let n = unsafe { libc::sendfile(stream.as_raw_fd(), file.as_raw_fd(), &mut off, len) };
        match n {
            n if n > 0 => {
                offset += n as u64;
                len -= n as usize;
            }
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            _ => retry_or_fail()?,
        }
    }
    Ok(())
}

/// After a failed call: `Ok` to retry on `EINTR`, the error otherwise.
fn retry_or_fail() -> io::Result<()> {
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::Interrupted {
        Ok(())
    } else {
        Err(e)
    }
}

/// Raises the accept backlog of a bound listener. Under a connection flood
/// std's 128 overflows and the kernel drops SYNs, costing legitimate clients
/// a 1 s retransmit; Linux caps the value at `net.core.somaxconn`.
pub fn set_backlog(listener: &TcpListener, backlog: i32) -> io::Result<()> {
    // SAFETY: the descriptor belongs to `listener`, borrowed for the call;
    // listen() on a listening socket only updates its backlog.
    if unsafe { libc::listen(listener.as_raw_fd(), backlog) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Wakes a thread blocked in `accept` on `listener` (or on a clone of it):
/// on Linux, shutting a listening socket down makes `accept` fail at once.
pub fn wake_accept(listener: &TcpListener) {
    // SAFETY: the descriptor belongs to `listener`, borrowed for the call.
    unsafe { libc::shutdown(listener.as_raw_fd(), libc::SHUT_RD) };
}

/// The IP addresses of this host's interfaces that are up, IPv4 first
/// (loopback included; IPv6 link-local left out: it needs a scope id no
/// ticket carries).
pub fn interface_addrs() -> io::Result<Vec<IpAddr>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list it allocates, freed
    // below with freeifaddrs on every path after success.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut found = Vec::new();
    let mut at = list;
    while !at.is_null() {
        // SAFETY: `at` is a node of the list getifaddrs returned, alive until
        // freeifaddrs; ifa_addr is null or points to a sockaddr whose family
        // says which sockaddr_* it is.
        let ifa = unsafe { &*at };
        at = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_flags & libc::IFF_UP as libc::c_uint == 0 {
            continue;
        }
        let ip = match i32::from(unsafe { (*ifa.ifa_addr).sa_family }) {
            libc::AF_INET => {
                let sa = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in>() };
                IpAddr::V4(Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)))
            }
            libc::AF_INET6 => {
                let sa = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in6>() };
                let ip = Ipv6Addr::from(sa.sin6_addr.s6_addr);
                if ip.segments()[0] & 0xffc0 == 0xfe80 {
                    continue;
                }
                IpAddr::V6(ip)
            }
            _ => continue,
        };
        if !found.contains(&ip) {
            found.push(ip);
        }
    }
    // SAFETY: `list` came from a successful getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    found.sort_by_key(|ip| ip.is_ipv6());
    Ok(found)
}

/// Sets the socket's receive buffer to `bytes` (`SO_RCVBUF`; the kernel
/// doubles the value for its bookkeeping and caps it at
/// [`recv_buffer_max`]). The size stays fixed from then on: Linux no
/// longer grows it on its own.
pub fn set_recv_buffer(stream: &TcpStream, bytes: usize) -> io::Result<()> {
    let value =
        libc::c_int::try_from(bytes).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: the descriptor belongs to `stream`, borrowed for the call; the
    // option value is a live c_int and its size is passed with it.
    let r = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The largest receive buffer [`set_recv_buffer`] can get without
/// privileges (`net.core.rmem_max`), read once; `None` if unreadable.
pub fn recv_buffer_max() -> Option<usize> {
    static MAX: OnceLock<Option<usize>> = OnceLock::new();
    *MAX.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()?
            .trim()
            .parse()
            .ok()
    })
}

/// The kernel's smoothed round-trip time of the connection (`TCP_INFO`),
/// measured from the handshake on; `None` while it has no sample.
pub fn round_trip(stream: &TcpStream) -> io::Result<Option<Duration>> {
    // SAFETY: tcp_info is plain integers, for which all zeros is valid.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the descriptor belongs to `stream`, borrowed for the call; the
    // kernel writes at most `len` bytes into `info`, a live local.
    let r = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((info.tcpi_rtt > 0).then(|| Duration::from_micros(info.tcpi_rtt.into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_among_the_interface_addresses() {
        let all = interface_addrs().expect("getifaddrs");
        assert!(all.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)), "{all:?}");
    }

    #[test]
    fn a_loopback_connection_has_a_round_trip_and_takes_a_receive_buffer() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind on loopback");
        let addr = listener.local_addr().expect("a bound address");
        let client = TcpStream::connect(addr).expect("connect on loopback");
        let rtt = round_trip(&client).expect("TCP_INFO");
        assert!(rtt.is_some_and(|t| t < Duration::from_secs(1)), "{rtt:?}");
        set_recv_buffer(&client, 128 << 10).expect("SO_RCVBUF");
        assert!(recv_buffer_max().is_some_and(|m| m > 0));
    }
}
