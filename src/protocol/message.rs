//! One type per protocol message, each with `parse` (from a framed line) and
//! `encode` (to a line ending in `\n`). Verbs are case-insensitive on input and
//! upper-case on output. No I/O here.

use std::fmt::Write as _;
use std::net::SocketAddr;

use super::codec::{next_word, Args, ParseError};
use crate::bounds::MAX_NAME_LEN;
use crate::manifest::FileId;

/// A request to the tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerRequest {
    /// `HELLO <version>`: protocol version check.
    Hello { version: u32 },
    /// `REGISTER <port> <id> <size> <name>`: the sender, listening on `port`,
    /// has file `id`. Also refreshes the registration (the periodic announce).
    Register {
        port: u16,
        id: FileId,
        size: u64,
        name: String,
    },
    /// `UNREGISTER <port> <id>`: the sender no longer has file `id`.
    Unregister { port: u16, id: FileId },
    /// `BYE <port>`: the sender is leaving; forget all its files.
    Bye { port: u16 },
    /// `SEARCH [text]`: files whose name contains `text` (all when empty).
    Search { text: String },
    /// `PEERS <id>`: the peers that have file `id`.
    Peers { id: FileId },
    /// `INFO <id prefix>`: the files whose id starts with the prefix (4 to
    /// 64 hex digits): what a downloader needs to know of one id.
    Info { prefix: IdPrefix },
    /// `QUIT`: close the connection.
    Quit,
}

/// A request to a peer's chunk server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerRequest {
    /// `HELLO <version>`.
    Hello { version: u32 },
    /// `MANIFEST <id>`: the manifest of file `id`, as a payload.
    Manifest { id: FileId },
    /// `GET <id> <index>`: chunk `index` of file `id`, as a payload.
    Get { id: FileId, index: u32 },
    /// `QUIT`.
    Quit,
}

/// A reply line: `OK[ <text>]` or `ERR <reason>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ok(String),
    Err(String),
}

/// The start of a file id: 4 to 64 hex digits, kept in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdPrefix(String);

impl IdPrefix {
    /// The shortest prefix accepted: 16 bits, enough to pick one file
    /// among the few thousand a tracker lists.
    pub const MIN_LEN: usize = 4;

    pub fn matches(&self, id: &FileId) -> bool {
        id.to_hex().starts_with(&self.0)
    }

    /// The whole id, if the prefix has all 64 digits.
    pub fn full(&self) -> Option<FileId> {
        self.0.parse().ok()
    }
}

impl std::str::FromStr for IdPrefix {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok =
            (Self::MIN_LEN..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit());
        if ok {
            Ok(IdPrefix(s.to_ascii_lowercase()))
        } else {
            Err(ParseError::invalid("id prefix", s))
        }
    }
}

