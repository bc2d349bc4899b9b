//! TLS clients of the tests' own: `openssl` (req, x509, s_client), run as
//! child processes, to check the peers against an independent TLS stack; and
//! [`Session`], a TLS session to a peer whose exporter is at hand, to prove
//! a private share's secret on it, or fail to.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;

use p2pshare::identity::PeerId;
use p2pshare::manifest::FileId;
use p2pshare::net::transport::Stream;
use p2pshare::private::{Proof, Secret, EXPORTER_LABEL};

use super::fakes::test_tls;
use super::harness::{Proc, STARTUP};
use super::raw::REPLY;

/// Runs `openssl ARGS` (split at spaces) in `dir` to its end, within
/// [`STARTUP`], and returns whether it succeeded; its output is in the
/// transcript printed on a panic.
pub fn openssl(dir: &Path, args: &str) -> bool {
    let mut cmd = Command::new("openssl");
    cmd.args(args.split(' ')).current_dir(dir);
    let name = format!("openssl {}", args.split(' ').next().unwrap_or(""));
    Proc::spawn(&name, cmd).wait_exit(STARTUP).success()
}

/// `openssl s_client` to `to` from `dir`, TLS 1.3 or 1.2 (`version`), with
/// the client certificate `client.crt` there if `cert`. It reads its stdin
/// until that is closed (no `-ign_eof`), and then ends the session with a
/// close_notify.
pub fn s_client(dir: &Path, to: SocketAddr, version: &str, cert: bool) -> Proc {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", version, "-nocommands", "-connect"])
        .arg(to.to_string())
        .current_dir(dir);
    if cert {
        cmd.args(["-cert", "client.crt", "-key", "client.key"]);
    }
    Proc::spawn(&format!("s_client {version}"), cmd)
}

/// A TLS session to a peer as a stranger, with the session's exporter at
/// hand to prove a share's secret on it (or fail to).
pub struct Session(BufReader<Stream>);

impl Session {
    pub fn open(to: SocketAddr, pin: PeerId) -> Session {
        let tcp = TcpStream::connect_timeout(&to, REPLY).expect("connect to the peer");
        let tls = Stream::tls_client(tcp, &test_tls(), Some(pin), REPLY).expect("TLS");
        tls.set_read_timeout(Some(REPLY)).expect("a read timeout");
        Session(BufReader::new(tls))
    }

    pub fn ask(&mut self, req: &str) -> String {
        self.0
            .get_mut()
            .write_all(format!("{req}\n").as_bytes())
            .expect("send a request");
        let mut line = String::new();
        self.0.read_line(&mut line).expect("a reply line");
        line.trim_end().to_string()
    }

    /// The proof of `secret` for `id` on this session.
    pub fn proof(&self, secret: &Secret, id: &FileId) -> Proof {
        let exporter = self.0.get_ref().exporter(EXPORTER_LABEL, &id.0);
        secret.proof(id, &exporter.expect("a TLS exporter"))
    }
}
