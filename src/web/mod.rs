//! The status page server behind `--http PORT` of both binaries. `GET /` is
//! one HTML page (`status.html` with `status.js` inlined: no build step, no
//! external assets) that polls
//! `GET /api/status` (JSON) every second; the page also carries the status
//! of the moment it was served, so it shows something before its first poll.
//! The API is documented in docs/STATUS_API.md.
//!
//! A peer's page can also act ([`actions`]): start and cancel downloads and
//! show share links and tickets. Those requests need the per-run token of
//! the URL the peer prints at start, so neither another web site nor another
//! user who can reach the port can use them; the status itself stays
//! readable without it. The tracker's page has no actions.
//!
//! This is a deliberately tiny HTTP/1.1 responder ([`http`]) on the crate's
//! own accept loop ([`server::spawn`]): connections are capped in all and
//! per IP, a failed accept backs off, and the request (head and body) must
//! arrive within [`HTTP_HEAD_DEADLINE`](crate::bounds::HTTP_HEAD_DEADLINE).
//! (tiny_http was considered: its accept thread hands each connection to a
//! pool that grows a thread per open connection with no cap and no read
//! timeout, whatever number of threads call `recv()`.) One request per
//! connection (`Connection: close`).
//!
//! The page shows file names chosen by other peers, so it writes them with
//! `textContent` only, and a Content-Security-Policy forbids everything but
//! its own inline script and style and requests to itself. Requests whose
//! `Host` is not an IP address or `localhost` are refused, so a web site
//! cannot read the API through DNS rebinding.

pub mod actions;
pub mod endpoints;
pub mod http;
pub mod peer;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Instant;

use self::actions::{authorize, json_error, Actions, Token};
use self::endpoints::{act, Endpoint};
use self::http::{host_allowed, read_body, read_request, HttpError, Method, Request, Response};
use crate::bounds::HTTP_CAPS;
use crate::protocol::Connection;
use crate::server::{self, Security, ServerHandle};

/// The page's markup and style, for both roles, and its script (kept apart
/// so it can be checked as JavaScript); it picks its layout from the
/// status's `role`.
pub const HTML: &str = include_str!("status.html");
/// The page's script: the status display, then the forms that act.
pub const SCRIPT: &str = concat!(include_str!("status.js"), include_str!("forms.js"));

/// Where the script goes in the markup.
const SCRIPT_MARK: &str = "/*SCRIPT*/";

/// Where the page's initial status goes; replaced when the page is served.
const INITIAL_MARK: &str = "/*INITIAL_STATUS*/null";

/// Produces the status JSON; called once per request that needs it.
pub type StatusFn = dyn Fn() -> String + Send + Sync;

/// What a page can do beyond showing the status, and the token that
/// unlocks it.
pub struct Controls {
    pub actions: Arc<dyn Actions>,
    pub token: Token,
}

/// Everything a status page serves.
pub struct Site {
    pub status: Arc<StatusFn>,
    /// `None`: a read-only page (the tracker's).
    pub controls: Option<Controls>,
}

/// Binds `addr` and serves `site` on threads of its own until the handle is
/// stopped; `local_addr` has the real port when `addr` asks for 0.
pub fn start(addr: SocketAddr, site: Site) -> io::Result<ServerHandle> {
    let listener = TcpListener::bind(addr)?;
    let site = Arc::new(site);
    server::spawn(listener, HTTP_CAPS, Security::Plain, "http", move |conn| {
        handle(conn, &site)
    })
}

/// What to do with a request whose head has been read.
pub enum Plan<'a> {
    /// Answer at once.
    Answer(Response),
    /// An authorized privileged request: read its body (if it has one) and
    /// act.
    Act(Endpoint, &'a Controls),
}

/// Picks the answer for a parsed request, or the action it authorizes.
pub fn plan<'a>(req: &Request, site: &'a Site) -> Plan<'a> {
    if let Some(host) = &req.host {
        if !host_allowed(host) {
            return Plan::Answer(Response::text(
                403,
                HttpError::Host(host.clone()).to_string(),
            ));
        }
    }
    let readable = matches!(req.method, Method::Get | Method::Head);
    let answer = match req.path.as_str() {
        "/" | "/index.html" if readable => Response::html(page_with(&(site.status)())),
        "/api/status" if readable => Response::json(200, (site.status)()),
        "/" | "/index.html" | "/api/status" => Response::not_allowed(&req.method, "GET, HEAD"),
        path => match (Endpoint::of(path), &site.controls) {
            (Some(endpoint), Some(controls)) => return privileged(req, endpoint, controls),
            _ => Response::text(404, format!("no such page: {path}")),
        },
    };
    Plan::Answer(answer)
}

/// A request to a privileged endpoint: the right method, the token, the
/// page's origin and a JSON body, checked in that order.
fn privileged<'a>(req: &Request, endpoint: Endpoint, controls: &'a Controls) -> Plan<'a> {
    if !endpoint.takes(&req.method) {
        return Plan::Answer(Response::not_allowed(&req.method, endpoint.allow()));
    }
    if let Err(refused) = authorize(req, &controls.token) {
        return Plan::Answer(refused);
    }
    let json = req.content_type.as_deref().is_some_and(|t| {
        let essence = t.split(';').next().unwrap_or(t).trim();
        essence.eq_ignore_ascii_case("application/json")
    });
    if endpoint.has_body() && !json {
        return Plan::Answer(json_error(415, "the body must be application/json"));
    }
    Plan::Act(endpoint, controls)
}

/// The page, one HTML file, with `json` embedded as its initial status.
/// `<` is escaped so nothing in the data can close the script element.
pub fn page_with(json: &str) -> String {
    let script = SCRIPT.replacen(INITIAL_MARK, &json.replace('<', "\\u003c"), 1);
    HTML.replacen(SCRIPT_MARK, &script, 1)
}

/// Serves one connection: one request, one response, close.
fn handle(mut conn: Connection, site: &Site) {
    let (response, head_only) = match read_request(&mut conn) {
        Ok(None) => return,
        Ok(Some((req, deadline))) => (
            serve(&mut conn, &req, deadline, site),
            req.method == Method::Head,
        ),
        Err(e) => (Response::text(e.status(), e.to_string()), false),
    };
    let (head, body) = response.encode(head_only);
    if let Err(e) = conn.write_with_payload(head.as_bytes(), body) {
        log::debug!("http {}: {e}", conn.peer_addr());
    }
    if response.status >= 400 {
        // A refused request's body may be unread: closing on it would reset
        // the connection, and a reset can lose the answer.
        conn.linger_close();
    } else {
        conn.shutdown_write();
    }
}

/// The response to `req`, reading its body (by `deadline`) if it is an
/// authorized action.
fn serve(conn: &mut Connection, req: &Request, deadline: Instant, site: &Site) -> Response {
    match plan(req, site) {
        Plan::Answer(response) => response,
        Plan::Act(endpoint, controls) => {
            let body = match endpoint.has_body() {
                true => match read_body(conn, req, deadline) {
                    Ok(body) => body,
                    Err(e) => return json_error(e.status(), &e.to_string()),
                },
                false => Vec::new(),
            };
            act(endpoint, &body, &*controls.actions)
        }
    }
}

#[cfg(test)]
mod tests;
