//! Every bound on what others can make this process spend (sizes, counts,
//! timeouts, deadlines), on one screen; docs/PROTOCOL.md and
//! docs/RELIABILITY.md quote these values. The tuning of one algorithm
//! stays beside it (the offers' windows in `peer/offer.rs`, the scheduler's
//! recheck in `peer/download/scheduler.rs`, the REPL's Ctrl+C and quit
//! graces in `peer/repl/control.rs` and `peer/input.rs`).
//!
//! Words: a *cap* bounds a count (connections, entries), a *rate* is bytes
//! per second, a *timeout* bounds one wait, a *deadline* one whole exchange.

use std::time::Duration;

// ------------------------------------------------------------ content -----

/// Bytes per chunk. Every chunk is hashed and verified on its own.
pub const CHUNK_SIZE: u32 = 512 * 1024;

/// Largest chunk size a manifest may declare; bounds a downloader's chunk
/// buffers (one per worker). A server never holds a whole chunk: it sends
/// one `RATE_SLICE` at a time.
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;

/// Largest manifest accepted on the wire (a 16 MiB manifest describes ~120 GiB).
pub const MAX_MANIFEST_LEN: usize = 16 * 1024 * 1024;

/// Longest file name, in bytes (as on common file systems).
pub const MAX_NAME_LEN: usize = 255;

// ------------------------------------------------------------- protocol ---

/// Longest accepted protocol line, including its `\n`. Longer lines get `ERR`
/// and the connection is closed: past that point the stream cannot be trusted.
pub const MAX_LINE: usize = 4096;

/// Most entries a tracker reply may carry; a client stops reading beyond it.
pub const MAX_LIST_ENTRIES: usize = 100_000;

/// Longest chunk map a `HAVE` may carry: one bit per chunk of the largest
/// file a manifest can describe (`MAX_MANIFEST_LEN` / 65 bytes a chunk).
pub const MAX_HAVE_LEN: usize = (MAX_MANIFEST_LEN / 65).div_ceil(8);

/// Most `AUTH`s for private shares one connection may try, proved or not
/// (each looks through the library); a downloader tries one.
pub const MAX_SESSION_AUTHS: usize = 16;

/// Most addresses a ticket carries, and the longest ticket read (base64
/// characters after the prefix).
pub const MAX_TICKET_ADDRS: usize = 8;
pub const MAX_TICKET_LEN: usize = 1024;

/// Descriptors of shared files a peer keeps open to serve them, least
/// recently used closed first: shares cost no descriptor each, so
/// `ulimit -n` bounds connections, not how many files a peer shares.
pub const MAX_OPEN_SHARES: usize = 64;

/// Tracker requests a peer writes before reading their replies, when it
/// registers or unregisters many files on one connection: every batch's
/// replies fit in the socket buffers, so neither side waits on the other.
pub const TRACKER_BATCH: usize = 256;

/// A connection's read buffer: many pipelined lines, or the start of a payload.
pub const READ_BUF: usize = 64 * 1024;

// ------------------------------------------------------------- timeouts ---

/// How long a connection may sit idle, or take to deliver one request line.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a new connection may take, from accept, to send its first
/// request line, its TLS handshake included. Real clients send `HELLO` at
/// once; a short bound frees slots held by floods.
pub const FIRST_LINE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a single socket read or write may block mid-message.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one tracker request may take in all, its whole reply included.
pub const TRACKER_DEADLINE: Duration = Duration::from_secs(15);

/// How long connecting to a tracker or peer may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A download's first connect to a peer (TCP and TLS) gives up sooner,
/// after a SYN and one retransmit, and is tried again at once with
/// `CONNECT_TIMEOUT`, no strike counted (issue 22: 48 downloaders in
/// namespaces lost SYNs to each other, each a 5 s wait and a strike).
pub const FIRST_CONNECT_TIMEOUT: Duration = Duration::from_millis(2000);

/// Slowest a client may read one reply (a chunk) before the server gives
/// up on it: a reply of `n` bytes gets `IO_TIMEOUT + n / MIN_READ_RATE`.
pub const MIN_READ_RATE: u64 = 4 * 1024;

/// Slowest a peer may send a payload (a chunk, a manifest, a chunk map):
/// every `PROGRESS_WINDOW`, at least that window's worth at this rate must
/// arrive, or the request is abandoned. Time spent waiting on our own
/// download cap does not count.
pub const MIN_PAYLOAD_RATE: u64 = 16 * 1024;
pub const PROGRESS_WINDOW: Duration = Duration::from_secs(5);

