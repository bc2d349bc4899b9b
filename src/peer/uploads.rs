//! Who is fetching what from this peer: one record per downloader and file,
//! kept by the chunk server as it answers `HAVE` (the downloader's own
//! chunk map: how far it has got, from every source) and `GET` (what it
//! got from here since). The front shows them: `peer send` says who is
//! fetching, how far they are and when each has it all; `status` and the
//! page list them.
//!
//! A downloader is known by its certificate's id (each `peer` process has
//! one, a one-time `get` too), else by its address, so its connections
//! count as one. Progress is a lower bound: the chunks any of its `HAVE`s
//! listed and those sent from here (all of which it has, or will once
//! verified); a download that fetched its last chunks elsewhere without
//! asking again shows less than it has.
//!
//! Invariant: at most [`MAX_UPLOADS_SHOWN`] records; when full, the one
//! heard from longest ago gives way. Time is a parameter.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::bounds::MAX_UPLOADS_SHOWN;
use crate::chunkset::ChunkSet;
use crate::identity::PeerId;
use crate::manifest::FileId;
use crate::sync::LockExt;

use super::dial::Path;

/// Who a downloader is: its id, else its address's IP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Who {
    Id(PeerId),
    Ip(std::net::IpAddr),
}

impl Who {
    pub fn of(id: Option<PeerId>, addr: SocketAddr) -> Who {
        id.map_or(Who::Ip(addr.ip()), Who::Id)
    }
}

struct Upload {
    name: String,
    addr: SocketAddr,
    /// Chunks its `HAVE`s listed, and chunks sent from here.
    has: ChunkSet,
    /// Bytes sent from here in all.
    bytes: u64,
    started: Instant,
    last: Instant,
}

/// One downloader of one file, as `status`, the page and `send` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadView {
    /// Its id (26 characters), or `null` for a downloader without one.
    pub peer: Option<String>,
    pub addr: String,
    pub name: String,
    pub id: String,
    /// Chunks it has at least (see the module docs), of `total`.
    pub chunks: u32,
    pub total: u32,
    /// Bytes it got from here.
    pub bytes: u64,
    pub done: bool,
    pub secs: f64,
    /// Seconds since it was last heard from.
    pub idle_secs: u64,
    /// How its latest connection came: `direct`, or `relayed` (then
    /// `addr` is the relay's).
    #[serde(default)]
    pub path: Path,
}

/// Every downloader of this peer's files, heard from lately.
#[derive(Default)]
pub struct Uploads {
    all: Mutex<HashMap<(Who, FileId), Upload>>,
    /// How each downloader's latest connection came (absent: direct), at
    /// most [`MAX_UPLOADS_SHOWN`] of them.
    paths: Mutex<HashMap<Who, Path>>,
}

impl Uploads {
    /// `who`'s latest connection came by `path`.
    pub fn connected(&self, who: Who, path: Path) {
        let mut paths = self.paths.locked();
        if path == Path::Direct {
            paths.remove(&who);
        } else if paths.len() < MAX_UPLOADS_SHOWN || paths.contains_key(&who) {
            paths.insert(who, path);
        }
    }

    /// `who`, at `addr`, says in a `HAVE` that it has `theirs` of `file`
    /// (called `name`).
    pub fn have(
        &self,
        who: Who,
        addr: SocketAddr,
        file: (FileId, &str),
        theirs: &ChunkSet,
        now: Instant,
    ) {
        let mut all = self.all.locked();
        let u = entry(&mut all, who, addr, file, theirs.len(), now);
        u.has.union_with(theirs);
        u.last = now;
    }

    /// `chunk` of `file` (of `total` chunks), `bytes` long, was sent to
    /// `who`.
    pub fn sent(
        &self,
        who: Who,
        addr: SocketAddr,
        file: (FileId, &str),
        (chunk, total): (u32, u32),
        bytes: u64,
        now: Instant,
    ) {
        let mut all = self.all.locked();
        let u = entry(&mut all, who, addr, file, total, now);
        u.has.insert(chunk);
        u.bytes = u.bytes.saturating_add(bytes);
        u.last = now;
    }

