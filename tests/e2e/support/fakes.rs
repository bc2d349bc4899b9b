//! Stand-ins run on threads of the test: [`FakePeer`], one peer-protocol
//! server that shares a real file's id and lies about it in a chosen way
//! ([`Lie`]), and [`StubTracker`], a tracker that can hold an announce round
//! to stage a race.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use p2pshare::identity::Identity;
use p2pshare::manifest::Manifest;
use p2pshare::net::tls::Tls;
use p2pshare::net::transport::Stream;
use p2pshare::storage::manifest_of;

use super::raw::register;

/// How a [`FakePeer`] lies. Whatever the lie, every chunk it sends has the
/// right length and one flipped byte.
pub enum Lie {
    /// The right manifest, so it is trusted until its first chunk.
    FlippedChunks,
    /// These bytes as the manifest: not the file's, so not hashing to its id.
    Manifest(Vec<u8>),
    /// `OK 18446744073709551615` for the manifest, and nothing after it.
    AbsurdManifestLength,
}

/// What a fake peer serves and what it saw.
struct Fake {
    lie: Lie,
    manifest: Manifest,
    id: String,
    data: Vec<u8>,
    requests: Mutex<Vec<String>>,
    /// Per connection that got a bad chunk: from the end of the first bad
    /// chunk to the downloader hanging up.
    hangups: Mutex<Vec<Duration>>,
}

/// A peer-protocol server on threads of this test, sharing the file at a
/// path under that file's id, and lying about it. It speaks TLS with an
/// identity of its own, as real peers do, and records every request.
/// Stops accepting when dropped; its connection threads end when the
/// downloader hangs up (or after 30 s idle).
pub struct FakePeer {
    pub addr: SocketAddr,
    pub tls: Tls,
    fake: Arc<Fake>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl FakePeer {
    pub fn start(lie: Lie, path: &Path) -> FakePeer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let manifest = manifest_of(path).unwrap();
        let fake = Arc::new(Fake {
            lie,
            id: manifest.id().to_hex(),
            manifest,
            data: fs::read(path).unwrap(),
            requests: Mutex::new(Vec::new()),
            hangups: Mutex::new(Vec::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let tls = test_tls();
        let (f, stopped, config) = (
            Arc::clone(&fake),
            Arc::clone(&stop),
            Arc::clone(&tls.server),
        );
        let acceptor = thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(conn) = conn {
                    let (f, config) = (Arc::clone(&f), Arc::clone(&config));
                    thread::spawn(move || {
                        if let Ok(stream) =
                            Stream::tls_server(conn, &config, Duration::from_secs(5))
                        {
                            serve_fake(stream, &f)
                        }
                    });
                }
            }
        });
        FakePeer {
            addr,
            tls,
            fake,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// Registers this fake with the tracker at `tracker` for its file.
    pub fn register(&self, tracker: SocketAddr, name: &str) {
        register(
            &self.tls,
            tracker,
            self.addr.port(),
            &self.fake.manifest,
            name,
        );
    }

    /// Every request line it got, in order.
    pub fn requests(&self) -> Vec<String> {
        self.fake.requests.lock().unwrap().clone()
    }

    /// How many requests started with `prefix` (`"GET "`).
    pub fn count(&self, prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.starts_with(prefix))
            .count()
    }

    pub fn hangups(&self) -> Vec<Duration> {
        self.fake.hangups.lock().unwrap().clone()
    }
}

impl Drop for FakePeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocked accept, which then sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// One connection of a [`FakePeer`]: the peer protocol's requests, each
/// answered at once, with its lie.
fn serve_fake(stream: Stream, fake: &Fake) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut r = BufReader::new(stream);
    let mut first_bad: Option<Instant> = None;
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let req = line.trim_end().to_string();
        fake.requests.lock().unwrap().push(req.clone());
        let words: Vec<&str> = req.split(' ').collect();
        let (reply, bad) = match words.as_slice() {
            // A version 1 peer: it answers any HELLO with its own version.
            ["HELLO", _] => (b"OK p2pshare 1\n".to_vec(), false),
            ["MANIFEST", id] if *id == fake.id => match &fake.lie {
                Lie::FlippedChunks => (with_payload(&fake.manifest.encode()), false),
                Lie::Manifest(bytes) => (with_payload(bytes), false),
                Lie::AbsurdManifestLength => (b"OK 18446744073709551615\n".to_vec(), false),
            },
            ["GET", id, index] if *id == fake.id => {
                match index.parse().ok().and_then(|i| fake.manifest.chunk(i)) {
                    Some(c) => {
                        let start = c.offset as usize;
                        let mut bytes = fake.data[start..start + c.len as usize].to_vec();
                        bytes[c.len as usize / 2] ^= 1;
                        (with_payload(&bytes), true)
                    }
                    None => (b"ERR no such chunk\n".to_vec(), false),
                }
            }
            ["MANIFEST" | "GET", ..] => (b"ERR not sharing that\n".to_vec(), false),
            _ => (b"ERR unknown command\n".to_vec(), false),
        };
        if r.get_mut().write_all(&reply).is_err() {
            break;
        }
        if bad && first_bad.is_none() {
            first_bad = Some(Instant::now());
        }
    }
    if let Some(t) = first_bad {
        fake.hangups.lock().unwrap().push(t.elapsed());
    }
}

