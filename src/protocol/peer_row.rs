//! The rows of the tracker's `PEERS` reply, in each version's form (see
//! docs/PROTOCOL.md, "PEERS"). No I/O here.

use std::net::SocketAddr;

use super::codec::{Args, ParseError};
use super::nat_msg::Via;
use super::peer_msg::state;
use crate::identity::PeerId;

/// One row of a `PEERS` reply. Version 1 rows are `<ip>:<port>` (IPv6 as
/// `[ip]:port`) and list complete peers only; version 2 rows add the state
/// and the peer's id: `<ip>:<port> complete|partial <id>`; version 3 rows
/// end with ` punch` or ` relay` for a peer behind NAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerEntry {
    pub addr: SocketAddr,
    pub complete: bool,
    /// The id the peer's certificate proved to the tracker (version 2).
    pub id: Option<PeerId>,
    /// How the tracker knows it can be reached (version 3).
    pub via: Via,
}

impl PeerEntry {
    /// The row as a client that said `HELLO <version>` reads it.
    pub fn encode(&self, version: u32) -> String {
        let via = match (version, self.via.word()) {
            (3.., Some(word)) => format!(" {word}"),
            _ => String::new(),
        };
        match (version, self.id) {
            (1, _) => format!("{}\n", self.addr),
            (_, Some(id)) => format!("{} {} {id}{via}\n", self.addr, state(self.complete)),
            (_, None) => format!("{} {}\n", self.addr, state(self.complete)),
        }
    }

    /// Parses a row of either version (a version 1 row is a complete peer).
    pub fn parse(line: &str) -> Result<Self, ParseError> {
        let mut args = Args::new(line);
        let addr = args
            .word("peer address")?
            .parse()
            .map_err(|_| ParseError::invalid("peer address", line))?;
        let complete = match args.word("peer state") {
            Err(ParseError::Missing(_)) => true,
            Ok("complete") => true,
            Ok("partial") => false,
            Ok(other) => return Err(ParseError::invalid("peer state", other)),
            Err(e) => return Err(e),
        };
        let id = match args.word("peer id") {
            Err(ParseError::Missing(_)) => None,
            Ok(id) => Some(id.parse().map_err(|_| ParseError::invalid("peer id", id))?),
            Err(e) => return Err(e),
        };
        let via = match args.word("peer way") {
            Err(ParseError::Missing(_)) => Via::Direct,
            Ok(word) => {
                Via::from_word(word).ok_or_else(|| ParseError::invalid("peer way", word))?
            }
            Err(e) => return Err(e),
        };
        args.end()?;
        Ok(PeerEntry {
            addr,
            complete,
            id,
            via,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_rows_of_every_version() {
        let addr: SocketAddr = "[::1]:80".parse().unwrap();
        let ids = [None, Some(PeerId([3; 16]))];
        for (complete, id) in [true, false]
            .into_iter()
            .flat_map(|c| ids.map(|id| (c, id)))
        {
            let row = PeerEntry {
                addr,
                complete,
                id,
                via: Via::Direct,
            };
            assert_eq!(PeerEntry::parse(row.encode(2).trim_end()), Ok(row));
        }
        let id = PeerId([3; 16]);
        let row = |via| PeerEntry {
            addr,
            complete: true,
            id: Some(id),
            via,
        };
        // The way is a version 3 word; version 2 rows leave it out.
        let punch = row(Via::Punch);
        assert_eq!(punch.encode(3), format!("[::1]:80 complete {id} punch\n"));
        assert_eq!(punch.encode(2), format!("[::1]:80 complete {id}\n"));
        for via in [Via::Direct, Via::Punch, Via::Relay] {
            assert_eq!(
                PeerEntry::parse(row(via).encode(3).trim_end()),
                Ok(row(via))
            );
        }
        assert_eq!(punch.encode(1), "[::1]:80\n");
        assert_eq!(
            PeerEntry::parse("127.0.0.1:9"),
            Ok(PeerEntry {
                addr: "127.0.0.1:9".parse().unwrap(),
                complete: true,
                id: None,
                via: Via::Direct,
            })
        );
        for bad in [
            "",
            "x:1",
            "127.0.0.1:9 half",
            "127.0.0.1:9 partial x",
            "127.0.0.1:9 partial aaaaaaaaaaaaaaaaaaaaaaaaaa x",
            &format!("127.0.0.1:9 partial {id} direct"),
            &format!("127.0.0.1:9 partial {id} relay x"),
        ] {
            assert!(PeerEntry::parse(bad).is_err(), "{bad:?}");
        }
    }
}
