//! What the tests share, each helper once: `harness` is the ground
//! (test directories, processes with line channels, deadlines, ports);
//! `programs` starts and drives the tracker and peers; `status` reads
//! their status pages; `raw` speaks the line protocols by hand; `flood`
//! opens connections by the thousand; `fakes` stands in for a peer or a
//! tracker that misbehaves; `tmpfs` mounts a small disk that fills up.
//! `browser` drives headless Chromium over the DevTools protocol.
//! `listing` is a tracker that lists any address with any id, `relay` a
//! wiretap, `tls` TLS clients of the tests' own (the security tests).

pub mod browser;
pub mod fakes;
pub mod flood;
pub mod harness;
pub mod listing;
pub mod proc;
pub mod programs;
pub mod raw;
pub mod relay;
pub mod status;
pub mod tls;
pub mod tmpfs;
