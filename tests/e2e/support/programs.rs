//! The two programs as the tests drive them: [`Tracker`] and [`Peer`], each
//! started on port 0 with the real port read from its first stdout line, and
//! the peer's REPL commands (`download`, `search`) with their output parsed
//! where a test needs the values.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use p2pshare::identity::{Identity, PeerId};
use p2pshare::manifest::Manifest;
use p2pshare::net::tls::Tls;
use p2pshare::storage::manifest_of;

use super::harness::{Proc, Stream, TestDir, COMMAND, STARTUP};
use super::raw::register;

/// A running tracker.
pub struct Tracker {
    /// Held so the process lives exactly as long as the test needs it.
    proc: Proc,
    pub port: u16,
    /// Its id, from its `Tracker id:` line.
    pub id: PeerId,
}

/// The id in the line of `proc`'s stdout that starts with `prefix`, the
/// line after its listening line.
fn id_line(proc: &Proc, prefix: &str) -> PeerId {
    let line = proc.expect_out(prefix, STARTUP);
    line.strip_prefix(prefix)
        .and_then(|id| id.trim().parse().ok())
        .unwrap_or_else(|| panic!("no id in {line:?}"))
}

impl Tracker {
    pub fn start(dir: &TestDir) -> Tracker {
        Tracker::start_with(dir, 0, &[])
    }

    /// Starts a tracker on `port` (0: any free port) with `extra` options,
    /// e.g. again on the port of one that was killed.
    pub fn start_with(dir: &TestDir, port: u16, extra: &[&str]) -> Tracker {
        // `P2PSHARE_TEST_TRACKER`: another tracker binary, e.g. main's, to
        // measure a figure's "before" with the same test.
        let bin = std::env::var_os("P2PSHARE_TEST_TRACKER")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_tracker").into());
        let mut cmd = Command::new(bin);
        // One identity per test directory, so that a tracker restarted on
        // its port is the same tracker to the peers that pinned it; a
        // second tracker running beside it gets a state directory (and an
        // identity) of its own, as two processes never share one.
        let state = (0..10)
            .map(|n| dir.path().join(format!(".tracker-state{n}")))
            .find(|d| p2pshare::state_dir::lock_state_dir(d).is_ok())
            .expect("a free tracker state directory");
        cmd.args(["--bind", "127.0.0.1"])
            .args(extra)
            .arg("--state-dir")
            .arg(&state)
            .arg(port.to_string())
            .current_dir(dir.path());
        let proc = Proc::spawn("tracker", cmd);
        let port = tracker_port(&proc);
        let id = id_line(&proc, "Tracker id: ");
        Tracker { proc, port, id }
    }

    /// Kills the tracker with SIGKILL: everything it knew is lost.
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The tracker's process, e.g. for its pid or its stderr.
    pub fn proc(&self) -> &Proc {
        &self.proc
    }
}

/// A running peer: `addr` is where its chunk server listens, `page` its
/// status page when started with `--http` (see [`super::status`]).
pub struct Peer {
    pub proc: Proc,
    pub addr: SocketAddr,
    /// Its id, from its `Peer id:` line.
    pub id: PeerId,
    pub page: Option<SocketAddr>,
}

/// The port in a tracker's `Tracker running on port PORT. ...` line.
pub fn tracker_port(proc: &Proc) -> u16 {
    let line = proc.expect_out("Tracker running on port ", STARTUP);
    line.strip_prefix("Tracker running on port ")
        .and_then(|rest| rest.split('.').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("tracker: unexpected first line {line:?}"))
}

/// One line of `search` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: String,
    pub size: u64,
    pub peers: u32,
    pub name: String,
}

impl Peer {
    /// Starts `peer` in `cwd` against `tracker` with `extra` options, and
    /// waits for its listening line.
    pub fn start(name: &str, cwd: &Path, tracker: &Tracker, extra: &[&str]) -> Peer {
        Peer::start_port(name, cwd, tracker.port, extra)
    }

    /// Starts `peer` against a tracker port where nothing need listen yet.
    pub fn start_port(name: &str, cwd: &Path, tracker_port: u16, extra: &[&str]) -> Peer {
        let port = tracker_port.to_string();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_peer"));
        cmd.args(["--bind", "127.0.0.1"])
            .args(extra)
            .args(["127.0.0.1", &port, "0"])
            .current_dir(cwd);
        Peer::spawn(name, cmd)
    }

