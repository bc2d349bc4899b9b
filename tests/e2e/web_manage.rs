//! The page manages a peer as the REPL does, over HTTP with its token:
//! shares a file by its path, stops sharing it, sets the bandwidth caps and
//! resumes a download left unfinished; `/api/status`, the tracker and the
//! bytes on disk agree. Bad requests change nothing.

use std::fs;

use serde_json::Value;

use crate::support::harness::{assert_same_bytes, part_file, TestDir, COMMAND};
use crate::support::programs::{Peer, Tracker};
use crate::support::status::{peer_status, post, token_of};

#[test]
fn the_page_shares_unshares_sets_caps_and_resumes() {
    let dir = TestDir::new("web-manage");
    let tracker = Tracker::start(&dir);
    let (path, _) = dir.random_file("me/notes.bin", 3000, 61);
    let (slow, slow_data) = dir.random_file("seed/slow.bin", 8 << 20, 62);
    let (_seeder, ids) = Peer::seeder_with("seeder", &tracker, &[&slow], &["--max-upload", "1M"]);
    let mut me = Peer::start("me", &dir.sub("me"), &tracker, &["--http", "0"]);
    let (page, token) = (me.page(), token_of(&me));
    let host = page.to_string();
    let headers = format!("X-P2pshare-Token: {token}\r\nContent-Type: application/json\r\n");
    let call = |path: &str, body: &str| {
        let (code, answer) = post(page, &host, path, &headers, body);
        let json: Value = serde_json::from_str(&answer).unwrap_or(Value::Null);
        (code, json, answer)
    };

    // Share by path: it is listed here and by the tracker.
    let body = serde_json::json!({ "path": path.to_str().unwrap() }).to_string();
    let (code, shared, answer) = call("/api/share", &body);
    assert_eq!(code, 200, "{answer}");
    assert_eq!(shared["name"], "notes.bin");
    let id = shared["id"].as_str().unwrap().to_string();
    assert!(peer_status(page).shared.iter().any(|f| f.id == id));
    assert_eq!(me.search("notes").len(), 1, "the tracker lists it");
    let (code, _, answer) = call("/api/share", r#"{"path":"no/such/file"}"#);
    assert_eq!(code, 400, "{answer}");

    // Stop sharing it: gone here and from the tracker; the file stays.
    let (code, _, answer) = call("/api/unshare", &format!(r#"{{"target":"{}"}}"#, &id[..8]));
    assert_eq!(code, 200, "{answer}");
    assert!(peer_status(page).shared.iter().all(|f| f.id != id));
    assert!(me.search("notes").is_empty(), "still listed: {answer}");
    assert!(path.is_file(), "unsharing touched the file");
    let (code, _, answer) = call("/api/unshare", r#"{"target":"notes.bin"}"#);
    assert_eq!(code, 404, "{answer}");

    // Caps: a bad rate changes nothing; good ones are in force.
    let (code, _, answer) = call("/api/limit", r#"{"upload":"2M","download":"fast"}"#);
    assert_eq!(code, 400, "{answer}");
    assert_eq!(peer_status(page).caps.upload, None);
    let (code, caps, answer) = call("/api/limit", r#"{"upload":"2M","download":"off"}"#);
    assert_eq!(code, 200, "{answer}");
    assert_eq!(caps["upload"], 2 << 20);
    assert_eq!(peer_status(page).caps.upload, Some(2 << 20));

    // A cancelled download is resumed from the page, and completes.
    me.proc.send("download slow.bin");
    me.await_fetched(2);
    me.proc.send("cancel slow.bin");
    me.proc.expect_out("Cancelled: slow.bin", COMMAND);
    let out = dir.path().join("me/slow.bin");
    assert!(part_file(&out, &ids[0]).exists());
    let (code, resumed, answer) = call("/api/resume", "{}");
    assert_eq!(code, 200, "{answer}");
    assert_eq!(resumed["started"][0]["name"], "slow.bin");
    me.finish_download(COMMAND)
        .unwrap_or_else(|l| panic!("the resumed download failed: {l:?}"));
    assert_same_bytes(&fs::read(&out).unwrap(), &slow_data, "slow.bin");
    let (code, _, answer) = call("/api/resume", "{}");
    assert_eq!(code, 404, "nothing left to resume: {answer}");
}
