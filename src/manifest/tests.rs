use super::*;

fn sample(size: u64, chunk_size: u32) -> Manifest {
    let n = size.div_ceil(u64::from(chunk_size));
    let hashes = (0..n).map(|i| [i as u8; 32]).collect();
    Manifest::with_chunk_size(size, chunk_size, hashes).unwrap()
}

#[test]
fn chunk_maths_covers_the_file_exactly() {
    for size in [0, 1, 9, 10, 11, 100] {
        let m = sample(size, 10);
        let total: u64 = m.chunks().map(|c| u64::from(c.len)).sum();
        assert_eq!(total, size);
        for c in m.chunks() {
            assert_eq!(c.offset, u64::from(c.index) * 10);
            assert!(c.len > 0 && c.len <= 10);
        }
        assert_eq!(m.chunk(m.chunk_count()), None);
    }
}

#[test]
fn encode_decode_round_trips_and_id_is_stable() {
    for size in [0, 1, 512 * 1024, 512 * 1024 + 1] {
        let m = sample(size, CHUNK_SIZE);
        let bytes = m.encode();
        let back = Manifest::decode(&bytes).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.id(), m.id());
    }
    assert_ne!(sample(1, CHUNK_SIZE).id(), sample(2, CHUNK_SIZE).id());
}

#[test]
fn decode_rejects_non_canonical_and_malformed_input() {
    let good = sample(20, 10).encode();
    let text = String::from_utf8(good.clone()).unwrap();
    let cases = [
        text.replace("size 20", "size 020"),
        text.replace("size 20", "size 21"),
        text.replace("chunks 2", "chunks 3"),
        text.to_uppercase(),
        text.trim_end().to_string(),
        text.replace("p2pshare-manifest 1", "p2pshare-manifest 2"),
        text.replace("chunk-size 10", "chunk-size 0"),
        text.replace("chunk-size 10", "chunk-size 99999999999"),
        String::new(),
    ];
    for case in cases {
        assert!(
            Manifest::decode(case.as_bytes()).is_err(),
            "accepted {case:?}"
        );
    }
    // Every truncation of a valid manifest is rejected, never a panic.
    for cut in 0..good.len() {
        assert!(Manifest::decode(&good[..cut]).is_err());
    }
    assert!(Manifest::decode(&[0xff, 0xfe, b'\n']).is_err());
}

#[test]
fn verify_chunk_checks_length_and_hash() {
    let data = b"hello world";
    let m = Manifest::with_chunk_size(
        11,
        8,
        vec![
            Sha256::digest(&data[..8]).into(),
            Sha256::digest(&data[8..]).into(),
        ],
    )
    .unwrap();
    assert!(m.verify_chunk(0, &data[..8]));
    assert!(m.verify_chunk(1, &data[8..]));
    assert!(!m.verify_chunk(1, &data[7..]));
    assert!(!m.verify_chunk(0, b"hellO wo"));
    assert!(!m.verify_chunk(2, b""));
}

#[test]
fn file_id_parses_hex_of_either_case_only() {
    let id = sample(5, 10).id();
    assert_eq!(id.to_hex().parse::<FileId>().unwrap(), id);
    assert_eq!(id.to_hex().to_uppercase().parse::<FileId>().unwrap(), id);
    assert!("abc".parse::<FileId>().is_err());
    assert!("g".repeat(64).parse::<FileId>().is_err());
    assert!("é".repeat(32).parse::<FileId>().is_err());
}
