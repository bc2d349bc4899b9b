//! A peer's [`PeerStatus`] as text, for the REPL's `status` (the status
//! page reads the same snapshot as JSON): downloads with progress, rate and
//! peers, what is left unfinished, uploads, the DHT node, the tracker.

use std::time::Duration;

use super::{count, format_duration, format_size, format_speed};
use crate::name::shown;
use crate::net::rate::format_rate;
use crate::peer::dial::Path;
use crate::peer::nat::ReachView;
use crate::peer::portmap::PortMapView;
use crate::peer::status::{BytesByPath, ContactView, DhtView, DownloadView, PeerStatus, State};
use crate::peer::uploads::{UploadView, QUIET_AFTER};

/// A peer's status as the `status` command prints it.
pub fn status_text(s: &PeerStatus) -> String {
    let mut out = String::new();
    let running = s
        .downloads
        .iter()
        .filter(|d| matches!(d.state, State::Running | State::Waiting))
        .count();
    let ended = |state: State| s.downloads.iter().filter(|d| d.state == state).count();
    if s.downloads.is_empty() {
        out.push_str("downloads: none yet\n");
    } else {
        // Cancelled and failed are their own states, not "finished".
        out.push_str(&format!(
            "downloads: {running} running, {} finished",
            ended(State::Done)
        ));
        for (state, word) in [(State::Cancelled, "cancelled"), (State::Failed, "failed")] {
            match ended(state) {
                0 => {}
                n => out.push_str(&format!(", {n} {word}")),
            }
        }
        out.push('\n');
    }
    for d in &s.downloads {
        out.push_str(&download_text(d));
    }
    if !s.unfinished.is_empty() {
        out.push_str(&format!(
            "unfinished ({}; type resume to continue):\n",
            count(s.unfinished.len(), "download")
        ));
        for u in &s.unfinished {
            out.push_str(&format!("  {} -> {}\n", shown(&u.name), u.out));
        }
    }
    let uploaded: u64 = s.shared.iter().map(|f| f.uploaded).sum();
    out.push_str(&format!(
        "uploads: {} shared, {} uploaded in all\n",
        count(s.shared.len(), "file"),
        size_and_bytes(uploaded)
    ));
    for f in &s.shared {
        let partial = match (f.complete, f.uploaded_while_partial) {
            (true, 0) => String::new(),
            (true, n) => format!(", {} of it while downloading", format_size(n)),
            (false, _) => " (still downloading it)".into(),
        };
        let partial = match f.private {
            true => format!("{partial} (private)"),
            false => partial,
        };
        let what = match f.files {
            0 => "file".to_string(),
            n => format!("folder of {}", count(n, "file")),
        };
        out.push_str(&format!(
            "  {}  uploaded {} of a {} {what}{partial}\n",
            f.name,
            size_and_bytes(f.uploaded),
            format_size(f.size)
        ));
    }
    for u in s
        .uploads
        .iter()
        .filter(|u| !u.done && u.idle_secs < QUIET_AFTER.as_secs())
    {
        out.push_str(&format!("  {}\n", fetching_text(u)));
    }
    if let Some(dht) = &s.dht {
        out.push_str(&dht_text(dht));
    }
    if let Some(map) = &s.port_map {
        out.push_str(&port_map_text(map));
    }
    if let Some(tracker) = &s.tracker {
        out.push_str(&tracker_text(tracker, s.tracker_contact.as_ref()));
    }
    if let Some(reach) = &s.reach {
        out.push_str(&reach_text(reach));
    }
    out.push_str(&format!("peer id: {}\n", s.id));
    out.push_str(&format!(
        "limits: upload {}, download {}",
        format_rate(s.caps.upload),
        format_rate(s.caps.download)
    ));
    out
}
/// `port mapping: ADDR on the router (UPnP), lease 59 min left; ...`.
pub fn port_map_text(m: &PortMapView) -> String {
    let (Some(external), Some(protocol)) = (&m.external, m.protocol) else {
        return match (&m.error, m.trying) {
            (_, true) => "port mapping: asking the router\n".into(),
            (Some(e), _) => format!("port mapping: none ({e})\n"),
            (None, _) => "port mapping: none\n".into(),
        };
    };
    let lease = match m.lease_secs_left {
        Some(s) => format!("lease {} left", format_duration(Duration::from_secs(s))),
        None => "until this peer leaves".into(),
    };
    let offered = match m.offered {
        true => "offered in tickets",
        false => "not offered until a dial-back from outside reaches it",
    };
    let renewal = match &m.error {
        Some(e) => format!("; last renewal failed: {e}"),
        None => String::new(),
    };
    format!(
        "port mapping: {external} on the router ({}), {lease}; {offered}{renewal}\n",
        protocol.name()
    )
}

/// `dht: node ID on UDP ADDR, N nodes in the routing table, ...`.
fn dht_text(d: &DhtView) -> String {
    let announce = match (d.last_announce_secs_ago, d.last_announce_files) {
        (Some(ago), Some(n)) => format!("last announce {ago} s ago ({})", count(n, "file")),
        _ => "not announced yet".to_string(),
    };
    format!(
        "dht: node {} on UDP {}, {} in the routing table, {announce}\n",
        d.node_id,
        d.udp,
        count(d.routing_table, "node")
    )
}
/// `tracker: ADDR answered 3 s ago`, or why it did not.
fn tracker_text(addr: &str, contact: Option<&ContactView>) -> String {
    let how = match contact {
        None => "not asked yet".to_string(),
        Some(c) => {
            let ago = format_duration(Duration::from_secs(c.secs_ago));
            match &c.error {
                None => format!("answered {ago} ago"),
                Some(e) => format!("did not answer {ago} ago: {e}"),
            }
        }
    };
    format!("tracker: {addr} {how}\n")
}

