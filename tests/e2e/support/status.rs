//! The status pages (`--http`) as the tests read them: HTTP over a raw
//! socket, the JSON of `GET /api/status` deserialized into the library's own
//! types, and what a test asks of a peer's downloads in it. Tests read how
//! a download went (which peers served how many chunks, who was banned,
//! where the peers came from) here rather than from log lines.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;

use p2pshare::peer::status::{DownloadView, PeerStatus, State};
use p2pshare::tracker::status::TrackerStatus;

use super::harness::{assert_same_bytes, wait_until, CHUNK, COMMAND, STARTUP};
use super::programs::Peer;

/// Sends `request` as it is and returns the status code and the raw reply.
pub fn raw_http(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, STARTUP).expect("connect to the status page");
    s.set_read_timeout(Some(STARTUP)).expect("set a timeout");
    s.write_all(request.as_bytes()).expect("send a request");
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).expect("read the reply");
    let reply = String::from_utf8(reply).expect("a UTF-8 reply");
    let code = reply
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP reply: {reply:?}"));
    (code, reply)
}

/// `GET path`; returns the status code and the body.
pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let (code, reply) = raw_http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    let body = reply
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// `GET /api/status` of a status page, deserialized as `T`.
fn api_status<T: serde::de::DeserializeOwned>(page: SocketAddr, role: &str) -> T {
    let (code, body) = get(page, "/api/status");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("bad {role} JSON ({e}): {body}"))
}

/// A peer's `/api/status` at its status page `page`.
pub fn peer_status(page: SocketAddr) -> PeerStatus {
    api_status(page, "peer")
}

/// A tracker's `/api/status` at its status page `page`.
pub fn tracker_status(page: SocketAddr) -> TrackerStatus {
    api_status(page, "tracker")
}

impl Peer {
    /// The status page of a peer started with `--http 0`.
    pub fn page(&self) -> SocketAddr {
        self.page
            .unwrap_or_else(|| panic!("{}: started without --http", self.proc.name()))
    }

    /// This peer's `/api/status` now.
    pub fn status(&self) -> PeerStatus {
        peer_status(self.page())
    }

    /// The newest download in this peer's `/api/status` (they are listed
    /// oldest first), or `None` before the first has begun.
    pub fn newest_download(&self) -> Option<DownloadView> {
        self.status().downloads.pop()
    }

    /// The download that has just ended, as `/api/status` shows it: the
    /// REPL prints a download's last line only after it is recorded there.
    pub fn ended_download(&self) -> DownloadView {
        let d = self.newest_download().expect("no download in /api/status");
        assert_ne!(d.state, State::Running, "{d:?}");
        d
    }

    /// `download NAME`, which must find `peers` peers and leave exactly
    /// `want` at `out` (where it saves NAME); returns the ended download.
    #[track_caller]
    pub fn download_checked(
        &mut self,
        name: &str,
        peers: usize,
        out: &Path,
        want: &[u8],
    ) -> DownloadView {
        self.download_checked_as(name, name, peers, out, want)
    }

    /// As [`download_checked`](Self::download_checked), for a `target` (a
    /// link, a ticket, an id) that names the file `name`.
    #[track_caller]
    pub fn download_checked_as(
        &mut self,
        target: &str,
        name: &str,
        peers: usize,
        out: &Path,
        want: &[u8],
    ) -> DownloadView {
        let lines = self
            .download(target, None)
            .unwrap_or_else(|l| panic!("download {target} failed: {l:?}"));
        let noun = if peers == 1 { "peer" } else { "peers" };
        let found = format!("Found {peers} {noun} for {name} ");
        assert!(
            lines.iter().any(|l| l.starts_with(&found)),
            "no {found:?} in {lines:?}"
        );
        assert_same_bytes(&fs::read(out).unwrap(), want, name);
        self.ended_download()
    }

    /// Waits until the newest download has fetched at least `n` chunks in
    /// this attempt (the test sent its `download` to a peer with no other
    /// download), and returns it as it was then.
    pub fn await_fetched(&self, n: u32) -> DownloadView {
        wait_until(COMMAND, &format!("{n} chunk(s) fetched"), || {
            match self.newest_download() {
                Some(d) if fetched(&d) >= n => Ok(d),
                other => Err(format!("{other:?}")),
            }
        })
    }
}

/// Chunks fetched in this attempt, from all peers together; an endgame
/// duplicate counts once, resumed chunks not at all.
pub fn fetched(d: &DownloadView) -> u32 {
    d.peers.iter().map(|p| p.chunks).sum()
}

/// Chunks found verified in a partial file from an earlier attempt (only
/// the file's last chunk can be short).
pub fn resumed_chunks(d: &DownloadView) -> u32 {
    d.resumed_bytes.div_ceil(CHUNK as u64) as u32
}

/// The peers that delivered at least one chunk.
pub fn sources(d: &DownloadView) -> BTreeSet<SocketAddr> {
    d.peers
        .iter()
        .filter(|p| p.chunks > 0)
        .map(|p| p.addr.parse().expect("a peer address"))
        .collect()
}

/// Chunks `from` delivered (0 if it is not listed).
pub fn chunks_from(d: &DownloadView, from: SocketAddr) -> u32 {
    let from = from.to_string();
    d.peers
        .iter()
        .find(|p| p.addr == from)
        .map_or(0, |p| p.chunks)
}

/// Whether `peer` is listed as banned from the download (it sent bad data).
pub fn is_banned(d: &DownloadView, peer: SocketAddr) -> bool {
    let peer = peer.to_string();
    d.peers.iter().any(|p| p.addr == peer && p.banned)
}

/// Whether `peer` is listed as benched (it failed repeatedly).
pub fn is_benched(d: &DownloadView, peer: SocketAddr) -> bool {
    let peer = peer.to_string();
    d.peers.iter().any(|p| p.addr == peer && p.benched)
}

/// Asserts the download is done with `total` chunks, each fetched exactly
/// once or resumed: the chunk counts of its peers add up to what was not
/// resumed.
#[track_caller]
pub fn assert_every_chunk_once(d: &DownloadView, total: usize) {
    assert_eq!(d.state, State::Done, "{d:?}");
    assert_eq!(
        (d.done_chunks, d.total_chunks),
        (total as u32, total as u32),
        "{d:?}"
    );
    assert_eq!(fetched(d), d.total_chunks - resumed_chunks(d), "{d:?}");
}

/// The token in a peer's `Status page on http://ADDR/?token=TOKEN` line.
pub fn token_of(peer: &Peer) -> String {
    let url = peer.proc.status_url();
    let token = url
        .split_once("/?token=")
        .map(|(_, t)| t.to_string())
        .unwrap_or_else(|| panic!("no token in {url:?}"));
    assert!(
        token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "{url:?}"
    );
    token
}

/// Sends `POST path` with `headers` (after Host) and `body`; returns the
/// status code and the body of the answer.
pub fn post(
    page: std::net::SocketAddr,
    host: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String) {
    let (code, reply) = raw_http(
        page,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    (
        code,
        reply
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    )
}
