//! The peer's chunk server: answers `HELLO`, `MANIFEST <id>` and
//! `GET <id> <index>` for files in the library, one thread per connection
//! (bounded by the shared accept loop). Requests may be pipelined. Chunks go
//! from the library's storage to the stream (on plain TCP straight from the
//! page cache, `sendfile`), through the upload cap.

use std::io;
use std::net::TcpListener;
use std::sync::Arc;

use super::library::{Library, SharedFile};
use crate::bounds::PEER_CAPS;
use crate::error::Result;
use crate::manifest::FileId;
use crate::net::accept::{self as server, Flow, ServerHandle};
use crate::net::rate::RateCap;
use crate::protocol::message::hello_reply;
use crate::protocol::{Connection, PeerRequest, Reply};

/// Serves `listener` on threads of its own until the handle is stopped,
/// sending chunk payloads through `upload`.
pub fn spawn(
    listener: TcpListener,
    library: Arc<Library>,
    upload: Arc<RateCap>,
) -> io::Result<ServerHandle> {
    server::spawn(listener, PEER_CAPS, "peer-server", move |conn| {
        server::for_each_request(conn, |conn, line| {
            handle_request(conn, line, &library, &upload)
        });
    })
}

fn handle_request(
    conn: &mut Connection,
    line: &str,
    library: &Library,
    upload: &RateCap,
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
        PeerRequest::Hello { version } => {
            conn.write_all(hello_reply(version, "peer").encode().as_bytes())?
        }
        PeerRequest::Manifest { id } => match library.get(&id).filter(|f| servable(f)) {
            Some(file) => {
                let header = Reply::ok(file.encoded.len().to_string()).encode();
                conn.write_with_payload(header.as_bytes(), &file.encoded)?;
            }
            None => conn.write_all(not_shared(&id).as_bytes())?,
        },
        PeerRequest::Get { id, index } => send_chunk(conn, library, &id, index, upload)?,
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
    upload: &RateCap,
) -> Result<()> {
    let Some(file) = library.get(id).filter(|f| servable(f)) else {
        return conn.write_all(not_shared(id).as_bytes());
    };
    let Some(chunk) = file.manifest.chunk(index) else {
        let reply = Reply::err(format!(
            "no chunk {index}: file has {} chunks",
            file.manifest.chunk_count()
        ));
        return conn.write_all(reply.encode().as_bytes());
    };
    let header = Reply::ok(chunk.len.to_string()).encode();
    if let Err(e) = conn.send_chunk(header.as_bytes(), file.storage(), chunk, upload) {
        log::warn!(
            "sending chunk {index} of {} to {}: {e}",
            file.path().display(),
            conn.peer_addr()
        );
        return Err(e);
    }
    file.add_uploaded(u64::from(chunk.len));
    log::debug!(
        "served chunk {index} of {} to {}",
        file.name,
        conn.peer_addr()
    );
    Ok(())
}

/// Whether this server answers for `file`. Files being downloaded are in the
/// library with the chunks they have, but only complete files are served.
fn servable(file: &SharedFile) -> bool {
    file.is_complete()
}

fn not_shared(id: &FileId) -> String {
    Reply::err(format!("not sharing {id}")).encode()
}
