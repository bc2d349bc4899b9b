use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use super::NAT_NOT_AUTHENTICATED;
use crate::bounds::PEER_CAPS;
use crate::net::tls::Tls;
use crate::protocol::message::hello_reply;
use crate::protocol::nat_msg::Reflection;
use crate::protocol::Connection;
use crate::server::{self, Flow, Security, ServerHandle};
use crate::tracker::{Tracker, TrackerHandle};

const FIVE: Duration = Duration::from_secs(5);

pub(crate) fn tracker() -> (TrackerHandle, SocketAddr, Tls) {
    let tls = Tls::ephemeral();
    let tracker = Tracker::bind(
        "127.0.0.1:0".parse().expect("addr"),
        Duration::from_secs(60),
        tls.clone(),
    )
    .expect("bind");
    let handle = tracker.spawn(Duration::from_secs(1)).expect("spawn");
    let addr = handle.local_addr().expect("addr");
    (handle, addr, tls)
}

/// A TLS server as `tls` answering `HELLO`, as a peer's chunk server does.
fn hello_server(tls: &Tls) -> ServerHandle {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let security = Security::Tls(tls.server.clone());
    server::spawn(listener, PEER_CAPS, security, "hello", |conn| {
        server::for_each_request(conn, |conn, _| {
            conn.write_all(hello_reply(2, "peer").encode().as_bytes())?;
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
    let (_tracker, addr, tracker_tls) = tracker();
    let peer = Tls::ephemeral();
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
        Err(crate::error::Error::Remote(e)) if e == NAT_NOT_AUTHENTICATED
    ));

    let mut tls = Connection::connect_tls(&addr.to_string(), &peer, Some(tracker_tls.id()), FIVE)
        .expect("tls");
    let reach = |conn: &mut Connection, port| whoami(conn, Some(port)).expect("answer").reachable;
    assert_eq!(reach(&mut tls, ours.local_addr().port()), Some(true));
    assert_eq!(reach(&mut tls, closed_port), Some(false));
    assert_eq!(
        reach(&mut tls, someone_else.local_addr().port()),
        Some(false),
        "another identity's server does not count"
    );
}
