use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::Duration;

use super::actions::{ActionError, Cancelling, ShareView, Started};
use super::*;

fn status() -> String {
    r#"{"role":"peer","name":"</script><b>"}"#.to_string()
}

/// Records what it was asked; every download starts as key 1.
#[derive(Default)]
struct Fake(Mutex<Vec<String>>);

impl Actions for Fake {
    fn download(&self, target: &str, out: Option<&str>) -> Result<Started, ActionError> {
        self.0
            .lock()
            .unwrap()
            .push(format!("download {target} {out:?}"));
        Ok(Started {
            key: 1,
            name: target.into(),
            id: "00".repeat(32),
            size: None,
            peers: 2,
            out: out.unwrap_or(target).into(),
        })
    }

    fn cancel(&self, key: u64) -> Result<Cancelling, ActionError> {
        self.0.lock().unwrap().push(format!("cancel {key}"));
        Ok(Cancelling {
            key,
            name: "x".into(),
        })
    }

    fn shares(&self) -> Vec<ShareView> {
        Vec::new()
    }
}

fn site(actions: bool) -> Site {
    Site {
        status: Arc::new(status),
        controls: actions.then(|| Controls {
            actions: Arc::new(Fake::default()),
            token: Token::generate().unwrap(),
        }),
    }
}

fn req(method: Method, path: &str, host: Option<&str>) -> Request {
    Request {
        method,
        path: path.into(),
        host: host.map(str::to_string),
        ..Request::default()
    }
}

fn answer(plan: Plan<'_>) -> Response {
    match plan {
        Plan::Answer(r) => r,
        Plan::Act(endpoint, _) => panic!("authorized {endpoint:?}"),
    }
}

