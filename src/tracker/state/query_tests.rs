//! The registry's read side: names found and shown, replies bounded.

use super::tests::{addr, nth, TTL};
use super::*;
use crate::bounds::TRACKER_REPLY_ROWS;

/// Whoever registers a real id first under a made-up name does not hide
/// it: every live peer's name finds it, and the name shown is a complete
/// peer's. (On main the first name was kept for as long as any peer lived.)
#[test]
fn every_live_name_finds_a_file_and_a_complete_peers_is_shown() {
    let r = Registry::new(TTL);
    let t0 = Instant::now();
    let id = FileId([5; 32]);
    r.register(addr(1), id, 5, Some("decoy.bin"), false, t0)
        .unwrap();
    r.register(addr(2), id, 5, Some("report.pdf"), true, t0)
        .unwrap();
    let names = |text: &str, at| -> Vec<String> {
        r.search(text, at)
            .rows
            .into_iter()
            .map(|f| f.name)
            .collect()
    };
    assert_eq!(names("report", t0), ["report.pdf"]);
    assert_eq!(
        names("decoy", t0),
        ["report.pdf"],
        "found by the partial peer's name, shown by the complete one's"
    );
    assert_eq!(
        r.info(&id.to_hex().parse().unwrap(), t0).rows[0].name,
        "report.pdf"
    );
    // Two complete peers disagree: the one matching the search is shown.
    r.register(addr(3), id, 5, Some("other.pdf"), true, t0)
        .unwrap();
    assert_eq!(names("other", t0), ["other.pdf"]);
    // A renaming refresh takes the old name out of the index.
    r.register(addr(3), id, 5, Some("renamed.pdf"), true, t0)
        .unwrap();
    assert!(names("other", t0).is_empty());
    // A name only a stale peer gave finds nothing.
    let later = t0 + Duration::from_secs(8);
    r.register(addr(2), id, 5, Some("report.pdf"), true, later)
        .unwrap();
    let stale = t0 + Duration::from_secs(15);
    assert!(names("decoy", stale).is_empty());
    assert_eq!(names("report", stale), ["report.pdf"]);
    r.expire(stale);
    assert!(r.unregister(addr(2), &id) || r.search("", stale).rows.is_empty());
    assert_eq!(r.index.len(), 0, "nothing left to find");
}

/// A reply holds at most `TRACKER_REPLY_ROWS` rows and says `more`; a name
/// equal to the search text is among them however many others match.
#[test]
fn a_search_reply_is_bounded_and_keeps_exact_matches() {
    let r = Registry::new(TTL);
    let now = Instant::now();
    for n in 0..TRACKER_REPLY_ROWS + 10 {
        let key = PeerKey {
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            id: PeerId([1; 16]),
        };
        r.register(key, nth(n), 1, Some(&format!("a{n:05}.txt")), true, now)
            .unwrap();
    }
    r.register(addr(9), nth(1_000_000), 1, Some("txt"), true, now)
        .unwrap();
    let all = r.search("TXT", now);
    assert_eq!((all.rows.len(), all.more), (TRACKER_REPLY_ROWS, true));
    assert!(all.rows.iter().any(|f| f.name == "txt"), "the exact match");
    let few = r.search("a0000", now);
    assert_eq!((few.rows.len(), few.more), (10, false));
    assert_eq!(r.info(&"0000".parse().unwrap(), now).rows.len(), 1);
}
