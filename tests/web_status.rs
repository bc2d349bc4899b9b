//! The status pages (`--http`), against the real binaries on loopback: the
//! JSON API during and after a rate-limited download, the HTTP edge cases
//! over a raw socket, the page in headless Chromium (when installed), and
//! `--completions` / `--version`.
//!
//! Every process binds 127.0.0.1 with port 0 and is killed when dropped;
//! every wait has a deadline. The harness is small and local on purpose:
//! this binary only needs to start processes and read their lines.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use p2pshare::peer::status::{PeerStatus, State};
use p2pshare::tracker::status::TrackerStatus;

const STARTUP: Duration = Duration::from_secs(10);
const DOWNLOAD: Duration = Duration::from_secs(60);
const CHROMIUM: &str = "/usr/bin/chromium";

/// A child process whose stdout lines arrive on a channel.
struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    out: Receiver<String>,
}

impl Proc {
    fn spawn(name: &str, exe: &str, args: &[&str], cwd: &Path) -> Proc {
        let mut child = Command::new(exe)
            .args(args)
            .current_dir(cwd)
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, out) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Proc {
            name: name.into(),
            stdin: child.stdin.take(),
            child,
            out,
        }
    }

    /// The next stdout line containing `text`, within `timeout`.
    fn expect(&self, text: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.out.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(e) => panic!(
                    "{}: no line with {text:?} within {timeout:?}: {e}",
                    self.name
                ),
            }
        }
    }

    /// The address in the `Status page on http://ADDR/` line.
    fn status_page(&self) -> SocketAddr {
        let line = self.expect("Status page on http://", STARTUP);
        line.trim_start_matches("Status page on http://")
            .trim_end_matches('/')
            .parse()
            .unwrap_or_else(|_| panic!("{}: bad status line {line:?}", self.name))
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("{}: cannot send {line:?}: {e}", self.name));
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh directory, removed when dropped.
struct TestDir(PathBuf);

impl TestDir {
    fn new(tag: &str) -> TestDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("p2pshare-web-{}-{n}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("cannot create a test directory");
        TestDir(dir)
    }

    fn sub(&self, name: &str) -> PathBuf {
        let dir = self.0.join(name);
        fs::create_dir_all(&dir).expect("cannot create a subdirectory");
        dir
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Starts a tracker with a status page; returns it, its port and the page.
fn tracker(dir: &Path) -> (Proc, u16, SocketAddr) {
    let exe = env!("CARGO_BIN_EXE_tracker");
    let t = Proc::spawn(
        "tracker",
        exe,
        &["--bind", "127.0.0.1", "--http", "0", "0"],
        dir,
    );
    let first = t.expect("Tracker running on port ", STARTUP);
    let port = first
        .trim_start_matches("Tracker running on port ")
        .split('.')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("bad first line {first:?}"));
    let page = t.status_page();
    (t, port, page)
}

/// Starts a peer against the tracker on `port` with `extra` options.
fn peer(name: &str, dir: &Path, port: u16, extra: &[&str]) -> (Proc, SocketAddr) {
    let port = port.to_string();
    let mut args = vec!["--bind", "127.0.0.1"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["127.0.0.1", &port, "0"]);
    let p = Proc::spawn(name, env!("CARGO_BIN_EXE_peer"), &args, dir);
    let first = p.expect("Peer listening on ", STARTUP);
    let addr = first
        .trim_start_matches("Peer listening on ")
        .parse()
        .unwrap_or_else(|_| panic!("bad first line {first:?}"));
    (p, addr)
}

/// Sends `request` as it is and returns the status code and the raw reply.
fn raw_http(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, STARTUP).expect("connect to the status page");
    s.set_read_timeout(Some(STARTUP)).expect("set a timeout");
    s.write_all(request.as_bytes()).expect("send a request");
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).expect("read the reply");
    let reply = String::from_utf8(reply).expect("a UTF-8 reply");
    let code = reply
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP reply: {reply:?}"));
    (code, reply)
}

/// `GET path`; returns the status code and the body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let (code, reply) = raw_http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    let body = reply
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