#[test]
fn routes() {
    let site = site(false);
    let api = answer(plan(
        &req(Method::Get, "/api/status", Some("127.0.0.1:1")),
        &site,
    ));
    assert_eq!((api.status, api.content_type), (200, "application/json"));
    assert_eq!(api.body, status());
    let page = answer(plan(&req(Method::Get, "/", None), &site));
    assert_eq!(page.status, 200);
    assert!(page.body.contains(r#""name":"\u003c/script>\u003cb>""#));
    assert!(!page.body.contains(INITIAL_MARK));
    let status_of = |method, path: &str, host| answer(plan(&req(method, path, host), &site)).status;
    assert_eq!(status_of(Method::Get, "/nope", None), 404);
    assert_eq!(status_of(Method::Get, "/", Some("evil.example")), 403);
    assert_eq!(
        status_of(Method::Post, "/api/status", Some("evil.example")),
        403
    );
    let post = answer(plan(&req(Method::Post, "/", None), &site));
    assert_eq!((post.status, post.allow), (405, Some("GET, HEAD")));
    // The tracker's page has no actions at all.
    assert_eq!(status_of(Method::Post, "/api/download", None), 404);
    assert_eq!(status_of(Method::Get, "/api/shares", None), 404);
}

#[test]
fn actions_need_their_method_the_token_and_json() {
    let site = site(true);
    let token = site.controls.as_ref().unwrap().token.as_str().to_string();
    let host = Some("127.0.0.1:8090");
    let get = answer(plan(&req(Method::Get, "/api/download", host), &site));
    assert_eq!((get.status, get.allow), (405, Some("POST")));
    let post_shares = answer(plan(&req(Method::Post, "/api/shares", host), &site));
    assert_eq!(
        (post_shares.status, post_shares.allow),
        (405, Some("GET, HEAD"))
    );
    let mut r = req(Method::Post, "/api/download", host);
    assert_eq!(answer(plan(&r, &site)).status, 403, "no token");
    r.token = Some(token.clone());
    assert_eq!(answer(plan(&r, &site)).status, 415, "no content type");
    r.content_type = Some("text/plain".into());
    assert_eq!(answer(plan(&r, &site)).status, 415);
    r.content_type = Some("application/json; charset=utf-8".into());
    assert!(matches!(plan(&r, &site), Plan::Act(Endpoint::Download, _)));
    r.origin = Some("http://evil.example".into());
    assert_eq!(answer(plan(&r, &site)).status, 403, "another origin");
    let mut shares = req(Method::Get, "/api/shares", host);
    assert_eq!(answer(plan(&shares, &site)).status, 403);
    shares.token = Some(token);
    assert!(matches!(
        plan(&shares, &site),
        Plan::Act(Endpoint::Shares, _)
    ));
    // Reading stays open to all.
    assert_eq!(
        answer(plan(&req(Method::Get, "/api/status", host), &site)).status,
        200
    );
}

/// Sends `request` to a server of `site` and returns the whole reply.
fn exchange(server: &ServerHandle, request: &[u8]) -> String {
    let mut s = TcpStream::connect(server.local_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(request).unwrap();
    // The end of input: a body cut short is seen at once.
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
}

#[test]
fn bodies_are_bounded_and_read_whole() {
    let fake = Arc::new(Fake::default());
    let token = Token::generate().unwrap();
    let t = token.as_str().to_string();
    let site = Site {
        status: Arc::new(status),
        controls: Some(Controls {
            actions: Arc::clone(&fake) as Arc<dyn Actions>,
            token,
        }),
    };
    let server = start("127.0.0.1:0".parse().unwrap(), site).unwrap();
    let post = |extra: &str, body: &str| {
        format!(
            "POST /api/download HTTP/1.1\r\nHost: 127.0.0.1\r\nX-P2pshare-Token: {t}\r\n\
             Content-Type: application/json\r\n{extra}\r\n{body}"
        )
    };
    let body = r#"{"target":"a b","out":"~/x"}"#;
    let ok = exchange(
        &server,
        post(&format!("Content-Length: {}\r\n", body.len()), body).as_bytes(),
    );
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(ok.ends_with(r#""out":"~/x"}"#), "{ok}");
    assert_eq!(
        fake.0.lock().unwrap().as_slice(),
        [r#"download a b Some("~/x")"#]
    );
    let none = exchange(&server, post("", body).as_bytes());
    assert!(
        none.starts_with("HTTP/1.1 411 Length Required\r\n"),
        "{none}"
    );
    let chunked = post("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", "abc");
    assert!(exchange(&server, chunked.as_bytes()).starts_with("HTTP/1.1 411 "));
    let big = "x".repeat(crate::bounds::HTTP_MAX_BODY + 1);
    let too_big = post(&format!("Content-Length: {}\r\n", big.len()), &big);
    let reply = exchange(&server, too_big.as_bytes());
    assert!(
        reply.starts_with("HTTP/1.1 413 Content Too Large\r\n"),
        "{reply}"
    );
    assert!(
        reply.ends_with("{\"error\":\"body over 16384 bytes\"}"),
        "{reply}"
    );
    let cut = exchange(&server, post("Content-Length: 100\r\n", "{}").as_bytes());
    assert!(cut.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{cut}");
    assert_eq!(fake.0.lock().unwrap().len(), 1, "nothing else was done");
}

#[test]
fn the_page_is_self_contained() {
    assert!(HTML.contains(&format!("<script>{SCRIPT_MARK}</script>")));
    assert!(SCRIPT.contains(INITIAL_MARK));
    assert!(SCRIPT.contains("/api/status"));
    for external in ["http://", "https://", "src=\"//"] {
        assert!(!HTML.contains(external), "page refers to {external}");
        assert!(!SCRIPT.contains(external), "script refers to {external}");
    }
    let page = page_with("{}");
    assert!(page.contains("const initial = {};"));
    assert!(!page.contains(SCRIPT_MARK) && !page.contains("</script><script>"));
}

/// The page escapes exactly the characters the REPL and the logs escape:
/// its `DECEPTIVE` class, read back from `status.js`, is the control
/// characters and `is_deceptive`, over every code point.
#[test]
fn the_page_escapes_what_the_repl_escapes() {
    use crate::name::is_deceptive;
    let class = SCRIPT
        .split_once("const DECEPTIVE = /[")
        .and_then(|(_, rest)| rest.split_once("]/gu;"))
        .map(|(class, _)| class)
        .expect("a DECEPTIVE class in status.js");
    let class = class.strip_prefix("\\p{Cc}").expect("controls first");
    // `\uXXXX` or `\u{X...}`, alone or as `a-b`.
    let mut ranges = Vec::new();
    let mut rest = class;
    let point = |s: &mut &str| -> u32 {
        let body = s.strip_prefix("\\u").expect("a \\u escape");
        let (hex, tail) = match body.strip_prefix('{') {
            Some(b) => b.split_once('}').expect("a closing brace"),
            None => body.split_at(4),
        };
        *s = tail;
        u32::from_str_radix(hex, 16).expect("hex")
    };
    while !rest.is_empty() {
        let from = point(&mut rest);
        let to = match rest.strip_prefix('-') {
            Some(tail) => {
                rest = tail;
                point(&mut rest)
            }
            None => from,
        };
        ranges.push(from..=to);
    }
    for c in (0..=0x10FFFF).filter_map(char::from_u32) {
        let page = c.is_control() || ranges.iter().any(|r| r.contains(&u32::from(c)));
        assert_eq!(
            page,
            c.is_control() || is_deceptive(c),
            "{:04x}",
            u32::from(c)
        );
    }
}
