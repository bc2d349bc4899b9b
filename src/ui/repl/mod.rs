//! The peer's REPL: reads commands line by line from a terminal or a pipe
//! and carries each out, printing results on stdout; an error is one
//! `error: ...` line and the REPL goes on. Downloads run in the background:
//! `download` returns once the file is found and started, and its end is
//! printed when it comes (above the prompt, on a terminal). `quit` and end
//! of input wait for running downloads; a second `quit` or Ctrl+C cancels
//! them, keeping what is verified.
//!
//! Modules: `command` (parsing, pure), `control` (what Ctrl+C does), `exec`
//! (carrying commands out).

pub mod command;
pub mod control;
pub mod editor;
mod exec;
pub mod input;

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use self::command::{Command, CommandError, Direction, HELP};
pub use self::control::{Control, Signal, State};
pub use self::exec::share_all;

use self::editor::Typed;
use self::input::Input;
use crate::console::say;
use crate::peer::download::progress::{DownloadView, State as DownloadState};
use crate::peer::download::DownloadError;
use crate::peer::{Peer, PeerError};
use crate::ui::report::Refused;
use crate::ui::status::status_text;
use crate::ui::{count, format_size, format_speed};

/// Why a command failed; printed as one `error: ...` line.
#[derive(Debug, thiserror::Error)]
pub enum ReplError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Peer(#[from] PeerError),
    #[error(transparent)]
    Download(#[from] DownloadError),
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("{0}")]
    Input(io::Error),
}

/// Runs the REPL on stdin until `quit` or end of input, then waits for the
/// downloads still running. Returns whether every command and download
/// succeeded. On a terminal (stdin and stdout both), lines come from a line
/// editor with history and completion (see [`Input`]).
pub fn run(peer: &Peer, control: &Arc<Control>) -> bool {
    let mut input = Input::open(peer, control);
    control.set_terminal(input.is_terminal());
    let mut all_ok = true;
    let mut interrupted = false;
    let cancel = loop {
        control.set(State::Prompt);
        let typed = input.next_line();
        let was_interrupted = std::mem::replace(&mut interrupted, false);
        match typed {
            Ok(Typed::Line(line)) => match Command::parse(&line) {
                Ok(None) => {}
                Ok(Some(Command::Quit)) => break false,
                Ok(Some(cmd)) => {
                    control.set(State::Busy);
                    all_ok &= run_command(peer, cmd, control);
                }
                Err(e) => {
                    println!("error: {e}");
                    all_ok = false;
                }
            },
            Ok(Typed::Eof) => break false,
            Ok(Typed::Interrupted) if was_interrupted => break true,
            Ok(Typed::Interrupted) => {
                println!("{}", control::would_stop_text(peer));
                interrupted = true;
            }
            Err(e) => {
                println!("error: {}", ReplError::Input(e));
                all_ok = false;
            }
        }
    };
    finish(peer, &mut input, control, cancel);
    peer.downloads().join_watchers();
    all_ok && peer.downloads().failed() == 0
}

/// Carries out one command, printing its result or one `error:` line.
/// Returns whether it succeeded.
pub fn run_command(peer: &Peer, cmd: Command, control: &Control) -> bool {
    // Marked before the command's signal exists, so that end of input
    // never finds a download's look-up unmarked.
    control.set_asks_downloads(matches!(cmd, Command::Download { .. } | Command::Resume(_)));
    let stop = control.begin_command();
    let result = exec::execute(peer, cmd, control, &stop);
    control.set_asks_downloads(false);
    match result {
        Ok(()) => true,
        Err(e) => {
            println!("error: {e}");
            false
        }
    }
}

/// Leaving: waits for running downloads (or cancels them, with `cancel`),
/// while another `quit` on piped input, or Ctrl+C, cancels them.
fn finish(peer: &Peer, input: &mut Input<'_>, control: &Control, cancel: bool) {
    peer.set_leaving();
    if cancel {
        say(control::leaving_text(peer, peer.downloads().cancel_all()));
    }
    let running = peer.downloads().running().len();
    if running == 0 {
        return;
    }
    let how = match input.is_terminal() {
        true => "press Ctrl+C",
        false => "quit again or press Ctrl+C",
    };
    say(format!(
        "waiting for {} to finish; {how} to cancel (verified chunks are kept)",
        count(running, "download")
    ));
    control.set(State::Waiting);
    let mut cancelled = false;
    let mut next_progress = Instant::now() + WAIT_PROGRESS;
    peer.downloads().wait_all(|| {
        while let Some(typed) = input.ready_line() {
            let quit = match typed {
                Typed::Line(line) => match Command::parse(&line) {
                    Ok(Some(Command::Quit)) => true,
                    Ok(Some(Command::Status)) => {
                        println!("{}", status_text(&peer.status()));
                        false
                    }
                    _ => false,
                },
                Typed::Interrupted => true,
                // Ended: nothing more will come.
                Typed::Eof => break,
            };
            if quit && !cancelled {
                cancelled = true;
                control::cancel_all_saying(peer);
            }
        }
        let now = Instant::now();
        if now >= next_progress {
            next_progress = now + WAIT_PROGRESS;
            if let Some(line) = waiting_line(&peer.downloads().snapshot(now)) {
                say(line);
            }
        }
    });
}

/// How often leaving says how far the downloads it waits for have got.
const WAIT_PROGRESS: Duration = Duration::from_secs(5);

/// `still waiting for 2 downloads: 12.0 MiB of 40.0 MiB (30%), 3.1 MiB/s`,
/// over the running downloads in `views`; `None` if none runs.
fn waiting_line(views: &[DownloadView]) -> Option<String> {
    let running: Vec<&DownloadView> = views
        .iter()
        .filter(|v| matches!(v.state, DownloadState::Running | DownloadState::Waiting))
        .collect();
    if running.is_empty() {
        return None;
    }
    let done: u64 = running.iter().map(|v| v.done_bytes).sum();
    let size: u64 = running.iter().map(|v| v.size).sum();
    let rate: u64 = running.iter().map(|v| v.rate).sum();
    let percent = match size {
        0 => 100,
        size => done.saturating_mul(100) / size,
    };
    Some(format!(
        "still waiting for {}: {} of {} ({percent}%), {}",
        count(running.len(), "download"),
        format_size(done),
        format_size(size),
        format_speed(rate as f64)
    ))
}
