//! [`StubTracker`]: a tracker on threads of the test that says what the
//! test scripts. It answers `HELLO`, `REGISTER`/`PARTIAL`, `UNREGISTER`,
//! `BYE` and `QUIT` as the real one does, `SEARCH`/`INFO` and `PEERS` with
//! the rows it was given (duplicates and all), records every request line,
//! and can misbehave: list any address with any id (which a real tracker
//! never would: it lists the address a peer connects from and the id its
//! certificate proves), to send a downloader through a relay or to an
//! impostor; hold one announce round, to stage a race with a `BYE`; or
//! promise a long `SEARCH` reply and trickle it. It speaks TLS, as peers do
//! to trackers, with an identity of its own (which peers pin on first
//! contact).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use p2pshare::identity::PeerId;
use p2pshare::net::transport::Stream;

use super::test_tls;
use crate::support::accept::Acceptor;

/// The most request lines one connection may send (a peer sends a few).
const MAX_LINES: usize = 10_000;

/// How long [`StubTracker`] holds an announce round at most.
const HOLD: Duration = Duration::from_millis(500);

/// What a [`StubTracker`] answers, beyond registrations.
#[derive(Default, Clone)]
pub struct Script {
    /// `SEARCH` and `INFO` rows: `<id> <size> <peers> <name>`.
    pub files: Vec<String>,
    /// `PEERS` rows, for any id: `<ip>:<port>` (version 1, no id: the
    /// downloader pins none) or `<ip>:<port> complete|partial [<id>]`.
    pub peers: Vec<String>,
    /// `SEARCH` promises 100,000 rows and sends one this often.
    pub trickle_search: Option<Duration>,
}

/// A stand-in tracker (see the module docs). Stops accepting when
/// dropped; each connection has a thread.
pub struct StubTracker {
    pub port: u16,
    shared: Arc<(Mutex<Stub>, Condvar)>,
    _acceptor: Acceptor,
}

#[derive(Default)]
struct Stub {
    script: Script,
    /// Names registered and not removed by a `BYE`.
    listed: BTreeSet<String>,
    /// Every request line, in order.
    requests: Vec<String>,
    /// Hold the next connection that starts with a `REGISTER`.
    hold: bool,
    /// A round is held (or was): set when it is, for the test to act.
    held: bool,
    /// The held round's lines are handled.
    held_done: bool,
    byes: u32,
    /// Connections that said `HELLO`, and `REGISTER`/`PARTIAL` lines.
    connections: usize,
    registers: usize,
}

impl StubTracker {
    /// A stub that knows no file.
    pub fn start() -> StubTracker {
        StubTracker::scripted(Script::default())
    }

    pub fn scripted(script: Script) -> StubTracker {
        let stub = Stub {
            script,
            ..Stub::default()
        };
        let shared = Arc::new((Mutex::new(stub), Condvar::new()));
        let state = Arc::clone(&shared);
        let config = Arc::clone(&test_tls().server_optional);
        let acceptor = Acceptor::start("the stub tracker", move |_, tcp| {
            // Peers speak TLS to trackers.
            if let Ok(stream) = Stream::tls_server(tcp, &config, Duration::from_secs(5)) {
                let _ = serve_stub(stream, &state);
            }
        });
        StubTracker {
            port: acceptor.port(),
            shared,
            _acceptor: acceptor,
        }
    }

    /// From now on `PEERS` lists exactly `peers`, for any id: each address
    /// with the id its certificate should have (version 2 rows).
    pub fn list(&self, peers: &[(SocketAddr, PeerId)]) {
        let rows = peers
            .iter()
            .map(|(addr, id)| format!("{addr} complete {id}"))
            .collect();
        self.shared.0.lock().unwrap().script.peers = rows;
    }

    /// Every request line it got so far, `HELLO`s included.
    pub fn requests(&self) -> Vec<String> {
        self.shared.0.lock().unwrap().requests.clone()
    }

    /// The names registered and not removed since.
    pub fn listed(&self) -> Vec<String> {
        let stub = self.shared.0.lock().unwrap();
        stub.listed.iter().cloned().collect()
    }

    /// How many connections said `HELLO`, and how many `REGISTER` or
    /// `PARTIAL` lines came, so far.
    pub fn counts(&self) -> (usize, usize) {
        let stub = self.shared.0.lock().unwrap();
        (stub.connections, stub.registers)
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
    lock.lock().unwrap().connections += 1;
    record(lock, &line);
    r.get_mut().write_all(b"OK p2pshare 2\n")?;
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
    for _ in 0..MAX_LINES {
        line.clear();
        // A peer ends its TLS connection without close_notify, an error to
        // the reader: either way the connection is over.
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        record(lock, &line);
        let words: Vec<&str> = line.split_whitespace().collect();
        let mut stub = lock.lock().unwrap();
        let script = stub.script.clone();
        let reply = match words.as_slice() {
            ["REGISTER" | "PARTIAL", _port, _id, _size, name] => {
                stub.listed.insert(name.to_string());
                stub.registers += 1;
                "OK registered\n".to_string()
            }
            ["UNREGISTER", ..] => "OK unregistered\n".to_string(),
            ["BYE", _port] => {
                let n = stub.listed.len();
                stub.listed.clear();
                stub.byes += 1;
                changed.notify_all();
                format!("OK removed {n}\n")
            }
            ["SEARCH", ..] if script.trickle_search.is_some() => {
                drop(stub);
                let every = script.trickle_search.unwrap();
                return trickle_rows(r.get_mut(), &script.files, every);
            }
            ["SEARCH", text @ ..] => {
                let rows = script.files.iter().filter(|row| {
                    let name = row.splitn(4, ' ').nth(3).unwrap_or("");
                    name.to_lowercase().contains(&text.join(" ").to_lowercase())
                });
                list(rows)
            }
            ["INFO", prefix] => list(script.files.iter().filter(|r| r.starts_with(prefix))),
            ["PEERS", _id] => list(script.peers.iter()),
            ["QUIT"] => "OK bye\n".to_string(),
            _ => "ERR unknown command\n".to_string(),
        };
        drop(stub);
        // The peer may be gone by now; what matters is what was handled.
        let _ = r.get_mut().write_all(reply.as_bytes());
        if words.as_slice() == ["QUIT"] {
            break;
        }
    }
    if held {
        lock.lock().unwrap().held_done = true;
        changed.notify_all();
    }
    Ok(())
}

/// Adds a request `line` to the record.
fn record(lock: &Mutex<Stub>, line: &str) {
    let line = line.trim_end().to_string();
    lock.lock().unwrap().requests.push(line);
}

/// A list reply: `OK <n>` and the rows.
fn list<'a>(rows: impl Iterator<Item = &'a String>) -> String {
    let rows: Vec<&String> = rows.collect();
    let mut reply = format!("OK {}\n", rows.len());
    for row in rows {
        reply.push_str(row);
        reply.push('\n');
    }
    reply
}

/// Promises 100,000 rows (the most a client accepts) and sends `rows` over
/// and over, one every `every`, until the client hangs up.
fn trickle_rows(w: &mut Stream, rows: &[String], every: Duration) -> std::io::Result<()> {
    w.write_all(b"OK 100000\n")?;
    for row in rows.iter().cycle().take(100_000) {
        w.write_all(format!("{row}\n").as_bytes())?;
        // The point of this tracker: one row, then a long wait.
        thread::sleep(every);
    }
    Ok(())
}
