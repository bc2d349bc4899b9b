//! Turning what the user typed (`NAME`, an id or id prefix, a share link or
//! a ticket) into one file id, a name to save it under, and the peers that
//! have it: a ticket's sender, the tracker's and the DHT's. Any one source
//! is enough.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::PeerError;
use crate::bounds::CONNECT_TIMEOUT;
use crate::dht::DhtNode;
use crate::identity::PeerId;
use crate::link::ShareLink;
use crate::manifest::FileId;
use crate::net::tls::Tls;
use crate::private::Secret;
use crate::protocol::message::IdPrefix;
use crate::protocol::Connection;
use crate::protocol::FileSummary;
use crate::ticket::Ticket;

/// A peer to download from: where it listens, and the id its certificate
/// must have when that is known (the tracker's rows say; the DHT does not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    pub addr: SocketAddr,
    pub id: Option<PeerId>,
}

impl Source {
    pub fn unpinned(addr: SocketAddr) -> Source {
        Source { addr, id: None }
    }
}

/// A file to download and where to get it.
#[derive(Debug, Clone)]
pub struct Located {
    pub id: FileId,
    /// A private share's secret (from its link).
    pub secret: Option<Secret>,
    pub name: String,
    /// The size the tracker (by most peers) or link claims, for display.
    pub size: Option<u64>,
    /// Every size claimed for it; the manifest must declare one of them (an
    /// empty list checks nothing: a bare id with no tracker to ask).
    pub sizes: Vec<u64>,
    /// Every distinct peer, tracker's first.
    pub peers: Vec<Source>,
    pub from_tracker: usize,
    pub from_dht: usize,
}

/// What the user asked for, before peers are looked up.
pub struct Wanted {
    pub id: FileId,
    pub secret: Option<Secret>,
    /// A ticket's sender, at each address it gave.
    pub direct: Vec<Source>,
    pub name: Option<String>,
    /// As in [`Located`].
    pub size: Option<u64>,
    pub sizes: Vec<u64>,
}

/// The tracker's answers `wanted` needs: files by name, and by id prefix.
pub trait Catalogue {
    /// Files whose name contains `text`.
    fn search(&self, text: &str) -> Result<Vec<FileSummary>, PeerError>;
    /// Files whose id starts with `prefix`.
    fn info(&self, prefix: &IdPrefix) -> Result<Vec<FileSummary>, PeerError>;
}

/// Resolves `target`, asking the tracker only what it must: nothing for a
/// link that names its file and size, `INFO <id>` for a full id (or a link
/// without name or size), and for a name (or id prefix) `SEARCH <name>`
/// (and `INFO <prefix>`). A link or full id works without a tracker; a name
/// or prefix does not. A private link is never looked up by its id (the
/// tracker does not list it, and asking would tell it which file).
pub fn wanted(target: &str, tracker: &dyn Catalogue) -> Result<Wanted, PeerError> {
    if Ticket::is_ticket(target) {
        let t: Ticket = target.parse()?;
        return Ok(Wanted {
            id: t.id,
            secret: t.secret,
            direct: t
                .addrs
                .iter()
                .map(|&addr| Source {
                    addr,
                    id: Some(t.peer),
                })
                .collect(),
            name: Some(t.name),
            size: Some(t.size),
            sizes: vec![t.size],
        });
    }
    if ShareLink::is_link(target) {
        let link: ShareLink = target.parse()?;
        let known = match (&link.name, link.size, link.secret) {
            (Some(_), Some(_), _) | (_, _, Some(_)) => Vec::new(),
            _ => known_rows(tracker, &link.id),
        };
        let sizes = match link.size {
            Some(size) => vec![size],
            None => known.iter().map(|f| f.size).collect(),
        };
        return Ok(Wanted {
            id: link.id,
            secret: link.secret,
            direct: Vec::new(),
            name: link.name.or_else(|| known.first().map(|f| f.name.clone())),
            size: link.size.or(known.first().map(|f| f.size)),
            sizes,
        });
    }
    if let Ok(id) = target.parse::<FileId>() {
        let known = known_rows(tracker, &id);
        return Ok(Wanted {
            id,
            secret: None,
            direct: Vec::new(),
            name: known.first().map(|f| f.name.clone()),
            size: known.first().map(|f| f.size),
            sizes: known.iter().map(|f| f.size).collect(),
        });
    }
    let mut files: Vec<FileSummary> = tracker
        .search(target)?
        .into_iter()
        .filter(|f| f.name == target)
        .collect();
    if let Ok(prefix) = target.parse::<IdPrefix>() {
        files.extend(tracker.info(&prefix)?);
    }
    let rows = files.clone();
    let file = resolve(target, files)?;
    Ok(Wanted {
        id: file.id,
        secret: None,
        direct: Vec::new(),
        sizes: sizes_of(&rows, file.id),
        name: Some(file.name),
        size: Some(file.size),
    })
}

