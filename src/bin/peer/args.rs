//! The peer's command line: the classic `peer HOST PORT LISTEN_PORT` form
//! and the `send` and `get` subcommands, with the options they share.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use p2pshare::bounds::{DEFAULT_ANNOUNCE_INTERVAL, DEFAULT_PATIENCE, DEFAULT_WORKERS, MAX_WORKERS};
use p2pshare::cli::CommonArgs;
use p2pshare::identity::PeerId;
use p2pshare::link::ShareLink;
use p2pshare::ticket::Ticket;

/// Shares files with other peers and downloads from them, verifying every
/// chunk. `peer send FILE` and `peer get TICKET` move one file with no
/// tracker; `peer HOST PORT LISTEN_PORT` joins a tracker and reads commands
/// from stdin (type `help`), or with --serve just serves.
#[derive(Parser)]
#[command(
    name = "peer",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    override_usage = "peer [OPTIONS] TRACKER_HOST TRACKER_PORT LISTEN_PORT\n       peer send [OPTIONS] PATH...\n       peer get [OPTIONS] TICKET... [OUT]",
    after_help = "Examples:\n  peer send big.iso                       # prints a ticket; serves until Ctrl+C\n  peer get p2p2:...                       # on the other machine\n  peer 127.0.0.1 8080 9001\n  peer --serve --share big.iso 127.0.0.1 8080 0\n  echo 'download big.iso' | peer 127.0.0.1 8080 0\n  peer --dht 127.0.0.1 8080 9001          # tracker + DHT; works on if the tracker dies\n  peer --http 8090 127.0.0.1 8080 0       # live status page on http://127.0.0.1:8090/\n  peer --completions zsh > ~/.zfunc/_peer"
)]
pub struct Cli {
    #[command(subcommand)]
    pub mode: Option<Mode>,
    #[command(flatten)]
    pub classic: Classic,
}

#[derive(Subcommand)]
pub enum Mode {
    /// Share files (privately, unless --public) and print a ticket for
    /// each; serve them until Ctrl+C. No tracker needed.
    Send(SendArgs),
    /// Download what each ticket (or share link) names, one after another,
    /// then exit: 0 once every file is verified and saved.
    #[command(override_usage = "peer get [OPTIONS] TICKET... [OUT]")]
    Get(GetArgs),
}

