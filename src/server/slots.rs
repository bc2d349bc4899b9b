//! Connection slots of one server: at most `ConnCaps::total` connections at
//! once and at most `ConnCaps::per_ip` from one IP address. When the server
//! is full, a newcomer takes the slot of the connection that has been idle
//! the longest without completing a request (that connection is closed), so
//! idle connections from many addresses cannot lock everyone out; only when
//! every connection is busy with a request, or the newcomer's address is at
//! its own cap, is it refused (`ERR busy`).
//!
//! Each connection's [`Activity`] says whether it is idle (waiting for a
//! request line, or for the rest of a request's body) and since when; the
//! request loop and `Connection::read_body` keep it current.
//!
//! Invariant: `total` and `per_ip` count exactly the entries of `live`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::bounds::ConnCaps;
use crate::net::transport::Interrupter;
use crate::protocol::conn::Activity;
use crate::sync::LockExt;

pub struct Slots {
    caps: ConnCaps,
    /// Every update is a few map operations done whole under the lock, so a
    /// poisoned one is still consistent.
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    live: HashMap<u64, Live>,
    per_ip: HashMap<IpAddr, usize>,
}

struct Live {
    ip: IpAddr,
    activity: Arc<Activity>,
    interrupter: Interrupter,
}

/// What [`Slots::take`] decided.
pub enum Taken {
    Slot(Slot),
    /// The newcomer's address is at its cap, or every connection is busy.
    Busy,
}

impl Slots {
    pub fn new(caps: ConnCaps) -> Arc<Slots> {
        Arc::new(Slots {
            caps,
            inner: Mutex::new(Inner::default()),
        })
    }

    /// Live connections.
    pub fn count(&self) -> usize {
        self.inner.locked().live.len()
    }

    /// A slot for a connection from `ip`, evicting the longest-idle
    /// connection if the server is full (see the module docs).
    pub fn take(
        self: &Arc<Self>,
        ip: IpAddr,
        activity: &Arc<Activity>,
        interrupter: Interrupter,
    ) -> Taken {
        let mut s = self.inner.locked();
        if s.per_ip.get(&ip).copied().unwrap_or(0) >= self.caps.per_ip {
            return Taken::Busy;
        }
        if s.live.len() >= self.caps.total {
            let oldest = s
                .live
                .iter()
                .filter_map(|(id, l)| l.activity.idle_since().map(|t| (t, *id)))
                .min();
            let Some((_, victim)) = oldest else {
                return Taken::Busy;
            };
            if let Some(gone) = remove(&mut s, victim) {
                log::debug!(
                    "full: closing the longest-idle connection, from {}",
                    gone.ip
                );
                gone.interrupter.interrupt();
            }
        }
        let id = s.next_id;
        s.next_id += 1;
        *s.per_ip.entry(ip).or_default() += 1;
        let activity = Arc::clone(activity);
        s.live.insert(
            id,
            Live {
                ip,
                activity,
                interrupter,
            },
        );
        Taken::Slot(Slot {
            slots: Arc::clone(self),
            id,
        })
    }
}

fn remove(s: &mut Inner, id: u64) -> Option<Live> {
    let live = s.live.remove(&id)?;
    if let Some(n) = s.per_ip.get_mut(&live.ip) {
        *n -= 1;
        if *n == 0 {
            s.per_ip.remove(&live.ip);
        }
    }
    Some(live)
}

/// One taken connection slot; released when dropped, even on panic (unless
/// it was already given to a newcomer by eviction).
pub struct Slot {
    slots: Arc<Slots>,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        remove(&mut self.slots.inner.locked(), self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::transport::Stream;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    /// A connected pair: our end (to interrupt) and the other end.
    fn pair(listener: &TcpListener) -> (Stream, TcpStream) {
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (Stream::from(server), client)
    }

    #[test]
    fn a_full_server_evicts_the_longest_idle_and_keeps_busy_ones() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let slots = Slots::new(ConnCaps {
            total: 2,
            per_ip: 2,
        });
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let (old, mut old_client) = pair(&listener);
        let (busy, _busy_client) = pair(&listener);
        let old_activity = Activity::new();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let busy_activity = Activity::new();
        busy_activity.busy();
        let _a = slots.take(ip, &old_activity, old.interrupter().unwrap());
        let _b = slots.take(ip, &busy_activity, busy.interrupter().unwrap());
        let (new, _new_client) = pair(&listener);
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let taken = slots.take(other, &Activity::new(), new.interrupter().unwrap());
        assert!(matches!(taken, Taken::Slot(_)), "a newcomer gets in");
        assert_eq!(slots.count(), 2);
        let mut buf = [0u8; 1];
        assert_eq!(old_client.read(&mut buf).unwrap(), 0, "the idle one closed");
        // Now both are busy or new-and-idle; the per-IP cap still holds.
        let (more, _c) = pair(&listener);
        busy_activity.busy();
        let third = slots.take(other, &Activity::new(), more.interrupter().unwrap());
        assert!(
            matches!(third, Taken::Slot(_)),
            "the newcomer was idle, evicted"
        );
        drop(third);
        let (more, _c) = pair(&listener);
        let capped = Slots::new(ConnCaps {
            total: 10,
            per_ip: 1,
        });
        let _x = capped.take(ip, &Activity::new(), more.interrupter().unwrap());
        let (again, _c2) = pair(&listener);
        assert!(matches!(
            capped.take(ip, &Activity::new(), again.interrupter().unwrap()),
            Taken::Busy
        ));
    }

    /// A connection whose request line came but whose body dawdles is idle
    /// (since its last request ended), so a newcomer evicts it.
    #[test]
    fn a_connection_dawdling_over_a_body_is_evicted() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let slots = Slots::new(ConnCaps {
            total: 1,
            per_ip: 1,
        });
        let (dawdler, mut dawdler_client) = pair(&listener);
        let activity = Activity::new();
        activity.busy();
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        let _held = slots.take(ip, &activity, dawdler.interrupter().unwrap());
        let (new, _new_client) = pair(&listener);
        let other: IpAddr = "127.0.0.3".parse().unwrap();
        let busy = slots.take(other, &Activity::new(), new.interrupter().unwrap());
        assert!(matches!(busy, Taken::Busy), "a busy one is kept");
        activity.waiting();
        let (new, _new_client) = pair(&listener);
        let taken = slots.take(other, &Activity::new(), new.interrupter().unwrap());
        assert!(matches!(taken, Taken::Slot(_)), "a dawdler is evicted");
        let mut buf = [0u8; 1];
        assert_eq!(dawdler_client.read(&mut buf).unwrap(), 0, "and closed");
    }
}
