//! File names as shared, listed and written by a download: one path
//! component, 1..=255 bytes, no `/`, `\`, control characters or surrounding
//! spaces, and not `.` or `..`. Checked wherever a name comes in (the
//! tracker's lists, links, tickets, `share`), so a hostile tracker or link
//! cannot steer a download outside the chosen directory.

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

#[cfg(test)]
mod tests {
    use super::*;

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
