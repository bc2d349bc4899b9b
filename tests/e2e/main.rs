//! End-to-end tests: the real `tracker` and `peer` binaries, run as child
//! processes on loopback with ports picked by the kernel, driven through the
//! peer's REPL on stdin and checked on stdout, stderr and the bytes on disk.
//!
//! One test binary made of modules (as ripgrep's `tests/tests.rs` is), so the
//! suite links once. `support` holds the harness and the fakes; the other
//! modules hold the tests (`core`, `faults`, `hostile`, `dht`, `web`).

mod core;
mod dht;
mod faults;
mod hostile;
mod support;
mod web;
