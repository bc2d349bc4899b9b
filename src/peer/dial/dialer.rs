//! The dial seam: a [`Dialer`] turns a [`PeerAddr`] into a TLS connection
//! pinned to the peer's id. [`DirectDialer`] knows one way, TCP to where the
//! peer listens; a hole-punched or relayed way is another [`Way`] and a
//! dialer that handles it (see docs/ARCHITECTURE.md), with no change to the
//! download that asks for the connection.

use std::sync::Arc;
use std::time::Duration;

use super::{PeerAddr, Way};
use crate::error::{Error, Result};
use crate::net::stop::{StopGuard, StopSignal};
use crate::net::tls::Tls;
use crate::protocol::Connection;

/// A connection a dialer made, and its registration with the stop signal
/// it was made under (stopping interrupts it while this is held).
pub struct Dialed {
    pub conn: Connection,
    pub guard: StopGuard,
}

/// Connects to peers.
pub trait Dialer: Send + Sync {
    /// A TLS connection to `to`, its certificate pinned to `to.id` when
    /// known, trying each way in turn, each for at most `timeout`. The
    /// connection is registered with `stop` from the moment its socket
    /// exists, so a stop interrupts a handshake a silent peer never ends.
    /// Fails with the last way's error.
    fn dial(&self, to: &PeerAddr, timeout: Duration, stop: &Arc<StopSignal>) -> Result<Dialed>;
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

impl Dialer for DirectDialer {
    fn dial(&self, to: &PeerAddr, timeout: Duration, stop: &Arc<StopSignal>) -> Result<Dialed> {
        let mut last = Error::Closed;
        for way in to.ways() {
            let Way::Direct(addr) = way else {
                continue;
            };
            match Connection::connect_tls_stoppable(
                &addr.to_string(),
                &self.tls,
                to.id,
                timeout,
                stop,
            ) {
                Ok((conn, guard)) => return Ok(Dialed { conn, guard }),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}
