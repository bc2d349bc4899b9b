//! The chunk server's protocol, client side, over one dialled connection:
//! `HELLO` (falling back to version 1 for a peer that refuses ours), `AUTH`
//! for a private share, then `MANIFEST`, `HAVE` and `GET`. A `HAVE` or `GET`
//! is sent and its reply read apart, so that requests can be pipelined
//! (replies come back in request order). Replies are typed ([`Got`],
//! [`Have`]); their lines are parsed in [`peer_msg`](crate::protocol::peer_msg).

use std::sync::Arc;
use std::time::Duration;

use super::dialer::RelayedHold;
use super::{Dialer, Path, PeerAddr};
use crate::bounds::{CONNECT_TIMEOUT, IO_TIMEOUT, MAX_MANIFEST_LEN};
use crate::chunkset::ChunkSet;
use crate::error::{Error, Result};
use crate::manifest::{Chunk, FileId};
use crate::net::rate::RateCap;
use crate::net::stop::{StopGuard, StopSignal};
use crate::private::{listed_id, Secret, EXPORTER_LABEL};
use crate::protocol::message::{hello_line, parse_hello_reply, OLDEST_VERSION, PROTOCOL_VERSION};
use crate::protocol::peer_msg::{parse_have_header, refusal, Refusal};
use crate::protocol::{Connection, PeerRequest};

/// What a connection is for: a file, and for a private share the secret
/// each connection proves before asking for it.
#[derive(Clone, Copy, Debug)]
pub struct FileKey {
    pub id: FileId,
    pub secret: Option<Secret>,
}

impl FileKey {
    /// The id the network knows the file by (the tracker, the DHT, and
    /// every request to a peer): its id, or for a private share its blinded
    /// id, so that a private share's real id never crosses the wire (a
    /// peer a hostile tracker lists learns nothing it could look up).
    pub fn listed(&self) -> FileId {
        listed_id(&self.id, self.secret.as_ref())
    }
}

/// The reply to a `GET`.
#[derive(Debug, PartialEq, Eq)]
pub enum Got<'a> {
    /// The chunk's bytes, of the length asked for (not verified yet).
    Chunk(&'a [u8]),
    /// The peer does not share the file or does not have the chunk.
    NotHere(String),
    /// The peer is at its caps.
    Busy,
    /// Any other `ERR`.
    Refused(String),
}

/// The reply to a `HAVE`: the chunks the peer offers, and whether it has
/// the whole file.
#[derive(Debug, PartialEq, Eq)]
pub struct Have {
    pub set: ChunkSet,
    pub complete: bool,
}

/// A connection to a peer, past `HELLO` (and `AUTH`), ready for requests.
pub struct PeerClient {
    conn: Connection,
    version: u32,
    /// How the connection was made, as the dialer made it.
    path: Path,
    _stop: StopGuard,
    /// A relayed connection's place among the dialer's (for `status`).
    _relayed: Option<RelayedHold>,
}

impl PeerClient {
    /// Dials `to`, says `HELLO` and, for a private share, proves its secret
    /// on this session (`AUTH`). The connection stays registered with
    /// `stop` until the client drops, so stopping interrupts a handshake or
    /// `HELLO` that a silent peer never answers, and any request after.
    pub fn open(
        dialer: &dyn Dialer,
        to: &PeerAddr,
        key: &FileKey,
        stop: &Arc<StopSignal>,
    ) -> Result<PeerClient> {
        PeerClient::open_within(dialer, to, key, stop, CONNECT_TIMEOUT)
    }

    /// [`open`](Self::open), connecting (TCP, TLS, `HELLO`) within `connect`.
    pub fn open_within(
        dialer: &dyn Dialer,
        to: &PeerAddr,
        key: &FileKey,
        stop: &Arc<StopSignal>,
        connect: Duration,
    ) -> Result<PeerClient> {
        let dialed = dialer.dial(to, connect, stop)?;
        let path = dialed.path();
        let mut conn = dialed.conn;
        conn.set_reply_timeout(connect);
        let version = hello(&mut conn)?;
        if let Some(secret) = &key.secret {
            auth(&mut conn, key, secret)?;
        }
        conn.set_reply_timeout(IO_TIMEOUT);
        Ok(PeerClient {
            conn,
            version,
            path,
            _stop: dialed.guard,
            _relayed: dialed.relayed,
        })
    }

    /// The protocol version both sides speak.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// How the connection was made: direct, punched or relayed (a
    /// mapped port is direct).
    pub fn path(&self) -> Path {
        self.path
    }

