//! Line editing for the REPL on a terminal (rustyline): history kept across
//! runs, and tab completion of commands, local paths (`share PATH`,
//! `download NAME OUT`) and the file names the tracker knows (`download
//! NAME`). Used only when stdin and stdout are both terminals; piped input
//! goes through the REPL's plain line reader, with no prompt and no escape
//! codes.
//!
//! The history file is checked through [`state_file`] before rustyline
//! opens it (to load it, and before each append): a link, a FIFO or an
//! overlong file there keeps the history in memory only, with a warning.
//!
//! The tracker is asked for names only when a name is being completed, and
//! its answer (or its failure) is reused for [`NAMES_TTL`], so holding Tab
//! does not flood it and a dead tracker costs one timeout, not one per key.

use std::env;
use std::ffi::OsString;
use std::io;
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context, Editor, ExternalPrinter, Helper};

use super::command::VERBS;
use crate::bounds::{HISTORY_SIZE, MAX_STATE_FILE, NAMES_TTL};
use crate::console;
use crate::net::stop::StopSignal;
use crate::peer::Peer;
use crate::state_file::names::HISTORY;
use crate::state_file::{self, StateFileError};
use crate::sync::LockExt;

const PROMPT: &str = "p2pshare> ";

/// The terminal's mode from before line editing, for [`restore_terminal`].
static SAVED_MODE: OnceLock<libc::termios> = OnceLock::new();

fn save_terminal() {
    let mut mode = MaybeUninit::<libc::termios>::uninit();
    // SAFETY: tcgetattr writes a whole termios on success, and only then is
    // it read.
    if unsafe { libc::tcgetattr(libc::STDIN_FILENO, mode.as_mut_ptr()) } == 0 {
        let _ = SAVED_MODE.set(unsafe { mode.assume_init() });
    }
}

/// Puts the terminal back as it was before line editing. For a signal
/// handler that exits: `process::exit` skips rustyline's own restore, which
/// would leave the shell without echo. Does nothing if no editor ran.
pub fn restore_terminal() {
    if let Some(mode) = SAVED_MODE.get() {
        // SAFETY: `mode` is a termios filled by tcgetattr.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, mode) };
        println!();
    }
}

/// A line editor bound to a peer (for completing tracker file names).
pub struct LineEditor<'a> {
    editor: Editor<ReplHelper<'a>, DefaultHistory>,
    history: Option<PathBuf>,
    /// Routes background lines above the prompt while the editor lives.
    _printer: Option<console::Printer>,
}

/// What the user did at the prompt.
pub enum Typed {
    Line(String),
    /// Ctrl+C: the line being typed is dropped.
    Interrupted,
    /// Ctrl+D on an empty line.
    Eof,
}

/// rustyline's external printer as the console's.
struct External<P: ExternalPrinter + Send>(P);

impl<P: ExternalPrinter + Send> console::LinePrinter for External<P> {
    fn print(&mut self, mut text: String) {
        // rustyline ends the line itself only while a prompt is up; between
        // prompts (leaving, waiting) it writes the text as it is, and the
        // shell's prompt would land on the same line.
        if !text.ends_with('\n') {
            text.push('\n');
        }
        if self.0.print(text.clone()).is_err() {
            print!("{text}");
        }
    }
}

impl<'a> LineEditor<'a> {
    /// Sets up the editor and loads the history, if there is one.
    pub fn new(peer: &'a Peer) -> rustyline::Result<Self> {
        let config = Config::builder()
            .max_history_size(HISTORY_SIZE)?
            .history_ignore_dups(true)?
            .history_ignore_space(true)
            .auto_add_history(false)
            .completion_type(CompletionType::List)
            .build();
        let mut editor = Editor::with_config(config)?;
        save_terminal();
        editor.set_helper(Some(ReplHelper {
            peer,
            files: FilenameCompleter::new(),
            names: Mutex::new(None),
        }));
        let history = match peer.state_dir() {
            Some(dir) => Some(dir.join(HISTORY)),
            None => history_path(env::var_os("XDG_STATE_HOME"), env::var_os("HOME")),
        };
        let history = history.filter(|path| match checked(path) {
            Ok(false) => true,
            Ok(true) => {
                if let Err(e) = editor.load_history(path) {
                    log::warn!("cannot read the history {}: {e}", path.display());
                }
                true
            }
            Err(e) => {
                log::warn!("{e}; keeping the history in memory only");
                false
            }
        });
        let printer = match editor.create_external_printer() {
            Ok(p) => Some(console::Printer::install(Box::new(External(p)))),
            Err(e) => {
                log::info!("no printing above the prompt: {e}");
                None
            }
        };
        Ok(LineEditor {
            editor,
            history,
            _printer: printer,
        })
    }

    /// Reads one line. Ctrl-C abandons the line being typed, as in a shell.
    pub fn read_line(&mut self) -> io::Result<Typed> {
        match self.editor.readline(PROMPT) {
            Ok(line) => {
                self.remember(&line);
                Ok(Typed::Line(line))
            }
            Err(ReadlineError::Interrupted) => Ok(Typed::Interrupted),
            Err(ReadlineError::Eof) => Ok(Typed::Eof),
            Err(ReadlineError::Io(e)) => Err(e),
            Err(e) => Err(io::Error::other(e.to_string())),
        }
    }

