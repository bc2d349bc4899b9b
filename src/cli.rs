//! What both binaries share: logging set-up, the one-line fatal error, the
//! status page and shell completions.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap_complete::Shell;

use crate::bounds::MAX_ANY_PORT_STATE_DIRS;
use crate::identity::{self, Identity};
use crate::server::ServerHandle;
use crate::state_dir;
use crate::web::actions::{Actions, Token};
use crate::web::{self, Controls, Site, StatusFn};

/// Options both binaries take (flattened into each one's arguments).
#[derive(clap::Args)]
pub struct CommonArgs {
    /// Serve a live status page on this TCP port (0: any free port).
    #[arg(long, value_name = "PORT")]
    pub http: Option<u16>,
    /// Address for the status page; it is local-only unless this says otherwise.
    #[arg(long, value_name = "ADDR", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST), requires = "http")]
    pub http_bind: IpAddr,
    /// Print a completion script for SHELL on stdout and exit.
    #[arg(long, value_name = "SHELL", exclusive = true)]
    pub completions: Option<Shell>,
    /// More detail on stderr (-v: info, e.g. each chunk; -vv: debug); RUST_LOG works too.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Where this program keeps its identity (key and certificate) and what
    /// it remembers [default: $XDG_STATE_HOME/p2pshare, else ~/.local/state/p2pshare; a REPL or --serve peer uses its peer-LISTEN_PORT subdirectory (peer-any, peer-any-2, ... on port 0), a tracker its tracker/ subdirectory]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

impl CommonArgs {
    /// Prints the completion script and returns `false` if `--completions`
    /// was given; otherwise sets up logging and returns `true` (go on).
    pub fn init(&self, cmd: clap::Command) -> bool {
        if let Some(shell) = self.completions {
            print_completions(shell, cmd);
            return false;
        }
        init_logging(self.verbose);
        true
    }

    /// The state directory (`sub` of the default one when none is given),
    /// taken for this process, and the identity kept there, created at
    /// first use.
    pub fn identity(&self, sub: Option<&str>) -> anyhow::Result<State> {
        let dir = identity::state_dir(self.state_dir.as_deref(), sub)?;
        let lock = state_dir::lock_state_dir(&dir)?;
        let id = Identity::load_or_create(&dir)
            .with_context(|| format!("cannot load or create the identity in {}", dir.display()))?;
        Ok(State {
            dir: Some(dir),
            identity: id,
            _lock: Some(lock),
        })
    }

    /// The state of a REPL or serving peer listening on `listen_port`:
    /// `--state-dir` if given; otherwise one directory per listen port
    /// under the default one (`peer-9001`), so any number of peers of one
    /// user run side by side, each with its own identity and memory, and a
    /// peer started again on its port gets both back. A peer on port 0
    /// (any) takes the first of `peer-any`, `peer-any-2`, … that no running
    /// peer holds.
    pub fn peer_identity(&self, listen_port: u16) -> anyhow::Result<State> {
        if self.state_dir.is_some() || listen_port != 0 {
            return self.identity(Some(&format!("peer-{listen_port}")));
        }
        for n in 1..=MAX_ANY_PORT_STATE_DIRS {
            let sub = match n {
                1 => "peer-any".to_string(),
                n => format!("peer-any-{n}"),
            };
            match self.identity(Some(&sub)) {
                Err(e) if in_use(&e) => continue,
                other => return other,
            }
        }
        anyhow::bail!(
            "{MAX_ANY_PORT_STATE_DIRS} peers on port 0 already run as this user; \
             give this one a listen port or --state-dir DIR"
        )
    }

    /// Like [`identity`](Self::identity), but a default state directory in
    /// use by another process (a peer already running here) gives a
    /// one-time identity and no state instead: for `send` and `get`, which
    /// need no memory.
    pub fn identity_or_ephemeral(&self) -> anyhow::Result<State> {
        match self.identity(None) {
            Err(e) if self.state_dir.is_none() && in_use(&e) => {
                log::info!("{e}; using a one-time identity");
                Ok(State {
                    dir: None,
                    identity: Identity::ephemeral()?,
                    _lock: None,
                })
            }
            other => other,
        }
    }

