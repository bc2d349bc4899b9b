//! Connection floods: [`Flood`] opens thousands of idle connections from
//! chosen loopback addresses, and [`settle`] tells what became of them
//! ([`Fate`]: held, refused with `ERR busy`, or closed).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::harness::wait_until;
use super::raw::{connect_from, REPLY};

/// Connections being opened to `to`, `per_addr` from each address of
/// `from`, by 8 threads; they send nothing.
pub struct Flood {
    opened: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<Vec<io::Result<TcpStream>>>>,
}

impl Flood {
    pub fn start(from: &[Ipv4Addr], per_addr: usize, to: SocketAddr) -> Flood {
        let jobs: Vec<Ipv4Addr> = from
            .iter()
            .flat_map(|&a| std::iter::repeat_n(a, per_addr))
            .collect();
        let opened = Arc::new(AtomicUsize::new(0));
        let threads = jobs
            .chunks(jobs.len().div_ceil(8))
            .map(|part| {
                let (part, opened) = (part.to_vec(), Arc::clone(&opened));
                thread::spawn(move || {
                    let conn = |&a: &Ipv4Addr| {
                        let c = connect_from(a, to);
                        opened.fetch_add(1, Ordering::SeqCst);
                        c
                    };
                    part.iter().map(conn).collect()
                })
            })
            .collect();
        Flood { opened, threads }
    }

    /// Waits until `n` connections have been tried.
    pub fn wait_opened(&self, n: usize) {
        wait_until(Duration::from_secs(30), "flood connections", || match self
            .opened
            .load(Ordering::SeqCst)
        {
            opened if opened >= n => Ok(()),
            opened => Err(format!("{opened} of {n} tried")),
        });
    }

    /// Waits for every attempt; returns the connections and how many could
    /// not connect (each try is bounded by the connect timeout).
    pub fn finish(self) -> (Vec<TcpStream>, usize) {
        let mut open = Vec::new();
        let mut failed = 0;
        for t in self.threads {
            for conn in t.join().expect("a flood thread panicked") {
                match conn {
                    Ok(c) => open.push(c),
                    Err(_) => failed += 1,
                }
            }
        }
        (open, failed)
    }
}

/// What became of the connections of a flood.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fate {
    /// Accepted and held: nothing received, not closed.
    pub open: usize,
    /// Got `ERR busy`.
    pub busy: usize,
    /// Closed (or reset) without a word.
    pub closed: usize,
}

/// Waits until at most `held` connections remain open (the rest have been
/// refused) and returns their fate; panics with the last count if that
/// takes longer than [`REPLY`].
pub fn settle(conns: &[TcpStream], held: usize) -> Fate {
    wait_until(REPLY, &format!("at most {held} held connections"), || {
        let fate = fates(conns);
        if fate.open <= held {
            Ok(fate)
        } else {
            Err(format!("{fate:?}"))
        }
    })
}

pub fn fates(conns: &[TcpStream]) -> Fate {
    let mut fate = Fate::default();
    let mut buf = [0u8; 16];
    for c in conns {
        c.set_nonblocking(true).unwrap();
        match c.peek(&mut buf) {
            // A plain-text server says so in a line, a TLS one in an alert.
            Ok(n) if buf[..n].starts_with(b"ERR busy") => fate.busy += 1,
            Ok(n) if buf[..n].starts_with(&[0x15, 0x03, 0x03]) => fate.busy += 1,
            Ok(0) => fate.closed += 1,
            Ok(n) => panic!("unexpected bytes from a server: {:?}", &buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => fate.open += 1,
            Err(_) => fate.closed += 1,
        }
        c.set_nonblocking(false).unwrap();
    }
    fate
}
