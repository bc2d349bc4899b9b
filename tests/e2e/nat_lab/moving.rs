//! A download moves from a punched connection to a direct one when the
//! seeder becomes reachable mid-way (a port forwarded on its router).

use std::fs;
use std::process::Command;
use std::time::Duration;

use p2pshare::peer::dial::Path;

use super::{download_path, peer, status_in, tracker, two_nats};
use crate::support::harness::{assert_same_bytes, wait_until, TestDir, STARTUP};

/// A seeder behind a drop-NAT, capped at 1 MiB/s so that its 24 MiB last
/// a while, serves a downloader behind another: punched. Then its router
/// forwards its listen port and its control connection is cut (`ss -K`),
/// so it asks the tracker again, is found reachable, and the tracker's
/// rows stop marking it; at its next look at the tracker the download
/// leaves the punched connections for direct ones. The file arrives
/// byte-identical and the seeder saw the download's last connections come
/// directly.
#[test]
fn a_punched_download_moves_to_direct_when_the_seeder_becomes_reachable() {
    let Some(mut lab) = super::Lab::new("nat-lab-move") else {
        return;
    };
    let dir = TestDir::new("nat-lab-move");
    two_nats(&mut lab, false, false);
    let (_tracker_proc, port) = tracker(&lab, "inet", &dir);
    let (path, bytes) = dir.random_file("seed/move.bin", 24 * 1024 * 1024 + 5, 61);
    let share = path.to_str().expect("UTF-8");
    let extra = ["--serve", "--share", share, "--max-upload", "1M"];
    let seeder = peer(&lab, "a", "seeder", &dir, port, &extra);
    seeder.await_share();
    let page = seeder.page();
    let control = || match status_in(&lab, "a", page).reach {
        Some(r) if r.control => Ok(r),
        other => Err(format!("{other:?}")),
    };
    wait_until(STARTUP, "the seeder's control connection", control);
    let listen = seeder.addr.port();

    let mut dl = peer(&lab, "b", "dl", &dir, port, &["-v"]);
    dl.proc.send("download move.bin got.bin");
    let dl_page = dl.page();
    let path_now = || {
        let status = status_in(&lab, "b", dl_page);
        let download = status.downloads.first().cloned();
        let paths: Vec<Path> = download
            .iter()
            .flat_map(|d| &d.peers)
            .map(|p| p.path)
            .collect();
        paths
    };
    wait_until(STARTUP, "a punched connection", || match path_now()[..] {
        [Path::Punched] => Ok(()),
        ref other => Err(format!("{other:?}")),
    });

    // The router forwards the seeder's port from now on.
    lab.nft(
        "ra",
        &format!(
            "table ip forward {{\n chain pre {{\n type nat hook prerouting priority -100\n \
             iifname \"wan\" tcp dport {listen} dnat to 10.0.1.2:{listen}\n }}\n}}\n\
             insert rule inet filter forward iifname \"wan\" tcp dport {listen} accept\n"
        ),
    );
    let cut = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns("a"),
            "ss",
            "-K",
            "dst",
            super::TRACKER_IP,
        ])
        .output()
        .expect("ss");
    assert!(cut.status.success(), "{cut:?}");
    wait_until(STARTUP, "the seeder reachable", || {
        match status_in(&lab, "a", page).reach {
            Some(r) if r.reachable && !r.control => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    wait_until(
        Duration::from_secs(30),
        "a direct connection",
        || match path_now()[..] {
            [Path::Direct] => Ok(()),
            ref other => Err(format!("{other:?}")),
        },
    );
    let done = dl.finish_download(Duration::from_secs(60));
    assert!(done.is_ok(), "{done:?}");
    let got = fs::read(dir.path().join("got.bin")).expect("the download");
    assert_same_bytes(&got, &bytes, "move.bin");
    // Bytes came both ways, and nothing else: all of the file.
    let (_, by) = download_path(&lab, &dl);
    assert!(by.punched > 0 && by.direct > 0 && by.relayed == 0, "{by:?}");
    assert_eq!(by.punched + by.direct, bytes.len() as u64, "{by:?}");
    // The seeder's record of this downloader ends direct too.
    let uploads = status_in(&lab, "a", page).uploads;
    assert!(
        uploads.len() == 1 && uploads[0].path == Path::Direct,
        "{uploads:?}"
    );
}