/// A request body (a `HAVE`'s chunk map) must arrive within this, plus its
/// length at `MIN_PAYLOAD_RATE`; a real downloader sends it with the line.
pub const BODY_GRACE: Duration = Duration::from_secs(1);

/// The socket's write timeout between bounded writes: a quarter of
/// [`IO_TIMEOUT`], the stall budget of one system call (see `Connection`).
pub const WRITE_CALL_TIMEOUT: Duration = Duration::from_millis(IO_TIMEOUT.as_millis() as u64 / 4);

/// After an error reply, how long and how much a server keeps discarding a
/// client's input before closing, so that the `ERR` line is not reset away.
pub const LINGER_TIME: Duration = Duration::from_millis(500);
pub const LINGER_BYTES: usize = 1 << 20;

/// How long a server waits to hand `ERR busy` to a connection over its caps.
pub const BUSY_REPLY_TIMEOUT: Duration = Duration::from_millis(200);

/// How long a peer waits for the tracker to take its `BYE` when it leaves.
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------- servers --

/// Connection caps of one server: connections at once in all, and from one
/// IP address.
#[derive(Clone, Copy, Debug)]
pub struct ConnCaps {
    pub total: usize,
    pub per_ip: usize,
}

/// Concurrent connections the tracker serves, in all and from one IP address;
/// more get `ERR busy`.
pub const TRACKER_CAPS: ConnCaps = ConnCaps {
    total: 1024,
    per_ip: 128,
};

/// Concurrent connections a peer's chunk server serves, in all and from one
/// IP address (which must cover one downloader's [`MAX_WORKERS`]).
pub const PEER_CAPS: ConnCaps = ConnCaps {
    total: 256,
    per_ip: 96,
};

/// Concurrent status-page connections, in all and from one address. A
/// browser opens at most six per host; the page itself uses one at a time.
pub const HTTP_CAPS: ConnCaps = ConnCaps {
    total: 32,
    per_ip: 16,
};

/// Accept backlog: room for a burst of connections while the accept loop
/// catches up (std's default of 128 overflows under a flood; Linux caps it
/// at `net.core.somaxconn`).
pub const LISTEN_BACKLOG: i32 = 1024;

/// Stack of a connection thread: buffers live on the heap.
pub const CONN_STACK: usize = 256 * 1024;

/// How long a status-page client may take to send its whole request head,
/// and how many header lines it may send.
pub const HTTP_HEAD_DEADLINE: Duration = Duration::from_secs(10);
pub const HTTP_MAX_HEADERS: usize = 64;
/// Largest request body the status page reads (a POST's JSON: a ticket or
/// link and an output path); the body must arrive by the head's deadline.
pub const HTTP_MAX_BODY: usize = 16 * 1024;

// ---------------------------------------------------------------- tracker --

/// Most files the tracker remembers.
pub const TRACKER_MAX_FILES: usize = 100_000;
/// Most peers it remembers per file.
pub const TRACKER_MAX_PEERS_PER_FILE: usize = 1_000;
/// Most (file, peer) registrations in all: bounds memory to ~100 MiB.
pub const TRACKER_MAX_REGISTRATIONS: usize = 1_000_000;
/// An IP address's and an identity's share of the registrations and of
/// the files: what one may hold of an otherwise empty tracker. A share
/// shrinks as others fill the tracker (`tracker/state/share.rs`): ten
/// addresses registering all they can stop at 71,000-89,000 files (at
/// once, or one after another), not 100,000, and a newcomer still gets
/// 1,000-2,800 files per identity. An identity is one peer (10,000 files
/// shared is still fine); an address is a host or a NAT'd household or
/// office, so room for several such peers.
pub const TRACKER_MAX_PER_ADDRESS: usize = 20_000;
pub const TRACKER_MAX_PER_IDENTITY: usize = 10_000;
/// An IP address's share of one file's [`TRACKER_MAX_PEERS_PER_FILE`]
/// peers (any number of identities and ports), scaled like the shares
/// above by what other addresses left free: room for an office of dozens
/// of peers behind one NAT, or one machine running many peers of one file
/// (the benchmarks' flash crowd runs 13 on loopback), while addresses
/// that each take all they may never fill the list (16 of them stop at
/// 52-65% of it, at once or one after another, and a newcomer still gets
/// in).
pub const TRACKER_MAX_PER_FILE_ADDRESS: usize = 64;

