//! The shares a peer remembers, in two files: `shares.json`, the list as of
//! the last compaction (the format of every earlier version, so an old
//! state directory reads as it is), and `shares.journal`, one JSON line per
//! change since: `{"share":{...}}` (remembered, replacing any share of its
//! path or id) or `{"forget":"<id>"}`.
//!
//! Remembering a batch of shares appends its lines and syncs the journal
//! once (into an empty memory, the batch is written as the list instead), so each share costs one line whatever the number remembered (it
//! was a rewrite of the whole list per batch, and a finished download is a
//! batch of one: quadratic over many downloads). Once the journal is
//! longer than the list (and `SHARES_JOURNAL_SLACK`), the two are
//! compacted: the list rewritten whole (temporary file, `fsync`, rename),
//! then the journal emptied. Each byte of the list is rewritten only after
//! as many bytes of journal were appended, so the cost stays O(1) per
//! share, amortised.
//!
//! A crash leaves the old list or the new, and a journal whose lines are
//! all applied again: replaying a change onto a list that has it already
//! changes nothing (each keeps the last share of a path or id). A torn
//! last line (no newline) is cut off at open; a damaged line is said in a
//! warning and skipped.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Share;
use crate::bounds::{MAX_STATE_FILE, SHARES_JOURNAL_SLACK};
use crate::state_file::names::{SHARES, SHARES_JOURNAL};
use crate::state_file::{self, StateFileError};

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Share(Share),
    Forget(String),
}

/// The longest list that holds nothing (`[]`).
const EMPTY_LIST: u64 = 2;

pub struct SharesLog {
    list: PathBuf,
    journal: PathBuf,
    /// Lengths as last read or written.
    list_len: u64,
    journal_len: u64,
}

impl SharesLog {
    /// The shares remembered in `dir`, once both files are found to be
    /// regular files of a readable length (or absent); a torn last line of
    /// the journal is cut off.
    pub fn open(dir: &Path) -> Result<SharesLog, StateFileError> {
        let mut log = SharesLog {
            list: dir.join(SHARES),
            journal: dir.join(SHARES_JOURNAL),
            list_len: 0,
            journal_len: 0,
        };
        if let Some(file) = state_file::open(&log.list)? {
            file.within(MAX_STATE_FILE)?;
            log.list_len = file.size();
        }
        if let Some(file) = state_file::open(&log.journal)? {
            file.within(MAX_STATE_FILE)?;
            log.journal_len = file.size();
            if log.journal_len > 0 {
                log.cut_torn_tail()?;
            }
        }
        Ok(log)
    }

    /// Cuts the journal after its last newline, if it does not end in one.
    fn cut_torn_tail(&mut self) -> Result<(), StateFileError> {
        let file = state_file::open_appending(&self.journal)?;
        let mut last = [0];
        file.read_exact_at(&mut last, self.journal_len - 1)
            .map_err(self.io())?;
        if last[0] == b'\n' {
            return Ok(());
        }
        let bytes = state_file::read(&self.journal, MAX_STATE_FILE)?.unwrap_or_default();
        let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        log::info!(
            "{}: cutting a torn last line of {} bytes",
            self.journal.display(),
            bytes.len() - keep
        );
        file.set_len(keep as u64).map_err(self.io())?;
        self.journal_len = keep as u64;
        Ok(())
    }

