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

use super::library::{Library, SharedFile};
use crate::bounds::{MAX_HAVE_LEN, MAX_SESSION_AUTHS, PEER_CAPS};
use crate::chunkset::ChunkSet;
use crate::error::Result;
use crate::manifest::FileId;
use crate::net::accept::{self as server, Flow, Security, ServerHandle};
use crate::net::rate::RateCap;
use crate::net::tls::Tls;
use crate::private::{Proof, EXPORTER_LABEL};
use crate::protocol::message::hello_reply;
use crate::protocol::peer_msg::have_header;
use crate::protocol::{Connection, PeerRequest, Reply};

/// What the server calls when it drops a changed file (to have it
/// unregistered soon).
pub type OnWithdraw = Arc<dyn Fn() + Send + Sync>;

/// Serves `listener` on threads of its own until the handle is stopped,
/// sending chunk payloads through `upload`.
pub fn spawn(
    listener: TcpListener,
    library: Arc<Library>,
    upload: Arc<RateCap>,
    tls: &Tls,
    on_withdraw: OnWithdraw,
) -> io::Result<ServerHandle> {
    let security = Security::Tls(Arc::clone(&tls.server));
    server::spawn(listener, PEER_CAPS, security, "peer-server", move |conn| {
        let mut session = Session::new(&library, &upload, &on_withdraw);
        server::for_each_request(conn, |conn, line| session.handle(conn, line));
    })
}

/// One connection's state.
struct Session<'a> {
    id: u64,
    library: &'a Library,
    upload: &'a RateCap,
    on_withdraw: &'a OnWithdraw,
    /// Files whose offers promised this session chunks, to release at the end.
    touched: Vec<Arc<SharedFile>>,
    /// Private shares this session proved the secret of: the blinded id
    /// requests call each by, and its real id.
    authorized: Vec<(FileId, FileId)>,
}

