//! Line framing and tokenising, on bytes and strings only (no sockets), so
//! every bound can be unit-tested and fuzzed: a line is at most `MAX_LINE`
//! bytes including its `\n`, UTF-8, with an optional `\r` before the `\n`.

use thiserror::Error;

use crate::name::BadName;

/// Why a line could not be parsed. Framing errors (see [`ParseError::is_fatal`])
/// mean the sender does not speak the protocol, so the connection is closed
/// after the `ERR` reply; every other error leaves the connection usable.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ParseError {
    #[error("line too long (limit {0} bytes)")]
    LineTooLong(usize),
    #[error("line is not valid UTF-8")]
    NotUtf8,
    #[error("line contains a control character")]
    ControlChar,
    #[error("empty request")]
    Empty,
    #[error("unknown command: {0}")]
    UnknownCommand(String),
    #[error("missing argument: {0}")]
    Missing(&'static str),
    #[error("invalid {what}: {value}")]
    Invalid { what: &'static str, value: String },
    #[error("unexpected argument: {0}")]
    Extra(String),
    #[error("malformed reply: {0}")]
    BadReply(String),
}

impl ParseError {
    /// Whether the connection must be closed after reporting this error:
    /// the sender is not speaking this protocol (binary garbage, no line end).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ParseError::LineTooLong(_) | ParseError::NotUtf8 | ParseError::ControlChar
        )
    }

    pub(crate) fn invalid(what: &'static str, value: &str) -> Self {
        ParseError::Invalid {
            what,
            value: value.chars().take(80).collect(),
        }
    }
}

impl From<BadName> for ParseError {
    fn from(BadName(value): BadName) -> Self {
        ParseError::Invalid {
            what: "file name",
            value,
        }
    }
}

/// The result of looking for one line at the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line: its length without the terminator, and the number of
    /// bytes to consume (including `\n`).
    Line { len: usize, consumed: usize },
    /// No `\n` yet, and still under the bound: read more.
    Incomplete,
    /// No `\n` within `max` bytes: the peer is broken or hostile.
    TooLong,
}

/// Finds the first line in `buf`, if it is complete and within `max` bytes
/// (terminator included). A trailing `\r` is not part of the line.
pub fn split_line(buf: &[u8], max: usize) -> Frame {
    let window = &buf[..buf.len().min(max)];
    match window.iter().position(|&b| b == b'\n') {
        Some(nl) => {
            let len = if nl > 0 && window[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            };
            Frame::Line {
                len,
                consumed: nl + 1,
            }
        }
        None if buf.len() >= max => Frame::TooLong,
        None => Frame::Incomplete,
    }
}

/// Checks a framed line's bytes and returns it as text.
pub fn line_text(line: &[u8]) -> Result<&str, ParseError> {
    let text = std::str::from_utf8(line).map_err(|_| ParseError::NotUtf8)?;
    if text.chars().any(char::is_control) {
        return Err(ParseError::ControlChar);
    }
    Ok(text)
}

/// Splits off the first space-separated word: `("GET", "rest of line")`.
/// Leading spaces are skipped; the rest keeps its inner spaces.
pub fn next_word(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches(' ');
    match s.find(' ') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    }
}

/// Tokens of a line, consumed front to back with named errors.
pub struct Args<'a> {
    rest: &'a str,
}

impl<'a> Args<'a> {
    pub fn new(rest: &'a str) -> Self {
        Args { rest }
    }

