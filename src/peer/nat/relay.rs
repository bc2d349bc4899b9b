//! The peer's two ends of a relayed connection (see `tracker::nat::relay`):
//! a downloader asks the tracker `RELAY <peer id>` and joins with the token
//! it gets ([`dial`]); the peer, told `JOIN <token>` on its control
//! connection, joins too ([`accept`]). Once the tracker says `OK paired`,
//! each runs TLS over the spliced connection exactly as over a direct one:
//! the downloader is the client and pins the peer's id, the peer is the
//! server and reads the downloader's id from its certificate.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rustls::ServerConfig;

use super::super::dial::Path;
use super::super::server::Serve;
use super::super::tracker_client::TrackerClient;
use super::OnJoin;
use crate::bounds::{CONNECT_TIMEOUT, CONN_STACK, PEER_RELAYED, RELAY_PAIR_TIMEOUT};
use crate::error::{Error, Result};
use crate::identity::PeerId;
use crate::net::stop::{StopGuard, StopSignal};
use crate::net::tls::Tls;
use crate::net::transport::{Interrupter, Stream};
use crate::protocol::codec::ParseError;
use crate::protocol::conn::{handshake_error, BUSY};
use crate::protocol::nat_msg::Token;
use crate::protocol::{Connection, Reply, TrackerRequest};

/// Longest line a relay answers `JOIN` with.
const MAX_JOIN_REPLY: usize = 256;

/// A TLS connection to `peer` through the tracker's relay, pinned to its
/// id, registered with `stop` from the moment its socket exists.
pub fn dial(
    tracker: &TrackerClient,
    tls: &Tls,
    peer: PeerId,
    timeout: Duration,
    stop: &Arc<StopSignal>,
) -> Result<(Connection, StopGuard)> {
    let token = tracker.interruptible(Arc::clone(stop)).relay(&peer)?;
    client_end(tracker.addr(), token, tls, peer, timeout, stop)
}

/// The downloader's end of session `token` at the tracker `tracker`: TLS
/// as the client, pinned to `peer`.
pub fn client_end(
    tracker: &str,
    token: Token,
    tls: &Tls,
    peer: PeerId,
    timeout: Duration,
    stop: &Arc<StopSignal>,
) -> Result<(Connection, StopGuard)> {
    let tcp = Stream::connect(tracker, timeout.min(CONNECT_TIMEOUT))?;
    let guard = stop.guard(Interrupter::of(&tcp)?);
    paired(&tcp, token)?;
    let stream = Stream::tls_client(tcp, tls, Some(peer), timeout).map_err(handshake_error)?;
    Ok((Connection::new(stream)?, guard))
}

/// The peer's end of a relayed connection: joins session `token` at the
/// tracker `tracker` and runs the TLS handshake as the server.
pub fn accept(tracker: &str, token: Token, config: &Arc<ServerConfig>) -> Result<Connection> {
    let tcp = Stream::connect(tracker, CONNECT_TIMEOUT)?;
    paired(&tcp, token)?;
    let stream = Stream::tls_server(tcp, config, CONNECT_TIMEOUT)?;
    Ok(Connection::new(stream)?)
}

/// Sends `JOIN <token>` and waits (up to the pairing timeout) for `OK
/// paired`, reading no byte past its line: what follows is the other
/// side's TLS.
fn paired(tcp: &TcpStream, token: Token) -> Result<()> {
    tcp.set_nodelay(true)?;
    let mut tcp = tcp;
    tcp.write_all(TrackerRequest::Join { token }.encode().as_bytes())?;
    let deadline = Instant::now() + RELAY_PAIR_TIMEOUT + CONNECT_TIMEOUT;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while byte[0] != b'\n' {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || line.len() > MAX_JOIN_REPLY {
            return Err(Error::Timeout("the relay's pairing"));
        }
        tcp.set_read_timeout(Some(left))?;
        match tcp.read(&mut byte)? {
            0 => return Err(Error::Closed),
            _ => line.push(byte[0]),
        }
    }
    tcp.set_read_timeout(None)?;
    let text = String::from_utf8_lossy(&line);
    match Reply::parse(text.trim_end())?.into_result() {
        Ok(ok) if ok == "paired" => Ok(()),
        Ok(other) => Err(ParseError::BadReply(other).into()),
        Err(busy) if busy == BUSY => Err(Error::Busy),
        Err(reason) => Err(Error::Remote(reason)),
    }
}

/// What a peer does with a `JOIN <token>` from the tracker: joins session
/// `token` at `tracker` on a thread of its own and serves the connection
/// with `serve`, as its chunk server serves one it accepted. At most
/// [`PEER_RELAYED`] at once; one more is dropped (the downloader's pairing
/// then times out and it counts the peer as unreachable).
pub fn on_join(tracker: String, tls: &Tls, serve: Serve) -> OnJoin {
    let running = Arc::new(AtomicUsize::new(0));
    let config = Arc::clone(&tls.server);
    Arc::new(move |token| {
        let Some(slot) = Slot::take(&running, PEER_RELAYED) else {
            log::info!("dropped a relayed connection: {PEER_RELAYED} are being served");
            return;
        };
        let (tracker, config, serve) = (tracker.clone(), Arc::clone(&config), Arc::clone(&serve));
        let spawned = thread::Builder::new()
            .name("relayed".into())
            .stack_size(CONN_STACK)
            .spawn(move || {
                let _slot = slot;
                match accept(&tracker, token, &config) {
                    Ok(conn) => serve(conn, Path::Relayed),
                    Err(e) => log::info!("relayed connection through {tracker}: {e}"),
                }
            });
        if let Err(e) = spawned {
            log::warn!("cannot start a relayed connection's thread: {e}");
        }
    })
}

/// One of at most so many connections being made or served (relayed,
/// punched); given back on drop.
pub(super) struct Slot(Arc<AtomicUsize>);

impl Slot {
    pub(super) fn take(running: &Arc<AtomicUsize>, cap: usize) -> Option<Slot> {
        if running.fetch_add(1, Ordering::AcqRel) >= cap {
            running.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot(Arc::clone(running)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
