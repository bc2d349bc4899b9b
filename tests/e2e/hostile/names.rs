//! Names people can be fooled by, and names the file system refuses: the
//! tracker refuses names holding bidi controls or invisible characters
//! (and its refusal shows them escaped), so `search` cannot print three
//! rows that all read `report.pdf`; and a name of the longest length the
//! rules accept downloads, its partial file's name cut to fit.

use std::fs;
use std::net::Ipv4Addr;

use crate::support::fakes::test_tls;
use crate::support::harness::{assert_same_bytes, TestDir, CHUNK};
use crate::support::programs::{Peer, Tracker};
use crate::support::raw::Raw;

/// Another host registers three files whose names a terminal shows as
/// `report.pdf` (a zero-width space, a byte-order mark, a right-to-left
/// override that turns `fdp.exe` around) and one with a bidi isolate: each
/// is refused with one line that shows the name escaped, and a peer's
/// `search report` finds nothing. On main all were registered and `search`
/// printed three rows that looked the same.
#[test]
fn names_that_look_like_others_are_refused_and_shown_escaped() {
    let dir = TestDir::new("deceptive-names");
    let tracker = Tracker::start(&dir);
    let mut liar = Raw::connect_tls_from(Ipv4Addr::new(127, 0, 0, 2), tracker.addr(), &test_tls());
    assert_eq!(liar.ask("HELLO 2"), "OK p2pshare 2");
    let names = [
        ("report\u{200b}.pdf", "report\\u{200b}.pdf"),
        ("\u{feff}report.pdf", "\\u{feff}report.pdf"),
        ("report\u{202e}fdp.exe", "report\\u{202e}fdp.exe"),
        ("report\u{2067}.pdf\u{2069}", "report\\u{2067}.pdf\\u{2069}"),
    ];
    for (n, (name, escaped)) in names.iter().enumerate() {
        let reply = liar.ask(&format!("REGISTER 4000 {n:064x} 10 {name}"));
        assert_eq!(reply, format!("ERR invalid file name: {escaped}"));
    }
    assert_eq!(
        liar.ask("REGISTER 4000 00ff 10 report.pdf")
            .split(':')
            .next(),
        Some("ERR invalid id")
    );
    let mut searcher = Peer::start("searcher", &dir.sub("s"), &tracker, &[]);
    assert_eq!(searcher.search("report"), [], "nothing was registered");
}

/// A file whose name is 255 bytes (the most the rules accept, 2-byte
/// characters included), shared and then downloaded by name, arrives
/// byte-identical. On main the download failed with "File name too long":
/// the partial file's name adds 19 bytes.
#[test]
fn a_name_of_the_longest_accepted_length_downloads() {
    let dir = TestDir::new("long-name");
    let tracker = Tracker::start(&dir);
    let name = format!("{}{}.bin", "é".repeat(100), "n".repeat(51));
    assert_eq!(name.len(), 255);
    let (path, data) = dir.random_file(&format!("seed/{name}"), 2 * CHUNK + 5, 61);
    let (_seeder, _) = Peer::seeder("seeder", &tracker, &[&path]);
    let mut dl = Peer::start("downloader", &dir.sub("dl"), &tracker, &[]);
    dl.download(&name, None)
        .unwrap_or_else(|l| panic!("download of a 255-byte name failed: {l:?}"));
    let got = fs::read(dir.path().join("dl").join(&name)).unwrap();
    assert_same_bytes(&got, &data, "the 255-byte name");
}
