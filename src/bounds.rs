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

/// Most entries (files and empty directories) a folder's manifest lists.
pub const MAX_TREE_ENTRIES: usize = 100_000;

/// Most components of a path inside a shared folder, and its longest form
/// in bytes (Linux's `PATH_MAX` less the terminating zero).
pub const MAX_TREE_DEPTH: usize = 64;
pub const MAX_TREE_PATH: usize = 4095;

/// Most directory entries a share's walk looks at, kept or skipped
/// (symlinks, sockets, excluded paths): bounds the time a folder of
/// millions of skipped entries can take before it is refused.
pub const MAX_SCAN_VISITS: usize = 10 * MAX_TREE_ENTRIES;

/// Most `--only` / `--exclude` globs one command takes.
pub const MAX_GLOBS: usize = 64;

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

// ------------------------------------------------------- port mapping ----

/// The lease a peer asks its router for (UPnP IGD or NAT-PMP): what a
/// killed peer leaves behind at most. Renewed every `PORT_MAP_RENEW`, so a
/// router that rebooted and forgot it has it back within that.
pub const PORT_MAP_LEASE: Duration = Duration::from_secs(3600);
pub const PORT_MAP_RENEW: Duration = Duration::from_secs(900);
/// After a failed attempt (no router answered, or it refused), the next
/// one is this much later.
pub const PORT_MAP_RETRY: Duration = Duration::from_secs(300);
/// NAT-PMP: the first request waits this long for its answer, each resend
/// twice as long, `NATPMP_TRIES` in all (RFC 6886 allows 9; a router on
/// the LAN answers in milliseconds): at most 1.75 s per exchange.
pub const NATPMP_FIRST_WAIT: Duration = Duration::from_millis(250);
pub const NATPMP_TRIES: u32 = 3;
/// UPnP: how long SSDP discovery listens for a gateway. Each SOAP call is
/// bounded by igd-next itself (10 s, bodies ≤ 1 MiB).
pub const UPNP_SEARCH: Duration = Duration::from_secs(2);
/// How long `peer send` waits for the first mapping before it prints the
/// ticket (without the mapped address if it is not there by then).
pub const PORT_MAP_FIRST_WAIT: Duration = Duration::from_secs(4);
/// How long it then waits for the tracker to check a mapping the router
/// gave (the ticket carries only a checked one, and a sender reachable
/// through it holds no control connection, so a ticket without it would
/// not reach the sender): a `WHOAMI` dial-back (3 s at most) after the
/// reach thread's `MAPPING_RECHECK`.
pub const PORT_MAP_CONFIRM_WAIT: Duration = Duration::from_secs(6);

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

/// Most requests in flight on one download connection, whatever their
/// size: the depth above bounds *bytes* (depth × chunk size), so a folder
/// of small files keeps up to this many short chunks on the way instead of
/// four (10,000 files of 4 KiB: ~160 round trips, not 2,500).
pub const MAX_GETS_IN_FLIGHT: usize = 64;

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

// ------------------------------------------------------------------- NAT ---

/// Most a tracker spends on one dial-back (`WHOAMI <port>`): TCP to the IP
/// the question came from, TLS pinned to the asker's id, `HELLO`.
pub const DIAL_BACK_TIMEOUT: Duration = Duration::from_secs(3);
/// Dial-backs a tracker runs at once; more get `ERR busy`.
pub const DIAL_BACKS: usize = 16;
/// How often a peer asks `WHOAMI` again (an address or a router changes),
/// and how long it waits after a failed one: 1 s, doubling, up to this.
pub const REACH_RECHECK: Duration = Duration::from_secs(300);

