//! The harness: a fresh directory per test, deterministic file contents, and
//! `Proc`, a child process whose stdout and stderr lines arrive on channels,
//! so a test waits for a line with a deadline instead of sleeping.
//!
//! Everything binds 127.0.0.1 with port 0 and learns the real port from the
//! first stdout line, so tests run in parallel without clashing. Every process
//! is killed and reaped when its `Proc` is dropped, also when a test panics;
//! on a panic the transcripts of all its processes are printed, since the
//! failing line is rarely the interesting one.

use std::cell::Cell;
use std::fs;
use std::hash::{BuildHasher, RandomState};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
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
fn deadline(timeout: Duration) -> Instant {
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

/// Which output stream of a process.
#[derive(Clone, Copy, Debug)]
pub enum Stream {
    Out,
    Err,
}

/// A running child process with line channels for stdout and stderr.
pub struct Proc {
    /// The state directory made for it, removed with it.
    state: Option<PathBuf>,
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    out: Receiver<String>,
    err: Receiver<String>,
    /// Every line read and sent so far, tagged, for failure messages.
    transcript: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    /// Spawns `cmd` with all three standard streams piped. `name` tags the
    /// transcript.
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        // A state directory (identity, known trackers) of its own, unless
        // the test chose one: nothing of the user's is read or written.
        let chose = cmd.get_envs().any(|(k, _)| k == "XDG_STATE_HOME")
            || cmd.get_args().any(|a| a == "--state-dir");
        let state = (!chose).then(|| {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("p2pshare-e2e-state-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            dir
        });
        if let Some(dir) = &state {
            cmd.env("XDG_STATE_HOME", dir);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Verbosity comes from the flags each test passes, not from the
            // environment of whoever runs the suite.
            .env_remove("RUST_LOG")
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let transcript = Arc::new(Mutex::new(Vec::new()));
        let out = read_lines(
            child.stdout.take().unwrap(),
            format!("{name} out"),
            &transcript,
        );
        let err = read_lines(
            child.stderr.take().unwrap(),
            format!("{name} err"),
            &transcript,
        );
        Proc {
            name: name.to_string(),
            state,
            stdin: child.stdin.take(),
            child,
            out,
            err,
            transcript,
        }
    }

    /// The process id, e.g. to read its memory use from `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The name that tags its transcript.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lines of either stream read so far that contain `text`, as the
    /// transcript has them; looks without waiting and consumes nothing.
    pub fn seen(&self, text: &str) -> Vec<String> {
        let lines = self.transcript.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().filter(|l| l.contains(text)).cloned().collect()
    }

    /// What follows `prefix` in one of the lines a process prints once at
    /// start-up (`DHT node on UDP `, `Status page on http://`): from the
    /// transcript if a helper already read past it, else from stdout.
    pub fn startup_line(&self, prefix: &str) -> String {
        let line = match self.seen(prefix).pop() {
            Some(line) => line,
            None => self.expect_out(prefix, STARTUP),
        };
        let (_, rest) = line.split_once(prefix).unwrap();
        rest.trim().to_string()
    }

    /// The address in its `Status page on http://ADDR/` line (`--http`;
    /// a peer's ends in `?token=TOKEN`).
    pub fn status_page(&self) -> SocketAddr {
        let url = self.startup_line("Status page on http://");
        let addr = url.split('/').next().unwrap_or_default();
        addr.parse()
            .unwrap_or_else(|_| panic!("{}: bad status page address {url:?}", self.name))
    }

    /// The whole URL of its `Status page on URL` line, token included.
    pub fn status_url(&self) -> String {
        format!("http://{}", self.startup_line("Status page on http://"))
    }

    /// A `Vm*` (kB) or `Threads` figure of the process, from /proc.
    pub fn vm(&self, field: &str) -> u64 {
        let pid = self.pid();
        let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("a live process");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
    }

    /// Writes `line` and a newline to the process's stdin.
    pub fn send(&mut self, line: &str) {
        self.log(format!("{} in | {line}", self.name));
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        let sent = stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush());
        if let Err(e) = sent {
            panic!("{}: cannot write {line:?} to stdin: {e}", self.name);
        }
    }

    /// Reads lines of `stream` until one satisfies `done`, returning all of
    /// them (the match last). Panics if none does within `timeout` or the
    /// stream ends first.
    pub fn lines_until(
        &self,
        stream: Stream,
        timeout: Duration,
        what: &str,
        done: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let rx = self.stream(stream);
        let deadline = deadline(timeout);
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let hit = done(&line);
                    lines.push(line);
                    if hit {
                        return lines;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "{}: no {what} on {stream:?} within {timeout:?} or the test's budget",
                        self.name
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("{}: {stream:?} ended before {what}", self.name)
                }
            }
        }
    }

    /// The next line of `stream` that satisfies `pred`, skipping others.
    pub fn expect_line(
        &self,
        stream: Stream,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let mut lines = self.lines_until(stream, timeout, what, pred);
        lines.pop().unwrap()
    }

    /// The next stdout line containing `text`, skipping others.
    pub fn expect_out(&self, text: &str, timeout: Duration) -> String {
        self.expect_line(Stream::Out, timeout, &format!("{text:?}"), |l| {
            l.contains(text)
        })
    }

    /// Closes stdin, then waits for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        drop(self.stdin.take());
        self.await_exit(timeout)
    }

    /// Waits for the process to exit by itself, leaving stdin open, so that
    /// end of input plays no part (e.g. after a signal).
    pub fn await_exit(&mut self, timeout: Duration) -> ExitStatus {
        // The stdout reader's channel disconnects when the process exits and
        // the pipe closes; waiting on it gives a deadline without polling.
        let deadline = deadline(timeout);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.out.recv_timeout(left) {
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{}: did not exit within {timeout:?}", self.name)
                }
            }
        }
        let status = self.child.wait().expect("cannot wait for a child");
        self.log(format!("{} exited: {status}", self.name));
        status
    }

    /// Closes stdin: the process sees end of input.
    pub fn close_stdin(&mut self) {
        self.log(format!("{} in | <end of input>", self.name));
        drop(self.stdin.take());
    }

    /// Sends the signal `sig` (a name such as `INT` or `TERM`) with kill(1),
    /// so the suite needs no libc.
    pub fn signal(&self, sig: &str) {
        self.log(format!("{} <- SIG{sig}", self.name));
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-s", sig, &pid])
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(status.success(), "kill -s {sig} {pid}: {status}");
    }

    /// Kills the process with SIGKILL (no handler runs, nothing is cleaned
    /// up) and reaps it; its output read so far stays readable.
    pub fn kill(&mut self) {
        self.log(format!("{} <- SIGKILL", self.name));
        self.child.kill().expect("cannot kill a child");
        let status = self.child.wait().expect("cannot wait for a child");
        self.log(format!("{} exited: {status}", self.name));
    }

    /// The channel carrying `stream`'s lines.
    fn stream(&self, stream: Stream) -> &Receiver<String> {
        match stream {
            Stream::Out => &self.out,
            Stream::Err => &self.err,
        }
    }

    fn log(&self, line: String) {
        self.transcript
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.state {
            let _ = fs::remove_dir_all(dir);
        }
        if thread::panicking() {
            let lines = self.transcript.lock().unwrap_or_else(|e| e.into_inner());
            eprintln!("---- transcript of {} ----", self.name);
            for line in lines.iter() {
                eprintln!("{line}");
            }
        }
    }
}

/// Starts a thread that sends each line of `from` into the returned channel
/// and records it in `transcript` tagged with `tag`. The channel disconnects
/// at end of stream.
fn read_lines(
    from: impl Read + Send + 'static,
    tag: String,
    transcript: &Arc<Mutex<Vec<String>>>,
) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let transcript = Arc::clone(transcript);
    thread::spawn(move || {
        let mut reader = BufReader::new(from);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\n', '\r'])
                .to_string();
            transcript
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(format!("{tag} | {line}"));
            // The receiver may be gone (test over); keep draining regardless
            // so the child never blocks on a full pipe.
            let _ = tx.send(line);
        }
    });
    rx
}
