//! [`Acceptor`]: the accept loop every stand-in server shares. It listens
//! on 127.0.0.1 only (port chosen by the kernel), hands each connection to
//! the stand-in's handler on a thread of its own, and is bounded twice: at
//! most [`MAX_CONNECTIONS`] connections in its life (more means a runaway
//! loop in the code under test), and it stops accepting when dropped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// The most connections one stand-in accepts: a download opens at most one
/// per worker (64) plus its manifest's, a test a few downloads.
pub const MAX_CONNECTIONS: usize = 1024;

/// A listening socket whose connections go to a handler (see the module
/// docs). Dropping it stops the accepting (connections in hand go on
/// until their handlers return).
pub struct Acceptor {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Acceptor {
    /// Listens and calls `handle(n, connection)` for the `n`th connection
    /// (from 0, in the order accepted) on a new thread.
    pub fn start<F>(what: &str, handle: F) -> Acceptor
    where
        F: Fn(usize, TcpStream) + Send + Sync + 'static,
    {
        let listener =
            TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("cannot bind {what}: {e}"));
        let addr = listener.local_addr().expect("a bound listener's address");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let handle = Arc::new(handle);
        let thread = thread::spawn(move || {
            let accepted = listener.incoming().take(MAX_CONNECTIONS).flatten();
            for (n, conn) in accepted.enumerate() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let handle = Arc::clone(&handle);
                thread::spawn(move || handle(n, conn));
            }
        });
        Acceptor {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocked accept, which then sees `stop` (and if the
        // loop already ended, the connection is refused: nothing waits).
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
