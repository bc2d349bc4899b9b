use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use std::sync::Arc;

use super::control::NotSent;
use super::{Nat, NatOptions, NAT_NOT_AUTHENTICATED};
use crate::bounds::PEER_CAPS;
use crate::error::Error;
use crate::net::tls::Tls;
use crate::protocol::message::hello_reply;
use crate::protocol::nat_msg::Reflection;
use crate::protocol::nat_msg::{ControlLine, Token};
use crate::protocol::Connection;
use crate::server::{self, Flow, Security, ServerHandle};
use crate::testing::wait_for;
use crate::tracker::{Tracker, TrackerHandle};

const FIVE: Duration = Duration::from_secs(5);

pub(crate) struct Running {
    pub _handle: TrackerHandle,
    pub addr: SocketAddr,
    pub tls: Tls,
    pub nat: Arc<Nat>,
}

pub(crate) fn tracker_with(options: NatOptions) -> Running {
    let tls = Tls::ephemeral();
    let tracker = Tracker::bind_with(
        "127.0.0.1:0".parse().expect("addr"),
        Duration::from_secs(60),
        tls.clone(),
        options,
    )
    .expect("bind");
    let nat = tracker.nat();
    let handle = tracker.spawn(Duration::from_secs(1)).expect("spawn");
    let addr = handle.local_addr().expect("addr");
    Running {
        _handle: handle,
        addr,
        tls,
        nat,
    }
}

/// A TLS connection to `t` with a fresh identity.
pub(crate) fn client(t: &Running) -> (Connection, Tls) {
    let tls = Tls::ephemeral();
    let conn =
        Connection::connect_tls(&t.addr.to_string(), &tls, Some(t.tls.id()), FIVE).expect("tls");
    (conn, tls)
}

/// A TLS server as `tls` answering `HELLO`, as a peer's chunk server does.
fn hello_server(tls: &Tls) -> ServerHandle {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let security = Security::Tls(tls.server.clone());
    server::spawn(listener, PEER_CAPS, security, "hello", |conn| {
        server::for_each_request(conn, |conn, _| {
            conn.write_all(hello_reply(2, 2, "peer").encode().as_bytes())?;
            Ok(Flow::Continue)
        })
    })
    .expect("spawn")
}

fn whoami(conn: &mut Connection, port: Option<u16>) -> crate::error::Result<Reflection> {
    let line = match port {
        Some(p) => format!("WHOAMI {p}\n"),
        None => "WHOAMI\n".into(),
    };
    Ok(Reflection::parse(&conn.request(&line)?)?)
}

/// Reflection for anyone; a dial-back only for a proved id, to the IP seen,
/// and "reachable" only if the server there proves that id.
#[test]
fn whoami_reflects_and_dials_back_the_asker_only() {
    let t = tracker_with(NatOptions::default());
    let addr = t.addr;
    let (mut tls, peer) = client(&t);
    let ours = hello_server(&peer);
    let someone_else = hello_server(&Tls::ephemeral());
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_port = closed.local_addr().expect("addr").port();
    drop(closed);

    let mut plain = Connection::connect_addr(addr, FIVE).expect("connect");
    let seen = whoami(&mut plain, None).expect("reflection");
    assert_eq!(
        (seen.observed.ip(), seen.reachable),
        ("127.0.0.1".parse().unwrap(), None)
    );
    assert_ne!(seen.observed.port(), addr.port());
    assert!(matches!(
        whoami(&mut plain, Some(ours.local_addr().port())),
        Err(Error::Remote(e)) if e == NAT_NOT_AUTHENTICATED
    ));
    let reach = |conn: &mut Connection, port| whoami(conn, Some(port)).expect("answer").reachable;
    assert_eq!(reach(&mut tls, ours.local_addr().port()), Some(true));
    assert_eq!(reach(&mut tls, closed_port), Some(false));
    assert_eq!(
        reach(&mut tls, someone_else.local_addr().port()),
        Some(false),
        "another identity's server does not count"
    );
}

fn control_line(conn: &mut Connection) -> ControlLine {
    let line = conn.read_line(FIVE).expect("a line").expect("not closed");
    ControlLine::parse(&line).expect("a control line")
}

