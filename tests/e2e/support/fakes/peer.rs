//! [`FakePeer`]: one peer-protocol server on threads of the test, sharing a
//! file's id and misbehaving as its [`FakeSpec`] says: wrong manifests or
//! chunks, payloads trickled at a chosen rate, `ERR busy` to its first
//! connections, or a partial peer's offer of a few chunks. It speaks TLS
//! with an identity of its own, as real peers do, and records every
//! request. [`SilentPeer`] accepts connections and never says a word, not
//! even a TLS handshake.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use p2pshare::chunkset::ChunkSet;
use p2pshare::manifest::Manifest;
use p2pshare::net::tls::Tls;
use p2pshare::net::transport::Stream;
use p2pshare::storage::manifest_of;

use super::test_tls;
use crate::support::accept::Acceptor;
use crate::support::raw::{claim, REPLY};

/// The lies of the first fakes, kept as shorthands for [`FakeSpec`]s.
/// Whatever the lie, every chunk it sends has the right length and one
/// flipped byte.
pub enum Lie {
    /// The right manifest, so it is trusted until its first chunk.
    FlippedChunks,
    /// These bytes as the manifest: not the file's, so not hashing to its id.
    Manifest(Vec<u8>),
    /// `OK 18446744073709551615` for the manifest, and nothing after it.
    AbsurdManifestLength,
}

/// How a fake answers `MANIFEST <its id>`.
pub enum ManifestReply {
    /// The manifest it was made from.
    True,
    /// These bytes instead.
    Bytes(Vec<u8>),
    /// `OK 18446744073709551615`, and nothing after it.
    AbsurdLength,
    /// The true manifest, one byte every this long.
    Trickle(Duration),
}

/// How a fake answers `GET <its id> <index>` for a chunk it offers.
pub enum ChunkReply {
    /// The true bytes, at once.
    True,
    /// The right length with one byte flipped, at once.
    Flipped,
    /// The true bytes, `bytes` at a time every `every`.
    Trickle { bytes: usize, every: Duration },
}

/// What a [`FakePeer`] serves, and how.
pub struct FakeSpec {
    manifest: Manifest,
    data: Vec<u8>,
    manifest_reply: ManifestReply,
    chunks: ChunkReply,
    /// `Some`: a partial peer (protocol version 2) offering these chunks in
    /// its `HAVE` replies and refusing `GET`s for the others as a real
    /// partial peer does; `None`: a complete peer speaking version 1.
    offers: Option<ChunkSet>,
    /// Which connections (numbered from 0 in the order accepted) get what a
    /// real server at its caps sends instead of a TLS handshake (the busy
    /// alert, read as `ERR busy`) and a close.
    busy: Range<usize>,
    /// The id it shares, if not its manifest's (a manifest of its own
    /// making, whose SHA-256 is this id).
    id: Option<String>,
}

impl FakeSpec {
    /// An honest complete peer of the file at `path` (until told otherwise).
    pub fn of(path: &Path) -> FakeSpec {
        FakeSpec::of_manifest(manifest_of(path).unwrap(), fs::read(path).unwrap())
    }

    /// An honest complete peer of the file `manifest` describes, `data`
    /// being its bytes (only what chunks are asked for need be there).
    pub fn of_manifest(manifest: Manifest, data: Vec<u8>) -> FakeSpec {
        FakeSpec {
            manifest,
            data,
            manifest_reply: ManifestReply::True,
            chunks: ChunkReply::True,
            offers: None,
            busy: 0..0,
            id: None,
        }
    }

    /// A peer that shares the id of `bytes` and answers `MANIFEST` with
    /// them: a manifest that hashes to its id, whatever it holds.
    pub fn of_bytes(bytes: Vec<u8>) -> FakeSpec {
        let placeholder = Manifest::new(0, Vec::new()).unwrap();
        let id = sha256_hex(&bytes);
        let mut spec = FakeSpec::of_manifest(placeholder, Vec::new());
        spec.manifest_reply = ManifestReply::Bytes(bytes);
        spec.id = Some(id);
        spec
    }

    pub fn manifest(mut self, reply: ManifestReply) -> FakeSpec {
        self.manifest_reply = reply;
        self
    }

    pub fn chunks(mut self, reply: ChunkReply) -> FakeSpec {
        self.chunks = reply;
        self
    }

    /// A partial peer offering only `chunks`.
    pub fn partial(mut self, chunks: &[u32]) -> FakeSpec {
        let n = self.manifest.chunk_count();
        self.offers = Some(ChunkSet::from_fn(n, |i| chunks.contains(&i)));
        self
    }

    /// Answers connections `connections` (0: the first) with `ERR busy`.
    pub fn busy(mut self, connections: Range<usize>) -> FakeSpec {
        self.busy = connections;
        self
    }

    pub fn start(self) -> FakePeer {
        FakePeer::serve(self)
    }
}

/// What a fake peer serves and what it saw.
struct Fake {
    spec: FakeSpec,
    id: String,
    requests: Mutex<Vec<String>>,
    connections: AtomicUsize,
    /// Per connection that got a bad chunk: from the end of the first bad
    /// chunk to the downloader hanging up.
    hangups: Mutex<Vec<Duration>>,
}

