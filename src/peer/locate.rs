//! Turning what the user typed (`NAME`, an id or id prefix, a share link or
//! a ticket) into one file id, a name to save it under, and the peers that
//! have it: a ticket's sender, the tracker's and the DHT's. Any one source
//! is enough. A ticket's sender is reached by a staggered race of its
//! ways (`race`).

mod race;

use std::net::SocketAddr;
use std::sync::Arc;

use super::dial::{Dialer, PeerAddr, Way};
use super::PeerError;
use crate::bounds::{CONNECT_TIMEOUT, TICKET_STAGGER};
use crate::dht::DhtNode;
use crate::link::ShareLink;
use crate::manifest::FileId;
use crate::private::Secret;
use crate::protocol::message::IdPrefix;
use crate::protocol::FileSummary;
use crate::ticket::Ticket;

/// A file to download and where to get it.
#[derive(Debug, Clone)]
pub struct Located {
    pub id: FileId,
    /// A private share's secret (from its link).
    pub secret: Option<Secret>,
    pub name: String,
    /// The size the tracker (by most peers) or link claims, for display.
    pub size: Option<u64>,
    /// Every size claimed for it; the manifest must declare one of them (an
    /// empty list checks nothing: a bare id with no tracker to ask).
    pub sizes: Vec<u64>,
    /// Every distinct peer, tracker's first.
    pub peers: Vec<PeerAddr>,
    pub from_tracker: usize,
    pub from_dht: usize,
}

/// What the user asked for, before peers are looked up.
pub struct Wanted {
    pub id: FileId,
    pub secret: Option<Secret>,
    /// A ticket's sender, reachable at each address it gave.
    pub direct: Option<PeerAddr>,
    pub name: Option<String>,
    /// As in [`Located`].
    pub size: Option<u64>,
    pub sizes: Vec<u64>,
}

/// The tracker's answers `wanted` needs: files by name, and by id prefix.
pub trait Catalogue {
    /// Files whose name contains `text`.
    fn search(&self, text: &str) -> Result<Vec<FileSummary>, PeerError>;
    /// Files whose id starts with `prefix`.
    fn info(&self, prefix: &IdPrefix) -> Result<Vec<FileSummary>, PeerError>;
}

/// Resolves `target`, asking the tracker only what it must: nothing for a
/// link that names its file and size, `INFO <id>` for a full id (or a link
/// without name or size), and for a name (or id prefix) `SEARCH <name>`
/// (and `INFO <prefix>`). A link or full id works without a tracker; a name
/// or prefix does not. A private link is never looked up by its id (the
/// tracker does not list it, and asking would tell it which file).
pub fn wanted(target: &str, tracker: &dyn Catalogue) -> Result<Wanted, PeerError> {
    if Ticket::is_ticket(target) {
        let t: Ticket = target.parse()?;
        return Ok(Wanted {
            id: t.id,
            secret: t.secret,
            direct: PeerAddr::with_ways(Some(t.peer), ticket_ways(&t)),
            name: Some(t.name),
            size: Some(t.size),
            sizes: vec![t.size],
        });
    }
    if ShareLink::is_link(target) {
        let link: ShareLink = target.parse()?;
        let known = match (&link.name, link.size, link.secret) {
            (Some(_), Some(_), _) | (_, _, Some(_)) => Vec::new(),
            _ => known_rows(tracker, &link.id),
        };
        let sizes = match link.size {
            Some(size) => vec![size],
            None => known.iter().map(|f| f.size).collect(),
        };
        return Ok(Wanted {
            id: link.id,
            secret: link.secret,
            direct: None,
            name: link.name.or_else(|| known.first().map(|f| f.name.clone())),
            size: link.size.or(known.first().map(|f| f.size)),
            sizes,
        });
    }
    if let Ok(id) = target.parse::<FileId>() {
        let known = known_rows(tracker, &id);
        return Ok(Wanted {
            id,
            secret: None,
            direct: None,
            name: known.first().map(|f| f.name.clone()),
            size: known.first().map(|f| f.size),
            sizes: known.iter().map(|f| f.size).collect(),
        });
    }
    let mut files: Vec<FileSummary> = tracker
        .search(target)?
        .into_iter()
        .filter(|f| f.name == target)
        .collect();
    if let Ok(prefix) = target.parse::<IdPrefix>() {
        files.extend(tracker.info(&prefix)?);
    }
    let rows = files.clone();
    let file = resolve(target, files)?;
    Ok(Wanted {
        id: file.id,
        secret: None,
        direct: None,
        sizes: sizes_of(&rows, file.id),
        name: Some(file.name),
        size: Some(file.size),
    })
}

/// The sizes claimed for `id` among `rows`.
fn sizes_of(rows: &[FileSummary], id: FileId) -> Vec<u64> {
    rows.iter().filter(|f| f.id == id).map(|f| f.size).collect()
}

/// The tracker's rows for `id` (one per claimed size, most peers first),
/// if it is up and knows it.
fn known_rows(tracker: &dyn Catalogue, id: &FileId) -> Vec<FileSummary> {
    let Ok(prefix) = id.to_hex().parse::<IdPrefix>() else {
        return Vec::new();
    };
    match tracker.info(&prefix) {
        Ok(files) => files.into_iter().filter(|f| f.id == *id).collect(),
        Err(e) => {
            log::info!("{e}; going on without the tracker's name and size");
            Vec::new()
        }
    }
}

