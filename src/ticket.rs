//! Tickets: everything `peer get` needs to fetch one file from the peer
//! that made it, in one word that survives an unquoted shell paste.
//!
//! A ticket is `p2p2:` and the URL-safe base64 (no padding) of:
//!
//! ```text
//! flags      1 byte    bit 0: a secret follows (a private share);
//!                      bit 1: a tracker follows the addresses
//! file id    32 bytes
//! peer id    16 bytes  the sender's, pinned on connecting
//! secret     16 bytes  only with flag bit 0
//! size       LEB128    the file's size in bytes
//! addresses  1 byte n (at most MAX_TICKET_ADDRS), then n times:
//!            4 + IPv4 (4 bytes) + port (2, big-endian), or
//!            6 + IPv6 (16 bytes) + port (2, big-endian)
//! tracker    only with flag bit 1: 1 byte n, then n bytes of `host:port`
//!            (UTF-8, 3 to 255 bytes), then its id (16 bytes): the tracker
//!            whose relay reaches the sender (`peer send --tracker`)
//! name       UTF-8: the file's name (a valid share name), up to
//! checksum   4 bytes   the first 4 bytes of the SHA-256 of all the above
//! ```
//!
//! The checksum catches a ticket cut short, pasted twice or with a
//! character changed or added, wherever the damage is (the name alone has
//! no length, so without it a character appended would change the name).
//! `p2p1:` tickets (no checksum) are refused with a word on where they came
//! from. So a ticket holds only letters, digits, `-`, `_` and `:`. Decoding
//! checks every field; nothing in a ticket is trusted beyond what the
//! download checks anyway (the data must hash to the id, the peer must
//! prove the id).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::bounds::{MAX_TICKET_ADDRS, MAX_TICKET_LEN};
use crate::identity::PeerId;
use crate::manifest::FileId;
use crate::name::validate_name;
use crate::private::Secret;

const PREFIX: &str = "p2p2:";
/// The prefix of the tickets of earlier versions, which had no checksum.
const OLD_PREFIX: &str = "p2p1:";
const CHECKSUM_LEN: usize = 4;
const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TicketError {
    #[error("not a ticket (a ticket starts with {PREFIX})")]
    NotATicket,
    #[error("ticket is damaged ({0}); copy it again, whole")]
    Damaged(&'static str),
    #[error(
        "this ticket ({OLD_PREFIX}...) is from an older p2pshare; ask its sender for a new one"
    )]
    Old,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub id: FileId,
    pub name: String,
    pub size: u64,
    /// Where the sender listens, best first.
    pub addrs: Vec<SocketAddr>,
    /// The sender's id.
    pub peer: PeerId,
    pub secret: Option<Secret>,
    /// A tracker the sender holds a control connection to, and its id:
    /// `peer get` reaches the sender through its relay when it cannot
    /// dial it.
    pub tracker: Option<(String, PeerId)>,
}

