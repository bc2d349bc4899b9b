//! `Connection` over a loopback socket pair.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::thread;

use super::*;

/// A connected pair: our `Connection` and the raw other end.
fn pair() -> (Connection, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind on loopback");
    let addr = listener.local_addr().expect("a bound address");
    let client = thread::spawn(move || TcpStream::connect(addr).expect("connect on loopback"));
    let (server, _) = listener.accept().expect("accept on loopback");
    let client = client.join().expect("the connecting thread");
    (Connection::new(client).expect("a connection"), server)
}

#[test]
fn a_capped_payload_is_metered_whole_even_what_came_with_its_header() {
    let (mut conn, mut other) = pair();
    // Header and payload in one write, small enough to sit whole in the
    // socket buffers: the header's read takes the payload with it.
    let payload: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
    let mut reply = format!("OK {}\n", payload.len()).into_bytes();
    reply.extend_from_slice(&payload);
    other.write_all(&reply).expect("a write on loopback");
    let len = conn.read_payload_header(1 << 20).expect("the header");
    assert_eq!(len, payload.len());
    let cap = RateCap::new(Some(1 << 40));
    let mut got = vec![0; len];
    conn.read_payload_limited(&mut got, &cap)
        .expect("the payload");
    assert!(got == payload, "the payload arrived changed");
    assert_eq!(cap.metered(), payload.len() as u64);
}

#[test]
fn an_uncapped_payload_is_read_whole() {
    let (mut conn, mut other) = pair();
    other
        .write_all(b"OK 5\nhello")
        .expect("a write on loopback");
    let len = conn.read_payload_header(10).expect("the header");
    let mut got = vec![0; len];
    conn.read_payload(&mut got).expect("the payload");
    assert_eq!(got, b"hello");
}
