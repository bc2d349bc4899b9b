//! Carrying out one REPL command, printing its result on stdout.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::command::{Command, Direction, HELP};
use super::control::{Control, State};
use super::ReplError;
use crate::manifest::FileId;
use crate::net::rate::format_rate;
use crate::net::stop::StopSignal;
use crate::peer::downloads::NoMatch;
use crate::peer::library::SharedFile;
use crate::peer::{background, resume};
use crate::peer::{link_of, Hashed, Peer, PeerError};
use crate::protocol::FileSummary;
use crate::select::Globs;
use crate::ui::report::{found_line, Refused};
use crate::ui::status::{size_and_bytes, status_text};
use crate::ui::{self, count, format_size, shown};

/// Carries out `cmd`; `stop` is its cancel token (see [`Control`]).
pub fn execute(
    peer: &Peer,
    cmd: Command,
    control: &Control,
    stop: &Arc<StopSignal>,
) -> Result<(), ReplError> {
    match cmd {
        Command::Share {
            path,
            private,
            exclude,
        } => {
            let before = shared_now(peer);
            let (file, warning) = share(peer, &path, private, &exclude)?;
            print_shared(&path, &file, &before, peer);
            if let Some(w) = warning {
                print_warning(&w);
            }
        }
        Command::List => {
            let files = peer.library().list();
            println!("{} shared", count(files.len(), "file"));
            for f in files {
                let private = if f.secret.is_some() {
                    "  (private)"
                } else {
                    ""
                };
                let folder = match f.manifest.as_tree() {
                    Some(tree) => format!("/ (folder of {})", count(tree.file_count(), "file")),
                    None => String::new(),
                };
                println!(
                    "  {}  {:>12} {:>10}  {}{folder}  uploaded {}{private}",
                    f.id,
                    f.manifest.size(),
                    format_size(f.manifest.size()),
                    f.name,
                    size_and_bytes(f.uploaded())
                );
                let path = f.path();
                let path = std::path::absolute(&path).unwrap_or(path);
                println!("  path: {}", path.display());
                print_links(peer, &f);
            }
        }
        Command::Unshare(which) => {
            let file = peer.unshare(&which)?;
            println!(
                "Stopped sharing {} (id {}); the file itself is untouched",
                file.name, file.id
            );
        }
        Command::Search(text) => {
            let found = peer.search(&text, stop)?;
            println!("{} found", count(found.files.len(), "file"));
            print_files(&found.files);
            if found.more {
                println!("  (more match than the tracker lists at once: narrow the search)");
            }
        }
        Command::Download { target, out, only } => {
            download(peer, &target, out.as_deref(), &only, stop)?
        }
        Command::Cancel(which) => {
            let d = match peer.downloads().matching(&which) {
                Ok(d) => d,
                Err(NoMatch::None) => return Err(Refused::NoSuchDownload(which).into()),
                Err(NoMatch::Several(keys)) => {
                    let keys: Vec<String> = keys.iter().map(u64::to_string).collect();
                    return Err(Refused::SeveralDownloads(which, keys.join(", ")).into());
                }
            };
            if peer.downloads().cancel(d.key()) {
                println!(
                    "cancelling download [{}] {} (verified chunks are kept)",
                    d.key(),
                    d.name()
                );
            }
        }
        Command::Wait => {
            let running = peer.downloads().running().len();
            if running == 0 {
                println!("no downloads running");
            } else {
                println!(
                    "waiting for {} (Ctrl+C cancels)",
                    count(running, "download")
                );
                control.set(State::Waiting);
                peer.downloads().wait_all(|| {});
            }
        }
        Command::Resume(which) => resume(peer, which.as_deref(), stop),
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
        Command::Status => println!("{}", status_text(&peer.status())),
        Command::Help => println!("{HELP}"),
        Command::Quit => {}
    }
    Ok(())
}

/// `--share` given many times: hashes each file (saying why one cannot
/// be), shares them all in one batch (see [`Peer::publish_all`]), then
/// prints for each what `share` prints. Returns whether all were shared.
pub fn share_all(peer: &Peer, files: &[(PathBuf, bool)]) -> bool {
    let before = shared_now(peer);
    let mut all_ok = true;
    let mut batch = Vec::new();
    for (path, private) in files {
        match hash(path, *private) {
            Ok(hashed) => batch.push(hashed),
            Err(e) => {
                println!("error: {}", ReplError::from(e));
                all_ok = false;
            }
        }
    }
    let paths: Vec<PathBuf> = batch.iter().map(|h| h.path.clone()).collect();
    let published = peer.publish_all(batch);
    for (path, result) in paths.iter().zip(published.files) {
        match result {
            Ok(file) => print_shared(path, &file, &before, peer),
            Err(e) => {
                println!("error: {}", ReplError::from(e));
                all_ok = false;
            }
        }
    }
    if let Some(w) = published.warning {
        print_warning(&w);
    }
    all_ok
}

