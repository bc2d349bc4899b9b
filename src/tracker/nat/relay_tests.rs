use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::relay::{NO_SUCH_TOKEN, PARTNER_LATE};
use super::tests::{client, tracker_with, Running};
use super::{NatOptions, NO_RELAY};
use crate::bounds::{RELAY_PAIR_TIMEOUT, RELAY_PER_PEER};
use crate::error::Error;
use crate::net::stop::StopSignal;
use crate::net::tls::Tls;
use crate::peer::nat::relay::{accept, client_end};
use crate::protocol::nat_msg::{ControlLine, Token};
use crate::protocol::{Connection, Reply};
use crate::testing::wait_for;

const FIVE: Duration = Duration::from_secs(5);

fn relaying() -> Running {
    tracker_with(NatOptions {
        relay: true,
        ..NatOptions::default()
    })
}

/// A peer holding a control connection to `t`: its connection and identity.
fn listening(t: &Running) -> (Connection, Tls) {
    let (mut conn, tls) = client(t);
    conn.request("LISTEN 5\n").expect("listening");
    (conn, tls)
}

fn next_join(control: &mut Connection) -> Token {
    let line = control.read_line(FIVE).expect("a line").expect("open");
    match ControlLine::parse(&line).expect("a control line") {
        ControlLine::Join(token) => {
            control.write_all(b"OK joining\n").expect("answer");
            token
        }
        other => panic!("{other:?}"),
    }
}

/// The downloader asks, the peer is told, both join: TLS runs end to end
/// through the relay (pinned to the peer's id), the bytes cross both ways,
/// the relay counts them, and a third `JOIN` with the token is refused.
#[test]
fn the_relay_pairs_two_joins_and_carries_tls_between_them() {
    let t = relaying();
    let (mut control, peer) = listening(&t);
    let (mut asker, downloader) = client(&t);
    let token: Token = asker
        .request(&format!("RELAY {}\n", peer.id()))
        .expect("a token")
        .parse()
        .expect("32 hex digits");
    assert_eq!(next_join(&mut control), token);

    let addr = t.addr.to_string();
    let server = peer.server.clone();
    let peer_end = thread::spawn(move || {
        let mut conn = accept(&addr, token, &server).expect("the peer's end");
        let line = conn.read_line(FIVE).expect("read").expect("a line");
        conn.write_all(format!("OK {line} back\n").as_bytes())
            .expect("answer");
        conn.peer_id()
    });
    let (mut conn, guard) = client_end(
        &t.addr.to_string(),
        token,
        &downloader,
        peer.id(),
        FIVE,
        &StopSignal::new(),
    )
    .expect("relayed");
    assert_eq!(conn.request("HELLO 2\n").expect("answered"), "HELLO 2 back");
    assert_eq!(peer_end.join().expect("joined"), Some(downloader.id()));

    // A third join, while the session is still live, pairs with nobody.
    let mut third = Connection::connect_addr(t.addr, FIVE).expect("connect");
    assert!(matches!(
        third.request(&format!("JOIN {token}\n")),
        Err(Error::Remote(e)) if e == NO_SUCH_TOKEN
    ));
    assert_eq!(
        t.nat.view().relay.map(|r| (r.sessions, r.pending)),
        Some((1, 0))
    );

    // The guard holds a handle on the socket too.
    drop((conn, guard));
    wait_for("the session counted and closed", || {
        t.nat
            .view()
            .relay
            .is_some_and(|r| r.bytes > 0 && r.sessions == 0)
    });
}

/// What crosses the relay is TLS: a marker the downloader sends inside
/// never appears in a capture of its connection to the relay, while the
/// `JOIN` line (sent in the clear) does: the capture's positive control.
#[test]
fn the_relay_carries_only_ciphertext() {
    let t = relaying();
    let (mut control, peer) = listening(&t);
    let (mut asker, downloader) = client(&t);
    let token: Token = asker
        .request(&format!("RELAY {}\n", peer.id()))
        .expect("a token")
        .parse()
        .expect("hex");
    next_join(&mut control);
    let marker = "marker-5c1f0a9e-never-in-the-clear";
    let addr = t.addr.to_string();
    let server = peer.server.clone();
    let peer_end = thread::spawn(move || {
        let mut conn = accept(&addr, token, &server).expect("the peer's end");
        conn.read_line(FIVE).expect("read").expect("a line")
    });
    let tap = Tap::start(t.addr);
    let (mut conn, guard) = client_end(
        &tap.addr.to_string(),
        token,
        &downloader,
        peer.id(),
        FIVE,
        &StopSignal::new(),
    )
    .expect("relayed");
    conn.write_all(format!("{marker}\n").as_bytes())
        .expect("send");
    assert_eq!(peer_end.join().expect("peer"), marker);
    // The guard holds a handle on the socket too.
    drop((conn, guard));
    let seen = tap.captured();
    let has = |what: &[u8]| seen.windows(what.len()).any(|w| w == what);
    assert!(has(format!("JOIN {token}").as_bytes()), "the capture works");
    assert!(!has(marker.as_bytes()), "the marker crossed in the clear");
}