fn peer_status(addr: SocketAddr) -> PeerStatus {
    let (code, body) = get(addr, "/api/status");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("bad peer JSON ({e}): {body}"))
}

fn tracker_status(addr: SocketAddr) -> TrackerStatus {
    let (code, body) = get(addr, "/api/status");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("bad tracker JSON ({e}): {body}"))
}

/// Calls `check` until it returns `Ok`, failing with its last error at the
/// deadline. Polls every 50 ms: these are local HTTP requests.
fn wait_until<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(v) => return v,
            Err(e) if Instant::now() >= deadline => panic!("{what}: not within {timeout:?}: {e}"),
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Deterministic pseudo-random bytes (xorshift64*).
fn bytes(len: usize, seed: u64) -> Vec<u8> {
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

/// Loads `url` in headless Chromium and returns the DOM after its scripts
/// ran; `None` (with a note) when Chromium is not installed.
fn chromium(url: &str, extra: &[&str]) -> Option<String> {
    if !Path::new(CHROMIUM).exists() {
        eprintln!("note: {CHROMIUM} not found; skipping the headless-browser check");
        return None;
    }
    let profile = TestDir::new("chromium-profile");
    let mut cmd = Command::new(CHROMIUM);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
    ])
    .arg(format!("--user-data-dir={}", profile.0.display()))
    .args(extra)
    .arg(url)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("cannot start chromium");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = thread::spawn(move || {
        let mut dom = String::new();
        let _ = stdout.read_to_string(&mut dom);
        dom
    });
    // Chromium has no timeout of its own: kill it at the deadline.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish within 60 s");
            }
        }
    }
    Some(reader.join().unwrap_or_default())
}

