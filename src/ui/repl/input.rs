//! Where the REPL's lines come from. On a terminal, the line editor on the
//! REPL's own thread. Otherwise a thread reads stdin ahead, so that `quit`
//! or end of input is seen while a command still runs: the command's
//! tracker requests are then interrupted after [`QUIT_GRACE`] (a request
//! answered promptly still completes, one stuck on a tracker that trickles
//! does not hold the peer). A `download` or `resume` is never interrupted
//! so: lines read ahead are still carried out, and the downloads they ask
//! for are waited for. It reads on after `quit`, so that a second
//! `quit` can cancel the downloads the first one waits for.

use std::io::{self, BufRead, IsTerminal};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::editor::{LineEditor, Typed};
use super::{Command, Control};
use crate::bounds::{MAX_INPUT_LINE, TRACKER_DEADLINE};
use crate::peer::Peer;

/// How long a command may go on after `quit` or end of input before its
/// tracker requests are interrupted.
pub const QUIT_GRACE: Duration = Duration::from_secs(1);

/// How often the grace checks whether a download's look-up has ended.
const SHIELD_POLL: Duration = Duration::from_millis(20);

/// A source of input lines.
pub enum Input<'a> {
    Editor(Box<LineEditor<'a>>),
    Piped(Receiver<io::Result<Option<String>>>),
}

impl Input<'_> {
    /// Whether lines come from the line editor (a person at a terminal).
    pub fn is_terminal(&self) -> bool {
        matches!(self, Input::Editor(_))
    }
}

impl<'a> Input<'a> {
    /// The line editor on a terminal (stdin and stdout both), else a reader
    /// thread on stdin.
    pub fn open(peer: &'a Peer, control: &Arc<Control>) -> Input<'a> {
        if io::stdin().is_terminal() && io::stdout().is_terminal() {
            match LineEditor::new(peer) {
                Ok(editor) => return Input::Editor(Box::new(editor)),
                Err(e) => log::warn!("no line editing: {e}"),
            }
        }
        Input::Piped(spawn_reader(Arc::clone(control)))
    }

    /// The next line, Ctrl+C or end of input.
    pub fn next_line(&mut self) -> io::Result<Typed> {
        match self {
            Input::Editor(editor) => editor.read_line(),
            Input::Piped(lines) => Ok(match lines.recv().unwrap_or(Ok(None))? {
                Some(line) => Typed::Line(line),
                None => Typed::Eof,
            }),
        }
    }

    /// A line already typed, if any, without waiting (piped input only:
    /// the editor has nothing to offer while no prompt is up).
    pub fn ready_line(&mut self) -> Option<Typed> {
        match self {
            Input::Editor(_) => None,
            Input::Piped(lines) => match lines.try_recv() {
                Ok(Ok(Some(line))) => Some(Typed::Line(line)),
                Ok(Ok(None)) => Some(Typed::Eof),
                Ok(Err(_)) | Err(mpsc::TryRecvError::Empty) => None,
                Err(mpsc::TryRecvError::Disconnected) => Some(Typed::Eof),
            },
        }
    }
}

/// Reads stdin on a thread of its own into a channel; after the first
/// `quit` or end of input, [`QUIT_GRACE`] later, it interrupts the command
/// then running (through `control`, which holds its cancel token) on a
/// thread of its own, and reads on until end of input.
fn spawn_reader(control: Arc<Control>) -> Receiver<io::Result<Option<String>>> {
    let (tx, rx) = mpsc::channel();
    let spawned = thread::Builder::new().name("input".into()).spawn(move || {
        let stdin = io::stdin();
        let mut interrupting = false;
        loop {
            let line = read_bounded_line(&mut stdin.lock());
            let (quit, eof) = match &line {
                Ok(Some(l)) => (matches!(Command::parse(l), Ok(Some(Command::Quit))), false),
                Ok(None) => (true, true),
                Err(_) => (false, false),
            };
            if tx.send(line).is_err() {
                return;
            }
            if quit && !interrupting {
                interrupting = true;
                let control = Arc::clone(&control);
                let _ = thread::Builder::new()
                    .name("quit-grace".into())
                    .spawn(move || {
                        thread::sleep(QUIT_GRACE);
                        // A `download` still looking its file up was asked
                        // for: wait for it to be under way (bounded by the
                        // tracker's own deadline), then interrupt only what
                        // comes after.
                        let until = Instant::now() + TRACKER_DEADLINE;
                        while control.asks_downloads() && Instant::now() < until {
                            thread::sleep(SHIELD_POLL);
                        }
                        control.interrupt_command();
                    });
            }
            if eof {
                return;
            }
        }
    });
    if let Err(e) = spawned {
        log::warn!("cannot start the input thread: {e}");
    }
    rx
}

/// Reads a line of at most [`MAX_INPUT_LINE`] bytes; `None` at end of input.
pub fn read_bounded_line<R: BufRead>(input: &mut R) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = io::Read::take(&mut *input, MAX_INPUT_LINE as u64 + 1).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.len() > MAX_INPUT_LINE && buf.last() != Some(&b'\n') {
        // Skip the rest of the over-long line.
        let mut sink = Vec::new();
        while !matches!(input.read_until(b'\n', &mut sink), Ok(0)) && sink.last() != Some(&b'\n') {
            sink.clear();
        }
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("input line over {MAX_INPUT_LINE} bytes ignored"),
        ));
    }
    let text = String::from_utf8(buf)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "input is not UTF-8"))?;
    Ok(Some(text.trim_end_matches(['\n', '\r']).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_lines_are_bounded() {
        let long = "x".repeat(MAX_INPUT_LINE + 10);
        let data = format!("{long}\nlist\n");
        let mut input = io::Cursor::new(data.into_bytes());
        assert!(read_bounded_line(&mut input).is_err());
        assert_eq!(read_bounded_line(&mut input).unwrap(), Some("list".into()));
        assert_eq!(read_bounded_line(&mut input).unwrap(), None);
    }
}
