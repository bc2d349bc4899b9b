//! The peer's REPL: `Command` parsing (pure, tested) and `run`, which reads
//! commands line by line from a terminal or a pipe, carries each out to the
//! end before reading the next, and prints results on stdout. An error is one
//! `error: ...` line and the REPL goes on.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::download::DownloadError;
use super::input::Input;
use super::library::SharedFile;
use super::status::size_and_bytes;
use super::{Peer, PeerError};
use crate::net::rate::{format_rate, parse_rate, RateError};
use crate::protocol::FileSummary;
use crate::ui::{self, format_size, format_speed, DownloadBar};

/// How often a download's progress bar is redrawn from its progress.
const BAR_TICK: Duration = Duration::from_millis(100);

pub const HELP: &str = "\
commands:
  share [--private] PATH     hash PATH and share it under its file name
                             (--private: only with holders of its link)
  list                       files this peer shares
  search [TEXT]              files the tracker knows (names containing TEXT)
  download NAME|ID|LINK [OUT]
                             download a file (by name, id, id prefix or share
                             link) to OUT
                             (default: its name in the current directory)
  limit up|down RATE|off     cap upload or download bandwidth (e.g. 500K, 10M)
  limit                      show the caps
  status                     downloads in progress and uploads per file
  help                       this text
  quit                       unregister and exit (end of input does the same)
Quote arguments that contain spaces: share \"my file.txt\"";

