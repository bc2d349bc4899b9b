//! Load generator for the tracker, used by `scripts/bench.sh` (benchmark 5).
//!
//! ```text
//! cargo run --release --example tracker_load -- --addr 127.0.0.1:PORT --clients 50 --seconds 10
//! ```
//!
//! It registers a few files itself (`--files`, each with `--peers-per-file`
//! made-up peers: one TLS connection each, with an identity of its own, as
//! the tracker takes registrations only from authenticated peers), then starts
//! `--clients` threads. Each opens one persistent connection and, once all are
//! connected, sends `PEERS <id>` and reads the whole reply (`OK <n>` and n
//! address lines) in a loop for `--seconds`, checking every reply. It prints
//! the total lookups per second and removes its registrations (`BYE`).
//!
//! Like `redis-benchmark`, which the script compares it with, every client
//! waits for its reply before sending the next request (no pipelining). Unlike
//! it, each client is an OS thread with blocking I/O, not one event loop: on a
//! small machine the generator's own context switches cost the tracker some CPU.
//!
//! Only loopback addresses are accepted, and every loop is bounded in time and
//! in count (`--max-requests` per client).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use p2pshare::identity::Identity;
use p2pshare::net::tls::Tls;
use p2pshare::protocol::Connection;
use sha2::{Digest, Sha256};

/// Socket timeout for every read and write: a stalled tracker fails the run
/// instead of hanging it.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Measures tracker `PEERS` lookups per second from concurrent clients.
#[derive(Parser)]
struct Args {
    /// Tracker address; must be a loopback address (127.0.0.0/8 or ::1).
    #[arg(long)]
    addr: SocketAddr,
    /// Concurrent clients, each one thread with one persistent connection
    /// (the tracker accepts at most 128 connections from one IP address).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=120))]
    clients: u16,
    /// How long to send lookups; kept below the tracker's default peer TTL
    /// (90 s) so the registrations do not expire mid-run.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=60))]
    seconds: u64,
    /// Files to register and look up, round-robin.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=100))]
    files: u16,
    /// Peers registered per file: each `PEERS` reply carries this many lines.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=50))]
    peers_per_file: u16,
    /// Upper bound on requests per client, whatever the time.
    #[arg(long, default_value_t = 50_000_000)]
    max_requests: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(
        args.addr.ip().is_loopback(),
        "refusing {}: this load generator only targets loopback addresses",
        args.addr
    );
    let ports: Vec<u16> = (0..args.peers_per_file).map(|p| 40_000 + p).collect();
    // Ids unique to this process, so runs against one tracker do not collide.
    let ids: Vec<String> = (0..args.files)
        .map(|i| {
            hex(&Sha256::digest(format!(
                "tracker_load {} {i}",
                std::process::id()
            )))
        })
        .collect();

    // One authenticated connection per made-up peer, kept for its BYE.
    let mut peers = Vec::with_capacity(ports.len());
    for port in &ports {
        let tls = Tls::new(Identity::ephemeral()?)?;
        let mut peer = Connection::connect_tls(&args.addr.to_string(), &tls, None, IO_TIMEOUT)
            .with_context(|| format!("cannot connect to the tracker at {} over TLS", args.addr))?;
        let hello = peer.request("HELLO 1\n")?;
        ensure!(hello == "p2pshare 1", "unexpected HELLO reply {hello:?}");
        for (i, id) in ids.iter().enumerate() {
            let line = format!("REGISTER {port} {id} {} tracker_load-{i}.bin", 1 << 20);
            let reply = peer.request(&format!("{line}\n"))?;
            ensure!(reply == "registered", "{line}: {reply:?}");
        }
        peers.push((*port, peer));
    }

    let result = run_clients(&args, &ids);

    // Clean up whatever happened above.
    for (port, peer) in &mut peers {
        let _ = peer.request(&format!("BYE {port}\n"));
    }
    let (total, elapsed) = result?;
    let secs = elapsed.as_secs_f64();
    println!(
        "PEERS lookups: {total} requests in {secs:.2} s from {} client(s), {} file(s) x {} peer(s): {:.0} requests/s",
        args.clients,
        args.files,
        args.peers_per_file,
        total as f64 / secs
    );
    Ok(())
}

/// Runs the client threads; returns the requests they completed and the wall
/// time from the common start until the last one stopped.
fn run_clients(args: &Args, ids: &[String]) -> Result<(u64, Duration)> {
    let clients = usize::from(args.clients);
    // All connections are open before the clock starts.
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(Client::connect(args.addr)?);
    }
    let start = Arc::new(Barrier::new(clients + 1));
    let requests: Vec<Arc<str>> = ids
        .iter()
        .map(|id| format!("PEERS {id}\n").into())
        .collect();
    let expected = usize::from(args.peers_per_file);
    let handles: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(n, conn)| {
            let start = Arc::clone(&start);
            let requests = requests.clone();
            let (seconds, max) = (args.seconds, args.max_requests);
            thread::spawn(move || {
                start.wait();
                let deadline = Instant::now() + Duration::from_secs(seconds);
                lookup_loop(conn, &requests, n, expected, deadline, max)
            })
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    let mut total = 0;
    let mut first_error = None;
    for h in handles {
        match h.join() {
            Ok(Ok(n)) => total += n,
            Ok(Err(e)) => first_error = first_error.or(Some(e)),
            Err(_) => first_error = first_error.or(Some(anyhow::anyhow!("a client panicked"))),
        }
    }
    let elapsed = t0.elapsed();
    match first_error {
        Some(e) => Err(e.context("a client failed")),
        None => Ok((total, elapsed)),
    }
}

/// One client: lookups until `deadline` or `max` requests; returns the count.
fn lookup_loop(
    mut conn: Client,
    requests: &[Arc<str>],
    offset: usize,
    expected: usize,
    deadline: Instant,
    max: u64,
) -> Result<u64> {
    let mut done = 0u64;
    let mut next = offset;
    while done < max && Instant::now() < deadline {
        let req = &requests[next % requests.len()];
        next += 1;
        conn.stream.write_all(req.as_bytes())?;
        let n = conn.count_reply()?;
        if n != expected {
            bail!(
                "{}: expected {expected} peers, got {n} (did the registrations expire?)",
                req.trim_end()
            );
        }
        conn.skip_lines(n)?;
        done += 1;
    }
    Ok(done)
}

/// One persistent connection to the tracker with a reused line buffer.
struct Client {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    line: String,
}

impl Client {
    fn connect(addr: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .with_context(|| format!("cannot connect to the tracker at {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let reader = BufReader::with_capacity(16 * 1024, stream.try_clone()?);
        Ok(Client {
            stream,
            reader,
            line: String::new(),
        })
    }

    /// Sends one request line and returns the first reply line, trimmed.
    fn read_line(&mut self) -> Result<()> {
        self.line.clear();
        let n = self.reader.read_line(&mut self.line)?;
        ensure!(n > 0, "the tracker closed the connection");
        ensure!(self.line.ends_with('\n'), "truncated reply {:?}", self.line);
        Ok(())
    }

    /// Reads an `OK <n>` list header and returns n.
    fn count_reply(&mut self) -> Result<usize> {
        self.read_line()?;
        let line = self.line.trim_end();
        line.strip_prefix("OK ")
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("unexpected reply {line:?}"))
    }

    /// Reads the n lines of a list reply, checking each is a peer address.
    fn skip_lines(&mut self, n: usize) -> Result<()> {
        for _ in 0..n {
            self.read_line()?;
            let line = self.line.trim_end();
            ensure!(
                line.parse::<SocketAddr>().is_ok(),
                "unexpected list line {line:?}"
            );
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