    /// Adds `line` to the history and appends it to the history file at
    /// once, so it survives the process being killed. A failure to save is a
    /// warning, after which the history stays in memory only.
    fn remember(&mut self, line: &str) {
        if line.trim().is_empty() || !matches!(self.editor.add_history_entry(line), Ok(true)) {
            return;
        }
        let Some(path) = &self.history else {
            return;
        };
        let saved = match path.parent() {
            Some(dir) => std::fs::create_dir_all(dir).map_err(ReadlineError::from),
            None => Ok(()),
        }
        .and_then(|()| checked(path).map_err(|e| ReadlineError::from(io::Error::other(e))))
        .and_then(|_| self.editor.append_history(path));
        if let Err(e) = saved {
            log::warn!(
                "cannot save the history to {}: {e}; keeping it in memory only",
                path.display()
            );
            self.history = None;
        }
    }
}

/// Whether the history file at `path` is there (`Ok(false)`: not yet);
/// an error if it is anything but a regular file of sane length, which
/// rustyline (opening it itself) would follow, block on or read whole.
fn checked(path: &Path) -> Result<bool, StateFileError> {
    match state_file::open(path)? {
        Some(file) => file.within(MAX_STATE_FILE).map(|()| true),
        None => Ok(false),
    }
}

/// `$XDG_STATE_HOME/p2pshare/history`, or `~/.local/state/p2pshare/history`
/// (the XDG default). `None` when neither variable gives an absolute path.
pub fn history_path(xdg_state_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let absolute = |v: OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    let base = xdg_state_home
        .and_then(absolute)
        .or_else(|| home.and_then(absolute).map(|h| h.join(".local/state")))?;
    Some(base.join("p2pshare").join(HISTORY))
}

/// Splits `before` (the line up to the cursor) the way the REPL will, with
/// quotes and backslashes: returns the complete words before the cursor and
/// the byte offset where the word under the cursor starts.
pub fn split_for_completion(before: &str) -> (Vec<String>, usize) {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut start = None;
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in before.char_indices() {
        if escaped {
            word.push(c);
            escaped = false;
            continue;
        }
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => {
                escaped = true;
                start.get_or_insert(i);
            }
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                start.get_or_insert(i);
            }
            (None, c) if c.is_whitespace() => {
                if start.take().is_some() {
                    words.push(std::mem::take(&mut word));
                }
            }
            (None, c) => {
                word.push(c);
                start.get_or_insert(i);
            }
        }
    }
    (words, start.unwrap_or(before.len()))
}

/// The candidates among `options` for the word `typed` (which may begin
/// with an opening quote), quoted as the REPL's parser needs.
pub fn candidates<'o>(typed: &str, options: impl IntoIterator<Item = &'o str>) -> Vec<Pair> {
    let prefix = typed.trim_start_matches(['"', '\'']);
    let mut found: Vec<Pair> = options
        .into_iter()
        .filter(|o| o.starts_with(prefix))
        .map(|o| Pair {
            display: o.to_string(),
            replacement: shlex::try_quote(o).map_or_else(|_| o.to_string(), |q| q.into_owned()),
        })
        .collect();
    found.sort_by(|a, b| a.display.cmp(&b.display));
    found.dedup_by(|a, b| a.display == b.display);
    found
}

struct ReplHelper<'a> {
    peer: &'a Peer,
    files: FilenameCompleter,
    /// The tracker's file names and when they were fetched.
    names: Mutex<Option<(Instant, Vec<String>)>>,
}

impl ReplHelper<'_> {
    /// The file names the tracker knows, at most [`NAMES_TTL`] old.
    fn tracker_names(&self) -> Vec<String> {
        let mut cache = self.names.locked();
        if let Some((at, names)) = cache.as_ref() {
            if at.elapsed() < NAMES_TTL {
                return names.clone();
            }
        }
        let names: Vec<String> = match self.peer.search("", &StopSignal::new()) {
            Ok(found) => found.files.into_iter().map(|f| f.name).collect(),
            Err(e) => {
                log::debug!("no names to complete: {e}");
                Vec::new()
            }
        };
        *cache = Some((Instant::now(), names.clone()));
        names
    }
}

impl Completer for ReplHelper<'_> {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (words, start) = split_for_completion(&line[..pos]);
        let typed = &line[start..pos];
        let verb = words.first().map(String::as_str);
        let found = match (verb, words.len()) {
            // A whole command is followed by its space, as a shell does.
            (None, _) => candidates(typed, VERBS.iter().copied())
                .into_iter()
                .map(|p| Pair {
                    replacement: format!("{} ", p.replacement),
                    ..p
                })
                .collect(),
            (Some("share"), 1) | (Some("download"), 2) => {
                return self.files.complete(line, pos, ctx)
            }
            (Some("download"), 1) => {
                let names = self.tracker_names();
                candidates(typed, names.iter().map(String::as_str))
            }
            (Some("limit"), 1) => candidates(typed, ["up", "down"]),
            (Some("limit"), 2) => candidates(typed, ["off"]),
            _ => Vec::new(),
        };
        Ok((start, found))
    }
}

impl Hinter for ReplHelper<'_> {
    type Hint = String;
}

impl Highlighter for ReplHelper<'_> {}

impl Validator for ReplHelper<'_> {}

impl Helper for ReplHelper<'_> {}

#[cfg(test)]
mod tests;
