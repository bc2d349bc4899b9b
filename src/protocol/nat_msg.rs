//! The tracker verbs for peers behind NAT, and the lines of a control
//! connection. No I/O here; docs/PROTOCOL.md ("Peers behind NAT") is the
//! byte-exact description.
//!
//! - `WHOAMI [<port>]` → `OK <ip>:<port>[ reachable|unreachable]`: the
//!   address the tracker sees (reflection) and, with a port, whether the
//!   tracker could dial that port back at the IP it sees.
//! - `LISTEN <port> [<from port>]` → `OK listening <ip>:<port>`, then the
//!   connection turns round: the tracker writes [`ControlLine`]s, the peer
//!   answers each. `<from port>` is the local port the connection comes
//!   from: the tracker compares it with the port it sees to tell a NAT that
//!   keeps ports ([`Via::Punch`]) from one that does not ([`Via::Relay`]).
//! - `RELAY <peer id>` → `OK <token>`: pairs the caller with a listening
//!   peer through the relay; `JOIN <token>` on a plain connection of each
//!   side → `OK paired`, then the relay splices the two.
//! - `PUNCH <peer id> <port>` → `OK <ip>:<port>`: introduces the caller to a
//!   listening peer for a hole punch; the peer is told `PUNCH <ip>:<port>`
//!   (the caller's) on its control connection, and both connect at once.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use super::codec::{next_word, Args, ParseError};

/// How a peer the tracker lists can be reached, as the tracker knows it:
/// the last word of a version 3 `PEERS` row (none for [`Via::Direct`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Via {
    /// Nothing says otherwise: dial where it listens.
    #[default]
    Direct,
    /// It holds a control connection (the tracker could not dial it back)
    /// from behind a NAT that keeps source ports: a hole punch can work.
    Punch,
    /// It holds a control connection from behind a NAT that changes source
    /// ports (symmetric): only the relay reaches it.
    Relay,
}

impl Via {
    /// The row's word, if any.
    pub fn word(self) -> Option<&'static str> {
        match self {
            Via::Direct => None,
            Via::Punch => Some("punch"),
            Via::Relay => Some("relay"),
        }
    }

    /// The way a word names (`punch`, `relay`).
    pub fn from_word(word: &str) -> Option<Via> {
        match word {
            "punch" => Some(Via::Punch),
            "relay" => Some(Via::Relay),
            _ => None,
        }
    }
}

/// A single-use relay pairing token: 16 random bytes, 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token(pub [u8; 16]);

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A token is a capability: logs show only its first bytes.
        write!(f, "Token({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

impl FromStr for Token {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let hex = s.as_bytes();
        if hex.len() != 32 {
            return Err(());
        }
        let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8).ok_or(());
        let mut out = [0u8; 16];
        for (i, pair) in hex.chunks(2).enumerate() {
            out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
        }
        Ok(Token(out))
    }
}

/// The answer to `WHOAMI`: the address the tracker saw the question come
/// from, and, when a port was named, whether the tracker reached it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reflection {
    pub observed: SocketAddr,
    /// `None`: no port was named, nothing was dialled.
    pub reachable: Option<bool>,
}

impl Reflection {
    /// The `OK` text (without `OK `).
    pub fn encode(&self) -> String {
        match self.reachable {
            None => self.observed.to_string(),
            Some(true) => format!("{} reachable", self.observed),
            Some(false) => format!("{} unreachable", self.observed),
        }
    }

    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut args = Args::new(text);
        let observed = args.parse("observed address")?;
        let reachable = match args.word("reachability") {
            Err(ParseError::Missing(_)) => None,
            Ok("reachable") => Some(true),
            Ok("unreachable") => Some(false),
            Ok(other) => return Err(ParseError::invalid("reachability", other)),
            Err(e) => return Err(e),
        };
        args.end()?;
        Ok(Reflection {
            observed,
            reachable,
        })
    }
}

/// What the tracker writes on a control connection; the peer answers
/// each with one reply line (`OK ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlLine {
    /// `PING`: keeps the connection (and the NAT's mapping) warm and shows
    /// the tracker the peer is still there. Answer: `OK pong`.
    Ping,
    /// `JOIN <token>`: someone asked for a relayed connection: open a plain
    /// connection to the tracker's port and send `JOIN <token>` on it.
    /// Answer: `OK joining`.
    Join(Token),
    /// `PUNCH <ip>:<port>`: a downloader there is connecting to this peer's
    /// listen port now: connect to it from that port (TCP simultaneous
    /// open) and serve what arrives. Answer: `OK punching`.
    Punch(SocketAddr),
}

impl ControlLine {
    pub fn encode(&self) -> String {
        match self {
            ControlLine::Ping => "PING\n".to_string(),
            ControlLine::Join(token) => format!("JOIN {token}\n"),
            ControlLine::Punch(addr) => format!("PUNCH {addr}\n"),
        }
    }

    pub fn parse(line: &str) -> Result<Self, ParseError> {
        let (verb, rest) = next_word(line);
        let mut args = Args::new(rest);
        let parsed = match verb {
            "PING" => ControlLine::Ping,
            "JOIN" => ControlLine::Join(args.parse("token")?),
            "PUNCH" => ControlLine::Punch(args.parse("address")?),
            "" => return Err(ParseError::Empty),
            _ => return Err(ParseError::UnknownCommand(verb.chars().take(40).collect())),
        };
        args.end()?;
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_32_hex_digits() {
        let t = Token([0xab; 16]);
        assert_eq!(t.to_string(), "ab".repeat(16));
        assert_eq!(t.to_string().parse::<Token>(), Ok(t));
        assert_eq!("AB".repeat(16).parse::<Token>(), Ok(t));
        for bad in [
            "",
            "ab",
            &"ab".repeat(17),
            &"zz".repeat(16),
            &"é".repeat(16),
        ] {
            assert!(bad.parse::<Token>().is_err(), "{bad:?}");
        }
        assert!(!format!("{t:?}").contains(&t.to_string()));
    }

    #[test]
    fn reflections_round_trip() {
        for reachable in [None, Some(true), Some(false)] {
            for addr in ["192.0.2.1:40000", "[2001:db8::1]:9"] {
                let r = Reflection {
                    observed: addr.parse().expect("addr"),
                    reachable,
                };
                assert_eq!(Reflection::parse(&r.encode()), Ok(r));
            }
        }
        assert_eq!(
            Reflection {
                observed: "10.0.0.1:5".parse().expect("addr"),
                reachable: Some(false)
            }
            .encode(),
            "10.0.0.1:5 unreachable"
        );
        for bad in ["", "x", "1.2.3.4:5 maybe", "1.2.3.4:5 reachable x"] {
            assert!(Reflection::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn control_lines_round_trip() {
        let punch = ControlLine::Punch("[2001:db8::1]:9".parse().expect("addr"));
        for line in [ControlLine::Ping, ControlLine::Join(Token([7; 16])), punch] {
            let text = line.encode();
            assert!(text.ends_with('\n'));
            assert_eq!(ControlLine::parse(text.trim_end()), Ok(line));
        }
        for bad in [
            "",
            "PONG",
            "JOIN",
            "JOIN 12",
            "PING 1",
            "PUNCH",
            "PUNCH 1.2.3.4",
        ] {
            assert!(ControlLine::parse(bad).is_err(), "{bad:?}");
        }
    }
}