/// A peer-protocol server on threads of this test (see the module docs).
/// Stops accepting when dropped; its connection threads end when the
/// downloader hangs up (or after 30 s idle).
pub struct FakePeer {
    pub addr: SocketAddr,
    /// Its identity: the tracker lists it with this id, which downloaders
    /// then pin.
    pub tls: Tls,
    fake: Arc<Fake>,
    _acceptor: Acceptor,
}

impl FakePeer {
    /// A fake of the file at `path` telling `lie`.
    pub fn start(lie: Lie, path: &Path) -> FakePeer {
        let spec = FakeSpec::of(path);
        match lie {
            Lie::FlippedChunks => spec.chunks(ChunkReply::Flipped),
            Lie::Manifest(bytes) => spec
                .manifest(ManifestReply::Bytes(bytes))
                .chunks(ChunkReply::Flipped),
            Lie::AbsurdManifestLength => spec
                .manifest(ManifestReply::AbsurdLength)
                .chunks(ChunkReply::Flipped),
        }
        .start()
    }

    fn serve(spec: FakeSpec) -> FakePeer {
        let fake = Arc::new(Fake {
            id: spec
                .id
                .clone()
                .unwrap_or_else(|| spec.manifest.id().to_hex()),
            spec,
            requests: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
            hangups: Mutex::new(Vec::new()),
        });
        let tls = test_tls();
        let (f, config) = (Arc::clone(&fake), Arc::clone(&tls.server));
        let acceptor = Acceptor::start("a fake peer", move |n, conn| {
            f.connections.fetch_add(1, Ordering::SeqCst);
            if f.spec.busy.contains(&n) {
                return refuse_busy(conn);
            }
            if let Ok(stream) = Stream::tls_server(conn, &config, REPLY) {
                serve_fake(stream, &f)
            }
        });
        FakePeer {
            addr: acceptor.addr,
            tls,
            fake,
            _acceptor: acceptor,
        }
    }

    /// Registers this fake with the tracker at `tracker` for its file, with
    /// the manifest's size: `REGISTER`, or `PARTIAL` for a partial fake.
    pub fn register(&self, tracker: SocketAddr, name: &str) {
        let verb = match self.fake.spec.offers {
            Some(_) => "PARTIAL",
            None => "REGISTER",
        };
        let size = self.fake.spec.manifest.size();
        self.register_claiming(tracker, verb, size, name);
    }

    /// Registers this fake (`verb`: `REGISTER` or `PARTIAL`) claiming `size`.
    pub fn register_claiming(&self, tracker: SocketAddr, verb: &str, size: u64, name: &str) {
        let port = self.addr.port();
        claim(&self.tls, tracker, verb, port, &self.fake.id, size, name);
    }

    /// Every request line it got, in order.
    pub fn requests(&self) -> Vec<String> {
        self.fake.requests.lock().unwrap().clone()
    }

    /// How many requests started with `prefix` (`"GET "`).
    pub fn count(&self, prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.starts_with(prefix))
            .count()
    }

    /// The chunk indexes of every `GET` it got, in order.
    pub fn gets(&self) -> Vec<u32> {
        self.requests()
            .iter()
            .filter_map(|r| r.strip_prefix("GET ")?.split(' ').nth(1)?.parse().ok())
            .collect()
    }

    /// How many connections it accepted.
    pub fn connections(&self) -> usize {
        self.fake.connections.load(Ordering::SeqCst)
    }

    pub fn hangups(&self) -> Vec<Duration> {
        self.fake.hangups.lock().unwrap().clone()
    }
}

/// What a real server at its caps sends instead of a TLS handshake: a
/// fatal `user_canceled` alert, which clients read as busy. The client's
/// hello is read first, so that the close sends no reset that could
/// destroy the alert.
const BUSY_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 90];

fn refuse_busy(mut tcp: TcpStream) {
    let _ = tcp.set_read_timeout(Some(REPLY));
    let _ = tcp.read(&mut [0; 4096]);
    let _ = tcp.write_all(&BUSY_ALERT);
}

/// One connection of a [`FakePeer`]: the peer protocol's requests,
/// answered in order as its spec says.
fn serve_fake(stream: Stream, fake: &Fake) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut r = BufReader::new(stream);
    let mut first_bad: Option<Instant> = None;
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let req = line.trim_end().to_string();
        fake.requests.lock().unwrap().push(req.clone());
        let words: Vec<&str> = req.split(' ').collect();
        // A `HAVE`'s chunk map is read before anything is written.
        let theirs = match words.as_slice() {
            ["HAVE", id, len] if *id == fake.id => match len.parse::<usize>() {
                Ok(len) => {
                    let mut map = vec![0; len];
                    if r.read_exact(&mut map).is_err() {
                        break;
                    }
                    Some(map)
                }
                Err(_) => None,
            },
            _ => None,
        };
        let w = r.get_mut();
        let sent = match words.as_slice() {
            ["HELLO", _] => w.write_all(fake.hello()),
            ["MANIFEST", id] if *id == fake.id => fake.send_manifest(w),
            ["GET", id, index] if *id == fake.id => match index.parse() {
                Ok(index) => fake.send_chunk(w, index, &mut first_bad),
                Err(_) => w.write_all(b"ERR invalid chunk index\n"),
            },
            ["HAVE", id, _] if *id == fake.id => match theirs {
                Some(_) => w.write_all(&fake.have_reply()),
                None => w.write_all(b"ERR invalid map length\n"),
            },
            ["MANIFEST" | "GET" | "HAVE", ..] => w.write_all(b"ERR not sharing that\n"),
            _ => w.write_all(b"ERR unknown command\n"),
        };
        if sent.is_err() {
            break;
        }
    }
    if let Some(t) = first_bad {
        fake.hangups.lock().unwrap().push(t.elapsed());
    }
}

