//! The registry's rules, one test each.

use super::*;
use crate::protocol::{FileSummary, PeerEntry};
use crate::sync::LockExt;

/// A peer at 127.0.0.1:`port` with an id of its own.
pub(super) fn addr(port: u16) -> PeerKey {
    PeerKey {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        id: PeerId([port as u8; 16]),
    }
}

pub(super) const TTL: Duration = Duration::from_secs(10);

fn addrs(rows: Vec<PeerEntry>) -> Vec<PeerKey> {
    rows.into_iter()
        .map(|p| PeerKey {
            addr: p.addr,
            id: p.id.expect("the tracker lists ids"),
        })
        .collect()
}

#[test]
fn partial_peers_are_listed_as_such_and_turn_complete() {
    let r = Registry::new(TTL);
    let now = Instant::now();
    let id = FileId([4; 32]);
    r.register(addr(1), id, 5, Some("a"), true, now).unwrap();
    r.register(addr(2), id, 5, Some("a"), false, now).unwrap();
    let state = |r: &Registry| {
        let mut rows: Vec<(u16, bool)> = r
            .peers(&id, now)
            .iter()
            .map(|p| (p.addr.port(), p.complete))
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(state(&r), [(1, true), (2, false)]);
    assert_eq!(
        r.search("a", now).rows[0].peers,
        2,
        "the swarm counts partial peers"
    );
    r.register(addr(2), id, 5, Some("a"), true, now).unwrap();
    assert_eq!(state(&r), [(1, true), (2, true)]);
    assert_eq!(
        r.files.locked().registrations,
        2,
        "a refresh is no new registration"
    );
}

#[test]
fn register_search_peers_unregister() {
    let r = Registry::new(TTL);
    let now = Instant::now();
    let id = FileId([1; 32]);
    r.register(addr(1), id, 5, Some("Hello.txt"), true, now)
        .unwrap();
    r.register(addr(2), id, 5, Some("other-name"), true, now)
        .unwrap();
    let found = r.search("hello", now).rows;
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].name.as_str(), found[0].peers), ("Hello.txt", 2));
    assert_eq!(r.search("zzz", now).rows, vec![]);
    assert_eq!(r.peers(&id, now).len(), 2);
    assert!(r.unregister(addr(1), &id));
    assert!(!r.unregister(addr(1), &id));
    assert_eq!(addrs(r.peers(&id, now)), vec![addr(2)]);
    assert_eq!(r.info(&"0101".parse().unwrap(), now).rows.len(), 1);
    assert_eq!(
        r.info(&id.to_hex().parse().unwrap(), now).rows[0].name,
        "other-name",
        "the name of a peer still there"
    );
    assert!(r.info(&"0102".parse().unwrap(), now).rows.is_empty());
    assert_eq!(r.remove_peer(addr(2)), 1);
    assert_eq!(r.search("", now).rows, vec![]);
}

#[test]
fn a_false_size_claimed_first_locks_nobody_out() {
    let r = Registry::new(TTL);
    let now = Instant::now();
    let id = FileId([2; 32]);
    r.register(addr(1), id, 5, Some("a"), true, now).unwrap();
    r.register(addr(2), id, 6, Some("a"), true, now).unwrap();
    r.register(addr(3), id, 6, Some("a"), true, now).unwrap();
    let mut peers = addrs(r.peers(&id, now));
    peers.sort();
    assert_eq!(peers, vec![addr(1), addr(2), addr(3)]);
    let rows: Vec<(u64, u32)> = r
        .search("a", now)
        .rows
        .iter()
        .map(|f| (f.size, f.peers))
        .collect();
    assert_eq!(
        rows,
        [(6, 2), (5, 1)],
        "one row per claimed size, most peers first"
    );
    assert_eq!(r.info(&id.to_hex().parse().unwrap(), now).rows.len(), 2);
}

/// A file id numbered `n`.
pub(super) fn nth(n: usize) -> FileId {
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&(n as u64).to_le_bytes());
    FileId(id)
}

/// Alone, an identity registers its whole share, and an address (with
/// several identities) its own; then both are refused, others are not.
#[test]
fn one_identity_and_one_address_hold_their_shares() {
    let r = Registry::new(TTL);
    let now = Instant::now();
    let key = |id: u8, port: u16| PeerKey {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        id: PeerId([id; 16]),
    };
    let mut n = 0;
    let mut held = Vec::new();
    'identities: for id in 0..10 {
        let first = n;
        loop {
            match r.register(key(id, 1), nth(n), 1, Some("f"), true, now) {
                Ok(()) => n += 1,
                Err(RegistryError::TooManyFromIdentity(_)) => break,
                Err(RegistryError::TooManyFromAddress(_)) => break 'identities,
                Err(e) => panic!("{e}"),
            }
        }
        held.push(n - first);
    }
    assert_eq!(held[0], TRACKER_MAX_PER_IDENTITY, "alone, its whole share");
    assert!(
        n > TRACKER_MAX_PER_IDENTITY && n <= TRACKER_MAX_PER_ADDRESS,
        "{n}: more than one identity's, at most the address's share"
    );
    let other = PeerKey {
        addr: SocketAddr::from(([127, 0, 0, 2], 1)),
        id: PeerId([7; 16]),
    };
    r.register(other, nth(n), 1, Some("f"), true, now).unwrap();
    r.register(key(0, 1), nth(0), 1, Some("f"), false, now)
        .expect("a refresh is no new registration");
    assert_eq!(r.remove_peer(key(0, 1)), TRACKER_MAX_PER_IDENTITY);
    r.register(key(2, 1), nth(n + 1), 1, Some("f"), true, now)
        .expect("room again");
}

