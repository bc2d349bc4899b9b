//! The status page you can act on: in headless Chromium at 400 px wide, a
//! person's clicks start a download and watch it finish, copy a ticket, and
//! start another and cancel it; over raw HTTP, every action is refused
//! without the page's token, from another origin or another host name.

use std::fs;

use p2pshare::peer::status::State;
use serde_json::Value;

use crate::support::browser::Browser;
use crate::support::harness::{
    assert_same_bytes, part_file, wait_until, TestDir, COMMAND, STARTUP,
};
use crate::support::programs::{Peer, Tracker};
use crate::support::status::{peer_status, post, raw_http, token_of};

/// The text of the first element `selector` finds, as JS.
fn text_of(selector: &str) -> String {
    let sel = serde_json::to_string(selector).unwrap();
    format!("((document.querySelector({sel}) || {{}}).textContent || '')")
}

/// Asserts the page needs no horizontal scrolling in a 400 px window.
#[track_caller]
fn assert_fits(browser: &mut Browser) {
    let w = browser
        .eval("[document.documentElement.scrollWidth, document.documentElement.clientWidth]");
    let (scroll, client) = (w[0].as_u64().unwrap(), w[1].as_u64().unwrap());
    assert!(scroll <= 400 && scroll <= client, "the page overflows: {w}");
}

