//! Fault injection (issues 3 and 11), by subject: `trackers` that die and
//! come back, start late, or forget a peer that vanished without a word;
//! `leaving`, a peer's every route out; `killed`, seeders and downloaders
//! killed with SIGKILL (or interrupted) mid-download; `patience`, a
//! download left with no usable peer; `changed`, a shared file changed
//! behind its peer's back; `disk`, links planted at the partial file, two
//! downloads into one place, a full disk; `state`, state files damaged,
//! missing, linked or FIFOs at start. Each test runs real processes,
//! hurts them with real signals (or files), and checks what the survivors
//! see and what is on disk.
//!
//! "Mid-download" comes from upload caps, not timing luck: a 12 MiB file
//! from seeders capped at 1-2 MiB/s takes seconds, and a test acts on what
//! the downloader's `/api/status` shows, never after a sleep. States without
//! a line to wait for (what the tracker lists) are polled with a deadline.
//!
//! Each test prints `figure:` lines for docs/RELIABILITY.md (see them with
//! `cargo test --test e2e faults -- --nocapture`): its run time and how long
//! the fault took to handle.

mod changed;
mod disk;
mod killed;
mod leaving;
mod patience;
mod state;
mod trackers;