impl<'a> Session<'a> {
    fn new(library: &'a Library, upload: &'a RateCap, on_withdraw: &'a OnWithdraw) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Session {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            library,
            upload,
            on_withdraw,
            touched: Vec::new(),
            authorized: Vec::new(),
        }
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
            PeerRequest::Hello { version } => {
                conn.write_all(hello_reply(version, "peer").encode().as_bytes())?
            }
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
        let Some(file) = self.library.find_listed(id) else {
            return conn.write_all(not_shared(id).as_bytes());
        };
        let proved = file.secret.is_some_and(|secret| {
            conn.exporter(EXPORTER_LABEL, &id.0)
                .is_some_and(|exporter| secret.verify(id, &exporter, proof))
        });
        if !proved || self.authorized.len() >= MAX_SESSION_AUTHS {
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
        if file.is_complete() {
            file.offers().sent(self.id, index, chunks, Instant::now());
        }
        let header = Reply::ok(chunk.len.to_string()).encode();
        if let Err(e) = conn.send_chunk(header.as_bytes(), file.storage(), chunk, self.upload) {
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
    /// gets `ERR`.
    fn have(&mut self, conn: &mut Connection, id: &FileId, len: usize) -> Result<Flow> {
        if len > MAX_HAVE_LEN {
            let reply = Reply::err(format!("chunk map of {len} bytes, over {MAX_HAVE_LEN}"));
            conn.write_all(reply.encode().as_bytes())?;
            return Ok(Flow::CloseAfterError);
        }
        let mut bytes = vec![0; len];
        conn.read_payload(&mut bytes)?;
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
        let complete = file.is_complete();
        let offered = if complete {
            if !self.touched.iter().any(|f| Arc::ptr_eq(f, &file)) {
                self.touched.push(Arc::clone(&file));
            }
            file.offers().offer(self.id, &theirs, Instant::now())
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
            .add("f".into(), path.clone(), manifest, None)
            .expect("share");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let tls = |_| Tls::new(crate::identity::Identity::ephemeral().unwrap()).unwrap();
        let (ours, theirs) = (tls(0), tls(1));
        let server = spawn(
            listener,
            library,
            Arc::new(RateCap::new(None)),
            &ours,
            Arc::new(|| {}),
        )
        .expect("spawn");
        let addr = server.local_addr().to_string();

        // Plain text gets no service: the server speaks TLS only.
        let mut plain = Connection::connect(&addr, Duration::from_secs(5)).expect("connect");
        assert!(plain.request("HELLO 1\n").is_err());
        // Pinned to another id, the handshake fails.
        let wrong =
            Connection::connect_tls(&addr, &theirs, Some(theirs.id()), Duration::from_secs(5));
        assert!(
            matches!(wrong, Err(crate::error::Error::WrongIdentity(_))),
            "{:?}",
            wrong.err()
        );
        let mut conn =
            Connection::connect_tls(&addr, &theirs, Some(ours.id()), Duration::from_secs(5))
                .expect("connect");
        assert_eq!(conn.peer_id(), Some(ours.id()));
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
        assert!(Connection::connect(&addr, Duration::from_secs(5)).is_err());
        let _ = std::fs::remove_file(path);
    }

    /// A private share answers nothing until this very session proves its
    /// secret: not with no proof, a wrong secret, or another session's proof.
    /// Requests call it by its blinded id; its real id names nothing, even
    /// once proved.
    #[test]
    fn a_private_share_is_served_only_after_a_proof_on_the_same_session() {
        use crate::private::{Proof, Secret};
        let path = std::env::temp_dir().join(format!("p2pshare-private-{}", std::process::id()));
        std::fs::write(&path, b"secret bytes").expect("write");
        let library = Arc::new(Library::default());
        let secret = Secret::generate().unwrap();
        let manifest = manifest_of(&path).expect("hash");
        let real = manifest.id();
        let id = secret.blind(&real);
        library
            .add("p".into(), path.clone(), manifest, Some(secret))
            .expect("share");
        let tls = |_| Tls::new(crate::identity::Identity::ephemeral().unwrap()).unwrap();
        let (ours, theirs) = (tls(0), tls(1));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let rate = Arc::new(RateCap::new(None));
        let server = spawn(listener, library, rate, &ours, Arc::new(|| {})).expect("spawn");
        let addr = server.local_addr().to_string();
        let five = Duration::from_secs(5);
        let connect = || Connection::connect_tls(&addr, &theirs, Some(ours.id()), five).unwrap();
        let refused_as = |conn: &mut Connection, line: &str, as_id: FileId| matches!(conn.request(line), Err(crate::error::Error::Remote(e)) if e == format!("not sharing {as_id}"));
        let refused = |conn: &mut Connection, line: &str| refused_as(conn, line, id);
        let manifest_line = PeerRequest::Manifest { id }.encode();
        let by_real_id = PeerRequest::Manifest { id: real }.encode();
        let auth = |proof| PeerRequest::Auth { id, proof }.encode();

        let mut other = connect();
        let exporter = other.exporter(EXPORTER_LABEL, &id.0).unwrap();
        let elsewhere = secret.proof(&id, &exporter);
        let mut conn = connect();
        assert!(refused(&mut conn, &manifest_line), "no proof");
        assert!(refused(
            &mut conn,
            &PeerRequest::Get { id, index: 0 }.encode()
        ));
        let wrong = Secret([7; 16]).proof(&id, &conn.exporter(EXPORTER_LABEL, &id.0).unwrap());
        assert!(refused(&mut conn, &auth(wrong)), "another secret");
        assert!(refused(&mut conn, &auth(elsewhere)), "a replayed proof");
        assert!(refused(&mut conn, &auth(Proof([0; 32]))));
        assert!(refused(&mut conn, &manifest_line), "still nothing");

        let right = secret.proof(&id, &conn.exporter(EXPORTER_LABEL, &id.0).unwrap());
        assert_eq!(conn.request(&auth(right)).expect("auth"), "authorized");
        conn.write_all(manifest_line.as_bytes()).expect("MANIFEST");
        let len = conn
            .read_payload_header(1 << 20)
            .expect("served once proved");
        let mut encoded = vec![0; len];
        conn.read_payload(&mut encoded).expect("the manifest");
        assert!(
            refused_as(&mut conn, &by_real_id, real),
            "the real id names nothing"
        );
        assert!(refused(&mut other, &manifest_line), "only on that session");
        server.stop();
        let _ = std::fs::remove_file(path);
    }

    /// A `HAVE` whose map is too long to skip gets its `ERR` even when the
    /// asker has already sent more: the server drains before it closes, so
    /// no reset takes the reply with it.
    #[test]
    fn an_oversized_have_is_answered_before_the_close() {
        let tls = |_| Tls::new(crate::identity::Identity::ephemeral().unwrap()).unwrap();
        let (ours, theirs) = (tls(0), tls(1));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let library = Arc::new(Library::default());
        let rate = Arc::new(RateCap::new(None));
        let server = spawn(listener, library, rate, &ours, Arc::new(|| {})).expect("spawn");
        let addr = server.local_addr().to_string();
        let five = Duration::from_secs(5);
        for _ in 0..5 {
            let mut conn = Connection::connect_tls(&addr, &theirs, Some(ours.id()), five).unwrap();
            let len = MAX_HAVE_LEN + 1;
            let mut request = format!("HAVE {} {len}\n", FileId([1; 32])).into_bytes();
            request.resize(request.len() + 256 * 1024, 0xff);
            // The server may close before it has read all of this.
            let _ = conn.write_all(&request);
            let reply = conn.read_reply();
            assert!(
                matches!(&reply, Err(crate::error::Error::Remote(e)) if e.starts_with("chunk map of")),
                "{reply:?}"
            );
        }
        server.stop();
    }
}
