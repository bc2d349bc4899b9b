//! The status page's privileged endpoints: which request is which, the
//! JSON bodies they take (unknown fields refused, so a typo is an error,
//! not a silent default), and carrying one out through [`Actions`] into a
//! JSON answer. Who may call them is [`authorize`](super::actions::authorize)'s
//! to say, before a body is read.

use serde::{Deserialize, Serialize};

use super::actions::{json_error, ActionError, Actions, Candidate, ShareView, Started};
use super::http::{Method, Response};

/// A privileged endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /api/download`.
    Download,
    /// `POST /api/cancel`.
    Cancel,
    /// `GET /api/shares`.
    Shares,
    /// `POST /api/share`.
    Share,
    /// `POST /api/unshare`.
    Unshare,
    /// `POST /api/resume`.
    Resume,
    /// `POST /api/limit`.
    Limit,
}

impl Endpoint {
    pub fn of(path: &str) -> Option<Endpoint> {
        match path {
            "/api/download" => Some(Endpoint::Download),
            "/api/cancel" => Some(Endpoint::Cancel),
            "/api/shares" => Some(Endpoint::Shares),
            "/api/share" => Some(Endpoint::Share),
            "/api/unshare" => Some(Endpoint::Unshare),
            "/api/resume" => Some(Endpoint::Resume),
            "/api/limit" => Some(Endpoint::Limit),
            _ => None,
        }
    }

    /// The methods it takes, for `Allow`.
    pub fn allow(self) -> &'static str {
        match self {
            Endpoint::Shares => "GET, HEAD",
            _ => "POST",
        }
    }

    /// Whether it is answered with `method`.
    pub fn takes(self, method: &Method) -> bool {
        match self {
            Endpoint::Shares => matches!(method, Method::Get | Method::Head),
            _ => *method == Method::Post,
        }
    }

    /// Whether it reads a body.
    pub fn has_body(self) -> bool {
        self != Endpoint::Shares
    }
}

/// `GET /api/shares`.
#[derive(Serialize)]
struct Shares {
    shares: Vec<ShareView>,
}

