//! End-to-end tests: the real `tracker` and `peer` binaries, run as child
//! processes on loopback with ports picked by the kernel, driven through the
//! peer's REPL on stdin and checked on stdout, the bytes on disk, the wire
//! and each peer's `/api/status` (never by parsing log lines).
//!
//! One test binary made of modules (as ripgrep's `tests/tests.rs` is), so the
//! suite links once:
//!
//! - `support`: what the tests share (harness, programs, fakes, raw clients,
//!   floods, status pages), each helper once;
//! - `first_minute`: the three-terminal flow of one user with no flags,
//!   and what a new user meets first;
//! - `core`: the user stories and the tracker's wire protocol;
//! - `swarm`: downloaders serving each other (`crowd`, `partial`);
//! - `faults`: trackers and peers that die, leave or come back, and what
//!   goes wrong on disk (`trackers`, `leaving`, `killed`, `patience`,
//!   `changed`, `disk`);
//! - `hostile`: lying, slow, silent or busy peers, hostile trackers and
//!   clients (`liars`, `slow`, `silent`, `busy`, `claims`,
//!   `trickle_tracker`, `input`, `floods`, `unregister`);
//! - `security`: TLS between peers, the peer ids pinned to it, the
//!   tracker's pinned id, and private shares;
//! - `scale`: thousands of shares, whose cost per share does not grow
//!   with their number and which hold no descriptor each;
//! - `dht`: finding peers through the Mainline DHT;
//! - `nat`: reflection, dial-back, control connections and the relay on
//!   loopback; `nat_lab`: the same through real NAT routers in network
//!   namespaces (root only);
//! - `oneshot`: `peer send` and `peer get` with tickets, no tracker;
//! - `portmap`: a peer behind a miniupnpd router in network namespaces
//!   (root only): mapped, fetched from outside, unmapped when it leaves;
//! - `folders`: a folder sent and fetched whole, selected, re-shared;
//! - `repl`: background downloads, cancel and resume, quitting, a peer's
//!   memory across restarts, and the REPL's small helps;
//! - `web`: the status pages, `--completions` and `--version`;
//!   `web_actions`: the peer's page in Chromium, clicked through, and its
//!   token; `web_manage`: the page shares, unshares, sets caps and resumes.

mod core;
mod dht;
mod faults;
mod first_minute;
mod folders;
mod hostile;
mod nat;
mod nat_lab;
mod oneshot;
mod portmap;
mod repl;
mod scale;
mod security;
mod support;
mod swarm;
mod web;
mod web_actions;
mod web_manage;