/// What is shared now, by id and path, to tell a file shared again as it
/// was.
fn shared_now(peer: &Peer) -> HashSet<(FileId, PathBuf)> {
    let files = peer.library().list();
    files.iter().map(|f| (f.id, f.path())).collect()
}

/// What `share` says of a file it shared.
fn print_shared(path: &Path, file: &SharedFile, before: &HashSet<(FileId, PathBuf)>, peer: &Peer) {
    if let Some(tree) = file.manifest.as_tree() {
        println!(
            "Successfully registered folder: {} ({}, {}, id {})",
            path.display(),
            count(tree.file_count(), "file"),
            format_size(tree.total_size()),
            file.id
        );
    } else {
        println!(
            "Successfully registered file: {} ({} bytes, {}, id {})",
            path.display(),
            file.manifest.size(),
            format_size(file.manifest.size()),
            file.id
        );
    }
    if before.contains(&(file.id, file.path())) {
        println!("  (it was already shared, unchanged)");
    }
    print_links(peer, file);
    if file.secret.is_some() {
        println!("  private: only holders of its link or ticket can download it; it is not listed by name");
    }
}

fn print_warning(w: &PeerError) {
    println!("warning: {w}; shared locally, will announce when the tracker is back");
}

/// A shared file's link and ticket, indented under it.
fn print_links(peer: &Peer, file: &SharedFile) {
    println!("  link: {}", link_of(file));
    println!("  ticket: {}", peer.ticket_of(file));
}

/// Shares `path` (a folder without what `exclude` matches), with a
/// hashing bar on a terminal for a file.
fn share(
    peer: &Peer,
    path: &Path,
    private: bool,
    exclude: &[String],
) -> Result<(Arc<SharedFile>, Option<PeerError>), PeerError> {
    let hashed = match exclude {
        [] => hash(path, private)?,
        some => {
            let globs = Globs::new(some)?;
            crate::peer::hash_tree(&[path.to_path_buf()], &globs, private, &|_| {})?
        }
    };
    if let Some((_, skipped)) = &hashed.tree {
        let skipped = skipped.to_string();
        if !skipped.is_empty() {
            println!("{skipped}");
        }
    }
    peer.publish_all(vec![hashed]).single()
}

/// Hashes `path` to share it, with a hashing bar on a terminal.
fn hash(path: &Path, private: bool) -> Result<Hashed, PeerError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let len = std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    let bar = name
        .zip(len)
        .and_then(|(name, len)| ui::hashing_bar(&name, len));
    let result = match &bar {
        Some(bar) => crate::peer::hash(path, private, &|n| bar.inc(n)),
        None => crate::peer::hash(path, private, &|_| {}),
    };
    if let Some(bar) = &bar {
        ui::clear_bar(bar);
    }
    result
}

fn print_files(files: &[FileSummary]) {
    for f in files {
        println!(
            "  {}  {:>12} {:>10}  {:>9}  {}",
            f.id,
            f.size,
            format_size(f.size),
            count(f.peers as usize, "peer"),
            shown(&f.name)
        );
    }
}

/// Starts a download in the background; its end is printed when it comes.
fn download(
    peer: &Peer,
    target: &str,
    out: Option<&Path>,
    only: &[String],
    stop: &Arc<StopSignal>,
) -> Result<(), ReplError> {
    match background::start(peer, target, out, only, stop) {
        Ok(started) => {
            println!("{}", found_line(&started));
            Ok(())
        }
        Err(PeerError::Ambiguous { target, candidates }) => {
            println!("{} are named {target:?}:", count(candidates.len(), "file"));
            print_files(&candidates);
            Err(Refused::Ambiguous(target).into())
        }
        Err(e) => Err(e.into()),
    }
}

/// `resume [NAME|ID]`: starts again the unfinished downloads (those that
/// `which` names, by name or id prefix), each where it left off, saying
/// each start or why it could not.
fn resume(peer: &Peer, which: Option<&str>, stop: &Arc<StopSignal>) {
    let chosen = resume::chosen(peer, which);
    if chosen.is_empty() {
        println!("nothing to resume");
    }
    for u in chosen {
        match resume::resume_one(peer, &u, stop) {
            Ok(Some(started)) => println!("{}", found_line(&started)),
            Ok(None) => {}
            Err(e) => println!("error: cannot resume {}: {e}", u.name),
        }
    }
}
