//! Reaching another peer and speaking its protocol as a client.
//!
//! A peer is named by who it is, not where: a [`PeerAddr`] is its id (when
//! known; the DHT's peers have none) and the ways to reach it. A
//! [`Dialer`] turns one into a TLS connection, pinned to that id; the
//! [`PeerClient`] runs the chunk server's protocol over it (`HELLO`, `AUTH`,
//! `MANIFEST`, `HAVE`, `GET`) and hands back typed replies.
//!
//! The download's scheduler and workers hold only `PeerAddr`s and dial
//! only through a `Dialer`: a new way to reach a peer (hole-punched,
//! relayed) is a new [`Way`] and a dialer that knows it, nothing more.
//!
//! Modules: `addr` (who and how to reach), `dialer` (the seam and direct
//! TCP), `relayed` (direct, then the tracker's relay), `client` (the
//! protocol over a dialled connection).

mod addr;
mod client;
mod dialer;
mod relayed;

pub use self::addr::{Path, PeerAddr, Way};
pub use self::client::{FileKey, Got, Have, PeerClient};
pub use self::dialer::{Dialed, Dialer, DirectDialer, RelayedHold};
pub use self::relayed::RelayingDialer;

#[cfg(test)]
mod tests;
