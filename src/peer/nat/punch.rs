//! The peer's two ends of a hole punch (see `tracker::nat::punch`): a
//! downloader picks a free local port, asks the tracker `PUNCH <peer id>
//! <that port>` and gets where the peer listens ([`dial`]); the peer, told
//! `PUNCH <ip>:<port>` on its control connection, connects there from its
//! listen port ([`on_punch`]) while the downloader connects to it from the
//! port it named (`net::punch`), each for up to [`PUNCH_TIME`], so each NAT
//! lets in the other's SYN, which answers one it saw go out (TCP
//! simultaneous open). Whatever TCP did, the downloader then runs TLS as
//! the client, pinned to the peer's id, and the peer as the server,
//! serving the connection as its chunk server serves one it accepted.
//!
//! The downloader's port is a fresh one for each punch, not its listen
//! port: one pair of ports carries one connection at a time, and the side
//! that closed it holds that pair in `TIME_WAIT` for a minute, while a
//! download opens several connections to a peer (the lab saw the second
//! punch between two listen ports fail with `EADDRNOTAVAIL`).

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::super::dial::Path;
use super::super::server::Serve;
use super::super::tracker_client::TrackerClient;
use super::relay::Slot;
use crate::bounds::{CONNECT_TIMEOUT, CONN_STACK, PEER_PUNCHES, PUNCH_RETRY, PUNCH_TIME};
use crate::error::{Error, Result};
use crate::identity::PeerId;
use crate::net::punch::{connect_from, free_port};
use crate::net::stop::{StopGuard, StopSignal};
use crate::net::tls::Tls;
use crate::net::transport::{Interrupter, Stream};
use crate::protocol::conn::handshake_error;
use crate::protocol::Connection;

/// What the `reach` thread does with a `PUNCH <ip>:<port>` from the
/// tracker: punch towards that address (without blocking the control
/// connection).
pub type OnPunch = Arc<dyn Fn(SocketAddr) + Send + Sync>;

/// A TLS connection to `peer`, hole-punched with the tracker's
/// introduction, pinned to its id, registered with `stop` once its socket
/// is connected (the punch itself looks at `stop` as it goes).
pub fn dial(
    tracker: &TrackerClient,
    tls: &Tls,
    peer: PeerId,
    timeout: Duration,
    stop: &Arc<StopSignal>,
) -> Result<(Connection, StopGuard)> {
    let from = free_port()?;
    let to = tracker.interruptible(Arc::clone(stop)).punch(&peer, from)?;
    let tcp = punch(from, to, &|| stop.is_stopped())?;
    let guard = stop.guard(Interrupter::of(&tcp)?);
    let stream = Stream::tls_client(tcp, tls, Some(peer), timeout).map_err(handshake_error)?;
    Ok((Connection::new(stream)?, guard))
}

/// Connects from local `port` to `to` until an attempt succeeds or
/// [`PUNCH_TIME`] has passed: one attempt lasts as long as the SYN goes
/// unanswered (the other side's SYN may yet come through), a refused one
/// is made again [`PUNCH_RETRY`] after it started.
pub fn punch(port: u16, to: SocketAddr, give_up: &dyn Fn() -> bool) -> Result<TcpStream> {
    let deadline = Instant::now() + PUNCH_TIME;
    loop {
        let started = Instant::now();
        let left = deadline.saturating_duration_since(started);
        if left.is_zero() {
            return Err(Error::Timeout("the hole punch"));
        }
        match connect_from(port, to, left, give_up) {
            Ok(tcp) => return Ok(tcp),
            Err(e) if e.kind() == ErrorKind::Interrupted => return Err(Error::Interrupted),
            Err(e) if e.kind() == ErrorKind::TimedOut => {
                return Err(Error::Timeout("the hole punch"))
            }
            Err(e) => {
                log::debug!("punching from port {port} to {to}: {e}");
                let next = (started + PUNCH_RETRY).min(deadline);
                thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        }
    }
}

/// What a peer listening on `port` does with a `PUNCH <ip>:<port>`:
/// punches on a thread of its own and serves the connection with `serve`
/// as TLS server. At most [`PEER_PUNCHES`] at once; one more is ignored
/// (the downloader's punch then times out and it tries the relay).
pub fn on_punch(port: u16, tls: &Tls, serve: Serve) -> OnPunch {
    let running = Arc::new(AtomicUsize::new(0));
    let config = Arc::clone(&tls.server);
    Arc::new(move |to| {
        let Some(slot) = Slot::take(&running, PEER_PUNCHES) else {
            log::info!("ignored a hole punch from {to}: {PEER_PUNCHES} are running");
            return;
        };
        let (config, serve) = (Arc::clone(&config), Arc::clone(&serve));
        let spawned = thread::Builder::new()
            .name("punched".into())
            .stack_size(CONN_STACK)
            .spawn(move || {
                let _slot = slot;
                let accepted = punch(port, to, &|| false).and_then(|tcp| {
                    let stream = Stream::tls_server(tcp, &config, CONNECT_TIMEOUT)?;
                    Ok(Connection::new(stream)?)
                });
                match accepted {
                    Ok(conn) => serve(conn, Path::Punched),
                    Err(e) => log::info!("hole punch with {to}: {e}"),
                }
            });
        if let Err(e) = spawned {
            log::warn!("cannot start a hole punch's thread: {e}");
        }
    })
}
