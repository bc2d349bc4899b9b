//! What a peer knows of its tracker's id: given with `--tracker-id`, else
//! learned on first contact and kept in the state directory's
//! `known_trackers`, one `ADDRESS ID` line per tracker (as ssh's
//! `known_hosts`).
//!
//! A `known_trackers` that is damaged (a line cut short, bytes that are not
//! UTF-8) refuses the start, naming the file and the fix: read leniently,
//! it would let whichever tracker answers be pinned in place of the real
//! one. The file is read and rewritten whole through
//! [`state_file`](crate::state_file), never appended to, so no crash can
//! cut a line short.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::bounds::MAX_STATE_FILE;
use crate::error::Error;
use crate::identity::PeerId;
use crate::state_file::{self, StateFileError};
use crate::sync::LockExt;

/// What this peer knows of its tracker's id.
pub struct TrackerPin {
    expected: Mutex<Option<PeerId>>,
    /// `--tracker-id`: never learned, never stored.
    explicit: bool,
    /// The `known_trackers` file, and this tracker's key in it.
    store: Option<PathBuf>,
    key: String,
}

impl TrackerPin {
    /// The pin for the tracker at `addr`: `explicit`, else what `store`
    /// (a `known_trackers` file, if any) says, else none yet. A store that
    /// cannot be read, or is damaged, is an error.
    pub fn new(
        addr: &str,
        explicit: Option<PeerId>,
        store: Option<PathBuf>,
    ) -> Result<TrackerPin, StateFileError> {
        let known = match (&explicit, &store) {
            (None, Some(path)) => known_trackers(path)?
                .into_iter()
                .find_map(|(key, id)| (key == addr).then_some(id)),
            _ => None,
        };
        Ok(TrackerPin {
            expected: Mutex::new(explicit.or(known)),
            explicit: explicit.is_some(),
            store,
            key: addr.to_string(),
        })
    }

    /// The id the tracker must have, if one is known.
    pub fn expected(&self) -> Option<PeerId> {
        *self.expected.locked()
    }

    /// First contact: `id` is the tracker's from now on, kept in the store.
    pub(super) fn learned(&self, id: PeerId) {
        let mut expected = self.expected.locked();
        if expected.is_some() || self.explicit {
            return;
        }
        *expected = Some(id);
        if let Some(path) = &self.store {
            if let Err(e) = remember(path, &self.key, id) {
                log::warn!("cannot remember tracker {}: {e}", self.key);
            }
        }
        log::info!("tracker {} has id {id}; pinned from now on", self.key);
    }

    /// The error for a tracker whose certificate is not the pinned one.
    pub(super) fn changed(&self, e: &str) -> Error {
        let (where_, fix) = match (&self.store, self.explicit) {
            (_, true) => (
                "given with --tracker-id".to_string(),
                "check the id the tracker prints and pass that with --tracker-id".to_string(),
            ),
            (Some(path), false) => (
                format!("remembered in {}", path.display()),
                "if the tracker's identity really changed, remove its line from known_trackers or pass --tracker-id NEW_ID".to_string(),
            ),
            (None, false) => (
                "seen earlier".to_string(),
                "if the tracker's identity really changed, pass --tracker-id NEW_ID".to_string(),
            ),
        };
        Error::WrongIdentity(format!("{e}; the id {where_} no longer matches: {fix}"))
    }
}

/// Every `(address, id)` pin in the `known_trackers` file at `path` (none
/// if there is no such file). Each line is `ADDRESS ID`; any other line
/// makes the whole file damaged, since a line cut short may have been the
/// pin of the tracker asked for.
fn known_trackers(path: &Path) -> Result<Vec<(String, PeerId)>, StateFileError> {
    let Some(bytes) = state_file::read(path, MAX_STATE_FILE)? else {
        return Ok(Vec::new());
    };
    let damaged = |n: usize, why: &str| StateFileError::Damaged {
        path: path.to_path_buf(),
        why: format!("line {n} {why}"),
        fix: "fix or remove that line (a tracker with no line is pinned again at first \
              contact), or pass --tracker-id ID"
            .into(),
    };
    let mut pins = Vec::new();
    for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let n = n + 1;
        let line = std::str::from_utf8(line).map_err(|_| damaged(n, "is not UTF-8"))?;
        if line.trim().is_empty() {
            continue;
        }
        let (key, id) = line
            .split_once(' ')
            .ok_or_else(|| damaged(n, "has no id after the address"))?;
        let id = id
            .trim()
            .parse()
            .map_err(|_| damaged(n, "has no whole tracker id"))?;
        pins.push((key.to_string(), id));
    }
    Ok(pins)
}

/// Adds `key`'s pin `id` to the `known_trackers` file at `path`, rewriting
/// it whole; a damaged file is left as it is.
fn remember(path: &Path, key: &str, id: PeerId) -> Result<(), StateFileError> {
    let mut text = String::new();
    for (k, known) in known_trackers(path)? {
        text.push_str(&format!("{k} {known}\n"));
    }
    text.push_str(&format!("{key} {id}\n"));
    state_file::write(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_pin_file_is_refused_and_kept_as_it_is() {
        let d = crate::testing::temp_dir("known-trackers");
        let path = d.join("known_trackers");
        let id = PeerId([7; 16]);
        remember(&path, "a:1", id).unwrap();
        remember(&path, "b:2", id).unwrap();
        let whole = std::fs::read(&path).unwrap();
        assert_eq!(whole, format!("a:1 {id}\nb:2 {id}\n").as_bytes());
        let pin = TrackerPin::new("b:2", None, Some(path.clone())).unwrap();
        assert_eq!(pin.expected(), Some(id));
        let cut = [&whole[..whole.len() - 5], b"\n"].concat();
        let not_utf8 = [&whole[..], b"c:3 \xff\n"].concat();
        let no_id = [&whole[..], b"c:3\n"].concat();
        for (bytes, why) in [
            (cut, "line 2 has no whole tracker id"),
            (not_utf8, "line 3 is not UTF-8"),
            (no_id, "line 3 has no id after the address"),
        ] {
            std::fs::write(&path, &bytes).unwrap();
            let e = TrackerPin::new("x:9", None, Some(path.clone()))
                .err()
                .expect("refused")
                .to_string();
            assert!(
                e.contains(&format!("known_trackers is damaged ({why})")),
                "{e}"
            );
            assert!(e.contains("--tracker-id"), "{e}");
            assert!(remember(&path, "x:9", id).is_err());
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "left as it was");
        }
        let _ = std::fs::remove_dir_all(d);
    }
}