/// The sizes claimed for `id` among `rows`.
fn sizes_of(rows: &[FileSummary], id: FileId) -> Vec<u64> {
    rows.iter().filter(|f| f.id == id).map(|f| f.size).collect()
}

/// The tracker's rows for `id` (one per claimed size, most peers first),
/// if it is up and knows it.
fn known_rows(tracker: &dyn Catalogue, id: &FileId) -> Vec<FileSummary> {
    let Ok(prefix) = id.to_hex().parse::<IdPrefix>() else {
        return Vec::new();
    };
    match tracker.info(&prefix) {
        Ok(files) => files.into_iter().filter(|f| f.id == *id).collect(),
        Err(e) => {
            log::info!("{e}; going on without the tracker's name and size");
            Vec::new()
        }
    }
}

/// Merges peer lists, each address once: the tracker's rows (with their
/// ids) first, an address listed again dropped whatever id it comes with
/// (the first one is kept: one process listens there, so one id can be
/// right), then the DHT's addresses the tracker did not list. Returns them
/// with how many came from each. A hostile tracker repeating a silent
/// peer's address therefore costs one manifest request, not one per row.
pub fn merge_peers(tracker: Vec<Source>, dht: Vec<SocketAddr>) -> (Vec<Source>, usize, usize) {
    let mut all: Vec<Source> = Vec::with_capacity(tracker.len() + dht.len());
    for peer in tracker {
        if !all.iter().any(|p| p.addr == peer.addr) {
            all.push(peer);
        }
    }
    let from_tracker = all.len();
    for addr in dht {
        if !all.iter().any(|p| p.addr == addr) {
            all.push(Source::unpinned(addr));
        }
    }
    let from_dht = all.len() - from_tracker;
    (all, from_tracker, from_dht)
}

/// Whether `peer` is this process, listening on `listen`: the same port on
/// a loopback address or on the address we are bound to. (Behind a remote
/// tracker our own entry carries an address we cannot recognise cheaply; a
/// download from ourselves then still works, it is just wasted effort.)
pub fn is_self(peer: SocketAddr, listen: SocketAddr) -> bool {
    peer.port() == listen.port() && (peer.ip().is_loopback() || peer.ip() == listen.ip())
}

/// The first of `sources` (one peer's addresses, from a ticket) to complete
/// a TLS handshake with its pinned id. All are tried at once, so an address
/// that is unreachable from here costs nothing; all fail within
/// [`CONNECT_TIMEOUT`].
pub fn first_reachable(sources: &[Source], tls: &Tls) -> Option<Source> {
    let (tx, rx) = mpsc::channel();
    let mut tried = 0;
    for &source in sources {
        let (tx, tls) = (tx.clone(), tls.clone());
        let spawned = thread::Builder::new().name("reach".into()).spawn(move || {
            let addr = source.addr.to_string();
            let ok = Connection::connect_tls(&addr, &tls, source.id, CONNECT_TIMEOUT).is_ok();
            let _ = tx.send(ok.then_some(source));
        });
        tried += usize::from(spawned.is_ok());
    }
    let deadline = Instant::now() + CONNECT_TIMEOUT + Duration::from_secs(1);
    for _ in 0..tried {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Some(source)) => return Some(source),
            Ok(None) => {}
            Err(_) => break,
        }
    }
    None
}

