//! NAT-PMP (RFC 6886) messages as bytes, with no socket: the requests a
//! client sends to its gateway's UDP port 5351 and the answers it accepts.
//! Every multi-byte field is big-endian.
//!
//! ```text
//! external address  request  00 00                       (2 bytes)
//!                   answer   00 80 RR RR EE EE EE EE A A A A  (12: result,
//!                                                       epoch, IPv4)
//! map TCP           request  00 02 00 00 II II XX XX LL LL LL LL  (12:
//!                                   internal, suggested external, lifetime)
//!                   answer   00 82 RR RR EE EE EE EE II II XX XX LL LL LL LL
//!                                                   (16: result, epoch,
//!                                   internal, mapped external, lifetime)
//! ```
//! A mapping is deleted by asking for it with lifetime 0 and suggested
//! external port 0. An answer is accepted only if its version, opcode,
//! length and (for a mapping) internal port match the request.

use std::net::Ipv4Addr;

use thiserror::Error;

/// NAT-PMP's version number, the first byte of every message.
const VERSION: u8 = 0;
/// Opcodes: the external address, a TCP mapping; answers add 128.
const OP_ADDRESS: u8 = 0;
const OP_MAP_TCP: u8 = 2;
const ANSWER: u8 = 128;

/// The UDP port a NAT-PMP gateway listens on.
pub const PORT: u16 = 5351;

/// Longest answer accepted (a mapping's); a longer datagram is not ours.
pub const MAX_ANSWER: usize = 16;

/// `00 00`: what is this gateway's external address?
pub fn address_request() -> [u8; 2] {
    [VERSION, OP_ADDRESS]
}

/// A request to map TCP `internal` to `external` (a suggestion the gateway
/// may not follow) for `lifetime` seconds; lifetime 0 with external 0
/// deletes the mapping.
pub fn map_request(internal: u16, external: u16, lifetime: u32) -> [u8; 12] {
    let mut m = [0u8; 12];
    m[0] = VERSION;
    m[1] = OP_MAP_TCP;
    // m[2..4]: reserved, zero.
    m[4..6].copy_from_slice(&internal.to_be_bytes());
    m[6..8].copy_from_slice(&external.to_be_bytes());
    m[8..12].copy_from_slice(&lifetime.to_be_bytes());
    m
}

/// A successful answer to [`address_request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressAnswer {
    /// Seconds since the gateway's mapping table was (re)started.
    pub epoch: u32,
    pub external: Ipv4Addr,
}

/// A successful answer to [`map_request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapAnswer {
    pub epoch: u32,
    pub internal: u16,
    /// The external port the gateway chose (0 after a delete).
    pub external: u16,
    /// Seconds the mapping lasts (0 after a delete).
    pub lifetime: u32,
}

/// Why an answer is refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    /// Not an answer to what was asked (another opcode, length, port):
    /// ignored, the client keeps waiting.
    #[error("not an answer to this request ({0})")]
    Unrelated(&'static str),
    /// The gateway answered with a result code other than 0.
    #[error("the router refused: {}", result_text(*.0))]
    Refused(u16),
}

impl WireError {
    /// Whether the client should keep waiting for the real answer.
    pub fn is_unrelated(&self) -> bool {
        matches!(self, WireError::Unrelated(_))
    }
}

/// RFC 6886's result codes, in words.
pub fn result_text(code: u16) -> String {
    let what = match code {
        1 => "unsupported version",
        2 => "not authorized (port mapping is turned off on the router)",
        3 => "network failure (the router has no external address)",
        4 => "out of resources",
        5 => "unsupported opcode",
        _ => "unknown result code",
    };
    format!("{what} ({code})")
}

