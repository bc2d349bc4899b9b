//! The harness: a fresh directory per test, deterministic file contents, and
//! re-exports [`Proc`](super::proc::Proc), a child process whose lines
//! arrive on channels, so a test waits for a line with a deadline instead of
//! sleeping.
//!
//! Everything binds 127.0.0.1 with port 0 and learns the real port from the
//! first stdout line, so tests run in parallel without clashing. Every process
//! is killed and reaped when its `Proc` is dropped, also when a test panics;
//! on a panic the transcripts of all its processes are printed, since the
//! failing line is rarely the interesting one.

use std::cell::Cell;
use std::fs;
use std::hash::{BuildHasher, RandomState};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The chunk size of every download.
pub const CHUNK: usize = p2pshare::bounds::CHUNK_SIZE as usize;

/// How long a process may take to print its first line (bind, start up).
pub const STARTUP: Duration = Duration::from_secs(10);

/// How long one REPL command may take; the largest download in the suite
/// (~20 MiB, debug build) takes a few seconds, so this is generous but still
/// leaves a test well inside its 60 s budget.
pub const COMMAND: Duration = Duration::from_secs(40);

/// The most one test may take, all waits together; each wait is cut short
/// to fit (see [`deadline`]), so a hung process fails the test in time.
pub const BUDGET: Duration = Duration::from_secs(50);

/// How long a peer may take to exit after quit, end of input or a signal:
/// it waits at most ~1 s for the tracker's answer to `BYE`.
pub const LEAVE: Duration = Duration::from_secs(2);

thread_local! {
    /// When the current test (the thread that made its `TestDir`) runs out
    /// of [`BUDGET`].
    static TEST_DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The earlier of `now + timeout` and the current test's deadline.
pub(crate) fn deadline(timeout: Duration) -> Instant {
    let wanted = Instant::now() + timeout;
    TEST_DEADLINE
        .with(|d| d.get())
        .map_or(wanted, |d| d.min(wanted))
}

/// A directory of its own for one test, under the system temp directory.
/// Removed when dropped, except after a failure, when it is kept for a look.
pub struct TestDir {
    path: PathBuf,
}

impl TestDir {
    pub fn new(test: &str) -> TestDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("p2pshare-e2e-{}-{n}-{test}", std::process::id()));
        // A leftover from an earlier run with a recycled pid.
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("cannot create the test directory");
        TEST_DEADLINE.with(|d| d.set(Some(Instant::now() + BUDGET)));
        TestDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates (if needed) and returns the subdirectory `name`.
    pub fn sub(&self, name: &str) -> PathBuf {
        let dir = self.path.join(name);
        fs::create_dir_all(&dir).expect("cannot create a subdirectory");
        dir
    }

    /// Writes `len` bytes generated from `seed` to `rel` (relative to the
    /// test directory) and returns the path and the bytes.
    pub fn random_file(&self, rel: &str, len: usize, seed: u64) -> (PathBuf, Vec<u8>) {
        let path = self.path.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("cannot create a parent directory");
        }
        let data = random_bytes(len, seed);
        fs::write(&path, &data).expect("cannot write a test file");
        (path, data)
    }

    /// The names of the entries of the subdirectory `rel` (`""`: the root).
    pub fn entries(&self, rel: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.path.join(rel))
            .expect("cannot list a test directory")
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("test directory kept: {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// `len` pseudo-random bytes from `seed` (xorshift64*): the same seed always
/// gives the same bytes, different seeds give different files.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    // Any nonzero state works; mixing in a constant keeps seed 0 usable.
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Asserts two byte strings are equal without printing megabytes on failure.
#[track_caller]
pub fn assert_same_bytes(got: &[u8], want: &[u8], what: &str) {
    if got == want {
        return;
    }
    let first = got.iter().zip(want).position(|(a, b)| a != b);
    panic!(
        "{what}: {} bytes, expected {}; first difference at {:?}",
        got.len(),
        want.len(),
        first
    );
}

/// Prints one `figure:` line (seen with `--nocapture`) for
/// docs/RELIABILITY.md.
pub fn figure(test: &str, what: &str, took: Duration) {
    println!("figure: {test}: {what}: {:.2} s", took.as_secs_f64());
}

/// The partial download of `id` to `out`: `.<name>.<12 hex of id>.part`.
pub fn part_file(out: &Path, id: &str) -> PathBuf {
    let name = out.file_name().unwrap().to_str().unwrap();
    out.with_file_name(format!(".{name}.{}.part", &id[..12]))
}

/// A free port for a tracker that starts later (or restarts), below the
/// kernel's ephemeral range: the kernel never hands such a port to a
/// `connect` or a bind to port 0, so the other tests' thousands of
/// connections cannot take it meanwhile. Picked at random, then checked.
pub fn unused_port() -> u16 {
    let range = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range");
    let ephemeral = range
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let low = ephemeral.saturating_sub(16_000).max(1024);
    for attempt in 0..1000u32 {
        let random = RandomState::new().hash_one(attempt);
        let port = low + (random % u64::from(ephemeral - low)) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {low}..{ephemeral}");
}

/// A TCP port on 127.0.0.1 where nothing listens, kept from reuse for as
/// long as this lives: it is the local end of a connection we hold open, so
/// the kernel gives it to no listener, and a connect to it is refused.
pub struct ReservedPort {
    pub addr: SocketAddr,
    _held: (TcpListener, TcpStream, TcpStream),
}

impl ReservedPort {
    pub fn new() -> ReservedPort {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let addr = client.local_addr().unwrap();
        assert!(
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).is_err(),
            "something answers on the reserved port {addr}"
        );
        ReservedPort {
            addr,
            _held: (listener, client, server),
        }
    }
}

/// Calls `probe` every 100 ms until it returns `Ok`, for states that have no
/// line to wait for (what a tracker lists). Panics with the last `Err` if
/// `timeout` (or the test's budget) runs out first.
pub fn wait_until<T>(
    timeout: Duration,
    what: &str,
    mut probe: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = deadline(timeout);
    loop {
        let last = match probe() {
            Ok(value) => return value,
            Err(last) => last,
        };
        if Instant::now() >= deadline {
            panic!("no {what} within {timeout:?} or the test's budget; last: {last}");
        }
        // Polling, not synchronisation: the deadline bounds the wait.
        thread::sleep(Duration::from_millis(100));
    }
}

pub use super::proc::{Proc, Stream};
