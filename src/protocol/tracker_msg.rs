//! The tracker's requests, one variant per verb (the rows of its `PEERS`
//! reply are `peer_row`'s). No I/O here.

use super::codec::{next_word, Args, ParseError};
use super::message::IdPrefix;
use super::nat_msg::Token;
use crate::identity::PeerId;
use crate::manifest::FileId;
use crate::name::validate_name;

/// A request to the tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerRequest {
    /// `HELLO <version>`: protocol version check.
    Hello { version: u32 },
    /// `REGISTER <port> <id> <size> [name]`: the sender, listening on
    /// `port`, has all of file `id`; `PARTIAL` (same arguments): it has part
    /// of it and is downloading the rest. Either also refreshes the
    /// registration (the periodic announce), and turns a partial entry
    /// complete or back. Without a name the file is *unlisted* (a private
    /// share, registered under its blinded id): `PEERS` finds it, `SEARCH`
    /// and `INFO` do not.
    Register {
        port: u16,
        id: FileId,
        size: u64,
        name: Option<String>,
        complete: bool,
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
    /// `WHOAMI [<port>]`: the address the tracker sees; with a port, also
    /// whether it can dial that port back (see [`super::nat_msg`]).
    WhoAmI { port: Option<u16> },
    /// `LISTEN <port> [<from port>]`: hold this connection as the peer's
    /// control connection; `from` is the local port it comes from
    /// (version 3), which tells whether the peer's NAT keeps ports.
    Listen { port: u16, from: Option<u16> },
    /// `RELAY <peer id>`: pair the sender with a listening peer.
    Relay { peer: PeerId },
    /// `JOIN <token>`: this plain connection is one side of a relay pairing.
    Join { token: Token },
    /// `PUNCH <peer id> <port>`: introduce the sender, about to connect
    /// from local `port`, to a listening peer for a hole punch.
    Punch { peer: PeerId, port: u16 },
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
            verb @ ("REGISTER" | "PARTIAL") => {
                let port = args.port()?;
                let id = args.parse("id")?;
                let size = args.number("size")?;
                let name = match args.rest() {
                    "" => None,
                    name => {
                        validate_name(name)?;
                        Some(name.to_string())
                    }
                };
                return Ok(TrackerRequest::Register {
                    port,
                    id,
                    size,
                    name,
                    complete: verb == "REGISTER",
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
            "WHOAMI" => {
                let port = match args.rest().trim_matches(' ') {
                    "" => None,
                    rest => {
                        let mut args = Args::new(rest);
                        let port = args.port()?;
                        args.end()?;
                        Some(port)
                    }
                };
                return Ok(TrackerRequest::WhoAmI { port });
            }
            "LISTEN" => TrackerRequest::Listen {
                port: args.port()?,
                from: match args.is_done() {
                    true => None,
                    false => Some(args.port()?),
                },
            },
            "RELAY" => TrackerRequest::Relay {
                peer: args.parse("peer id")?,
            },
            "JOIN" => TrackerRequest::Join {
                token: args.parse("token")?,
            },
            "PUNCH" => TrackerRequest::Punch {
                peer: args.parse("peer id")?,
                port: args.port()?,
            },
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
                complete,
            } => {
                let verb = if *complete { "REGISTER" } else { "PARTIAL" };
                match name {
                    Some(name) => format!("{verb} {port} {id} {size} {name}\n"),
                    None => format!("{verb} {port} {id} {size}\n"),
                }
            }
            TrackerRequest::Unregister { port, id } => format!("UNREGISTER {port} {id}\n"),
            TrackerRequest::Bye { port } => format!("BYE {port}\n"),
            TrackerRequest::Search { text } if text.is_empty() => "SEARCH\n".to_string(),
            TrackerRequest::Search { text } => format!("SEARCH {text}\n"),
            TrackerRequest::Peers { id } => format!("PEERS {id}\n"),
            TrackerRequest::Info { prefix } => format!("INFO {prefix}\n"),
            TrackerRequest::Quit => "QUIT\n".to_string(),
            TrackerRequest::WhoAmI { port: None } => "WHOAMI\n".to_string(),
            TrackerRequest::WhoAmI { port: Some(port) } => format!("WHOAMI {port}\n"),
            TrackerRequest::Listen { port, from: None } => format!("LISTEN {port}\n"),
            TrackerRequest::Listen {
                port,
                from: Some(from),
            } => format!("LISTEN {port} {from}\n"),
            TrackerRequest::Relay { peer } => format!("RELAY {peer}\n"),
            TrackerRequest::Join { token } => format!("JOIN {token}\n"),
            TrackerRequest::Punch { peer, port } => format!("PUNCH {peer} {port}\n"),
        }
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
                name: Some("my file (1).txt".into()),
                complete: true,
            },
            TrackerRequest::Register {
                port: 9002,
                id: id(8),
                size: 0,
                name: Some("half".into()),
                complete: false,
            },
            TrackerRequest::Register {
                port: 9003,
                id: id(9),
                size: 5,
                name: None,
                complete: true,
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
            TrackerRequest::WhoAmI { port: None },
            TrackerRequest::WhoAmI { port: Some(40000) },
            TrackerRequest::Listen {
                port: 1,
                from: None,
            },
            TrackerRequest::Listen {
                port: 1,
                from: Some(65535),
            },
            TrackerRequest::Relay {
                peer: PeerId([5; 16]),
            },
            TrackerRequest::Join {
                token: Token([6; 16]),
            },
            TrackerRequest::Punch {
                peer: PeerId([8; 16]),
                port: 40000,
            },
        ];
        for req in reqs {
            let line = req.encode();
            assert!(line.ends_with('\n') && line.len() <= crate::bounds::MAX_LINE);
            assert_eq!(TrackerRequest::parse(line.trim_end_matches('\n')), Ok(req));
        }
        assert!(TrackerRequest::Register {
            port: 1,
            id: id(1),
            size: 1,
            name: Some("x".into()),
            complete: false
        }
        .encode()
        .starts_with("PARTIAL "));
    }

    #[test]
    fn tracker_verbs_are_case_insensitive() {
        assert_eq!(
            TrackerRequest::parse("search"),
            Ok(TrackerRequest::Search {
                text: String::new()
            })
        );
    }

    #[test]
    fn malformed_tracker_requests_are_errors_not_panics() {
        let bad = [
            "",
            "   ",
            "FROB",
            "HELLO",
            "HELLO x",
            "REGISTER",
            "PARTIAL",
            "REGISTER 70000 x 1 name",
            "REGISTER 1 nothex 1 name",
            &format!("REGISTER 1 {} -1 name", id(1)),
            &format!("REGISTER 0 {} 1 name", id(1)),
            &format!("REGISTER +1 {} 1 name", id(1)),
            &format!("REGISTER 1 {} 01 name", id(1)),
            &format!("REGISTER 1 {} 1 ../etc/passwd", id(1)),
            &format!("REGISTER 1 {} 1 ..", id(1)),
            &format!("PARTIAL 1 {} 1 a/b", id(1)),
            "UNREGISTER 1",
            "BYE",
            "BYE 1 2",
            "PEERS",
            "INFO",
            "INFO abc",
            "INFO abcg",
            &format!("INFO {}0", id(1)),
            "QUIT now",
            "WHOAMI 0",
            "WHOAMI 1 2",
            "LISTEN",
            "RELAY nope",
            "JOIN 00",
        ];
        for line in bad {
            assert!(TrackerRequest::parse(line).is_err(), "accepted {line:?}");
        }
    }
}
