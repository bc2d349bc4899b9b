use super::*;
use crate::storage::manifest_of;
use std::time::Duration;

/// A chunk server over `library` in-process on port 0: its handle and
/// address, its TLS (`ours`) and a client's (`theirs`).
struct Served {
    server: ServerHandle,
    addr: String,
    ours: Tls,
    theirs: Tls,
}

fn serve(library: Arc<Library>) -> Served {
    let (server, ours) = spawn_for_test(library);
    let theirs = Tls::ephemeral();
    let addr = server.local_addr().to_string();
    Served {
        server,
        addr,
        ours,
        theirs,
    }
}

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
    let Served {
        server,
        addr,
        ours,
        theirs,
    } = serve(library);

    // Plain text gets no service: the server speaks TLS only.
    let mut plain = Connection::connect(&addr, Duration::from_secs(5)).expect("connect");
    assert!(plain.request("HELLO 1\n").is_err());
    // Pinned to another id, the handshake fails.
    let wrong = Connection::connect_tls(&addr, &theirs, Some(theirs.id()), Duration::from_secs(5));
    assert!(
        matches!(wrong, Err(crate::error::Error::WrongIdentity(_))),
        "{:?}",
        wrong.err()
    );
    let mut conn = Connection::connect_tls(&addr, &theirs, Some(ours.id()), Duration::from_secs(5))
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
    let Served {
        server,
        addr,
        ours,
        theirs,
    } = serve(library);
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
    // A session gets MAX_SESSION_AUTHS tries, right or wrong.
    let mut guesser = connect();
    for _ in 0..crate::bounds::MAX_SESSION_AUTHS {
        assert!(refused(&mut guesser, &auth(Proof([1; 32]))));
    }
    let right = secret.proof(&id, &guesser.exporter(EXPORTER_LABEL, &id.0).unwrap());
    assert!(refused(&mut guesser, &auth(right)), "tries used up");
    server.stop();
    let _ = std::fs::remove_file(path);
}

/// The handshake and the first line share one deadline from accept: a
/// client that dawdles 3 s before its handshake has 2 s left, not 5 more.
/// It is then closed in order (TLS close_notify): it reads a clean end,
/// not a cut connection. Closed at the limit (5 s) if the deadline is
/// shared, at dawdle + limit (8 s) if not: the bound sits 2 s above the
/// one (a loaded machine's slack; it was 1 s, with a 2 s dawdle) and 1 s
/// below the other.
#[test]
fn the_handshake_and_the_first_line_share_one_deadline() {
    use crate::net::transport::Stream;
    let Served {
        server,
        addr,
        ours,
        theirs,
    } = serve(Arc::new(Library::default()));
    let limit = crate::bounds::FIRST_LINE_TIMEOUT;
    let started = std::time::Instant::now();
    let tcp = std::net::TcpStream::connect(&addr).expect("connect");
    let dawdle = Duration::from_secs(3);
    // The slow client this test is about, not synchronisation.
    std::thread::sleep(dawdle);
    let tls = Stream::tls_client(tcp, &theirs, Some(ours.id()), limit).expect("handshake");
    let mut conn = Connection::new(tls).expect("a connection");
    let end = conn.read_line(limit * 2);
    assert!(matches!(end, Ok(None)), "{end:?}");
    let took = started.elapsed();
    assert!(
        took >= limit && took < limit + dawdle - Duration::from_secs(1),
        "closed {took:?} after connect; a separate deadline closes at {:?}",
        dawdle + limit
    );
    server.stop();
}

/// A `HAVE` whose map is too long to skip gets its `ERR` even when the
/// asker has already sent more: the server drains before it closes, so
/// no reset takes the reply with it.
#[test]
fn an_oversized_have_is_answered_before_the_close() {
    let library = Arc::new(Library::default());
    let Served {
        server,
        addr,
        ours,
        theirs,
    } = serve(library);
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
