//! Issue 12 end to end: TLS 1.3 between peers, ids pinned to certificates,
//! the tracker's pinned identity, and private shares, against the real
//! binaries. What a passive observer sees of a download is read off a relay
//! of the test's own ([`Relay`]); peers are listed with any address and id
//! by a stand-in tracker ([`StubTracker`]), which no real tracker would
//! do. (Who may unregister whom: `hostile::unregister`.)

use std::fs;

use p2pshare::identity::PeerId;
use p2pshare::link::ShareLink;
use p2pshare::private::Secret;

use crate::support::fakes::StubTracker;
use crate::support::harness::{unused_port, wait_until, Stream, TestDir, CHUNK, COMMAND, STARTUP};
use crate::support::programs::{Peer, Tracker};
use crate::support::raw::{tracker_lists, Raw, REPLY};
use crate::support::relay::{slices_found, Relay};
use crate::support::status::chunks_from;
use crate::support::tls::{openssl, s_client, Session};

/// A link to `id` as `name` of `size` bytes, with `secret` if given.
fn link(id: &str, name: &str, size: usize, secret: Option<Secret>) -> String {
    let link = ShareLink {
        id: id.parse().expect("a file id"),
        name: Some(name.into()),
        size: Some(size as u64),
        secret,
    };
    link.to_string()
}

/// A peer's chunk server speaks TLS 1.3 and nothing else: `openssl
/// s_client -tls1_3` with a client certificate completes a handshake, sees
/// the certificate whose hash is the id the peer printed, and is served;
/// without a client certificate it is refused (alert 116); TLS 1.2 is
/// refused; and a plain-text `HELLO 1` gets no plain-text answer.
#[test]
fn openssl_gets_tls13_from_a_seeder_and_plain_text_gets_nothing() {
    let dir = TestDir::new("tls-openssl");
    let tracker = Tracker::start(&dir);
    let (path, _) = dir.random_file("seed/tls.bin", 1000, 31);
    let (seeder, _) = Peer::seeder("seeder", &tracker, &[&path]);
    let at = dir.path();
    let req =
        "req -x509 -newkey ed25519 -nodes -days 1 -subj /CN=e2e -out client.crt -keyout client.key";
    assert!(openssl(at, req), "no client certificate");

    let mut s = s_client(at, seeder.addr, "-tls1_3", true);
    let pem = s.lines_until(Stream::Out, STARTUP, "the server's certificate", |l| {
        l == "-----END CERTIFICATE-----"
    });
    let begin = pem
        .iter()
        .position(|l| l == "-----BEGIN CERTIFICATE-----")
        .expect("a PEM certificate");
    s.expect_out("New, TLSv1.3, Cipher is ", STARTUP);
    s.send("HELLO 2");
    s.expect_out("OK p2pshare 2", REPLY);
    assert!(s.wait_exit(STARTUP).success(), "s_client -tls1_3 failed");
    // The peer ends a session after `QUIT` cleanly, with a close_notify
    // (without one, s_client reports an unexpected EOF and fails).
    let mut quit = s_client(at, seeder.addr, "-tls1_3", true);
    quit.send("QUIT");
    quit.expect_out("OK bye", STARTUP);
    assert!(quit.await_exit(STARTUP).success(), "no clean TLS close");
    fs::write(at.join("server.pem"), pem[begin..].join("\n") + "\n").expect("a PEM file");
    assert!(openssl(
        at,
        "x509 -in server.pem -outform DER -out server.der"
    ));
    let der = fs::read(at.join("server.der")).expect("the DER certificate");
    assert_eq!(
        PeerId::of_cert(&der),
        seeder.id,
        "the id is the cert's hash"
    );

    // No client certificate: the handshake ends in "certificate required".
    // Each is asked for service; what would answer it is looked for below.
    let mut anonymous = s_client(at, seeder.addr, "-tls1_3", false);
    anonymous.send("HELLO 2");
    assert!(!anonymous.await_exit(STARTUP).success());
    assert!(!anonymous.seen("certificate required").is_empty());
    let mut old = s_client(at, seeder.addr, "-tls1_2", true);
    old.send("HELLO 2");
    assert!(!old.await_exit(STARTUP).success(), "TLS 1.2 accepted");
    for client in [&anonymous, &old] {
        assert!(client.seen("OK p2pshare").is_empty(), "served anyway");
    }

    let mut plain = Raw::connect(seeder.addr);
    plain.send(b"HELLO 1\n");
    plain.expect_no_service(REPLY);
}

