//! The status pages (`--http`): the JSON API during and after a
//! rate-limited download, the HTTP edge cases over a raw socket, the page in
//! headless Chromium (when installed; CI installs it), and `--completions` /
//! `--version`.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use p2pshare::peer::status::State;

use crate::support::harness::{wait_until, TestDir, COMMAND, STARTUP};
use crate::support::programs::{Peer, Tracker};
use crate::support::status::{get, peer_status, raw_http, tracker_status};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Loads `url` in headless Chromium and returns the DOM after its scripts
/// ran; `None` (with a note) when Chromium is not installed.
fn chromium(url: &str, extra: &[&str]) -> Option<String> {
    if !Path::new(CHROMIUM).exists() {
        eprintln!("note: {CHROMIUM} not found; skipping the headless-browser check");
        return None;
    }
    let profile = tempdir_for_chromium();
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
    .arg(format!("--user-data-dir={}", profile.display()))
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
    let dom = reader.join().unwrap_or_default();
    let _ = fs::remove_dir_all(&profile);
    Some(dom)
}

/// A fresh, empty Chromium profile directory (the test's own `TestDir`
/// must stay the only one on this thread: it sets the test's budget).
fn tempdir_for_chromium() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "p2pshare-e2e-chromium-{}-{:?}",
        std::process::id(),
        thread::current().id()
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("cannot create a chromium profile directory");
    dir
}

/// A peer capped at 2 MiB/s downloads a 16 MiB file: while it runs, the
/// peer's API shows it running with its seeder and the cap, and the page (in
/// Chromium) shows its name and a percentage; afterwards the API shows it
/// done and shared, the seeder's shows the bytes it uploaded, and the
/// tracker's lists both peers.
#[test]
fn status_pages_follow_a_download() {
    let dir = TestDir::new("web-download");
    let tracker = Tracker::start_with(&dir, 0, &["--http", "0"]);
    let tracker_page = tracker.proc().status_page();
    let size = 16 * 1024 * 1024 + 1234;
    let (path, _) = dir.random_file("seed/big file.bin", size, 5);
    let (seeder, ids) = Peer::seeder_with("seeder", &tracker, &[&path], &["--http", "0"]);
    let (seeder_addr, seeder_page, id) = (seeder.addr, seeder.page(), &ids[0]);
    let mut dl = Peer::start(
        "downloader",
        &dir.sub("dl"),
        &tracker,
        &["--http", "0", "--max-download", "2M"],
    );
    let page = dl.page();
    let before = peer_status(page);
    assert_eq!((before.role.as_str(), before.downloads.len()), ("peer", 0));
    assert_eq!(before.caps.download, Some(2 << 20));

    dl.proc.send("download \"big file.bin\"");
    dl.proc.expect_out("Found 1 peer for big file.bin", STARTUP);
    let running = wait_until(COMMAND, "running download with progress", || {
        let s = peer_status(page);
        match s.downloads.first() {
            Some(d) if d.state == State::Running && d.done_bytes > 0 => Ok(d.clone()),
            other => Err(format!("{other:?}")),
        }
    });
    assert_eq!(running.name, "big file.bin");
    assert_eq!(&running.id, id);
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

    dl.proc
        .expect_out("Successfully downloaded: big file.bin", COMMAND);
    let after = peer_status(page);
    let done = &after.downloads[0];
    assert_eq!((done.state, done.done_bytes), (State::Done, size as u64));
    assert_eq!(done.done_chunks, 33);
    assert_eq!(done.peers[0].chunks, 33);
    assert!(after
        .shared
        .iter()
        .any(|f| &f.id == id && f.name == "big file.bin"));

    let seeder_status = peer_status(seeder_page);
    // At least every byte once; an endgame may fetch a chunk twice.
    assert!(seeder_status.shared[0].uploaded >= size as u64);

    wait_until(STARTUP, "tracker listing both peers", || {
        let t = tracker_status(tracker_page);
        match t.files.as_slice() {
            [f] if &f.id == id && f.size == size as u64 && f.peer_count == 2 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
}

/// The server answers GET and HEAD for `/` and `/api/status`, and a clear
/// error for everything else, closing the connection each time.
#[test]
fn status_server_speaks_a_small_http() {
    let dir = TestDir::new("web-http");
    let tracker = Tracker::start_with(&dir, 0, &["--http", "0"]);
    let page = tracker.proc().status_page();
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
