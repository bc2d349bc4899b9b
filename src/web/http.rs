//! The status page's HTTP/1.1, as small as it can be: the request line and
//! the few headers that matter, read within a deadline and bounded in line
//! length and count; a small body (only for POST); and responses with
//! `Connection: close` (one request per connection).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use thiserror::Error;

use crate::bounds::{HTTP_HEAD_DEADLINE, HTTP_MAX_BODY, HTTP_MAX_HEADERS};
use crate::error::Error;
use crate::protocol::{Connection, ParseError};

/// The header a privileged request carries the page's token in.
pub const TOKEN_HEADER: &str = "x-p2pshare-token";

/// A request method; anything but GET, HEAD and POST is `Other`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Method {
    #[default]
    Get,
    Head,
    Post,
    Other(String),
}

/// Why a request cannot be read or served.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HttpError {
    #[error("malformed request")]
    BadRequest,
    #[error("unsupported HTTP version {0}")]
    Version(String),
    #[error("header line too long")]
    HeaderTooLong,
    #[error("more than {HTTP_MAX_HEADERS} header lines")]
    TooManyHeaders,
    #[error("host {0:?} not allowed")]
    Host(String),
    #[error("a body needs a Content-Length (chunked bodies are not accepted)")]
    LengthRequired,
    #[error("body over {HTTP_MAX_BODY} bytes")]
    TooLarge,
    #[error("the body did not arrive in time")]
    Timeout,
}

impl HttpError {
    /// The status code that answers it.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::BadRequest => 400,
            HttpError::Version(_) => 505,
            HttpError::HeaderTooLong | HttpError::TooManyHeaders => 431,
            HttpError::Host(_) => 403,
            HttpError::LengthRequired => 411,
            HttpError::TooLarge => 413,
            HttpError::Timeout => 408,
        }
    }
}

/// A request's line and the headers that matter here.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The path without its query string.
    pub path: String,
    pub host: Option<String>,
    pub origin: Option<String>,
    /// The `X-P2pshare-Token` header.
    pub token: Option<String>,
    pub content_type: Option<String>,
    pub content_length: Option<usize>,
    /// A `Transfer-Encoding` header was sent (its body cannot be read).
    pub chunked: bool,
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
        "POST" => Method::Post,
        m if !m.is_empty() && m.len() <= 16 && m.bytes().all(|b| b.is_ascii_uppercase()) => {
            Method::Other(m.to_string())
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
    name.eq_ignore_ascii_case("localhost") || name.parse::<Ipv4Addr>().is_ok()
}

/// Reads the request head within [`HTTP_HEAD_DEADLINE`]; `Ok(None)` if the
/// client closed without sending anything. The deadline is returned too:
/// the body must arrive by then as well.
pub fn read_request(conn: &mut Connection) -> Result<Option<(Request, Instant)>, HttpError> {
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
    let mut req = Request {
        method,
        path,
        ..Request::default()
    };
    for _ in 0..HTTP_MAX_HEADERS {
        let line = next_line(conn)?.ok_or(HttpError::BadRequest)?;
        if line.is_empty() {
            return Ok(Some((req, deadline)));
        }
        header(&mut req, &line)?;
    }
    Err(HttpError::TooManyHeaders)
}

/// Records one header line in `req`. A header that matters given twice
/// makes the request malformed: which one would count is ambiguous.
pub fn header(req: &mut Request, line: &str) -> Result<(), HttpError> {
    let (name, value) = line.split_once(':').ok_or(HttpError::BadRequest)?;
    let value = value.trim();
    let once = |slot: &mut Option<String>| match slot {
        Some(_) => Err(HttpError::BadRequest),
        None => {
            *slot = Some(value.to_string());
            Ok(())
        }
    };
    match name.to_ascii_lowercase().as_str() {
        "host" => once(&mut req.host)?,
        "origin" => once(&mut req.origin)?,
        TOKEN_HEADER => once(&mut req.token)?,
        "content-type" => once(&mut req.content_type)?,
        "content-length" => {
            let len = value
                .parse::<usize>()
                .ok()
                .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                .ok_or(HttpError::BadRequest)?;
            if req.content_length.replace(len).is_some() {
                return Err(HttpError::BadRequest);
            }
        }
        "transfer-encoding" => req.chunked = true,
        _ => {}
    }
    Ok(())
}

/// Reads the body `req` announces (at most [`HTTP_MAX_BODY`] bytes, by
/// `deadline`).
pub fn read_body(
    conn: &mut Connection,
    req: &Request,
    deadline: Instant,
) -> Result<Vec<u8>, HttpError> {
    let len = match (req.content_length, req.chunked) {
        (Some(len), false) => len,
        _ => return Err(HttpError::LengthRequired),
    };
    if len > HTTP_MAX_BODY {
        return Err(HttpError::TooLarge);
    }
    conn.read_exact_by(len, deadline).map_err(|e| match e {
        Error::Timeout(_) => HttpError::Timeout,
        _ => HttpError::BadRequest,
    })
}

/// A response before encoding.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// The `Allow` header of a 405.
    pub allow: Option<&'static str>,
}

/// The page's Content-Security-Policy: its own inline script and style,
/// requests to itself, no framing, no form submissions, no base URL.
pub const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src data:; \
     frame-ancestors 'none'; form-action 'none'; base-uri 'none'";

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into() + "\n",
            allow: None,
        }
    }

    pub fn json(status: u16, body: String) -> Response {
        Response {
            status,
            content_type: "application/json",
            body,
            allow: None,
        }
    }

    pub fn html(body: String) -> Response {
        Response {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body,
            allow: None,
        }
    }

    /// `405`, naming the methods `path` takes.
    pub fn not_allowed(method: &Method, allow: &'static str) -> Response {
        let name = match method {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Other(m) => m,
        };
        Response {
            allow: Some(allow),
            ..Response::text(405, format!("method {name} not allowed"))
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
            408 => "Request Timeout",
            409 => "Conflict",
            411 => "Length Required",
            413 => "Content Too Large",
            415 => "Unsupported Media Type",
            431 => "Request Header Fields Too Large",
            500 => "Internal Server Error",
            502 => "Bad Gateway",
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
        if let Some(allow) = self.allow {
            head.push_str(&format!("Allow: {allow}\r\n"));
        }
        if self.content_type.starts_with("text/html") {
            head.push_str(&format!(
                "Content-Security-Policy: {CSP}\r\nX-Frame-Options: DENY\r\n\
                 Referrer-Policy: no-referrer\r\n"
            ));
        }
        head.push_str("\r\n");
        let body: &[u8] = if head_only { &[] } else { self.body.as_bytes() };
        (head, body)
    }
}

#[cfg(test)]
mod tests;