/// Merges peer lists, each address once: the tracker's rows (with their
/// ids) first, an address listed again dropped whatever id it comes with
/// (the first one is kept: one process listens there, so one id can be
/// right), then the DHT's addresses the tracker did not list. Returns them
/// with how many came from each. A hostile tracker repeating a silent
/// peer's address therefore costs one manifest request, not one per row.
pub fn merge_peers(tracker: Vec<PeerAddr>, dht: Vec<SocketAddr>) -> (Vec<PeerAddr>, usize, usize) {
    let mut all: Vec<PeerAddr> = Vec::with_capacity(tracker.len() + dht.len());
    for peer in tracker {
        if !all.iter().any(|p| p.shown() == peer.shown()) {
            all.push(peer);
        }
    }
    let from_tracker = all.len();
    for addr in dht {
        if !all.iter().any(|p| p.shown() == addr) {
            all.push(PeerAddr::unpinned(addr));
        }
    }
    let from_dht = all.len() - from_tracker;
    (all, from_tracker, from_dht)
}

/// Whether `peer` is this process, listening on `listen`: the same port on
/// a loopback address or on the address we are bound to. (Behind a remote
/// tracker our own entry carries an address we cannot recognise cheaply; a
/// download from ourselves then still works, it is just wasted effort.)
pub fn is_self(peer: SocketAddr, listen: SocketAddr) -> bool {
    peer.port() == listen.port() && (peer.ip().is_loopback() || peer.ip() == listen.ip())
}

/// A ticket sender's ways: its addresses, then, when the ticket carries a
/// tracker, a hole punch through that tracker and its relay (shown as its
/// first address).
fn ticket_ways(t: &Ticket) -> Vec<Way> {
    let mut ways: Vec<Way> = t.addrs.iter().map(|&addr| Way::Direct(addr)).collect();
    if let (Some(_), Some(&first)) = (&t.tracker, t.addrs.first()) {
        ways.extend([Way::Punched(first), Way::Relayed(first)]);
    }
    ways
}

/// `peer` (a ticket's sender) by the first of its ways to complete a TLS
/// handshake with its pinned id, or else the first to say it is busy (at
/// its connection caps, or the tracker at its punch caps: there, only full
/// for now, so the download waits for it within its patience). Its direct
/// ways are dialled at once, a hole punch through the ticket's tracker
/// [`TICKET_STAGGER`] later, its relay [`TICKET_STAGGER`] after that, each
/// sooner when every way before it has failed (see [`race`]): a NAT that
/// drops the SYN costs a stagger, not a timeout. Each way has at least
/// [`CONNECT_TIMEOUT`].
pub fn first_reachable(peer: &PeerAddr, dialer: &Arc<dyn Dialer>) -> Result<PeerAddr, Vec<String>> {
    race::first(peer, dialer, TICKET_STAGGER, CONNECT_TIMEOUT)
}

/// Peers for `id` from the DHT, if it is on.
pub fn dht_peers(dht: Option<&DhtNode>, id: &FileId) -> Vec<SocketAddr> {
    dht.map(|d| d.peers(id)).unwrap_or_default()
}

/// Picks the file `target` names among `files`: an exact name or an id
/// prefix (at least 4 hex digits). Several distinct ids are ambiguous.
/// Each id comes back once (see [`by_id`]).
pub fn resolve(target: &str, files: Vec<FileSummary>) -> Result<FileSummary, PeerError> {
    let prefix = target.to_ascii_lowercase();
    let is_prefix = prefix.len() >= 4 && prefix.bytes().all(|b| b.is_ascii_hexdigit());
    let mut matches = by_id(
        files
            .into_iter()
            .filter(|f| f.name == target || (is_prefix && f.id.to_hex().starts_with(&prefix))),
    );
    match matches.len() {
        // A few hex digits were likely meant as an id: say what one needs.
        0 if !target.is_empty()
            && target.len() < 4
            && target.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Err(PeerError::ShortPrefix(target.to_string()))
        }
        0 => Err(PeerError::NotFound(target.to_string())),
        1 => Ok(matches.remove(0)),
        _ => Err(PeerError::Ambiguous {
            target: target.to_string(),
            candidates: matches,
        }),
    }
}

/// The tracker's rows (one per id and claimed size, from `SEARCH` and
/// `INFO`, so possibly twice) as one row per id, in id order: the size
/// most of its peers claim (the smaller on a tie: nothing tells a false
/// claim from a true one), with the peers of all its rows.
fn by_id(rows: impl Iterator<Item = FileSummary>) -> Vec<FileSummary> {
    let mut rows: Vec<FileSummary> = rows.collect();
    rows.sort_by_key(|f| (f.id, f.size));
    rows.dedup_by_key(|f| (f.id, f.size));
    let mut files: Vec<FileSummary> = Vec::with_capacity(rows.len());
    let mut best_peers = 0;
    for row in rows {
        match files.last_mut() {
            Some(file) if file.id == row.id => {
                if row.peers > best_peers {
                    best_peers = row.peers;
                    file.size = row.size;
                }
                file.peers = file.peers.saturating_add(row.peers);
            }
            _ => {
                best_peers = row.peers;
                files.push(row);
            }
        }
    }
    files
}

#[cfg(test)]
mod tests;