    /// Starts `cmd`, a `peer` command line of the test's own making, and
    /// waits for its listening line and id.
    pub fn spawn(name: &str, cmd: Command) -> Peer {
        let extra: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let proc = Proc::spawn(name, cmd);
        let line = proc.expect_out("Peer listening on ", STARTUP);
        let addr = line
            .strip_prefix("Peer listening on ")
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name}: unexpected first line {line:?}"));
        let id = id_line(&proc, "Peer id: ");
        let page = extra
            .iter()
            .any(|a| a == "--http")
            .then(|| proc.status_page());
        Peer {
            proc,
            addr,
            id,
            page,
        }
    }

    /// Starts a `--serve` peer sharing `files`; returns it once every file
    /// is registered, with the file ids in order.
    pub fn seeder(name: &str, tracker: &Tracker, files: &[&Path]) -> (Peer, Vec<String>) {
        Peer::seeder_with(name, tracker, files, &[])
    }

    /// [`seeder`](Self::seeder) with `extra` options (`--max-upload 2M`).
    pub fn seeder_with(
        name: &str,
        tracker: &Tracker,
        files: &[&Path],
        extra: &[&str],
    ) -> (Peer, Vec<String>) {
        Peer::seeder_port(name, tracker.port, files, extra)
    }

    /// [`seeder_with`](Self::seeder_with) against a tracker port where
    /// nothing need listen.
    pub fn seeder_port(
        name: &str,
        tracker_port: u16,
        files: &[&Path],
        extra: &[&str],
    ) -> (Peer, Vec<String>) {
        let mut args = vec!["--serve".to_string()];
        args.extend(extra.iter().map(|a| a.to_string()));
        for f in files {
            args.push("--share".into());
            args.push(f.to_str().expect("test paths are UTF-8").into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let cwd = files[0].parent().expect("a file has a directory");
        let peer = Peer::start_port(name, cwd, tracker_port, &args);
        let ids = files.iter().map(|_| peer.await_share()).collect();
        (peer, ids)
    }

    /// Waits for the `Successfully registered file|folder: ... id <hex>)` line of
    /// a share and returns the id; panics on an `error:` line instead.
    pub fn await_share(&self) -> String {
        let line = self.proc.expect_line(Stream::Out, COMMAND, "a share", |l| {
            l.starts_with("Successfully registered ") || l.starts_with("error:")
        });
        assert!(!line.starts_with("error:"), "{}: {line}", self.proc.name());
        parse_id(&line)
    }

    /// Stdout up to the line starting with `success` (`Ok`) or `error:`
    /// (`Err`), within `timeout`.
    fn outcome(
        &self,
        cmd: &str,
        success: &str,
        timeout: Duration,
    ) -> Result<Vec<String>, Vec<String>> {
        let lines = self
            .proc
            .lines_until(Stream::Out, timeout, &format!("end of `{cmd}`"), |l| {
                l.starts_with(success) || l.starts_with("error:")
            });
        if lines.last().unwrap().starts_with("error:") {
            Err(lines)
        } else {
            Ok(lines)
        }
    }

    /// `download TARGET [OUT]`. On success waits for the stats line too, so
    /// the next command's output starts clean.
    pub fn download(
        &mut self,
        target: &str,
        out: Option<&str>,
    ) -> Result<Vec<String>, Vec<String>> {
        let cmd = match out {
            Some(out) => format!("download {target} {out}"),
            None => format!("download {target}"),
        };
        self.proc.send(&cmd);
        self.finish_download(COMMAND)
    }

    /// Reads stdout up to the end of a `download` already sent: the success
    /// line and the stats line (`Ok`), or the `error:` line (`Err`).
    pub fn finish_download(&self, timeout: Duration) -> Result<Vec<String>, Vec<String>> {
        let mut lines = self.outcome("download", "Successfully downloaded: ", timeout)?;
        lines.push(self.proc.expect_out(" saved as ", COMMAND));
        Ok(lines)
    }

    /// `search TEXT`; returns the rows announced by its `N file[s] found`.
    pub fn search(&mut self, text: &str) -> Vec<Row> {
        self.try_search(text)
            .unwrap_or_else(|e| panic!("`search {text}` failed: {e:?}"))
    }

    /// `search TEXT`, or its `error:` line (e.g. the tracker is down).
    pub fn try_search(&mut self, text: &str) -> Result<Vec<Row>, String> {
        let cmd = format!("search {text}").trim_end().to_string();
        self.proc.send(&cmd);
        let header = self
            .proc
            .expect_line(Stream::Out, COMMAND, "a search header", |l| {
                l.ends_with(" found") || l.starts_with("error:")
            });
        let Some(n) = header
            .strip_suffix(" files found")
            .or_else(|| header.strip_suffix(" file found"))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            return Err(header);
        };
        Ok((0..n)
            .map(|_| {
                let line = self
                    .proc
                    .expect_line(Stream::Out, COMMAND, "a search row", |_| true);
                parse_row(&line)
            })
            .collect())
    }
}

