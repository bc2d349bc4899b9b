//! The peer's chunk server: answers `HELLO`, `MANIFEST <id>`,
//! `GET <id> <index>` and `HAVE <id> <len>` for files in the library, one
//! thread per connection (bounded by the shared accept loop). Requests may
//! be pipelined. Files being downloaded are served too: a chunk is served
//! once it is in the file's chunk set, which happens only after it was
//! verified and written, and a chunk not there yet gets a clear `ERR`.
//! Chunks go from the library's storage to the stream (on plain TCP straight
//! from the page cache, `sendfile`), through the upload cap.
//!
//! Each connection is a [`Session`]: a number for the offers a complete
//! file promises it (see [`offer`](super::offer)), which lapse when it ends,
//! and the private shares it proved the secret of (`AUTH`). A private share
//! is invisible to any other session: every request for it gets the same
//! `ERR not sharing <id>` as a file this peer does not have.

use std::io;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::dial::Path;
use super::library::{Library, SharedFile};
use super::uploads::{Uploads, Who};
use crate::bounds::{MAX_HAVE_LEN, MAX_SESSION_AUTHS, PEER_CAPS};
use crate::chunkset::ChunkSet;
use crate::error::Result;
use crate::manifest::{Chunk, FileId};
use crate::net::rate::RateCap;
use crate::net::tls::Tls;
use crate::private::{Proof, EXPORTER_LABEL};
use crate::protocol::conn::Payload;
use crate::protocol::message::{hello_reply, PROTOCOL_VERSION};
use crate::protocol::peer_msg::{have_header, NOT_SHARING};
use crate::protocol::{Connection, PeerRequest, Reply};
use crate::server::{self, Flow, Security, ServerHandle};
use crate::storage::Storage;

/// What the server calls when it drops a changed file (to have it
/// unregistered soon).
pub type OnWithdraw = Arc<dyn Fn() + Send + Sync>;

/// Serves one connection, accepted (`Path::Direct`) or arriving through a
/// relay (`Path::Relayed`), until it ends.
pub type Serve = Arc<dyn Fn(Connection, Path) + Send + Sync>;

/// The chunk server's session for each connection, sending chunk payloads
/// through `upload`.
pub fn handler(
    library: Arc<Library>,
    uploads: Arc<Uploads>,
    upload: Arc<RateCap>,
    on_withdraw: OnWithdraw,
) -> Serve {
    Arc::new(move |conn, path| {
        let mut session = Session::new(&library, &uploads, &upload, &on_withdraw, path);
        server::for_each_request(conn, |conn, line| session.handle(conn, line));
    })
}

/// Serves `listener` with `serve` on threads of its own until the handle
/// is stopped.
pub fn spawn(listener: TcpListener, serve: Serve, tls: &Tls) -> io::Result<ServerHandle> {
    let security = Security::Tls(Arc::clone(&tls.server));
    server::spawn(listener, PEER_CAPS, security, "peer-server", move |conn| {
        serve(conn, Path::Direct)
    })
}

/// One connection's state.
struct Session<'a> {
    id: u64,
    library: &'a Library,
    /// Who fetches what, for `send`, `status` and the page.
    uploads: &'a Uploads,
    /// The downloader on the other end, once known.
    who: Option<Who>,
    /// How this connection came.
    path: Path,
    upload: &'a RateCap,
    on_withdraw: &'a OnWithdraw,
    /// Files whose offers promised this session chunks, to release at the end.
    touched: Vec<Arc<SharedFile>>,
    /// Private shares this session proved the secret of: the blinded id
    /// requests call each by, and its real id.
    authorized: Vec<(FileId, FileId)>,
    /// `AUTH`s for private shares tried on this session, proved or not.
    auth_tries: usize,
}