/// Ten addresses with many identities each, registering new files one
/// after another until refused, leave room: they stop at 89% of the files
/// (each takes its share of what the others left), and a newcomer, one
/// identity, still registers over 1,000. (On main they filled all 100,000
/// and locked everybody out.)
#[test]
fn ten_addresses_cannot_fill_the_tracker() {
    let r = Registry::new(TTL);
    let now = Instant::now();
    let mut n = 0;
    for host in 1..=10u8 {
        'identities: for id in 0..u8::MAX {
            let key = PeerKey {
                addr: SocketAddr::from(([10, 0, 0, host], 1)),
                id: PeerId([host ^ id.rotate_left(4); 16]),
            };
            loop {
                match r.register(key, nth(n), 1, Some("f"), true, now) {
                    Ok(()) => n += 1,
                    Err(RegistryError::TooManyFromIdentity(_)) => break,
                    Err(RegistryError::TooManyFromAddress(_)) => break 'identities,
                    Err(e) => panic!("{e}"),
                }
            }
        }
    }
    let files = r.files.locked().by_id.len();
    assert!(files < TRACKER_MAX_FILES * 9 / 10, "{files} files");
    let newcomer = PeerKey {
        addr: SocketAddr::from(([10, 0, 1, 1], 1)),
        id: PeerId([0xee; 16]),
    };
    let mut got = 0;
    while r
        .register(newcomer, nth(n + got), 1, Some("f"), true, now)
        .is_ok()
    {
        got += 1;
    }
    assert!(got >= 1_000, "the newcomer got {got}");
}

/// One address registering one file under many ports and ids gets
/// `TRACKER_MAX_PER_FILE_ADDRESS` of its peers and no more, so it cannot
/// fill the file's list: another address still gets in, and the same
/// address still registers other files and refreshes what it has.
#[test]
fn one_address_cannot_fill_a_files_peers() {
    let r = Registry::new(TTL);
    let now = Instant::now();
    let id = FileId([3; 32]);
    for port in 1..=TRACKER_MAX_PER_FILE_ADDRESS as u16 {
        r.register(addr(port), id, 1, Some("f"), true, now).unwrap();
    }
    let one_more = addr(TRACKER_MAX_PER_FILE_ADDRESS as u16 + 1);
    assert_eq!(
        r.register(one_more, id, 1, Some("f"), true, now),
        Err(RegistryError::TooManyAtAddress(
            TRACKER_MAX_PER_FILE_ADDRESS
        ))
    );
    let elsewhere = PeerKey {
        addr: SocketAddr::from(([127, 0, 0, 2], 1)),
        id: PeerId([9; 16]),
    };
    r.register(elsewhere, id, 1, Some("f"), true, now).unwrap();
    r.register(one_more, FileId([4; 32]), 1, Some("g"), true, now)
        .unwrap();
    r.register(addr(1), id, 1, Some("f"), false, now)
        .expect("a refresh is no new peer");
    assert_eq!(r.peers(&id, now).len(), TRACKER_MAX_PER_FILE_ADDRESS + 1);
}

/// Sixteen addresses, each registering one file under fresh ids and ports
/// until refused, leave room in its list of 1,000 peers: a seventeenth
/// address still registers. (With a fixed 16 per address, 63 addresses
/// filled it; with a fixed 64, 16 would.)
#[test]
fn sixteen_addresses_cannot_fill_a_files_peers() {
    let r = Registry::new(TTL);
    let now = Instant::now();
    let id = FileId([6; 32]);
    let key = |host: u8, port: u16| PeerKey {
        addr: SocketAddr::from(([10, 0, 0, host], port)),
        id: PeerId([host ^ (port as u8); 16]),
    };
    for host in 1..=16 {
        let mut port = 1;
        while r
            .register(key(host, port), id, 1, Some("f"), true, now)
            .is_ok()
        {
            port += 1;
        }
    }
    let listed = r.peers(&id, now).len();
    assert!(
        listed < TRACKER_MAX_PEERS_PER_FILE * 7 / 10,
        "{listed} peers"
    );
    r.register(key(17, 1), id, 1, Some("f"), true, now)
        .expect("a newcomer gets in");
}

