//! File names as shared, listed and written by a download: one path
//! component, 1..=255 bytes, no `/`, `\`, control characters or surrounding
//! spaces, and not `.` or `..`. Checked wherever a name comes in (the
//! tracker's lists, links, tickets, `share`), so a hostile tracker or link
//! cannot steer a download outside the chosen directory. Also: the known name
//! closest to a mistyped one ("did you mean"), for the tracker's names and
//! the REPL's verbs alike.

use thiserror::Error;

use crate::bounds::MAX_NAME_LEN;

/// A name that is not one safe component (its first 80 characters).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("invalid file name: {0}")]
pub struct BadName(pub(crate) String);

/// Whether `name` is one safe path component (see the module docs).
pub fn validate_name(name: &str) -> Result<(), BadName> {
    let bad = name.is_empty()
        || name.len() > MAX_NAME_LEN
        || name == "."
        || name == ".."
        || name.trim() != name
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control);
    if bad {
        Err(BadName(name.chars().take(80).collect()))
    } else {
        Ok(())
    }
}

/// The option closest to `typed`: equal but for case, or at most two edits
/// away (one for short words). `None` if nothing is that close.
pub fn closest<'o>(typed: &str, options: impl IntoIterator<Item = &'o str>) -> Option<&'o str> {
    let lower = typed.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for option in options {
        let d = match option.to_lowercase() == lower {
            true => 0,
            false => edit_distance(&lower, &option.to_lowercase()),
        };
        let allowed = if typed.chars().count() <= 4 { 1 } else { 2 };
        if d <= allowed && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, option));
        }
    }
    best.map(|(_, o)| o)
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_are_found() {
        assert_eq!(
            closest("readme.TXT", ["README.txt", "other"]),
            Some("README.txt")
        );
        assert_eq!(closest("sampel.txt", ["sample.txt"]), Some("sample.txt"));
        assert_eq!(closest("ab", ["xy"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn names_are_single_safe_components() {
        for good in ["sample.txt", "a b", "ünïcödé", ".hidden", &"x".repeat(255)] {
            assert_eq!(validate_name(good), Ok(()), "{good:?}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a\\b",
            " lead",
            "trail ",
            "tab\t",
            &"x".repeat(256),
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }
}
