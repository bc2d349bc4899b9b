//! Splicing two TCP connections (the tracker's relay): what one end sends
//! the other receives, byte for byte, through a shared [`RateCap`], until
//! both ends have finished or nothing moves either way for `idle`. Bytes
//! are copied, never looked at: the ends run TLS inside.
//!
//! Each direction is one [`pump`] on a thread of the caller's. End of
//! stream on one side is passed on as a half-close (`shutdown(Write)`) to
//! the other, so a reply still in flight the other way arrives; an error,
//! or `idle` with no byte either way, shuts both sockets down, which ends
//! the other direction's pump too.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::rate::RateCap;
use crate::bounds::{RATE_SLICE, RELAY_COPY};

/// What both directions of one splice share.
pub struct Splice {
    started: Instant,
    /// Milliseconds from `started` to the last byte either way.
    last: AtomicU64,
    /// Bytes copied, both directions.
    pub bytes: AtomicU64,
    idle: Duration,
}

impl Splice {
    pub fn new(idle: Duration) -> Splice {
        Splice {
            started: Instant::now(),
            last: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            idle,
        }
    }

    fn moved(&self, n: usize) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last.fetch_max(ms, Ordering::Relaxed);
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }
}

/// Copies `from` to `to` until `from` ends (then half-closes `to`), either
/// fails, or the splice has been idle for its `idle`; `total` counts what
/// passed. Returns the bytes this direction copied.
pub fn pump(
    from: &TcpStream,
    to: &TcpStream,
    splice: &Splice,
    cap: &RateCap,
    total: &AtomicU64,
) -> u64 {
    let mut buf = vec![0u8; RELAY_COPY];
    let mut copied = 0u64;
    // Wake often enough to notice the other direction's traffic.
    let tick = (splice.idle / 4).max(Duration::from_millis(10));
    let timed = from
        .set_read_timeout(Some(tick))
        .and(to.set_write_timeout(Some(splice.idle)));
    while timed.is_ok() {
        let n = match (&*from).read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return copied;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) && splice.idle_for() < splice.idle => continue,
            Err(_) => break,
        };
        // Metered a slice at a time, so that the cap's waits stay short.
        for slice in buf[..n].chunks(RATE_SLICE) {
            cap.acquire(slice.len());
        }
        if (&*to).write_all(&buf[..n]).is_err() {
            break;
        }
        splice.moved(n);
        total.fetch_add(n as u64, Ordering::Relaxed);
        copied += n as u64;
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
    copied
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let a = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        let (b, _) = l.accept().expect("accept");
        (a, b)
    }

    /// Bytes cross both ways unchanged, a half-close passes through (the
    /// answer to a request still arrives), and the count is exact.
    #[test]
    fn a_splice_copies_both_ways_and_passes_a_half_close_on() {
        let ((mut a, a_relay), (b_relay, mut b)) = (pair(), pair());
        let (splice, cap, total) = (
            Splice::new(Duration::from_secs(5)),
            RateCap::new(None),
            AtomicU64::new(0),
        );
        thread::scope(|s| {
            s.spawn(|| pump(&a_relay, &b_relay, &splice, &cap, &total));
            s.spawn(|| pump(&b_relay, &a_relay, &splice, &cap, &total));
            a.write_all(b"question").expect("write");
            a.shutdown(Shutdown::Write).expect("half-close");
            let mut got = Vec::new();
            b.read_to_end(&mut got).expect("read");
            assert_eq!(got, b"question");
            b.write_all(&[7u8; 200_000]).expect("answer");
            drop(b);
            let mut answer = Vec::new();
            a.read_to_end(&mut answer).expect("read");
            assert_eq!(answer, vec![7u8; 200_000]);
        });
        assert_eq!(total.load(Ordering::Relaxed), 200_008);
    }

    /// A splice where nothing moves either way ends after `idle`.
    #[test]
    fn an_idle_splice_ends() {
        let ((_a, a_relay), (b_relay, _b)) = (pair(), pair());
        let (splice, cap, total) = (
            Splice::new(Duration::from_millis(200)),
            RateCap::new(None),
            AtomicU64::new(0),
        );
        let started = Instant::now();
        thread::scope(|s| {
            s.spawn(|| pump(&a_relay, &b_relay, &splice, &cap, &total));
            pump(&b_relay, &a_relay, &splice, &cap, &total);
        });
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_secs(3),
            "{took:?}"
        );
    }
}
