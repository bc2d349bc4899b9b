//! The tracker: which peers have which files. `state` is the map (pure, with
//! its invariants and tests); `server` speaks the protocol over TCP;
//! `replies` bounds the large replies written at once; `nat` serves peers
//! behind NAT (reflection, dial-back, control connections, the relay).

pub mod nat;
pub mod replies;
pub mod server;
pub mod state;
pub mod status;

pub use server::{handle_connection, Tracker, TrackerHandle};
pub use state::Registry;