/// What a wiretap sees of a download: the downloader is sent through a
/// relay (listed at the relay's address with the seeder's real id, so
/// pinning holds) that records every byte. Every connection is TLS from its
/// first byte; the capture carries at least the file's size, yet none of
/// its bytes (a 32-byte slice every 512 bytes, looked for everywhere), nor
/// the manifest, nor the file id the requests name, nor the seeder's peer
/// id that pins the connection (no SNI).
#[test]
fn a_wiretapped_download_carries_none_of_the_file() {
    let dir = TestDir::new("tls-capture");
    let stub = StubTracker::start();
    let len = 3 * CHUNK + 4321;
    let (path, data) = dir.random_file("seed/capture.bin", len, 32);
    let (seeder, ids) = Peer::seeder_port("seeder", stub.port, &[&path], &[]);
    let relay = Relay::start(seeder.addr);
    stub.list(&[(relay.addr, seeder.id)]);
    let mut dl = Peer::start_port("downloader", &dir.sub("dl"), stub.port, &["--http", "0"]);
    let target = link(&ids[0], "capture.bin", len, None);
    let out = dir.path().join("dl/capture.bin");
    let d = dl.download_checked_as(&target, "capture.bin", 1, &out, &data);
    assert_eq!(chunks_from(&d, relay.addr), 4, "all via the relay");

    let captures = relay.captures();
    assert!(!captures.is_empty(), "nothing went through the relay");
    let down: usize = captures.iter().map(|c| c.down.len()).sum();
    assert!(
        down >= len,
        "the capture carried {down} bytes of a {len}-byte file"
    );
    // The search finds what is there, wherever it is: every slice but the
    // first in the file shifted by a byte.
    let shifted = slices_found(&data[1..], &data, 512, 32);
    assert_eq!(shifted.len(), len.div_ceil(512) - 1, "the search is broken");
    let manifest = p2pshare::storage::manifest_of(&path).expect("the manifest");
    let id = ids[0].as_bytes();
    let pin = seeder.id.to_string();
    for (n, c) in captures.iter().enumerate() {
        // A connection cut off before its first byte has nothing to show.
        let ways = [("up", &c.up), ("down", &c.down)];
        for (way, bytes) in ways.into_iter().filter(|(_, b)| !b.is_empty()) {
            assert_eq!(
                bytes.get(..2),
                Some(&[0x16, 0x03][..]),
                "{n} {way}: not TLS"
            );
            let leaked = slices_found(bytes, &data, 512, 32);
            assert!(leaked.is_empty(), "{n} {way}: file bytes at {leaked:?}");
            assert!(slices_found(bytes, &manifest.encode(), 16, 16).is_empty());
            assert!(
                slices_found(bytes, id, 64, 64).is_empty(),
                "{n} {way}: the id"
            );
            assert!(
                slices_found(bytes, pin.as_bytes(), 26, 26).is_empty(),
                "{n} {way}: the pinned peer id"
            );
        }
    }
}

/// A listed peer whose certificate is not the id the tracker gave is
/// refused at the handshake and the download completes from the real
/// seeder. The impostor is a real peer with the same file (so it would
/// serve good chunks), listed first under the seeder's id and reached
/// through a relay: it was contacted, but sent no chunk (the relay saw
/// only a handshake's worth, its own status counts no upload), and the
/// downloader's status credits it with none.
#[test]
fn a_peer_whose_certificate_is_not_the_listed_id_is_refused() {
    let dir = TestDir::new("tls-impostor");
    let stub = StubTracker::start();
    let len = 6 * CHUNK + 77;
    let (path, data) = dir.random_file("seed/pinned.bin", len, 33);
    let (copy, _) = dir.random_file("impostor/pinned.bin", len, 33);
    let (seeder, ids) = Peer::seeder_port("seeder", stub.port, &[&path], &[]);
    let http = ["--http", "0"];
    let (impostor, _) = Peer::seeder_port("impostor", stub.port, &[&copy], &http);
    let tap = Relay::start(impostor.addr);
    stub.list(&[(tap.addr, seeder.id), (seeder.addr, seeder.id)]);
    let mut dl = Peer::start_port("downloader", &dir.sub("dl"), stub.port, &http);
    let target = link(&ids[0], "pinned.bin", len, None);
    let out = dir.path().join("dl/pinned.bin");
    let d = dl.download_checked_as(&target, "pinned.bin", 2, &out, &data);
    assert_eq!(chunks_from(&d, seeder.addr), 7, "{d:?}");
    assert_eq!(chunks_from(&d, tap.addr), 0, "{d:?}");
    // Asked first for the manifest, so certainly tried, though the relay
    // may not have taken the connection yet.
    let tried = wait_until(STARTUP, "a connection to the impostor", || {
        let tried = tap.captures();
        match tried.is_empty() {
            true => Err("none".into()),
            false => Ok(tried),
        }
    });
    for c in &tried {
        assert!(
            c.down.len() < 8192,
            "{} bytes from the impostor",
            c.down.len()
        );
    }
    let shared = impostor.status().shared;
    assert_eq!(shared.len(), 1, "{shared:?}");
    assert_eq!(shared[0].uploaded, 0, "the impostor served {shared:?}");
}