/// A line that is not a valid command.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CommandError {
    #[error("unbalanced quotes")]
    UnbalancedQuotes,
    #[error("usage: {0}")]
    Usage(&'static str),
    #[error("{0} takes no arguments")]
    NoArguments(String),
    #[error("unknown command {0:?}; type help")]
    Unknown(String),
    #[error(transparent)]
    Rate(#[from] RateError),
}

/// Why a command failed; printed as one `error: ...` line.
#[derive(Debug, Error)]
pub enum ReplError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Peer(#[from] PeerError),
    #[error(transparent)]
    Download(#[from] DownloadError),
    #[error("{0:?} is ambiguous; download one of them by id")]
    Ambiguous(String),
    #[error("{0}")]
    Input(io::Error),
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
    },
    List,
    Search(String),
    Download {
        target: String,
        out: Option<PathBuf>,
    },
    /// `limit`: show the caps; `limit up|down RATE|off`: change one.
    Limit(Option<(Direction, Option<u64>)>),
    Status,
    Help,
    Quit,
}

impl Command {
    /// Parses one input line; `Ok(None)` for a blank line.
    pub fn parse(line: &str) -> Result<Option<Command>, CommandError> {
        let words = shlex::split(line).ok_or(CommandError::UnbalancedQuotes)?;
        let Some((verb, args)) = words.split_first() else {
            return Ok(None);
        };
        let cmd = match (verb.as_str(), args) {
            ("share", [flag, path]) if flag == "--private" => Command::Share {
                path: PathBuf::from(path),
                private: true,
            },
            ("share", [path]) if !path.starts_with("--") => Command::Share {
                path: PathBuf::from(path),
                private: false,
            },
            ("share", _) => return Err(CommandError::Usage("share [--private] PATH")),
            ("list", []) => Command::List,
            ("search", words) => Command::Search(words.join(" ")),
            ("download", [target]) => Command::Download {
                target: target.clone(),
                out: None,
            },
            ("download", [target, out]) => Command::Download {
                target: target.clone(),
                out: Some(PathBuf::from(out)),
            },
            ("download", _) => return Err(CommandError::Usage("download NAME|ID [OUT]")),
            ("limit", []) => Command::Limit(None),
            ("limit", [dir, rate]) => {
                let dir = match dir.as_str() {
                    "up" => Direction::Up,
                    "down" => Direction::Down,
                    _ => return Err(CommandError::Usage("limit up|down RATE|off")),
                };
                let rate = parse_rate(rate)?;
                Command::Limit(Some((dir, rate)))
            }
            ("limit", _) => return Err(CommandError::Usage("limit up|down RATE|off")),
            ("status", []) => Command::Status,
            ("help", []) => Command::Help,
            ("quit" | "exit", []) => Command::Quit,
            ("list" | "status" | "help" | "quit" | "exit", _) => {
                return Err(CommandError::NoArguments(verb.clone()))
            }
            _ => return Err(CommandError::Unknown(verb.clone())),
        };
        Ok(Some(cmd))
    }
}

/// Runs the REPL on stdin until `quit` or end of input. Returns whether
/// every command succeeded. On a terminal (stdin and stdout both), lines come
/// from a line editor with history and completion (see [`Input`]).
pub fn run(peer: &Peer) -> bool {
    let mut input = Input::open(peer);
    let mut all_ok = true;
    loop {
        let line = match input.next_line() {
            Ok(Some(line)) => line,
            Ok(None) => return all_ok,
            Err(e) => {
                println!("error: {}", ReplError::Input(e));
                all_ok = false;
                continue;
            }
        };
        match Command::parse(&line) {
            Ok(None) => {}
            Ok(Some(Command::Quit)) => return all_ok,
            Ok(Some(cmd)) => all_ok &= run_command(peer, cmd),
            Err(e) => {
                println!("error: {e}");
                all_ok = false;
            }
        }
    }
}

/// Carries out one command, printing its result or one `error:` line.
/// Returns whether it succeeded.
pub fn run_command(peer: &Peer, cmd: Command) -> bool {
    peer.begin_command();
    match execute(peer, cmd) {
        Ok(()) => true,
        Err(e) => {
            println!("error: {e}");
            false
        }
    }
}

fn execute(peer: &Peer, cmd: Command) -> Result<(), ReplError> {
    match cmd {
        Command::Share { path, private } => {
            let (file, warning) = share(peer, &path, private)?;
            println!(
                "Successfully registered file: {} ({} bytes, {}, id {})",
                path.display(),
                file.manifest.size(),
                format_size(file.manifest.size()),
                file.id
            );
            println!("  link: {}", super::link_of(&file));
            if file.secret.is_some() {
                println!("  private: only holders of this link can download it; it is not listed by name");
            }
            if let Some(w) = warning {
                println!("warning: {w}; shared locally, will announce when the tracker is back");
            }
        }
        Command::List => {
            let files = peer.library().list();
            println!("{} shared file(s)", files.len());
            for f in files {
                println!(
                    "  {}  {:>12} {:>10}  {}  uploaded {}",
                    f.id,
                    f.manifest.size(),
                    format_size(f.manifest.size()),
                    f.name,
                    size_and_bytes(f.uploaded())
                );
            }
        }
        Command::Search(text) => {
            let files = peer.search(&text)?;
            println!("{} file(s) found", files.len());
            print_files(&files);
        }
        Command::Download { target, out } => download(peer, &target, out)?,
        Command::Limit(change) => {
            let rates = peer.rates();
            match change {
                Some((Direction::Up, rate)) => rates.up.set(rate),
                Some((Direction::Down, rate)) => rates.down.set(rate),
                None => {}
            }
            println!(
                "limits: upload {}, download {}",
                format_rate(rates.up.get()),
                format_rate(rates.down.get())
            );
        }
        Command::Status => println!("{}", peer.status().to_text()),
        Command::Help => println!("{HELP}"),
        Command::Quit => {}
    }
    Ok(())
}

/// Shares `path`, with a hashing bar on a terminal.
fn share(
    peer: &Peer,
    path: &Path,
    private: bool,
) -> Result<(Arc<SharedFile>, Option<PeerError>), PeerError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let len = std::fs::metadata(path).map(|m| m.len()).ok();
    let bar = name
        .zip(len)
        .and_then(|(name, len)| ui::hashing_bar(&name, len));
    let result = match &bar {
        Some(bar) => peer.share_reporting(path, private, &|n| bar.inc(n)),
        None => peer.share(path, private),
    };
    if let Some(bar) = &bar {
        ui::clear_bar(bar);
    }
    result
}

