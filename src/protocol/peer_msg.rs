//! The chunk server's requests, one variant per verb, and the header of
//! its `HAVE` reply. No I/O here.

use super::codec::{next_word, Args, ParseError};
use crate::manifest::FileId;
use crate::private::Proof;

/// A request to a peer's chunk server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerRequest {
    /// `HELLO <version>`.
    Hello { version: u32 },
    /// `MANIFEST <id>`: the manifest of file `id`, as a payload.
    Manifest { id: FileId },
    /// `GET <id> <index>`: chunk `index` of file `id`, as a payload.
    Get { id: FileId, index: u32 },
    /// `HAVE <id> <len>` and `len` bytes, the sender's own chunk map of file
    /// `id` (0 bytes: it has none, or does not share): which chunks does the
    /// receiver offer? Replied to with `OK <len> complete|partial` and the
    /// receiver's map (see [`parse_have_header`]). Version 2.
    Have { id: FileId, len: usize },
    /// `AUTH <id> <proof>`: proves this connection holds the secret of the
    /// private share whose blinded id is `id` (see
    /// [`private`](crate::private)). Replied to
    /// with `OK authorized` (also for a public file, which needs no proof),
    /// or the same `ERR not sharing <id>` as for a file not
    /// shared, so a wrong secret learns nothing.
    Auth { id: FileId, proof: Proof },
    /// `QUIT`.
    Quit,
}

impl PeerRequest {
    pub fn parse(line: &str) -> Result<Self, ParseError> {
        let (verb, rest) = next_word(line);
        let mut args = Args::new(rest);
        let req = match verb.to_ascii_uppercase().as_str() {
            "" => return Err(ParseError::Empty),
            "HELLO" => PeerRequest::Hello {
                version: args.number("version")?,
            },
            "MANIFEST" => PeerRequest::Manifest {
                id: args.parse("id")?,
            },
            "GET" => PeerRequest::Get {
                id: args.parse("id")?,
                index: args.number("chunk index")?,
            },
            "HAVE" => PeerRequest::Have {
                id: args.parse("id")?,
                len: args.number("map length")?,
            },
            "AUTH" => PeerRequest::Auth {
                id: args.parse("id")?,
                proof: args.parse("proof")?,
            },
            "QUIT" => PeerRequest::Quit,
            _ => return Err(ParseError::UnknownCommand(verb.chars().take(40).collect())),
        };
        args.end()?;
        Ok(req)
    }

    pub fn encode(&self) -> String {
        match self {
            PeerRequest::Hello { version } => format!("HELLO {version}\n"),
            PeerRequest::Manifest { id } => format!("MANIFEST {id}\n"),
            PeerRequest::Get { id, index } => format!("GET {id} {index}\n"),
            PeerRequest::Have { id, len } => format!("HAVE {id} {len}\n"),
            PeerRequest::Auth { id, proof } => format!("AUTH {id} {proof}\n"),
            PeerRequest::Quit => "QUIT\n".to_string(),
        }
    }
}

/// The header of a `HAVE` reply: `<len> complete|partial` (after `OK `),
/// `len` at most `max`. Returns the length and whether the peer has the
/// whole file.
pub fn parse_have_header(text: &str, max: usize) -> Result<(usize, bool), ParseError> {
    let mut args = Args::new(text);
    let len: usize = args.number("map length")?;
    let complete = match args.word("peer state")? {
        "complete" => true,
        "partial" => false,
        other => return Err(ParseError::invalid("peer state", other)),
    };
    args.end()?;
    if len > max {
        return Err(ParseError::invalid("map length", text));
    }
    Ok((len, complete))
}

/// Why a peer refused a request, from the reason of its `ERR` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `not sharing <id>`: it does not share the file (or that chunk).
    NotHere,
    /// Anything else.
    Other,
}

/// Reads the reason of an `ERR` reply to `GET` or `MANIFEST`.
pub fn refusal(reason: &str) -> Refusal {
    match reason.starts_with(NOT_SHARING) {
        true => Refusal::NotHere,
        false => Refusal::Other,
    }
}

/// How a chunk server's refusal of a file it does not share starts.
pub const NOT_SHARING: &str = "not sharing";

/// The header line of a `HAVE` reply with a `len`-byte map.
pub fn have_header(len: usize, complete: bool) -> String {
    format!("OK {len} {}\n", state(complete))
}

/// `complete` or `partial`, as rows and `HAVE` replies spell a peer's state.
pub fn state(complete: bool) -> &'static str {
    if complete {
        "complete"
    } else {
        "partial"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> FileId {
        FileId([n; 32])
    }

    #[test]
    fn peer_requests_round_trip() {
        for req in [
            PeerRequest::Hello { version: 1 },
            PeerRequest::Manifest { id: id(1) },
            PeerRequest::Get {
                id: id(9),
                index: 4_000_000,
            },
            PeerRequest::Have { id: id(2), len: 0 },
            PeerRequest::Have {
                id: id(2),
                len: 256,
            },
            PeerRequest::Auth {
                id: id(3),
                proof: Proof([0xfe; 32]),
            },
            PeerRequest::Quit,
        ] {
            assert_eq!(PeerRequest::parse(req.encode().trim_end()), Ok(req));
        }
        assert_eq!(PeerRequest::parse("quit"), Ok(PeerRequest::Quit));
    }

    #[test]
    fn have_headers_round_trip_and_are_bounded() {
        for complete in [true, false] {
            let line = have_header(16, complete);
            let text = line.trim_end().strip_prefix("OK ").unwrap();
            assert_eq!(parse_have_header(text, 16), Ok((16, complete)));
        }
        for bad in [
            "",
            "16",
            "17 complete",
            "16 whole",
            "16 partial x",
            "-1 partial",
        ] {
            assert!(parse_have_header(bad, 16).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refusals_are_read_by_their_reason() {
        assert_eq!(refusal(&format!("not sharing {}", id(1))), Refusal::NotHere);
        assert_eq!(refusal("busy"), Refusal::Other);
        assert_eq!(refusal("bad request"), Refusal::Other);
    }

    #[test]
    fn malformed_peer_requests_are_errors_not_panics() {
        for line in [
            "GET",
            &format!("GET {}", id(1)),
            &format!("GET {} -1", id(1)),
            "MANIFEST 12",
            &format!("HAVE {}", id(1)),
            &format!("HAVE {} 01", id(1)),
            &format!("HAVE {} 1 2", id(1)),
            &format!("AUTH {}", id(1)),
            &format!("AUTH {} 12", id(1)),
        ] {
            assert!(PeerRequest::parse(line).is_err(), "accepted {line:?}");
        }
    }
}
