//! The NAT-PMP client against a fake gateway on loopback, and the keeper
//! thread against a scripted router.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::natpmp::NatPmp;
use super::wire;
use super::*;
use crate::testing::wait_for;

const EXTERNAL: Ipv4Addr = Ipv4Addr::new(11, 99, 0, 1);

/// A NAT-PMP gateway on 127.0.0.1: answers the external address and grants
/// each mapping as asked (a refusal code if `refuse`), recording requests.
struct FakeGateway {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
    done: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl FakeGateway {
    fn start(refuse: u16) -> FakeGateway {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        let addr = socket.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicBool::new(false));
        let (seen, stop) = (Arc::clone(&requests), Arc::clone(&done));
        let thread = thread::spawn(move || {
            let mut buf = [0u8; 64];
            while !stop.load(Ordering::Acquire) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let req = buf[..n].to_vec();
                seen.lock().unwrap().push(req.clone());
                let answer = answer(&req, refuse);
                let _ = socket.send_to(&answer, from);
            }
        });
        FakeGateway {
            addr,
            requests,
            done,
            thread: Some(thread),
        }
    }

    fn requests(&self) -> Vec<Vec<u8>> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeGateway {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the fake answers to `req`: a stray datagram first would be ignored
/// by the client, so none is needed to test that (see `wire`).
fn answer(req: &[u8], refuse: u16) -> Vec<u8> {
    let mut a = vec![0, 128 + req[1]];
    a.extend_from_slice(&refuse.to_be_bytes());
    a.extend_from_slice(&42u32.to_be_bytes());
    match req[1] {
        0 => a.extend_from_slice(&EXTERNAL.octets()),
        _ => {
            a.extend_from_slice(&req[4..6]);
            // Granted as suggested; the lifetime asked, capped at 2 h.
            a.extend_from_slice(&req[6..8]);
            let asked = u32::from_be_bytes([req[8], req[9], req[10], req[11]]);
            a.extend_from_slice(&asked.min(7200).to_be_bytes());
        }
    }
    a
}

fn client(gateway: &FakeGateway) -> NatPmp {
    NatPmp::new(gateway.addr, Ipv4Addr::LOCALHOST.into())
        .expect("a socket")
        .with_waits(Duration::from_millis(250), 3)
}

#[test]
fn natpmp_maps_renews_and_deletes() {
    let gw = FakeGateway::start(0);
    let mut c = client(&gw);
    assert_eq!(c.external().ok(), Some(EXTERNAL));
    let g = c
        .map(4000, 4000, Duration::from_secs(3600))
        .expect("mapped");
    assert_eq!(g.external, SocketAddrV4::new(EXTERNAL, 4000));
    assert_eq!(g.internal, SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4000));
    assert_eq!(g.lease, Some(Duration::from_secs(3600)));
    assert_eq!(g.protocol, Protocol::NatPmp);
    c.unmap(&g).expect("deleted");
    let sent = gw.requests();
    // external, external (map asks again), the mapping, its deletion.
    assert_eq!(sent.len(), 4);
    assert_eq!(sent[2], wire::map_request(4000, 4000, 3600).to_vec());
    assert_eq!(sent.last(), Some(&wire::map_request(4000, 0, 0).to_vec()));
}

#[test]
fn natpmp_refusal_is_said_with_its_code() {
    let gw = FakeGateway::start(2);
    let e = client(&gw)
        .map(4000, 4000, Duration::from_secs(60))
        .unwrap_err();
    assert!(e.to_string().contains("not authorized"), "{e}");
}

#[test]
fn natpmp_silence_and_refusal_end_within_the_bound() {
    // A socket that never answers: every wait is spent, then no more.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let at = silent.local_addr().expect("addr");
    let c = NatPmp::new(at, Ipv4Addr::LOCALHOST.into())
        .expect("socket")
        .with_waits(Duration::from_millis(30), 3);
    let started = Instant::now();
    assert!(matches!(c.external(), Err(MapError::NoAnswer(a)) if a == at));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(2),
        "{took:?}"
    );
    // Nothing listening: the ICMP refusal ends it at once, long before
    // the 3.5 s its waits would take (a margin for a loaded machine).
    drop(silent);
    let c = NatPmp::new(at, Ipv4Addr::LOCALHOST.into())
        .expect("socket")
        .with_waits(Duration::from_millis(500), 3);
    let started = Instant::now();
    assert!(matches!(c.external(), Err(MapError::NoAnswer(_))));
    assert!(started.elapsed() < Duration::from_millis(1500));
}

