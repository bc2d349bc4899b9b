//! [`Lab`]: network namespaces for the NAT tests, made with `ip` and `nft`
//! and removed when dropped (on a failing test too), so nothing is left
//! behind. Needs root; where it is not, or namespaces cannot be made,
//! [`Lab::new`] prints why and returns `None`, and the test skips. Every
//! lab's names carry the test process's id and a counter, so tests run in
//! parallel without meeting.
//!
//! Processes started in a namespace must be dropped before the lab (declare
//! the lab first): `ip netns del` only unmounts a namespace that a process
//! still holds.

use std::fs::File;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// One test's namespaces.
pub struct Lab {
    prefix: String,
    made: Vec<String>,
}

impl Lab {
    /// A lab for `test`, or `None` (said on stdout) where this host cannot
    /// make one.
    pub fn new(test: &str) -> Option<Lab> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            println!("note: {test}: not root, so no network namespaces; skipping");
            return None;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let mut lab = Lab {
            prefix: format!("p2nat{}-{n}", std::process::id()),
            made: Vec::new(),
        };
        if let Err(why) = lab.try_add("probe") {
            println!("note: {test}: cannot make a network namespace ({why}); skipping");
            return None;
        }
        Some(lab)
    }

    /// The full name of namespace `short`.
    pub fn ns(&self, short: &str) -> String {
        format!("{}-{short}", self.prefix)
    }

    fn try_add(&mut self, short: &str) -> Result<(), String> {
        let name = self.ns(short);
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        self.made.push(name);
        self.sh(short, "ip link set lo up");
        Ok(())
    }

    /// Makes namespace `short`, with its loopback up.
    pub fn add(&mut self, short: &str) {
        if let Err(why) = self.try_add(short) {
            panic!("ip netns add {short}: {why}");
        }
    }

    /// Runs `script` with `sh -c` in namespace `short`; panics on failure.
    pub fn sh(&self, short: &str, script: &str) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(short), "sh", "-ec", script])
            .output()
            .expect("run ip");
        assert!(
            out.status.success(),
            "in {short}: {script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Loads the nftables `rules` in namespace `short`.
    pub fn nft(&self, short: &str, rules: &str) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns(short), "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run nft");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(rules.as_bytes())
            .expect("write the rules");
        let out = child.wait_with_output().expect("nft");
        assert!(
            out.status.success(),
            "nft in {short}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A command running `program` in namespace `short`.
    pub fn command(&self, short: &str, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(short), program]);
        cmd
    }

    /// Runs `f` on a thread inside namespace `short` (its sockets are
    /// that namespace's), e.g. to read a status page bound to its loopback.
    pub fn inside<T: Send>(&self, short: &str, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.ns(short));
        thread::scope(|s| {
            s.spawn(|| {
                let ns = File::open(&path).expect("the namespace's file");
                // SAFETY: a valid descriptor of a network namespace; this
                // changes only the calling thread, which ends after `f`.
                let done = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(done, 0, "setns {path}");
                f()
            })
            .join()
            .expect("the thread inside the namespace")
        })
    }

    /// Connects namespace `a`'s interface `a_if` to `b`'s `b_if` (a veth
    /// pair made inside `a`).
    pub fn link(&self, a: &str, a_if: &str, b: &str, b_if: &str) {
        let b_ns = self.ns(b);
        self.sh(
            a,
            &format!("ip link add {a_if} type veth peer name {b_if} netns {b_ns}"),
        );
    }

    /// Router `r.name` between the outside network (its `wan`, bridged
    /// into `outside` as `r.port`, at `r.wan_ip`/24) and one host `r.host`
    /// behind it (`lan` at 10.0.`n`.1/24, the host's `eth0` at
    /// 10.0.`n`.2, routed through it): NAT (`masquerade`, `fully-random`
    /// when symmetric) and nothing unsolicited let in from outside.
    pub fn router(&mut self, r: &Router<'_>, outside: &str) {
        let (short, host, n) = (r.name, r.host, r.n);
        self.add(short);
        self.add(host);
        self.link(short, "wan", outside, r.port);
        self.sh(outside, &format!("ip link set {} master br0 up", r.port));
        self.link(short, "lan", host, "eth0");
        self.sh(
            short,
            &format!(
                "ip addr add {}/24 dev wan; ip link set wan up; \
                 ip addr add 10.0.{n}.1/24 dev lan; ip link set lan up; \
                 echo 1 > /proc/sys/net/ipv4/ip_forward",
                r.wan_ip
            ),
        );
        self.sh(
            host,
            &format!(
                "ip addr add 10.0.{n}.2/24 dev eth0; ip link set eth0 up; \
                 ip route add default via 10.0.{n}.1"
            ),
        );
        let random = if r.symmetric { " fully-random" } else { "" };
        self.nft(short, &router_rules(random, r.resets));
    }

    /// Waits (at most 10 s) until a TCP connection from namespace `from`
    /// to `ip` in namespace `to` gets through: the routers' rules and
    /// forwarding are in effect (the first NAT rules a host loads may take
    /// a moment, while the kernel loads their modules).
    pub fn await_route(&self, from: &str, to: &str, ip: &str) {
        let listener = self.inside(to, || TcpListener::bind((ip, 0)).expect("bind a probe"));
        let target = listener.local_addr().expect("the probe's address");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let reached = self.inside(from, || {
                TcpStream::connect_timeout(&target, Duration::from_secs(1))
            });
            match reached {
                Ok(_) => return,
                Err(e) if Instant::now() >= deadline => panic!("{from} cannot reach {target}: {e}"),
                // A retry with a deadline, not a sleep: each try waits up to 1 s.
                Err(_) => {}
            }
        }
    }

    /// The outside network: namespace `short` with a bridge `br0` at
    /// `ip`/24.
    pub fn outside(&mut self, short: &str, ip: &str) {
        self.add(short);
        self.sh(
            short,
            &format!(
                "ip link add br0 type bridge; ip addr add {ip}/24 dev br0; ip link set br0 up"
            ),
        );
    }
}

/// A NAT router of the lab (see [`Lab::router`]).
pub struct Router<'a> {
    pub name: &'a str,
    /// Its `wan`'s other end, on the outside bridge.
    pub port: &'a str,
    pub wan_ip: &'a str,
    /// The one host behind it, and its LAN's number (10.0.`n`.0/24).
    pub host: &'a str,
    pub n: u8,
    /// `masquerade fully-random`: a new outside port for every connection.
    pub symmetric: bool,
    /// Unsolicited inbound TCP is answered with a reset (else dropped).
    pub resets: bool,
}

/// NAT out of `wan`, and only replies let in from it: anything else is
/// dropped, or (`resets`) a TCP segment is answered with a reset.
fn router_rules(random: &str, resets: bool) -> String {
    let reset = match resets {
        true => "iifname \"wan\" meta l4proto tcp reject with tcp reset\n",
        false => "",
    };
    let only_replies =
        format!("iifname \"wan\" ct state established,related accept\n{reset}iifname \"wan\" drop");
    format!(
        "table ip nat {{\n chain post {{\n type nat hook postrouting priority 100\n\
         oifname \"wan\" masquerade{random}\n }}\n}}\n\
         table inet filter {{\n\
         chain input {{\n type filter hook input priority 0\n {only_replies}\n }}\n\
         chain forward {{\n type filter hook forward priority 0\n {only_replies}\n }}\n\
         }}\n"
    )
}

impl Drop for Lab {
    fn drop(&mut self) {
        for name in self.made.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}
