//! Headless Chromium driven over the DevTools protocol, as a person would
//! use a page: real mouse clicks at an element's place on the screen, typed
//! text, and the DOM read back with `Runtime.evaluate`. The protocol runs
//! over a WebSocket (the `tungstenite` dev-dependency: a small, synchronous
//! client that fits these blocking tests; the suite has no async runtime).
//!
//! Every wait has a deadline, cut to the test's budget ([`wait_until`]);
//! the browser is closed, or killed, when the [`Browser`] is dropped.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

use super::harness::{wait_until, STARTUP};

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long one DevTools command may take (a loaded 2-core machine, a
/// debug build of everything else running beside it).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a page may take to show what a test waits for.
pub const PAGE_WAIT: Duration = Duration::from_secs(40);

pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    /// The page's flat session.
    session: String,
    next_id: u64,
    profile: PathBuf,
}

impl Browser {
    /// Starts Chromium with a `width` x `height` window and one blank page.
    /// Without Chromium the test fails, saying how to get it: a test that
    /// cannot run must not pass (`scripts/test.sh` installs it).
    pub fn start(width: u32, height: u32) -> Browser {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} not found: the page tests need it; run the tests with scripts/test.sh, \
             which installs it (or: apt-get install chromium)"
        );
        let profile = std::env::temp_dir().join(format!(
            "p2pshare-e2e-cdp-{}-{:?}",
            std::process::id(),
            thread::current().id()
        ));
        let _ = fs::remove_dir_all(&profile);
        fs::create_dir_all(&profile).expect("cannot create a chromium profile directory");
        let mut child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start chromium");
        let url = devtools_url(&mut child);
        let ws = connect(&url);
        let mut browser = Browser {
            child,
            ws,
            session: String::new(),
            next_id: 0,
            profile,
        };
        let target = browser.call("Target.createTarget", json!({ "url": "about:blank" }));
        let target = target["targetId"]
            .as_str()
            .expect("a target id")
            .to_string();
        let attached = browser.call(
            "Target.attachToTarget",
            json!({ "targetId": target, "flatten": true }),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        // Headless windows are at least 500 px wide whatever
        // --window-size says: the viewport is set as a phone's would be.
        browser.page(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
        );
        // A headless page never has the focus by itself; the clipboard
        // wants a focused document.
        browser.page(
            "Emulation.setFocusEmulationEnabled",
            json!({ "enabled": true }),
        );
        browser
    }

    /// Sends a DevTools command (to the page's session once there is one)
    /// and returns its result, skipping events.
    fn send(&mut self, method: &str, params: Value, session: bool) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if session {
            msg["sessionId"] = json!(self.session);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .unwrap_or_else(|e| panic!("DevTools {method}: {e}"));
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            assert!(Instant::now() < deadline, "DevTools {method}: no answer");
            let text = match self.ws.read() {
                Ok(Message::Text(t)) => t.as_str().to_string(),
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(e) => panic!("DevTools {method}: {e}"),
            };
            let reply: Value = serde_json::from_str(&text).expect("DevTools JSON");
            if reply["id"] != json!(id) {
                continue; // an event
            }
            if let Some(e) = reply.get("error") {
                panic!("DevTools {method}: {e}");
            }
            return reply["result"].clone();
        }
    }

    /// A browser-wide command.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, false)
    }

    /// A command to the page.
    fn page(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, true)
    }

    /// Lets the page at `origin` use the clipboard without asking.
    pub fn grant_clipboard(&mut self, origin: &str) {
        self.call(
            "Browser.grantPermissions",
            json!({ "origin": origin, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"] }),
        );
    }

    /// Loads `url` and waits until its document has loaded.
    pub fn open(&mut self, url: &str) {
        self.page("Page.navigate", json!({ "url": url }));
        wait_until(PAGE_WAIT, "the page to load", || {
            match self.eval("location.href + ' ' + document.readyState") {
                Value::String(s) if s == format!("{url} complete") => Ok(()),
                other => Err(other.to_string()),
            }
        });
    }

    /// Evaluates `expr` in the page (awaiting a promise) and returns its
    /// value; a thrown exception fails the test.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.page(
            "Runtime.evaluate",
            json!({ "expression": expr, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expr}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Waits until `expr` gives something other than `null`, `false` or
    /// `""`, and returns that.
    pub fn wait_for(&mut self, what: &str, expr: &str) -> Value {
        wait_until(PAGE_WAIT, what, || match self.eval(expr) {
            Value::Null | Value::Bool(false) => Err("not yet".into()),
            Value::String(s) if s.is_empty() => Err("not yet".into()),
            v => Ok(v),
        })
    }

    /// Clicks the middle of the element `selector` finds (scrolled into
    /// view first) with the mouse, as a person would: it must be visible
    /// and not covered. The page may reflow between finding the element
    /// and the click (a poll rewrapping a line above it), so a click that
    /// did not reach it is tried again, at its new place.
    pub fn click(&mut self, selector: &str) {
        let sel = serde_json::to_string(selector).unwrap();
        for _ in 0..3 {
            let at = self.eval(&format!(
                "(() => {{ const e = document.querySelector({sel}); if (!e) return null;
                   e.scrollIntoView({{block: 'center'}});
                   window.__e2eClicked = false;
                   e.addEventListener('click', () => {{ window.__e2eClicked = true; }}, {{once: true, capture: true}});
                   const r = e.getBoundingClientRect();
                   const x = r.left + r.width / 2, y = r.top + r.height / 2;
                   const hit = document.elementFromPoint(x, y);
                   return {{x, y, hit: hit === e || e.contains(hit)}}; }})()"
            ));
            assert!(at.is_object(), "nothing matches {selector}");
            assert_eq!(
                at["hit"],
                json!(true),
                "{selector} is covered or off screen"
            );
            for kind in ["mousePressed", "mouseReleased"] {
                self.page(
                    "Input.dispatchMouseEvent",
                    json!({ "type": kind, "x": at["x"], "y": at["y"], "button": "left", "clickCount": 1 }),
                );
            }
            if self.eval("window.__e2eClicked") == json!(true) {
                return;
            }
        }
        panic!("three clicks missed {selector}");
    }

    /// Clicks the field `selector` and types `text` into it.
    pub fn type_into(&mut self, selector: &str, text: &str) {
        self.click(selector);
        self.page("Input.insertText", json!({ "text": text }));
    }

    /// Saves a PNG of the whole page as it shows now as `name` in the directory
    /// `P2PSHARE_SCREENSHOTS` names, if it names one (for a person to
    /// look at; tests check the layout in the DOM).
    pub fn screenshot(&mut self, name: &str) {
        let Some(dir) = std::env::var_os("P2PSHARE_SCREENSHOTS") else {
            return;
        };
        // The whole height is laid out at once, with no scrollbar.
        let size = self.eval("[window.innerWidth, document.documentElement.scrollHeight]");
        let clip = json!({ "x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1 });
        let shot = self.page(
            "Page.captureScreenshot",
            json!({ "format": "png", "captureBeyondViewport": true, "clip": clip }),
        );
        let png = base64_decode(shot["data"].as_str().expect("screenshot data"));
        fs::write(Path::new(&dir).join(name), png).expect("cannot save a screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.ws.send(Message::text(
            json!({ "id": 0, "method": "Browser.close" }).to_string(),
        ));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            // Polling a process's exit, bounded; nothing to synchronise on.
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.profile);
    }
}