/// A peer capped at 2 MiB/s downloads a 16 MiB file: while it runs, the
/// peer's API shows it running with its seeder and the cap, and the page (in
/// Chromium) shows its name and a percentage; afterwards the API shows it
/// done and shared, the seeder's shows the bytes it uploaded, and the
/// tracker's lists both peers.
#[test]
fn status_pages_follow_a_download() {
    let dir = TestDir::new("download");
    let (_tracker, port, tracker_page) = tracker(&dir.0);
    let size = 16 * 1024 * 1024 + 1234;
    let seed_dir = dir.sub("seed");
    fs::write(seed_dir.join("big file.bin"), bytes(size, 5)).expect("write the file");
    let (seeder, seeder_addr) = peer(
        "seeder",
        &seed_dir,
        port,
        &["--serve", "--http", "0", "--share", "big file.bin"],
    );
    let seeder_page = seeder.status_page();
    let line = seeder.expect("Successfully registered file: ", STARTUP);
    let id = line
        .rsplit_once("id ")
        .map(|(_, id)| id.trim_end_matches(')').to_string())
        .expect("an id");
    let (mut dl, _) = peer(
        "downloader",
        &dir.sub("dl"),
        port,
        &["--http", "0", "--max-download", "2M"],
    );
    let page = dl.status_page();
    let before = peer_status(page);
    assert_eq!((before.role.as_str(), before.downloads.len()), ("peer", 0));
    assert_eq!(before.caps.download, Some(2 << 20));

    dl.send("download \"big file.bin\"");
    dl.expect("Found 1 peers for big file.bin", STARTUP);
    let running = wait_until("a running download with progress", DOWNLOAD, || {
        let s = peer_status(page);
        match s.downloads.first() {
            Some(d) if d.state == State::Running && d.done_bytes > 0 => Ok(d.clone()),
            other => Err(format!("{other:?}")),
        }
    });
    assert_eq!(running.name, "big file.bin");
    assert_eq!(running.id, id);
    assert_eq!(running.size, size as u64);
    assert_eq!(running.total_chunks, 33);
    assert!(
        running.done_bytes < size as u64,
        "2 MiB/s cannot be done yet"
    );
    assert_eq!(running.peers.len(), 1);
    assert_eq!(running.peers[0].addr, seeder_addr.to_string());
    assert!(running.peers[0].chunks >= 1);

    if let Some(dom) = chromium(&format!("http://{page}/"), &["--dump-dom"]) {
        assert!(dom.contains("big file.bin"), "name not on the page:\n{dom}");
        let pct = dom
            .split("class=\"pct\">")
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .unwrap_or_else(|| panic!("no progress figure on the page:\n{dom}"));
        let value: f64 = pct
            .trim_end_matches('%')
            .parse()
            .unwrap_or_else(|_| panic!("bad progress figure {pct:?}"));
        assert!(
            pct.ends_with('%') && (0.0..=100.0).contains(&value),
            "{pct:?}"
        );
        assert!(
            dom.contains(&seeder_addr.to_string()),
            "seeder not shown:\n{dom}"
        );
    }

    dl.expect("Successfully downloaded: big file.bin", DOWNLOAD);
    let after = peer_status(page);
    let done = &after.downloads[0];
    assert_eq!((done.state, done.done_bytes), (State::Done, size as u64));
    assert_eq!(done.done_chunks, 33);
    assert_eq!(done.peers[0].chunks, 33);
    assert!(after
        .shared
        .iter()
        .any(|f| f.id == id && f.name == "big file.bin"));

    let seeder_status = peer_status(seeder_page);
    // At least every byte once; an endgame may fetch a chunk twice.
    assert!(seeder_status.shared[0].uploaded >= size as u64);

    wait_until("the tracker listing both peers", STARTUP, || {
        let t = tracker_status(tracker_page);
        match t.files.as_slice() {
            [f] if f.id == id && f.size == size as u64 && f.peer_count == 2 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
}

/// The server answers GET and HEAD for `/` and `/api/status`, and a clear
/// error for everything else, closing the connection each time.
#[test]
fn status_server_speaks_a_small_http() {
    let dir = TestDir::new("http");
    let (_tracker, _, page) = tracker(&dir.0);
    let (code, body) = get(page, "/");
    assert_eq!(code, 200);
    assert!(body.starts_with("<!doctype html>"), "{body}");
    assert!(
        body.contains("\"role\":\"tracker\""),
        "initial status embedded"
    );
    let (code, body) = get(page, "/api/status?t=1");
    assert_eq!(code, 200);
    assert!(body.starts_with("{\"role\":\"tracker\""), "{body}");
    assert_eq!(get(page, "/nope").0, 404);
    let (code, reply) = raw_http(page, "HEAD /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert_eq!(code, 200);
    assert!(reply.ends_with("\r\n\r\n"), "HEAD has no body: {reply:?}");
    let (code, reply) = raw_http(page, "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(code, 405);
    assert!(reply.contains("Allow: GET, HEAD\r\n"));
    assert_eq!(raw_http(page, "nonsense\r\n\r\n").0, 400);
    assert_eq!(
        raw_http(page, &format!("GET /{} HTTP/1.1\r\n\r\n", "x".repeat(5000))).0,
        431
    );
    let rebinding = "GET /api/status HTTP/1.1\r\nHost: attacker.example:80\r\n\r\n";
    assert_eq!(raw_http(page, rebinding).0, 403);
}

/// `--completions SHELL` needs no other argument and prints a script;
/// `--version` names the binary.
#[test]
fn completions_and_version() {
    for (exe, name) in [
        (env!("CARGO_BIN_EXE_peer"), "peer"),
        (env!("CARGO_BIN_EXE_tracker"), "tracker"),
    ] {
        for shell in ["bash", "zsh", "fish"] {
            let out = Command::new(exe)
                .args(["--completions", shell])
                .output()
                .expect("run the binary");
            assert!(out.status.success(), "{name} --completions {shell}");
            let script = String::from_utf8_lossy(&out.stdout);
            assert!(
                script.contains(name) && script.contains("http-bind"),
                "{script}"
            );
        }
        let out = Command::new(exe).arg("--version").output().expect("run");
        let version = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            version.trim(),
            format!("{name} {}", env!("CARGO_PKG_VERSION"))
        );
    }
}
