//! The REPL's commands: parsing a line into a [`Command`] (pure, tested),
//! the help text its usage lines come from, and `did you mean` for verbs.

use std::path::PathBuf;

use thiserror::Error;

use crate::name::closest;
use crate::net::rate::{parse_rate, RateError};

pub const HELP: &str = "\
commands:
  share [--private] [--exclude GLOB]... PATH
                             hash PATH (a file, or a folder whole) and share
                             it under its name (--private: only with holders
                             of its link; --exclude: leave out of a folder)
  list                       files this peer shares, with their links
  unshare NAME|ID            stop sharing a file (the file itself stays)
  search [TEXT]              files the tracker knows (names containing TEXT)
  download TARGET [OUT] [--only GLOB]...
                             download in the background: TARGET is a ticket,
                             link, name, id or id prefix; OUT a file or
                             directory (default: its name, here); --only: of
                             a folder, just the files GLOB matches
  cancel NAME|ID|N           stop a download (verified chunks are kept)
  wait                       wait until every download has ended
  resume [NAME|ID]           continue downloads left unfinished last time
  limit up|down RATE|off     cap upload or download bandwidth (e.g. 500K, 10M)
  limit                      show the caps
  status                     downloads, uploads and ids
  help                       this text
  quit                       wait for downloads, unregister and exit (end of
                             input does the same; a second quit cancels)
Quote arguments that contain spaces: share \"my file.txt\"";

/// The verbs, for completion and suggestions.
pub const VERBS: &[&str] = &[
    "share", "list", "unshare", "search", "download", "cancel", "wait", "resume", "limit",
    "status", "help", "quit", "exit",
];

/// A line that is not a valid command.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CommandError {
    #[error("unbalanced quotes")]
    UnbalancedQuotes,
    #[error("usage: {0}")]
    Usage(&'static str),
    #[error("usage: {usage} (quote a path with spaces: {verb} \"{joined}\")")]
    Unquoted {
        usage: &'static str,
        verb: &'static str,
        joined: String,
    },
    #[error("{0} takes no arguments")]
    NoArguments(String),
    #[error("unknown command {0:?}; did you mean {1}? (type help)")]
    DidYouMean(String, &'static str),
    #[error("unknown command {0:?}; type help")]
    Unknown(String),
    #[error(transparent)]
    Rate(#[from] RateError),
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Direction {
    Up,
    Down,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Share {
        path: PathBuf,
        private: bool,
        /// `--exclude` globs (of a folder).
        exclude: Vec<String>,
    },
    List,
    Unshare(String),
    Search(String),
    Download {
        target: String,
        out: Option<PathBuf>,
        /// `--only` globs (of a folder).
        only: Vec<String>,
    },
    Cancel(String),
    Wait,
    Resume(Option<String>),
    /// `limit`: show the caps; `limit up|down RATE|off`: change one.
    Limit(Option<(Direction, Option<u64>)>),
    Status,
    Help,
    Quit,
}

const SHARE: &str = "share [--private] [--exclude GLOB]... PATH";
const DOWNLOAD: &str = "download TARGET [OUT] [--only GLOB]...";
const LIMIT: &str = "limit up|down RATE|off";

impl Command {
    /// Parses one input line; `Ok(None)` for a blank line. `~` at the start
    /// of a path argument is the home directory.
    pub fn parse(line: &str) -> Result<Option<Command>, CommandError> {
        let words = shlex::split(line).ok_or(CommandError::UnbalancedQuotes)?;
        let Some((verb, args)) = words.split_first() else {
            return Ok(None);
        };
        let (args, exclude) = take_option(args, "--exclude", verb == "share", SHARE)?;
        let (args, only) = take_option(&args, "--only", verb == "download", DOWNLOAD)?;
        let args = args.as_slice();
        let cmd = match (verb.as_str(), args) {
            ("share", [flag, path]) if flag == "--private" => Command::Share {
                path: expand_home(path),
                private: true,
                exclude,
            },
            ("share", [path]) if !path.starts_with("--") => Command::Share {
                path: expand_home(path),
                private: false,
                exclude,
            },
            ("share", [first, _, ..]) if !first.starts_with("--") => {
                return Err(CommandError::Unquoted {
                    usage: SHARE,
                    verb: "share",
                    joined: args.join(" "),
                })
            }
            ("share", _) => return Err(CommandError::Usage(SHARE)),
            ("list", []) => Command::List,
            ("unshare", [which]) => Command::Unshare(which.clone()),
            ("unshare", _) => return Err(CommandError::Usage("unshare NAME|ID")),
            ("search", words) => Command::Search(words.join(" ")),
            ("download", [target]) => Command::Download {
                target: target.clone(),
                out: None,
                only,
            },
            ("download", [target, out]) => Command::Download {
                target: target.clone(),
                out: Some(expand_home(out)),
                only,
            },
            ("download", [_, _, _, ..]) => {
                return Err(CommandError::Unquoted {
                    usage: DOWNLOAD,
                    verb: "download",
                    joined: args.join(" "),
                })
            }
            ("download", _) => return Err(CommandError::Usage(DOWNLOAD)),
            ("cancel", [which]) => Command::Cancel(which.clone()),
            ("cancel", _) => return Err(CommandError::Usage("cancel NAME|ID|N")),
            ("resume", []) => Command::Resume(None),
            ("resume", [which]) => Command::Resume(Some(which.clone())),
            ("resume", _) => return Err(CommandError::Usage("resume [NAME|ID]")),
            ("limit", []) => Command::Limit(None),
            ("limit", [dir, rate]) => {
                let dir = match dir.as_str() {
                    "up" => Direction::Up,
                    "down" => Direction::Down,
                    _ => return Err(CommandError::Usage(LIMIT)),
                };
                Command::Limit(Some((dir, parse_rate(rate)?)))
            }
            ("limit", _) => return Err(CommandError::Usage(LIMIT)),
            ("wait", []) => Command::Wait,
            ("status", []) => Command::Status,
            ("help", []) => Command::Help,
            ("quit" | "exit", []) => Command::Quit,
            ("list" | "wait" | "status" | "help" | "quit" | "exit", _) => {
                return Err(CommandError::NoArguments(verb.clone()))
            }
            _ => {
                return Err(match closest(verb, VERBS.iter().copied()) {
                    Some(near) => CommandError::DidYouMean(verb.clone(), near),
                    None => CommandError::Unknown(verb.clone()),
                })
            }
        };
        Ok(Some(cmd))
    }
}

/// Takes every `option VALUE` pair out of `args` when the verb takes the
/// option (`allowed`); returns the other words and the values.
fn take_option(
    args: &[String],
    option: &str,
    allowed: bool,
    usage: &'static str,
) -> Result<(Vec<String>, Vec<String>), CommandError> {
    let (mut rest, mut values) = (Vec::new(), Vec::new());
    let mut words = args.iter();
    while let Some(word) = words.next() {
        if word != option || !allowed {
            rest.push(word.clone());
            continue;
        }
        match words.next() {
            Some(value) => values.push(value.clone()),
            None => return Err(CommandError::Usage(usage)),
        }
    }
    Ok((rest, values))
}

/// `~` or `~/...` with the home directory put in (as a shell would).
pub fn expand_home(path: &str) -> PathBuf {
    let home = || std::env::var_os("HOME").filter(|h| !h.is_empty());
    match path.strip_prefix('~') {
        Some("") => home().map_or_else(|| PathBuf::from(path), PathBuf::from),
        Some(rest) if rest.starts_with('/') => match home() {
            Some(h) => PathBuf::from(h).join(&rest[1..]),
            None => PathBuf::from(path),
        },
        _ => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests;
