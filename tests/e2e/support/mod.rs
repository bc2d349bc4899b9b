//! What the tests share, each helper once: `harness` is the ground
//! (test directories, processes with line channels, deadlines, ports);
//! `accept` the accept loop of every stand-in server;
//! `programs` starts and drives the tracker and peers; `status` reads
//! their status pages; `raw` speaks the line protocols by hand; `flood`
//! opens connections by the thousand; `fakes` stands in for a peer or a
//! tracker that misbehaves; `tmpfs` mounts a small disk that fills up.
//! `browser` drives headless Chromium over the DevTools protocol.
//! `relay` is a wiretap, `tls` TLS clients of the tests' own (the security tests).
//! `netns` builds network namespaces with NAT routers (the NAT lab).

pub mod accept;
pub mod browser;
pub mod fakes;
pub mod flood;
pub mod harness;
pub mod netns;
pub mod proc;
pub mod programs;
pub mod raw;
pub mod relay;
pub mod status;
pub mod tls;
pub mod tmpfs;
