//! `tracker [--bind ADDR] PORT`: the p2pshare tracker.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

/// Coordinates p2pshare peers: remembers which peers have which files.
/// Talk to it by hand with `nc HOST PORT` and type `SEARCH`.
#[derive(Parser)]
#[command(
    version,
    after_help = "Example:\n  tracker 8080\n  tracker --bind 127.0.0.1 0   # loopback only, any free port"
)]
struct Args {
    /// TCP port to listen on (0 picks a free port; the real one is printed).
    port: u16,
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
    /// More detail on stderr (-v info, -vv debug); RUST_LOG works too.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

fn main() {
    let args = Args::parse();
    p2pshare::cli::init_logging(args.verbose);
    if let Err(e) = run(&args) {
        p2pshare::cli::exit_with_error("tracker", &e);
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let ttl = Duration::from_secs(args.peer_ttl.max(1));
    let addr = SocketAddr::new(args.bind, args.port);
    let tracker = p2pshare::tracker::Tracker::bind(addr, ttl)
        .with_context(|| format!("cannot listen on {addr}"))?;
    let port = tracker
        .local_addr()
        .context("cannot read the bound address")?
        .port();
    // Kept alive for the life of the process: the node runs on its own thread.
    let dht = if args.dht {
        let IpAddr::V4(bind) = args.bind else {
            anyhow::bail!("the DHT needs an IPv4 --bind address");
        };
        Some(p2pshare::dht::DhtNode::start(
            bind,
            port,
            &args.dht_bootstrap,
        )?)
    } else {
        None
    };
    ctrlc::set_handler(|| {
        println!("Tracker stopped.");
        std::process::exit(0);
    })
    .context("cannot install the signal handler")?;
    println!("Tracker running on port {port}. Press Ctrl+C to stop.");
    if let Some(dht) = &dht {
        println!("DHT node on UDP {}", dht.status().local_addr);
    }
    tracker.run((ttl / 3).max(Duration::from_millis(200)));
    Ok(())
}
