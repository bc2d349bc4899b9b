//! What both protocols share: reply lines, list and payload headers, file
//! summaries, id prefixes, name rules and the `HELLO` version check. The
//! requests are in `tracker_msg` and `peer_msg`: one type per message, each
//! with `parse` (from a framed line) and `encode` (to a line ending in
//! `\n`). Verbs are case-insensitive on input and upper-case on output. No
//! I/O here.

use super::codec::{next_word, Args, ParseError};
use super::peer_msg::PeerRequest;
use crate::manifest::FileId;
use crate::name::validate_name;

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

/// The `HELLO` line p2pshare's own clients start every peer connection
/// with.
pub fn hello_line() -> String {
    hello_at(PROTOCOL_VERSION)
}

/// `HELLO <version>`.
pub fn hello_at(version: u32) -> String {
    PeerRequest::Hello { version }.encode()
}

/// The peer protocol version this build speaks, and the oldest it still
/// answers (peers and tracker alike).
pub const PROTOCOL_VERSION: u32 = 2;
pub const OLDEST_VERSION: u32 = 1;

/// The tracker protocol version this build speaks: version 3 adds the
/// way to reach a peer behind NAT to `PEERS` rows, and the local port to
/// `LISTEN`; the peer protocol is the same as version 2.
pub const TRACKER_VERSION: u32 = 3;

/// The version a `HELLO <version>` reply announces (`OK p2pshare <v>`):
/// what the other side speaks, which may be older than ours.
pub fn parse_hello_reply(text: &str) -> Result<u32, ParseError> {
    let mut args = Args::new(text);
    if args.word("protocol name")? != "p2pshare" {
        return Err(ParseError::BadReply(text.chars().take(80).collect()));
    }
    let version = args.number("version")?;
    args.end()?;
    Ok(version)
}

/// The reply to `HELLO <version>` from a tracker or peer (`role`) that
/// speaks up to `newest`. A wrong version gets `ERR` and the connection
/// stays open, like any refused request; the client decides whether to go
/// on.
pub fn hello_reply(version: u32, newest: u32, role: &str) -> Reply {
    if (OLDEST_VERSION..=newest).contains(&version) {
        Reply::ok(format!("p2pshare {version}"))
    } else {
        Reply::err(format!(
            "unsupported protocol version {version} (this {role} speaks {OLDEST_VERSION} to {newest})"
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

/// Encodes a list reply of at most `max_bytes` in all: `OK <n>` and one
/// line per item that fits; `OK <n> more` if `more` (more matched than
/// `items` holds) or if items were left out to keep within `max_bytes`.
pub fn encode_bounded_list<T>(
    items: &[T],
    more: bool,
    max_bytes: usize,
    line: impl Fn(&T) -> String,
) -> String {
    // The longest header: `OK ` + digits + ` more\n`.
    let room = max_bytes.saturating_sub(32);
    let mut body = String::new();
    let mut n = 0;
    for item in items {
        let row = line(item);
        if body.len() + row.len() > room {
            break;
        }
        body.push_str(&row);
        n += 1;
    }
    let more = if more || n < items.len() { " more" } else { "" };
    format!("OK {n}{more}\n{body}")
}

/// Parses the text of a list reply's `OK <count>[ more]`, the count
/// bounded by `max`; returns the count and whether `more` was said.
pub fn parse_list_header(text: &str, max: usize) -> Result<(usize, bool), ParseError> {
    let (count, more) = match text.strip_suffix(" more") {
        Some(count) => (count, true),
        None => (text, false),
    };
    Ok((parse_count(count, max)?, more))
}

/// Encodes a list reply: `OK <n>` and one line per item.
pub fn encode_list<T>(items: &[T], line: impl Fn(&T) -> String) -> String {
    let mut out = format!("OK {}\n", items.len());
    for item in items {
        out.push_str(&line(item));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> FileId {
        FileId([n; 32])
    }

    #[test]
    fn replies_and_summaries_round_trip() {
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
    }

    #[test]
    fn bounded_lists_say_more_when_cut() {
        let rows = ["aaaa\n", "bbbb\n", "cccc\n"];
        let line = |r: &&str| r.to_string();
        assert_eq!(
            encode_bounded_list(&rows, false, 1000, line),
            "OK 3\naaaa\nbbbb\ncccc\n"
        );
        assert_eq!(
            encode_bounded_list(&rows, true, 1000, line),
            "OK 3 more\naaaa\nbbbb\ncccc\n"
        );
        let cut = encode_bounded_list(&rows, false, 32 + 10, line);
        assert_eq!(cut, "OK 2 more\naaaa\nbbbb\n");
        assert!(cut.len() <= 42);
        assert_eq!(parse_list_header("2 more", 10), Ok((2, true)));
        assert_eq!(parse_list_header("2", 10), Ok((2, false)));
        for bad in ["2 mor", "more", "2 more more", "11 more"] {
            assert!(parse_list_header(bad, 10).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hello_answers_every_version_it_speaks() {
        for v in OLDEST_VERSION..=TRACKER_VERSION {
            let reply = hello_reply(v, TRACKER_VERSION, "tracker");
            let reply = reply.into_result().expect("spoken");
            assert_eq!(parse_hello_reply(&reply), Ok(v));
        }
        let refused = hello_reply(PROTOCOL_VERSION + 1, PROTOCOL_VERSION, "peer").into_result();
        assert_eq!(
            refused,
            Err(format!(
                "unsupported protocol version 3 (this peer speaks 1 to {PROTOCOL_VERSION})"
            ))
        );
        assert!(hello_reply(0, TRACKER_VERSION, "tracker")
            .into_result()
            .is_err());
        assert!(parse_hello_reply("redis 2").is_err());
        assert!(parse_hello_reply("p2pshare two").is_err());
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        assert!(Reply::parse("YES").is_err());
        assert!(parse_payload_len("99999999999999999999", 10).is_err());
        assert!(parse_payload_len("11", 10).is_err());
        assert_eq!(parse_payload_len("10", 10), Ok(10));
        assert!(parse_count("1 2", 10).is_err());
    }
}
