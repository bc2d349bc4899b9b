//! p2pshare: a tracker and peers that move files as content-addressed,
//! individually verified 512 KiB chunks, fetched in parallel from every peer
//! that has them.
//!
//! # Layout
//! - [`protocol`]: the line-based wire protocol. `message` and `codec` are pure
//!   (no sockets, unit-tested); `conn` is the only code that touches a socket.
//! - [`manifest`]: a file's size and per-chunk SHA-256 list, and its id.
//! - [`store`]: hashing files for sharing; verified, resumable partial downloads.
//! - [`tracker`]: the tracker's state (a map behind a `Mutex`) and its server.
//! - [`peer`]: the peer's chunk server, tracker client, download engine and REPL.
//! - [`ui`]: human-readable sizes and terminal progress bars; [`web`]: the
//!   status page server behind `--http`.
//!
//! All limits (line length, timeouts, connection caps) live here so they can be
//! read on one screen.

use std::time::Duration;

pub mod cli;
pub mod dht;
pub mod error;
pub mod limit;
pub mod link;
pub mod manifest;
pub mod peer;
pub mod protocol;
pub mod server;
pub mod store;
pub mod sys;
pub mod tracker;
pub mod ui;
pub mod web;

/// Bytes per chunk. Every chunk is hashed and verified on its own.
pub const CHUNK_SIZE: u32 = 512 * 1024;

/// Longest accepted protocol line, including its `\n`. Longer lines get `ERR`
/// and the connection is closed: past that point the stream cannot be trusted.
pub const MAX_LINE: usize = 4096;

/// Largest manifest accepted on the wire (a 16 MiB manifest describes ~120 GiB).
pub const MAX_MANIFEST_LEN: usize = 16 * 1024 * 1024;

/// Most entries a tracker reply may carry; a client stops reading beyond it.
pub const MAX_LIST_ENTRIES: usize = 100_000;

/// Longest file name, in bytes (as on common file systems).
pub const MAX_NAME_LEN: usize = 255;

/// How long a connection may sit idle, or take to deliver one request line.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a new connection may take to send its first request line. Real
/// clients send `HELLO` at once; a short bound frees slots held by floods.
pub const FIRST_LINE_TIMEOUT: Duration = Duration::from_secs(5);

/// Slowest a client may read one reply (a chunk) before the server gives
/// up on it: a reply of `n` bytes gets `IO_TIMEOUT + n / MIN_READ_RATE`.
pub const MIN_READ_RATE: u64 = 4 * 1024;

/// How long a single socket read or write may block mid-message.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// How long connecting to a tracker or peer may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Concurrent connections the tracker serves, in all and from one IP address;
/// more get `ERR busy`.
pub const TRACKER_LIMITS: server::Limits = server::Limits {
    total: 1024,
    per_ip: 128,
};

/// Concurrent connections a peer's chunk server serves, in all and from one
/// IP address (which must cover one downloader's `MAX_WORKERS`).
pub const PEER_LIMITS: server::Limits = server::Limits {
    total: 256,
    per_ip: 96,
};

/// Most parallel chunk fetches one download may use.
pub const MAX_WORKERS: u16 = 64;

/// The protocol version sent and expected in `HELLO`.
pub const PROTOCOL_VERSION: u32 = 1;
