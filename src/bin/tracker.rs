//! `tracker [--bind ADDR] PORT`: the p2pshare tracker.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use p2pshare::cli::CommonArgs;
use p2pshare::net::tls::Tls;
use p2pshare::tracker::nat::NatOptions;
use p2pshare::tracker::status::TrackerStatus;

/// Coordinates p2pshare peers: remembers which peers have which files.
/// Talk to it by hand with `nc HOST PORT` and type `SEARCH`.
#[derive(Parser)]
#[command(
    name = "tracker",
    version,
    after_help = "Examples:\n  tracker 8080\n  tracker --bind 127.0.0.1 0   # loopback only, any free port\n  tracker --http 8081 8080     # status page on http://127.0.0.1:8081/\n  tracker --completions bash > ~/.local/share/bash-completion/completions/tracker"
)]
struct Args {
    /// TCP port to listen on (0 picks a free port; the real one is printed).
    #[arg(required_unless_present = "completions")]
    port: Option<u16>,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    bind: IpAddr,
    /// Forget a peer that has not re-announced for this many seconds.
    #[arg(long, default_value_t = 90, value_name = "SECS")]
    peer_ttl: u64,
    /// Also run a Mainline DHT node on UDP port PORT, for peers to bootstrap from.
    #[arg(long)]
    dht: bool,
    /// DHT node to join through, HOST:PORT (repeatable; default: start a new network).
    #[arg(long, value_name = "HOST:PORT", requires = "dht")]
    dht_bootstrap: Vec<String>,
    /// Relay connections to peers others cannot dial, on this same port.
    /// The peers run TLS end to end through it: the relay sees ciphertext.
    #[arg(long)]
    relay: bool,
    /// Cap on all relayed traffic together (e.g. 500K, 10M; K/M/G are 1024-based).
    #[arg(long, value_name = "RATE", requires = "relay", value_parser = rate)]
    relay_rate: Option<Rate>,
    #[command(flatten)]
    common: CommonArgs,
}

/// A parsed `--relay-rate` (`None` inside: no cap).
#[derive(Clone, Copy)]
struct Rate(Option<u64>);

fn rate(text: &str) -> Result<Rate, String> {
    p2pshare::net::rate::parse_rate(text)
        .map(Rate)
        .map_err(|e| e.to_string())
}

fn main() {
    let args = Args::parse();
    if !args.common.init(Args::command()) {
        return;
    }
    if let Err(e) = run(&args) {
        p2pshare::cli::exit_with_error("tracker", &e);
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let ttl = Duration::from_secs(args.peer_ttl.max(1));
    let addr = SocketAddr::new(args.bind, args.port.context("PORT is required")?);
    let state = args.common.identity(Some("tracker"))?;
    let identity = state.identity.clone();
    let tls = Tls::new(identity).context("cannot set up TLS")?;
    let id = tls.id();
    let nat = NatOptions {
        relay: args.relay,
        relay_rate: args.relay_rate.and_then(|r| r.0),
        ..NatOptions::default()
    };
    let tracker = p2pshare::tracker::Tracker::bind_with(addr, ttl, tls, nat)
        .with_context(|| format!("cannot listen on {addr}"))?;
    let port = tracker
        .local_addr()
        .context("cannot read the bound address")?
        .port();
    // Kept alive for the life of the process: the node runs on its own thread.
    let dht = if args.dht {
        Some(p2pshare::dht::DhtNode::start(
            args.bind,
            port,
            &args.dht_bootstrap,
        )?)
    } else {
        None
    };
    let registry = tracker.registry();
    let nat = tracker.nat();
    let listen = SocketAddr::new(args.bind, port).to_string();
    let status_page = args.common.status_page(Arc::new(move || {
        TrackerStatus::of(&registry, &listen, id)
            .with_nat(&nat)
            .to_json()
    }))?;
    ctrlc::set_handler(|| {
        println!("Tracker stopped.");
        std::process::exit(0);
    })
    .context("cannot install the signal handler")?;
    println!("Tracker running on port {port}. Press Ctrl+C to stop.");
    println!("Tracker id: {id}");
    if let Some(dht) = &dht {
        println!("DHT node on UDP {}", dht.status().local_addr);
    }
    if args.relay {
        let cap = p2pshare::net::rate::format_rate(args.relay_rate.and_then(|r| r.0));
        println!("Relaying on port {port} too (rate cap {cap}).");
    }
    let _tracker = tracker
        .spawn((ttl / 3).max(Duration::from_millis(200)))
        .context("cannot start the tracker's threads")?;
    if let Some((_, line)) = &status_page {
        println!("{line}");
    }
    // Everything runs on the tracker's threads; a signal ends the process.
    loop {
        std::thread::park();
    }
}
