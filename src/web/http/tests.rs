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
        parse_request_line("POST /api/cancel HTTP/1.1"),
        Ok((Method::Post, "/api/cancel".into()))
    );
    assert_eq!(
        parse_request_line("PUT / HTTP/1.1"),
        Ok((Method::Other("PUT".into()), "/".into()))
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

#[test]
fn headers_that_matter_count_once() {
    let mut req = Request::default();
    for line in [
        "Host: 127.0.0.1:1",
        "ORIGIN: http://127.0.0.1:1",
        "X-P2pshare-Token:  abc ",
        "Content-Type: application/json",
        "Content-Length: 12",
        "Accept: */*",
    ] {
        header(&mut req, line).unwrap();
    }
    assert_eq!(req.host.as_deref(), Some("127.0.0.1:1"));
    assert_eq!(req.origin.as_deref(), Some("http://127.0.0.1:1"));
    assert_eq!(req.token.as_deref(), Some("abc"));
    assert_eq!(req.content_length, Some(12));
    assert!(!req.chunked);
    for again in ["host: x", "Content-Length: 12", "x-p2pshare-token: b"] {
        assert_eq!(header(&mut req, again), Err(HttpError::BadRequest));
    }
    for bad in ["Content-Length: -1", "Content-Length: +5", "no colon"] {
        assert_eq!(
            header(&mut Request::default(), bad),
            Err(HttpError::BadRequest),
            "{bad}"
        );
    }
    let mut req = Request::default();
    header(&mut req, "Transfer-Encoding: chunked").unwrap();
    assert!(req.chunked);
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
    let (head, _) = Response::not_allowed(&Method::Post, "GET, HEAD").encode(false);
    assert!(head.contains("Allow: GET, HEAD\r\n"));
    let (head, _) = Response::html("<p>".into()).encode(false);
    assert!(head.contains(&format!("Content-Security-Policy: {CSP}\r\n")));
    assert!(head.contains("X-Frame-Options: DENY\r\n"));
}