    /// The next word, required.
    pub fn word(&mut self, what: &'static str) -> Result<&'a str, ParseError> {
        let (w, rest) = next_word(self.rest);
        self.rest = rest;
        if w.is_empty() {
            Err(ParseError::Missing(what))
        } else {
            Ok(w)
        }
    }

    /// The next word parsed as `T`.
    pub fn parse<T: std::str::FromStr>(&mut self, what: &'static str) -> Result<T, ParseError> {
        let w = self.word(what)?;
        w.parse().map_err(|_| ParseError::invalid(what, w))
    }

    /// The next word as a canonical decimal number: digits only, no sign,
    /// no leading zeros, so every number has exactly one spelling.
    pub fn number<T: std::str::FromStr>(&mut self, what: &'static str) -> Result<T, ParseError> {
        let w = self.word(what)?;
        let canonical = w.bytes().all(|b| b.is_ascii_digit()) && (w == "0" || !w.starts_with('0'));
        canonical
            .then(|| w.parse().ok())
            .flatten()
            .ok_or_else(|| ParseError::invalid(what, w))
    }

    /// The next word as a TCP port, 1..=65535.
    pub fn port(&mut self) -> Result<u16, ParseError> {
        match self.number("port")? {
            0 => Err(ParseError::invalid("port", "0")),
            port => Ok(port),
        }
    }

    /// Everything left, as is (may be empty or contain spaces).
    pub fn rest(self) -> &'a str {
        self.rest
    }

    /// Whether nothing but spaces is left.
    pub fn is_done(&self) -> bool {
        self.rest.trim_matches(' ').is_empty()
    }

    /// Fails if anything but spaces is left.
    pub fn end(self) -> Result<(), ParseError> {
        match self.rest.trim_matches(' ') {
            "" => Ok(()),
            extra => Err(ParseError::Extra(extra.chars().take(80).collect())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_line_handles_every_split_point() {
        let data = b"HELLO 1\r\nSEARCH\n";
        for cut in 0..=data.len() {
            let got = split_line(&data[..cut], 64);
            if cut < 9 {
                assert_eq!(got, Frame::Incomplete, "cut {cut}");
            } else {
                assert_eq!(
                    got,
                    Frame::Line {
                        len: 7,
                        consumed: 9
                    },
                    "cut {cut}"
                );
            }
        }
    }

    #[test]
    fn split_line_enforces_the_bound_including_newline() {
        assert_eq!(
            split_line(b"abc\n", 4),
            Frame::Line {
                len: 3,
                consumed: 4
            }
        );
        assert_eq!(split_line(b"abcd\n", 4), Frame::TooLong);
        assert_eq!(split_line(b"abcd", 4), Frame::TooLong);
        assert_eq!(split_line(b"abc", 4), Frame::Incomplete);
        assert_eq!(
            split_line(b"\n", 4),
            Frame::Line {
                len: 0,
                consumed: 1
            }
        );
    }

    #[test]
    fn line_text_rejects_bad_bytes() {
        assert_eq!(line_text(b"ok fine"), Ok("ok fine"));
        assert_eq!(line_text(b"tab\tno"), Err(ParseError::ControlChar));
        assert_eq!(line_text(&[0xc3, 0x28]), Err(ParseError::NotUtf8));
        assert_eq!(line_text(b"a\0b"), Err(ParseError::ControlChar));
        assert_eq!(line_text(b"a\rb"), Err(ParseError::ControlChar));
    }

    #[test]
    fn args_name_what_is_missing_or_extra() {
        let mut a = Args::new("  12 x  rest of it");
        assert_eq!(a.parse::<u16>("port"), Ok(12));
        assert_eq!(a.word("w"), Ok("x"));
        assert_eq!(a.rest(), " rest of it");
        let mut a = Args::new("");
        assert_eq!(a.word("id"), Err(ParseError::Missing("id")));
        let mut a = Args::new("70000");
        assert!(matches!(
            a.parse::<u16>("port"),
            Err(ParseError::Invalid { .. })
        ));
        assert_eq!(Args::new(" x ").end(), Err(ParseError::Extra("x".into())));
        assert_eq!(Args::new("  ").end(), Ok(()));
        for bad in ["+1", "01", "-0", "1.0", "0x1", ""] {
            assert!(Args::new(bad).number::<u64>("n").is_err(), "{bad:?}");
        }
        assert_eq!(Args::new("0 10").number::<u64>("n"), Ok(0));
        assert!(Args::new("0").port().is_err());
        assert_eq!(Args::new("65535").port(), Ok(65535));
    }
}
