//! Getting a file's manifest: ask the peers in turn and keep the first
//! manifest that hashes to the id and decodes canonically. A peer that sends
//! anything else is not used again in this download.

use std::net::SocketAddr;

use sha2::{Digest, Sha256};

use super::DownloadError;
use crate::bounds::{CONNECT_TIMEOUT, MAX_MANIFEST_LEN};
use crate::error::{Error, Result};
use crate::manifest::{FileId, Manifest};
use crate::net::stop::StopSignal;
use crate::protocol::message::{hello_line, parse_hello_reply, OLDEST_VERSION, PROTOCOL_VERSION};
use crate::protocol::{Connection, PeerRequest};

/// Connects to a peer and says `HELLO`; returns the connection and the
/// protocol version the peer speaks (an older peer refuses ours and is
/// asked again with version 1).
pub fn connect_peer(addr: SocketAddr) -> Result<(Connection, u32)> {
    let mut conn = Connection::connect_addr(addr, CONNECT_TIMEOUT)?;
    let version = match conn.request(&hello_line()) {
        Ok(reply) => parse_hello_reply(&reply)?.min(PROTOCOL_VERSION),
        Err(Error::Remote(_)) => {
            let v1 = PeerRequest::Hello {
                version: OLDEST_VERSION,
            };
            conn.request(&v1.encode())?;
            OLDEST_VERSION
        }
        Err(e) => return Err(e),
    };
    Ok((conn, version))
}

/// Fetches the manifest of `id` from the first peer whose manifest hashes to
/// `id`. Returns it with the peers that did not fail (that peer and the ones
/// after it) and those that did, which this download does not use again.
/// Gives up early once `stop` is stopped.
pub fn fetch_manifest(
    id: &FileId,
    peers: &[SocketAddr],
    stop: &std::sync::Arc<StopSignal>,
) -> Result<(Manifest, Vec<SocketAddr>, Vec<SocketAddr>), DownloadError> {
    for (i, &addr) in peers.iter().enumerate() {
        if stop.is_stopped() {
            break;
        }
        match manifest_from(addr, id, stop) {
            Ok(manifest) => return Ok((manifest, peers[i..].to_vec(), peers[..i].to_vec())),
            Err(e) => log::warn!("manifest from {addr}: {e}"),
        }
    }
    Err(DownloadError::NoManifest {
        id: *id,
        tried: peers.len(),
    })
}

fn manifest_from(
    addr: SocketAddr,
    id: &FileId,
    stop: &std::sync::Arc<StopSignal>,
) -> Result<Manifest> {
    let (mut conn, _) = connect_peer(addr)?;
    let _interruptible = stop.guard(conn.interrupter()?);
    conn.write_all(PeerRequest::Manifest { id: *id }.encode().as_bytes())?;
    let len = conn.read_payload_header(MAX_MANIFEST_LEN)?;
    let mut bytes = vec![0; len];
    conn.read_payload(&mut bytes)?;
    if Sha256::digest(&bytes).as_slice() != id.0 {
        return Err(Error::Verification(
            "manifest does not hash to the file id".into(),
        ));
    }
    Ok(Manifest::decode(&bytes)?)
}