/// Most rows, and bytes, of one `SEARCH` or `INFO` reply; more matches are
/// cut and the count line says `more`. A worst-case row (255-byte name)
/// is ~360 bytes, so the byte bound is reached first only with long names.
pub const TRACKER_REPLY_ROWS: usize = 500;
pub const TRACKER_REPLY_BYTES: usize = 64 * 1024;
/// List replies over `TRACKER_LARGE_REPLY` bytes being written at once, in
/// all and to one IP address; more get `ERR busy`, so slow readers of big
/// replies hold at most `TRACKER_LARGE_REPLIES × TRACKER_REPLY_BYTES` (4
/// MiB), one host at most 4 of them, and each for at most `IO_TIMEOUT` +
/// its size at `MIN_READ_RATE` (26 s).
pub const TRACKER_LARGE_REPLY: usize = 16 * 1024;
pub const TRACKER_LARGE_REPLIES: usize = 64;
pub const TRACKER_LARGE_REPLIES_PER_IP: usize = 4;

/// Most files one tracker status reply lists, and peers listed per file.
pub const STATUS_MAX_FILES: usize = 1000;
pub const STATUS_MAX_PEERS: usize = 50;

/// Most peers on listen port 0 one user runs at once with the default
/// state directory (each takes `peer-any`, `peer-any-2`, …).
pub const MAX_ANY_PORT_STATE_DIRS: usize = 64;

/// Most downloaders (per file) a peer keeps a record of for `send`,
/// `status` and the page; the one heard from longest ago gives way.
pub const MAX_UPLOADS_SHOWN: usize = 256;

// ------------------------------------------------------------- downloads --

/// Most parallel chunk fetches one download may use (`--workers`), and
/// how many it uses unless told.
pub const MAX_WORKERS: u16 = 64;
pub const DEFAULT_WORKERS: u16 = 8;

/// How often a peer announces its files to the tracker again, unless told
/// (`--announce-interval`).
pub const DEFAULT_ANNOUNCE_INTERVAL: Duration = Duration::from_secs(30);

/// Consecutive failures after which a download benches a peer (stops using
/// it for `BENCH_TIME`, doubling each time up to `BENCH_TIME_MAX`).
pub const MAX_STRIKES: u32 = 3;
pub const BENCH_TIME: Duration = Duration::from_secs(5);
pub const BENCH_TIME_MAX: Duration = Duration::from_secs(60);

/// Longest pause before asking a peer that said `busy` again.
pub const BUSY_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// How long a download waits, by default, for a usable peer when none is
/// left (`--patience`), asking the tracker and the DHT meanwhile.
pub const DEFAULT_PATIENCE: Duration = Duration::from_secs(300);

/// Most workers fetching the same chunk at once (endgame duplicates), and
/// how long a chunk must have been in flight before another peer is asked
/// for it too.
pub const MAX_HOLDERS: usize = 2;
pub const ENDGAME_AFTER: Duration = Duration::from_millis(1000);

/// A holder that has had a chunk this long no longer counts against
/// `MAX_HOLDERS`: a third peer may fetch it too.
pub const HOLD_PATIENCE: Duration = Duration::from_secs(3);

/// Most connections (worker threads) one download opens to one peer; each
/// keeps several requests in flight instead.
pub const CONNS_PER_PEER: usize = 2;

/// Most requests in flight on one download connection. A new connection
/// starts with one and earns one more per verified chunk, so a peer that
/// lies or stalls costs one request, not a pipeline.
pub const PIPELINE_DEPTH: usize = 4;

/// The first chunks of a download are picked at random, not rarest first,
/// so that downloaders who start together soon hold different chunks.
pub const RANDOM_FIRST: u32 = 4;

/// How often a download asks each connected peer what it now offers
/// (`HAVE`): a chunk a peer verifies is known to its downloaders within
/// about this long.
pub const HAVE_INTERVAL: Duration = Duration::from_millis(500);

/// How soon a complete peer whose last `HAVE` answer brought nothing new is
/// asked again. (While its answers bring chunks, it is asked as soon as
/// fewer than a pipeline's worth are left: a gap there throttled a lone
/// downloader to 16 chunks per gap.)
pub const HAVE_MIN_GAP: Duration = Duration::from_millis(20);

