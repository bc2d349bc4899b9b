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
    d.chunk(addr(1), 100, true, Path::Direct);
    d.chunk(addr(2), 100, false, Path::Direct);
    d.chunk(addr(1), 50, true, Path::Direct);
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
    d.chunk(addr(1), 100, true, Path::Direct);
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
    d.chunk(addr(1), 100, true, Path::Direct);
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

/// Each verified chunk counts once, under the path of the connection it
/// came on, and the paths add up to what the attempt fetched; a view from
/// before the count (no `bytes_by_path`) still parses, as all zero.
#[test]
fn bytes_are_counted_by_the_path_they_came_on() {
    let d = Progress::new(4, "d", FileId([5; 32]), None);
    d.start(1000, 10, 1, 100);
    d.chunk(addr(1), 100, true, Path::Relayed);
    d.chunk(addr(1), 100, true, Path::Punched);
    d.chunk(addr(2), 100, false, Path::Direct);
    d.chunk(addr(1), 40, true, Path::Relayed);
    let v = d.view(Instant::now());
    let want = BytesByPath {
        direct: 100,
        punched: 100,
        relayed: 140,
    };
    assert_eq!(v.bytes_by_path, want);
    assert_eq!(want.get(Path::Relayed), 140);
    let by_path = [Path::Direct, Path::Punched, Path::Relayed].map(|p| want.get(p));
    assert_eq!(
        by_path.iter().sum::<u64>(),
        v.from_complete_bytes + v.from_partial_bytes
    );
    assert_eq!(v.done_bytes - v.resumed_bytes, 340);

    let mut json: serde_json::Value = serde_json::to_value(&v).unwrap();
    assert_eq!(json["bytes_by_path"]["relayed"], 140);
    json.as_object_mut().unwrap().remove("bytes_by_path");
    let old: DownloadView = serde_json::from_value(json).unwrap();
    assert_eq!(old.bytes_by_path, BytesByPath::default());
}
