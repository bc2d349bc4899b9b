//! The shares list and its journal.

use super::*;

fn dir(test: &str) -> crate::testing::TempDir {
    crate::testing::temp_dir(&format!("shares-{test}"))
}

fn share(path: &str, id: u8) -> Share {
    Share {
        path: PathBuf::from(path),
        name: path.trim_start_matches('/').into(),
        id: format!("{id:02x}").repeat(32),
        size: 1,
        mtime_ns: 2,
        secret: None,
    }
}

#[test]
fn a_share_replaces_any_of_its_path_or_id_and_replaying_changes_nothing() {
    let changes = [
        Change::Share(share("/a", 1)),
        Change::Share(share("/b", 2)),
        Change::Share(share("/a", 3)),
        Change::Share(share("/c", 2)),
        Change::Forget(share("/x", 9).id),
        Change::Share(share("/d", 4)),
        Change::Forget(share("/d", 4).id),
    ];
    let once = apply(vec![share("/e", 5), share("/b", 6)], changes.clone());
    assert_eq!(once, [share("/e", 5), share("/a", 3), share("/c", 2)]);
    // A crash after compacting, before emptying the journal, replays it.
    let twice = apply(once.clone(), changes);
    assert_eq!(twice, once);
}

#[test]
fn adding_one_share_at_a_time_costs_the_same_at_any_number() {
    let d = dir("amortised");
    let mut log = SharesLog::open(&d).unwrap();
    // Bytes written to disk so far per share remembered, at each thousand
    // (compactions included: amortised).
    let mut written = 0;
    let mut per_share = Vec::new();
    for i in 0..6000u32 {
        let before = (log.list_len, log.journal_len);
        let s = Share {
            id: format!("{i:064x}"),
            ..share(&format!("/f{i}"), 0)
        };
        log.append([Change::Share(s)]).unwrap();
        written += match (log.list_len, log.journal_len) {
            (list, 0) if list != before.0 => list,
            (_, journal) => journal - before.1,
        };
        if i % 1000 == 999 {
            per_share.push(written / u64::from(i + 1));
        }
    }
    println!("figure: bytes written per share remembered, at 1,000 to 6,000: {per_share:?}");
    // A line each, and each compaction rewrites at most twice what was
    // appended since the last (the list's pretty JSON is a bit longer).
    let line = per_share[0];
    assert!(per_share.iter().all(|&b| b <= 4 * line), "{per_share:?}");
    let shares = SharesLog::open(&d).unwrap().read().unwrap();
    assert_eq!(shares.len(), 6000);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_torn_last_line_is_cut_and_a_damaged_one_skipped() {
    let d = dir("torn");
    let mut log = SharesLog::open(&d).unwrap();
    // The first into the list, the second into the journal.
    log.append([Change::Share(share("/a", 1))]).unwrap();
    log.append([Change::Share(share("/b", 2))]).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(d.join(SHARES_JOURNAL))
        .unwrap();
    f.write_all(b"{ damaged\n{\"forget\":\"01").unwrap();
    drop(f);
    let mut log = SharesLog::open(&d).unwrap();
    assert_eq!(log.read().unwrap(), [share("/a", 1), share("/b", 2)]);
    let journal = std::fs::read(d.join(SHARES_JOURNAL)).unwrap();
    assert!(journal.ends_with(b"{ damaged\n"), "torn line cut");
    let _ = std::fs::remove_dir_all(d);
}
