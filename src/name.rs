//! File names as shared, listed and written by a download: one path
//! component, 1..=255 bytes, no `/`, `\`, control characters or surrounding
//! spaces, and not `.` or `..`. Checked wherever a name comes in (the
//! tracker's lists, links, tickets, `share`), so a hostile tracker or link
//! cannot steer a download outside the chosen directory. Nor any character
//! that could make one name look like another ([`is_deceptive`]): a
//! right-to-left override shows `report\u{202e}fdp.exe` as
//! `reportexe.pdf`, and a zero-width space or a byte-order mark makes a
//! second `report.pdf`. [`shown`] is how a name from elsewhere is shown to
//! a person, whatever it holds. Also: the known name closest to a mistyped
//! one ("did you mean"), for the tracker's names and the REPL's verbs alike.

use std::borrow::Cow;

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
        || name.chars().any(|c| c.is_control() || is_deceptive(c));
    if bad {
        Err(BadName(shown(name).chars().take(80).collect()))
    } else {
        Ok(())
    }
}

/// Whether `c` could deceive a person reading a name: a bidirectional
/// control (it reorders what follows), a line or paragraph separator, or a
/// character that shows nothing (zero-width space, joiners, byte-order
/// mark, soft hyphen, invisible operators, Hangul fillers, tags). The
/// emoji variation selectors (U+FE00-FE0F) are allowed: they change how
/// the character before them looks, never hide it. Zero-width joiners
/// are refused although some scripts and emoji sequences use them: a file
/// name does without them, and they make two names look the same.
pub fn is_deceptive(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// `text` (a name from another peer, or a line quoting one) as shown to a
/// person on a terminal, a page or in a log: each control or
/// [deceptive](is_deceptive) character written as `\u{XXXX}`, so nothing
/// it holds can reorder, hide or fake what is shown around it. Names are
/// already refused with such characters; this is the second line.
pub fn shown(text: &str) -> Cow<'_, str> {
    let escaped = |c: char| c.is_control() || is_deceptive(c);
    if !text.chars().any(escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if escaped(c) {
            out.push_str(&format!("\\u{{{:04x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
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

    /// Three names that a terminal shows as `report.pdf`, and their kin,
    /// are refused, and the refusal shows them escaped.
    #[test]
    fn names_that_look_like_others_are_refused() {
        for bad in [
            "report\u{202e}fdp.exe",
            "report\u{200b}.pdf",
            "\u{feff}report.pdf",
            "a\u{2066}b\u{2069}",
            "a\u{200e}b",
            "soft\u{ad}hyphen",
            "line\u{2028}break",
            "tag\u{e0041}",
        ] {
            let e = validate_name(bad).expect_err(bad).to_string();
            assert!(!e.chars().any(is_deceptive), "{e:?}");
        }
        assert_eq!(
            validate_name("report\u{202e}fdp.exe")
                .unwrap_err()
                .to_string(),
            "invalid file name: report\\u{202e}fdp.exe"
        );
        for good in ["❤\u{fe0f}.txt", "日本語.txt", "Ελληνικά", "עברית.txt"] {
            assert_eq!(validate_name(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn shown_escapes_what_would_deceive_and_nothing_else() {
        assert!(matches!(shown("plain ünï.txt"), Cow::Borrowed(_)));
        assert_eq!(
            shown("a\u{202e}b\tc\u{feff}"),
            "a\\u{202e}b\\u{0009}c\\u{feff}"
        );
        assert_eq!(shown("\u{1b}[31m"), "\\u{001b}[31m");
    }
}
