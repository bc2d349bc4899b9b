//! `peer send` and `peer get`: one file from one machine to another, with
//! a ticket and no tracker, or with `send --tracker`, whose ticket carries
//! the tracker so that `get` can reach a sender behind NAT through its
//! relay.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use p2pshare::bounds::{PORT_MAP_CONFIRM_WAIT, PORT_MAP_FIRST_WAIT};
use p2pshare::console::say;
use p2pshare::name::shown;
use p2pshare::net::stop::StopSignal;
use p2pshare::peer::background::Started as Begun;
use p2pshare::peer::uploads::QUIET_AFTER;
use p2pshare::peer::{hash, hash_tree, Hashed, Peer};
use p2pshare::select::Globs;
use p2pshare::ticket::Ticket;
use p2pshare::ui::report::{found_line, outcome_text};
use p2pshare::ui::status::{fetching_text, port_map_text, sent_text};
use p2pshare::ui::{count, format_size, DownloadBar};

use super::args::{GetArgs, SendArgs};
use super::{options, start, LEAVE};

/// Shares the file or folder (several paths: one folder), prints its
/// ticket, and serves until Ctrl+C.
pub fn send(a: &SendArgs) -> anyhow::Result<bool> {
    let listen = SocketAddr::new(a.bind.bind, a.at.port);
    let (opts, _state) = options(&a.net(), &a.common, a.at.tracker.clone(), listen, false)?;
    let started = start(&opts, &a.common)?;
    let peer = Arc::clone(&started.peer);
    let on_signal = Arc::clone(&peer);
    ctrlc::set_handler(move || {
        let n = on_signal.library().list().len();
        say(format!("stopped sending {}", count(n, "share")));
        on_signal.leave(LEAVE);
        std::process::exit(0);
    })
    .context("cannot install the signal handler")?;
    let hashed = hash_all(a).with_context(|| match a.paths.as_slice() {
        [one] => format!("cannot send {}", one.display()),
        _ => "cannot send them".to_string(),
    })?;
    let skipped = hashed.tree.as_ref().map(|(_, s)| s.to_string());
    let (file, warning) = peer.publish_all(vec![hashed]).single()?;
    if let Some(w) = warning {
        println!("warning: {w}");
    }
    if let Some(tree) = file.manifest.as_tree() {
        println!(
            "Sending folder {}: {}, {}",
            shown(&file.name),
            count(tree.file_count(), "file"),
            format_size(tree.total_size())
        );
    }
    if let Some(skipped) = skipped.filter(|s| !s.is_empty()) {
        println!("  {skipped}");
    }
    // The router's answer, if it comes soon, makes the ticket reach
    // through it (hashing above gave it a head start).
    if let Some(map) = peer.port_map() {
        map.wait_first(PORT_MAP_FIRST_WAIT);
        // With a tracker, the mapping goes into the ticket once the
        // tracker has dialled it back.
        map.wait_offered(PORT_MAP_CONFIRM_WAIT);
        print!("{}", port_map_text(&map.view()));
    }
    let ticket = peer.ticket_of(&file);
    println!("Ticket: {ticket}");
    println!("  on the other machine: peer get {ticket}");
    if file.secret.is_none() {
        // Public: found by id through a tracker or the DHT too.
        println!("  link: {}", p2pshare::peer::link_of(&file));
    }
    println!("Serving {} until Ctrl+C", shown(&file.name));
    watch_uploads(&peer)
}

/// What `send` shares: one file as it is, or one folder of everything.
fn hash_all(a: &SendArgs) -> anyhow::Result<Hashed> {
    let private = !a.public;
    let exclude = Globs::new(&a.exclude)?;
    match a.paths.as_slice() {
        [one] if a.exclude.is_empty() => Ok(hash(one, private, &|_| {})?),
        several => Ok(hash_tree(several, &exclude, private, &|_| {})?),
    }
}

/// How often `send` looks at who is fetching, and how often it says how far
/// each has got.
const UPLOAD_POLL: Duration = Duration::from_millis(250);
const UPLOAD_PROGRESS: Duration = Duration::from_secs(5);

