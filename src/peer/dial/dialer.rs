//! The dial seam: a [`Dialer`] turns a [`PeerAddr`] into a TLS connection
//! pinned to the peer's id. [`DirectDialer`] knows one way, TCP to where the
//! peer listens; a hole-punched or relayed way is another [`Way`] and a
//! dialer that handles it (see docs/ARCHITECTURE.md), with no change to the
//! download that asks for the connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Path, PeerAddr, Way};
use crate::error::{Error, Result};
use crate::net::stop::{StopGuard, StopSignal};
use crate::net::tls::Tls;
use crate::protocol::Connection;
use crate::sync::LockExt;

/// A connection a dialer made, and its registration with the stop signal
/// it was made under (stopping interrupts it while this is held); a
/// relayed or punched one also holds its place among the dialer's
/// connections of its path (see [`Dialer::path_to`]) until dropped.
pub struct Dialed {
    pub conn: Connection,
    pub guard: StopGuard,
    pub relayed: Option<RelayedHold>,
}

impl Dialed {
    /// How this connection was made: the path its hold was counted under,
    /// or direct without one.
    pub fn path(&self) -> Path {
        self.relayed
            .as_ref()
            .map_or(Path::Direct, |hold| hold.key.1)
    }
}

/// One relayed or punched connection to a peer shown at an address,
/// counted while held.
pub struct RelayedHold {
    pub(super) live: Arc<Mutex<HashMap<(SocketAddr, Path), usize>>>,
    pub(super) key: (SocketAddr, Path),
}

impl Drop for RelayedHold {
    fn drop(&mut self) {
        let mut live = self.live.locked();
        if let Some(n) = live.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                live.remove(&self.key);
            }
        }
    }
}

/// Connects to peers.
pub trait Dialer: Send + Sync {
    /// A TLS connection to `to`, its certificate pinned to `to.id` when
    /// known, trying each way in turn, each for at most `timeout`. The
    /// connection is registered with `stop` from the moment its socket
    /// exists, so a stop interrupts a handshake a silent peer never ends.
    /// Fails with the last way's error.
    fn dial(&self, to: &PeerAddr, timeout: Duration, stop: &Arc<StopSignal>) -> Result<Dialed>;

    /// How this dialer reaches the peer shown at `shown`: its open
    /// connections, or else the latest it made.
    fn path_to(&self, _shown: SocketAddr) -> Path {
        Path::Direct
    }
}

/// Dials a peer's direct ways: TCP, then TLS, with this peer's identity.
#[derive(Clone)]
pub struct DirectDialer {
    tls: Tls,
}

impl DirectDialer {
    pub fn new(tls: Tls) -> DirectDialer {
        DirectDialer { tls }
    }
}

impl DirectDialer {
    /// [`Dialer::dial`], with `connect` for each TCP connect and `timeout`
    /// for each TLS handshake.
    pub fn dial_within(
        &self,
        to: &PeerAddr,
        connect: Duration,
        timeout: Duration,
        stop: &Arc<StopSignal>,
    ) -> Result<Dialed> {
        let mut last = Error::Closed;
        for way in to.ways() {
            let Way::Direct(addr) = way else {
                continue;
            };
            let timeouts = (connect, timeout);
            match Connection::connect_tls_within(
                &addr.to_string(),
                &self.tls,
                to.id,
                timeouts,
                stop,
            ) {
                Ok((conn, guard)) => {
                    return Ok(Dialed {
                        conn,
                        guard,
                        relayed: None,
                    })
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

impl Dialer for DirectDialer {
    fn dial(&self, to: &PeerAddr, timeout: Duration, stop: &Arc<StopSignal>) -> Result<Dialed> {
        self.dial_within(to, timeout, timeout, stop)
    }
}