#[test]
fn stale_peers_are_hidden_then_expired() {
    let r = Registry::new(TTL);
    let t0 = Instant::now();
    let id = FileId([3; 32]);
    r.register(addr(1), id, 5, Some("a"), true, t0).unwrap();
    r.register(addr(2), id, 5, Some("a"), true, t0 + Duration::from_secs(8))
        .unwrap();
    let later = t0 + Duration::from_secs(15);
    assert_eq!(addrs(r.peers(&id, later)), vec![addr(2)]);
    assert_eq!(r.search("", later).rows[0].peers, 1);
    assert_eq!(r.expire(later), 1);
    assert_eq!(r.expire(t0 + Duration::from_secs(30)), 1);
    assert_eq!(r.search("", later).rows, vec![]);
    assert_eq!(r.files.locked().registrations, 0);
}

#[test]
fn snapshot_copies_live_files_sorted_and_capped() {
    let r = Registry::new(TTL);
    let t0 = Instant::now();
    let at = |secs| t0 + Duration::from_secs(secs);
    r.register(addr(1), FileId([3; 32]), 9, Some("stale"), true, t0)
        .unwrap();
    r.register(addr(1), FileId([1; 32]), 5, Some("b"), true, at(8))
        .unwrap();
    r.register(addr(2), FileId([1; 32]), 5, Some("b"), true, at(12))
        .unwrap();
    r.register(addr(3), FileId([1; 32]), 5, Some("b"), true, at(10))
        .unwrap();
    r.register(addr(1), FileId([2; 32]), 7, Some("a"), true, at(8))
        .unwrap();
    let s = r.snapshot(at(15), 10, 2);
    assert_eq!((s.total_files, s.registrations), (3, 5));
    let names: Vec<_> = s.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, vec!["a", "b"]);
    let b = &s.files[1];
    assert_eq!((b.size, b.peer_count), (5, 3));
    // Capped at the 2 freshest peers.
    let ages: Vec<_> = b
        .peers
        .iter()
        .map(|(a, d, _)| (a.addr.port(), d.as_secs()))
        .collect();
    assert_eq!(ages, vec![(2, 3), (3, 5)]);
    assert_eq!(r.snapshot(at(15), 1, 10).files.len(), 1);
}

#[test]
fn registrations_are_counted_exactly() {
    let r = Registry::new(TTL);
    let now = Instant::now();
    for port in 1..=3 {
        for n in 0..4 {
            r.register(addr(port), FileId([n; 32]), 1, Some("f"), true, now)
                .unwrap();
            r.register(addr(port), FileId([n; 32]), 1, Some("f"), true, now)
                .unwrap();
        }
    }
    assert_eq!(r.files.locked().registrations, 12);
    r.unregister(addr(1), &FileId([0; 32]));
    assert_eq!(r.files.locked().registrations, 11);
    assert_eq!(r.remove_peer(addr(2)), 4);
    assert_eq!(r.files.locked().registrations, 7);
}

#[test]
fn unlisted_files_are_found_by_peers_only() {
    let r = Registry::new(TTL);
    let now = Instant::now();
    let (hidden, named) = (FileId([0xaa; 32]), FileId([0xab; 32]));
    r.register(addr(1), hidden, 5, None, true, now).unwrap();
    r.register(addr(1), named, 5, Some("aa"), true, now)
        .unwrap();
    assert_eq!(addrs(r.peers(&hidden, now)), [addr(1)]);
    let listed = |rows: Vec<FileSummary>| rows.into_iter().map(|f| f.id).collect::<Vec<_>>();
    assert_eq!(listed(r.search("", now).rows), [named]);
    assert_eq!(listed(r.info(&"abab".parse().unwrap(), now).rows), [named]);
    assert!(
        r.info(&"aaaa".parse().unwrap(), now).rows.is_empty(),
        "by a prefix"
    );
    let full = hidden.to_hex().parse().unwrap();
    assert!(
        r.info(&full, now).rows.is_empty(),
        "not even by its whole id"
    );
    assert_eq!(r.snapshot(now, 10, 10).files.len(), 1);
    // A named registration of the same id lists it from then on.
    r.register(addr(2), hidden, 5, Some("late"), true, now)
        .unwrap();
    assert_eq!(listed(r.search("late", now).rows), [hidden]);
}

/// A registration refused at a cap does not name an unlisted entry.
#[test]
fn a_refused_registration_names_nothing() {
    let r = Registry::new(TTL);
    let now = Instant::now();
    let hidden = FileId([0xcd; 32]);
    for port in 1..=TRACKER_MAX_PER_FILE_ADDRESS as u16 {
        r.register(addr(port), hidden, 1, None, true, now).unwrap();
    }
    let one_more = addr(TRACKER_MAX_PER_FILE_ADDRESS as u16 + 1);
    assert!(r
        .register(one_more, hidden, 1, Some("x"), true, now)
        .is_err());
    assert!(
        r.search("x", now).rows.is_empty(),
        "named by a refused REGISTER"
    );
}
