//! `peer`: a p2pshare peer. `peer send`/`peer get` move one file with a
//! ticket; `peer HOST PORT LISTEN_PORT` runs the REPL (or `--serve`).

mod args;
mod oneshot;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use p2pshare::cli::{CommonArgs, State};
use p2pshare::console::say;
use p2pshare::peer::{resume, tracker_addr, DhtOptions, Options, Peer};
use p2pshare::ui::repl::{self, Command, Control, Signal};
use p2pshare::ui::report::{event_log, event_text, restored_lines, tracker_warning};
use p2pshare::web::peer::PeerActions;

use self::args::{Classic, Cli, FetchArgs, Mode, Net, ServeArgs};

/// How long leaving may take: unregistering from the tracker.
pub const LEAVE: Duration = p2pshare::bounds::LEAVE_TIMEOUT;

/// How long the start-up check of the tracker may take.
const TRACKER_CHECK: Duration = Duration::from_secs(3);

fn main() {
    let cli = Cli::parse();
    let common = match &cli.mode {
        Some(Mode::Send(a)) => &a.common,
        Some(Mode::Get(a)) => &a.common,
        None => &cli.classic.common,
    };
    if !common.init(Cli::command()) {
        return;
    }
    let result = match &cli.mode {
        None => classic(&cli.classic),
        Some(Mode::Send(a)) => oneshot::send(a),
        Some(Mode::Get(a)) => oneshot::get(a),
    };
    match result {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => p2pshare::cli::exit_with_error("peer", &e),
    }
}

/// The peer's start-up settings from its command line (a group of options
/// a form does not take has its defaults).
pub fn options(
    net: &Net<'_>,
    common: &CommonArgs,
    tracker: Option<String>,
    listen: SocketAddr,
    remember: bool,
) -> anyhow::Result<(Options, State)> {
    // The REPL's peer remembers things and needs a state directory of its
    // own (one per listen port); a one-shot `send` or `get` makes do with
    // a one-time identity when the shared one is taken.
    let state = match remember {
        true => common.peer_identity(listen.port())?,
        false => common.identity_or_ephemeral()?,
    };
    let (serve, fetch) = (ServeArgs::default(), FetchArgs::default());
    // Only a form that serves asks the router for a port.
    let port_map = net.serve.is_some_and(|s| !s.no_port_map);
    let serve = net.serve.unwrap_or(&serve);
    let fetch = net.fetch.unwrap_or(&fetch);
    let find = net.find;
    let opts = Options {
        identity: state.identity.clone(),
        state_dir: state.dir.clone(),
        tracker_id: find.tracker_id,
        tracker,
        listen,
        workers: usize::from(fetch.workers),
        patience: Duration::from_secs(fetch.patience),
        announce_interval: Duration::from_secs(serve.announce_interval),
        max_upload: serve.max_upload.and_then(|r| r.0),
        max_download: fetch.max_download.and_then(|r| r.0),
        dht: find.dht.then(|| DhtOptions {
            port: find.dht_port,
            bootstrap: find.dht_bootstrap.clone(),
        }),
        public_addrs: serve.public_addr.clone(),
        remember,
        port_map,
    };
    Ok((opts, state))
}

/// Starts the peer and prints the lines every form starts with: where it
/// listens, its id, its DHT node and status page, and a tracker it cannot
/// reach. From then on, how background downloads end is said on the
/// console (and their start in the log).
pub fn start(opts: &Options, common: &CommonArgs) -> anyhow::Result<Started> {
    let peer = Arc::new(Peer::start(opts).context("cannot start the peer")?);
    peer.subscribe(|event| {
        if let Some(line) = event_log(event) {
            log::info!("{line}");
        }
        if let Some(text) = event_text(event) {
            say(text);
        }
    });
    let for_page = Arc::clone(&peer);
    let actions = Arc::new(PeerActions(Arc::clone(&peer)));
    let page =
        common.status_page_with(Arc::new(move || for_page.status().to_json()), Some(actions))?;
    println!("Peer listening on {}", peer.listen_addr());
    println!("Peer id: {}", peer.id());
    if let Some(dht) = peer.dht_status() {
        println!("DHT node on UDP {}", dht.local_addr);
    }
    if let Some((_, line)) = &page {
        println!("{line}");
    }
    if let Some(e) = peer.check_tracker(TRACKER_CHECK) {
        let addr = peer.tracker_addr().unwrap_or_default();
        eprintln!("{}", tracker_warning(addr, &e));
    }
    Ok(Started {
        peer,
        _page: page.map(|(server, _)| server),
    })
}