/// A peer pins its tracker's id on first contact (in `known_trackers` and
/// `/api/status`). A tracker with a new identity on the same address is
/// then refused, by the running peer and by a new one with the same state
/// directory, with one `error:` line naming both ids and the fix; the peer
/// exits 1. `--tracker-id NEW` (the fix, with the same state directory)
/// works, and `--tracker-id OLD` is refused.
#[test]
fn a_changed_tracker_identity_is_refused_and_tracker_id_pins_it() {
    let dir = TestDir::new("tracker-pin");
    let port = unused_port();
    let mut first = Tracker::start_with(&dir, port, &[]);
    let state = dir.path().join("peer-state");
    let state_arg = state.to_str().expect("a UTF-8 path");
    let pinned = ["--state-dir", state_arg, "--http", "0"];
    let mut p1 = Peer::start("p1", &dir.sub("p1"), &first, &pinned);
    assert_eq!(p1.search(""), []);
    let old = first.id.to_string();
    assert_eq!(p1.status().tracker_id.as_deref(), Some(old.as_str()));
    let known = fs::read_to_string(state.join("known_trackers")).expect("known_trackers");
    assert_eq!(known, format!("127.0.0.1:{port} {old}\n"));

    first.kill();
    // Another identity on the same address: a new state directory.
    fs::rename(dir.path().join(".tracker-state0"), dir.path().join("old")).unwrap();
    let second = Tracker::start_with(&dir, port, &[]);
    let new = second.id.to_string();
    assert_ne!(new, old);
    let refused = |line: &str, fix: &str| {
        assert!(line.starts_with("error: tracker 127.0.0.1:"), "{line}");
        for part in [&new, &old, "no longer matches", fix] {
            assert!(line.contains(part), "no {part:?} in {line}");
        }
    };
    let line = p1.try_search("").expect_err("a changed tracker answered");
    refused(&line, "--tracker-id NEW_ID");
    // One line: the next command's output comes next.
    p1.proc.send("limit");
    let next = p1
        .proc
        .expect_line(Stream::Out, COMMAND, "a line", |_| true);
    assert!(next.starts_with("limits: "), "{next}");
    assert_eq!(p1.status().tracker_id.as_deref(), Some(old.as_str()));
    assert_eq!(p1.proc.wait_exit(COMMAND).code(), Some(1));

    let mut p2 = Peer::start("p2", &dir.sub("p2"), &second, &pinned[..2]);
    refused(
        &p2.try_search("").expect_err("pin not kept"),
        "known_trackers",
    );
    // The state directory is one process's at a time.
    p2.proc.close_stdin();
    p2.proc.wait_exit(COMMAND);

    let (path, _) = dir.random_file("p3/pinned.bin", 1000, 34);
    let fixed = [
        "--state-dir",
        state_arg,
        "--tracker-id",
        &new,
        "--http",
        "0",
    ];
    let mut p3 = Peer::start("p3", &dir.sub("p3"), &second, &fixed);
    assert_eq!(p3.search(""), []);
    p3.proc.send(&format!("share {}", path.display()));
    p3.await_share();
    assert_eq!(
        tracker_lists(second.addr()),
        [("pinned.bin".to_string(), 1)]
    );
    assert_eq!(p3.status().tracker_id.as_deref(), Some(new.as_str()));

    let wrong = ["--tracker-id", &old];
    let mut p4 = Peer::start("p4", &dir.sub("p4"), &second, &wrong);
    refused(&p4.try_search("").expect_err("a wrong pin"), "--tracker-id");
}

