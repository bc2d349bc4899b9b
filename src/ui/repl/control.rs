//! What Ctrl+C does, which depends on what the REPL is doing. At the
//! terminal's prompt the line editor sees it (see the REPL loop); the
//! signal handler comes here, in every other moment:
//!
//! - while the REPL waits for downloads (`wait`, or `quit` waiting), it
//!   cancels them, keeping their verified chunks;
//! - while a command runs, it interrupts the command's tracker requests
//!   (its cancel token, a [`StopSignal`] made here for each command and
//!   passed to the engine's calls), and a second press within [`AGAIN`]
//!   leaves;
//! - with piped input, it cancels the downloads and leaves, saying so.
//!
//! Nothing is ever stopped without a line saying what.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::console::say;
use crate::net::stop::StopSignal;
use crate::peer::Peer;
use crate::sync::LockExt;
use crate::ui::count;
use crate::ui::report::cancelling_line;

/// How soon a second Ctrl+C must follow the first to leave.
pub const AGAIN: Duration = Duration::from_secs(2);

/// What the REPL is doing, as the signal handler needs to know it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum State {
    /// Waiting for the next line.
    Prompt = 0,
    /// Running a command.
    Busy = 1,
    /// Waiting for downloads to end.
    Waiting = 2,
}

/// What the signal handler must do after [`Control::interrupt`].
#[derive(Debug, PartialEq, Eq)]
pub enum Signal {
    /// Handled; the peer goes on.
    Handled,
    /// Leave now (unregister and exit).
    Leave,
}

#[derive(Default)]
pub struct Control {
    state: AtomicU8,
    terminal: AtomicBool,
    /// The running command asked for downloads (`download`, `resume`):
    /// end of input waits for them instead of interrupting their look-up.
    asks_downloads: AtomicBool,
    /// The cancel token of the command being run (or of the last one).
    command: Mutex<Arc<StopSignal>>,
    last_press: Mutex<Option<Instant>>,
}

impl Control {
    /// Starts a new command: returns its cancel token, which
    /// [`interrupt_command`](Self::interrupt_command) stops from now on.
    pub fn begin_command(&self) -> Arc<StopSignal> {
        let signal = StopSignal::new();
        *self.command.locked() = Arc::clone(&signal);
        signal
    }

    /// Interrupts the tracker requests of the command being run (the user
    /// quit, or input ended, while it waited on the tracker).
    pub fn interrupt_command(&self) {
        self.command.locked().stop();
    }

    /// Marks whether the command now running asks for downloads.
    pub fn set_asks_downloads(&self, on: bool) {
        self.asks_downloads.store(on, Ordering::Release);
    }

    /// Whether the command now running asks for downloads, which end of
    /// input must not interrupt (the README promises they are waited for).
    pub fn asks_downloads(&self) -> bool {
        self.asks_downloads.load(Ordering::Acquire)
    }

    pub fn set(&self, state: State) {
        self.state.store(state as u8, Ordering::Release);
    }

    pub fn state(&self) -> State {
        match self.state.load(Ordering::Acquire) {
            1 => State::Busy,
            2 => State::Waiting,
            _ => State::Prompt,
        }
    }

    /// Whether a person types at a terminal (else input is piped).
    pub fn set_terminal(&self, on: bool) {
        self.terminal.store(on, Ordering::Release);
    }

    pub fn is_terminal(&self) -> bool {
        self.terminal.load(Ordering::Acquire)
    }

    /// Ctrl+C (SIGINT) arrived: does what the module docs say.
    pub fn interrupt(&self, peer: &Peer) -> Signal {
        let now = Instant::now();
        let again = {
            let mut last = self.last_press.locked();
            let again = last.is_some_and(|t| now.duration_since(t) < AGAIN);
            *last = Some(now);
            again
        };
        match (self.state(), self.is_terminal()) {
            (State::Waiting, _) => {
                cancel_all_saying(peer);
                Signal::Handled
            }
            (State::Busy, true) if !again => {
                self.interrupt_command();
                say("interrupted; press Ctrl+C again to leave");
                Signal::Handled
            }
            _ => {
                say(leaving_text(peer, peer.downloads().cancel_all()));
                Signal::Leave
            }
        }
    }
}

/// Cancels every running download, keeping verified chunks, and says so.
pub fn cancel_all_saying(peer: &Peer) {
    say(cancelling_line(peer.downloads().cancel_all()));
}

/// What leaving now stops, for the line printed as it happens.
pub fn leaving_text(peer: &Peer, cancelled: usize) -> String {
    let shared = peer.library().list().len();
    format!(
        "leaving: cancelled {} (verified chunks are kept), stopped sharing {}",
        count(cancelled, "download"),
        count(shared, "file")
    )
}

/// What Ctrl+C at the prompt would stop, and how to do it.
pub fn would_stop_text(peer: &Peer) -> String {
    let running = peer.downloads().running().len();
    let shared = peer.library().list().len();
    match (running, shared) {
        (0, 0) => return "(type quit or press Ctrl+D to leave)".into(),
        (0, shared) => {
            return format!(
                "leaving would stop sharing {}: type quit or press Ctrl+C again to leave",
                count(shared, "file")
            )
        }
        _ => {}
    }
    format!(
        "leaving would stop {} and sharing {}: type quit to let the downloads finish first, or press Ctrl+C again to leave now (verified chunks are kept)",
        count(running, "running download"),
        count(shared, "file")
    )
}