impl<'a> Session<'a> {
    fn new(
        library: &'a Library,
        uploads: &'a Uploads,
        upload: &'a RateCap,
        on_withdraw: &'a OnWithdraw,
        path: Path,
    ) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Session {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            library,
            uploads,
            who: None,
            path,
            upload,
            on_withdraw,
            touched: Vec::new(),
            authorized: Vec::new(),
            auth_tries: 0,
        }
    }

    /// Who is on the other end: its certificate's id, else its address.
    fn who(&mut self, conn: &Connection) -> Who {
        if let Some(who) = self.who {
            return who;
        }
        let who = Who::of(conn.peer_id(), conn.peer_addr());
        self.uploads.connected(who, self.path);
        self.who = Some(who);
        who
    }

    /// The library's entry that requests on this session call `id`: a
    /// public file by its id, or a private one by its blinded id once this
    /// session proved its secret. A private share's real id names nothing.
    fn file(&self, id: &FileId) -> Option<Arc<SharedFile>> {
        let real = self
            .authorized
            .iter()
            .find(|(listed, _)| listed == id)
            .map_or(*id, |&(_, real)| real);
        self.library.get(&real).filter(|f| f.listed == *id)
    }

    fn handle(&mut self, conn: &mut Connection, line: &str) -> Result<Flow> {
        let req = match PeerRequest::parse(line) {
            Ok(req) => req,
            Err(e) => {
                conn.write_all(Reply::err(&e).encode().as_bytes())?;
                return Ok(if e.is_fatal() {
                    Flow::CloseAfterError
                } else {
                    Flow::Continue
                });
            }
        };
        match req {
            PeerRequest::Hello { version } => conn.write_all(
                hello_reply(version, PROTOCOL_VERSION, "peer")
                    .encode()
                    .as_bytes(),
            )?,
            PeerRequest::Manifest { id } => match self.file(&id) {
                Some(file) if file.is_complete() && file.changed() => self.changed(conn, &file)?,
                Some(file) => {
                    let header = Reply::ok(file.encoded.len().to_string()).encode();
                    conn.write_with_payload(header.as_bytes(), &file.encoded)?;
                }
                None => conn.write_all(not_shared(&id).as_bytes())?,
            },
            PeerRequest::Get { id, index } => self.send_chunk(conn, &id, index)?,
            PeerRequest::Have { id, len } => return self.have(conn, &id, len),
            PeerRequest::Auth { id, proof } => self.auth(conn, &id, &proof)?,
            PeerRequest::Quit => {
                conn.write_all(Reply::ok("bye").encode().as_bytes())?;
                return Ok(Flow::Close);
            }
        }
        Ok(Flow::Continue)
    }

    /// `AUTH <id> <proof>`, `id` a private share's blinded id (a public
    /// file's id needs no proof): checks the proof against the share's
    /// secret and this session's TLS exporter. Anything short of a valid
    /// proof for a private share here gets the reply an unknown file gets.
    fn auth(&mut self, conn: &mut Connection, id: &FileId, proof: &Proof) -> Result<()> {
        let authorized = Reply::ok("authorized").encode();
        if self.file(id).is_some() {
            // Public, or proved already: nothing (more) to prove.
            return conn.write_all(authorized.as_bytes());
        }
        // Each try scans the library: a session gets MAX_SESSION_AUTHS of
        // them, proved or not.
        if self.auth_tries >= MAX_SESSION_AUTHS {
            return conn.write_all(not_shared(id).as_bytes());
        }
        self.auth_tries += 1;
        let Some(file) = self.library.find_listed(id) else {
            return conn.write_all(not_shared(id).as_bytes());
        };
        let proved = file.secret.is_some_and(|secret| {
            conn.exporter(EXPORTER_LABEL, &id.0)
                .is_some_and(|exporter| secret.verify(id, &exporter, proof))
        });
        if !proved {
            return conn.write_all(not_shared(id).as_bytes());
        }
        self.authorized.push((*id, file.id));
        conn.write_all(authorized.as_bytes())
    }

    fn send_chunk(&mut self, conn: &mut Connection, id: &FileId, index: u32) -> Result<()> {
        let Some(file) = self.file(id) else {
            return conn.write_all(not_shared(id).as_bytes());
        };
        let chunks = file.manifest.chunk_count();
        let Some(chunk) = file.manifest.chunk(index) else {
            let reply = Reply::err(format!("no chunk {index}: file has {chunks} chunks"));
            return conn.write_all(reply.encode().as_bytes());
        };
        if file.is_complete() && file.changed() {
            return self.changed(conn, &file);
        }
        if !file.has(index) {
            let reply = Reply::err(format!("no chunk {index} here yet: still downloading it"));
            return conn.write_all(reply.encode().as_bytes());
        }
        let offered = file.fresh_first();
        if offered {
            file.offers().sent(self.id, index, chunks, Instant::now());
        }
        let header = Reply::ok(chunk.len.to_string()).encode();
        let sent = send_stored(
            conn,
            header.as_bytes(),
            &*file.storage(),
            chunk,
            self.upload,
        );
        if offered {
            file.offers().delivered(self.id, Instant::now());
        }
        if let Err(e) = sent {
            // A downloader hanging up mid-chunk (it got the chunk elsewhere,
            // or left) is routine; one that stops reading, or a disk that
            // fails us, is not.
            let what = format!(
                "sending chunk {index} of {} to {}: {e}",
                file.path().display(),
                conn.peer_addr()
            );
            match e.is_hangup() {
                true => log::debug!("{what}"),
                false => log::warn!("{what}"),
            }
            return Err(e);
        }
        file.add_uploaded(u64::from(chunk.len));
        let (who, addr) = (self.who(conn), conn.peer_addr());
        let named = (file.id, file.name.as_str());
        let len = u64::from(chunk.len);
        self.uploads
            .sent(who, addr, named, (index, chunks), len, Instant::now());
        log::debug!(
            "served chunk {index} of {} to {}",
            file.name,
            conn.peer_addr()
        );
        Ok(())
    }

    /// The file changed on disk since it was shared: dropped from the
    /// library (the announcer unregisters it), and the request refused.
    fn changed(&mut self, conn: &mut Connection, file: &Arc<SharedFile>) -> Result<()> {
        if self.library.withdraw_changed(file) {
            (self.on_withdraw)();
        }
        conn.write_all(not_shared(&file.listed).as_bytes())
    }

    /// `HAVE <id> <len>`: reads the asker's chunk map, answers with what this
    /// peer offers it. A map longer than any file's gets `ERR` and closes
    /// the connection (its bytes cannot be skipped safely); a malformed one
    /// gets `ERR`; one that dawdles closes it (see `Connection::read_body`).
    fn have(&mut self, conn: &mut Connection, id: &FileId, len: usize) -> Result<Flow> {
        if len > MAX_HAVE_LEN {
            let reply = Reply::err(format!("chunk map of {len} bytes, over {MAX_HAVE_LEN}"));
            conn.write_all(reply.encode().as_bytes())?;
            return Ok(Flow::CloseAfterError);
        }
        let bytes = conn.read_body(len)?;
        let Some(file) = self.file(id) else {
            conn.write_all(not_shared(id).as_bytes())?;
            return Ok(Flow::Continue);
        };
        let chunks = file.manifest.chunk_count();
        let theirs = match len {
            0 => ChunkSet::empty(chunks),
            _ => match ChunkSet::decode(&bytes, chunks) {
                Ok(set) => set,
                Err(e) => {
                    conn.write_all(Reply::err(e).encode().as_bytes())?;
                    return Ok(Flow::Continue);
                }
            },
        };
        let (who, addr) = (self.who(conn), conn.peer_addr());
        let named = (file.id, file.name.as_str());
        self.uploads.have(who, addr, named, &theirs, Instant::now());
        let complete = file.is_complete();
        let offered = if file.fresh_first() {
            if !self.touched.iter().any(|f| Arc::ptr_eq(f, &file)) {
                self.touched.push(Arc::clone(&file));
            }
            file.offers()
                .offer(self.id, conn.peer_addr().ip(), &theirs, Instant::now())
        } else {
            file.have()
        };
        let map = offered.encode();
        let header = have_header(map.len(), complete);
        conn.write_with_payload(header.as_bytes(), &map)?;
        Ok(Flow::Continue)
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        for file in &self.touched {
            file.offers().release(self.id);
        }
    }
}

