//! The tracker's TCP server: a bounded accept loop, one thread per connection
//! reading request lines with deadlines, and an expiry thread that drops peers
//! whose announcements stopped. Each connection is plain text (for `nc`:
//! `HELLO`, `SEARCH`, `INFO`, `PEERS`) or TLS, told apart by its first byte.
//! Only a TLS connection whose client proved a certificate may change the
//! registry: a peer is recorded under that certificate's id, the IP address
//! the connection came from and the port it announces, never an address it
//! claims, so no peer can register, refresh or remove another's entries,
//! even from the same address.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::nat::control::Listeners;
use super::nat::{Nat, NatOptions};
use super::replies::LargeReplies;
use super::state::{PeerKey, Registry};
use crate::bounds::{TRACKER_CAPS, TRACKER_LARGE_REPLY, TRACKER_REPLY_BYTES};
use crate::identity::PeerId;
use crate::net::tls::Tls;
use crate::protocol::conn::BUSY;
use crate::protocol::message::{
    encode_bounded_list, encode_list, hello_reply, OLDEST_VERSION, TRACKER_VERSION,
};
use crate::protocol::{Connection, Reply, TrackerRequest};
use crate::server::{self, Flow, Security, ServerHandle};

/// A tracker bound to its port.
pub struct Tracker {
    listener: TcpListener,
    registry: Arc<Registry>,
    nat: Arc<Nat>,
}

impl Tracker {
    /// Binds `addr`, proving `tls`'s identity to peers; peers not heard
    /// from within `peer_ttl` are forgotten.
    pub fn bind(addr: SocketAddr, peer_ttl: Duration, tls: Tls) -> std::io::Result<Self> {
        Tracker::bind_with(addr, peer_ttl, tls, NatOptions::default())
    }

    /// [`bind`](Self::bind), serving peers behind NAT as `nat` says.
    pub fn bind_with(
        addr: SocketAddr,
        peer_ttl: Duration,
        tls: Tls,
        nat: NatOptions,
    ) -> std::io::Result<Self> {
        Ok(Tracker {
            listener: TcpListener::bind(addr)?,
            registry: Arc::new(Registry::new(peer_ttl)),
            nat: Arc::new(Nat::new(tls, nat)),
        })
    }

    /// The NAT services (control connections, relay), for the status page.
    pub fn nat(&self) -> Arc<Nat> {
        Arc::clone(&self.nat)
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The registry, for read-only views such as the status page.
    pub fn registry(&self) -> Arc<Registry> {
        Arc::clone(&self.registry)
    }

    /// Serves on threads of its own until the handle is stopped or dropped,
    /// forgetting stale peers every `expire_every`.
    pub fn spawn(self, expire_every: Duration) -> io::Result<TrackerHandle> {
        let (stop_expiry, stopped) = mpsc::channel::<()>();
        let registry = Arc::clone(&self.registry);
        let expiry = thread::Builder::new()
            .name("tracker-expiry".into())
            .spawn(move || loop {
                match stopped.recv_timeout(expire_every) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
                let n = registry.expire(Instant::now());
                if n > 0 {
                    log::info!("forgot {n} stale peer registrations");
                }
            })?;
        let registry = self.registry;
        let large = Arc::new(LargeReplies::default());
        let nat = Arc::clone(&self.nat);
        let security = Security::Detect(self.nat.server_config());
        let server = server::spawn(
            self.listener,
            TRACKER_CAPS,
            security,
            "tracker",
            move |conn| handle_connection(conn, &registry, &large, &nat),
        )?;
        Ok(TrackerHandle {
            nat: self.nat,
            server: Some(server),
            stop_expiry: Some(stop_expiry),
            expiry: Some(expiry),
        })
    }
}

/// A running tracker; stopped (accept loop, connections, expiry thread) when
/// stopped or dropped.
pub struct TrackerHandle {
    nat: Arc<Nat>,
    server: Option<ServerHandle>,
    stop_expiry: Option<mpsc::Sender<()>>,
    expiry: Option<JoinHandle<()>>,
}

impl TrackerHandle {
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(ServerHandle::local_addr)
    }

    pub fn stop(self) {}
}

impl Drop for TrackerHandle {
    fn drop(&mut self) {
        // Control connections wait on a queue, not their socket: wake them.
        self.nat.close();
        drop(self.server.take());
        drop(self.stop_expiry.take());
        if let Some(expiry) = self.expiry.take() {
            let _ = expiry.join();
        }
    }
}

/// The refusal of a change asked for on an unauthenticated connection.
pub const NOT_AUTHENTICATED: &str =
    "authentication required: REGISTER, PARTIAL, UNREGISTER and BYE need a TLS connection with a client certificate";

/// Serves one connection: one reply per request line (the NAT verbs are
/// `nat`'s, and may keep the connection).
pub fn handle_connection(conn: Connection, registry: &Registry, large: &LargeReplies, nat: &Nat) {
    let ip = conn.peer_addr().ip();
    let who = conn.peer_id();
    // What the client said in `HELLO`; replies take that version's form.
    let mut version = OLDEST_VERSION;
    server::for_each_request(conn, |conn, line| {
        let (reply, flow) = match TrackerRequest::parse(line) {
            Ok(req) if Nat::handles(&req) => return nat.serve(&req, conn, who),
            Ok(req) => {
                let reply = apply(&req, ip, who, version, registry, &nat.listeners);
                if let TrackerRequest::Hello { version: v } = req {
                    if reply.starts_with("OK") {
                        version = v;
                    }
                }
                let flow = match req {
                    TrackerRequest::Quit => Flow::Close,
                    _ => Flow::Continue,
                };
                (reply, flow)
            }
            Err(e) if e.is_fatal() => (Reply::err(&e).encode(), Flow::CloseAfterError),
            Err(e) => (Reply::err(&e).encode(), Flow::Continue),
        };
        if reply.len() <= TRACKER_LARGE_REPLY {
            conn.write_all(reply.as_bytes())?;
        } else if let Some(_place) = large.take(ip) {
            conn.write_all(reply.as_bytes())?;
        } else {
            // Plain `ERR busy`, which clients already wait out and ask again.
            conn.write_all(Reply::err(BUSY).encode().as_bytes())?;
        }
        Ok(flow)
    });
}