/// While this peer's router has not answered a port-mapping request yet,
/// how soon a peer asks `WHOAMI` again, so that the mapping is checked
/// (and offered) soon after it is made, whichever came first; once a
/// mapping is held but unchecked, the first wait, doubling up to
/// `REACH_RECHECK`.
pub const MAPPING_RECHECK: Duration = Duration::from_secs(2);
/// Control connections a tracker holds at once (one per peer id; a new
/// `LISTEN` replaces the old); more get `ERR busy`.
pub const TRACKER_LISTENERS: usize = 256;
/// How often the tracker pings a control connection: within its own
/// `IDLE_TIMEOUT`, and well within the TCP idle timeout of home and
/// carrier NATs (RFC 5382 asks for 2 h 4 min; some drop mappings after
/// a few minutes).
pub const CONTROL_PING: Duration = Duration::from_secs(25);
/// How long the tracker waits for a peer's answer to a control line.
pub const CONTROL_REPLY: Duration = Duration::from_secs(10);
/// How long a peer hears nothing on its control connection before it
/// takes it for dead and connects again: two pings and a margin.
pub const CONTROL_SILENCE: Duration = Duration::from_secs(60);
/// Relay sessions (pending pairings included) at once, in all and with one
/// peer id at either end; more get `ERR busy`.
pub const RELAY_SESSIONS: usize = 64;
pub const RELAY_PER_PEER: usize = 4;
/// How long a pairing token waits for its two `JOIN`s; then it is void.
pub const RELAY_PAIR_TIMEOUT: Duration = Duration::from_secs(10);
/// A relayed session with no byte either way for this long is closed.
pub const RELAY_IDLE: Duration = Duration::from_secs(60);
/// The relay's copy buffer per direction of a session: what one read
/// from one side may take before it is written to the other.
pub const RELAY_COPY: usize = 1024 * 1024;
/// How long a downloader waits for a direct connection to a peer it can
/// also reach through the relay before it asks the relay: a SYN a NAT
/// drops is never answered, while one that gets through is answered
/// within a round trip (a lost SYN's retry comes after 1 s, so it then
/// goes through the relay, which works too).
pub const RELAY_FALLBACK: Duration = Duration::from_millis(1500);
/// A peer reached only through the relay is dialled through it first for
/// this long (then directly first again); at most this many such peers
/// are remembered.
pub const RELAY_PREFER: Duration = Duration::from_secs(60);
pub const RELAY_PREFER_PEERS: usize = 1024;
/// Relayed connections a peer's chunk server takes at once (each arrives
/// through the control connection, not the accept loop).
pub const PEER_RELAYED: usize = 16;
/// How long both sides of a hole punch keep connecting to each other
/// (TCP simultaneous open), and how soon a refused attempt is made again:
/// a NAT that drops unsolicited SYNs lets the other's in once ours went
/// out (one `connect` does it); one that answers with a reset needs the
/// attempts to cross, so they are repeated.
pub const PUNCH_TIME: Duration = Duration::from_secs(3);
pub const PUNCH_RETRY: Duration = Duration::from_millis(200);
/// Introductions (`PUNCH`) a tracker has made within the last
/// [`PUNCH_TIME`], in all and with one peer id at either end; more get
/// `ERR busy`. A swarm punches every pair of peers, [`CONNS_PER_PEER`]
/// connections each way, at once: 32 covers a peer meeting eight others
/// (at 4, the lab's crowd of seven NATed peers had 161 punches refused
/// and relayed 156 MiB instead).
pub const PUNCHES: usize = 256;
pub const PUNCH_PER_PEER: usize = 32;
/// Punches a peer runs at once on the tracker's word (each a thread that
/// connects for up to [`PUNCH_TIME`]); one more is ignored.
pub const PEER_PUNCHES: usize = 32;
/// Lines (`PING`, `JOIN`, `PUNCH`) the tracker queues for one control
/// connection while the peer answers the one before; one more gets
/// `ERR busy` (the control connection carries one line per round trip).
pub const CONTROL_QUEUED: usize = 32;
/// How long `peer get` gives one stage of a ticket's ways (the sender's
/// addresses, all at once; then a hole punch through the ticket's tracker;
/// then that tracker's relay) before it starts the next one as well (at
/// once if every way started so far has failed); the first handshake
/// wins. A NAT that drops the SYN never answers, so waiting for it only
/// costs time (it cost every NATed `peer get` 3 s); 250 ms is Happy
/// Eyeballs' connection attempt delay (RFC 8305, section 5), longer than
/// TCP and TLS 1.3 take (two round trips) to most peers a direct SYN does
/// reach. Starting a stage early costs little: a punch is one of the
/// tracker's introductions ([`PUNCH_PER_PEER`]), a relay pairing that
/// loses is closed before it carries a chunk.
pub const TICKET_STAGGER: Duration = Duration::from_millis(250);
