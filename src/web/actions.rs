//! What the status page can do beyond showing the status: start, cancel
//! and resume downloads, share a file by its path and stop sharing one,
//! set the bandwidth caps, and show the share links and tickets of shared
//! files (a private share's carry its secret). The server knows these only
//! as an [`Actions`] trait object; the peer passes one, the tracker none.
//! The endpoints and their bodies are in [`endpoints`](super::endpoints).
//!
//! Every such request is privileged: it must carry the per-run [`Token`] in
//! the `X-P2pshare-Token` header (the page reads it from the `?token=` of
//! the URL printed at start, as Jupyter does) and, if it has an `Origin`
//! header, come from the page's own origin. POST bodies are small JSON
//! objects; answers are JSON, errors `{"error": "..."}` with the one-line
//! text the REPL prints after `error: `.

use std::fmt;

use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::http::{Request, Response};
use crate::manifest::hex;

/// A per-run secret of 128 random bits, as 32 hex digits.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

/// The system's random source failed.
#[derive(Debug, Error)]
#[error("cannot generate the status page's token: no system randomness")]
pub struct NoRandomness;

impl Token {
    pub fn generate() -> Result<Token, NoRandomness> {
        let mut bytes = [0u8; 16];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| NoRandomness)?;
        Ok(Token(hex(&bytes)))
    }

    /// Whether `given` is this token, in time independent of where they
    /// differ (their lengths are not secret).
    pub fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), given.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
        std::hint::black_box(diff) == 0
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

/// A download the page started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    /// Its key in `/api/status` (and in the REPL's `status` and `cancel`).
    pub key: u64,
    pub name: String,
    pub id: String,
    /// `null` when neither the tracker nor the link said.
    pub size: Option<u64>,
    /// Peers found to download from.
    pub peers: usize,
    /// Where it is being saved.
    pub out: String,
}

/// A download the page is cancelling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancelling {
    pub key: u64,
    pub name: String,
}

/// A shared file and what others need to fetch it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareView {
    pub id: String,
    pub name: String,
    pub private: bool,
    pub link: String,
    pub ticket: String,
}

/// One of several files a name matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub id: String,
    pub name: String,
    pub size: u64,
    pub peers: u32,
}

/// Why an action was not carried out; the text is the REPL's.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ActionError {
    /// The request cannot be carried out as it is (a bad link, an output
    /// directory that does not exist, a name several files have).
    #[error("{0}")]
    Invalid(String, Vec<Candidate>),
    /// It names nothing there is (a file nobody has, no such download).
    #[error("{0}")]
    NotFound(String),
    /// It would overwrite something (a file, another download's output).
    #[error("{0}")]
    Conflict(String),
    /// The tracker, the DHT or the peers could not be asked.
    #[error("{0}")]
    Upstream(String),
    /// This peer failed (a thread, randomness, TLS).
    #[error("{0}")]
    Internal(String),
}

impl ActionError {
    pub fn status(&self) -> u16 {
        match self {
            ActionError::Invalid(..) => 400,
            ActionError::NotFound(_) => 404,
            ActionError::Conflict(_) => 409,
            ActionError::Upstream(_) => 502,
            ActionError::Internal(_) => 500,
        }
    }
}