/// The browser's DevTools WebSocket URL, from its
/// `DevTools listening on ws://...` line on stderr.
fn devtools_url(child: &mut Child) -> String {
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if let Some(url) = line.strip_prefix("DevTools listening on ") {
                let _ = tx.send(url.trim().to_string());
            }
            // Keep draining, so Chromium never blocks on a full pipe.
        }
    });
    match rx.recv_timeout(STARTUP * 3) {
        Ok(url) => url,
        Err(_) => {
            let _ = child.kill();
            panic!("chromium printed no DevTools address");
        }
    }
}

fn connect(url: &str) -> WebSocket<TcpStream> {
    let addr = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("bad DevTools URL {url}"));
    let tcp = TcpStream::connect(addr).expect("connect to DevTools");
    tcp.set_read_timeout(Some(COMMAND_TIMEOUT))
        .expect("a read timeout");
    let (ws, _) = tungstenite::client(url, tcp).expect("DevTools WebSocket handshake");
    // From now on a read returns every half second, to check deadlines.
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("a read timeout");
    ws
}

/// Standard base64 (with padding), as DevTools sends screenshots.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let (mut out, mut bits, mut width) = (Vec::new(), 0u32, 0);
    for c in text.bytes().filter(|&c| c != b'=') {
        bits = (bits << 6) | u32::from(value(c));
        width += 6;
        if width >= 8 {
            width -= 8;
            out.push((bits >> width) as u8);
        }
    }
    out
}
