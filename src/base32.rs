//! 128-bit values (peer ids, share secrets) as people type them: RFC 4648
//! base32, lower case, no padding, 26 characters; read in either case.

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The 26 characters of `bytes`.
pub fn encode(bytes: &[u8; 16]) -> String {
    let mut out = String::with_capacity(26);
    let (mut bits, mut width) = (0u32, 0);
    for &b in bytes {
        bits = (bits << 8) | u32::from(b);
        width += 8;
        while width >= 5 {
            width -= 5;
            out.push(ALPHABET[(bits >> width) as usize & 31] as char);
        }
    }
    if width > 0 {
        out.push(ALPHABET[(bits << (5 - width)) as usize & 31] as char);
    }
    out
}

/// The value of exactly 26 base32 characters whose 2 spare bits are zero,
/// so that each value has one spelling (but for case).
pub fn decode(text: &str) -> Option<[u8; 16]> {
    if text.len() != 26 {
        return None;
    }
    let mut out = [0u8; 16];
    let (mut bits, mut width, mut n) = (0u32, 0, 0);
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c.to_ascii_lowercase())?;
        bits = (bits << 5) | v as u32;
        width += 5;
        if width >= 8 {
            width -= 8;
            *out.get_mut(n)? = (bits >> width) as u8;
            n += 1;
        }
    }
    (n == 16 && bits & ((1 << width) - 1) == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_have_one_spelling() {
        for v in [[0u8; 16], [0xff; 16], *b"0123456789abcdef"] {
            let text = encode(&v);
            assert_eq!(text.len(), 26);
            assert_eq!(decode(&text), Some(v));
            assert_eq!(decode(&text.to_uppercase()), Some(v));
        }
        assert_eq!(decode("aaaaaaaaaaaaaaaaaaaaaaaaab"), None, "spare bits set");
        assert_eq!(decode("aaaa"), None);
        assert_eq!(decode("aaaaaaaaaaaaaaaaaaaaaaaaa1"), None, "not base32");
    }
}