/// Peers for `id` from the DHT, if it is on.
pub fn dht_peers(dht: Option<&DhtNode>, id: &FileId) -> Vec<SocketAddr> {
    dht.map(|d| d.peers(id)).unwrap_or_default()
}

/// Picks the file `target` names among `files`: an exact name or an id
/// prefix (at least 4 hex digits). Several distinct matches are ambiguous.
pub fn resolve(target: &str, files: Vec<FileSummary>) -> Result<FileSummary, PeerError> {
    let prefix = target.to_ascii_lowercase();
    let is_prefix = prefix.len() >= 4 && prefix.bytes().all(|b| b.is_ascii_hexdigit());
    let mut matches: Vec<FileSummary> = files
        .into_iter()
        .filter(|f| f.name == target || (is_prefix && f.id.to_hex().starts_with(&prefix)))
        .collect();
    matches.sort_by_key(|f| f.id);
    matches.dedup_by_key(|f| f.id);
    match matches.len() {
        0 => Err(PeerError::NotFound(target.to_string())),
        1 => Ok(matches.remove(0)),
        _ => Err(PeerError::Ambiguous {
            target: target.to_string(),
            candidates: matches,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(n: u8, name: &str) -> FileSummary {
        FileSummary {
            id: FileId([n; 32]),
            size: 1,
            peers: 1,
            name: name.into(),
        }
    }

    fn files() -> Vec<FileSummary> {
        vec![
            file(0xaa, "a.txt"),
            file(0xbb, "b.txt"),
            file(0xbc, "b.txt"),
        ]
    }

    #[test]
    fn resolve_by_name_id_and_prefix() {
        let id = |r: Result<FileSummary, PeerError>| r.map(|f| f.id).ok();
        assert_eq!(id(resolve("a.txt", files())), Some(FileId([0xaa; 32])));
        assert_eq!(id(resolve("bbbb", files())), Some(FileId([0xbb; 32])));
        assert_eq!(
            id(resolve(&"BC".repeat(32), files())),
            Some(FileId([0xbc; 32]))
        );
        assert!(
            matches!(resolve("b.txt", files()), Err(PeerError::Ambiguous { candidates, .. }) if candidates.len() == 2)
        );
        assert!(matches!(
            resolve("aaa", files()),
            Err(PeerError::NotFound(_))
        ));
        assert!(matches!(
            resolve("c.txt", files()),
            Err(PeerError::NotFound(_))
        ));
    }

    /// A fake tracker: `files`, or down; counts what it is asked.
    struct Fake {
        files: Option<Vec<FileSummary>>,
        asked: std::cell::RefCell<Vec<String>>,
    }

    impl Fake {
        fn up(files: Vec<FileSummary>) -> Fake {
            Fake {
                files: Some(files),
                asked: Default::default(),
            }
        }

        fn down() -> Fake {
            Fake {
                files: None,
                asked: Default::default(),
            }
        }

        fn answer(
            &self,
            keep: impl Fn(&FileSummary) -> bool,
        ) -> Result<Vec<FileSummary>, PeerError> {
            match &self.files {
                Some(files) => Ok(files.iter().filter(|f| keep(f)).cloned().collect()),
                None => Err(PeerError::Tracker {
                    addr: "t".into(),
                    source: crate::error::Error::Closed,
                }),
            }
        }
    }

    impl Catalogue for Fake {
        fn search(&self, text: &str) -> Result<Vec<FileSummary>, PeerError> {
            self.asked.borrow_mut().push(format!("SEARCH {text}"));
            self.answer(|f| f.name.contains(text))
        }

        fn info(&self, prefix: &IdPrefix) -> Result<Vec<FileSummary>, PeerError> {
            self.asked.borrow_mut().push(format!("INFO {prefix}"));
            self.answer(|f| prefix.matches(&f.id))
        }
    }

    #[test]
    fn links_and_full_ids_need_no_tracker() {
        let link = ShareLink {
            id: FileId([5; 32]),
            name: Some("x y".into()),
            size: Some(9),
            secret: None,
        };
        let down = Fake::down();
        let w = wanted(&link.to_string(), &down).expect("link works without tracker");
        assert_eq!(
            (w.id, w.name.as_deref(), w.size),
            (FileId([5; 32]), Some("x y"), Some(9))
        );
        assert!(down.asked.borrow().is_empty(), "a whole link asks nothing");
        let private = ShareLink {
            name: None,
            size: None,
            secret: Some(crate::private::Secret([1; 16])),
            ..link
        };
        let up = Fake::up(Vec::new());
        let w = wanted(&private.to_string(), &up).expect("a private link");
        assert_eq!(w.secret, private.secret);
        assert!(
            up.asked.borrow().is_empty(),
            "a private id is never asked about"
        );
        let w = wanted(&FileId([6; 32]).to_string(), &down).expect("id works without tracker");
        assert_eq!((w.id, w.name), (FileId([6; 32]), None));
        assert!(matches!(
            wanted("a.txt", &down),
            Err(PeerError::Tracker { .. })
        ));
        let w = wanted("a.txt", &Fake::up(files())).expect("name via tracker");
        assert_eq!(w.name.as_deref(), Some("a.txt"));
    }

    #[test]
    fn the_tracker_is_asked_only_what_is_needed() {
        let up = Fake::up(files());
        let id = FileId([0xbb; 32]);
        let w = wanted(&id.to_string(), &up).expect("a full id");
        assert_eq!((w.name.as_deref(), w.size), (Some("b.txt"), Some(1)));
        assert_eq!(*up.asked.borrow(), [format!("INFO {id}")]);

        let up = Fake::up(files());
        let bare = format!("p2pshare:{id}");
        assert_eq!(
            wanted(&bare, &up).expect("a bare link").name.as_deref(),
            Some("b.txt")
        );
        assert_eq!(*up.asked.borrow(), [format!("INFO {id}")]);

        let up = Fake::up(files());
        assert!(wanted("a.txt", &up).is_ok());
        assert_eq!(
            *up.asked.borrow(),
            ["SEARCH a.txt"],
            "never the whole catalogue"
        );

        let up = Fake::up(files());
        assert_eq!(
            wanted("bcbc", &up).expect("a prefix").id,
            FileId([0xbc; 32])
        );
        assert_eq!(*up.asked.borrow(), ["SEARCH bcbc", "INFO bcbc"]);
    }

    #[test]
    fn only_our_own_address_is_self() {
        let me: SocketAddr = "0.0.0.0:9001".parse().expect("addr");
        let is = |a: &str| is_self(a.parse().expect("addr"), me);
        assert!(is("127.0.0.1:9001") && is("0.0.0.0:9001"));
        assert!(!is("127.0.0.1:9002") && !is("192.0.2.7:9001"));
    }

    #[test]
    fn merged_peers_are_distinct_and_counted_by_source() {
        let a: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let b: SocketAddr = "127.0.0.1:2".parse().expect("addr");
        let pinned = Source {
            addr: a,
            id: Some(PeerId([1; 16])),
        };
        let (all, t, d) = merge_peers(vec![pinned, pinned], vec![a, b, b]);
        assert_eq!((all, t, d), (vec![pinned, Source::unpinned(b)], 1, 1));
    }

    /// A tracker's rows repeating an address, with other ids or none, give
    /// that address once, with the first row's id.
    #[test]
    fn a_tracker_address_listed_again_counts_once() {
        let a: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let b: SocketAddr = "127.0.0.1:2".parse().expect("addr");
        let first = Source {
            addr: a,
            id: Some(PeerId([1; 16])),
        };
        let other = Source {
            addr: a,
            id: Some(PeerId([2; 16])),
        };
        let rows = vec![
            first,
            other,
            Source::unpinned(a),
            Source::unpinned(b),
            first,
        ];
        let (all, t, d) = merge_peers(rows, vec![a]);
        assert_eq!((all, t, d), (vec![first, Source::unpinned(b)], 2, 0));
    }
}