/// `peer [OPTIONS] TRACKER_HOST TRACKER_PORT LISTEN_PORT`.
#[derive(Args)]
pub struct Classic {
    /// Host name or address of the tracker.
    #[arg(required_unless_present = "completions")]
    pub tracker_host: Option<String>,
    /// Port of the tracker.
    #[arg(required_unless_present = "completions")]
    pub tracker_port: Option<u16>,
    /// TCP port to serve chunks on (0 picks a free port; the real one is printed).
    #[arg(required_unless_present = "completions")]
    pub listen_port: Option<u16>,
    /// Share this file at start-up (repeatable).
    #[arg(long, value_name = "PATH")]
    pub share: Vec<PathBuf>,
    /// Share this file privately at start-up: only holders of its link
    /// (printed) can download it, and it is not listed by name (repeatable).
    #[arg(long, value_name = "PATH")]
    pub share_private: Vec<PathBuf>,
    /// No REPL: serve until SIGINT/SIGTERM.
    #[arg(long)]
    pub serve: bool,
    /// Resume the downloads the last run left unfinished, at start-up.
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub bind: BindArgs,
    #[command(flatten)]
    pub serving: ServeArgs,
    #[command(flatten)]
    pub fetch: FetchArgs,
    #[command(flatten)]
    pub find: FindArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `peer send [OPTIONS] PATH...`.
#[derive(Args)]
pub struct SendArgs {
    /// What to send: a file, or a folder; several paths are sent together
    /// as one folder (one ticket).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Leave out of a folder the files and directories this glob matches
    /// (a name at any depth, or a path from the folder's root); repeatable.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Share publicly (listed by name on a tracker, fetchable by id) rather
    /// than to ticket holders only.
    #[arg(long)]
    pub public: bool,
    #[command(flatten)]
    pub at: OneShot,
    #[command(flatten)]
    pub bind: BindArgs,
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub find: FindArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `peer get [OPTIONS] TICKET... [OUT]`.
#[derive(Args)]
pub struct GetArgs {
    /// Tickets from `peer send` (or p2pshare: links), fetched one after
    /// another, then optionally OUT: where to save (a file for one ticket,
    /// or a directory to save into under each one's name; default: the
    /// current directory).
    #[arg(required = true, value_name = "TICKET... [OUT]")]
    pub args: Vec<String>,
    /// Of a folder, fetch only the files this glob matches (a name at any
    /// depth, or a path from the folder's root, with what is under it);
    /// repeatable.
    #[arg(long, value_name = "GLOB")]
    pub only: Vec<String>,
    #[command(flatten)]
    pub at: OneShot,
    #[command(flatten)]
    pub bind: BindArgs,
    #[command(flatten)]
    pub fetch: FetchArgs,
    #[command(flatten)]
    pub find: FindArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

impl Classic {
    pub fn net(&self) -> Net<'_> {
        Net {
            bind: &self.bind,
            serve: Some(&self.serving),
            fetch: Some(&self.fetch),
            find: &self.find,
        }
    }
}

impl SendArgs {
    pub fn net(&self) -> Net<'_> {
        Net {
            bind: &self.bind,
            serve: Some(&self.serve),
            fetch: None,
            find: &self.find,
        }
    }
}

impl GetArgs {
    pub fn net(&self) -> Net<'_> {
        Net {
            bind: &self.bind,
            serve: None,
            fetch: Some(&self.fetch),
            find: &self.find,
        }
    }

    /// The tickets (or links) and the output, from the positional
    /// arguments: the last one is OUT unless it is a ticket or link, and
    /// every other one must be a ticket or link. An OUT that looks like a
    /// ticket is never taken for a file name.
    pub fn targets(&self) -> Result<(Vec<&str>, Option<PathBuf>), String> {
        let pasted = |a: &str| Ticket::is_ticket(a) || ShareLink::is_link(a);
        let (mut tickets, out) = match self.args.split_last() {
            Some((last, rest)) if !rest.is_empty() && !pasted(last) => (
                rest.iter().map(String::as_str).collect::<Vec<_>>(),
                Some(PathBuf::from(last)),
            ),
            _ => (self.args.iter().map(String::as_str).collect(), None),
        };
        let any_tracker = self.at.tracker.is_some() || self.find.dht;
        if let Some(bad) = tickets
            .iter()
            .find(|t| !(pasted(t) || any_tracker && tickets.len() == 1))
        {
            return Err(format!(
                "{bad:?} is not a ticket (p2p2:...) or link (p2pshare:...); copy it again, whole"
            ));
        }
        if tickets.len() > 1 && out.as_ref().is_some_and(|o| !o.is_dir()) {
            return Err("with several tickets, OUT must be an existing directory".into());
        }
        tickets.dedup();
        Ok((tickets, out))
    }
}

/// What `send` and `get` take beyond the rest: they need no tracker.
#[derive(Args)]
pub struct OneShot {
    /// TCP port to serve on (default: any free one).
    #[arg(long, default_value_t = 0, value_name = "PORT")]
    pub port: u16,
    /// Also use this tracker (announce to it, ask it for peers).
    #[arg(long, value_name = "HOST:PORT", value_parser = host_port)]
    pub tracker: Option<String>,
}

/// Where this peer listens: every form.
#[derive(Args)]
pub struct BindArgs {
    /// Address to serve chunks on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    pub bind: IpAddr,
}