/// The header every answer starts with: version, opcode, result, epoch.
fn header(bytes: &[u8], op: u8, len: usize) -> Result<u32, WireError> {
    // A refusal may come short (RFC 6886 3.5: an unsupported version is
    // answered with 8 bytes), so the result is read before the length.
    if bytes.len() < 4 || bytes[0] != VERSION || bytes[1] != ANSWER + op {
        return Err(WireError::Unrelated("version or opcode"));
    }
    let result = u16::from_be_bytes([bytes[2], bytes[3]]);
    if result != 0 {
        return Err(WireError::Refused(result));
    }
    if bytes.len() != len {
        return Err(WireError::Unrelated("length"));
    }
    Ok(u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]))
}

/// Decodes an answer to [`address_request`].
pub fn address_answer(bytes: &[u8]) -> Result<AddressAnswer, WireError> {
    let epoch = header(bytes, OP_ADDRESS, 12)?;
    let external = Ipv4Addr::new(bytes[8], bytes[9], bytes[10], bytes[11]);
    Ok(AddressAnswer { epoch, external })
}

/// Decodes an answer to `map_request(internal, ..)`.
pub fn map_answer(bytes: &[u8], internal: u16) -> Result<MapAnswer, WireError> {
    let epoch = header(bytes, OP_MAP_TCP, 16)?;
    let field = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
    if field(8) != internal {
        return Err(WireError::Unrelated("internal port"));
    }
    Ok(MapAnswer {
        epoch,
        internal,
        external: field(10),
        lifetime: u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_byte_exact() {
        assert_eq!(address_request(), [0, 0]);
        assert_eq!(
            map_request(4000, 4001, 3600),
            [0, 2, 0, 0, 0x0f, 0xa0, 0x0f, 0xa1, 0, 0, 0x0e, 0x10]
        );
        // Delete: lifetime 0, suggested external port 0.
        assert_eq!(
            map_request(4000, 0, 0),
            [0, 2, 0, 0, 0x0f, 0xa0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn answers_decode() {
        let a = [0, 128, 0, 0, 0, 0, 1, 0, 11, 99, 0, 1];
        assert_eq!(
            address_answer(&a),
            Ok(AddressAnswer {
                epoch: 256,
                external: Ipv4Addr::new(11, 99, 0, 1)
            })
        );
        let m = [
            0, 130, 0, 0, 0, 0, 0, 7, 0x0f, 0xa0, 0x9c, 0x40, 0, 0, 0x0e, 0x10,
        ];
        assert_eq!(
            map_answer(&m, 4000),
            Ok(MapAnswer {
                epoch: 7,
                internal: 4000,
                external: 40000,
                lifetime: 3600
            })
        );
    }

    #[test]
    fn refusals_carry_their_code_even_when_short() {
        let refused = [0, 130, 0, 2, 0, 0, 0, 7, 0x0f, 0xa0, 0, 0, 0, 0, 0, 0];
        assert_eq!(map_answer(&refused, 4000), Err(WireError::Refused(2)));
        assert!(WireError::Refused(2).to_string().contains("not authorized"));
        // RFC 6886 3.5: an unsupported version may be answered short.
        assert_eq!(
            address_answer(&[0, 128, 0, 1, 0, 0, 0, 0]),
            Err(WireError::Refused(1))
        );
    }

    #[test]
    fn what_answers_another_question_is_unrelated() {
        let m = [
            0, 130, 0, 0, 0, 0, 0, 7, 0x0f, 0xa1, 0x9c, 0x40, 0, 0, 0x0e, 0x10,
        ];
        // Another internal port, another opcode, another version, a bad length.
        assert!(map_answer(&m, 4000).is_err_and(|e| e.is_unrelated()));
        assert!(address_answer(&m).is_err_and(|e| e.is_unrelated()));
        let mut v1 = m;
        v1[0] = 1;
        assert!(map_answer(&v1, 4001).is_err_and(|e| e.is_unrelated()));
        assert!(map_answer(&m[..15], 4001).is_err_and(|e| e.is_unrelated()));
        // Every prefix of a good answer is refused, none panics.
        for n in 0..m.len() {
            assert!(map_answer(&m[..n], 4001).is_err());
            assert!(address_answer(&m[..n.min(11)]).is_err());
        }
    }
}