/// Sends `header` and `chunk` of `storage`: as a file range where one file
/// holds it (zero-copy on plain TCP), else read into memory first.
fn send_stored(
    conn: &mut Connection,
    header: &[u8],
    storage: &dyn Storage,
    chunk: Chunk,
    limit: &RateCap,
) -> Result<()> {
    let len = chunk.len as usize;
    if let Some((file, offset)) = storage.file_range(chunk) {
        let file = &*file;
        return conn.send_payload(header, Payload::File { file, offset, len }, limit);
    }
    let mut buf = vec![0; len];
    storage.read_chunk(chunk, &mut buf)?;
    conn.send_payload(header, Payload::Bytes(&buf), limit)
}

fn not_shared(id: &FileId) -> String {
    Reply::err(format!("{NOT_SHARING} {id}")).encode()
}

/// A chunk server over `library` in-process on 127.0.0.1 port 0, with an
/// identity of its own, no upload cap and no uploads kept: for unit tests
/// of the server and of its clients.
#[cfg(test)]
pub(crate) fn spawn_for_test(library: Arc<Library>) -> (ServerHandle, Tls) {
    let tls = Tls::ephemeral();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let rate = Arc::new(RateCap::new(None));
    let serve = handler(library, Arc::default(), rate, Arc::new(|| {}));
    let server = spawn(listener, serve, &tls).expect("spawn");
    (server, tls)
}

#[cfg(test)]
mod tests;