/// Says who starts fetching, how far each has got every few seconds, and
/// `sent ...` when each has the whole file; until the process is stopped.
fn watch_uploads(peer: &Peer) -> ! {
    // Per downloader and file: whether it was announced, and said done.
    let mut seen: HashMap<(Option<String>, String, String), bool> = HashMap::new();
    let mut next_progress = Instant::now() + UPLOAD_PROGRESS;
    loop {
        std::thread::sleep(UPLOAD_POLL);
        let now = Instant::now();
        let views = peer.uploads().snapshot(now);
        let progress_due = now >= next_progress;
        if progress_due {
            next_progress = now + UPLOAD_PROGRESS;
        }
        for u in &views {
            let key = (u.peer.clone(), u.addr.clone(), u.id.clone());
            let said_done = seen.get(&key).copied();
            match (said_done, u.done) {
                (Some(true), _) => {}
                (_, true) => {
                    say(sent_text(u));
                    seen.insert(key, true);
                }
                (None, false) => {
                    say(fetching_text(u));
                    seen.insert(key, false);
                }
                (Some(false), false) if progress_due && u.idle_secs < QUIET_AFTER.as_secs() => {
                    say(fetching_text(u));
                }
                (Some(false), false) => {}
            }
        }
        // Bounded like the records it mirrors.
        seen.retain(|k, _| {
            views
                .iter()
                .any(|u| (&u.peer, &u.addr, &u.id) == (&k.0, &k.1, &k.2))
        });
    }
}

/// Downloads what each ticket names, one after another, with a progress
/// bar; `Ok(true)` once every file is verified and saved. The first
/// failure ends the run (what was verified is kept for a retry).
pub fn get(a: &GetArgs) -> anyhow::Result<bool> {
    let (tickets, out) = a.targets().map_err(anyhow::Error::msg)?;
    let listen = SocketAddr::new(a.bind.bind, a.at.port);
    let (mut opts, _state) = options(&a.net(), &a.common, a.at.tracker.clone(), listen, false)?;
    if opts.tracker.is_none() {
        // A ticket's tracker, pinned to the id it carries: its relay
        // reaches a sender behind NAT.
        let carried = tickets
            .iter()
            .find_map(|t| t.parse::<Ticket>().ok()?.tracker);
        if let Some((addr, id)) = carried {
            log::info!("using the ticket's tracker {addr} ({id})");
            opts.tracker = Some(addr);
            opts.tracker_id = Some(id);
        }
    }
    let peer = Arc::new(Peer::start(&opts).context("cannot start the peer")?);
    log::info!("listening on {} as {}", peer.listen_addr(), peer.id());
    let for_page = Arc::clone(&peer);
    let page = a
        .common
        .status_page(Arc::new(move || for_page.status().to_json()))?;
    if let Some((_, line)) = &page {
        println!("{line}");
    }
    let on_signal = Arc::clone(&peer);
    ctrlc::set_handler(move || {
        if on_signal.downloads().cancel_all() == 0 {
            std::process::exit(130);
        }
    })
    .context("cannot install the signal handler")?;
    let fetched = tickets
        .into_iter()
        .try_for_each(|ticket| fetch(&peer, ticket, out.as_deref(), &a.only));
    peer.set_leaving();
    peer.leave(LEAVE);
    fetched.map(|()| true)
}

/// Fetches one ticket's file to `out` (or under its name here).
fn fetch(
    peer: &Peer,
    ticket: &str,
    out: Option<&std::path::Path>,
    only: &[String],
) -> anyhow::Result<()> {
    // Ctrl+C cancels the download; its look-up runs to its own deadline.
    let file = peer.locate(ticket, &StopSignal::new())?;
    let out = peer.output_path(&file, out)?;
    let handle = peer.download_only(&file, &out, only.to_vec())?;
    let begun = Begun {
        key: handle.progress().key(),
        file,
        out,
    };
    println!("{}", found_line(&begun));
    let bar = DownloadBar::new(&begun.file.name, begun.file.size.unwrap_or(0));
    while !handle.wait_timeout(Duration::from_millis(100)) {
        if let Some(bar) = &bar {
            bar.update(&handle.progress().view(Instant::now()));
        }
    }
    drop(bar);
    let progress = Arc::clone(handle.progress());
    let result = handle.join();
    let view = progress.view(Instant::now());
    match &result {
        Ok(_) => println!("{}", outcome_text(&begun.file.name, &result, &view, false)),
        Err(e) => anyhow::bail!("{}: {e}", begun.file.name),
    }
    Ok(())
}
