//! Resolving targets, merging peer lists, and what the tracker is asked.

use super::*;
use crate::identity::PeerId;

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
    // Three hex digits: too short a prefix, and said so.
    assert!(matches!(
        resolve("aaa", files()),
        Err(PeerError::ShortPrefix(_))
    ));
    assert!(matches!(
        resolve("c.txt", files()),
        Err(PeerError::NotFound(_))
    ));
}

/// A squatter's false size tied with the real seeder's (1 peer each),
/// beside another file of the same name: the listing shows each id
/// once with all its peers, and a size most peers claim (on a tie, the
/// smaller). With more peers behind it, the true size wins.
#[test]
fn an_ambiguous_name_lists_each_id_with_all_its_peers() {
    let row = |n: u8, size: u64, peers: u32| FileSummary {
        size,
        peers,
        ..file(n, "real.bin")
    };
    let candidates = |files| match resolve("real.bin", files) {
        Err(PeerError::Ambiguous { candidates, .. }) => candidates
            .iter()
            .map(|f| (f.id.0[0], f.size, f.peers))
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    let tied = vec![row(0xaa, 999, 1), row(0xaa, 741, 1), row(0xbb, 5, 1)];
    assert_eq!(candidates(tied), [(0xaa, 741, 2), (0xbb, 5, 1)]);
    let real = vec![row(0xaa, 999, 1), row(0xaa, 1741, 2), row(0xbb, 5, 1)];
    assert_eq!(candidates(real), [(0xaa, 1741, 3), (0xbb, 5, 1)]);
    // SEARCH and INFO may both give a row: it counts once.
    let twice = vec![row(0xaa, 741, 2), row(0xaa, 741, 2)];
    let one = resolve("real.bin", twice).expect("one id");
    assert_eq!((one.size, one.peers), (741, 2));
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

    fn answer(&self, keep: impl Fn(&FileSummary) -> bool) -> Result<Vec<FileSummary>, PeerError> {
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
    let pinned = PeerAddr::direct(a, Some(PeerId([1; 16])));
    let (all, t, d) = merge_peers(vec![pinned.clone(), pinned.clone()], vec![a, b, b]);
    assert_eq!((all, t, d), (vec![pinned, PeerAddr::unpinned(b)], 1, 1));
}

/// A tracker's rows repeating an address, with other ids or none, give
/// that address once, with the first row's id.
#[test]
fn a_tracker_address_listed_again_counts_once() {
    let a: SocketAddr = "127.0.0.1:1".parse().expect("addr");
    let b: SocketAddr = "127.0.0.1:2".parse().expect("addr");
    let first = PeerAddr::direct(a, Some(PeerId([1; 16])));
    let other = PeerAddr::direct(a, Some(PeerId([2; 16])));
    let rows = vec![
        first.clone(),
        other,
        PeerAddr::unpinned(a),
        PeerAddr::unpinned(b),
        first.clone(),
    ];
    let (all, t, d) = merge_peers(rows, vec![a]);
    assert_eq!((all, t, d), (vec![first, PeerAddr::unpinned(b)], 2, 0));
}