/// What the page can ask a peer to do.
pub trait Actions: Send + Sync {
    /// Locates `target` (a ticket, link, name, id or id prefix) and starts
    /// downloading it to `out` (a file or a directory; default its name in
    /// the peer's working directory), in the background.
    fn download(&self, target: &str, out: Option<&str>) -> Result<Started, ActionError>;
    /// Cancels the running download `key`, keeping its verified chunks.
    fn cancel(&self, key: u64) -> Result<Cancelling, ActionError>;
    /// Every complete shared file, with its link and ticket.
    fn shares(&self) -> Vec<ShareView>;
    /// Hashes and shares the file at `path` (on the peer's machine).
    fn share(&self, _path: &str, _private: bool) -> Result<ShareView, ActionError> {
        Err(ActionError::NotFound(
            "sharing is not available here".into(),
        ))
    }
    /// Stops sharing the file `target` names (a name or an id prefix).
    fn unshare(&self, _target: &str) -> Result<Unshared, ActionError> {
        Err(ActionError::NotFound("nothing is shared here".into()))
    }
    /// Starts again the unfinished downloads `which` names (all: `None`).
    fn resume(&self, _which: Option<&str>) -> Result<Vec<Started>, ActionError> {
        Err(ActionError::NotFound("nothing to resume here".into()))
    }
    /// Sets the upload and download caps given (`"off"`, or a rate such as
    /// `500K`, `10M`); returns the caps in force.
    fn limit(&self, _up: Option<&str>, _down: Option<&str>) -> Result<Caps, ActionError> {
        Err(ActionError::NotFound("no caps to set here".into()))
    }
}

/// A share the page stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unshared {
    pub id: String,
    pub name: String,
}

/// Bandwidth caps in bytes per second (`null`: none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caps {
    pub upload: Option<u64>,
    pub download: Option<u64>,
}

/// `{"error": text}` with `status`.
pub fn json_error(status: u16, text: &str) -> Response {
    Response::json(status, serde_json::json!({ "error": text }).to_string())
}

/// Refuses a privileged request that lacks the token or comes from another
/// origin: `403` (checked before its body is read).
pub fn authorize(req: &Request, token: &Token) -> Result<(), Response> {
    if let Some(origin) = &req.origin {
        let own = req.host.as_ref().map(|h| format!("http://{h}"));
        if !own.is_some_and(|own| own.eq_ignore_ascii_case(origin)) {
            return Err(json_error(
                403,
                &format!("origin {origin:?} is not this page's"),
            ));
        }
    }
    match &req.token {
        Some(given) if token.matches(given) => Ok(()),
        Some(_) => Err(json_error(403, "wrong token")),
        None => Err(json_error(
            403,
            "missing token: open the page at the address the peer printed at start (it ends in ?token=...)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::http::Method;

    #[test]
    fn tokens_are_random_hex_and_compare_exactly() {
        let (a, b) = (Token::generate().unwrap(), Token::generate().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 32);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(a.matches(a.as_str()));
        assert!(!a.matches(b.as_str()));
        assert!(!a.matches(&a.as_str()[..31]));
        assert!(!a.matches(""));
        assert_eq!(format!("{a:?}"), "Token(..)", "never logged");
    }

    fn req(host: &str, origin: Option<&str>, token: Option<&str>) -> Request {
        Request {
            method: Method::Post,
            path: "/api/cancel".into(),
            host: Some(host.into()),
            origin: origin.map(str::to_string),
            token: token.map(str::to_string),
            ..Request::default()
        }
    }

    #[test]
    fn a_privileged_request_needs_the_token_and_the_pages_origin() {
        let t = Token::generate().unwrap();
        let good = Some(t.as_str());
        let host = "127.0.0.1:8090";
        assert!(authorize(&req(host, None, good), &t).is_ok());
        assert!(authorize(&req(host, Some("http://127.0.0.1:8090"), good), &t).is_ok());
        assert!(authorize(&req("LOCALHOST:1", Some("http://localhost:1"), good), &t).is_ok());
        for (origin, token) in [
            (None, None),
            (None, Some("0".repeat(32).as_str())),
            (Some("http://evil.example"), good),
            (Some("null"), good),
            (Some("http://127.0.0.1:8091"), good),
            (Some("https://127.0.0.1:8090"), good),
        ] {
            let refused = authorize(&req(host, origin, token), &t).unwrap_err();
            assert_eq!(refused.status, 403, "{origin:?} {token:?}");
            assert!(refused.body.starts_with("{\"error\":"), "{}", refused.body);
        }
    }
}
