//! [`Lab`]: three network namespaces of one test, `outside` — `router` —
//! `lan`, the router doing NAT (nftables masquerade, unsolicited inbound
//! dropped) with miniupnpd answering UPnP IGD and/or NAT-PMP on its LAN
//! side. miniupnpd refuses a private external address, so the outside
//! network is 11.99.0.0/24 (public-looking), in namespaces with no route
//! out of them: nothing leaves the lab.
//!
//! ```text
//! outside eth0 11.99.0.10/24 ── wan 11.99.0.1  router  lan 10.0.1.1 ── eth0 10.0.1.2/24 lan
//! ```
//! Everything is removed when the lab is dropped, on failure too: the
//! miniupnpd process (killed by its pid, reaped), then the namespaces
//! (which takes their interfaces and rules with them). Names carry the
//! test process's pid and a counter, so tests run in parallel.

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The router's public address, and the outside client's.
pub const ROUTER_WAN: &str = "11.99.0.1";
pub const OUTSIDE: &str = "11.99.0.10";

/// What the router's miniupnpd answers.
#[derive(Clone, Copy)]
pub struct Speaks {
    pub upnp: bool,
    pub natpmp: bool,
}

/// One test's namespaces and miniupnpd.
pub struct Lab {
    pub outside: String,
    pub router: String,
    pub lan: String,
    made: Vec<String>,
    miniupnpd: Option<Child>,
    dir: PathBuf,
}

/// The tools a lab needs, and whether we may make one: `Err(why)` to skip.
fn can_build() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root: network namespaces need it".into());
    }
    for tool in ["ip", "nft", "miniupnpd"] {
        let found = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
            .iter()
            .any(|d| Path::new(d).join(tool).exists());
        if !found {
            return Err(format!(
                "{tool} is not installed (scripts/test.sh installs it)"
            ));
        }
    }
    Ok(())
}

/// Runs `ip`/`nft`/... and fails the test with its stderr if it fails.
fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