/// A seeder that a test lists with its tracker by hand: it announces to a
/// tracker of its own (a decoy), and [`list_with`](Self::list_with)
/// registers it with the test's tracker, as the seeder itself (with the
/// identity in its state directory, which the test chose), so the row
/// carries its id and downloaders pin that. The tracker lists the freshest
/// registration first, so the test decides who comes before the seeder
/// (registered after it) or when it appears at all, and no announce of the
/// seeder's own can race that.
pub struct HandListed {
    // Fields drop in order: the seeder before its decoy.
    pub peer: Peer,
    pub manifest: Manifest,
    state: PathBuf,
    _decoy: Tracker,
}

impl HandListed {
    /// A `--serve` seeder of `path`, named `name`, listed nowhere yet.
    pub fn start(name: &str, dir: &TestDir, path: &Path) -> HandListed {
        let decoy = Tracker::start(dir);
        let state = dir.path().join(format!(".{name}-state"));
        let state_arg = state.to_str().expect("test paths are UTF-8");
        let args = ["--state-dir", state_arg];
        let (peer, _) = Peer::seeder_with(name, &decoy, &[path], &args);
        HandListed {
            peer,
            manifest: manifest_of(path).unwrap(),
            state,
            _decoy: decoy,
        }
    }

    /// Registers the seeder with `tracker` as having its file, as `name`.
    pub fn list_with(&self, tracker: &Tracker, name: &str) {
        let identity = Identity::load_or_create(&self.state).expect("the seeder's identity");
        assert_eq!(identity.id, self.peer.id, "the seeder's own identity");
        let tls = Tls::new(identity).expect("TLS configs");
        let port = self.peer.addr.port();
        register(&tls, tracker.addr(), port, &self.manifest, name);
    }
}

/// The error line of a download of `name` that gave up for want of a
/// usable peer: `missing` of `total` chunks unfetched, none usable for
/// `waited` s.
pub fn unfetched(name: &str, missing: u32, total: u32, waited: u64) -> String {
    format!(
        "error: {name}: {missing} of {total} chunks could not be fetched from any peer \
         (none usable for {waited} s); progress is kept: run the same download again to resume"
    )
}

/// The id in `Successfully registered file: PATH (N bytes, SIZE, id <hex>)`.
fn parse_id(line: &str) -> String {
    let id = line
        .rsplit_once("id ")
        .map(|(_, rest)| rest.trim_end_matches(')'))
        .unwrap_or_else(|| panic!("no id in {line:?}"));
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "bad id in {line:?}"
    );
    id.to_string()
}

/// Parses `  <id>  <size> <size in KiB/MiB/...>  <n> peer[s]  <name>`; the
/// human-readable size (two words, e.g. `1.4 MiB`) may be absent.
pub fn parse_row(line: &str) -> Row {
    let words: Vec<&str> = line.split_whitespace().collect();
    // The first "peer[s]" is the column; a name may contain the word too.
    let at = words
        .iter()
        .position(|w| *w == "peer" || *w == "peers")
        .filter(|&at| at >= 3 && at + 1 < words.len())
        .unwrap_or_else(|| panic!("not a search row: {line:?}"));
    Row {
        id: words[0].to_string(),
        size: words[1]
            .parse()
            .unwrap_or_else(|_| panic!("bad row {line:?}")),
        peers: words[at - 1]
            .parse()
            .unwrap_or_else(|_| panic!("bad row {line:?}")),
        name: words[at + 1..].join(" "),
    }
}