fn print_files(files: &[FileSummary]) {
    for f in files {
        println!(
            "  {}  {:>12} {:>10}  {:>3} peer(s)  {}",
            f.id,
            f.size,
            format_size(f.size),
            f.peers,
            f.name
        );
    }
}

fn download(peer: &Peer, target: &str, out: Option<PathBuf>) -> Result<(), ReplError> {
    let file = match peer.locate(target) {
        Ok(found) => found,
        Err(PeerError::Ambiguous { target, candidates }) => {
            println!("{} files are named {target:?}:", candidates.len());
            print_files(&candidates);
            return Err(ReplError::Ambiguous(target));
        }
        Err(e) => return Err(e.into()),
    };
    let out = peer.output_path(&file, out.as_deref())?;
    let size = file
        .size
        .map_or("unknown".to_string(), |s| format!("{s} bytes"));
    println!(
        "Found {} peers for {} (size: {size})",
        file.peers.len(),
        file.name
    );
    log::info!(
        "{} peer(s) from the tracker, {} more from the DHT",
        file.from_tracker,
        file.from_dht
    );
    let handle = peer.download(&file, &out)?;
    let bar = DownloadBar::new(&file.name, file.size.unwrap_or(0));
    while !handle.wait_timeout(BAR_TICK) {
        if let Some(bar) = &bar {
            bar.update(&handle.progress().view(Instant::now()));
        }
    }
    drop(bar);
    let view = handle.progress().view(Instant::now());
    let report = handle.join()?;
    println!("Successfully downloaded: {}", file.name);
    let used = report.peers.iter().filter(|p| p.chunks > 0).count();
    let secs = report.elapsed.as_secs_f64().max(1e-6);
    let resumed = match report.resumed {
        0 => String::new(),
        n => format!(", {n} chunks resumed from an earlier attempt"),
    };
    let sources = match view.from_partial_bytes {
        0 => String::new(),
        partial => format!(
            " ({} from peers still downloading it)",
            format_size(partial)
        ),
    };
    println!(
        "  {} bytes ({}) in {secs:.2} s ({}) from {used} peer(s){sources}{resumed}; saved as {}; now sharing it",
        report.bytes,
        format_size(report.bytes),
        format_speed(report.bytes as f64 / secs),
        report.path.display()
    );
    if let Some(w) = report.warning {
        println!("warning: {w}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!(Command::parse("  "), Ok(None));
        assert_eq!(
            Command::parse("share a.txt"),
            Ok(Some(Command::Share {
                path: "a.txt".into(),
                private: false
            }))
        );
        assert_eq!(
            Command::parse("share --private \"a b.txt\""),
            Ok(Some(Command::Share {
                path: "a b.txt".into(),
                private: true
            }))
        );
        assert_eq!(
            Command::parse("search"),
            Ok(Some(Command::Search(String::new())))
        );
        assert_eq!(
            Command::parse("search foo bar"),
            Ok(Some(Command::Search("foo bar".into())))
        );
        assert_eq!(
            Command::parse("download x.txt out/y.txt"),
            Ok(Some(Command::Download {
                target: "x.txt".into(),
                out: Some("out/y.txt".into())
            }))
        );
        assert_eq!(Command::parse("quit"), Ok(Some(Command::Quit)));
        assert_eq!(Command::parse("status"), Ok(Some(Command::Status)));
        assert_eq!(Command::parse("limit"), Ok(Some(Command::Limit(None))));
        assert_eq!(
            Command::parse("limit up 10M"),
            Ok(Some(Command::Limit(Some((Direction::Up, Some(10 << 20))))))
        );
        assert_eq!(
            Command::parse("limit down off"),
            Ok(Some(Command::Limit(Some((Direction::Down, None)))))
        );
        for bad in [
            "share",
            "share a b",
            "share --public a",
            "share --private",
            "download",
            "download a b c",
            "list x",
            "status now",
            "frob",
            "share \"x",
            "limit up",
            "limit sideways 1M",
            "limit up fast",
        ] {
            assert!(Command::parse(bad).is_err(), "{bad:?}");
        }
    }
}
