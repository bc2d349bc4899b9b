//! The peer's chunk server: answers `HELLO`, `MANIFEST <id>` and
//! `GET <id> <index>` for files in the library, one thread per connection
//! (bounded by the shared accept loop). Requests may be pipelined; a
//! connection reuses one chunk buffer for all of them.

use std::net::TcpListener;
use std::sync::Arc;

use super::library::Library;
use crate::error::Result;
use crate::manifest::FileId;
use crate::protocol::{Connection, PeerRequest, Reply};
use crate::server::{self, Flow};
use crate::{store, PEER_MAX_CONNECTIONS, PROTOCOL_VERSION};

/// Serves `listener` forever.
pub fn serve(listener: TcpListener, library: Arc<Library>) {
    server::serve(listener, PEER_MAX_CONNECTIONS, "peer", move |mut conn| {
        let mut buf = Vec::new();
        server::for_each_request(&mut conn, |conn, line| {
            handle_request(conn, line, &library, &mut buf)
        });
    });
}

fn handle_request(
    conn: &mut Connection,
    line: &str,
    library: &Library,
    buf: &mut Vec<u8>,
) -> Result<Flow> {
    let req = match PeerRequest::parse(line) {
        Ok(req) => req,
        Err(e) => {
            conn.write_all(Reply::err(&e).encode().as_bytes())?;
            return Ok(if e.is_fatal() {
                Flow::Close
            } else {
                Flow::Continue
            });
        }
    };
    match req {
        PeerRequest::Hello { version } if version == PROTOCOL_VERSION => conn.write_all(
            Reply::ok(format!("p2pshare {PROTOCOL_VERSION}"))
                .encode()
                .as_bytes(),
        )?,
        PeerRequest::Hello { version } => {
            let reply = Reply::err(format!("unsupported protocol version {version}"));
            conn.write_all(reply.encode().as_bytes())?;
            return Ok(Flow::Close);
        }
        PeerRequest::Manifest { id } => match library.get(&id) {
            Some(file) => {
                let header = Reply::ok(file.encoded.len().to_string()).encode();
                conn.write_with_payload(header.as_bytes(), &file.encoded)?;
            }
            None => conn.write_all(not_shared(&id).as_bytes())?,
        },
        PeerRequest::Get { id, index } => send_chunk(conn, library, &id, index, buf)?,
        PeerRequest::Quit => {
            conn.write_all(Reply::ok("bye").encode().as_bytes())?;
            return Ok(Flow::Close);
        }
    }
    Ok(Flow::Continue)
}

fn send_chunk(
    conn: &mut Connection,
    library: &Library,
    id: &FileId,
    index: u32,
    buf: &mut Vec<u8>,
) -> Result<()> {
    let Some(file) = library.get(id) else {
        return conn.write_all(not_shared(id).as_bytes());
    };
    let Some(chunk) = file.manifest.chunk(index) else {
        let reply = Reply::err(format!(
            "no chunk {index}: file has {} chunks",
            file.manifest.chunk_count()
        ));
        return conn.write_all(reply.encode().as_bytes());
    };
    buf.resize(file.manifest.chunk_size() as usize, 0);
    match store::read_chunk(&file.file, chunk, buf) {
        Ok(data) => {
            let header = Reply::ok(data.len().to_string()).encode();
            conn.write_with_payload(header.as_bytes(), data)?;
            file.add_uploaded(data.len() as u64);
            log::debug!(
                "served chunk {index} of {} to {}",
                file.name,
                conn.peer_addr()
            );
            Ok(())
        }
        Err(e) => {
            log::warn!("cannot read chunk {index} of {}: {e}", file.path.display());
            conn.write_all(Reply::err("cannot read chunk").encode().as_bytes())
        }
    }
}

fn not_shared(id: &FileId) -> String {
    Reply::err(format!("not sharing {id}")).encode()
}