/// Whether `addr` may go in a ticket as a tracker's `host:port`.
fn valid_tracker(addr: &str) -> bool {
    let fits = (3..=255).contains(&addr.len()) && !addr.chars().any(|c| c.is_control() || c == ' ');
    let port = addr
        .rsplit_once(':')
        .and_then(|(host, port)| (!host.is_empty()).then_some(port));
    fits && port.is_some_and(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
}

impl Ticket {
    /// Whether `text` looks like a ticket (as opposed to a link or a name).
    pub fn is_ticket(text: &str) -> bool {
        text.starts_with(PREFIX) || text.starts_with(OLD_PREFIX)
    }

    fn to_bytes(&self) -> Vec<u8> {
        let tracker = self
            .tracker
            .as_ref()
            .filter(|(addr, _)| valid_tracker(addr));
        let flags = u8::from(self.secret.is_some()) | u8::from(tracker.is_some()) << 1;
        let mut out = vec![flags];
        out.extend_from_slice(&self.id.0);
        out.extend_from_slice(&self.peer.0);
        if let Some(secret) = &self.secret {
            out.extend_from_slice(&secret.0);
        }
        let mut size = self.size;
        loop {
            let byte = (size & 0x7f) as u8;
            size >>= 7;
            if size == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
        let addrs = &self.addrs[..self.addrs.len().min(MAX_TICKET_ADDRS)];
        out.push(addrs.len() as u8);
        for addr in addrs {
            match addr.ip() {
                IpAddr::V4(ip) => {
                    out.push(4);
                    out.extend_from_slice(&ip.octets());
                }
                IpAddr::V6(ip) => {
                    out.push(6);
                    out.extend_from_slice(&ip.octets());
                }
            }
            out.extend_from_slice(&addr.port().to_be_bytes());
        }
        if let Some((addr, id)) = tracker {
            out.push(addr.len() as u8);
            out.extend_from_slice(addr.as_bytes());
            out.extend_from_slice(&id.0);
        }
        out.extend_from_slice(self.name.as_bytes());
        let sum = checksum(&out);
        out.extend_from_slice(&sum);
        out
    }

    fn from_bytes(bytes: &[u8]) -> Result<Ticket, TicketError> {
        let split = bytes
            .len()
            .checked_sub(CHECKSUM_LEN)
            .ok_or(TicketError::Damaged("length"))?;
        let (bytes, sum) = bytes.split_at(split);
        if sum != checksum(bytes) {
            return Err(TicketError::Damaged("checksum"));
        }
        let mut r = Reader(bytes);
        let flags = r.take(1, "flags")?[0];
        if flags > 3 {
            return Err(TicketError::Damaged("flags"));
        }
        let id = FileId(r.array("file id")?);
        let peer = PeerId(r.array("peer id")?);
        let secret = match flags & 1 {
            1 => Some(Secret(r.array("secret")?)),
            _ => None,
        };
        let mut size = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = r.take(1, "size")?[0];
            if shift == 63 && byte > 1 {
                return Err(TicketError::Damaged("size"));
            }
            size |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let n = usize::from(r.take(1, "addresses")?[0]);
        if n > MAX_TICKET_ADDRS {
            return Err(TicketError::Damaged("addresses"));
        }
        let mut addrs = Vec::with_capacity(n);
        for _ in 0..n {
            let ip = match r.take(1, "address")?[0] {
                4 => IpAddr::V4(Ipv4Addr::from(r.array::<4>("address")?)),
                6 => IpAddr::V6(Ipv6Addr::from(r.array::<16>("address")?)),
                _ => return Err(TicketError::Damaged("address")),
            };
            let port = u16::from_be_bytes(r.array("port")?);
            addrs.push(SocketAddr::new(ip, port));
        }
        let tracker = match flags & 2 {
            0 => None,
            _ => {
                let n = usize::from(r.take(1, "tracker")?[0]);
                let addr = std::str::from_utf8(r.take(n, "tracker")?)
                    .ok()
                    .filter(|a| valid_tracker(a))
                    .ok_or(TicketError::Damaged("tracker"))?
                    .to_string();
                Some((addr, PeerId(r.array("tracker id")?)))
            }
        };
        let name = std::str::from_utf8(r.0).map_err(|_| TicketError::Damaged("name"))?;
        validate_name(name).map_err(|_| TicketError::Damaged("name"))?;
        Ok(Ticket {
            id,
            name: name.to_string(),
            size,
            addrs,
            peer,
            secret,
            tracker,
        })
    }
}

fn checksum(bytes: &[u8]) -> [u8; CHECKSUM_LEN] {
    let digest = Sha256::digest(bytes);
    let mut sum = [0u8; CHECKSUM_LEN];
    sum.copy_from_slice(&digest[..CHECKSUM_LEN]);
    sum
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], TicketError> {
        if self.0.len() < n {
            return Err(TicketError::Damaged(what));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], TicketError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }
}

impl fmt::Display for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PREFIX)?;
        let bytes = self.to_bytes();
        for group in bytes.chunks(3) {
            let mut n = 0u32;
            for (i, b) in group.iter().enumerate() {
                n |= u32::from(*b) << (16 - 8 * i);
            }
            for i in 0..=group.len() {
                let c = BASE64[(n >> (18 - 6 * i)) as usize & 63];
                write!(f, "{}", c as char)?;
            }
        }
        Ok(())
    }
}

