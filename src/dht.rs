//! Finding peers without the tracker: BitTorrent's Mainline DHT (BEP 5), via
//! the `mainline` crate, which runs one actor thread per process. We call its
//! async API from our own threads through `futures_lite::future::block_on`,
//! so no async runtime is needed. A file is announced under the first 20
//! bytes of its id, with the peer's TCP port. Peers found here are treated
//! exactly like the tracker's: untrusted until their data verifies.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::Poll;
use std::time::SystemTime;

use futures_lite::future::block_on;
use futures_lite::StreamExt;
use mainline::async_dht::AsyncDht;
use mainline::{Dht, Id};
use thiserror::Error;

use crate::bounds::{DHT_ANNOUNCES_AT_ONCE, MAX_DHT_PEERS};
use crate::manifest::FileId;
use crate::sync::LockExt;

#[derive(Debug, Error)]
pub enum DhtError {
    #[error("cannot start the DHT node on UDP port {port}: {source}")]
    Start { port: u16, source: std::io::Error },
    #[error("no DHT bootstrap node could be resolved from {0:?}")]
    Bootstrap(Vec<String>),
    #[error("DHT announce failed: {0}")]
    Announce(String),
    #[error("the DHT needs an IPv4 bind address, not {0} (the mainline crate is IPv4 only)")]
    NotIpv4(IpAddr),
}

/// What `status` shows about the DHT.
#[derive(Debug, Clone)]
pub struct DhtStatus {
    pub node_id: String,
    pub local_addr: SocketAddrV4,
    pub routing_table: usize,
    /// When the last announce round finished, and how many files it announced.
    pub last_announce: Option<(SystemTime, usize)>,
}

/// The process's DHT node.
pub struct DhtNode {
    dht: AsyncDht,
    last_announce: Mutex<Option<(SystemTime, usize)>>,
    /// The nodes it joined through.
    bootstrap: Vec<SocketAddrV4>,
}

/// The DHT key of a file: the first 20 bytes of its id.
pub fn info_hash(id: &FileId) -> Id {
    let mut key = [0u8; 20];
    key.copy_from_slice(&id.0[..20]);
    Id::from(key)
}

impl DhtNode {
    /// Starts a node in server mode on UDP `bind:port`, bootstrapping from
    /// `bootstrap` (`HOST:PORT` each). An empty list makes this the first
    /// node of a new network; the public bootstrap routers are never used.
    /// An unspecified IPv6 bind (`::`) means every interface, as IPv4's.
    pub fn start(
        bind: impl Into<IpAddr>,
        port: u16,
        bootstrap: &[String],
    ) -> Result<Self, DhtError> {
        let bind = match bind.into() {
            IpAddr::V4(ip) => ip,
            IpAddr::V6(ip) if ip.is_unspecified() => Ipv4Addr::UNSPECIFIED,
            other => return Err(DhtError::NotIpv4(other)),
        };
        let mut builder = Dht::builder();
        builder.server_mode().bind_address(bind).port(port);
        let mut joined = Vec::new();
        if bootstrap.is_empty() {
            builder.no_bootstrap();
        } else {
            let resolved: Vec<SocketAddrV4> = bootstrap
                .iter()
                .filter_map(|b| b.to_socket_addrs().ok())
                .flatten()
                .filter_map(|a| match a {
                    SocketAddr::V4(v4) => Some(v4),
                    SocketAddr::V6(_) => None,
                })
                .collect();
            if resolved.is_empty() {
                return Err(DhtError::Bootstrap(bootstrap.to_vec()));
            }
            builder.bootstrap(&resolved);
            joined = resolved;
        }
        let dht = builder
            .build()
            .map_err(|source| DhtError::Start { port, source })?;
        Ok(DhtNode {
            dht: dht.as_async(),
            last_announce: Mutex::new(None),
            bootstrap: joined,
        })
    }