    /// Every record with chunks sent from here, oldest first.
    pub fn snapshot(&self, now: Instant) -> Vec<UploadView> {
        let paths = self.paths.locked().clone();
        let all = self.all.locked();
        let mut views: Vec<(Instant, UploadView)> = all
            .iter()
            .filter(|(_, u)| u.bytes > 0)
            .map(|((who, id), u)| {
                let view = UploadView {
                    peer: match who {
                        Who::Id(id) => Some(id.to_string()),
                        Who::Ip(_) => None,
                    },
                    addr: u.addr.to_string(),
                    name: u.name.clone(),
                    id: id.to_hex(),
                    chunks: u.has.count(),
                    total: u.has.len(),
                    bytes: u.bytes,
                    done: u.has.is_complete(),
                    secs: u.last.saturating_duration_since(u.started).as_secs_f64(),
                    idle_secs: now.saturating_duration_since(u.last).as_secs(),
                    path: paths.get(who).copied().unwrap_or_default(),
                };
                (u.started, view)
            })
            .collect();
        views.sort_by_key(|(started, _)| *started);
        views.into_iter().map(|(_, v)| v).collect()
    }
}

/// `who`'s record of `file`, made if new (the longest-silent one giving
/// way when full).
fn entry<'a>(
    all: &'a mut HashMap<(Who, FileId), Upload>,
    who: Who,
    addr: SocketAddr,
    (id, name): (FileId, &str),
    total: u32,
    now: Instant,
) -> &'a mut Upload {
    let key = (who, id);
    if !all.contains_key(&key) && all.len() >= MAX_UPLOADS_SHOWN {
        if let Some(oldest) = all.iter().min_by_key(|(_, u)| u.last).map(|(k, _)| *k) {
            all.remove(&oldest);
        }
    }
    all.entry(key).or_insert_with(|| Upload {
        name: name.to_string(),
        addr,
        has: ChunkSet::empty(total),
        bytes: 0,
        started: now,
        last: now,
    })
}

/// How long an upload may go unheard before `send` stops counting it as
/// fetching.
pub const QUIET_AFTER: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_what_it_listed_plus_what_went_from_here() {
        let uploads = Uploads::default();
        let t0 = Instant::now();
        let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let who = Who::Id(PeerId([1; 16]));
        let file = (FileId([2; 32]), "a.bin");
        uploads.have(who, addr, file, &ChunkSet::empty(4), t0);
        assert!(uploads.snapshot(t0).is_empty(), "nothing sent yet");
        uploads.sent(who, addr, file, (0, 4), 100, t0);
        uploads.sent(who, addr, file, (1, 4), 100, t0);
        let v = &uploads.snapshot(t0)[0];
        assert_eq!((v.chunks, v.total, v.bytes, v.done), (2, 4, 200, false));
        // Another connection of the same downloader, whose HAVE does not
        // list chunk 1 yet (not verified when it asked): the same record,
        // and chunk 1 still counts.
        let other: SocketAddr = "127.0.0.1:5001".parse().unwrap();
        uploads.have(
            who,
            other,
            file,
            &ChunkSet::from_fn(4, |i| i == 0 || i == 2),
            t0,
        );
        uploads.sent(who, other, file, (3, 4), 100, t0);
        let all = uploads.snapshot(t0 + Duration::from_secs(2));
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].chunks, all[0].done, all[0].idle_secs), (4, true, 2));
    }

    #[test]
    fn the_longest_silent_gives_way_when_full() {
        let uploads = Uploads::default();
        let t0 = Instant::now();
        let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let file = (FileId([2; 32]), "a.bin");
        for n in 0..=MAX_UPLOADS_SHOWN {
            let who = Who::Ip(std::net::IpAddr::from([10, 0, (n >> 8) as u8, n as u8]));
            uploads.sent(
                who,
                addr,
                file,
                (0, 4),
                1,
                t0 + Duration::from_millis(n as u64),
            );
        }
        let all = uploads.snapshot(t0);
        assert_eq!(all.len(), MAX_UPLOADS_SHOWN);
    }
}
