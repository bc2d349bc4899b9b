//! Turning what the user typed (`NAME`, an id or id prefix, or a share link)
//! into one file id, a name to save it under, and the peers that have it,
//! from the tracker and the DHT together. Either source alone is enough.

use std::net::SocketAddr;

use super::PeerError;
use crate::dht::DhtNode;
use crate::link::ShareLink;
use crate::manifest::FileId;
use crate::protocol::FileSummary;

/// A file to download and where to get it.
#[derive(Debug, Clone)]
pub struct Located {
    pub id: FileId,
    pub name: String,
    /// The size the tracker or link claims (the manifest is authoritative).
    pub size: Option<u64>,
    /// Every distinct peer, tracker's first.
    pub peers: Vec<SocketAddr>,
    pub from_tracker: usize,
    pub from_dht: usize,
}

/// What the user asked for, before peers are looked up.
pub struct Wanted {
    pub id: FileId,
    pub name: Option<String>,
    pub size: Option<u64>,
}

/// Resolves `target` against the tracker's file list when there is one. A
/// link or full id needs no tracker; a name or prefix does.
pub fn wanted(
    target: &str,
    tracker_files: Result<Vec<FileSummary>, PeerError>,
) -> Result<Wanted, PeerError> {
    if ShareLink::is_link(target) {
        let link: ShareLink = target.parse()?;
        let known = tracker_files
            .ok()
            .and_then(|files| files.into_iter().find(|f| f.id == link.id));
        return Ok(Wanted {
            id: link.id,
            name: link.name.or_else(|| known.as_ref().map(|f| f.name.clone())),
            size: link.size.or(known.map(|f| f.size)),
        });
    }
    let full_id = target.parse::<FileId>().ok();
    match (
        tracker_files.and_then(|files| resolve(target, files)),
        full_id,
    ) {
        (Ok(file), _) => Ok(Wanted {
            id: file.id,
            name: Some(file.name),
            size: Some(file.size),
        }),
        (Err(PeerError::NotFound(_) | PeerError::Tracker { .. }), Some(id)) => Ok(Wanted {
            id,
            name: None,
            size: None,
        }),
        (Err(e), _) => Err(e),
    }
}

/// Merges peer lists, keeping the first occurrence of each address.
pub fn merge_peers(
    tracker: Vec<SocketAddr>,
    dht: Vec<SocketAddr>,
) -> (Vec<SocketAddr>, usize, usize) {
    let from_tracker = tracker.len();
    let mut all = tracker;
    let mut from_dht = 0;
    for peer in dht {
        if !all.contains(&peer) {
            all.push(peer);
            from_dht += 1;
        }
    }
    (all, from_tracker, from_dht)
}

/// Whether `peer` is this process, listening on `listen`: the same port on
/// a loopback address or on the address we are bound to. (Behind a remote
/// tracker our own entry carries an address we cannot recognise cheaply; a
/// download from ourselves then still works, it is just wasted effort.)
pub fn is_self(peer: SocketAddr, listen: SocketAddr) -> bool {
    peer.port() == listen.port() && (peer.ip().is_loopback() || peer.ip() == listen.ip())
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

    #[test]
    fn links_and_full_ids_need_no_tracker() {
        let down = || {
            Err(PeerError::Tracker {
                addr: "t".into(),
                source: crate::error::Error::Closed,
            })
        };
        let link = ShareLink {
            id: FileId([5; 32]),
            name: Some("x y".into()),
            size: Some(9),
        };
        let w = wanted(&link.to_string(), down()).expect("link works without tracker");
        assert_eq!(
            (w.id, w.name.as_deref(), w.size),
            (FileId([5; 32]), Some("x y"), Some(9))
        );
        let w = wanted(&FileId([6; 32]).to_string(), down()).expect("id works without tracker");
        assert_eq!((w.id, w.name), (FileId([6; 32]), None));
        assert!(matches!(
            wanted("a.txt", down()),
            Err(PeerError::Tracker { .. })
        ));
        let w = wanted("a.txt", Ok(files())).expect("name via tracker");
        assert_eq!(w.name.as_deref(), Some("a.txt"));
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
        let (all, t, d) = merge_peers(vec![a], vec![a, b, b]);
        assert_eq!((all, t, d), (vec![a, b], 1, 1));
    }
}