/// `reachable: directly, seen at ADDR`, or not.
fn reach_text(r: &ReachView) -> String {
    let how = match (r.reachable, r.control) {
        (true, _) => "directly",
        (false, true) => "only through the tracker (others cannot dial this peer)",
        (false, false) => "not directly (others cannot dial this peer)",
    };
    format!(
        "reachable: {how}; the tracker sees this peer at {}\n",
        r.observed
    )
}

/// `1.0 MiB (1048576 bytes)`, or just `745 B` when that is exact.
pub fn size_and_bytes(bytes: u64) -> String {
    if bytes < 1024 {
        format_size(bytes)
    } else {
        format!("{} ({bytes} bytes)", format_size(bytes))
    }
}

/// Two lines per download: progress, then the peers serving it.
fn download_text(d: &DownloadView) -> String {
    let pct = if d.size == 0 {
        100.0
    } else {
        d.done_bytes as f64 * 100.0 / d.size as f64
    };
    // Saved under another name than the source's: say which.
    let name = match &d.out {
        Some(out) if *out != d.name => format!("{} -> {out}", shown(&d.name)),
        _ => shown(&d.name).into_owned(),
    };
    let mut line = format!(
        "  [{}] {name}  {}  {pct:.1}%  {} of {} ({} of {} bytes)",
        d.key,
        d.state.as_str(),
        format_size(d.done_bytes),
        format_size(d.size),
        d.done_bytes,
        d.size
    );
    if d.files_total > 0 {
        line.push_str(&format!(
            "  {}/{} files",
            group(d.files_done),
            group(d.files_total)
        ));
    }
    match d.state {
        State::Running | State::Waiting => {
            if let Some(secs) = d.waiting_secs {
                line.push_str(&format!(
                    " for {}",
                    format_duration(Duration::from_secs(secs))
                ));
            }
            line.push_str(&format!("  {}", format_speed(d.rate as f64)));
            if let Some(eta) = d.eta_secs {
                line.push_str(&format!(
                    "  ETA {}",
                    format_duration(Duration::from_secs(eta))
                ));
            }
        }
        _ => line.push_str(&format!(
            "  in {:.1} s, {} average",
            d.elapsed_secs,
            format_speed(d.rate as f64)
        )),
    }
    if let Some(e) = &d.error {
        line.push_str(&format!("  ({e})"));
    }
    line.push('\n');
    let fetched = d.from_complete_bytes + d.from_partial_bytes;
    if fetched > 0 {
        line.push_str(&format!(
            "    from complete peers {}, from peers still downloading {}{}\n",
            format_size(d.from_complete_bytes),
            format_size(d.from_partial_bytes),
            by_path_text(&d.bytes_by_path)
        ));
    }
    if !d.peers.is_empty() {
        let peers: Vec<String> = d
            .peers
            .iter()
            .map(|p| {
                let active = if p.active { ", active" } else { "" };
                let relayed = match p.path {
                    Path::Relayed => ", relayed",
                    Path::Punched => ", punched",
                    Path::Direct => "",
                };
                let chunks = count(p.chunks as usize, "chunk");
                format!("{} ({chunks}{active}{relayed})", p.addr)
            })
            .collect();
        line.push_str(&format!("    peers: {}\n", peers.join(", ")));
    }
    line
}
/// `; 2.0 MiB direct, 10.0 MiB relayed`: the bytes by path, when some did
/// not come directly (else nothing: direct is the usual case).
fn by_path_text(b: &BytesByPath) -> String {
    if b.punched + b.relayed == 0 {
        return String::new();
    }
    let some: Vec<String> = [Path::Direct, Path::Punched, Path::Relayed]
        .into_iter()
        .filter(|path| b.get(*path) > 0)
        .map(|path| format!("{} {path}", format_size(b.get(path))))
        .collect();
    format!("; {}", some.join(", "))
}

/// `ADDR is fetching NAME: 45% (12.0 MiB from here)`.
pub fn fetching_text(u: &UploadView) -> String {
    let pct = match u.total {
        0 => 100,
        t => u.chunks as u64 * 100 / t as u64,
    };
    let via = match u.path {
        Path::Relayed => " (relayed)",
        Path::Punched => " (punched)",
        Path::Direct => "",
    };
    format!(
        "{}{via} is fetching {}: {pct}% ({} from here)",
        u.addr,
        shown(&u.name),
        format_size(u.bytes)
    )
}

/// `sent NAME to ADDR: 3.0 MiB from here in 0.4 s`.
pub fn sent_text(u: &UploadView) -> String {
    format!(
        "sent {} to {}: {} from here in {:.1} s",
        shown(&u.name),
        u.addr,
        format_size(u.bytes),
        u.secs
    )
}

/// `n` with commas between groups of three digits: `1,000`.
fn group(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;