/// `LISTEN` holds the connection: pings come every `ping` and are
/// answered, lines for the peer's id arrive on it, a second `LISTEN` of
/// the same id replaces it, and nobody without a certificate gets one.
#[test]
fn listen_holds_a_control_connection_per_id() {
    let t = tracker_with(NatOptions {
        ping: Duration::from_millis(50),
        ..NatOptions::default()
    });
    let mut plain = Connection::connect_addr(t.addr, FIVE).expect("connect");
    assert!(matches!(
        plain.request("LISTEN 5\n"),
        Err(Error::Remote(e)) if e == NAT_NOT_AUTHENTICATED
    ));

    let (mut first, peer) = client(&t);
    let greeting = first.request("LISTEN 5\n").expect("listening");
    assert!(greeting.starts_with("listening 127.0.0.1:"), "{greeting}");
    assert_eq!(control_line(&mut first), ControlLine::Ping);
    first.write_all(b"OK pong\n").expect("answer");
    assert_eq!(control_line(&mut first), ControlLine::Ping);
    first.write_all(b"OK pong\n").expect("answer");
    assert_eq!(t.nat.listeners.count(), 1);
    let token = Token([9; 16]);
    assert_eq!(
        t.nat.listeners.send(&peer.id(), ControlLine::Join(token)),
        Ok(())
    );
    loop {
        match control_line(&mut first) {
            ControlLine::Ping => first.write_all(b"OK pong\n").expect("answer"),
            line => {
                assert_eq!(line, ControlLine::Join(token));
                break;
            }
        }
    }
    first.write_all(b"OK joining\n").expect("answer");
    assert_eq!(
        t.nat
            .listeners
            .send(&Tls::ephemeral().id(), ControlLine::Ping),
        Err(NotSent::NotListening)
    );

    // The same identity again: the new connection replaces the old.
    let mut second =
        Connection::connect_tls(&t.addr.to_string(), &peer, Some(t.tls.id()), FIVE).expect("tls");
    assert!(second.request("LISTEN 5\n").is_ok());
    // Pings may still come before the old connection is closed.
    while let Ok(Some(_)) = first.read_line(FIVE) {
        let _ = first.write_all(b"OK pong\n");
    }
    assert_eq!(t.nat.listeners.count(), 1);

    // A peer that stops answering is dropped at its next ping.
    drop(second);
    wait_for("no control connection left", || {
        t.nat.listeners.count() == 0
    });
}

/// A peer holding a control connection is marked in version 3 `PEERS`
/// rows: `punch` when the port its connection came from is the one it
/// named (its NAT keeps ports), `relay` when not; version 2 rows and
/// peers without one carry no mark.
#[test]
fn version_3_rows_say_how_a_peer_behind_nat_is_reached() {
    let t = tracker_with(NatOptions::default());
    let file = "6ce7691704e93dcbd19780c1e3efd772525379cfdaf805e78c9dac107086d174";
    let register = |conn: &mut Connection, port: u16| {
        conn.request(&format!("REGISTER {port} {file} 1 f\n"))
            .expect("registered");
    };
    // Keeps ports: names the port its connection comes from.
    let (mut kept, kept_tls) = client(&t);
    register(&mut kept, 7001);
    let from = kept.local_addr().expect("local").port();
    kept.request(&format!("LISTEN 7001 {from}\n"))
        .expect("listening");
    // Changes ports: names another.
    let (mut changed, _) = client(&t);
    register(&mut changed, 7002);
    let other = changed.local_addr().expect("local").port() ^ 1;
    changed
        .request(&format!("LISTEN 7002 {other}\n"))
        .expect("listening");
    // Reachable directly: no control connection.
    let (mut direct, _) = client(&t);
    register(&mut direct, 7003);
    wait_for("both control connections held", || {
        t.nat.listeners.count() == 2
    });

    let rows = |version: u32| {
        let (mut asker, _) = client(&t);
        asker.request(&format!("HELLO {version}\n")).expect("hello");
        let header = asker.request(&format!("PEERS {file}\n")).expect("rows");
        let mut rows: Vec<String> = (0..header.parse::<usize>().expect("a count"))
            .map(|_| asker.read_line(FIVE).expect("a row").expect("not closed"))
            .map(|row| row.split_once(' ').expect("address first").1.to_string())
            .collect();
        rows.sort();
        rows
    };
    let id = kept_tls.id();
    let v3 = rows(3);
    assert_eq!(v3.len(), 3, "{v3:?}");
    assert_eq!(
        v3.iter().filter(|r| r.ends_with(" relay")).count(),
        1,
        "{v3:?}"
    );
    assert!(v3.contains(&format!("complete {id} punch")), "{v3:?}");
    assert!(rows(2).iter().all(|r| r.split(' ').count() == 2));
}