impl Lab {
    /// Builds the lab with miniupnpd speaking `speaks`, its files in `dir`;
    /// `None` (with the reason printed) where it cannot be built here.
    pub fn up(dir: &Path, speaks: Speaks) -> Option<Lab> {
        if let Err(why) = can_build() {
            println!("note: skipping the port-mapping lab: {why}");
            return None;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let tag = format!(
            "pm{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut lab = Lab {
            outside: format!("{tag}-out"),
            router: format!("{tag}-rtr"),
            lan: format!("{tag}-lan"),
            made: Vec::new(),
            miniupnpd: None,
            dir: dir.to_path_buf(),
        };
        for ns in [lab.outside.clone(), lab.router.clone(), lab.lan.clone()] {
            run(&["ip", "netns", "add", &ns]);
            lab.made.push(ns);
        }
        lab.wire();
        lab.firewall();
        lab.start_miniupnpd(speaks);
        Some(lab)
    }

    fn wire(&self) {
        let (o, r, l) = (
            self.outside.as_str(),
            self.router.as_str(),
            self.lan.as_str(),
        );
        run(&[
            "ip", "link", "add", "wan", "netns", r, "type", "veth", "peer", "name", "eth0",
            "netns", o,
        ]);
        run(&[
            "ip", "link", "add", "lan", "netns", r, "type", "veth", "peer", "name", "eth0",
            "netns", l,
        ]);
        run(&[
            "ip",
            "-n",
            r,
            "addr",
            "add",
            &format!("{ROUTER_WAN}/24"),
            "dev",
            "wan",
        ]);
        run(&["ip", "-n", r, "addr", "add", "10.0.1.1/24", "dev", "lan"]);
        run(&[
            "ip",
            "-n",
            o,
            "addr",
            "add",
            &format!("{OUTSIDE}/24"),
            "dev",
            "eth0",
        ]);
        run(&["ip", "-n", l, "addr", "add", "10.0.1.2/24", "dev", "eth0"]);
        for (ns, dev) in [(o, "eth0"), (l, "eth0"), (r, "wan"), (r, "lan")] {
            run(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        for ns in [o, r, l] {
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        // The LAN reaches out through the router; the outside has no route
        // to the LAN at all: only a mapping lets it in.
        run(&["ip", "-n", l, "route", "add", "default", "via", "10.0.1.1"]);
        run(&[
            "ip",
            "netns",
            "exec",
            r,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]);
    }

    /// NAT with unsolicited inbound dropped, and the empty chains
    /// miniupnpd fills with its mappings.
    fn firewall(&self) {
        let rules = self.dir.join("router.nft");
        fs::write(&rules, RULES).expect("write the router's rules");
        let rules = rules.to_string_lossy();
        run(&["ip", "netns", "exec", &self.router, "nft", "-f", &rules]);
    }

    fn start_miniupnpd(&mut self, speaks: Speaks) {
        let yes = |b: bool| if b { "yes" } else { "no" };
        let conf = self.dir.join("miniupnpd.conf");
        let text = format!(
            "{MINIUPNPD_CONF}enable_upnp={}\nenable_natpmp={}\n",
            yes(speaks.upnp),
            yes(speaks.natpmp)
        );
        fs::write(&conf, text).expect("write miniupnpd.conf");
        let log = File::create(self.dir.join("miniupnpd.log")).expect("a log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.router, "miniupnpd", "-d", "-f"])
            .arg(&conf)
            .arg("-P")
            .arg(self.dir.join("miniupnpd.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup the log"))
            .stderr(log)
            .spawn()
            .expect("start miniupnpd");
        self.miniupnpd = Some(child);
        // Ready once its NAT-PMP or HTTP socket is bound; the log says so.
        let until = Instant::now() + Duration::from_secs(10);
        let ready = if speaks.natpmp {
            "Listening for NAT-PMP"
        } else {
            "HTTP listening"
        };
        while !self.miniupnpd_log().contains(ready) {
            assert!(
                Instant::now() < until,
                "miniupnpd did not start: {}",
                self.miniupnpd_log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn miniupnpd_log(&self) -> String {
        fs::read_to_string(self.dir.join("miniupnpd.log")).unwrap_or_default()
    }

    /// `program args...` run inside namespace `ns`.
    pub fn command(&self, ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).arg(program);
        cmd
    }

    /// The router's port forwards as miniupnpd wrote them (one `dnat`
    /// rule per mapping).
    pub fn forwards(&self) -> String {
        let out = self
            .command(&self.router, "nft")
            .args(["list", "chain", "inet", "filter", "prerouting_miniupnpd"])
            .output()
            .expect("run nft");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `f` on a thread inside namespace `ns` (to reach a status page
    /// bound to that namespace's loopback).
    pub fn inside<T: Send>(&self, ns: &str, f: impl FnOnce() -> T + Send) -> T {
        let file = File::open(format!("/run/netns/{ns}")).expect("the namespace's file");
        thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: setns on a namespace fd we hold open; it changes
                // only this new thread's network namespace.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .expect("the thread inside the namespace")
        })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut child) = self.miniupnpd.take() {
            // `ip netns exec` execs miniupnpd: the pid is miniupnpd's.
            let _ = Command::new("kill")
                .args(["-s", "TERM", &child.id().to_string()])
                .status();
            let until = Instant::now() + Duration::from_secs(3);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < until {
                thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in self.made.drain(..).rev() {
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
    }
}

/// The router's nftables ruleset: forwarding from the outside only for
/// established flows and what miniupnpd adds; masquerade going out.
/// (`scripts/bench.sh`'s NAT lab loads the same file.)
const RULES: &str = include_str!("router.nft");

/// miniupnpd's settings bar which protocols it speaks: secure mode (a
/// client maps only to itself), the labs' LANs (10.0.0.0/16) allowed, the
/// chains above. (`scripts/bench.sh`'s NAT lab uses the same file.)
const MINIUPNPD_CONF: &str = include_str!("miniupnpd.conf");