impl FromStr for Ticket {
    type Err = TicketError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.starts_with(OLD_PREFIX) {
            return Err(TicketError::Old);
        }
        let body = text.strip_prefix(PREFIX).ok_or(TicketError::NotATicket)?;
        if body.len() > MAX_TICKET_LEN || body.len() % 4 == 1 {
            return Err(TicketError::Damaged("length"));
        }
        let mut bytes = Vec::with_capacity(body.len() * 3 / 4);
        for group in body.as_bytes().chunks(4) {
            let mut n = 0u32;
            for (i, c) in group.iter().enumerate() {
                let v = BASE64
                    .iter()
                    .position(|b| b == c)
                    .ok_or(TicketError::Damaged("a character"))?;
                n |= (v as u32) << (18 - 6 * i);
            }
            let whole = group.len() - 1;
            for i in 0..whole {
                bytes.push((n >> (16 - 8 * i)) as u8);
            }
            // Canonical: the bits below the last whole byte are zero.
            if n & ((1 << (24 - 8 * whole)) - 1) != 0 {
                return Err(TicketError::Damaged("padding"));
            }
        }
        Ticket::from_bytes(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(secret: Option<Secret>, name: &str) -> Ticket {
        Ticket {
            id: FileId([0xa5; 32]),
            name: name.into(),
            size: 1 << 33 | 5,
            addrs: vec![
                "192.168.1.20:9001".parse().unwrap(),
                "[2001:db8::1]:9001".parse().unwrap(),
                "127.0.0.1:9001".parse().unwrap(),
            ],
            peer: PeerId([7; 16]),
            secret,
            tracker: None,
        }
    }

    /// A tracker rides along (bit 1) with or without a secret; one that
    /// is not a `host:port` is left out rather than written.
    #[test]
    fn a_ticket_may_carry_a_tracker() {
        for secret in [None, Some(Secret([3; 16]))] {
            let t = Ticket {
                tracker: Some(("tracker.example:8080".into(), PeerId([4; 16]))),
                ..ticket(secret, "t.bin")
            };
            assert_eq!(t.to_string().parse::<Ticket>(), Ok(t));
        }
        for bad in ["", "nohost", ":80", "host:0", "a b:1", "host:99999"] {
            let t = Ticket {
                tracker: Some((bad.into(), PeerId([4; 16]))),
                ..ticket(None, "t.bin")
            };
            let back: Ticket = t.to_string().parse().expect("a ticket");
            assert_eq!(back.tracker, None, "{bad:?}");
        }
    }

    #[test]
    fn tickets_round_trip_and_survive_a_shell() {
        for t in [
            ticket(None, "a.txt"),
            ticket(Some(Secret([9; 16])), "my file (1).tar.gz"),
            ticket(None, "ü"),
            ticket(None, "ab"),
        ] {
            let text = t.to_string();
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_:".contains(&b)),
                "{text}"
            );
            assert_eq!(text.parse::<Ticket>(), Ok(t));
        }
    }

    #[test]
    fn damaged_tickets_are_refused() {
        let text = ticket(Some(Secret([9; 16])), "a.txt").to_string();
        assert_eq!(
            "p2pshare:ab".parse::<Ticket>(),
            Err(TicketError::NotATicket)
        );
        for cut in [6, 40, 60, text.len() - 7] {
            assert!(text[..cut].parse::<Ticket>().is_err(), "cut at {cut}");
        }
        assert!(format!("{text}!").parse::<Ticket>().is_err());
        let mut dotted = text.clone();
        dotted.replace_range(10..11, ".");
        assert!(dotted.parse::<Ticket>().is_err());
        let mut bad_name = ticket(None, "x").to_bytes();
        bad_name.extend_from_slice(b"/../y");
        assert!(Ticket::from_bytes(&bad_name).is_err());
    }

    /// A character appended, changed or doubled anywhere is caught by the
    /// checksum, not taken into the name.
    #[test]
    fn the_checksum_catches_damage_anywhere() {
        let text = ticket(None, "sample.txt").to_string();
        for extra in ["1", "A", "AA", "AAA", "AAAA"] {
            assert!(
                format!("{text}{extra}").parse::<Ticket>().is_err(),
                "{extra} appended was accepted"
            );
        }
        for at in PREFIX.len()..text.len() {
            let mut changed = text.clone().into_bytes();
            changed[at] = if changed[at] == b'B' { b'C' } else { b'B' };
            let changed = String::from_utf8(changed).unwrap();
            assert!(changed.parse::<Ticket>().is_err(), "changed at {at}");
        }
        assert_eq!(
            text.replacen(PREFIX, OLD_PREFIX, 1).parse::<Ticket>(),
            Err(TicketError::Old)
        );
    }
}