    /// Asks for the manifest of `listed` and returns its bytes, unchecked.
    /// A reply header that is not a payload within [`MAX_MANIFEST_LEN`] is
    /// [`Error::Verification`]: a lie, not a failure to answer.
    pub fn manifest(&mut self, listed: &FileId) -> Result<Vec<u8>> {
        let conn = &mut self.conn;
        conn.write_all(PeerRequest::Manifest { id: *listed }.encode().as_bytes())?;
        let len = conn
            .read_payload_header(MAX_MANIFEST_LEN)
            .map_err(|e| match e {
                Error::Protocol(e) => Error::Verification(format!("manifest reply: {e}")),
                other => other,
            })?;
        let mut bytes = vec![0; len];
        conn.read_payload(&mut bytes)?;
        Ok(bytes)
    }

    /// Sends `HAVE` with our chunk map `ours` of `listed`; its reply is
    /// read by [`read_have`](Self::read_have).
    pub fn send_have(&mut self, listed: &FileId, ours: &ChunkSet) -> Result<()> {
        let map = ours.encode();
        let req = PeerRequest::Have {
            id: *listed,
            len: map.len(),
        };
        self.conn.write_with_payload(req.encode().as_bytes(), &map)
    }

    /// Reads a `HAVE` reply for a file of `chunks` chunks. The chunk map
    /// counts against the download cap like the chunks do.
    pub fn read_have(&mut self, chunks: u32, rate: &RateCap) -> Result<Have> {
        let text = self.conn.read_reply()?;
        let (len, complete) = parse_have_header(&text, ChunkSet::encoded_len(chunks))?;
        let mut map = vec![0; len];
        self.conn.read_payload_limited(&mut map, rate)?;
        let set = ChunkSet::decode(&map, chunks)
            .map_err(|e| Error::Verification(format!("bad chunk map: {e}")))?;
        Ok(Have { set, complete })
    }

    /// Sends `GET` for `chunk` of `listed`; its reply is read by
    /// [`read_got`](Self::read_got).
    pub fn send_get(&mut self, listed: &FileId, chunk: Chunk) -> Result<()> {
        let req = PeerRequest::Get {
            id: *listed,
            index: chunk.index,
        };
        self.conn.write_all(req.encode().as_bytes())
    }

    /// Reads the reply to a `GET` of `chunk` into `buf` (at least the
    /// chunk's length), metered through `rate`. A payload of another length
    /// than the chunk's is [`Error::Verification`].
    pub fn read_got<'b>(
        &mut self,
        chunk: Chunk,
        rate: &RateCap,
        buf: &'b mut [u8],
    ) -> Result<Got<'b>> {
        let len = match self.conn.read_payload_header(chunk.len as usize) {
            Ok(len) => len,
            Err(Error::Busy) => return Ok(Got::Busy),
            Err(Error::Remote(reason)) => {
                return Ok(match refusal(&reason) {
                    Refusal::NotHere => Got::NotHere(reason),
                    Refusal::Other => Got::Refused(reason),
                })
            }
            Err(e) => return Err(e),
        };
        if len != chunk.len as usize {
            return Err(Error::Verification(format!(
                "chunk of {len} bytes, expected {}",
                chunk.len
            )));
        }
        let data = &mut buf[..len];
        self.conn.read_payload_limited(data, rate)?;
        Ok(Got::Chunk(data))
    }
}

/// Says `HELLO` with our version; a peer that refuses it (an older one) is
/// asked again with version 1. Returns the version both speak.
fn hello(conn: &mut Connection) -> Result<u32> {
    match conn.request(&hello_line()) {
        Ok(reply) => Ok(parse_hello_reply(&reply)?.min(PROTOCOL_VERSION)),
        Err(Error::Remote(_)) => {
            let v1 = PeerRequest::Hello {
                version: OLDEST_VERSION,
            };
            conn.request(&v1.encode())?;
            Ok(OLDEST_VERSION)
        }
        Err(e) => Err(e),
    }
}

/// Proves `secret` on this TLS session for the file `key` names.
fn auth(conn: &mut Connection, key: &FileKey, secret: &Secret) -> Result<()> {
    // Always TLS between peers, so there is always an exporter.
    let listed = key.listed();
    let exporter = conn
        .exporter(EXPORTER_LABEL, &listed.0)
        .ok_or(Error::Verification(
            "no TLS session to prove a secret on".into(),
        ))?;
    let proof = secret.proof(&listed, &exporter);
    conn.request(&PeerRequest::Auth { id: listed, proof }.encode())?;
    Ok(())
}