/// A `400` for a name several files have.
#[derive(Serialize)]
struct Ambiguous {
    error: String,
    candidates: Vec<Candidate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DownloadBody {
    target: String,
    #[serde(default)]
    out: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    key: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShareBody {
    path: String,
    #[serde(default)]
    private: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnshareBody {
    target: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResumeBody {
    #[serde(default)]
    which: Option<String>,
}

/// `POST /api/resume`'s answer.
#[derive(Serialize)]
struct Resumed {
    started: Vec<Started>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitBody {
    #[serde(default)]
    upload: Option<String>,
    #[serde(default)]
    download: Option<String>,
}

/// Carries out an authorized request to `endpoint` with `body` (a POST's
/// JSON; ignored for GET).
pub fn act(endpoint: Endpoint, body: &[u8], actions: &dyn Actions) -> Response {
    let result = match endpoint {
        Endpoint::Shares => {
            let shares = Shares {
                shares: actions.shares(),
            };
            return Response::json(200, to_json(&shares));
        }
        Endpoint::Download => parse::<DownloadBody>(body).map(|b| {
            let out = b.out.as_deref().filter(|o| !o.is_empty());
            actions.download(b.target.trim(), out).map(|s| to_json(&s))
        }),
        Endpoint::Cancel => {
            parse::<CancelBody>(body).map(|b| actions.cancel(b.key).map(|c| to_json(&c)))
        }
        Endpoint::Share => parse::<ShareBody>(body)
            .map(|b| actions.share(b.path.trim(), b.private).map(|s| to_json(&s))),
        Endpoint::Unshare => parse::<UnshareBody>(body)
            .map(|b| actions.unshare(b.target.trim()).map(|u| to_json(&u))),
        Endpoint::Resume => parse::<ResumeBody>(body).map(|b| {
            let which = b.which.as_deref().map(str::trim).filter(|w| !w.is_empty());
            actions
                .resume(which)
                .map(|started| to_json(&Resumed { started }))
        }),
        Endpoint::Limit => parse::<LimitBody>(body).map(|b| {
            actions
                .limit(given(&b.upload), given(&b.download))
                .map(|c| to_json(&c))
        }),
    };
    match result {
        Err(bad) => bad,
        Ok(Ok(json)) => Response::json(200, json),
        Ok(Err(ActionError::Invalid(error, candidates))) if !candidates.is_empty() => {
            Response::json(400, to_json(&Ambiguous { error, candidates }))
        }
        Ok(Err(e)) => json_error(e.status(), &e.to_string()),
    }
}

/// A field given with something in it (blank is not given).
fn given(field: &Option<String>) -> Option<&str> {
    field.as_deref().map(str::trim).filter(|f| !f.is_empty())
}

/// `value` as JSON, its fields in their declared order.
fn to_json(value: &impl Serialize) -> String {
    // Plain structs of strings and numbers always serialize.
    serde_json::to_string(value).unwrap_or_else(|e| json_error(500, &e.to_string()).body)
}

/// A JSON body as `T`, or the `400` that says what is wrong with it.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| json_error(400, &format!("bad request body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::actions::{Cancelling, Candidate};

    struct Fake;

    impl Actions for Fake {
        fn download(&self, target: &str, out: Option<&str>) -> Result<Started, ActionError> {
            match target {
                "x" => Ok(Started {
                    key: 3,
                    name: "x".into(),
                    id: "ab".repeat(32),
                    size: Some(5),
                    peers: 1,
                    out: out.unwrap_or("x").into(),
                }),
                "two" => Err(ActionError::Invalid(
                    "\"two\" is ambiguous; download one of them by id".into(),
                    vec![Candidate {
                        id: "cd".repeat(32),
                        name: "two".into(),
                        size: 1,
                        peers: 2,
                    }],
                )),
                _ => Err(ActionError::NotFound(format!("no {target}"))),
            }
        }

        fn cancel(&self, key: u64) -> Result<Cancelling, ActionError> {
            Err(ActionError::NotFound(format!("no {key}")))
        }

        fn shares(&self) -> Vec<ShareView> {
            Vec::new()
        }
    }

    #[test]
    fn bodies_are_json_and_answers_too() {
        let ok = act(Endpoint::Download, br#"{"target":" x ","out":""}"#, &Fake);
        assert_eq!(ok.status, 200);
        let value: serde_json::Value = serde_json::from_str(&ok.body).unwrap();
        assert_eq!(value["key"], 3);
        assert_eq!(value["out"], "x", "an empty out is no out");
        let out = act(Endpoint::Download, br#"{"target":"x","out":"d/"}"#, &Fake);
        assert!(out.body.contains(r#""out":"d/""#), "{}", out.body);
        let missing = act(Endpoint::Download, br#"{"target":"y"}"#, &Fake);
        assert_eq!(
            (missing.status, missing.body.as_str()),
            (404, r#"{"error":"no y"}"#)
        );
        let two = act(Endpoint::Download, br#"{"target":"two"}"#, &Fake);
        assert_eq!(two.status, 400);
        assert!(two.body.starts_with(r#"{"error":"\"two\" is ambiguous; download one of them by id","candidates":[{"id":"#), "{}", two.body);
        for bad in [
            &b"target=x"[..],
            b"{}",
            br#"{"target":1}"#,
            br#"{"target":"x","y":1}"#,
        ] {
            let r = act(Endpoint::Download, bad, &Fake);
            assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(bad));
            assert!(
                r.body.starts_with(r#"{"error":"bad request body: "#),
                "{}",
                r.body
            );
        }
        assert_eq!(act(Endpoint::Cancel, br#"{"key":7}"#, &Fake).status, 404);
        assert_eq!(act(Endpoint::Cancel, br#"{"key":"7"}"#, &Fake).status, 400);
        let shares = act(Endpoint::Shares, b"", &Fake);
        assert_eq!(
            (shares.status, shares.body.as_str()),
            (200, r#"{"shares":[]}"#)
        );
    }

    #[test]
    fn the_new_endpoints_read_their_bodies_and_answer_in_json() {
        for endpoint in [
            Endpoint::Share,
            Endpoint::Unshare,
            Endpoint::Resume,
            Endpoint::Limit,
        ] {
            assert_eq!(endpoint.allow(), "POST");
            assert!(endpoint.has_body());
        }
        assert_eq!(Endpoint::of("/api/share"), Some(Endpoint::Share));
        assert_eq!(Endpoint::of("/api/limit"), Some(Endpoint::Limit));
        // The trait's defaults (a tracker's page): a clear 404 each.
        let r = act(Endpoint::Share, br#"{"path":"a.txt"}"#, &Fake);
        assert_eq!(
            (r.status, r.body.as_str()),
            (404, r#"{"error":"sharing is not available here"}"#)
        );
        assert_eq!(
            act(Endpoint::Unshare, br#"{"target":"a"}"#, &Fake).status,
            404
        );
        assert_eq!(act(Endpoint::Resume, b"{}", &Fake).status, 404);
        assert_eq!(
            act(Endpoint::Limit, br#"{"upload":"1M"}"#, &Fake).status,
            404
        );
        for (endpoint, bad) in [
            (Endpoint::Share, &br#"{"path":1}"#[..]),
            (Endpoint::Share, br#"{}"#),
            (Endpoint::Unshare, br#"{"id":"a"}"#),
            (Endpoint::Resume, br#"{"which":2}"#),
            (Endpoint::Limit, br#"{"up":"1M"}"#),
        ] {
            let r = act(endpoint, bad, &Fake);
            assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(bad));
        }
    }
}