    /// Announces that this process serves each of `files` on TCP `port`,
    /// [`DHT_ANNOUNCES_AT_ONCE`] at a time (each is a lookup of its own;
    /// one after another, a round of 10,000 files would take hours).
    /// Returns how many announces succeeded.
    pub fn announce(&self, files: &[FileId], port: u16) -> Result<usize, DhtError> {
        let mut ok = 0;
        let mut last_error = None;
        for window in files.chunks(DHT_ANNOUNCES_AT_ONCE) {
            let announces = window
                .iter()
                .map(|id| Box::pin(self.dht.announce_peer(info_hash(id), Some(port))))
                .collect();
            for result in block_on(all(announces)) {
                match result {
                    Ok(_) => ok += 1,
                    Err(e) => last_error = Some(e.to_string()),
                }
            }
        }
        *self.last_announce.locked() = Some((SystemTime::now(), ok));
        match last_error {
            Some(e) if ok == 0 => Err(DhtError::Announce(e)),
            _ => Ok(ok),
        }
    }

    /// Peers announced for `id`. The lookup ends when the crate's iterative
    /// query does (its request timeout bounds it) or after `MAX_DHT_PEERS`.
    pub fn peers(&self, id: &FileId) -> Vec<SocketAddr> {
        block_on(async {
            let mut found: Vec<SocketAddr> = Vec::new();
            let mut stream = self.dht.get_peers(info_hash(id));
            while let Some(batch) = stream.next().await {
                for peer in batch {
                    let peer = SocketAddr::V4(peer);
                    if !found.contains(&peer) {
                        found.push(peer);
                    }
                }
                if found.len() >= MAX_DHT_PEERS {
                    break;
                }
            }
            found
        })
    }

    /// The nodes this one joined through, as the peers they may well be:
    /// a p2pshare peer's DHT node listens on its TCP port number unless
    /// told otherwise. In a DHT of two (a downloader that joined through
    /// the seeder's node, no tracker anywhere) no lookup can find the
    /// seeder: its announce can only be stored at the downloader's node,
    /// and a lookup never asks the node making it. Peers found this way
    /// are unpinned, like every DHT peer, and verified like any.
    pub fn bootstrap_peers(&self) -> Vec<SocketAddr> {
        self.bootstrap.iter().map(|&a| SocketAddr::V4(a)).collect()
    }

    pub fn status(&self) -> DhtStatus {
        let info = block_on(self.dht.info());
        let routing_table = block_on(self.dht.to_bootstrap()).len();
        DhtStatus {
            node_id: info.id().to_string(),
            local_addr: info.local_addr(),
            routing_table,
            last_announce: *self.last_announce.locked(),
        }
    }
}

/// The outputs of `futures`, in order, polled together until all are done.
async fn all<F: Future + Unpin>(mut futures: Vec<F>) -> Vec<F::Output> {
    let mut done: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, slot) in futures.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match Pin::new(future).poll(cx) {
                    Poll::Ready(output) => *slot = Some(output),
                    Poll::Pending => pending = true,
                }
            }
        }
        match pending {
            true => Poll::Pending,
            false => Poll::Ready(()),
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_hash_is_the_id_prefix() {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        let key = info_hash(&FileId(bytes));
        assert_eq!(key.as_bytes()[..], bytes[..20]);
    }

    #[test]
    fn peers_announced_on_a_loopback_network_are_found() {
        let first = DhtNode::start(Ipv4Addr::LOCALHOST, 0, &[]).expect("start first node");
        let boot = first.status().local_addr.to_string();
        let a =
            DhtNode::start(Ipv4Addr::LOCALHOST, 0, std::slice::from_ref(&boot)).expect("start a");
        let b = DhtNode::start(Ipv4Addr::LOCALHOST, 0, &[boot]).expect("start b");
        let id = FileId([9; 32]);
        assert_eq!(a.announce(&[id], 4242).expect("announce"), 1);
        let peers = b.peers(&id);
        assert!(
            peers.contains(&"127.0.0.1:4242".parse().expect("addr")),
            "{peers:?}"
        );
        assert!(a.status().last_announce.is_some());
        // A round of many files: all announced, windows at a time.
        let many: Vec<FileId> = (0..40u8).map(|i| FileId([i; 32])).collect();
        assert_eq!(a.announce(&many, 4243).expect("announce"), many.len());
        let peers = b.peers(&many[39]);
        assert!(
            peers.contains(&"127.0.0.1:4243".parse().expect("addr")),
            "{peers:?}"
        );
    }
}
