//! Linux system calls std does not expose: `sendfile` (file pages to a socket
//! without a trip through user space; `std::io::copy` does not use it for a
//! `File` to a `TcpStream`), `send` with `MSG_MORE` (so a reply header
//! leaves in the same segment as the payload that follows), a longer
//! `listen` backlog than std's 128, and waking a blocked `accept`.

use std::fs::File;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;

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
