//! The status page server behind `--http PORT` of both binaries. `GET /` is
//! one embedded HTML file (no build step, no external assets) that polls
//! `GET /api/status` (JSON) every second; the page also carries the status
//! of the moment it was served, so it shows something before its first poll.
//! The API is documented in docs/STATUS_API.md.
//!
//! This is a deliberately tiny HTTP/1.1 responder on the crate's own accept
//! loop ([`accept::spawn`](crate::net::accept::spawn)): connections are capped in all and per IP, a
//! failed accept backs off, and the request head must arrive within
//! [`HTTP_HEAD_DEADLINE`]. (tiny_http was considered: its accept thread hands each
//! connection to a pool that grows a thread per open connection with no cap
//! and no read timeout, whatever number of threads call `recv()`.) One request
//! per connection (`Connection: close`); GET and HEAD only.
//!
//! The page shows file names chosen by other peers, so it writes them with
//! `textContent` only, and a Content-Security-Policy forbids everything but
//! its own inline script and style and requests to itself. Requests whose
//! `Host` is not an IP address or `localhost` are refused, so a web site
//! cannot read the API through DNS rebinding.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Instant;

use thiserror::Error;

use crate::bounds::{HTTP_CAPS, HTTP_HEAD_DEADLINE, HTTP_MAX_HEADERS};
use crate::error::Error;
use crate::net::accept::{self as server, Security, ServerHandle};
use crate::protocol::{Connection, ParseError};

/// The page, for both roles; it picks its layout from the status's `role`.
pub const PAGE: &str = include_str!("web/status.html");

/// Where the page's initial status goes; replaced when the page is served.
const INITIAL_MARK: &str = "/*INITIAL_STATUS*/null";

/// Produces the status JSON; called once per request that needs it.
pub type StatusFn = dyn Fn() -> String + Send + Sync;

/// Binds `addr` and serves the status page on threads of its own until the
/// handle is stopped; `local_addr` has the real port when `addr` asks for 0.
pub fn start(addr: SocketAddr, status: Arc<StatusFn>) -> io::Result<ServerHandle> {
    let listener = TcpListener::bind(addr)?;
    server::spawn(
        listener,
        HTTP_CAPS,
        Security::Plain,
        "http",
        move |mut conn| handle(&mut conn, &*status),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
}

/// Why a request cannot be served.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HttpError {
    #[error("malformed request line")]
    BadRequest,
    #[error("method {0} not allowed")]
    Method(String),
    #[error("unsupported HTTP version {0}")]
    Version(String),
    #[error("header line too long")]
    HeaderTooLong,
    #[error("more than {HTTP_MAX_HEADERS} header lines")]
    TooManyHeaders,
    #[error("host {0:?} not allowed")]
    Host(String),
}

/// A request's line and the one header that matters.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The path without its query string.
    pub path: String,
    pub host: Option<String>,
}

/// Parses `GET /path?query HTTP/1.1` into the method and the path.
pub fn parse_request_line(line: &str) -> Result<(Method, String), HttpError> {
    let mut words = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(HttpError::BadRequest);
    };
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Version(version.chars().take(16).collect()));
    }
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        m if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => {
            return Err(HttpError::Method(m.to_string()))
        }
        _ => return Err(HttpError::BadRequest),
    };
    if !target.starts_with('/') {
        return Err(HttpError::BadRequest);
    }
    let path = target.split(['?', '#']).next().unwrap_or(target);
    Ok((method, path.to_string()))
}

/// Whether a `Host` header names this machine in a way a DNS-rebinding page
/// cannot: an IP address or `localhost`, with or without a port.
pub fn host_allowed(host: &str) -> bool {
    let is_port = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = host.strip_prefix('[') {
        // `[v6]` or `[v6]:port`
        return match rest.split_once(']') {
            Some((ip, "")) => ip.parse::<IpAddr>().is_ok(),
            Some((ip, port)) => {
                port.strip_prefix(':').is_some_and(is_port) && ip.parse::<IpAddr>().is_ok()
            }
            None => false,
        };
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if is_port(port) => name,
        _ => host,
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok()
}

/// Reads the request head within [`HTTP_HEAD_DEADLINE`]; `Ok(None)` if the client
/// closed without sending anything.
fn read_request(conn: &mut Connection) -> Result<Option<Request>, HttpError> {
    let deadline = Instant::now() + HTTP_HEAD_DEADLINE;
    let next_line = |conn: &mut Connection| -> Result<Option<String>, HttpError> {
        let left = deadline.saturating_duration_since(Instant::now());
        match conn.read_line(left) {
            Ok(line) => Ok(line),
            Err(Error::Protocol(ParseError::LineTooLong(_))) => Err(HttpError::HeaderTooLong),
            Err(_) => Err(HttpError::BadRequest),
        }
    };
    let Some(first) = next_line(conn)? else {
        return Ok(None);
    };
    let (method, path) = parse_request_line(&first)?;
    let mut host = None;
    for _ in 0..HTTP_MAX_HEADERS {
        let line = next_line(conn)?.ok_or(HttpError::BadRequest)?;
        if line.is_empty() {
            return Ok(Some(Request { method, path, host }));
        }
        let (name, value) = line.split_once(':').ok_or(HttpError::BadRequest)?;
        if name.eq_ignore_ascii_case("host") {
            host = Some(value.trim().to_string());
        }
    }
    Err(HttpError::TooManyHeaders)
}

/// A response before encoding.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Response {
    fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into() + "\n",
        }
    }

    /// The status line, headers and (unless `head_only`) the body.
    pub fn encode(&self, head_only: bool) -> (String, &[u8]) {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            431 => "Request Header Fields Too Large",
            505 => "HTTP Version Not Supported",
            _ => "Error",
        };
        let mut head = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
             Connection: close\r\n",
            self.status,
            self.content_type,
            self.body.len()
        );
        if self.status == 405 {
            head.push_str("Allow: GET, HEAD\r\n");
        }
        if self.content_type.starts_with("text/html") {
            head.push_str(
                "Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; \
                 style-src 'unsafe-inline'; connect-src 'self'; img-src data:\r\n",
            );
        }
        head.push_str("\r\n");
        let body: &[u8] = if head_only { &[] } else { self.body.as_bytes() };
        (head, body)
    }
}

