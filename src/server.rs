//! The accept loop shared by the tracker and the peer's chunk server: one
//! thread per connection, at most `max` at once. A connection over the cap
//! gets `ERR busy` and is closed at once, so a flood cannot exhaust threads or
//! memory. The listener is passed in, so tests can bind port 0.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::error::Error;
use crate::protocol::{Connection, Reply};
use crate::IDLE_TIMEOUT;

/// Serves `listener` forever, running `handler` on its own thread for each
/// accepted connection.
pub fn serve<H>(listener: TcpListener, max: usize, role: &'static str, handler: H)
where
    H: Fn(Connection) + Send + Sync + 'static,
{
    let handler = Arc::new(handler);
    let active = Arc::new(AtomicUsize::new(0));
    let mut backoff = Duration::from_millis(10);
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => {
                backoff = Duration::from_millis(10);
                stream
            }
            Err(e) => {
                // Typically EMFILE: back off instead of spinning.
                log::warn!("{role}: accept failed: {e}; retrying in {backoff:?}");
                thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        if active.load(Ordering::Acquire) >= max {
            reject_busy(stream);
            continue;
        }
        let conn = match Connection::new(stream) {
            Ok(conn) => conn,
            Err(e) => {
                log::debug!("{role}: dropping connection: {e}");
                continue;
            }
        };
        let slot = Slot::take(&active);
        let handler = Arc::clone(&handler);
        let spawned = thread::Builder::new()
            .name(format!("{role}-conn"))
            .spawn(move || {
                let _slot = slot;
                handler(conn)
            });
        if let Err(e) = spawned {
            log::warn!("{role}: cannot start a connection thread: {e}");
        }
    }
}

fn reject_busy(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
    let _ = stream.write_all(b"ERR busy\n");
    log::debug!("connection limit reached; rejected a connection");
}

/// One of the `max` connection slots; released when dropped, even on panic.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(active: &Arc<AtomicUsize>) -> Slot {
        active.fetch_add(1, Ordering::AcqRel);
        Slot(Arc::clone(active))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a request handler wants after answering one line.
pub enum Flow {
    Continue,
    Close,
}

/// Reads request lines from `conn` and hands each to `handle`, until the
/// client closes, idles past [`IDLE_TIMEOUT`], sends a framing error (answered
/// with `ERR` before closing), or `handle` says `Close` or fails.
pub fn for_each_request<F>(conn: &mut Connection, mut handle: F)
where
    F: FnMut(&mut Connection, &str) -> crate::error::Result<Flow>,
{
    let who = conn.peer_addr();
    loop {
        let line = match conn.read_line(IDLE_TIMEOUT) {
            Ok(Some(line)) => line,
            Ok(None) => return,
            Err(Error::Protocol(e)) => {
                let _ = conn.write_all(Reply::err(&e).encode().as_bytes());
                log::debug!("{who}: closing after malformed input: {e}");
                return;
            }
            Err(e) => {
                log::debug!("{who}: closing: {e}");
                return;
            }
        };
        match handle(conn, &line) {
            Ok(Flow::Continue) => {}
            Ok(Flow::Close) => return,
            Err(e) => {
                log::debug!("{who}: closing: {e}");
                return;
            }
        }
    }
}