/// A one-connection TCP proxy in front of `to` that records what the
/// client sends.
struct Tap {
    addr: std::net::SocketAddr,
    seen: Arc<std::sync::Mutex<Vec<u8>>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Tap {
    fn start(to: std::net::SocketAddr) -> Tap {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let thread = thread::spawn(move || {
            let (mut client, _) = listener.accept().expect("accept");
            let mut upstream = std::net::TcpStream::connect(to).expect("connect");
            let (mut back, mut down) = (
                upstream.try_clone().expect("clone"),
                client.try_clone().expect("clone"),
            );
            let answers = thread::spawn(move || {
                let _ = std::io::copy(&mut back, &mut down);
                let _ = down.shutdown(std::net::Shutdown::Write);
            });
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = client.read(&mut buf) {
                record.lock().expect("lock").extend_from_slice(&buf[..n]);
                if upstream.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = upstream.shutdown(std::net::Shutdown::Write);
            let _ = answers.join();
        });
        Tap {
            addr,
            seen,
            thread: Some(thread),
        }
    }

    /// What the client sent, once its connection has ended.
    fn captured(mut self) -> Vec<u8> {
        if let Some(t) = self.thread.take() {
            t.join().expect("tap");
        }
        let seen = self.seen.lock().expect("lock");
        seen.clone()
    }
}

/// Refusals: a peer with no control connection, a tracker without
/// `--relay`, a token nobody made, and the cap per peer (pending sessions
/// count), after which the relay says busy.
#[test]
fn the_relay_refuses_what_it_must() {
    let t = relaying();
    let (mut asker, _) = client(&t);
    let nobody = Tls::ephemeral().id();
    assert!(matches!(
        asker.request(&format!("RELAY {nobody}\n")),
        Err(Error::Remote(e)) if e.contains("not reachable through this tracker")
    ));
    let mut plain = Connection::connect_addr(t.addr, FIVE).expect("connect");
    assert!(matches!(
        plain.request(&format!("JOIN {}\n", Token([1; 16]))),
        Err(Error::Remote(e)) if e == NO_SUCH_TOKEN
    ));

    let (mut control, peer) = listening(&t);
    for _ in 0..RELAY_PER_PEER {
        asker
            .request(&format!("RELAY {}\n", peer.id()))
            .expect("a token");
        next_join(&mut control);
    }
    assert!(matches!(
        asker.request(&format!("RELAY {}\n", peer.id())),
        Err(Error::Busy)
    ));
    assert_eq!(
        t.nat.view().relay.map(|r| (r.pending, r.refused)),
        Some((RELAY_PER_PEER, 1))
    );

    let without = tracker_with(NatOptions::default());
    let (mut asker, _) = client(&without);
    assert!(matches!(
        asker.request(&format!("RELAY {}\n", peer.id())),
        Err(Error::Remote(e)) if e == NO_RELAY
    ));
}

/// A token for a `RELAY` to `peer` (holding a control connection to `t`,
/// told on `control`), asked at `at`.
fn token_asked_at(t: &Running, control: &mut Connection, peer: &Tls, at: Instant) -> Token {
    let relay = t.nat.relay.as_ref().expect("--relay");
    let asker = Tls::ephemeral().id();
    let token = match relay.ask_at(asker, peer.id(), &t.nat.listeners, at) {
        Reply::Ok(token) => token.parse().expect("32 hex digits"),
        Reply::Err(e) => panic!("{e}"),
    };
    assert_eq!(next_join(control), token);
    token
}

/// `JOIN <token>` at `at`, straight into the relay (time passed in): what
/// the joiner is answered once the relay is done with it.
fn join_at(t: &Running, token: Token, at: Instant) -> crate::error::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut joiner =
        Connection::connect_addr(listener.local_addr().expect("addr"), FIVE).expect("connect");
    let (accepted, _) = listener.accept().expect("accept");
    let mut conn = Connection::new(accepted).expect("wrap");
    let relay = t.nat.relay.as_ref().expect("--relay");
    relay.join_at(token, &mut conn, at).expect("answered");
    joiner.read_reply()
}

/// A token is good for [`RELAY_PAIR_TIMEOUT`] from its `RELAY`: at that
/// time both sides' `JOIN`s are refused, and nothing pairs or stays pending.
#[test]
fn a_join_after_the_pairing_timeout_is_refused() {
    let t = relaying();
    let (mut control, peer) = listening(&t);
    let asked = Instant::now();
    let token = token_asked_at(&t, &mut control, &peer, asked);
    for _side in 0..2 {
        assert!(matches!(
            join_at(&t, token, asked + RELAY_PAIR_TIMEOUT),
            Err(Error::Remote(e)) if e == NO_SUCH_TOKEN
        ));
    }
    let view = t.nat.view().relay.expect("relaying");
    assert_eq!((view.sessions, view.pending, view.bytes), (0, 0, 0));
}

/// A first side joining 200 ms before the token expires waits those
/// 200 ms (a real wait) for its partner, is told the other side did not
/// join in time, and takes the token with it: the partner, within the
/// token's time, is refused.
#[test]
fn a_first_side_whose_partner_is_late_is_told_so() {
    let t = relaying();
    let (mut control, peer) = listening(&t);
    let asked = Instant::now();
    let token = token_asked_at(&t, &mut control, &peer, asked);
    let near_the_end = asked + RELAY_PAIR_TIMEOUT - Duration::from_millis(200);
    assert!(matches!(
        join_at(&t, token, near_the_end),
        Err(Error::Remote(e)) if e == PARTNER_LATE
    ));
    assert!(matches!(
        join_at(&t, token, near_the_end),
        Err(Error::Remote(e)) if e == NO_SUCH_TOKEN
    ));
    let view = t.nat.view().relay.expect("relaying");
    assert_eq!((view.sessions, view.pending, view.bytes), (0, 0, 0));
}
