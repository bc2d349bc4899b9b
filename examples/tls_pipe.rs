//! The TLS chunk path on its own: one TLS 1.3 connection over loopback, a
//! server thread answering `GET <index>` with `Connection::send_payload` from
//! a file, a client thread reading each reply with `read_payload` into one
//! reused buffer (4 requests in flight, as a download keeps). No hashing, no
//! writes, no fsync: what is left is what TLS costs. Prints MiB/s and the
//! CPU time of each side per GiB (`getrusage(RUSAGE_THREAD)`).
//!
//! ```sh
//! cargo run --release --example tls_pipe -- [--mib 1024] [--runs 3] [--file PATH] [--plain]
//! ```
//!
//! `--plain` runs the same over plain TCP (chunks sent with `sendfile`), for
//! what TLS costs against it.
//!
//! Without `--file`, a random file of `--mib` MiB is made in the temporary
//! directory (and removed afterwards); it is read once first so that it is
//! in the page cache.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use p2pshare::bounds::CHUNK_SIZE;
use p2pshare::identity::Identity;
use p2pshare::manifest::Chunk;
use p2pshare::net::rate::RateCap;
use p2pshare::net::tls::Tls;
use p2pshare::net::transport::Stream;
use p2pshare::protocol::conn::{Connection, Payload};

const DEPTH: u32 = 4;

struct Args {
    mib: u64,
    runs: u32,
    file: Option<PathBuf>,
    plain: bool,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        mib: 1024,
        runs: 3,
        file: None,
        plain: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--mib" => args.mib = value()?.parse()?,
            "--runs" => args.runs = value()?.parse()?,
            "--file" => args.file = Some(value()?.into()),
            "--plain" => args.plain = true,
            _ => bail!("usage: tls_pipe [--mib N] [--runs N] [--file PATH] [--plain]"),
        }
    }
    Ok(args)
}

/// CPU time (user + system) of the calling thread.
fn thread_cpu() -> Duration {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn chunk_of(index: u32, size: u64) -> Chunk {
    let offset = u64::from(index) * u64::from(CHUNK_SIZE);
    let len = (size - offset).min(u64::from(CHUNK_SIZE)) as u32;
    Chunk { index, offset, len }
}

fn serve(listener: TcpListener, tls: Option<Tls>, path: PathBuf, size: u64) -> Result<Duration> {
    let (tcp, _) = listener.accept()?;
    let stream = match tls {
        Some(tls) => Stream::tls_server(tcp, &tls.server, Duration::from_secs(5))?,
        None => Stream::from(tcp),
    };
    let mut conn = Connection::new(stream)?;
    let file = File::open(path)?;
    let unlimited = RateCap::new(None);
    let cpu = thread_cpu();
    while let Some(line) = conn.read_line(Duration::from_secs(30))? {
        let index: u32 = line.strip_prefix("GET ").context("not a GET")?.parse()?;
        let chunk = chunk_of(index, size);
        let header = format!("OK {}\n", chunk.len);
        let payload = Payload::File {
            file: &file,
            offset: chunk.offset,
            len: chunk.len as usize,
        };
        conn.send_payload(header.as_bytes(), payload, &unlimited)?;
    }
    Ok(thread_cpu() - cpu)
}

/// One run: returns (seconds, server CPU, client CPU).
fn run(path: &Path, size: u64, plain: bool) -> Result<(f64, Duration, Duration)> {
    let server_tls = Tls::new(Identity::ephemeral()?)?;
    let client_tls = Tls::new(Identity::ephemeral()?)?;
    let server_id = server_tls.id();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    let server = {
        let path = path.to_path_buf();
        let tls = (!plain).then_some(server_tls);
        thread::spawn(move || serve(listener, tls, path, size))
    };
    let five = Duration::from_secs(5);
    let mut conn = match plain {
        true => Connection::connect(&addr, five)?,
        false => Connection::connect_tls(&addr, &client_tls, Some(server_id), five)?,
    };
    let chunks = size.div_ceil(u64::from(CHUNK_SIZE)) as u32;
    let mut buf = vec![0u8; CHUNK_SIZE as usize];
    let started = Instant::now();
    let cpu = thread_cpu();
    let mut sent = 0;
    for index in 0..chunks {
        while sent < chunks && sent < index + DEPTH {
            conn.write_all(format!("GET {sent}\n").as_bytes())?;
            sent += 1;
        }
        let len = conn.read_payload_header(CHUNK_SIZE as usize)?;
        if len != chunk_of(index, size).len as usize {
            bail!("chunk {index}: {len} bytes");
        }
        conn.read_payload(&mut buf[..len])?;
    }
    let client_cpu = thread_cpu() - cpu;
    let secs = started.elapsed().as_secs_f64();
    conn.shutdown_write();
    let server_cpu = server
        .join()
        .map_err(|_| anyhow::anyhow!("server panicked"))??;
    Ok((secs, server_cpu, client_cpu))
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let (path, made) = match &args.file {
        Some(p) => (p.clone(), false),
        None => {
            let p = std::env::temp_dir().join(format!("tls_pipe.{}.bin", std::process::id()));
            let mut rng = File::open("/dev/urandom")?.take(args.mib << 20);
            std::io::copy(&mut rng, &mut File::create(&p)?)?;
            (p, true)
        }
    };
    let size = std::fs::metadata(&path)?.len();
    std::io::copy(&mut File::open(&path)?, &mut std::io::sink())?;
    let gib = size as f64 / f64::from(1u32 << 30);
    let result = (|| {
        for k in 1..=args.runs {
            let (secs, server, client) = run(&path, size, args.plain)?;
            println!(
                "run {k}: {:.0} MiB/s; CPU s/GiB: server {:.3}, client {:.3}",
                size as f64 / 1048576.0 / secs,
                server.as_secs_f64() / gib,
                client.as_secs_f64() / gib
            );
            std::io::stdout().flush()?;
        }
        Ok(())
    })();
    if made {
        let _ = std::fs::remove_file(&path);
    }
    result
}