fn with_payload(bytes: &[u8]) -> Vec<u8> {
    [format!("OK {}\n", bytes.len()).as_bytes(), bytes].concat()
}

/// How long [`StubTracker`] holds an announce round at most.
pub const HOLD: Duration = Duration::from_millis(500);

/// A stand-in tracker for one peer: answers `HELLO`, `REGISTER` and `BYE`
/// like the real one, and can hold one announce round: its `REGISTER` stays
/// unread, as a busy tracker thread might leave it, until the stub has
/// handled a `BYE` or for [`HOLD`].
pub struct StubTracker {
    pub port: u16,
    shared: Arc<(Mutex<Stub>, Condvar)>,
}

/// A TLS identity for a stand-in, made fresh.
pub fn test_tls() -> Tls {
    Tls::new(Identity::ephemeral().expect("an identity")).expect("TLS configs")
}

#[derive(Default)]
struct Stub {
    /// Names registered and not removed by a `BYE`.
    listed: BTreeSet<String>,
    /// Hold the next connection that starts with a `REGISTER`.
    hold: bool,
    /// A round is held (or was): set when it is, for the test to act.
    held: bool,
    /// The held round's lines are handled.
    held_done: bool,
    byes: u32,
}

impl StubTracker {
    pub fn start() -> StubTracker {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind the stub");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new((Mutex::new(Stub::default()), Condvar::new()));
        let state = Arc::clone(&shared);
        let config = Arc::clone(&test_tls().server_optional);
        // Lives as long as the test binary; each connection has a thread.
        thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let (state, config) = (Arc::clone(&state), Arc::clone(&config));
                thread::spawn(move || {
                    // Peers speak TLS to trackers.
                    if let Ok(stream) = Stream::tls_server(tcp, &config, Duration::from_secs(5)) {
                        let _ = serve_stub(stream, &state);
                    }
                });
            }
        });
        StubTracker { port, shared }
    }

    /// The names registered and not removed since.
    pub fn listed(&self) -> Vec<String> {
        let stub = self.shared.0.lock().unwrap();
        stub.listed.iter().cloned().collect()
    }

    /// Asks for the next announce round to be held, and waits until it is.
    pub fn hold_next_round(&self, timeout: Duration) {
        let (lock, changed) = &*self.shared;
        lock.lock().unwrap().hold = true;
        let guard = lock.lock().unwrap();
        let (stub, _) = changed
            .wait_timeout_while(guard, timeout, |s| !s.held)
            .unwrap();
        assert!(stub.held, "no announce round within {timeout:?}");
    }

    /// Waits until the held round's lines have been handled.
    pub fn await_held_round(&self, timeout: Duration) {
        let (lock, changed) = &*self.shared;
        let guard = lock.lock().unwrap();
        let (stub, _) = changed
            .wait_timeout_while(guard, timeout, |s| !s.held_done)
            .unwrap();
        assert!(stub.held_done, "the held round never ended");
    }
}

/// One connection to the stub: one reply per request line.
fn serve_stub(stream: Stream, shared: &(Mutex<Stub>, Condvar)) -> std::io::Result<()> {
    let (lock, changed) = shared;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line)?;
    r.get_mut().write_all(b"OK p2pshare 1\n")?;
    // The peer sends its requests after the HELLO reply; look before reading.
    let held = r.fill_buf()?.first() == Some(&b'R') && {
        let mut stub = lock.lock().unwrap();
        let hold = std::mem::take(&mut stub.hold);
        if hold {
            stub.held = true;
            changed.notify_all();
            let byes = stub.byes;
            drop(
                changed
                    .wait_timeout_while(stub, HOLD, |s| s.byes == byes)
                    .unwrap(),
            );
        }
        hold
    };
    loop {
        line.clear();
        // A peer ends its TLS connection without close_notify, an error to
        // the reader: either way the connection is over.
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let mut stub = lock.lock().unwrap();
        let reply = match words.as_slice() {
            ["REGISTER", _port, _id, _size, name] => {
                stub.listed.insert(name.to_string());
                "OK registered\n".to_string()
            }
            ["BYE", _port] => {
                let n = stub.listed.len();
                stub.listed.clear();
                stub.byes += 1;
                changed.notify_all();
                format!("OK removed {n}\n")
            }
            _ => "ERR unknown command\n".to_string(),
        };
        drop(stub);
        // The peer may be gone by now; what matters is what was handled.
        let _ = r.get_mut().write_all(reply.as_bytes());
    }
    if held {
        lock.lock().unwrap().held_done = true;
        changed.notify_all();
    }
    Ok(())
}
