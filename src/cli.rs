//! What both binaries share: logging set-up, the one-line fatal error, the
//! status page and shell completions.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;

use crate::web::{self, StatusFn};

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

/// Starts the status page on `addr` and returns the line to print about it:
/// `Status page on http://ADDR:PORT/`.
pub fn start_status_page(addr: SocketAddr, status: Arc<StatusFn>) -> anyhow::Result<String> {
    let bound = web::start(addr, status)
        .with_context(|| format!("cannot serve the status page on {addr}"))?;
    Ok(format!("Status page on http://{bound}/"))
}

/// Prints the completion script of `cmd` for `shell` on stdout.
pub fn print_completions(shell: clap_complete::Shell, mut cmd: clap::Command) {
    let name = cmd.get_name().to_string();
    clap_complete::generate(shell, &mut cmd, name, &mut std::io::stdout());
}

/// Prints `PROGRAM: error: <cause chain on one line>` and exits with 1.
pub fn exit_with_error(program: &str, err: &anyhow::Error) -> ! {
    eprintln!("{program}: error: {err:#}");
    std::process::exit(1);
}
