//! `peer [OPTIONS] TRACKER_HOST TRACKER_PORT LISTEN_PORT`: a p2pshare peer.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use p2pshare::cli::CommonArgs;
use p2pshare::identity::PeerId;
use p2pshare::peer::repl::{self, Command};
use p2pshare::peer::{DhtOptions, Options, Peer};

/// Shares files with other peers and downloads from them, verifying every
/// chunk. Reads commands from stdin (type `help`), or with --serve just serves.
#[derive(Parser)]
#[command(
    name = "peer",
    version,
    after_help = "Examples:\n  peer 127.0.0.1 8080 9001\n  peer --serve --share big.iso 127.0.0.1 8080 0\n  echo 'download big.iso' | peer 127.0.0.1 8080 0\n  peer --dht 127.0.0.1 8080 9001          # tracker + DHT; works on if the tracker dies\n  peer --http 8090 127.0.0.1 8080 0       # live status page on http://127.0.0.1:8090/\n  peer --completions zsh > ~/.zfunc/_peer"
)]
struct Args {
    /// Host name or address of the tracker.
    #[arg(required_unless_present = "completions")]
    tracker_host: Option<String>,
    /// Port of the tracker.
    #[arg(required_unless_present = "completions")]
    tracker_port: Option<u16>,
    /// TCP port to serve chunks on (0 picks a free port; the real one is printed).
    #[arg(required_unless_present = "completions")]
    listen_port: Option<u16>,
    /// Address to serve chunks on.
    #[arg(long, default_value = "0.0.0.0")]
    bind: IpAddr,
    /// Share this file at start-up (repeatable).
    #[arg(long, value_name = "PATH")]
    share: Vec<PathBuf>,
    /// Share this file privately at start-up: only holders of its link
    /// (printed) can download it, and it is not listed by name (repeatable).
    #[arg(long, value_name = "PATH")]
    share_private: Vec<PathBuf>,
    /// No REPL: serve until SIGINT/SIGTERM.
    #[arg(long)]
    serve: bool,
    /// Parallel chunk fetches per download.
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=i64::from(p2pshare::bounds::MAX_WORKERS)))]
    workers: u16,
    /// Seconds a download waits for a usable peer when none is left, asking
    /// the tracker and the DHT meanwhile, before it fails (progress is kept).
    #[arg(long, default_value_t = p2pshare::bounds::DEFAULT_PATIENCE.as_secs(), value_name = "SECS")]
    patience: u64,
    /// Seconds between re-announcements of shared files to the tracker.
    #[arg(long, default_value_t = 30, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    announce_interval: u64,
    /// Cap on upload bandwidth, all connections together (e.g. 500K, 10M; K/M/G are 1024-based).
    #[arg(long, value_name = "RATE", value_parser = rate)]
    max_upload: Option<RateArg>,
    /// Cap on download bandwidth, all connections together (e.g. 500K, 10M).
    #[arg(long, value_name = "RATE", value_parser = rate)]
    max_download: Option<RateArg>,
    /// Also find peers through the Mainline DHT, and announce shared files there.
    #[arg(long)]
    dht: bool,
    /// Pin the tracker's id (as the tracker prints it), instead of learning
    /// it on first contact.
    #[arg(long, value_name = "ID")]
    tracker_id: Option<PeerId>,
    /// UDP port of the DHT node (default: the same number as the listen port).
    #[arg(long, value_name = "PORT", requires = "dht")]
    dht_port: Option<u16>,
    /// DHT node to join through, HOST:PORT (repeatable; default: the tracker's address).
    #[arg(long, value_name = "HOST:PORT", requires = "dht")]
    dht_bootstrap: Vec<String>,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() {
    let args = Args::parse();
    if !args.common.init(Args::command()) {
        return;
    }
    match run(&args) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => p2pshare::cli::exit_with_error("peer", &e),
    }
}

/// Runs the peer; returns whether every command succeeded.
fn run(args: &Args) -> anyhow::Result<bool> {
    // clap requires all three unless --completions, which returned earlier.
    let (Some(tracker_host), Some(tracker_port), Some(listen_port)) =
        (&args.tracker_host, args.tracker_port, args.listen_port)
    else {
        anyhow::bail!("TRACKER_HOST, TRACKER_PORT and LISTEN_PORT are required");
    };
    let (state_dir, identity) = args.common.identity(None)?;
    let opts = Options {
        identity,
        state_dir: Some(state_dir),
        tracker_id: args.tracker_id,
        tracker_host: tracker_host.clone(),
        tracker_port,
        listen: SocketAddr::new(args.bind, listen_port),
        workers: usize::from(args.workers),
        patience: Duration::from_secs(args.patience),
        announce_interval: Duration::from_secs(args.announce_interval),
        max_upload: args.max_upload.and_then(|r| r.0),
        max_download: args.max_download.and_then(|r| r.0),
        dht: args.dht.then(|| DhtOptions {
            port: args.dht_port,
            bootstrap: args.dht_bootstrap.clone(),
        }),
    };
    let peer = Arc::new(Peer::start(&opts).context("cannot start the peer")?);
    let for_page = Arc::clone(&peer);
    let status_page = args
        .common
        .status_page(Arc::new(move || for_page.status().to_json()))?;
    // Installed before the first line is printed: whoever reacts to that
    // line with a signal still gets a clean unregister.
    let on_signal = Arc::clone(&peer);
    ctrlc::set_handler(move || {
        p2pshare::peer::editor::restore_terminal();
        on_signal.leave(Duration::from_secs(1));
        std::process::exit(0);
    })
    .context("cannot install the signal handler")?;
    println!("Peer listening on {}", peer.listen_addr());
    println!("Peer id: {}", peer.id());
    if let Some(dht) = peer.dht_status() {
        println!("DHT node on UDP {}", dht.local_addr);
    }
    if let Some((_, line)) = &status_page {
        println!("{line}");
    }

    let mut all_ok = true;
    let public = args.share.iter().map(|p| (p, false));
    for (path, private) in public.chain(args.share_private.iter().map(|p| (p, true))) {
        let path = path.clone();
        all_ok &= repl::run_command(&peer, Command::Share { path, private });
    }
    if args.serve && !all_ok {
        // A seeder that cannot share what it was asked to should say so in
        // its exit status, not serve a subset silently.
        peer.leave(Duration::from_secs(1));
        anyhow::bail!("not serving: a --share failed");
    }
    if args.serve {
        loop {
            std::thread::park();
        }
    }
    all_ok &= repl::run(&peer);
    peer.leave(Duration::from_secs(1));
    Ok(all_ok)
}

/// A parsed `--max-upload`/`--max-download` value (`None`: no cap).
#[derive(Clone, Copy)]
struct RateArg(Option<u64>);

fn rate(text: &str) -> Result<RateArg, String> {
    p2pshare::net::rate::parse_rate(text)
        .map(RateArg)
        .map_err(|e| e.to_string())
}
