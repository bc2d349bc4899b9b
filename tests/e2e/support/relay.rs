//! A wiretap for the security tests: [`Relay`], a TCP forwarder on a
//! thread of the test that records every byte it carries, each connection
//! and direction apart, as a passive observer on the path would see them;
//! and [`slices_found`], which looks for a file's bytes in such a capture.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::accept::Acceptor;

/// How long a relayed connection may stay silent before the relay drops it.
const IDLE: Duration = Duration::from_secs(30);

/// What one relayed connection carried.
#[derive(Clone, Default)]
pub struct Capture {
    /// From the client (the one that connected to the relay) to the target.
    pub up: Vec<u8>,
    /// From the target back to the client.
    pub down: Vec<u8>,
}

type Shared = Arc<Mutex<Vec<Arc<Mutex<Capture>>>>>;

/// Listens on 127.0.0.1 (port chosen by the kernel) and forwards each
/// connection to `target`, recording both directions before passing them
/// on, so whatever reached either end is in the capture. Stops accepting
/// when dropped; its connections end when either side closes (or after
/// [`IDLE`]).
pub struct Relay {
    pub addr: SocketAddr,
    captures: Shared,
    _acceptor: Acceptor,
}

impl Relay {
    pub fn start(target: SocketAddr) -> Relay {
        let captures: Shared = Arc::default();
        let all = Arc::clone(&captures);
        let acceptor = Acceptor::start("the relay", move |_, client| {
            let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(5)) else {
                return;
            };
            let capture = Arc::new(Mutex::new(Capture::default()));
            all.lock().unwrap().push(Arc::clone(&capture));
            forward(client, server, capture);
        });
        Relay {
            addr: acceptor.addr,
            captures,
            _acceptor: acceptor,
        }
    }

    /// What each connection carried so far, in the order they came.
    pub fn captures(&self) -> Vec<Capture> {
        let all = self.captures.lock().unwrap();
        all.iter().map(|c| c.lock().unwrap().clone()).collect()
    }
}

/// Pumps `client` <-> `server` on two threads, recording into `capture`.
fn forward(client: TcpStream, server: TcpStream, capture: Arc<Mutex<Capture>>) {
    let pairs = [
        (client.try_clone(), server.try_clone(), true),
        (server.try_clone(), client.try_clone(), false),
    ];
    for (from, to, up) in pairs {
        let (Ok(from), Ok(to)) = (from, to) else {
            return;
        };
        let capture = Arc::clone(&capture);
        thread::spawn(move || pump(from, to, &capture, up));
    }
}

/// Copies `from` to `to` until end of stream or an error, recording each
/// read before it is written on; passes a half-close on.
fn pump(mut from: TcpStream, mut to: TcpStream, capture: &Mutex<Capture>, up: bool) {
    let _ = from.set_read_timeout(Some(IDLE));
    let _ = to.set_write_timeout(Some(IDLE));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => n,
            Err(_) => break,
        };
        {
            let mut c = capture.lock().unwrap();
            let side = if up { &mut c.up } else { &mut c.down };
            side.extend_from_slice(&buf[..n]);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// The offsets `o` (every `step` bytes of `data`) whose `len` bytes
/// `data[o..o + len]` occur anywhere in `haystack`. Indexes the slices by
/// their first 8 bytes, so a capture of megabytes is scanned once, quickly
/// even in a debug build.
pub fn slices_found(haystack: &[u8], data: &[u8], step: usize, len: usize) -> Vec<usize> {
    assert!(len >= 8 && step > 0, "slices of at least 8 bytes");
    let key = |b: &[u8]| u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
    let mut by_key: HashMap<u64, Vec<usize>> = HashMap::new();
    for offset in (0..data.len().saturating_sub(len - 1)).step_by(step) {
        by_key.entry(key(&data[offset..])).or_default().push(offset);
    }
    let mut found = Vec::new();
    for at in 0..haystack.len().saturating_sub(len - 1) {
        let Some(offsets) = by_key.get(&key(&haystack[at..])) else {
            continue;
        };
        for &o in offsets {
            if haystack[at..at + len] == data[o..o + len] && !found.contains(&o) {
                found.push(o);
            }
        }
    }
    found.sort_unstable();
    found
}