impl Fake {
    /// A partial fake speaks version 2 (it needs `HAVE`); a complete one
    /// version 1, answering any `HELLO` with it.
    fn hello(&self) -> &'static [u8] {
        match self.spec.offers {
            Some(_) => b"OK p2pshare 2\n",
            None => b"OK p2pshare 1\n",
        }
    }

    fn send_manifest(&self, w: &mut Stream) -> std::io::Result<()> {
        match &self.spec.manifest_reply {
            ManifestReply::True => w.write_all(&with_payload(&self.spec.manifest.encode())),
            ManifestReply::Bytes(bytes) => w.write_all(&with_payload(bytes)),
            ManifestReply::AbsurdLength => w.write_all(b"OK 18446744073709551615\n"),
            ManifestReply::Trickle(every) => {
                trickle(w, &with_payload(&self.spec.manifest.encode()), 1, *every)
            }
        }
    }

    fn send_chunk(
        &self,
        w: &mut Stream,
        index: u32,
        first_bad: &mut Option<Instant>,
    ) -> std::io::Result<()> {
        let Some(c) = self.spec.manifest.chunk(index) else {
            return w.write_all(b"ERR no such chunk\n");
        };
        if self
            .spec
            .offers
            .as_ref()
            .is_some_and(|o| !o.contains(index))
        {
            let refusal = format!("ERR no chunk {index} here yet: still downloading it\n");
            return w.write_all(refusal.as_bytes());
        }
        let start = c.offset as usize;
        let mut bytes = self.spec.data[start..start + c.len as usize].to_vec();
        match self.spec.chunks {
            ChunkReply::True => w.write_all(&with_payload(&bytes)),
            ChunkReply::Flipped => {
                bytes[c.len as usize / 2] ^= 1;
                w.write_all(&with_payload(&bytes))?;
                first_bad.get_or_insert_with(Instant::now);
                Ok(())
            }
            ChunkReply::Trickle { bytes: n, every } => trickle(w, &with_payload(&bytes), n, every),
        }
    }

    /// `OK <len> partial|complete` and the chunks it offers.
    fn have_reply(&self) -> Vec<u8> {
        let n = self.spec.manifest.chunk_count();
        let (map, state) = match &self.spec.offers {
            Some(offers) => (offers.encode(), "partial"),
            None => (ChunkSet::full(n).encode(), "complete"),
        };
        [format!("OK {} {state}\n", map.len()).as_bytes(), &map].concat()
    }
}

/// Writes `reply` `n` bytes at a time, one write every `every`.
fn trickle(w: &mut Stream, reply: &[u8], n: usize, every: Duration) -> std::io::Result<()> {
    // The header goes at once: the slowness is in the payload.
    let header = reply.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
    w.write_all(&reply[..header])?;
    for part in reply[header..].chunks(n) {
        w.write_all(part)?;
        // The point of this reply: slowness.
        thread::sleep(every);
    }
    Ok(())
}

fn with_payload(bytes: &[u8]) -> Vec<u8> {
    [format!("OK {}\n", bytes.len()).as_bytes(), bytes].concat()
}

/// A listener that accepts every connection and never answers, holding
/// them until dropped: a peer that is up but hung.
pub struct SilentPeer {
    pub addr: SocketAddr,
    held: Arc<Mutex<Vec<(TcpStream, Instant)>>>,
    _acceptor: Acceptor,
}

impl SilentPeer {
    pub fn start() -> SilentPeer {
        let held = Arc::new(Mutex::new(Vec::new()));
        let conns = Arc::clone(&held);
        let acceptor = Acceptor::start("a silent peer", move |_, conn| {
            conns.lock().unwrap().push((conn, Instant::now()));
        });
        SilentPeer {
            addr: acceptor.addr,
            held,
            _acceptor: acceptor,
        }
    }

    /// How many connections it has accepted.
    pub fn accepted(&self) -> usize {
        self.held.lock().unwrap().len()
    }

    /// When it accepted its latest connection, if any.
    pub fn last_accepted(&self) -> Option<Instant> {
        self.held.lock().unwrap().iter().map(|(_, at)| *at).max()
    }
}

/// Lowercase hex of the SHA-256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