/// Carries out one request for a client at `ip`, authenticated as `who`
/// (`None`: plain text, or TLS without a certificate), speaking `version`;
/// returns the encoded reply. `listeners` says which listed peers are
/// reached through this tracker (version 3 rows say how).
pub fn apply(
    req: &TrackerRequest,
    ip: IpAddr,
    who: Option<PeerId>,
    version: u32,
    registry: &Registry,
    listeners: &Listeners,
) -> String {
    let now = Instant::now();
    let key = |port: u16| {
        who.map(|id| PeerKey {
            addr: SocketAddr::new(ip, port),
            id,
        })
    };
    let reply = match req {
        TrackerRequest::Hello { version } => hello_reply(*version, TRACKER_VERSION, "tracker"),
        TrackerRequest::Register {
            port,
            id,
            size,
            name,
            complete,
        } => match key(*port) {
            None => Reply::err(NOT_AUTHENTICATED),
            Some(key) => {
                match registry.register(key, *id, *size, name.as_deref(), *complete, now) {
                    Ok(()) => Reply::ok("registered"),
                    Err(e) => Reply::err(e),
                }
            }
        },
        TrackerRequest::Unregister { port, id } => match key(*port) {
            None => Reply::err(NOT_AUTHENTICATED),
            Some(key) => {
                registry.unregister(key, id);
                Reply::ok("unregistered")
            }
        },
        TrackerRequest::Bye { port } => match key(*port) {
            None => Reply::err(NOT_AUTHENTICATED),
            Some(key) => Reply::ok(format!("removed {}", registry.remove_peer(key))),
        },
        TrackerRequest::Search { text } => {
            let found = registry.search(text, now);
            return encode_bounded_list(&found.rows, found.more, TRACKER_REPLY_BYTES, |f| {
                f.encode()
            });
        }
        TrackerRequest::Peers { id } => {
            let mut peers = registry.peers(id, now);
            if version == 1 {
                // A version 1 client would ask a partial peer for chunks it
                // does not have, and count each refusal against it.
                peers.retain(|p| p.complete);
            }
            if version >= 3 {
                listeners.mark(&mut peers);
            }
            return encode_list(&peers, |p| p.encode(version));
        }
        TrackerRequest::Info { prefix } => {
            let found = registry.info(prefix, now);
            return encode_bounded_list(&found.rows, found.more, TRACKER_REPLY_BYTES, |f| {
                f.encode()
            });
        }
        TrackerRequest::Quit => Reply::ok("bye"),
        TrackerRequest::WhoAmI { .. }
        | TrackerRequest::Listen { .. }
        | TrackerRequest::Relay { .. }
        | TrackerRequest::Join { .. }
        | TrackerRequest::Punch { .. } => Reply::err("answered on a connection (tracker::nat)"),
    };
    reply.encode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Connection;

    /// A tracker in-process on port 0: it answers over TCP, and once stopped
    /// its port refuses connections and its connections are closed.
    #[test]
    fn an_in_process_tracker_serves_and_stops() {
        let (ours, peer) = (Tls::ephemeral(), Tls::ephemeral());
        let tracker_id = ours.id();
        let tracker = Tracker::bind(
            "127.0.0.1:0".parse().unwrap(),
            Duration::from_secs(60),
            ours,
        )
        .expect("bind port 0");
        let handle = tracker.spawn(Duration::from_millis(50)).expect("spawn");
        let addr = handle.local_addr().expect("an address");
        let five = Duration::from_secs(5);
        let id = "ab".repeat(32);
        let register = format!("REGISTER 4000 {id} 5 a.bin\n");

        // Plain text (what `nc` speaks): reads work, changes are refused.
        let mut plain = Connection::connect_addr(addr, five).expect("connect");
        assert_eq!(plain.request("HELLO 1\n").expect("hello"), "p2pshare 1");
        assert!(matches!(
            plain.request(&register),
            Err(crate::error::Error::Remote(e)) if e == NOT_AUTHENTICATED
        ));

        // TLS with a client certificate: registered under that id.
        let mut conn = Connection::connect_tls(&addr.to_string(), &peer, Some(tracker_id), five)
            .expect("connect over TLS");
        assert_eq!(conn.request("HELLO 2\n").expect("hello"), "p2pshare 2");
        assert_eq!(conn.request(&register).expect("register"), "registered");
        assert_eq!(plain.request(&format!("PEERS {id}\n")).expect("peers"), "1");
        assert_eq!(
            plain.read_line(five).expect("a row"),
            Some("127.0.0.1:4000".into()),
            "version 1 rows: the address alone"
        );
        assert_eq!(conn.request(&format!("PEERS {id}\n")).expect("peers"), "1");
        assert_eq!(
            conn.read_line(five).expect("a row"),
            Some(format!("127.0.0.1:4000 complete {}", peer.id()))
        );
        assert_eq!(
            conn.request(&format!("INFO {}\n", &id[..8])).expect("info"),
            "1"
        );
        assert_eq!(
            conn.read_line(five).expect("a row"),
            Some(format!("{id} 5 1 a.bin"))
        );

        handle.stop();
        assert!(conn.request("SEARCH\n").is_err(), "connection closed");
        assert!(Connection::connect_addr(addr, five).is_err());
    }
}
