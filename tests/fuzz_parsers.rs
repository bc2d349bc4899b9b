//! Property-based fuzzing of every parser that sees bytes from the network or
//! the user: arbitrary input never panics, accepted input re-encodes to an
//! equivalent message, and no bound is exceeded. CI runs the default case
//! count; a long run is `PROPTEST_CASES=200000 cargo test --release --test
//! fuzz_parsers` (figures in docs/RELIABILITY.md).

use p2pshare::bounds::MAX_LINE;
use p2pshare::chunkset::ChunkSet;
use p2pshare::manifest::{FileId, Manifest};
use p2pshare::net::rate::parse_rate;
use p2pshare::protocol::codec::{line_text, split_line, Frame};
use p2pshare::protocol::message::{parse_hello_reply, parse_payload_len};
use p2pshare::protocol::peer_msg::parse_have_header;
use p2pshare::protocol::PeerEntry;
use p2pshare::protocol::{FileSummary, PeerRequest, Reply, TrackerRequest};
use p2pshare::ui::repl::Command;
use proptest::prelude::*;

/// Lines that look like protocol traffic: a known verb, then random tokens.
fn protocol_like() -> impl Strategy<Value = String> {
    let verb = prop::sample::select(vec![
        "HELLO",
        "REGISTER",
        "UNREGISTER",
        "BYE",
        "SEARCH",
        "PEERS",
        "QUIT",
        "MANIFEST",
        "GET",
        "HAVE",
        "PARTIAL",
        "INFO",
        "OK",
        "ERR",
        "hello",
        "get",
    ]);
    let token = prop_oneof![
        "[0-9]{1,25}",
        "[0-9a-fA-F]{60,68}",
        "-?[0-9]{1,5}",
        "[ -~]{0,12}",
        "\\PC{0,8}",
        Just(" ".to_string()),
    ];
    (verb, prop::collection::vec(token, 0..6)).prop_map(|(v, t)| format!("{v} {}", t.join(" ")))
}

fn valid_manifest() -> impl Strategy<Value = Manifest> {
    (0u64..5000, 1u32..2000).prop_map(|(size, chunk)| {
        let n = size.div_ceil(u64::from(chunk));
        let hashes = (0..n).map(|i| [i as u8; 32]).collect();
        Manifest::with_chunk_size(size, chunk, hashes).expect("consistent by construction")
    })
}

proptest! {
    #[test]
    fn framing_never_exceeds_its_bound(bytes in prop::collection::vec(any::<u8>(), 0..6000), max in 1usize..5000) {
        match split_line(&bytes, max) {
            Frame::Line { len, consumed } => {
                prop_assert!(consumed <= max && len < consumed);
                prop_assert_eq!(bytes[consumed - 1], b'\n');
                let _ = line_text(&bytes[..len]);
            }
            Frame::Incomplete => prop_assert!(bytes.len() < max && !bytes.contains(&b'\n')),
            Frame::TooLong => prop_assert!(bytes.len() >= max),
        }
    }

    #[test]
    fn tracker_requests_parse_or_fail_cleanly(line in prop_oneof![protocol_like(), "\\PC{0,300}"]) {
        if let Ok(req) = TrackerRequest::parse(&line) {
            let encoded = req.encode();
            prop_assert!(encoded.len() <= MAX_LINE + 64);
            prop_assert_eq!(TrackerRequest::parse(encoded.trim_end_matches('\n')), Ok(req));
        }
    }

    #[test]
    fn peer_requests_and_replies_parse_or_fail_cleanly(line in prop_oneof![protocol_like(), "\\PC{0,300}"]) {
        if let Ok(req) = PeerRequest::parse(&line) {
            prop_assert_eq!(PeerRequest::parse(req.encode().trim_end_matches('\n')), Ok(req));
        }
        if let Ok(reply) = Reply::parse(&line) {
            prop_assert_eq!(Reply::parse(reply.encode().trim_end_matches('\n')), Ok(reply));
        }
        if let Ok(file) = FileSummary::parse(&line) {
            prop_assert_eq!(FileSummary::parse(file.encode().trim_end_matches('\n')), Ok(file));
        }
        if let Ok(len) = parse_payload_len(&line, 1 << 20) {
            prop_assert!(len <= 1 << 20);
        }
        let _ = PeerEntry::parse(&line);
        let _ = parse_hello_reply(&line);
        if let Ok((len, _)) = parse_have_header(&line, 4096) {
            prop_assert!(len <= 4096);
        }
        let _ = line.parse::<FileId>();
        let _ = parse_rate(&line);
        let _ = Command::parse(&line);
    }

    #[test]
    fn chunk_maps_decode_only_canonical_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64), len in 0u32..600) {
        if let Ok(set) = ChunkSet::decode(&bytes, len) {
            prop_assert_eq!(set.encode(), bytes);
            prop_assert!(set.count() <= len);
        }
    }

    #[test]
    fn manifests_decode_only_canonical_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(m) = Manifest::decode(&bytes) {
            prop_assert_eq!(m.encode(), bytes);
        }
    }

    #[test]
    fn mutated_manifests_never_panic(m in valid_manifest(), pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let mut bytes = m.encode();
        let i = pos.index(bytes.len());
        bytes[i] = byte;
        bytes.truncate(cut.index(bytes.len() + 1).max(i));
        if let Ok(decoded) = Manifest::decode(&bytes) {
            prop_assert_eq!(decoded.encode(), bytes);
            let total: u64 = decoded.chunks().map(|c| u64::from(c.len)).sum();
            prop_assert_eq!(total, decoded.size());
        }
    }
}
