//! `status` in words, and its JSON.

use super::*;
use crate::manifest::FileId;
use crate::peer::download::progress::Progress;
use crate::peer::status::{Caps, SharedView};
use std::net::SocketAddr;
use std::time::Instant;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn text_shows_progress_peers_and_uploads() {
    let d = Progress::new(1, "big file.bin", FileId([9; 32]), Some(4 << 20));
    d.start(4 << 20, 8, 0, 0);
    d.chunk(addr(7), 1 << 19, true, Path::Direct);
    let status = PeerStatus {
        role: "peer".into(),
        version: "0".into(),
        id: "a".repeat(26),
        listen: "127.0.0.1:1".into(),
        tracker: Some("127.0.0.1:2".into()),
        tracker_id: None,
        tracker_contact: None,
        reach: Some(ReachView {
            observed: "192.0.2.7:4000".into(),
            reachable: false,
            secs_ago: 1,
            control: true,
        }),
        caps: Caps {
            upload: None,
            download: Some(2 << 20),
        },
        shared: vec![SharedView {
            name: "a.txt".into(),
            id: "00".repeat(32),
            size: 745,
            uploaded: 3 << 20,
            uploaded_while_partial: 1 << 20,
            complete: true,
            private: false,
            files: 0,
        }],
        unfinished: Vec::new(),
        uploads: Vec::new(),
        port_map: None,
        dht: Some(DhtView {
            node_id: "ab".repeat(20),
            udp: "127.0.0.1:3".into(),
            routing_table: 4,
            last_announce_secs_ago: Some(2),
            last_announce_files: Some(1),
        }),
        downloads: vec![d.view(Instant::now() + Duration::from_secs(1))],
    };
    let text = status_text(&status);
    let want = [
        "downloads: 1 running, 0 finished",
        "  [1] big file.bin  running  12.5%  512.0 KiB of 4.0 MiB (524288 of 4194304 bytes)  ",
        "    peers: 127.0.0.1:7 (1 chunk, active)",
        "uploads: 1 file shared, 3.0 MiB (3145728 bytes) uploaded in all",
        "  a.txt  uploaded 3.0 MiB (3145728 bytes) of a 745 B file, 1.0 MiB of it while downloading",
        "    from complete peers 512.0 KiB, from peers still downloading 0 B",
        "limits: upload off, download 2M",
        "dht: node abab",
        "4 nodes in the routing table, last announce 2 s ago (1 file)",
        "tracker: 127.0.0.1:2 not asked yet",
    ];
    for w in want {
        assert!(text.contains(w), "{w:?} not in\n{text}");
    }
    assert!(text.contains(" ETA "), "{text}");
    let json: serde_json::Value = serde_json::from_str(&status.to_json()).unwrap();
    assert_eq!(json["downloads"][0]["name"], "big file.bin");
    assert_eq!(json["downloads"][0]["done_bytes"], 1 << 19);
    assert_eq!(json["downloads"][0]["peers"][0]["chunks"], 1);
    assert_eq!(json["shared"][0]["uploaded"], 3 << 20);
    assert_eq!(json["caps"]["upload"], serde_json::Value::Null);
    assert_eq!(json["dht"]["routing_table"], 4);
    assert_eq!(size_and_bytes(745), "745 B");
    let refused = ContactView {
        answered: false,
        secs_ago: 3,
        error: Some("connection refused".into()),
    };
    assert_eq!(
        tracker_text("h:1", Some(&refused)),
        "tracker: h:1 did not answer 3 s ago: connection refused\n"
    );
}

#[test]
fn port_mapping_is_said_in_one_line() {
    use crate::peer::portmap::Protocol;
    let mut m = PortMapView {
        mapped: true,
        protocol: Some(Protocol::Upnp),
        external: Some("11.99.0.1:4000".into()),
        lease_secs_left: Some(3540),
        offered: false,
        trying: false,
        error: None,
    };
    assert_eq!(
        port_map_text(&m),
        "port mapping: 11.99.0.1:4000 on the router (UPnP), lease 59 min 00 s left; \
         not offered until a dial-back from outside reaches it\n"
    );
    m.offered = true;
    m.lease_secs_left = None;
    assert!(port_map_text(&m).ends_with("until this peer leaves; offered in tickets\n"));
    let none = PortMapView {
        mapped: false,
        protocol: None,
        external: None,
        error: Some("no router that maps ports".into()),
        ..m
    };
    assert_eq!(
        port_map_text(&none),
        "port mapping: none (no router that maps ports)\n"
    );
}

/// A download's bytes by path are said only once some came other than
/// directly, each path that brought some, direct first.
#[test]
fn bytes_not_direct_are_said_by_path() {
    let d = Progress::new(2, "f", FileId([1; 32]), Some(4 << 20));
    d.start(4 << 20, 8, 0, 0);
    d.chunk(addr(7), 1 << 20, true, Path::Direct);
    let direct = download_text(&d.view(Instant::now()));
    assert!(
        direct.contains("from peers still downloading 0 B\n"),
        "{direct}"
    );
    d.chunk(addr(7), 2 << 20, true, Path::Relayed);
    let text = download_text(&d.view(Instant::now()));
    let want = "    from complete peers 3.0 MiB, from peers still downloading 0 B; \
                1.0 MiB direct, 2.0 MiB relayed\n";
    assert!(text.contains(want), "{text}");
}
