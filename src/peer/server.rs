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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::manifest_of;
    use std::time::Duration;

    /// The chunk server in-process on port 0, serving a file from a library:
    /// a chunk arrives exactly; once stopped, the port is closed.
    #[test]
    fn an_in_process_chunk_server_serves_and_stops() {
        let path = std::env::temp_dir().join(format!("p2pshare-serve-{}", std::process::id()));
        let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).expect("write");
        let library = Arc::new(Library::default());
        let manifest = manifest_of(&path).expect("hash");
        let id = manifest.id();
        library
            .add("f".into(), path.clone(), manifest)
            .expect("share");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let server = spawn(listener, library, Arc::new(RateCap::new(None))).expect("spawn");
        let addr = server.local_addr();

        let mut conn = Connection::connect_addr(addr, Duration::from_secs(5)).expect("connect");
        assert_eq!(conn.request("HELLO 1\n").expect("hello"), "p2pshare 1");
        let get = PeerRequest::Get { id, index: 0 }.encode();
        conn.write_all(get.as_bytes()).expect("GET");
        let len = conn.read_payload_header(data.len()).expect("header");
        let mut got = vec![0; len];
        conn.read_payload(&mut got).expect("payload");
        assert_eq!(got, data);
        let unshared = PeerRequest::Get {
            id: FileId([0; 32]),
            index: 0,
        };
        assert!(matches!(
            conn.request(&unshared.encode()),
            Err(crate::error::Error::Remote(e)) if e.starts_with("not sharing")
        ));

        server.stop();
        assert!(Connection::connect_addr(addr, Duration::from_secs(5)).is_err());
        let _ = std::fs::remove_file(path);
    }
}
