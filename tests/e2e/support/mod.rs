//! What the tests share, each helper once: `harness` is the ground
//! (test directories, processes with line channels, deadlines, ports);
//! `programs` starts and drives the tracker and peers; `status` reads
//! their status pages; `raw` speaks the line protocols by hand; `flood`
//! opens connections by the thousand; `fakes` stands in for a peer or a
//! tracker that misbehaves (every network fake lives there); `tmpfs`
//! mounts a small disk that fills up.

pub mod fakes;
pub mod flood;
pub mod harness;
pub mod programs;
pub mod raw;
pub mod status;
pub mod tmpfs;