/// A private share: its link downloads it; the same link without the
/// secret, or with another one, fails and leaves nothing, whether the
/// tracker is asked (it lists no such id) or a stand-in lists the seeder
/// (which refuses). The tracker lists it only under its blinded id, never
/// by name or real id, also once the downloader shares it too; and the
/// seeder answers `MANIFEST`, `GET` and `HAVE` for it with `ERR not
/// sharing`, and an `AUTH` with a wrong or replayed proof too, until the
/// session proves the secret; requests call it by its blinded id, never by
/// its real id.
#[test]
fn a_private_share_is_served_only_to_holders_of_its_secret() {
    let dir = TestDir::new("private");
    let tracker = Tracker::start(&dir);
    let len = 2 * CHUNK + 999;
    let (private, data) = dir.random_file("seed/private.bin", len, 35);
    let (public, _) = dir.random_file("seed/public.bin", 1000, 36);
    let (p, q) = (private.to_str().unwrap(), public.to_str().unwrap());
    let args = ["--serve", "--share", q, "--share-private", p, "--http", "0"];
    let seeder = Peer::start("seeder", &dir.sub("seed"), &tracker, &args);
    let public_id = seeder.await_share();
    let id = seeder.await_share();
    let line = seeder.proc.expect_out("  link: ", COMMAND);
    let good: ShareLink = line.trim_start_matches("  link: ").parse().expect("a link");
    let secret = good.secret.expect("a private link carries its secret");
    assert_eq!(good.id.to_hex(), id);
    let private_view = |p: &Peer| p.status().shared.into_iter().find(|f| f.id == id);
    assert!(private_view(&seeder).expect("shared").private);
    let other = Secret::generate().expect("a secret");
    let bad = [
        link(&id, "private.bin", len, None),
        link(&id, "private.bin", len, Some(other)),
    ];

    // A stand-in lists the seeder for any id: the seeder itself refuses.
    let stub = StubTracker::start();
    stub.list(&[(seeder.addr, seeder.id)]);
    let mut stranger = Peer::start_port("stranger", &dir.sub("stranger"), stub.port, &[]);
    for target in &bad {
        let lines = stranger
            .download(target, None)
            .expect_err("served without the secret");
        assert!(lines.last().unwrap().contains("(tried 1)"), "{lines:?}");
    }
    assert!(stub.requests().iter().any(|r| r.starts_with("PEERS ")));
    assert_eq!(
        dir.entries("stranger"),
        Vec::<String>::new(),
        "nothing written"
    );
    assert_eq!(private_view(&seeder).expect("shared").uploaded, 0);

    let mut dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &["--http", "0"]);
    let out = dir.path().join("dl/private.bin");
    dl.download_checked_as(&good.to_string(), "private.bin", 1, &out, &data);
    for target in &bad {
        dl.proc.send(&format!("download {target} again.bin"));
        let lines = dl.finish_download(COMMAND).expect_err("no secret, no file");
        assert!(lines.last().unwrap().contains("no peer has"), "{lines:?}");
    }
    assert_eq!(dir.entries("dl"), ["private.bin"], "nothing else written");
    assert!(private_view(&dl).expect("shared once downloaded").private);
    assert_eq!(private_view(&seeder).expect("shared").uploaded, len as u64);

    // The tracker: both peers under the blinded id, nothing by name or id.
    let blinded = secret.blind(&good.id).to_hex();
    let mut nc = Raw::connect(tracker.addr());
    assert_eq!(nc.ask("HELLO 1"), "OK p2pshare 1");
    wait_until(COMMAND, "both peers under the blinded id", || {
        match nc.list(&format!("PEERS {blinded}")).len() {
            2 => Ok(()),
            n => Err(format!("{n} listed")),
        }
    });
    assert_eq!(nc.list(&format!("PEERS {id}")), Vec::<String>::new());
    assert_eq!(nc.list(&format!("INFO {id}")), Vec::<String>::new());
    assert_eq!(nc.list(&format!("INFO {blinded}")), Vec::<String>::new());
    assert_eq!(
        tracker_lists(tracker.addr()),
        [("public.bin".to_string(), 1)]
    );
    let rows = dl.search("private");
    assert_eq!(rows, [], "found by name");
    assert_eq!(dl.search("").len(), 1, "public.bin only");

    // The seeder's chunk server, by hand: requests call a private share by
    // its blinded id, and its real id names nothing, proved or not (so a
    // peer that a hostile tracker lists never learns it).
    let refusal = |id: &str| format!("ERR not sharing {id}");
    let mut raw = Raw::peer(seeder.addr);
    assert_eq!(raw.ask("HELLO 2"), "OK p2pshare 2");
    for id in [&id, &blinded] {
        for req in [
            format!("MANIFEST {id}"),
            format!("GET {id} 0"),
            format!("HAVE {id} 0"),
        ] {
            assert_eq!(raw.ask(&req), refusal(id), "{req}");
        }
    }
    assert!(raw.ask(&format!("MANIFEST {public_id}")).starts_with("OK "));
    let listed = secret.blind(&good.id);
    let mut session = Session::open(seeder.addr, seeder.id);
    let elsewhere = Session::open(seeder.addr, seeder.id).proof(&secret, &listed);
    let by_real_id = session.proof(&secret, &good.id);
    for proof in [session.proof(&other, &listed), elsewhere] {
        let auth = format!("AUTH {blinded} {proof}");
        assert_eq!(session.ask(&auth), refusal(&blinded));
    }
    let auth = format!("AUTH {id} {by_real_id}");
    assert_eq!(session.ask(&auth), refusal(&id), "by the real id");
    assert_eq!(
        session.ask(&format!("MANIFEST {blinded}")),
        refusal(&blinded)
    );
    let proof = session.proof(&secret, &listed);
    let auth = format!("AUTH {blinded} {proof}");
    assert_eq!(session.ask(&auth), "OK authorized");
    assert!(session
        .ask(&format!("MANIFEST {blinded}"))
        .starts_with("OK "));
}
