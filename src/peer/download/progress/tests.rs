//! Progress: one source of truth for every display.

use super::*;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn tracks_chunks_peers_and_outcome() {
    let d = Progress::new(1, "a.bin", FileId([7; 32]), None);
    // One chunk of 100 bytes was resumed from disk.
    d.start(350, 4, 1, 100);
    d.chunk(addr(1), 100, true);
    d.chunk(addr(2), 100, false);
    d.chunk(addr(1), 50, true);
    let later = Instant::now() + Duration::from_secs(1);
    let v = d.view(later);
    assert_eq!((v.key, v.name.as_str(), v.size), (1, "a.bin", 350));
    assert_eq!(v.id, "07".repeat(32));
    assert_eq!((v.done_chunks, v.total_chunks, v.done_bytes), (4, 4, 350));
    assert_eq!((v.state, v.resumed_bytes), (State::Running, 100));
    assert_eq!((v.from_complete_bytes, v.from_partial_bytes), (150, 100));
    // 250 bytes fetched (not the resumed 100) in about a second.
    assert!((200..=260).contains(&v.rate), "rate {}", v.rate);
    let peers: Vec<_> = v
        .peers
        .iter()
        .map(|p| (p.addr.as_str(), p.chunks))
        .collect();
    assert_eq!(peers, vec![("127.0.0.1:1", 2), ("127.0.0.1:2", 1)]);
    assert!(v.peers.iter().all(|p| p.active));

    d.finish(Outcome::Done);
    d.finish(Outcome::Failed("late".into()));
    let v = d.view(Instant::now());
    assert_eq!(
        (v.state, v.eta_secs, v.error.clone()),
        (State::Done, None, None)
    );
    assert!(v.peers.iter().all(|p| !p.active));
    assert!(d.wait_timeout(Duration::ZERO));
}

#[test]
fn a_stalled_download_slows_down_and_json_round_trips() {
    let d = Progress::new(2, "b", FileId([3; 32]), Some(1000));
    d.start(1000, 10, 0, 0);
    d.chunk(addr(1), 100, true);
    let soon = d.view(Instant::now() + Duration::from_millis(500)).rate;
    let much_later = d.view(Instant::now() + Duration::from_secs(60));
    assert!(much_later.rate < soon, "{} !< {soon}", much_later.rate);
    assert!(much_later.peers.iter().all(|p| !p.active));
    assert!(!d.wait_timeout(Duration::from_millis(1)));
    let json = serde_json::to_string(&much_later).unwrap();
    assert!(json.contains("\"state\":\"running\""), "{json}");
    let back: DownloadView = serde_json::from_str(&json).unwrap();
    assert_eq!(back, much_later);
}

#[test]
fn banned_peers_are_shown_and_never_active() {
    let d = Progress::new(3, "c", FileId([4; 32]), None);
    d.start(300, 3, 0, 0);
    d.chunk(addr(1), 100, true);
    d.banned(addr(2), true);
    d.banned(addr(1), false);
    let v = d.view(Instant::now());
    assert!(v.peers.iter().all(|p| (p.banned || p.benched) && !p.active));
    assert_eq!(v.peers.iter().filter(|p| p.banned).count(), 1);
    d.finish(Outcome::Cancelled("stopped".into()));
    let v = d.view(Instant::now());
    assert_eq!(
        (v.state, v.error.as_deref()),
        (State::Cancelled, Some("stopped"))
    );
}