impl std::fmt::Display for IdPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One line of a `SEARCH` or `INFO` reply: `<id> <size> <peers> <name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    pub id: FileId,
    pub size: u64,
    pub peers: u32,
    pub name: String,
}

impl TrackerRequest {
    pub fn parse(line: &str) -> Result<Self, ParseError> {
        let (verb, rest) = next_word(line);
        let mut args = Args::new(rest);
        let req = match verb.to_ascii_uppercase().as_str() {
            "" => return Err(ParseError::Empty),
            "HELLO" => TrackerRequest::Hello {
                version: args.number("version")?,
            },
            "REGISTER" => {
                let port = args.port()?;
                let id = args.parse("id")?;
                let size = args.number("size")?;
                let name = args.rest();
                validate_name(name)?;
                return Ok(TrackerRequest::Register {
                    port,
                    id,
                    size,
                    name: name.to_string(),
                });
            }
            "UNREGISTER" => TrackerRequest::Unregister {
                port: args.port()?,
                id: args.parse("id")?,
            },
            "BYE" => TrackerRequest::Bye { port: args.port()? },
            "SEARCH" => {
                return Ok(TrackerRequest::Search {
                    text: args.rest().trim_matches(' ').to_string(),
                })
            }
            "PEERS" => TrackerRequest::Peers {
                id: args.parse("id")?,
            },
            "INFO" => TrackerRequest::Info {
                prefix: args.parse("id prefix")?,
            },
            "QUIT" => TrackerRequest::Quit,
            _ => return Err(ParseError::UnknownCommand(verb.chars().take(40).collect())),
        };
        args.end()?;
        Ok(req)
    }

    pub fn encode(&self) -> String {
        match self {
            TrackerRequest::Hello { version } => format!("HELLO {version}\n"),
            TrackerRequest::Register {
                port,
                id,
                size,
                name,
            } => format!("REGISTER {port} {id} {size} {name}\n"),
            TrackerRequest::Unregister { port, id } => format!("UNREGISTER {port} {id}\n"),
            TrackerRequest::Bye { port } => format!("BYE {port}\n"),
            TrackerRequest::Search { text } if text.is_empty() => "SEARCH\n".to_string(),
            TrackerRequest::Search { text } => format!("SEARCH {text}\n"),
            TrackerRequest::Peers { id } => format!("PEERS {id}\n"),
            TrackerRequest::Info { prefix } => format!("INFO {prefix}\n"),
            TrackerRequest::Quit => "QUIT\n".to_string(),
        }
    }
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
            PeerRequest::Quit => "QUIT\n".to_string(),
        }
    }
}

impl Reply {
    pub fn ok(text: impl Into<String>) -> Self {
        Reply::Ok(text.into())
    }

    pub fn err(reason: impl std::fmt::Display) -> Self {
        Reply::Err(reason.to_string())
    }

    pub fn parse(line: &str) -> Result<Self, ParseError> {
        let (verb, rest) = next_word(line);
        match verb {
            "OK" => Ok(Reply::Ok(rest.to_string())),
            "ERR" => Ok(Reply::Err(rest.to_string())),
            _ => Err(ParseError::BadReply(line.chars().take(80).collect())),
        }
    }

    pub fn encode(&self) -> String {
        match self {
            Reply::Ok(text) if text.is_empty() => "OK\n".to_string(),
            Reply::Ok(text) => format!("OK {text}\n"),
            Reply::Err(reason) => format!("ERR {reason}\n"),
        }
    }

    /// The text of an `OK` reply, or the reason of an `ERR` as an error.
    pub fn into_result(self) -> Result<String, String> {
        match self {
            Reply::Ok(text) => Ok(text),
            Reply::Err(reason) => Err(reason),
        }
    }
}

/// The `HELLO` line p2pshare's own clients start every connection with.
pub fn hello_line() -> String {
    PeerRequest::Hello {
        version: crate::PROTOCOL_VERSION,
    }
    .encode()
}

/// The reply to `HELLO <version>` from a tracker or peer (`role`). A wrong
/// version gets `ERR` and the connection stays open, like any refused
/// request; the client decides whether to go on.
pub fn hello_reply(version: u32, role: &str) -> Reply {
    if version == crate::PROTOCOL_VERSION {
        Reply::ok(format!("p2pshare {version}"))
    } else {
        Reply::err(format!(
            "unsupported protocol version {version} (this {role} speaks {})",
            crate::PROTOCOL_VERSION
        ))
    }
}

/// Parses the text of `OK <len>`, the header of a payload, bounded by `max`.
pub fn parse_payload_len(text: &str, max: usize) -> Result<usize, ParseError> {
    let mut args = Args::new(text);
    let len: usize = args.number("payload length")?;
    args.end()?;
    if len > max {
        return Err(ParseError::invalid("payload length", text));
    }
    Ok(len)
}

/// Parses the text of `OK <count>`, the header of a list, bounded by `max`.
pub fn parse_count(text: &str, max: usize) -> Result<usize, ParseError> {
    parse_payload_len(text, max).map_err(|_| ParseError::invalid("entry count", text))
}

impl FileSummary {
    pub fn parse(line: &str) -> Result<Self, ParseError> {
        let mut args = Args::new(line);
        let id = args.parse("id")?;
        let size = args.number("size")?;
        let peers = args.number("peer count")?;
        let name = args.rest();
        validate_name(name)?;
        Ok(FileSummary {
            id,
            size,
            peers,
            name: name.to_string(),
        })
    }

    pub fn encode(&self) -> String {
        format!("{} {} {} {}\n", self.id, self.size, self.peers, self.name)
    }
}

/// Encodes a list reply: `OK <n>` and one line per item.
pub fn encode_list<T>(items: &[T], line: impl Fn(&T) -> String) -> String {
    let mut out = format!("OK {}\n", items.len());
    for item in items {
        out.push_str(&line(item));
    }
    out
}

/// One line of a `PEERS` reply: `<ip>:<port>` (IPv6 as `[ip]:port`).
pub fn encode_peer(addr: &SocketAddr) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{addr}");
    s
}

pub fn parse_peer(line: &str) -> Result<SocketAddr, ParseError> {
    line.parse()
        .map_err(|_| ParseError::invalid("peer address", line))
}

/// A file name as registered and as written by a download: one path
/// component, 1..=255 bytes, no `/`, `\`, control characters or surrounding
/// spaces, and not `.` or `..`. Keeps a hostile tracker from steering a
/// download outside the current directory.
pub fn validate_name(name: &str) -> Result<(), ParseError> {
    let bad = name.is_empty()
        || name.len() > MAX_NAME_LEN
        || name == "."
        || name == ".."
        || name.trim() != name
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control);
    if bad {
        Err(ParseError::invalid("file name", name))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> FileId {
        FileId([n; 32])
    }

    #[test]
    fn tracker_requests_round_trip() {
        let reqs = [
            TrackerRequest::Hello { version: 1 },
            TrackerRequest::Register {
                port: 9001,
                id: id(7),
                size: 745,
                name: "my file (1).txt".into(),
            },
            TrackerRequest::Unregister { port: 1, id: id(2) },
            TrackerRequest::Bye { port: 65535 },
            TrackerRequest::Search {
                text: String::new(),
            },
            TrackerRequest::Search {
                text: "two words".into(),
            },
            TrackerRequest::Peers { id: id(3) },
            TrackerRequest::Info {
                prefix: "AbCd".parse().unwrap(),
            },
            TrackerRequest::Info {
                prefix: id(4).to_hex().parse().unwrap(),
            },
            TrackerRequest::Quit,
        ];
        for req in reqs {
            let line = req.encode();
            assert!(line.ends_with('\n') && line.len() <= crate::bounds::MAX_LINE);
            assert_eq!(TrackerRequest::parse(line.trim_end_matches('\n')), Ok(req));
        }
    }

    #[test]
    fn peer_requests_and_replies_round_trip() {
        for req in [
            PeerRequest::Hello { version: 1 },
            PeerRequest::Manifest { id: id(1) },
            PeerRequest::Get {
                id: id(9),
                index: 4_000_000,
            },
            PeerRequest::Quit,
        ] {
            assert_eq!(PeerRequest::parse(req.encode().trim_end()), Ok(req));
        }
        for reply in [Reply::ok(""), Reply::ok("12"), Reply::err("no such file")] {
            assert_eq!(Reply::parse(reply.encode().trim_end()), Ok(reply));
        }
        let s = FileSummary {
            id: id(5),
            size: 0,
            peers: 3,
            name: "a b".into(),
        };
        assert_eq!(FileSummary::parse(s.encode().trim_end()), Ok(s));
        let addr: SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(parse_peer(encode_peer(&addr).trim_end()), Ok(addr));
    }

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(
            TrackerRequest::parse("search"),
            Ok(TrackerRequest::Search {
                text: String::new()
            })
        );
        assert_eq!(PeerRequest::parse("quit"), Ok(PeerRequest::Quit));
    }

    #[test]
    fn malformed_requests_are_errors_not_panics() {
        let bad = [
            "",
            "   ",
            "FROB",
            "HELLO",
            "HELLO x",
            "REGISTER",
            "REGISTER 70000 x 1 name",
            "REGISTER 1 nothex 1 name",
            &format!("REGISTER 1 {} -1 name", id(1)),
            &format!("REGISTER 0 {} 1 name", id(1)),
            &format!("REGISTER +1 {} 1 name", id(1)),
            &format!("REGISTER 1 {} 01 name", id(1)),
            &format!("REGISTER 1 {} 1", id(1)),
            &format!("REGISTER 1 {} 1 ../etc/passwd", id(1)),
            &format!("REGISTER 1 {} 1 ..", id(1)),
            "UNREGISTER 1",
            "BYE",
            "BYE 1 2",
            "PEERS",
            "INFO",
            "INFO abc",
            "INFO abcg",
            &format!("INFO {}0", id(1)),
            "QUIT now",
        ];
        for line in bad {
            assert!(TrackerRequest::parse(line).is_err(), "accepted {line:?}");
        }
        for line in [
            "GET",
            &format!("GET {}", id(1)),
            &format!("GET {} -1", id(1)),
            "MANIFEST 12",
        ] {
            assert!(PeerRequest::parse(line).is_err(), "accepted {line:?}");
        }
        assert!(Reply::parse("YES").is_err());
        assert!(parse_payload_len("99999999999999999999", 10).is_err());
        assert!(parse_payload_len("11", 10).is_err());
        assert_eq!(parse_payload_len("10", 10), Ok(10));
        assert!(parse_count("1 2", 10).is_err());
    }

    #[test]
    fn names_are_single_safe_components() {
        for good in ["sample.txt", "a b", "ünïcödé", ".hidden", &"x".repeat(255)] {
            assert_eq!(validate_name(good), Ok(()), "{good:?}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a\\b",
            " lead",
            "trail ",
            "tab\t",
            &"x".repeat(256),
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }
}