/// A router that grants what it is asked (or fails while `fail` is set),
/// counting maps and unmaps.
#[derive(Clone, Default)]
struct Script {
    maps: Arc<Mutex<Vec<u16>>>,
    unmaps: Arc<Mutex<Vec<u16>>>,
    fail: Arc<AtomicBool>,
    lease: Option<Duration>,
}

impl Router for Script {
    fn protocol(&self) -> Protocol {
        Protocol::Upnp
    }
    fn map(&mut self, internal: u16, wanted: u16, _: Duration) -> Result<Granted, MapError> {
        self.maps.lock().unwrap().push(wanted);
        if self.fail.load(Ordering::Acquire) {
            return Err(MapError::Upnp("scripted failure".into()));
        }
        Ok(Granted {
            protocol: Protocol::Upnp,
            internal: SocketAddrV4::new(Ipv4Addr::new(10, 0, 1, 2), internal),
            external: SocketAddrV4::new(EXTERNAL, wanted),
            lease: self.lease,
        })
    }
    fn unmap(&mut self, g: &Granted) -> Result<(), MapError> {
        self.unmaps.lock().unwrap().push(g.external.port());
        Ok(())
    }
}

fn keep(script: &Script, renew: Duration, needs_check: bool) -> PortMap {
    let router = script.clone();
    let config = Config {
        lease: Duration::from_secs(3600),
        renew,
        retry: Duration::from_millis(20),
    };
    let discover: Discover = Box::new(move || Ok(Box::new(router.clone()) as Box<dyn Router>));
    PortMap::spawn_with(discover, 4000, config, needs_check).expect("thread")
}

#[test]
fn the_keeper_maps_renews_and_deletes_when_released() {
    let script = Script::default();
    let map = keep(&script, Duration::from_millis(20), false);
    assert!(map.wait_first(Duration::from_secs(5)));
    let external: SocketAddr = SocketAddrV4::new(EXTERNAL, 4000).into();
    assert_eq!(map.candidate(), Some(external));
    // No tracker to check it with: offered as it is.
    assert_eq!(map.offered(), Some(external));
    let v = map.view();
    assert!(v.mapped && v.offered && !v.trying);
    assert_eq!(
        (v.protocol, v.external.as_deref()),
        (Some(Protocol::Upnp), Some("11.99.0.1:4000"))
    );
    wait_for("renewals", || script.maps.lock().unwrap().len() >= 3);
    assert!(map.release(Instant::now() + Duration::from_secs(5)));
    assert_eq!(*script.unmaps.lock().unwrap(), vec![4000]);
    assert_eq!(map.candidate(), None);
    assert!(!map.view().mapped);
}

#[test]
fn a_mapping_is_offered_only_once_a_dial_back_reached_it() {
    let script = Script::default();
    let map = keep(&script, Duration::from_secs(60), true);
    assert!(map.wait_first(Duration::from_secs(5)));
    let external = map.candidate().expect("a candidate");
    assert_eq!(map.offered(), None);
    assert!(!map.confirm("11.99.0.1:4001".parse().unwrap()));
    assert_eq!(map.offered(), None);
    assert!(map.confirm(external));
    assert_eq!(map.offered(), Some(external));
}

#[test]
fn a_failed_attempt_is_retried_and_said() {
    let script = Script::default();
    script.fail.store(true, Ordering::Release);
    let map = keep(&script, Duration::from_secs(60), false);
    assert!(map.wait_first(Duration::from_secs(5)));
    let v = map.view();
    assert!(!v.mapped && !v.trying);
    assert!(
        v.error.as_deref().is_some_and(|e| e.contains("scripted")),
        "{v:?}"
    );
    script.fail.store(false, Ordering::Release);
    wait_for("a mapping after the retry", || map.view().mapped);
    assert_eq!(map.view().error, None);
}

#[test]
fn a_lapsed_lease_is_neither_held_nor_offered() {
    let script = Script {
        lease: Some(Duration::from_millis(100)),
        ..Script::default()
    };
    let map = keep(&script, Duration::from_secs(60), false);
    assert!(map.wait_first(Duration::from_secs(5)));
    assert!(map.view().lease_secs_left.is_some());
    // Renewed at half the lease; the router now fails, so the lease lapses.
    script.fail.store(true, Ordering::Release);
    wait_for("the lease to lapse", || map.offered().is_none());
    assert!(!map.view().mapped);
}

#[test]
fn renewal_comes_at_half_a_short_lease() {
    let c = Config::default();
    assert_eq!(c.renew_after(None), c.renew);
    assert_eq!(
        c.renew_after(Some(Duration::from_secs(120))),
        Duration::from_secs(60)
    );
    assert_eq!(c.renew_after(Some(Duration::from_secs(86400))), c.renew);
    assert!(c.renew_after(Some(Duration::ZERO)) > Duration::ZERO);
}