    /// Starts a read-only status page if `--http` was given; returns its
    /// server (stopped when dropped) and the line to print about it.
    pub fn status_page(
        &self,
        status: Arc<StatusFn>,
    ) -> anyhow::Result<Option<(ServerHandle, String)>> {
        self.status_page_with(status, None)
    }

    /// Like [`status_page`](Self::status_page), with `actions` the page can
    /// take (behind a per-run token, in the printed URL).
    pub fn status_page_with(
        &self,
        status: Arc<StatusFn>,
        actions: Option<Arc<dyn Actions>>,
    ) -> anyhow::Result<Option<(ServerHandle, String)>> {
        self.http
            .map(|port| start_status_page(SocketAddr::new(self.http_bind, port), status, actions))
            .transpose()
    }
}

/// Whether `e` says the state directory is held by another process.
fn in_use(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref(),
        Some(identity::IdentityError::InUse { .. })
    )
}

/// A process's state directory (held while this lives) and identity.
pub struct State {
    pub dir: Option<PathBuf>,
    pub identity: Identity,
    _lock: Option<state_dir::StateLock>,
}

/// Logs to stderr: warnings by default, `-v` info, `-vv` debug; `RUST_LOG`
/// overrides. Records pass through [`LogBridge`](crate::ui::LogBridge), so
/// they never tear a progress bar.
pub fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let logger = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp(None)
        .format_target(false)
        .build();
    // Only fails if a logger is already set, which then keeps logging.
    let _ = crate::ui::LogBridge::install(logger);
}

/// Starts the status page on `addr`; returns its server and the line to
/// print about it: `Status page on http://ADDR:PORT/`, and with `actions`
/// `Status page on http://ADDR:PORT/?token=TOKEN`: the token (new for each
/// run) is what unlocks them, so only whoever reads this line can act.
pub fn start_status_page(
    addr: SocketAddr,
    status: Arc<StatusFn>,
    actions: Option<Arc<dyn Actions>>,
) -> anyhow::Result<(ServerHandle, String)> {
    let controls = match actions {
        Some(actions) => Some(Controls {
            actions,
            token: Token::generate()?,
        }),
        None => None,
    };
    let query = match &controls {
        Some(c) => format!("?token={}", c.token.as_str()),
        None => String::new(),
    };
    let server = web::start(addr, Site { status, controls })
        .with_context(|| format!("cannot serve the status page on {addr}"))?;
    let line = format!("Status page on http://{}/{query}", server.local_addr());
    Ok((server, line))
}

/// Prints the completion script of `cmd` for `shell` on stdout.
pub fn print_completions(shell: Shell, mut cmd: clap::Command) {
    let name = cmd.get_name().to_string();
    clap_complete::generate(shell, &mut cmd, name, &mut std::io::stdout());
}

/// Prints `PROGRAM: error: <cause chain on one line>` and exits with 1.
pub fn exit_with_error(program: &str, err: &anyhow::Error) -> ! {
    eprintln!("{program}: error: {}", one_line(err));
    std::process::exit(1);
}

/// The error and its causes, `: `-separated, each said once: a cause that
/// its error's message already quotes (`cannot listen on X: Address in
/// use`) is not repeated.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cause_quoted_by_its_error_is_said_once() {
        // (A port in use would add the swapped-ports hint after the cause.)
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "Permission denied");
        let bind = crate::peer::PeerError::Bind {
            addr: "0.0.0.0:9".parse().unwrap(),
            source: io,
        };
        let err = anyhow::Error::from(bind).context("cannot start the peer");
        assert_eq!(
            super::one_line(&err),
            "cannot start the peer: cannot listen on 0.0.0.0:9: Permission denied"
        );
    }
}
