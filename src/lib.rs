//! p2pshare: a tracker and peers that move files as content-addressed,
//! individually verified 512 KiB chunks, fetched in parallel from every peer
//! that has them.
//!
//! # Layout
//! - [`bounds`]: every size cap, count cap and timeout, on one screen.
//! - [`protocol`]: the line-based wire protocol. `message` and `codec` are pure
//!   (no sockets, unit-tested); `conn` is the only protocol code on a stream.
//! - [`net`]: sockets: TLS or plain TCP behind one type, stopping blocked
//!   threads, bandwidth caps, and the Linux calls std lacks.
//! - [`server`]: the accept loop, connection slots and request loop every
//!   server shares.
//! - [`identity`]: a peer's or tracker's key, certificate and id ([`base32`]
//!   spells it, and share secrets).
//! - [`state_file`]: every read and write in a state directory: no link
//!   followed, no blocking open, bounded, written whole.
//! - [`private`]: private shares' secrets, blinded ids and per-session proofs.
//! - [`link`] and [`ticket`]: what users paste to download a file.
//! - [`name`]: the one rule for file names (one safe path component).
//! - [`manifest`]: a file's size and per-chunk SHA-256 list, and its id.
//! - [`chunkset`]: which chunks of a file are present, and its wire form.
//! - [`storage`]: chunks on disk behind a small interface; hashing files for
//!   sharing; verified, resumable partial downloads.
//! - [`tracker`]: the tracker's state (a map behind a `Mutex`) and its server.
//! - [`peer`]: the peer's chunk server, tracker client, download engine and REPL.
//! - [`console`]: lines for the user that must not tear the prompt.
//! - [`ui`]: human-readable sizes and terminal progress bars; [`web`]: the
//!   status page server behind `--http`.

pub mod base32;
pub mod bounds;
pub mod chunkset;
pub mod cli;
pub mod console;
pub mod dht;
pub mod error;
pub mod identity;
pub mod link;
pub mod manifest;
pub mod name;
pub mod net;
pub mod peer;
pub mod private;
pub mod protocol;
pub mod select;
pub mod server;
pub mod state_dir;
pub mod state_file;
pub mod storage;
mod sync;
#[cfg(test)]
mod testing;
pub mod ticket;
pub mod tracker;
pub mod ui;
pub mod web;