/// An idle download connection (its peer offers nothing needed) gives its
/// worker to an unconnected peer after this long.
pub const IDLE_SWITCH: Duration = Duration::from_secs(2);

/// A download asks the tracker and the DHT for more peers after 1 s, then
/// at doubling intervals up to this.
pub const PEER_REFRESH_MAX: Duration = Duration::from_secs(30);

/// A download asks one more peer for the manifest every `MANIFEST_HEDGE`
/// (at once when one fails), at most `MANIFEST_PARALLEL` at a time, and
/// takes the first that verifies.
pub const MANIFEST_HEDGE: Duration = Duration::from_millis(500);
pub const MANIFEST_PARALLEL: usize = 4;

/// Most peers taken from one DHT lookup.
pub const MAX_DHT_PEERS: usize = 200;

/// DHT announces in flight at once in an announce round (each one is an
/// iterative lookup, mostly waiting on other nodes).
pub const DHT_ANNOUNCES_AT_ONCE: usize = 16;

/// Bandwidth caps meter this many bytes at a time: small enough to keep a
/// capped rate smooth, large enough to cost nothing at full speed.
pub const RATE_SLICE: usize = 64 * 1024;

/// Most TLS bytes a connection queues before writing them to the socket
/// (rustls's buffer limit, 64 KiB by default): one metered slice and the
/// reply header that shares its records, so a slice is one write call and
/// the header never a write (and a TCP segment) of its own. Larger writes
/// were measured slower: rustls allocates every record, and freeing more
/// than glibc's 128 KiB trim threshold each chunk costs page faults.
pub const TLS_SEND_BUFFER: usize = RATE_SLICE + MAX_LINE;

/// Longest single sleep of a capped transfer, so a lifted or raised cap
/// takes effect quickly.
pub const RATE_MAX_NAP: Duration = Duration::from_millis(50);

/// A capped download connection's kernel receive buffer holds what the
/// sender may push ahead of the cap's reads. Left to itself, Linux grows
/// it while the cap holds the reads back, and the bytes on the wire ran up
/// to 4% ahead of the cap over 10 s. So it is sized to `RATE_RECV_RTTS`
/// round trips of the whole cap (one connection alone keeps to the cap),
/// at least `RATE_RECV_MIN` (on loopback and LANs the round trip is tiny).
pub const RATE_RECV_RTTS: u32 = 2;
pub const RATE_RECV_MIN: usize = 2 * RATE_SLICE;

// ------------------------------------------------------------- the peer ----

/// Finished downloads remembered for `status`, newest kept.
pub const KEEP_FINISHED: usize = 16;

/// A download's rate is measured over this much recent time.
pub const RATE_WINDOW: Duration = Duration::from_secs(5);

/// A peer counts as in use by a download if it delivered a chunk this recently.
pub const ACTIVE_PEER: Duration = Duration::from_secs(5);

/// Longest REPL input line; longer lines are reported and skipped.
pub const MAX_INPUT_LINE: usize = 64 * 1024;

/// Longest state file read (`shares.json`, `downloads.json`,
/// `known_trackers`, the history): ~200,000 remembered shares. Anything
/// longer is not ours and is refused, not read into memory.
pub const MAX_STATE_FILE: u64 = 64 * 1024 * 1024;

/// Longest manifest store (`manifests.log`: every remembered share's
/// manifest, 65 bytes per 512 KiB chunk, so about 8 TiB of shared files);
/// past it a manifest is not remembered (its file is hashed again at the
/// next start), and a longer file found at start is not ours: refused.
pub const MAX_MANIFEST_STORE: u64 = 1 << 30;

/// A manifest store or a shares journal this long or shorter is never
/// compacted: below it, rewriting costs more than the dead bytes do.
pub const MANIFEST_STORE_SLACK: u64 = 256 * 1024;
pub const SHARES_JOURNAL_SLACK: u64 = 256 * 1024;

/// Longest `identity.key` or `identity.crt` read (ours are under 1 KiB).
pub const MAX_IDENTITY_FILE: u64 = 64 * 1024;

/// History entries the line editor keeps.
pub const HISTORY_SIZE: usize = 1000;

/// How long the tracker's file names are reused for Tab completion.
pub const NAMES_TTL: Duration = Duration::from_secs(5);