/// How a peer that shares is reached and paced: the REPL and `send`.
#[derive(Args)]
pub struct ServeArgs {
    /// An address others reach this peer at (a router's forwarded port),
    /// put first in tickets: IP or IP:PORT (repeatable).
    #[arg(long, value_name = "ADDR", value_parser = public_addr)]
    pub public_addr: Vec<SocketAddr>,
    /// Seconds between re-announcements of shared files to the tracker.
    #[arg(long, default_value_t = DEFAULT_ANNOUNCE_INTERVAL.as_secs(), value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub announce_interval: u64,
    /// Cap on upload bandwidth, all connections together (e.g. 500K, 10M; K/M/G are 1024-based).
    #[arg(long, value_name = "RATE", value_parser = rate)]
    pub max_upload: Option<RateArg>,
    /// Do not ask the router (UPnP IGD or NAT-PMP) to forward a public
    /// port to this peer. By default a peer that serves asks at start,
    /// renews while it runs and deletes the mapping when it leaves.
    #[arg(long)]
    pub no_port_map: bool,
}

impl Default for ServeArgs {
    fn default() -> Self {
        ServeArgs {
            public_addr: Vec::new(),
            announce_interval: DEFAULT_ANNOUNCE_INTERVAL.as_secs(),
            max_upload: None,
            no_port_map: false,
        }
    }
}

/// How hard a peer that downloads works: the REPL and `get`.
#[derive(Args)]
pub struct FetchArgs {
    /// Parallel chunk fetches per download.
    #[arg(long, default_value_t = DEFAULT_WORKERS, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_WORKERS)))]
    pub workers: u16,
    /// Seconds a download waits for a usable peer when none is left, asking
    /// the tracker and the DHT meanwhile, before it fails (progress is kept).
    #[arg(long, default_value_t = DEFAULT_PATIENCE.as_secs(), value_name = "SECS")]
    pub patience: u64,
    /// Cap on download bandwidth, all connections together (e.g. 500K, 10M).
    #[arg(long, value_name = "RATE", value_parser = rate)]
    pub max_download: Option<RateArg>,
}

impl Default for FetchArgs {
    fn default() -> Self {
        FetchArgs {
            workers: DEFAULT_WORKERS,
            patience: DEFAULT_PATIENCE.as_secs(),
            max_download: None,
        }
    }
}

/// How peers are found beyond a tracker: every form.
#[derive(Args)]
pub struct FindArgs {
    /// Also find peers through the Mainline DHT, and announce shared files there.
    #[arg(long)]
    pub dht: bool,
    /// UDP port of the DHT node (default: the same number as the listen port).
    #[arg(long, value_name = "PORT", requires = "dht")]
    pub dht_port: Option<u16>,
    /// DHT node to join through, HOST:PORT (repeatable; default: the tracker's address).
    #[arg(long, value_name = "HOST:PORT", requires = "dht")]
    pub dht_bootstrap: Vec<String>,
    /// Pin the tracker's id (as the tracker prints it), instead of learning
    /// it on first contact.
    #[arg(long, value_name = "ID")]
    pub tracker_id: Option<PeerId>,
}

/// The network options of one form, each group where the form takes it.
pub struct Net<'a> {
    pub bind: &'a BindArgs,
    pub serve: Option<&'a ServeArgs>,
    pub fetch: Option<&'a FetchArgs>,
    pub find: &'a FindArgs,
}

/// A parsed `--max-upload`/`--max-download` value (`None`: no cap).
#[derive(Clone, Copy)]
pub struct RateArg(pub Option<u64>);

fn rate(text: &str) -> Result<RateArg, String> {
    p2pshare::net::rate::parse_rate(text)
        .map(RateArg)
        .map_err(|e| e.to_string())
}

/// `HOST:PORT` (an IPv6 host in brackets).
fn host_port(text: &str) -> Result<String, String> {
    match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(text.to_string())
        }
        _ => Err(format!("expected HOST:PORT, not {text:?}")),
    }
}

/// `IP` (port 0: the listen port) or `IP:PORT`.
fn public_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse::<SocketAddr>()
        .or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 0)))
        .map_err(|_| format!("expected an IP address or IP:PORT, not {text:?}"))
}