/// A seeder capped at 1 MiB/s shares two files. In Chromium, at 400 px
/// wide (nothing overflows), the downloader's page starts the first by
/// name from a click and shows it done; `/api/status` agrees and the bytes
/// on disk are the seeder's. Its ticket is copied with a click. The second
/// goes into a directory and is cancelled from the page once it has
/// chunks: it shows cancelled, its `.part` file stays, no output appears.
/// A name nobody has gets the REPL's own error text. The tracker's page
/// fits in 400 px too, and has nothing to click.
#[test]
fn the_page_downloads_and_cancels_on_clicks() {
    let dir = TestDir::new("web-actions");
    let tracker = Tracker::start_with(&dir, 0, &["--http", "0"]);
    let (first, first_data) = dir.random_file("seed/first.bin", 3 * 1024 * 1024 + 17, 21);
    let (second, _) = dir.random_file("seed/second.bin", 16 * 1024 * 1024, 22);
    let (_seeder, ids) = Peer::seeder_with(
        "seeder",
        &tracker,
        &[&first, &second],
        &["--max-upload", "1M"],
    );
    let dl_dir = dir.sub("dl");
    fs::create_dir(dl_dir.join("into")).unwrap();
    let mut dl = Peer::start("downloader", &dl_dir, &tracker, &["--http", "0"]);
    let (page, url) = (dl.page(), dl.proc.status_url());
    token_of(&dl);
    let mut browser = Browser::start(400, 900);
    browser.grant_clipboard(&format!("http://{page}"));
    browser.open(&url);
    browser.wait_for("the add form", "!!document.getElementById('add-button')");
    assert_eq!(browser.eval("window.innerWidth"), 400);
    assert_fits(&mut browser);
    for (what, id) in [("#peer-id", dl.id), ("#tracker-id", tracker.id)] {
        let shown = format!("{} === '{id}'", text_of(what));
        browser.wait_for(&format!("{id} in {what}"), &shown);
    }

    // A name nobody has: the REPL's words.
    browser.type_into("#target", "no such file");
    browser.click("#add-button");
    let refused = browser.wait_for(
        "an error",
        "document.querySelector('#add-msg.error') && document.querySelector('#add-msg').textContent",
    );
    dl.proc.send("download \"no such file\"");
    let repl = dl.proc.expect_out("error: ", COMMAND);
    assert_eq!(
        Some(refused.as_str().unwrap()),
        repl.strip_prefix("error: ")
    );

    browser.eval("document.getElementById('target').value = ''");
    browser.type_into("#target", "first.bin");
    browser.click("#add-button");
    let started = browser.wait_for("the download to start", &text_of("#add-msg.ok"));
    let started = started.as_str().unwrap().to_string();
    assert!(started.starts_with("Started ["), "{started}");
    assert!(
        started.contains("] first.bin from 1 peer, saving as first.bin"),
        "{started}"
    );
    let key: u64 = started["Started [".len()..started.find(']').unwrap()]
        .parse()
        .unwrap();
    let row = format!("#dl-list [data-key=\"{key}\"]");
    let done = browser.wait_for(
        "the download done on the page",
        &format!(
            "{} === 'done' && {}",
            text_of(&format!("{row} .state")),
            text_of(&format!("{row} .pct"))
        ),
    );
    assert_eq!(done, "100.0%");
    let d = peer_status(page)
        .downloads
        .into_iter()
        .find(|d| d.key == key)
        .unwrap();
    assert_eq!(
        (d.state, d.done_bytes, &d.id),
        (State::Done, first_data.len() as u64, &ids[0])
    );
    assert_same_bytes(
        &fs::read(dl_dir.join("first.bin")).unwrap(),
        &first_data,
        "first.bin",
    );
    browser.screenshot("done-400.png");

    // Its ticket, now that this peer shares it: shown, and copied.
    let card = format!("#share-list [data-key=\"{}\"]", ids[0]);
    let ticket = browser.wait_for(
        "a ticket on the page",
        &format!("(document.querySelector('{card} .copy-row.ticket input') || {{}}).value"),
    );
    let ticket = ticket.as_str().unwrap().to_string();
    assert!(ticket.starts_with("p2p2:"), "{ticket}");
    browser.click(&format!("{card} .copy-row.ticket button"));
    let copied = browser.wait_for(
        "the copy to be confirmed",
        &text_of(&format!("{card} .msg")),
    );
    assert_eq!(copied, "Ticket copied to the clipboard");
    let clipboard = browser.eval("navigator.clipboard.readText()");
    assert_eq!(clipboard.as_str(), Some(ticket.as_str()));

    browser.type_into("#target", &ids[1][..12]);
    browser.type_into("#out", "into/");
    browser.click("#add-button");
    let started = browser.wait_for("the second download to start", &text_of("#add-msg.ok"));
    let started = started.as_str().unwrap().to_string();
    assert!(
        started.contains("] second.bin from 1 peer, saving as into/second.bin"),
        "{started}"
    );
    let key2: u64 = started["Started [".len()..started.find(']').unwrap()]
        .parse()
        .unwrap();
    assert_ne!(key2, key);
    wait_until(
        COMMAND,
        "a chunk of the second file",
        || match peer_status(page)
            .downloads
            .into_iter()
            .find(|d| d.key == key2)
        {
            Some(d) if d.state == State::Running && d.done_bytes > 0 => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    let row2 = format!("#dl-list [data-key=\"{key2}\"]");
    let shown =
        format!("(document.querySelector('{row2} .row') || {{hidden: true}}).hidden === false");
    browser.wait_for("a cancel button", &shown);
    browser.screenshot("running-400.png");
    assert_fits(&mut browser);
    browser.click(&format!("{row2} button.cancel"));
    let state = browser.wait_for(
        "the download cancelled on the page",
        &format!(
            "{0} === 'cancelled' && {0}",
            text_of(&format!("{row2} .state"))
        ),
    );
    assert_eq!(state, "cancelled");
    dl.proc
        .expect_out(&format!("cancelling download [{key2}] second.bin"), COMMAND);
    let d = wait_until(STARTUP, "the API to agree", || {
        match peer_status(page)
            .downloads
            .into_iter()
            .find(|d| d.key == key2)
        {
            Some(d) if d.state == State::Cancelled => Ok(d),
            other => Err(format!("{other:?}")),
        }
    });
    assert!(d.done_bytes < d.size, "{d:?}");
    let out = dl_dir.join("into/second.bin");
    assert!(part_file(&out, &ids[1]).exists(), "the .part file stays");
    assert!(!out.exists(), "no output for a cancelled download");

    // The tracker's page, read-only, fits too.
    browser.open(&tracker.proc().status_url());
    browser.wait_for(
        "the tracker's files",
        "document.querySelectorAll('td.name').length === 2",
    );
    browser.screenshot("tracker-400.png");
    assert_fits(&mut browser);
    assert_eq!(
        browser.eval("document.querySelectorAll('button, input').length"),
        0
    );
}

/// Without the page's token, with a wrong one, from another origin or for
/// another host name, no action is taken; with all of them right, a bad
/// request is told what is wrong in JSON. Links and tickets need the token
/// too; the status does not. The tracker's page has no actions.
#[test]
fn actions_need_the_token_and_the_pages_origin() {
    let dir = TestDir::new("web-token");
    let tracker = Tracker::start_with(&dir, 0, &["--http", "0"]);
    let tracker_url = tracker.proc().status_url();
    assert!(
        tracker_url.ends_with('/'),
        "no token on a read-only page: {tracker_url}"
    );
    let dl = Peer::start("peer", &dir.sub("dl"), &tracker, &["--http", "0"]);
    let (page, token) = (dl.page(), token_of(&dl));
    let host = page.to_string();
    let json = "Content-Type: application/json\r\n";
    let body = r#"{"target":"anything"}"#;
    let with_token = format!("X-P2pshare-Token: {token}\r\n{json}");
    let own_origin = format!("Origin: http://{page}\r\n{with_token}");

    let (code, answer) = post(page, &host, "/api/download", json, body);
    assert_eq!(code, 403, "{answer}");
    assert!(answer.starts_with(r#"{"error":"missing token"#), "{answer}");
    let wrong = format!("X-P2pshare-Token: {}\r\n{json}", "0".repeat(32));
    assert_eq!(
        post(page, &host, "/api/download", &wrong, body),
        (403, r#"{"error":"wrong token"}"#.into())
    );
    let evil = format!("Origin: http://evil.example\r\n{with_token}");
    let (code, answer) = post(page, &host, "/api/download", &evil, body);
    assert_eq!(code, 403, "{answer}");
    assert!(answer.contains("is not this page's"), "{answer}");
    let (code, answer) = post(page, "attacker.example", "/api/download", &own_origin, body);
    assert_eq!(
        (code, answer.as_str()),
        (403, "host \"attacker.example\" not allowed\n")
    );
    assert_eq!(
        post(page, &host, "/api/cancel", json, r#"{"key":1}"#).0,
        403
    );

    // Authorized, but not a good request.
    let text = "X-P2pshare-Token: ".to_string() + &token + "\r\nContent-Type: text/plain\r\n";
    assert_eq!(post(page, &host, "/api/download", &text, body).0, 415);
    let (code, answer) = post(page, &host, "/api/download", &own_origin, "target=x");
    assert_eq!(code, 400);
    assert!(
        answer.starts_with(r#"{"error":"bad request body: "#),
        "{answer}"
    );
    let no_length = format!("POST /api/download HTTP/1.1\r\nHost: {host}\r\n{with_token}\r\n");
    assert_eq!(raw_http(page, &no_length).0, 411);
    let (code, answer) = post(page, &host, "/api/download", &own_origin, body);
    let error: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(code, 404, "{answer}");
    assert_eq!(
        error["error"],
        r#"the tracker knows no file named "anything" or with an id starting with it"#
    );
    let (code, answer) = post(page, &host, "/api/cancel", &own_origin, r#"{"key":99}"#);
    assert_eq!(
        (code, answer.as_str()),
        (
            404,
            r#"{"error":"no running download matches \"99\" (see status)"}"#
        )
    );
    let (code, reply) = raw_http(
        page,
        &format!("GET /api/download HTTP/1.1\r\nHost: {host}\r\n\r\n"),
    );
    assert_eq!(code, 405);
    assert!(reply.contains("Allow: POST\r\n"), "{reply}");

    // Links and tickets carry private shares' secrets: the token again.
    let shares = |headers: &str| {
        raw_http(
            page,
            &format!("GET /api/shares HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n"),
        )
    };
    assert_eq!(shares("").0, 403);
    let (code, reply) = shares(&format!("X-P2pshare-Token: {token}\r\n"));
    assert_eq!(code, 200);
    assert!(reply.ends_with(r#"{"shares":[]}"#), "{reply}");
    assert!(
        peer_status(page).downloads.is_empty(),
        "nothing was started"
    );

    let tracker_page = tracker.proc().status_page();
    let (code, _) = post(
        tracker_page,
        &tracker_page.to_string(),
        "/api/download",
        &own_origin,
        body,
    );
    assert_eq!(code, 404, "the tracker's page has no actions");
}
