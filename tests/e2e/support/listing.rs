//! [`ListingTracker`]: a stand-in tracker on threads of the test whose
//! `PEERS` reply, for any id, is the rows the test set: any address with
//! any id, which a real tracker would never list (it records the address a
//! peer connects from and the id its certificate proves). So a test can
//! send a downloader through a relay, or to an impostor, and see what the
//! downloader makes of it.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use p2pshare::identity::PeerId;
use p2pshare::net::transport::Stream;

use super::fakes::test_tls;

/// The most request lines one connection may send (a peer sends a few).
const MAX_LINES: usize = 10_000;

#[derive(Default)]
struct Listing {
    /// `PEERS` rows, version 2: `<addr> complete <id>`.
    rows: Vec<String>,
    /// Every request line, in order.
    requests: Vec<String>,
}

/// A tracker that speaks TLS as real ones do, with an identity of its own
/// (which peers pin on first contact), says `OK` to every `REGISTER`,
/// `PARTIAL`, `UNREGISTER` and `BYE` without recording anything, lists no
/// file in `SEARCH` or `INFO`, and answers every `PEERS` with the rows set
/// by [`list`](Self::list). Stops accepting when dropped.
pub struct ListingTracker {
    pub port: u16,
    state: Arc<Mutex<Listing>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl ListingTracker {
    pub fn start() -> ListingTracker {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind the stub tracker");
        let port = listener.local_addr().expect("its address").port();
        let state: Arc<Mutex<Listing>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let config = Arc::clone(&test_tls().server_optional);
        let (shared, stopped) = (Arc::clone(&state), Arc::clone(&stop));
        let acceptor = thread::spawn(move || {
            for tcp in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(tcp) = tcp else { continue };
                let (shared, config) = (Arc::clone(&shared), Arc::clone(&config));
                thread::spawn(move || {
                    if let Ok(stream) = Stream::tls_server(tcp, &config, Duration::from_secs(5)) {
                        serve(stream, &shared);
                    }
                });
            }
        });
        ListingTracker {
            port,
            state,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// From now on `PEERS` lists exactly `peers`: each address with the id
    /// its certificate should have.
    pub fn list(&self, peers: &[(SocketAddr, PeerId)]) {
        let rows = peers
            .iter()
            .map(|(addr, id)| format!("{addr} complete {id}"))
            .collect();
        self.state.lock().unwrap().rows = rows;
    }

    /// Every request line it got so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

impl Drop for ListingTracker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        // Wakes the blocked accept, which then sees `stop`.
        let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(5));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// One connection: one reply per request line, until the peer hangs up.
fn serve(stream: Stream, state: &Mutex<Listing>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    for _ in 0..MAX_LINES {
        line.clear();
        // A peer ends its TLS connection without close_notify, an error to
        // the reader: either way the connection is over.
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let req = line.trim_end().to_string();
        let mut s = state.lock().unwrap();
        s.requests.push(req.clone());
        let verb = req.split(' ').next().unwrap_or("").to_ascii_uppercase();
        let reply = match verb.as_str() {
            "HELLO" => "OK p2pshare 2\n".to_string(),
            "REGISTER" | "PARTIAL" => "OK registered\n".to_string(),
            "UNREGISTER" => "OK unregistered\n".to_string(),
            "BYE" => "OK removed 0\n".to_string(),
            "SEARCH" | "INFO" => "OK 0\n".to_string(),
            "PEERS" => {
                let mut reply = format!("OK {}\n", s.rows.len());
                for row in &s.rows {
                    reply.push_str(row);
                    reply.push('\n');
                }
                reply
            }
            "QUIT" => "OK bye\n".to_string(),
            _ => "ERR unknown command\n".to_string(),
        };
        drop(s);
        if r.get_mut().write_all(reply.as_bytes()).is_err() || verb == "QUIT" {
            return;
        }
    }
}