/// A started peer, and its status page (stopped when dropped).
pub struct Started {
    pub peer: Arc<Peer>,
    _page: Option<p2pshare::server::ServerHandle>,
}

/// `peer [OPTIONS] HOST PORT LISTEN_PORT`: the REPL, or `--serve`. Returns
/// whether every command and download succeeded.
fn classic(args: &Classic) -> anyhow::Result<bool> {
    // clap requires all three unless --completions, which returned earlier.
    let (Some(host), Some(port), Some(listen_port)) =
        (&args.tracker_host, args.tracker_port, args.listen_port)
    else {
        anyhow::bail!("TRACKER_HOST, TRACKER_PORT and LISTEN_PORT are required");
    };
    let listen = SocketAddr::new(args.bind.bind, listen_port);
    let tracker = Some(tracker_addr(host, port));
    let (opts, _state) = options(&args.net(), &args.common, tracker, listen, true)?;
    let control = Arc::new(Control::default());
    // Installed before the first line is printed: whoever reacts to that
    // line with a signal still gets a clean unregister.
    let started = start_with_signals(&opts, &args.common, &control, args.serve)?;
    let peer = &started.peer;
    for line in restored_lines(&resume::restore_shares(peer)) {
        println!("{line}");
    }
    // Every --share in one batch: one tracker connection, one rewrite of
    // what is remembered.
    let public = args.share.iter().map(|p| (p.clone(), false));
    let private = args.share_private.iter().map(|p| (p.clone(), true));
    let files: Vec<_> = public.chain(private).collect();
    let mut all_ok = files.is_empty() || repl::share_all(peer, &files);
    if args.serve && !all_ok {
        // A seeder that cannot share what it was asked to should say so in
        // its exit status, not serve a subset silently.
        peer.leave(LEAVE);
        anyhow::bail!("not serving: a --share failed");
    }
    let unfinished = resume::unfinished(peer);
    if args.resume {
        all_ok &= repl::run_command(peer, Command::Resume(None), &control);
    } else if !unfinished.is_empty() {
        println!(
            "{} left unfinished last time; type resume to continue (see status)",
            p2pshare::ui::count(unfinished.len(), "download")
        );
    }
    if args.serve {
        loop {
            std::thread::park();
        }
    }
    all_ok &= repl::run(peer, &control);
    peer.leave(LEAVE);
    Ok(all_ok)
}

/// [`start`], with Ctrl+C and SIGTERM handled as [`Control`] says (or, for
/// a serving peer, by leaving).
fn start_with_signals(
    opts: &Options,
    common: &CommonArgs,
    control: &Arc<Control>,
    serve: bool,
) -> anyhow::Result<Started> {
    let slot: Arc<std::sync::OnceLock<Arc<Peer>>> = Arc::default();
    let (handler_slot, control) = (Arc::clone(&slot), Arc::clone(control));
    ctrlc::set_handler(move || {
        let Some(peer) = handler_slot.get() else {
            std::process::exit(130);
        };
        let signal = match serve {
            true => {
                say(repl::control::leaving_text(peer, 0));
                Signal::Leave
            }
            false => control.interrupt(peer),
        };
        if signal == Signal::Leave {
            p2pshare::ui::repl::editor::restore_terminal();
            peer.leave(LEAVE);
            // An orderly leave the user asked for: what it stopped is said.
            std::process::exit(0);
        }
    })
    .context("cannot install the signal handler")?;
    let started = start(opts, common)?;
    let _ = slot.set(Arc::clone(&started.peer));
    Ok(started)
}