/// Picks the response for a parsed request.
pub fn route(req: &Request, status: &StatusFn) -> Response {
    if let Some(host) = &req.host {
        if !host_allowed(host) {
            return Response::text(403, HttpError::Host(host.clone()).to_string());
        }
    }
    match req.path.as_str() {
        "/" | "/index.html" => Response {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: page_with(&status()),
        },
        "/api/status" => Response {
            status: 200,
            content_type: "application/json",
            body: status(),
        },
        _ => Response::text(404, format!("no such page: {}", req.path)),
    }
}

/// The page with `json` embedded as its initial status. `<` is escaped so
/// nothing in the data can close the script element.
pub fn page_with(json: &str) -> String {
    PAGE.replacen(INITIAL_MARK, &json.replace('<', "\\u003c"), 1)
}

fn error_response(e: &HttpError) -> Response {
    let status = match e {
        HttpError::Method(_) => 405,
        HttpError::Version(_) => 505,
        HttpError::HeaderTooLong | HttpError::TooManyHeaders => 431,
        HttpError::Host(_) => 403,
        HttpError::BadRequest => 400,
    };
    Response::text(status, e.to_string())
}

/// Serves one connection: one request, one response, close.
fn handle(conn: &mut Connection, status: &StatusFn) {
    let (response, head_only) = match read_request(conn) {
        Ok(None) => return,
        Ok(Some(req)) => (route(&req, status), req.method == Method::Head),
        Err(e) => (error_response(&e), false),
    };
    let (head, body) = response.encode(head_only);
    if let Err(e) = conn.write_with_payload(head.as_bytes(), body) {
        log::debug!("http {}: {e}", conn.peer_addr());
    }
    conn.shutdown_write();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            parse_request_line("GET / HTTP/1.1"),
            Ok((Method::Get, "/".into()))
        );
        assert_eq!(
            parse_request_line("HEAD /api/status?t=1 HTTP/1.0"),
            Ok((Method::Head, "/api/status".into()))
        );
        assert_eq!(
            parse_request_line("POST / HTTP/1.1"),
            Err(HttpError::Method("POST".into()))
        );
        assert!(matches!(
            parse_request_line("GET / HTTP/2"),
            Err(HttpError::Version(_))
        ));
        for bad in [
            "",
            "GET",
            "GET /",
            "GET  / HTTP/1.1",
            "GET / HTTP/1.1 x",
            "get / HTTP/1.1",
            "GET x HTTP/1.1",
        ] {
            assert!(parse_request_line(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hosts() {
        for ok in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "localhost:1",
            "LOCALHOST",
            "[::1]:80",
            "[::1]",
            "10.1.2.3:9",
        ] {
            assert!(host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "evil.example",
            "",
            "[::1",
            "localhost.evil:1",
        ] {
            assert!(!host_allowed(bad), "{bad}");
        }
    }

    fn req(path: &str, host: Option<&str>) -> Request {
        Request {
            method: Method::Get,
            path: path.into(),
            host: host.map(str::to_string),
        }
    }

    #[test]
    fn routes() {
        let status = || r#"{"role":"peer","name":"</script><b>"}"#.to_string();
        let api = route(&req("/api/status", Some("127.0.0.1:1")), &status);
        assert_eq!((api.status, api.content_type), (200, "application/json"));
        assert_eq!(api.body, status());
        let page = route(&req("/", None), &status);
        assert_eq!(page.status, 200);
        assert!(page.body.contains(r#""name":"\u003c/script>\u003cb>""#));
        assert!(!page.body.contains(INITIAL_MARK));
        assert_eq!(route(&req("/nope", None), &status).status, 404);
        assert_eq!(route(&req("/", Some("evil.example")), &status).status, 403);
    }

    #[test]
    fn responses_encode() {
        let r = Response::text(404, "gone");
        let (head, body) = r.encode(false);
        assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
        assert!(head.contains("Content-Length: 5\r\n"));
        assert!(head.ends_with("\r\n\r\n"));
        assert_eq!(body, b"gone\n");
        let (head, body) = r.encode(true);
        assert!(head.contains("Content-Length: 5\r\n"));
        assert!(body.is_empty());
        let (head, _) = error_response(&HttpError::Method("PUT".into())).encode(false);
        assert!(head.contains("Allow: GET, HEAD\r\n"));
    }

    #[test]
    fn the_page_is_self_contained() {
        assert!(PAGE.contains(INITIAL_MARK));
        assert!(PAGE.contains("/api/status"));
        for external in ["http://", "https://", "src=\"//"] {
            assert!(!PAGE.contains(external), "page refers to {external}");
        }
    }
}
