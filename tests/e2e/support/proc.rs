//! `Proc`: a child process whose stdout and stderr lines arrive on
//! channels, so a test waits for a line with a deadline instead of
//! sleeping; killed and reaped when dropped, its transcript printed when
//! the test panics.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::harness::{deadline, STARTUP};

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
    /// Disconnects once the stderr reader has put its last line in the
    /// transcript.
    err_done: Receiver<()>,
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
        let (out, _) = read_lines(
            child.stdout.take().unwrap(),
            format!("{name} out"),
            &transcript,
        );
        let (err, err_done) = read_lines(
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
            err_done,
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

    /// As [`seen`](Self::seen), once at least one line has `text`, waiting
    /// up to `timeout` for it: for a line on the other stream than the one
    /// just waited on (each stream has its own reader thread).
    pub fn seen_within(&self, text: &str, timeout: Duration) -> Vec<String> {
        let deadline = deadline(timeout);
        loop {
            let lines = self.seen(text);
            if !lines.is_empty() || Instant::now() >= deadline {
                return lines;
            }
            thread::sleep(Duration::from_millis(10));
        }
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
        // Its last stderr lines too, so that `seen` finds them: the two
        // streams are read by two threads.
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(RecvTimeoutError::Timeout) = self.err_done.recv_timeout(left) {
            panic!(
                "{}: its stderr stayed open past the {timeout:?} deadline",
                self.name
            )
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
) -> (Receiver<String>, Receiver<()>) {
    let (tx, rx) = mpsc::channel();
    let (done_tx, done) = mpsc::channel::<()>();
    let transcript = Arc::clone(transcript);
    thread::spawn(move || {
        // Dropped when this thread ends: the end of the stream, all of it
        // in the transcript.
        let _done = done_tx;
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
    (rx, done)
}