    fn io(&self) -> impl FnOnce(std::io::Error) -> StateFileError + '_ {
        |source| StateFileError::Io {
            path: self.journal.clone(),
            source,
        }
    }

    /// The shares remembered: the list with the journal applied. A damaged
    /// list is said in a warning and read as empty.
    pub fn read(&mut self) -> Result<Vec<Share>, StateFileError> {
        let mut shares: Vec<Share> = match state_file::read(&self.list, MAX_STATE_FILE)? {
            Some(bytes) => {
                self.list_len = bytes.len() as u64;
                serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                    log::warn!("ignoring {}, which is damaged: {e}", self.list.display());
                    Vec::new()
                })
            }
            None => Vec::new(),
        };
        let journal = state_file::read(&self.journal, MAX_STATE_FILE)?.unwrap_or_default();
        let whole = journal
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        self.journal_len = whole as u64;
        let mut damaged = 0;
        let changes = journal[..whole]
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
            .filter_map(|line| match serde_json::from_slice::<Change>(line) {
                Ok(change) => Some(change),
                Err(_) => {
                    damaged += 1;
                    None
                }
            });
        shares = apply(shares, changes);
        if damaged > 0 {
            let path = self.journal.display();
            log::warn!("{path}: skipped {damaged} damaged lines");
        }
        Ok(shares)
    }

    /// Appends `changes` to the journal, each made as it is written, and
    /// syncs it (one `fsync` for the batch); compacts once the journal
    /// outgrows the list.
    pub fn append(
        &mut self,
        changes: impl IntoIterator<Item = Change>,
    ) -> Result<(), StateFileError> {
        let mut changes = changes.into_iter().peekable();
        if changes.peek().is_none() {
            return Ok(());
        }
        if self.list_len <= EMPTY_LIST && self.journal_len == 0 {
            // Nothing remembered yet: the list is written, not a journal
            // to compact at once (what a first start sharing N files does).
            return self.write_list(&apply(Vec::new(), changes));
        }
        let file = state_file::open_appending(&self.journal)?;
        let mut w = BufWriter::with_capacity(64 * 1024, &file);
        let written = changes
            .try_for_each(|c| {
                serde_json::to_writer(&mut w, &c)?;
                w.write_all(b"\n")
            })
            .and_then(|()| w.flush());
        drop(w);
        let synced = written.and_then(|()| file.sync_data());
        let len = file.metadata().map(|m| m.len()).map_err(self.io())?;
        if let Err(e) = synced {
            // Nothing half-written stays to be read as a change.
            let _ = file.set_len(self.journal_len);
            return Err(self.io()(e));
        }
        self.journal_len = len;
        if self.journal_len > self.list_len.max(SHARES_JOURNAL_SLACK) {
            self.compact()?;
        }
        Ok(())
    }

    /// Rewrites the list with the journal applied, then empties the journal.
    fn compact(&mut self) -> Result<(), StateFileError> {
        let shares = self.read()?;
        self.write_list(&shares)?;
        let file: File = state_file::open_appending(&self.journal)?;
        file.set_len(0)
            .and_then(|()| file.sync_data())
            .map_err(self.io())?;
        self.journal_len = 0;
        Ok(())
    }

    /// Replaces the list with `shares`.
    fn write_list(&mut self, shares: &[Share]) -> Result<(), StateFileError> {
        let mut len = 0;
        state_file::write_with(&self.list, |w| {
            let mut counted = Counted { w, n: 0 };
            serde_json::to_writer_pretty(&mut counted, &shares)?;
            len = counted.n;
            Ok(())
        })?;
        self.list_len = len;
        Ok(())
    }
}

/// `shares` with `changes` applied in order, in O(shares + changes)
/// without copying a key: each share replaces any of its path or id, each
/// forget removes its id. A share is kept exactly when no later change
/// names its path or id, which one pass from the end finds.
pub fn apply(shares: Vec<Share>, changes: impl IntoIterator<Item = Change>) -> Vec<Share> {
    let all: Vec<Change> = shares
        .into_iter()
        .map(Change::Share)
        .chain(changes)
        .collect();
    let mut keep = vec![false; all.len()];
    let mut paths: HashSet<&Path> = HashSet::with_capacity(all.len());
    let mut ids: HashSet<&str> = HashSet::with_capacity(all.len());
    for (i, change) in all.iter().enumerate().rev() {
        match change {
            Change::Share(s) => {
                keep[i] = !paths.contains(s.path.as_path()) && !ids.contains(s.id.as_str());
                paths.insert(&s.path);
                ids.insert(&s.id);
            }
            Change::Forget(id) => {
                ids.insert(id);
            }
        }
    }
    drop((paths, ids));
    let kept = all.into_iter().zip(keep).filter(|(_, keep)| *keep);
    kept.filter_map(|(change, _)| match change {
        Change::Share(s) => Some(s),
        Change::Forget(_) => None,
    })
    .collect()
}

/// A writer that counts what passes through it.
struct Counted<W> {
    w: W,
    n: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.w.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

#[cfg(test)]
mod tests;
